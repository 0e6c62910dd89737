//! The process the guest sees itself as: pid 1, uid 0, one CPU, the kernel name of
//! isolab's monitor; plus its thread pointer (`arch_prctl`), limits, randomness and the
//! single-threaded `futex`.

use std::time::Instant;

use syscalls::Errno;
use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};

use super::memory::MemoryState;
use super::user_memory::UserMemory;
use super::{host, CpuState, SysResult};

/// Number of resource limits Linux defines (`RLIM_NLIMITS`).
const RLIMIT_COUNT: u64 = 16;

/// The guest's pid, tid, pgid and sid.
pub const PID: u64 = 1;

/// `uname` fields: sysname, nodename, release, version, machine, domainname.
pub const UTSNAME: [&str; 6] = [
    "isolab-microvm",
    "isolab",
    // A Linux-style release: the system-call ABI the monitor follows, and that it is
    // isolab's kernel-less monitor rather than a kernel.
    "6.1.0-isolab-kernelless",
    "#1 isolab kernel-less monitor: system calls answered by the VMM",
    "x86_64",
    "(none)",
];

/// `uname(2)`.
pub fn uname(um: &UserMemory<'_>, buf: u64) -> SysResult {
    let mut uts = [0u8; 6 * 65];
    for (i, field) in UTSNAME.iter().enumerate() {
        uts[i * 65..i * 65 + field.len()].copy_from_slice(field.as_bytes());
    }
    um.write(buf, &uts).map(|()| 0)
}

/// `sysinfo(2)`: uptime since the guest started; RAM as the guest's memory.
pub fn sysinfo(um: &UserMemory<'_>, buf: u64, started: Instant, memory: &MemoryState) -> SysResult {
    let total: u64 = um.guest_memory().iter().map(|r| r.len()).sum();
    let mut info = [0u8; 112];
    let mut put = |off: usize, v: u64| info[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(0, started.elapsed().as_secs());
    put(32, total);
    put(40, total.saturating_sub(memory.used()));
    info[80..82].copy_from_slice(&1u16.to_le_bytes()); // procs
    info[104..108].copy_from_slice(&1u32.to_le_bytes()); // mem_unit
    um.write(buf, &info).map(|()| 0)
}

fn check_self(pid: u64) -> Result<(), Errno> {
    match pid as i32 {
        0 | 1 => Ok(()),
        _ => Err(Errno::ESRCH),
    }
}

/// `sched_getaffinity(2)`: the guest has one vCPU, CPU 0.
pub fn sched_getaffinity(um: &UserMemory<'_>, pid: u64, len: u64, mask: u64) -> SysResult {
    check_self(pid)?;
    if len < 8 || len % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    um.write_u64(mask, 1).map(|()| 8)
}

/// `sched_setaffinity(2)`: any mask that includes CPU 0, the only one, is accepted.
pub fn sched_setaffinity(um: &UserMemory<'_>, pid: u64, len: u64, mask: u64) -> SysResult {
    check_self(pid)?;
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let mut first = [0u8; 1];
    um.read(mask, &mut first)?;
    if first[0] & 1 == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// `getcpu(2)`: CPU 0 on node 0.
pub fn getcpu(um: &UserMemory<'_>, cpu: u64, node: u64) -> SysResult {
    for out in [cpu, node].into_iter().filter(|&p| p != 0) {
        um.write_u32(out, 0)?;
    }
    Ok(0)
}

/// `sched_getscheduler(2)` and `sched_getparam(2)`: normal scheduling, priority 0.
pub fn sched_get(um: &UserMemory<'_>, pid: u64, param: Option<u64>) -> SysResult {
    check_self(pid)?;
    if let Some(param) = param {
        um.write_u32(param, 0)?;
    }
    Ok(libc::SCHED_OTHER as u64)
}

/// `getrandom(2)` from the host's generator, in bounded chunks.
pub fn getrandom(um: &UserMemory<'_>, buf: u64, len: u64, flags: u64) -> SysResult {
    let allowed = (libc::GRND_NONBLOCK | libc::GRND_RANDOM | libc::GRND_INSECURE) as u64;
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    let len = len.min(0x1ff_ffff) as usize; // Linux's cap per call
    um.check(buf, len)?;
    let mut chunk = vec![0u8; len.min(64 << 10)];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(chunk.len());
        let n = match host::getrandom(&mut chunk[..want], flags as u32) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        um.write(buf + done as u64, &chunk[..n])?;
        done += n;
    }
    Ok(done as u64)
}

/// `prlimit64(2)` (and `getrlimit`): fixed limits; new ones are checked and accepted.
pub fn prlimit64(um: &UserMemory<'_>, pid: u64, resource: u64, new: u64, old: u64) -> SysResult {
    check_self(pid)?;
    if resource >= RLIMIT_COUNT {
        return Err(Errno::EINVAL);
    }
    if new != 0 {
        let (soft, hard) = (um.read_u64(new)?, um.read_u64(new + 8)?);
        if soft > hard {
            return Err(Errno::EINVAL);
        }
    }
    if old != 0 {
        let (soft, hard) = limit(resource as u32);
        um.write_u64(old, soft)?;
        um.write_u64(old + 8, hard)?;
    }
    Ok(0)
}

/// (soft, hard) of one resource.
fn limit(resource: u32) -> (u64, u64) {
    match resource {
        libc::RLIMIT_STACK => (8 << 20, libc::RLIM_INFINITY),
        libc::RLIMIT_NOFILE => {
            let n = u64::from(super::fd_table::MAX_FDS);
            (n, n)
        }
        libc::RLIMIT_NPROC => (1, 1),
        libc::RLIMIT_CORE => (0, 0),
        _ => (libc::RLIM_INFINITY, libc::RLIM_INFINITY),
    }
}

/// `getrusage(2)`: the monitor's own usage, which contains the guest's (its user time
/// is the guest's user code; its system time includes the monitor's work for it).
pub fn getrusage(um: &UserMemory<'_>, who: u64, buf: u64) -> SysResult {
    let who = match who as i32 {
        libc::RUSAGE_SELF | libc::RUSAGE_THREAD => libc::RUSAGE_SELF,
        libc::RUSAGE_CHILDREN => libc::RUSAGE_CHILDREN,
        _ => return Err(Errno::EINVAL),
    };
    um.check(buf, host::RUSAGE_SIZE)?;
    if who == libc::RUSAGE_CHILDREN {
        return um.write(buf, &[0; host::RUSAGE_SIZE]).map(|()| 0);
    }
    um.write(buf, &host::getrusage(who)?).map(|()| 0)
}

/// `prctl(2)`: only the thread name (`PR_SET_NAME`, `PR_GET_NAME`), which runtimes set;
/// other options are not implemented.
pub fn prctl(um: &UserMemory<'_>, name: &mut [u8; 16], option: u64, arg: u64) -> SysResult {
    match option as i32 {
        libc::PR_SET_NAME => {
            // Linux keeps the first 15 bytes of a longer name.
            let new = match um.read_cstr(arg, 16) {
                Err(Errno::ENAMETOOLONG) => um.read_vec(arg, 15)?,
                other => other?,
            };
            *name = [0; 16];
            name[..new.len()].copy_from_slice(&new);
            Ok(0)
        }
        libc::PR_GET_NAME => um.write(arg, name).map(|()| 0),
        _ => Err(Errno::ENOSYS),
    }
}

/// `arch_prctl(2)`: the FS base (thread pointer) is the vCPU's.
pub fn arch_prctl(um: &UserMemory<'_>, cpu: &mut dyn CpuState, code: u64, addr: u64) -> SysResult {
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    match code {
        ARCH_SET_FS if addr >= 1 << 47 => Err(Errno::EPERM), // not canonical user space
        ARCH_SET_FS => {
            cpu.set_fs_base(addr);
            Ok(0)
        }
        ARCH_GET_FS => um.write_u64(addr, cpu.fs_base()).map(|()| 0),
        _ => Err(Errno::EINVAL),
    }
}

/// `futex(2)` for one thread: a wake finds nobody; a wait on a changed value is
/// `EAGAIN`, with a timeout it sleeps it out, without one it blocks for good (nothing
/// else could ever wake it, as under Linux).
pub fn futex(um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
    const FUTEX_WAIT: u64 = 0;
    const FUTEX_WAKE: u64 = 1;
    const FUTEX_WAIT_BITSET: u64 = 9;
    const FUTEX_WAKE_BITSET: u64 = 10;
    let (uaddr, op, val, timeout) = (a[0], a[1] & 0x7f, a[2] as u32, a[3]);
    match op {
        FUTEX_WAKE | FUTEX_WAKE_BITSET => Ok(0),
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            if uaddr % 4 != 0 {
                return Err(Errno::EINVAL);
            }
            if um.read_u32(uaddr)? != val {
                return Err(Errno::EAGAIN);
            }
            if timeout == 0 {
                return super::signal::pause();
            }
            let clock = if a[1] & 256 != 0 {
                libc::CLOCK_REALTIME
            } else {
                libc::CLOCK_MONOTONIC
            };
            let flags = if op == FUTEX_WAIT_BITSET {
                libc::TIMER_ABSTIME
            } else {
                0
            };
            let ts = (
                um.read_u64(timeout)? as i64,
                um.read_u64(timeout + 8)? as i64,
            );
            host::clock_nanosleep(clock, flags, ts).map_err(|(e, _)| e)?;
            Err(Errno::ETIMEDOUT)
        }
        _ => Err(Errno::ENOSYS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernelless::syscalls::tests::{err, Guest, SCRATCH};
    use syscalls::Sysno;

    #[test]
    fn identity_is_pid_1_root_on_isolabs_monitor() {
        let mut g = Guest::new();
        assert_eq!(g.call(Sysno::getpid, &[]), 1);
        assert_eq!(g.call(Sysno::gettid, &[]), 1);
        assert_eq!(g.call(Sysno::getppid, &[]), 0);
        assert_eq!(g.call(Sysno::geteuid, &[]), 0);
        assert_eq!(g.call(Sysno::uname, &[SCRATCH]), 0);
        let field = |g: &Guest, i: u64| g.um().read_cstr(SCRATCH + i * 65, 65).unwrap();
        assert_eq!(field(&g, 0), b"isolab-microvm");
        assert!(String::from_utf8(field(&g, 2)).unwrap().contains("isolab"));
        assert_eq!(field(&g, 4), b"x86_64");
        assert_eq!(g.call(Sysno::uname, &[0]), err(Errno::EFAULT));
    }

    #[test]
    fn arch_prctl_sets_and_reads_the_fs_base() {
        let mut g = Guest::new();
        assert_eq!(g.call(Sysno::arch_prctl, &[0x1002, 0x7000_1234]), 0);
        assert_eq!(g.cpu.fs_base, 0x7000_1234);
        assert_eq!(g.call(Sysno::arch_prctl, &[0x1003, SCRATCH]), 0);
        assert_eq!(g.um().read_u64(SCRATCH).unwrap(), 0x7000_1234);
        assert_eq!(
            g.call(Sysno::arch_prctl, &[0x1002, 1 << 63]),
            err(Errno::EPERM)
        );
        assert_eq!(g.call(Sysno::arch_prctl, &[0x1003, 0]), err(Errno::EFAULT));
        assert_eq!(g.call(Sysno::arch_prctl, &[0x3001, 0]), err(Errno::EINVAL));
    }

    #[test]
    fn sysinfo_affinity_limits_and_random() {
        let mut g = Guest::new();
        assert_eq!(g.call(Sysno::sysinfo, &[SCRATCH]), 0);
        assert_eq!(g.um().read_u64(SCRATCH + 32).unwrap(), 16 << 20, "totalram");
        assert_eq!(g.um().read_u32(SCRATCH + 104).unwrap(), 1, "mem_unit");
        assert_eq!(g.call(Sysno::sched_getaffinity, &[0, 128, SCRATCH]), 8);
        assert_eq!(g.um().read_u64(SCRATCH).unwrap(), 1);
        assert_eq!(
            g.call(Sysno::sched_getaffinity, &[0, 4, SCRATCH]),
            err(Errno::EINVAL)
        );
        assert_eq!(
            g.call(Sysno::sched_getaffinity, &[42, 8, SCRATCH]),
            err(Errno::ESRCH)
        );
        let nofile = libc::RLIMIT_NOFILE as u64;
        assert_eq!(g.call(Sysno::prlimit64, &[0, nofile, 0, SCRATCH]), 0);
        assert_eq!(g.um().read_u64(SCRATCH).unwrap(), 1024);
        assert_eq!(
            g.call(Sysno::prlimit64, &[0, 99, 0, SCRATCH]),
            err(Errno::EINVAL)
        );
        g.um().zero(SCRATCH, 64).unwrap();
        assert_eq!(g.call(Sysno::getrandom, &[SCRATCH, 64, 0]), 64);
        assert_ne!(g.um().read_vec(SCRATCH, 64).unwrap(), vec![0; 64]);
        assert_eq!(g.call(Sysno::getrandom, &[0x10, 64, 0]), err(Errno::EFAULT));
        assert_eq!(
            g.call(Sysno::getrandom, &[SCRATCH, 64, 0x100]),
            err(Errno::EINVAL)
        );
    }

    #[test]
    fn rusage_thread_name_groups_and_children() {
        let mut g = Guest::new();
        assert_eq!(
            g.call(Sysno::getrusage, &[libc::RUSAGE_SELF as u64, SCRATCH]),
            0
        );
        assert!(
            g.um().read_u64(SCRATCH + 32).unwrap() > 0,
            "ru_maxrss of the monitor"
        );
        assert_eq!(g.call(Sysno::getrusage, &[7, SCRATCH]), err(Errno::EINVAL));
        g.put_str(SCRATCH, "a-rather-long-thread-name");
        assert_eq!(
            g.call(Sysno::prctl, &[libc::PR_SET_NAME as u64, SCRATCH]),
            0
        );
        assert_eq!(
            g.call(Sysno::prctl, &[libc::PR_GET_NAME as u64, SCRATCH + 0x100]),
            0
        );
        assert_eq!(
            g.um().read_cstr(SCRATCH + 0x100, 16).unwrap(),
            b"a-rather-long-t"
        );
        assert_eq!(
            g.call(Sysno::prctl, &[libc::PR_SET_SECCOMP as u64, 0]),
            err(Errno::ENOSYS)
        );
        assert_eq!(g.call(Sysno::getgroups, &[0, 0]), 0);
        assert_eq!(
            g.call(Sysno::wait4, &[u64::MAX, 0, 0, 0]),
            err(Errno::ECHILD)
        );
    }

    #[test]
    fn scheduling_calls_describe_one_normal_cpu() {
        let mut g = Guest::new();
        g.um().write_u64(SCRATCH, 0b11).unwrap();
        assert_eq!(g.call(Sysno::sched_setaffinity, &[0, 8, SCRATCH]), 0);
        g.um().write_u64(SCRATCH, 0b10).unwrap();
        assert_eq!(
            g.call(Sysno::sched_setaffinity, &[0, 8, SCRATCH]),
            err(Errno::EINVAL)
        );
        g.um().write_u64(SCRATCH, u64::MAX).unwrap();
        assert_eq!(g.call(Sysno::getcpu, &[SCRATCH, SCRATCH + 4, 0]), 0);
        assert_eq!(g.um().read_u64(SCRATCH).unwrap(), 0);
        assert_eq!(
            g.call(Sysno::sched_getscheduler, &[0]),
            libc::SCHED_OTHER as i64
        );
        assert_eq!(g.call(Sysno::sched_getparam, &[0, SCRATCH]), 0);
        assert_eq!(
            g.call(Sysno::sched_getparam, &[5, SCRATCH]),
            err(Errno::ESRCH)
        );
    }

    #[test]
    fn futex_wake_finds_nobody_and_a_stale_wait_is_eagain() {
        let mut g = Guest::new();
        g.um().write_u32(SCRATCH, 5).unwrap();
        assert_eq!(g.call(Sysno::futex, &[SCRATCH, 1 | 128, 1]), 0);
        assert_eq!(g.call(Sysno::futex, &[SCRATCH, 128, 4]), err(Errno::EAGAIN));
        assert_eq!(g.call(Sysno::futex, &[0x10, 0, 4]), err(Errno::EFAULT));
        g.um().write_u64(SCRATCH + 8, 0).unwrap();
        g.um().write_u64(SCRATCH + 16, 1000).unwrap();
        assert_eq!(
            g.call(Sysno::futex, &[SCRATCH, 0, 5, SCRATCH + 8]),
            err(Errno::ETIMEDOUT)
        );
    }
}
