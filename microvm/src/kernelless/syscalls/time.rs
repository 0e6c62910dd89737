//! Clocks, sleeping and timer fds: the guest reads the host's clocks (so its time is the
//! host's), sleeps on the host and gets host timerfds.

use syscalls::{Errno, Sysno};

use super::host;
use super::user_memory::UserMemory;
use super::{SysResult, SyscallHandler};

/// The clock ids a guest may name (`CLOCK_REALTIME` .. `CLOCK_TAI`); the CPU-time clocks
/// count the monitor's time, which includes the guest's.
fn clock_id(arg: u64) -> Result<i32, Errno> {
    match arg as i32 {
        id @ 0..=11 if id != 10 => Ok(id),
        _ => Err(Errno::EINVAL),
    }
}

fn write_timespec(um: &UserMemory<'_>, addr: u64, (sec, nsec): (i64, i64)) -> Result<(), Errno> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&sec.to_le_bytes());
    b[8..].copy_from_slice(&nsec.to_le_bytes());
    um.write(addr, &b)
}

fn read_timespec(um: &UserMemory<'_>, addr: u64) -> Result<(i64, i64), Errno> {
    let ts = (um.read_u64(addr)? as i64, um.read_u64(addr + 8)? as i64);
    if ts.0 < 0 || !(0..1_000_000_000).contains(&ts.1) {
        return Err(Errno::EINVAL);
    }
    Ok(ts)
}

/// `clock_gettime(2)`.
pub fn clock_gettime(um: &UserMemory<'_>, clock: u64, tp: u64) -> SysResult {
    let now = host::clock(Sysno::clock_gettime, clock_id(clock)?)?;
    write_timespec(um, tp, now).map(|()| 0)
}

/// `clock_getres(2)` (a NULL `res` only validates the clock).
pub fn clock_getres(um: &UserMemory<'_>, clock: u64, res: u64) -> SysResult {
    let r = host::clock(Sysno::clock_getres, clock_id(clock)?)?;
    if res != 0 {
        write_timespec(um, res, r)?;
    }
    Ok(0)
}

/// `gettimeofday(2)`; the timezone, when asked for, is UTC.
pub fn gettimeofday(um: &UserMemory<'_>, tv: u64, tz: u64) -> SysResult {
    let (sec, nsec) = host::clock(Sysno::clock_gettime, libc::CLOCK_REALTIME)?;
    if tv != 0 {
        write_timespec(um, tv, (sec, nsec / 1000))?;
    }
    if tz != 0 {
        um.write(tz, &[0u8; 8])?;
    }
    Ok(0)
}

/// `time(2)`.
pub fn time(um: &UserMemory<'_>, out: u64) -> SysResult {
    let (sec, _) = host::clock(Sysno::clock_gettime, libc::CLOCK_REALTIME)?;
    if out != 0 {
        um.write_u64(out, sec as u64)?;
    }
    Ok(sec as u64)
}

/// `nanosleep(2)`.
pub fn nanosleep(um: &UserMemory<'_>, req: u64, rem: u64) -> SysResult {
    clock_nanosleep(um, libc::CLOCK_MONOTONIC as u64, 0, req, rem)
}

/// `clock_nanosleep(2)`; an interrupted relative sleep reports the time left.
pub fn clock_nanosleep(
    um: &UserMemory<'_>,
    clock: u64,
    flags: u64,
    req: u64,
    rem: u64,
) -> SysResult {
    let clock = clock_id(clock)?;
    if !matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI
    ) {
        return Err(Errno::EINVAL);
    }
    let abstime = flags as i32 & libc::TIMER_ABSTIME;
    let ts = read_timespec(um, req)?;
    match host::clock_nanosleep(clock, abstime, ts) {
        Ok(()) => Ok(0),
        Err((e, left)) => {
            if e == Errno::EINTR && rem != 0 && abstime == 0 {
                write_timespec(um, rem, left)?;
            }
            Err(e)
        }
    }
}

impl SyscallHandler {
    /// `timerfd_create(2)`.
    pub(super) fn timerfd_create(&mut self, clock: u64, flags: u64) -> SysResult {
        let allowed = (libc::TFD_CLOEXEC | libc::TFD_NONBLOCK) as u64;
        if flags & !allowed != 0 {
            return Err(Errno::EINVAL);
        }
        let host_flags = flags & !(libc::TFD_CLOEXEC as u64);
        let fd = host::new_fd(
            Sysno::timerfd_create,
            [u64::from(clock_id(clock)? as u32), host_flags],
        )?;
        self.fds
            .insert(fd, flags & libc::TFD_CLOEXEC as u64 != 0)
            .map(u64::from)
    }

    /// `timerfd_settime(2)`.
    pub(super) fn timerfd_settime(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let host = self.fds.host_fd(a[0])?;
        let mut new = [0u8; 32];
        um.read(a[2], &mut new)?;
        if a[3] != 0 {
            um.check(a[3], 32)?;
        }
        let old = host::timerfd_settime(host, a[1] as i32, &new)?;
        if a[3] != 0 {
            um.write(a[3], &old)?;
        }
        Ok(0)
    }

    /// `timerfd_gettime(2)`.
    pub(super) fn timerfd_gettime(&mut self, um: &UserMemory<'_>, fd: u64, cur: u64) -> SysResult {
        let host = self.fds.host_fd(fd)?;
        um.check(cur, 32)?;
        um.write(cur, &host::timerfd_gettime(host)?).map(|()| 0)
    }
}

#[cfg(test)]
mod tests {
    use crate::kernelless::syscalls::tests::{err, Guest, SCRATCH};
    use syscalls::{Errno, Sysno};

    #[test]
    fn clocks_read_the_host_time() {
        let mut g = Guest::new();
        assert_eq!(
            g.call(
                Sysno::clock_gettime,
                &[libc::CLOCK_REALTIME as u64, SCRATCH]
            ),
            0
        );
        let sec = g.um().read_u64(SCRATCH).unwrap();
        let host = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(sec.abs_diff(host) < 60, "guest {sec} host {host}");
        assert!(g.um().read_u64(SCRATCH + 8).unwrap() < 1_000_000_000);
        let t = g.call(Sysno::time, &[0]);
        assert!((t as u64).abs_diff(host) < 60);
        assert_eq!(g.call(Sysno::gettimeofday, &[SCRATCH, 0]), 0);
        assert!(
            g.um().read_u64(SCRATCH + 8).unwrap() < 1_000_000,
            "microseconds"
        );
        assert_eq!(
            g.call(
                Sysno::clock_getres,
                &[libc::CLOCK_MONOTONIC as u64, SCRATCH]
            ),
            0
        );
        assert_eq!(
            g.call(Sysno::clock_gettime, &[99, SCRATCH]),
            err(Errno::EINVAL)
        );
        assert_eq!(g.call(Sysno::clock_gettime, &[0, 0x10]), err(Errno::EFAULT));
    }

    #[test]
    fn timerfd_expires_and_reads_its_count() {
        let mut g = Guest::new();
        let mono = libc::CLOCK_MONOTONIC as u64;
        let tfd = g.call(Sysno::timerfd_create, &[mono, libc::TFD_CLOEXEC as u64]) as u64;
        g.um().zero(SCRATCH, 32).unwrap();
        g.um().write_u64(SCRATCH + 24, 1000).unwrap(); // it_value: 1 us
        assert_eq!(
            g.call(Sysno::timerfd_settime, &[tfd, 0, SCRATCH, SCRATCH + 0x100]),
            0
        );
        assert_eq!(
            g.call(Sysno::read, &[tfd, SCRATCH + 0x200, 8]),
            8,
            "blocks until it fires"
        );
        assert_eq!(g.um().read_u64(SCRATCH + 0x200).unwrap(), 1);
        assert_eq!(g.call(Sysno::timerfd_gettime, &[tfd, SCRATCH + 0x300]), 0);
        assert_eq!(g.call(Sysno::timerfd_create, &[99, 0]), err(Errno::EINVAL));
        assert_eq!(
            g.call(Sysno::timerfd_settime, &[tfd, 0, 0x10, 0]),
            err(Errno::EFAULT)
        );
    }

    #[test]
    fn sleeps_validate_their_request() {
        let mut g = Guest::new();
        g.um().write_u64(SCRATCH, 0).unwrap();
        g.um().write_u64(SCRATCH + 8, 1000).unwrap();
        assert_eq!(g.call(Sysno::nanosleep, &[SCRATCH, 0]), 0);
        g.um().write_u64(SCRATCH + 8, 2_000_000_000).unwrap();
        assert_eq!(g.call(Sysno::nanosleep, &[SCRATCH, 0]), err(Errno::EINVAL));
        assert_eq!(g.call(Sysno::nanosleep, &[0, 0]), err(Errno::EFAULT));
        g.um().write_u64(SCRATCH + 8, 0).unwrap();
        let abs = libc::TIMER_ABSTIME as u64;
        assert_eq!(
            g.call(
                Sysno::clock_nanosleep,
                &[libc::CLOCK_MONOTONIC as u64, abs, SCRATCH, 0]
            ),
            0
        );
    }
}
