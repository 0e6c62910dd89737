//! Per-name counts of the guest's system calls, for `--stats` and for the report's
//! "host kernel surface" (claim C6): which calls the guest made, and which it asked for
//! but the monitor does not implement.

use std::collections::BTreeMap;

use serde::Serialize;
use syscalls::{Errno, Sysno};

/// Every system call the monitor implements for the guest: the host-kernel surface a
/// kernel-less guest can reach through the monitor (claim C6). All others answer `ENOSYS`.
/// A test checks this list against the dispatch table.
pub const IMPLEMENTED: &[Sysno] = {
    use Sysno as S;
    &[
        S::brk,
        S::mmap,
        S::munmap,
        S::mprotect,
        S::mremap,
        S::madvise,
        S::arch_prctl,
        S::read,
        S::write,
        S::readv,
        S::writev,
        S::pread64,
        S::pwrite64,
        S::preadv,
        S::pwritev,
        S::ioctl,
        S::poll,
        S::ppoll,
        S::select,
        S::pselect6,
        S::epoll_create,
        S::epoll_create1,
        S::epoll_ctl,
        S::epoll_wait,
        S::epoll_pwait,
        S::eventfd,
        S::eventfd2,
        S::close,
        S::dup,
        S::dup2,
        S::dup3,
        S::fcntl,
        S::pipe,
        S::pipe2,
        S::open,
        S::creat,
        S::openat,
        S::fstat,
        S::stat,
        S::lstat,
        S::newfstatat,
        S::statx,
        S::lseek,
        S::fsync,
        S::fdatasync,
        S::ftruncate,
        S::fchmod,
        S::flock,
        S::fadvise64,
        S::fallocate,
        S::link,
        S::linkat,
        S::getdents64,
        S::mkdir,
        S::mkdirat,
        S::unlink,
        S::rmdir,
        S::unlinkat,
        S::rename,
        S::renameat,
        S::renameat2,
        S::symlink,
        S::symlinkat,
        S::readlink,
        S::readlinkat,
        S::access,
        S::faccessat,
        S::faccessat2,
        S::getcwd,
        S::chdir,
        S::fchdir,
        S::umask,
        S::utimensat,
        S::chmod,
        S::fchmodat,
        S::chown,
        S::lchown,
        S::fchownat,
        S::fchown,
        S::truncate,
        S::statfs,
        S::fstatfs,
        S::sendfile,
        S::clock_gettime,
        S::clock_getres,
        S::gettimeofday,
        S::time,
        S::nanosleep,
        S::clock_nanosleep,
        S::getpid,
        S::gettid,
        S::getppid,
        S::getuid,
        S::geteuid,
        S::getgid,
        S::getegid,
        S::getgroups,
        S::getrusage,
        S::wait4,
        S::waitid,
        S::prctl,
        S::getpgrp,
        S::getpgid,
        S::getsid,
        S::uname,
        S::sysinfo,
        S::sched_getaffinity,
        S::sched_yield,
        S::getrandom,
        S::prlimit64,
        S::getrlimit,
        S::set_tid_address,
        S::set_robust_list,
        S::futex,
        S::exit,
        S::exit_group,
        S::rt_sigaction,
        S::rt_sigprocmask,
        S::sigaltstack,
        S::pause,
        S::kill,
        S::tkill,
        S::tgkill,
        S::socket,
        S::connect,
        S::bind,
        S::listen,
        S::shutdown,
        S::accept,
        S::accept4,
        S::getsockname,
        S::getpeername,
        S::setsockopt,
        S::getsockopt,
        S::sendto,
        S::recvfrom,
        S::sendmsg,
        S::recvmsg,
        S::sched_setaffinity,
        S::sched_getscheduler,
        S::sched_getparam,
        S::getcpu,
        S::timerfd_create,
        S::timerfd_settime,
        S::timerfd_gettime,
        S::syncfs,
    ]
};

/// The names of [`IMPLEMENTED`], for reports.
pub fn implemented() -> impl Iterator<Item = &'static str> {
    IMPLEMENTED.iter().map(|s| s.name())
}

/// Every host system call the syscall layer makes on the guest's behalf: the host
/// kernel surface a guest reaches through the monitor (what a seccomp filter for the
/// monitor's vCPU thread would have to allow, beyond the monitor's own KVM calls).
/// A test checks this list against `host.rs`.
pub const HOST_CALLS: &[Sysno] = {
    use Sysno as S;
    &[
        S::accept4,
        S::bind,
        S::clock_getres,
        S::clock_gettime,
        S::clock_nanosleep,
        S::close,
        S::connect,
        S::epoll_create1,
        S::epoll_ctl,
        S::epoll_wait,
        S::eventfd2,
        S::faccessat2,
        S::fadvise64,
        S::fallocate,
        S::fchmod,
        S::fchmodat,
        S::fchown,
        S::fchownat,
        S::fcntl,
        S::fdatasync,
        S::flock,
        S::fstat,
        S::fstatfs,
        S::fsync,
        S::ftruncate,
        S::getdents64,
        S::getpeername,
        S::getrandom,
        S::getrusage,
        S::getsockname,
        S::getsockopt,
        S::ioctl,
        S::linkat,
        S::listen,
        S::lseek,
        S::madvise,
        S::mkdirat,
        S::openat2,
        S::pause,
        S::pipe2,
        S::poll,
        S::preadv,
        S::pwritev,
        S::readlink,
        S::readlinkat,
        S::readv,
        S::recvmsg,
        S::renameat2,
        S::sendfile,
        S::sendmsg,
        S::setsockopt,
        S::shutdown,
        S::socket,
        S::statx,
        S::symlinkat,
        S::umask,
        S::unlinkat,
        S::utimensat,
        S::writev,
        S::timerfd_create,
        S::timerfd_settime,
        S::timerfd_gettime,
        S::syncfs,
    ]
};

/// Counts of the guest's system calls, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyscallStats {
    /// How many system calls the guest made in all.
    pub total: u64,
    /// Calls per system-call name (`unknown_N` for numbers Linux does not define).
    pub calls: BTreeMap<String, u64>,
    /// Of those, the calls answered `ENOSYS` because the monitor does not implement them.
    pub enosys: BTreeMap<String, u64>,
}

/// Accumulates [`SyscallStats`] cheaply: counts by number, names made at snapshot time.
#[derive(Debug, Default)]
pub(crate) struct StatsRecorder {
    calls: BTreeMap<u64, u64>,
    enosys: BTreeMap<u64, u64>,
}

impl StatsRecorder {
    /// Counts one call and, when it was answered `ENOSYS`, one unimplemented call.
    pub(crate) fn record(&mut self, nr: u64, result: &Result<u64, Errno>) {
        *self.calls.entry(nr).or_default() += 1;
        if *result == Err(Errno::ENOSYS) {
            *self.enosys.entry(nr).or_default() += 1;
        }
    }

    /// The counts so far, by name.
    pub(crate) fn snapshot(&self) -> SyscallStats {
        SyscallStats {
            total: self.calls.values().sum(),
            calls: by_name(&self.calls),
            enosys: by_name(&self.enosys),
        }
    }
}

fn by_name(counts: &BTreeMap<u64, u64>) -> BTreeMap<String, u64> {
    counts.iter().map(|(&nr, &n)| (name(nr), n)).collect()
}

/// The Linux x86_64 name of a system call number.
pub fn name(nr: u64) -> String {
    usize::try_from(nr)
        .ok()
        .and_then(Sysno::new)
        .map_or_else(|| format!("unknown_{nr}"), |s| s.name().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_calls_list_every_call_host_rs_makes() {
        let source = include_str!("host.rs");
        let mut made: std::collections::BTreeSet<&str> = source
            .split("Sysno::")
            .skip(1)
            .map(|rest| {
                rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
                    .unwrap()
            })
            .collect();
        // Made without a Sysno: madvise through libc, close when an OwnedFd drops.
        made.extend(["madvise", "close"]);
        let listed: std::collections::BTreeSet<&str> =
            HOST_CALLS.iter().map(|s| s.name()).collect();
        assert_eq!(listed, made);
    }

    #[test]
    fn names_come_from_the_x86_64_table() {
        assert_eq!(name(0), "read");
        assert_eq!(name(437), "openat2");
        assert_eq!(name(9999), "unknown_9999");
    }

    #[test]
    fn snapshot_serializes_counts_by_name() {
        let mut r = StatsRecorder::default();
        r.record(1, &Ok(5));
        r.record(1, &Err(Errno::EBADF));
        r.record(425, &Err(Errno::ENOSYS));
        let json = serde_json::to_value(r.snapshot()).unwrap();
        assert_eq!(json["total"], 3);
        assert_eq!(json["calls"]["write"], 2);
        assert_eq!(json["enosys"]["io_uring_setup"], 1);
        assert!(json["enosys"].get("write").is_none());
    }
}
