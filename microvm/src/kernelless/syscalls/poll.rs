//! Waiting for descriptors: `poll`, `ppoll`, `select`, `pselect6` on the host's
//! `poll(2)` over the host descriptors behind the guest's; `epoll` on a host epoll
//! instance, to which the guest's opaque event data is handed through unchanged.

use syscalls::Errno;

use super::host;
use super::user_memory::UserMemory;
use super::{SysResult, SyscallHandler};

/// Most descriptors a `select` set can name (`FD_SETSIZE`).
const FD_SETSIZE: u64 = 1024;
/// Most events one `epoll_wait` returns (a shorter answer is always allowed).
const EPOLL_MAX_EVENTS: u64 = 1024;

/// A poll timeout from a guest `struct timespec` pointer (NULL: wait forever).
fn timespec_to_ms(um: &UserMemory<'_>, addr: u64) -> Result<i32, Errno> {
    if addr == 0 {
        return Ok(-1);
    }
    let (sec, nsec) = (um.read_u64(addr)? as i64, um.read_u64(addr + 8)? as i64);
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    let ms = sec
        .saturating_mul(1000)
        .saturating_add((nsec + 999_999) / 1_000_000);
    Ok(ms.min(i64::from(i32::MAX)) as i32)
}

/// A select timeout from a guest `struct timeval` pointer (NULL: wait forever).
fn timeval_to_ms(um: &UserMemory<'_>, addr: u64) -> Result<i32, Errno> {
    if addr == 0 {
        return Ok(-1);
    }
    let (sec, usec) = (um.read_u64(addr)? as i64, um.read_u64(addr + 8)? as i64);
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    let ms = sec.saturating_mul(1000).saturating_add((usec + 999) / 1000);
    Ok(ms.min(i64::from(i32::MAX)) as i32)
}

/// One guest `fd_set` of `nfds` bits as bytes (empty for a NULL pointer).
fn read_fd_set(um: &UserMemory<'_>, addr: u64, nfds: u64) -> Result<Vec<u8>, Errno> {
    if addr == 0 {
        return Ok(Vec::new());
    }
    um.read_vec(addr, (nfds.div_ceil(64) * 8) as usize)
}

fn bit(set: &[u8], fd: u64) -> bool {
    set.get((fd / 8) as usize)
        .is_some_and(|b| b & (1 << (fd % 8)) != 0)
}

impl SyscallHandler {
    /// `poll(2)`.
    pub(super) fn poll(
        &mut self,
        um: &UserMemory<'_>,
        fds: u64,
        n: u64,
        timeout_ms: i32,
    ) -> SysResult {
        if n > u64::from(super::fd_table::MAX_FDS) {
            return Err(Errno::EINVAL);
        }
        let raw = um.read_vec(fds, n as usize * 8)?;
        // A guest fd that is not open polls as -1 on the host and answers POLLNVAL.
        let mut invalid = Vec::with_capacity(n as usize);
        let mut polled: Vec<libc::pollfd> = raw
            .chunks_exact(8)
            .map(|entry| {
                let fd = i32::from_le_bytes(entry[..4].try_into().expect("4 bytes"));
                let events = i16::from_le_bytes(entry[4..6].try_into().expect("2 bytes"));
                let host = if fd < 0 {
                    Ok(-1)
                } else {
                    self.fds.host_fd(fd as u64)
                };
                invalid.push(host.is_err());
                libc::pollfd {
                    fd: host.unwrap_or(-1),
                    events,
                    revents: 0,
                }
            })
            .collect();
        let timeout = if invalid.contains(&true) {
            0
        } else {
            timeout_ms
        };
        host::poll(&mut polled, timeout)?;
        let mut ready = 0;
        for (i, p) in polled.iter().enumerate() {
            let revents = if invalid[i] {
                libc::POLLNVAL
            } else {
                p.revents
            };
            ready += u64::from(revents != 0);
            um.write(fds + i as u64 * 8 + 6, &revents.to_le_bytes())?;
        }
        Ok(ready)
    }

    /// `ppoll(2)`; the signal mask is ignored (no signal is ever delivered).
    pub(super) fn ppoll(&mut self, um: &UserMemory<'_>, fds: u64, n: u64, ts: u64) -> SysResult {
        let timeout = timespec_to_ms(um, ts)?;
        self.poll(um, fds, n, timeout)
    }

    /// `select(2)`.
    pub(super) fn select(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let timeout = timeval_to_ms(um, a[4])?;
        self.select_ms(um, [a[0], a[1], a[2], a[3]], timeout)
    }

    /// `pselect6(2)`; the signal mask is ignored (no signal is ever delivered).
    pub(super) fn pselect6(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let timeout = timespec_to_ms(um, a[4])?;
        self.select_ms(um, [a[0], a[1], a[2], a[3]], timeout)
    }

    /// `epoll_create1(2)` (and `epoll_create`, whose size is only checked).
    pub(super) fn epoll_create1(&mut self, flags: u64) -> SysResult {
        if flags & !(libc::EPOLL_CLOEXEC as u64) != 0 {
            return Err(Errno::EINVAL);
        }
        let fd = host::new_fd(syscalls::Sysno::epoll_create1, [0, 0])?;
        self.fds.insert(fd, flags != 0).map(u64::from)
    }

    /// `epoll_ctl(2)`: guest fds are swapped for host ones; the event is passed as is.
    pub(super) fn epoll_ctl(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let (epfd, fd) = (self.fds.host_fd(a[0])?, self.fds.host_fd(a[2])?);
        let mut event = [0u8; host::EPOLL_EVENT_SIZE];
        if a[1] as i32 != libc::EPOLL_CTL_DEL {
            um.read(a[3], &mut event)?;
        }
        host::epoll_ctl(epfd, a[1] as i32, fd, &event).map(|_| 0)
    }

    /// `epoll_wait(2)` and `epoll_pwait(2)` (the signal mask is ignored).
    pub(super) fn epoll_wait(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let epfd = self.fds.host_fd(a[0])?;
        let max = a[2] as i32;
        if max <= 0 {
            return Err(Errno::EINVAL);
        }
        let max = (max as u64).min(EPOLL_MAX_EVENTS) as usize;
        um.check(a[1], max * host::EPOLL_EVENT_SIZE)?;
        let mut buf = vec![0u8; max * host::EPOLL_EVENT_SIZE];
        let n = host::epoll_wait(epfd, &mut buf, a[3] as i32)?;
        um.write(a[1], &buf[..n * host::EPOLL_EVENT_SIZE])
            .map(|()| n as u64)
    }

    /// `eventfd2(2)` (and `eventfd`).
    pub(super) fn eventfd2(&mut self, initval: u64, flags: u64) -> SysResult {
        let allowed = (libc::EFD_CLOEXEC | libc::EFD_NONBLOCK | libc::EFD_SEMAPHORE) as u64;
        if flags & !allowed != 0 {
            return Err(Errno::EINVAL);
        }
        let host_flags = flags & !(libc::EFD_CLOEXEC as u64);
        let fd = host::new_fd(
            syscalls::Sysno::eventfd2,
            [initval & 0xffff_ffff, host_flags],
        )?;
        self.fds
            .insert(fd, flags & libc::EFD_CLOEXEC as u64 != 0)
            .map(u64::from)
    }

    /// Select over (nfds, readfds, writefds, exceptfds) as a host poll. The timeout is
    /// not updated with the time left.
    fn select_ms(&mut self, um: &UserMemory<'_>, a: [u64; 4], timeout_ms: i32) -> SysResult {
        let nfds = a[0] as i32 as i64;
        if !(0..=FD_SETSIZE as i64).contains(&nfds) {
            return Err(Errno::EINVAL);
        }
        let nfds = nfds as u64;
        let sets = [
            read_fd_set(um, a[1], nfds)?,
            read_fd_set(um, a[2], nfds)?,
            read_fd_set(um, a[3], nfds)?,
        ];
        let (guest_fds, mut pfds) = self.select_pollfds(&sets, nfds)?;
        host::poll(&mut pfds, timeout_ms)?;
        let ready = [
            libc::POLLIN | libc::POLLHUP | libc::POLLERR,
            libc::POLLOUT | libc::POLLERR,
            libc::POLLPRI,
        ];
        let mut out = sets.clone().map(|s| vec![0u8; s.len()]);
        let mut count = 0;
        for (&fd, p) in guest_fds.iter().zip(&pfds) {
            for i in (0..3).filter(|&i| bit(&sets[i], fd) && p.revents & ready[i] != 0) {
                out[i][(fd / 8) as usize] |= 1 << (fd % 8);
                count += 1;
            }
        }
        for (addr, set) in [a[1], a[2], a[3]].into_iter().zip(&out) {
            if addr != 0 {
                um.write(addr, set)?;
            }
        }
        Ok(count)
    }

    /// The guest fds named in the read, write and except sets, and host pollfds for them.
    fn select_pollfds(
        &self,
        sets: &[Vec<u8>; 3],
        nfds: u64,
    ) -> Result<(Vec<u64>, Vec<libc::pollfd>), Errno> {
        let wanted = [libc::POLLIN, libc::POLLOUT, libc::POLLPRI];
        let mut guest_fds = Vec::new();
        let mut pfds = Vec::new();
        for fd in 0..nfds {
            let events = (0..3)
                .filter(|&i| bit(&sets[i], fd))
                .fold(0, |e, i| e | wanted[i]);
            if events != 0 {
                guest_fds.push(fd);
                pfds.push(libc::pollfd {
                    fd: self.fds.host_fd(fd)?,
                    events,
                    revents: 0,
                });
            }
        }
        Ok((guest_fds, pfds))
    }
}

#[cfg(test)]
mod tests {
    use crate::kernelless::syscalls::tests::{err, Guest, SCRATCH};
    use syscalls::{Errno, Sysno};

    #[test]
    fn poll_reports_ready_and_invalid_descriptors() {
        let mut g = Guest::new();
        let fd = g.open("/dir/file", libc::O_RDONLY);
        let at = SCRATCH;
        let entries: [(i32, i16); 3] = [
            (fd as i32, libc::POLLIN),
            (55, libc::POLLIN),
            (-1, libc::POLLIN),
        ];
        for (i, (f, ev)) in entries.iter().enumerate() {
            g.um().write(at + i as u64 * 8, &f.to_le_bytes()).unwrap();
            g.um()
                .write(at + i as u64 * 8 + 4, &ev.to_le_bytes())
                .unwrap();
            g.um()
                .write(at + i as u64 * 8 + 6, &0x7fffi16.to_le_bytes())
                .unwrap();
        }
        assert_eq!(g.call(Sysno::poll, &[at, 3, 1000]), 2);
        let revents = |g: &Guest, i: u64| {
            let b = g.um().read_vec(at + i * 8 + 6, 2).unwrap();
            i16::from_le_bytes([b[0], b[1]])
        };
        assert_eq!(revents(&g, 0) & libc::POLLIN, libc::POLLIN);
        assert_eq!(revents(&g, 1), libc::POLLNVAL);
        assert_eq!(revents(&g, 2), 0);
        assert_eq!(g.call(Sysno::poll, &[0x10, 1, 0]), err(Errno::EFAULT));
    }

    #[test]
    fn epoll_reports_the_guests_event_data_for_ready_fds() {
        let mut g = Guest::new();
        let ep = g.call(Sysno::epoll_create1, &[libc::EPOLL_CLOEXEC as u64]) as u64;
        let efd = g.call(Sysno::eventfd2, &[0, libc::EFD_NONBLOCK as u64]) as u64;
        let ev = SCRATCH;
        g.um().write_u32(ev, libc::EPOLLIN as u32).unwrap();
        g.um().write_u64(ev + 4, 0xfeed_beef_1234).unwrap();
        let add = libc::EPOLL_CTL_ADD as u64;
        assert_eq!(g.call(Sysno::epoll_ctl, &[ep, add, efd, ev]), 0);
        let out = SCRATCH + 0x100;
        assert_eq!(
            g.call(Sysno::epoll_wait, &[ep, out, 8, 0]),
            0,
            "nothing written yet"
        );
        g.um().write_u64(SCRATCH + 0x200, 1).unwrap();
        assert_eq!(g.call(Sysno::write, &[efd, SCRATCH + 0x200, 8]), 8);
        assert_eq!(g.call(Sysno::epoll_pwait, &[ep, out, 8, 1000, 0, 8]), 1);
        assert_eq!(g.um().read_u32(out).unwrap(), libc::EPOLLIN as u32);
        assert_eq!(g.um().read_u64(out + 4).unwrap(), 0xfeed_beef_1234);
        assert_eq!(
            g.call(Sysno::epoll_wait, &[ep, out, 0, 0]),
            err(Errno::EINVAL)
        );
        assert_eq!(
            g.call(Sysno::epoll_wait, &[ep, 0x10, 8, 0]),
            err(Errno::EFAULT)
        );
        assert_eq!(
            g.call(Sysno::epoll_ctl, &[ep, add, 77, ev]),
            err(Errno::EBADF)
        );
        assert_eq!(g.call(Sysno::eventfd2, &[0, 2]), err(Errno::EINVAL));
    }

    #[test]
    fn select_reports_readable_and_writable_descriptors() {
        let mut g = Guest::new();
        assert_eq!(g.call(Sysno::pipe2, &[SCRATCH, 0]), 0);
        let (r, w) = (
            g.um().read_u32(SCRATCH).unwrap() as u64,
            g.um().read_u32(SCRATCH + 4).unwrap() as u64,
        );
        let (rset, wset, tv) = (SCRATCH + 0x100, SCRATCH + 0x200, SCRATCH + 0x300);
        let put_sets = |g: &Guest| {
            g.um().write_u64(rset, 1 << r).unwrap();
            g.um().write_u64(wset, 1 << w).unwrap();
            g.um().zero(tv, 16).unwrap();
        };
        put_sets(&g);
        // Empty pipe: only the write end is ready.
        assert_eq!(g.call(Sysno::select, &[w + 1, rset, wset, 0, tv]), 1);
        assert_eq!(g.um().read_u64(rset).unwrap(), 0);
        assert_eq!(g.um().read_u64(wset).unwrap(), 1 << w);
        g.um().write(SCRATCH + 0x400, b"x").unwrap();
        assert_eq!(g.call(Sysno::write, &[w, SCRATCH + 0x400, 1]), 1);
        put_sets(&g);
        assert_eq!(g.call(Sysno::pselect6, &[w + 1, rset, wset, 0, tv, 0]), 2);
        assert_eq!(g.um().read_u64(rset).unwrap(), 1 << r);
        g.um().write_u64(rset, 1 << 40).unwrap();
        assert_eq!(
            g.call(Sysno::select, &[41, rset, 0, 0, tv]),
            err(Errno::EBADF)
        );
        assert_eq!(
            g.call(Sysno::select, &[5000, rset, 0, 0, tv]),
            err(Errno::EINVAL)
        );
        assert_eq!(
            g.call(Sysno::select, &[w + 1, 0x10, 0, 0, tv]),
            err(Errno::EFAULT)
        );
    }
}
