//! The kernel-less guest's system-call layer: each `syscall` the guest makes arrives
//! here as a number and six arguments, and is answered with Linux semantics by calls on
//! the host, confined to `--rootfs` and to guest memory.
//!
//! The guest is one single-threaded process: pid 1, tid 1, uid 0. Files are host files
//! under the rootfs ([`rootfs`]), sockets are host sockets ([`net`]), memory is an
//! allocator over a fixed range of guest RAM ([`memory`]). What is not implemented
//! answers `ENOSYS` and is counted by name in [`SyscallStats`].

mod descriptors;
pub mod fd_table;
mod fs;
mod host;
mod io;
pub mod memory;
mod net;
mod poll;
mod process;
pub mod rootfs;
mod signal;
pub mod stats;
mod time;
pub mod user_memory;

use std::path::PathBuf;
use std::time::Instant;

use syscalls::{Errno, Sysno};
use vm_memory::GuestMemoryMmap;

use self::fd_table::FdTable;
use self::memory::MemoryState;
use self::rootfs::Rootfs;
use self::signal::SignalState;
use self::stats::StatsRecorder;
pub use self::stats::SyscallStats;
use self::user_memory::UserMemory;

/// The guest address ranges the syscall layer manages. Both ranges must hold zeros when
/// the guest starts (fresh guest RAM) and be used by nothing else (not the loaded image,
/// the stack, the page tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressSpace {
    /// Initial program break: the end of the loaded image (page-aligned or not). `brk`
    /// grows from here up to `mmap_start`.
    pub brk_start: u64,
    /// Lowest address `mmap` may hand out.
    pub mmap_start: u64,
    /// One past the highest address `mmap` may hand out.
    pub mmap_end: u64,
}

/// What the syscall layer needs to know about one guest.
#[derive(Debug, Clone)]
pub struct SyscallConfig {
    /// Host directory that is the guest's `/`.
    pub rootfs: PathBuf,
    /// The guest memory ranges for `brk` and `mmap`.
    pub address_space: AddressSpace,
}

/// The vCPU state a system call may read or change.
pub trait CpuState {
    /// The FS segment base (thread pointer).
    fn fs_base(&self) -> u64;
    /// Sets the FS segment base (`arch_prctl(ARCH_SET_FS)`).
    fn set_fs_base(&mut self, base: u64);
}

/// What the vCPU does after a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallAction {
    /// Resume the guest with this value in `rax` (`-errno` as `u64` on failure).
    Return(u64),
    /// The guest process ended with this exit status.
    Exit(i32),
}

/// Why the syscall layer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SyscallError {
    /// The rootfs directory could not be opened.
    #[error("opening rootfs {path}: {source}")]
    Rootfs {
        /// The directory given.
        path: PathBuf,
        /// What the host said.
        source: std::io::Error,
    },
    /// The address space ranges are inconsistent.
    #[error(
        "bad guest address space {0:x?}: need brk_start <= mmap_start < mmap_end, mmap range page-aligned"
    )]
    AddressSpace(AddressSpace),
    /// The host kernel cannot confine paths to the rootfs.
    #[error(
        "openat2(RESOLVE_IN_ROOT), which confines the guest to --rootfs, failed: {0} \
         (it needs Linux 5.6 or later)"
    )]
    Confinement(Errno),
}

/// The result of one handler: a return value or an errno.
pub(crate) type SysResult = Result<u64, Errno>;

/// Answers the system calls of one guest process.
#[derive(Debug)]
pub struct SyscallHandler {
    fds: FdTable,
    rootfs: Rootfs,
    memory: MemoryState,
    signals: SignalState,
    stats: StatsRecorder,
    ready: io::ReadyDetector,
    started: Instant,
    thread_name: [u8; 16],
    exit: Option<i32>,
}

impl SyscallHandler {
    /// Sets up a guest: stdio on fds 0-2, `/` at the rootfs, empty heap and mmap area.
    pub fn new(config: SyscallConfig) -> Result<Self, SyscallError> {
        let memory = MemoryState::new(config.address_space)
            .ok_or(SyscallError::AddressSpace(config.address_space))?;
        Ok(Self {
            fds: FdTable::with_stdio(),
            rootfs: Rootfs::open(&config.rootfs)?,
            memory,
            signals: SignalState::default(),
            stats: StatsRecorder::default(),
            ready: io::ReadyDetector::default(),
            started: Instant::now(),
            thread_name: *b"main\0\0\0\0\0\0\0\0\0\0\0\0",
            exit: None,
        })
    }

    /// Performs system call `nr` with `args` for the guest.
    pub fn handle(
        &mut self,
        mem: &GuestMemoryMmap,
        cpu: &mut dyn CpuState,
        nr: u64,
        args: [u64; 6],
    ) -> SyscallAction {
        let um = UserMemory::new(mem);
        let sysno = usize::try_from(nr).ok().and_then(Sysno::new);
        let result = match sysno {
            Some(sysno) => self.dispatch(&um, cpu, sysno, args),
            None => Err(Errno::ENOSYS),
        };
        self.stats.record(nr, &result);
        if let Some(status) = self.exit.take() {
            return SyscallAction::Exit(status);
        }
        SyscallAction::Return(match result {
            Ok(v) => v,
            Err(e) => (-i64::from(e.into_raw())) as u64,
        })
    }

    /// Counts of the system calls made so far.
    pub fn stats(&self) -> SyscallStats {
        self.stats.snapshot()
    }

    /// When the guest first wrote a line `READY` to fd 1.
    pub fn ready_at(&self) -> Option<Instant> {
        self.ready.at()
    }

    /// One arm per implemented call; the rest is `ENOSYS`.
    fn dispatch(
        &mut self,
        um: &UserMemory<'_>,
        cpu: &mut dyn CpuState,
        sysno: Sysno,
        a: [u64; 6],
    ) -> SysResult {
        use Sysno as S;
        const AT_FDCWD: u64 = libc::AT_FDCWD as u64;
        match sysno {
            // memory
            S::brk => Ok(self.memory.brk(um, a[0])),
            S::mmap => self.mmap(um, a),
            S::munmap => self.memory.munmap(um, a[0], a[1]),
            S::mprotect => self.memory.mprotect(a[0], a[1]),
            S::mremap => self.memory.mremap(um, a),
            S::madvise => self.memory.madvise(um, a[0], a[1], a[2]),
            S::arch_prctl => process::arch_prctl(um, cpu, a[0], a[1]),
            // read and write
            S::read => self.read(um, a[0], a[1], a[2]),
            S::write => self.write(um, a[0], a[1], a[2]),
            S::readv => self.readv(um, a[0], a[1], a[2], None),
            S::writev => self.writev(um, a[0], a[1], a[2], None),
            S::pread64 => self.pread(um, a[0], a[1], a[2], a[3]),
            S::pwrite64 => self.pwrite(um, a[0], a[1], a[2], a[3]),
            S::preadv => self.readv(um, a[0], a[1], a[2], Some(a[3])),
            S::pwritev => self.writev(um, a[0], a[1], a[2], Some(a[3])),
            S::ioctl => self.ioctl(um, a[0], a[1], a[2]),
            S::poll => self.poll(um, a[0], a[1], a[2] as i32),
            S::ppoll => self.ppoll(um, a[0], a[1], a[2]),
            S::select => self.select(um, a),
            S::pselect6 => self.pselect6(um, a),
            S::epoll_create => match a[0] as i32 {
                n if n <= 0 => Err(Errno::EINVAL),
                _ => self.epoll_create1(0),
            },
            S::epoll_create1 => self.epoll_create1(a[0]),
            S::epoll_ctl => self.epoll_ctl(um, a),
            S::epoll_wait | S::epoll_pwait => self.epoll_wait(um, a),
            S::eventfd => self.eventfd2(a[0], 0),
            S::eventfd2 => self.eventfd2(a[0], a[1]),
            // descriptors
            S::close => self.fds.remove(a[0]).map(|()| 0),
            S::dup => self.dup(a[0]),
            S::dup2 => self.dup3(a[0], a[1], 0, true),
            S::dup3 => self.dup3(a[0], a[1], a[2], false),
            S::fcntl => self.fcntl(a[0], a[1], a[2]),
            S::pipe => self.pipe2(um, a[0], 0),
            S::pipe2 => self.pipe2(um, a[0], a[1]),
            // files and directories
            S::open => self.openat(um, AT_FDCWD, a[0], a[1], a[2]),
            S::creat => self.openat(um, AT_FDCWD, a[0], fs::CREAT_FLAGS, a[1]),
            S::openat => self.openat(um, a[0], a[1], a[2], a[3]),
            S::fstat => self.fstat(um, a[0], a[1]),
            S::stat => self.fstatat(um, AT_FDCWD, a[0], a[1], 0),
            S::lstat => self.fstatat(um, AT_FDCWD, a[0], a[1], fs::NOFOLLOW),
            S::newfstatat => self.fstatat(um, a[0], a[1], a[2], a[3]),
            S::statx => self.statx(um, a),
            S::lseek => self.plain_fd(S::lseek, a),
            S::fsync => self.plain_fd(S::fsync, a),
            S::fdatasync => self.plain_fd(S::fdatasync, a),
            S::ftruncate => self.plain_fd(S::ftruncate, a),
            S::fchmod => self.plain_fd(S::fchmod, a),
            S::flock => self.plain_fd(S::flock, a),
            S::syncfs => self.plain_fd(S::syncfs, a),
            S::fadvise64 => self.plain_fd(S::fadvise64, a),
            S::fallocate => self.plain_fd(S::fallocate, a),
            S::link => self.linkat(um, [AT_FDCWD, a[0], AT_FDCWD, a[1]], 0),
            S::linkat => self.linkat(um, [a[0], a[1], a[2], a[3]], a[4]),
            S::getdents64 => self.getdents64(um, a[0], a[1], a[2]),
            S::mkdir => self.mkdirat(um, AT_FDCWD, a[0], a[1]),
            S::mkdirat => self.mkdirat(um, a[0], a[1], a[2]),
            S::unlink => self.unlinkat(um, AT_FDCWD, a[0], 0),
            S::rmdir => self.unlinkat(um, AT_FDCWD, a[0], libc::AT_REMOVEDIR as u64),
            S::unlinkat => self.unlinkat(um, a[0], a[1], a[2]),
            S::rename => self.renameat2(um, [AT_FDCWD, a[0], AT_FDCWD, a[1]], 0),
            S::renameat => self.renameat2(um, [a[0], a[1], a[2], a[3]], 0),
            S::renameat2 => self.renameat2(um, [a[0], a[1], a[2], a[3]], a[4]),
            S::symlink => self.symlinkat(um, a[0], AT_FDCWD, a[1]),
            S::symlinkat => self.symlinkat(um, a[0], a[1], a[2]),
            S::readlink => self.readlinkat(um, AT_FDCWD, a[0], a[1], a[2]),
            S::readlinkat => self.readlinkat(um, a[0], a[1], a[2], a[3]),
            S::access => self.faccessat(um, AT_FDCWD, a[0], a[1], 0),
            S::faccessat => self.faccessat(um, a[0], a[1], a[2], 0),
            S::faccessat2 => self.faccessat(um, a[0], a[1], a[2], a[3]),
            S::getcwd => self.getcwd(um, a[0], a[1]),
            S::chdir => self.chdir(um, a[0]),
            S::fchdir => self.fchdir(a[0]),
            S::umask => host::plain(S::umask, [a[0] & 0o777, 0, 0, 0]).map(|v| v as u64),
            S::utimensat => self.utimensat(um, a),
            S::chmod => self.fchmodat(um, AT_FDCWD, a[0], a[1]),
            S::fchmodat => self.fchmodat(um, a[0], a[1], a[2]),
            S::chown => self.fchownat(um, [AT_FDCWD, a[0], a[1], a[2], 0, 0]),
            S::lchown => self.fchownat(um, [AT_FDCWD, a[0], a[1], a[2], fs::NOFOLLOW, 0]),
            S::fchownat => self.fchownat(um, a),
            S::fchown => self.plain_fd(S::fchown, a),
            S::truncate => self.truncate(um, a[0], a[1]),
            S::statfs => self.statfs(um, (0, Some(a[0])), a[1]),
            S::fstatfs => self.statfs(um, (a[0], None), a[1]),
            S::sendfile => self.sendfile(um, a[0], a[1], a[2], a[3]),
            // time
            S::clock_gettime => time::clock_gettime(um, a[0], a[1]),
            S::clock_getres => time::clock_getres(um, a[0], a[1]),
            S::gettimeofday => time::gettimeofday(um, a[0], a[1]),
            S::time => time::time(um, a[0]),
            S::nanosleep => time::nanosleep(um, a[0], a[1]),
            S::clock_nanosleep => time::clock_nanosleep(um, a[0], a[1], a[2], a[3]),
            S::timerfd_create => self.timerfd_create(a[0], a[1]),
            S::timerfd_settime => self.timerfd_settime(um, a),
            S::timerfd_gettime => self.timerfd_gettime(um, a[0], a[1]),
            // identity and process
            S::getpid | S::gettid => Ok(process::PID),
            S::getppid => Ok(0),
            S::getuid | S::geteuid | S::getgid | S::getegid => Ok(0),
            S::getgroups => Ok(0),
            S::getrusage => process::getrusage(um, a[0], a[1]),
            S::wait4 | S::waitid => Err(Errno::ECHILD),
            S::prctl => process::prctl(um, &mut self.thread_name, a[0], a[1]),
            S::getpgrp | S::getpgid | S::getsid => Ok(process::PID),
            S::uname => process::uname(um, a[0]),
            S::sysinfo => process::sysinfo(um, a[0], self.started, &self.memory),
            S::sched_getaffinity => process::sched_getaffinity(um, a[0], a[1], a[2]),
            S::sched_yield => Ok(0),
            S::sched_setaffinity => process::sched_setaffinity(um, a[0], a[1], a[2]),
            S::sched_getscheduler => process::sched_get(um, a[0], None),
            S::sched_getparam => process::sched_get(um, a[0], Some(a[1])),
            S::getcpu => process::getcpu(um, a[0], a[1]),
            S::getrandom => process::getrandom(um, a[0], a[1], a[2]),
            S::prlimit64 => process::prlimit64(um, a[0], a[1], a[2], a[3]),
            S::getrlimit => process::prlimit64(um, 0, a[0], 0, a[1]),
            S::set_tid_address => Ok(process::PID),
            S::set_robust_list => Ok(0),
            S::futex => process::futex(um, a),
            S::exit | S::exit_group => {
                // A parent sees only the low byte of the status, as under Linux.
                self.exit = Some((a[0] & 0xff) as i32);
                Ok(0)
            }
            // signals
            S::rt_sigaction => self.signals.rt_sigaction(um, a[0], a[1], a[2], a[3]),
            S::rt_sigprocmask => self.signals.rt_sigprocmask(um, a[0], a[1], a[2], a[3]),
            S::sigaltstack => self.signals.sigaltstack(um, a[0], a[1]),
            S::pause => signal::pause(),
            S::kill => self.kill(a[0], a[1]),
            S::tkill => self.kill(a[0], a[1]),
            S::tgkill => self.kill(a[1], a[2]),
            // sockets
            S::socket => self.socket(a[0], a[1], a[2]),
            S::connect => self.connect_or_bind(um, S::connect, a[0], a[1], a[2]),
            S::bind => self.connect_or_bind(um, S::bind, a[0], a[1], a[2]),
            S::listen => self.plain_fd(S::listen, a),
            S::shutdown => self.plain_fd(S::shutdown, a),
            S::accept => self.accept4(um, a[0], a[1], a[2], 0),
            S::accept4 => self.accept4(um, a[0], a[1], a[2], a[3]),
            S::getsockname => self.socket_name(um, S::getsockname, a[0], a[1], a[2]),
            S::getpeername => self.socket_name(um, S::getpeername, a[0], a[1], a[2]),
            S::setsockopt => self.setsockopt(um, a),
            S::getsockopt => self.getsockopt(um, a),
            S::sendto => self.sendto(um, a),
            S::recvfrom => self.recvfrom(um, a),
            S::sendmsg => self.sendmsg(um, a[0], a[1], a[2]),
            S::recvmsg => self.recvmsg(um, a[0], a[1], a[2]),
            _ => Err(Errno::ENOSYS),
        }
    }

    /// Calls whose arguments after the fd are plain integers: the guest fd is swapped for
    /// the host one and the rest passed as is.
    fn plain_fd(&mut self, nr: Sysno, a: [u64; 6]) -> SysResult {
        let host = self.fds.host_fd(a[0])?;
        host::plain(nr, [host as u64, a[1], a[2], a[3]]).map(|v| v as u64)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vm_memory::GuestAddress;

    /// A vCPU that only has an FS base.
    #[derive(Debug, Default)]
    pub(crate) struct FakeCpu {
        pub fs_base: u64,
    }

    impl CpuState for FakeCpu {
        fn fs_base(&self) -> u64 {
            self.fs_base
        }
        fn set_fs_base(&mut self, base: u64) {
            self.fs_base = base;
        }
    }

    /// Scratch guest address for test buffers.
    pub(crate) const SCRATCH: u64 = 0x10_0000; // 1 MiB

    /// A guest: 16 MiB of memory, heap at 2 MiB, mmap area 4-12 MiB, and a rootfs.
    pub(crate) struct Guest {
        pub mem: GuestMemoryMmap,
        pub cpu: FakeCpu,
        pub handler: SyscallHandler,
        pub root: PathBuf,
        _dir: tempfile::TempDir,
    }

    pub(crate) const SPACE: AddressSpace = AddressSpace {
        brk_start: 0x20_0000,
        mmap_start: 0x40_0000,
        mmap_end: 0xc0_0000,
    };

    impl Guest {
        pub(crate) fn new() -> Self {
            let (dir, root) = rootfs::tests::fixture();
            let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
            let config = SyscallConfig {
                rootfs: root.clone(),
                address_space: SPACE,
            };
            let handler = SyscallHandler::new(config).unwrap();
            Self {
                mem,
                cpu: FakeCpu::default(),
                handler,
                root,
                _dir: dir,
            }
        }

        /// Makes a call; panics on exit.
        pub(crate) fn call(&mut self, nr: Sysno, args: &[u64]) -> i64 {
            let mut a = [0u64; 6];
            a[..args.len()].copy_from_slice(args);
            match self.handler.handle(&self.mem, &mut self.cpu, nr as u64, a) {
                SyscallAction::Return(v) => v as i64,
                SyscallAction::Exit(s) => panic!("guest exited with {s}"),
            }
        }

        pub(crate) fn um(&self) -> UserMemory<'_> {
            UserMemory::new(&self.mem)
        }

        /// Writes a NUL-terminated string into guest memory at `at`.
        pub(crate) fn put_str(&self, at: u64, s: &str) -> u64 {
            let mut b = s.as_bytes().to_vec();
            b.push(0);
            self.um().write(at, &b).unwrap();
            at
        }

        /// Opens `path` (creating it with mode 0644 where `flags` say so) and returns the
        /// guest descriptor; panics when the open fails.
        pub(crate) fn open(&mut self, path: &str, flags: i32) -> u64 {
            let p = self.put_str(SCRATCH + 0x8000, path);
            let fd = self.call(Sysno::open, &[p, flags as u64, 0o644]);
            assert!(fd >= 0, "open {path}: {fd}");
            fd as u64
        }
    }

    pub(crate) fn err(e: Errno) -> i64 {
        -i64::from(e.into_raw())
    }

    #[test]
    fn unknown_and_unimplemented_calls_are_enosys_and_counted() {
        let mut g = Guest::new();
        assert_eq!(g.call(Sysno::io_uring_setup, &[]), err(Errno::ENOSYS));
        assert_eq!(g.call(Sysno::io_uring_setup, &[]), err(Errno::ENOSYS));
        let r = g.handler.handle(&g.mem, &mut g.cpu, 100_000, [0; 6]);
        assert_eq!(r, SyscallAction::Return(err(Errno::ENOSYS) as u64));
        g.call(Sysno::getpid, &[]);
        let stats = g.handler.stats();
        assert_eq!(stats.enosys.get("io_uring_setup"), Some(&2));
        assert_eq!(stats.enosys.get("unknown_100000"), Some(&1));
        assert_eq!(stats.calls.get("getpid"), Some(&1));
        assert!(!stats.enosys.contains_key("getpid"));
        assert_eq!(stats.total, 4);
    }

    #[test]
    fn the_implemented_list_matches_the_dispatch_table() {
        let mut g = Guest::new();
        for fd in 0..3 {
            g.call(Sysno::close, &[fd]); // no call below may touch the test's stdio
        }
        let mut answered = std::collections::BTreeSet::new();
        for sysno in Sysno::iter() {
            // pause blocks and umask changes the test process: both are implemented.
            if matches!(sysno, Sysno::pause | Sysno::umask) {
                answered.insert(sysno.name());
                continue;
            }
            // Every argument points at zeroed scratch memory; prctl needs a real option.
            let mut args = [SCRATCH; 6];
            if sysno == Sysno::prctl {
                args[0] = libc::PR_GET_NAME as u64;
            }
            g.um().zero(SCRATCH, 0x1000).unwrap();
            let r = g.handler.handle(&g.mem, &mut g.cpu, sysno as u64, args);
            if r != SyscallAction::Return(err(Errno::ENOSYS) as u64) {
                answered.insert(sysno.name());
            }
        }
        let listed: std::collections::BTreeSet<_> = stats::implemented().collect();
        assert_eq!(listed, answered);
    }

    /// Calls left out of the random test: they wait (forever, with random arguments),
    /// change the test process (umask), make blocking objects whose writes could wait
    /// forever (pipes, sockets, eventfds, timerfds), or could fill the disk (fallocate).
    const NOT_RANDOMIZED: &[Sysno] = &[
        Sysno::pause,
        Sysno::poll,
        Sysno::ppoll,
        Sysno::select,
        Sysno::pselect6,
        Sysno::epoll_wait,
        Sysno::epoll_pwait,
        Sysno::nanosleep,
        Sysno::clock_nanosleep,
        Sysno::futex,
        Sysno::umask,
        Sysno::flock,
        Sysno::pipe,
        Sysno::pipe2,
        Sysno::socket,
        Sysno::eventfd,
        Sysno::eventfd2,
        Sysno::timerfd_create,
        Sysno::fallocate,
    ];

    #[test]
    fn random_calls_never_panic_and_never_touch_the_host_outside_the_rootfs() {
        let mut g = Guest::new();
        for fd in 0..3 {
            g.call(Sysno::close, &[fd]);
        }
        let outer = g.root.parent().unwrap().to_owned();
        let listing = |dir: &std::path::Path| {
            let mut names: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        let before = listing(&outer);
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let calls: Vec<Sysno> = stats::IMPLEMENTED
            .iter()
            .copied()
            .filter(|s| !NOT_RANDOMIZED.contains(s))
            .collect();
        let mut noise = vec![0u8; 0x2000];
        for _ in 0..20_000 {
            noise.iter_mut().for_each(|b| *b = next() as u8);
            g.um().write(SCRATCH, &noise).unwrap();
            let sysno = calls[(next() % calls.len() as u64) as usize];
            let args = [0; 6].map(|_: u64| match next() % 6 {
                0 => 0,
                1 => next() % 8,
                2 => SCRATCH + next() % 0x2000,
                3 => next(),
                4 => u64::MAX,
                _ => SCRATCH,
            });
            // Any answer is fine; a panic or a host-side effect outside the rootfs is not.
            g.handler.handle(&g.mem, &mut g.cpu, sysno as u64, args);
        }
        assert_eq!(
            listing(&outer),
            before,
            "nothing created or removed next to the rootfs"
        );
        let secret = std::fs::read_to_string(outer.join("secret")).unwrap();
        assert_eq!(secret, "host secret");
    }

    #[test]
    fn the_handler_can_move_to_a_vcpu_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<SyscallHandler>();
    }

    #[test]
    fn exit_group_ends_the_guest_with_its_status() {
        let mut g = Guest::new();
        let r = g.handler.handle(
            &g.mem,
            &mut g.cpu,
            Sysno::exit_group as u64,
            [3, 0, 0, 0, 0, 0],
        );
        assert_eq!(r, SyscallAction::Exit(3));
        let mut g = Guest::new();
        let status = [0x1_0107, 0, 0, 0, 0, 0];
        let r = g
            .handler
            .handle(&g.mem, &mut g.cpu, Sysno::exit as u64, status);
        assert_eq!(r, SyscallAction::Exit(7), "only the low byte counts");
    }

    #[test]
    fn a_host_without_openat2_gets_a_clear_error() {
        // Old kernels answer openat2 with ENOSYS; the message names what is missing.
        let msg = SyscallError::Confinement(Errno::ENOSYS).to_string();
        assert!(
            msg.contains("RESOLVE_IN_ROOT") && msg.contains("Linux 5.6"),
            "{msg}"
        );
    }

    #[test]
    fn a_bad_address_space_is_refused() {
        let (_dir, root) = rootfs::tests::fixture();
        let space = AddressSpace {
            brk_start: 0x1000,
            mmap_start: 0x8000,
            mmap_end: 0x4000,
        };
        let err = SyscallHandler::new(SyscallConfig {
            rootfs: root,
            address_space: space,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("bad guest address space"), "{err}");
    }
}
