//! Reading and writing: `read`/`write` and their vector and positioned forms,
//! `sendfile`, `ioctl`. Data moves between the host file and guest memory in place,
//! through host iovecs over checked guest memory, so no size cap or bounce copy is needed.

use std::time::Instant;

use syscalls::Errno;

use super::host;
use super::user_memory::UserMemory;
use super::{SysResult, SyscallHandler};

/// Linux's cap on one transfer (`MAX_RW_COUNT`).
const MAX_RW: u64 = 0x7fff_f000;
/// Linux's cap on iovecs per call (`UIO_MAXIOV`).
const MAX_IOV: u64 = 1024;

/// Watches guest writes to fd 1 for the first line that reads `READY`.
#[derive(Debug, Default)]
pub struct ReadyDetector {
    line: Vec<u8>,
    overlong: bool,
    at: Option<Instant>,
}

impl ReadyDetector {
    /// When the line was first seen.
    pub fn at(&self) -> Option<Instant> {
        self.at
    }

    /// Whether the detector still needs to see output.
    fn watching(&self) -> bool {
        self.at.is_none()
    }

    /// Feeds bytes the guest wrote to fd 1.
    pub fn feed(&mut self, bytes: &[u8]) {
        const READY: &[u8] = b"READY";
        for &b in bytes {
            if b == b'\n' {
                let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
                if !self.overlong && line == READY {
                    self.at = Some(Instant::now());
                    return;
                }
                self.line.clear();
                self.overlong = false;
            } else if self.line.len() <= READY.len() {
                self.line.push(b);
            } else {
                self.overlong = true;
            }
        }
    }
}

/// Reads a guest array of `struct iovec` as (address, length) pairs.
pub(super) fn guest_iovecs(
    um: &UserMemory<'_>,
    addr: u64,
    count: u64,
) -> Result<Vec<(u64, u64)>, Errno> {
    if count > MAX_IOV {
        return Err(Errno::EINVAL);
    }
    let raw = um.read_vec(addr, count as usize * 16)?;
    let mut total: u64 = 0;
    let mut out = Vec::with_capacity(count as usize);
    for chunk in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes"));
        if len > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        // Linux truncates the transfer at MAX_RW_COUNT rather than failing.
        let len = len.min(MAX_RW - total);
        total += len;
        out.push((base, len));
    }
    Ok(out)
}

/// Host iovecs covering a list of guest (address, length) buffers.
pub(super) fn host_iovecs(
    um: &UserMemory<'_>,
    bufs: &[(u64, u64)],
) -> Result<Vec<libc::iovec>, Errno> {
    let mut iov = Vec::with_capacity(bufs.len());
    for &(base, len) in bufs.iter().filter(|(_, len)| *len > 0) {
        iov.extend(um.host_iovecs(base, len as usize)?);
    }
    Ok(iov)
}

impl SyscallHandler {
    /// `read(2)`.
    pub(super) fn read(&mut self, um: &UserMemory<'_>, fd: u64, buf: u64, len: u64) -> SysResult {
        self.readv_bufs(um, fd, &[(buf, len.min(MAX_RW))], None)
    }

    /// `write(2)`.
    pub(super) fn write(&mut self, um: &UserMemory<'_>, fd: u64, buf: u64, len: u64) -> SysResult {
        self.writev_bufs(um, fd, &[(buf, len.min(MAX_RW))], None)
    }

    /// `pread64(2)`.
    pub(super) fn pread(
        &mut self,
        um: &UserMemory<'_>,
        fd: u64,
        buf: u64,
        len: u64,
        off: u64,
    ) -> SysResult {
        self.readv_bufs(um, fd, &[(buf, len.min(MAX_RW))], Some(off))
    }

    /// `pwrite64(2)`.
    pub(super) fn pwrite(
        &mut self,
        um: &UserMemory<'_>,
        fd: u64,
        buf: u64,
        len: u64,
        off: u64,
    ) -> SysResult {
        self.writev_bufs(um, fd, &[(buf, len.min(MAX_RW))], Some(off))
    }

    /// `readv(2)` and `preadv(2)`.
    pub(super) fn readv(
        &mut self,
        um: &UserMemory<'_>,
        fd: u64,
        iov: u64,
        n: u64,
        off: Option<u64>,
    ) -> SysResult {
        self.fds.host_fd(fd)?;
        let bufs = guest_iovecs(um, iov, n)?;
        self.readv_bufs(um, fd, &bufs, off)
    }

    /// `writev(2)` and `pwritev(2)`.
    pub(super) fn writev(
        &mut self,
        um: &UserMemory<'_>,
        fd: u64,
        iov: u64,
        n: u64,
        off: Option<u64>,
    ) -> SysResult {
        self.fds.host_fd(fd)?;
        let bufs = guest_iovecs(um, iov, n)?;
        self.writev_bufs(um, fd, &bufs, off)
    }

    fn readv_bufs(
        &mut self,
        um: &UserMemory<'_>,
        fd: u64,
        bufs: &[(u64, u64)],
        off: Option<u64>,
    ) -> SysResult {
        let host = self.fds.host_fd(fd)?;
        let iov = host_iovecs(um, bufs)?;
        let n = match off {
            Some(off) => host::preadv(host, &iov, check_offset(off)?)?,
            None => host::readv(host, &iov)?,
        };
        Ok(n as u64)
    }

    fn writev_bufs(
        &mut self,
        um: &UserMemory<'_>,
        fd: u64,
        bufs: &[(u64, u64)],
        off: Option<u64>,
    ) -> SysResult {
        let host = self.fds.host_fd(fd)?;
        let iov = host_iovecs(um, bufs)?;
        let n = match off {
            Some(off) => host::pwritev(host, &iov, check_offset(off)?),
            None => host::writev(host, &iov),
        };
        let n = self.after_write(n)? as usize;
        if fd == 1 && self.ready.watching() {
            self.watch_ready(um, bufs, n);
        }
        Ok(n as u64)
    }

    /// Feeds the first `n` written bytes of `bufs` to the READY detector.
    fn watch_ready(&mut self, um: &UserMemory<'_>, bufs: &[(u64, u64)], mut n: usize) {
        for &(base, len) in bufs {
            let take = (len as usize).min(n);
            if let Ok(bytes) = um.read_vec(base, take) {
                self.ready.feed(&bytes);
            }
            n -= take;
        }
    }

    /// `sendfile(2)` between two guest fds: host to host, the data never enters the
    /// guest. The optional offset is read from and written back to the guest.
    pub(super) fn sendfile(
        &mut self,
        um: &UserMemory<'_>,
        out: u64,
        input: u64,
        off: u64,
        count: u64,
    ) -> SysResult {
        let (out, input) = (self.fds.host_fd(out)?, self.fds.host_fd(input)?);
        let count = count.min(MAX_RW) as usize;
        if off == 0 {
            return self.after_write(host::sendfile(out, input, None, count));
        }
        let mut offset = um.read_u64(off)? as i64;
        let sent = host::sendfile(out, input, Some(&mut offset), count);
        um.write_u64(off, offset as u64)?;
        self.after_write(sent)
    }

    /// A write to a pipe or socket nobody reads raises SIGPIPE under Linux.
    fn after_write(&mut self, written: Result<usize, Errno>) -> SysResult {
        if written == Err(Errno::EPIPE) {
            self.kill(0, libc::SIGPIPE as u64)?;
        }
        written.map(|n| n as u64)
    }

    /// `ioctl(2)`: terminals are not emulated (`TCGETS` says "not a tty"); `FIONBIO`,
    /// `FIONREAD`, `FIOCLEX` and `FIONCLEX` work on any descriptor.
    pub(super) fn ioctl(&mut self, um: &UserMemory<'_>, fd: u64, req: u64, arg: u64) -> SysResult {
        let host = self.fds.host_fd(fd)?;
        match req {
            libc::FIONBIO => {
                let on = um.read_u32(arg)? != 0;
                host::set_nonblocking(host, on).map(|_| 0)
            }
            libc::FIONREAD => {
                let n = host::bytes_readable(host)?;
                um.write_u32(arg, n as u32).map(|()| 0)
            }
            libc::FIOCLEX => self.fds.set_cloexec(fd, true).map(|()| 0),
            libc::FIONCLEX => self.fds.set_cloexec(fd, false).map(|()| 0),
            _ => Err(Errno::ENOTTY),
        }
    }
}

fn check_offset(off: u64) -> Result<u64, Errno> {
    if (off as i64) < 0 {
        Err(Errno::EINVAL)
    } else {
        Ok(off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernelless::syscalls::tests::{err, Guest, SCRATCH};
    use syscalls::Sysno;

    /// Writes guest iovecs for `bufs` at `at`.
    fn put_iovecs(g: &Guest, at: u64, bufs: &[(u64, u64)]) {
        for (i, (base, len)) in bufs.iter().enumerate() {
            g.um().write_u64(at + i as u64 * 16, *base).unwrap();
            g.um().write_u64(at + i as u64 * 16 + 8, *len).unwrap();
        }
    }

    #[test]
    fn read_and_write_move_bytes_between_files_and_guest_memory() {
        let mut g = Guest::new();
        let fd = g.open("/dir/file", libc::O_RDONLY);
        assert_eq!(g.call(Sysno::read, &[fd, SCRATCH, 100]), 5);
        assert_eq!(g.um().read_vec(SCRATCH, 5).unwrap(), b"hello");
        assert_eq!(g.call(Sysno::read, &[fd, SCRATCH, 100]), 0, "end of file");
        assert_eq!(g.call(Sysno::pread64, &[fd, SCRATCH, 3, 2]), 3);
        assert_eq!(g.um().read_vec(SCRATCH, 3).unwrap(), b"llo");
        let out = g.open("/new", libc::O_WRONLY | libc::O_CREAT);
        g.um().write(SCRATCH, b"written").unwrap();
        assert_eq!(g.call(Sysno::write, &[out, SCRATCH, 7]), 7);
        assert_eq!(std::fs::read(g.root.join("new")).unwrap(), b"written");
    }

    #[test]
    fn bad_buffers_and_fds_fail_cleanly() {
        let mut g = Guest::new();
        let fd = g.open("/dir/file", libc::O_RDONLY);
        assert_eq!(g.call(Sysno::read, &[fd, 0, 10]), err(Errno::EFAULT));
        assert_eq!(g.call(Sysno::read, &[fd, 16 << 20, 10]), err(Errno::EFAULT));
        assert_eq!(
            g.call(Sysno::read, &[fd, (16 << 20) - 4, 10]),
            err(Errno::EFAULT)
        );
        assert_eq!(
            g.call(Sysno::write, &[1, u64::MAX - 2, 10]),
            err(Errno::EFAULT)
        );
        assert_eq!(g.call(Sysno::read, &[99, SCRATCH, 10]), err(Errno::EBADF));
        assert_eq!(
            g.call(Sysno::write, &[fd, SCRATCH, 1]),
            err(Errno::EBADF),
            "read-only"
        );
        assert_eq!(
            g.call(Sysno::pread64, &[fd, SCRATCH, 1, u64::MAX]),
            err(Errno::EINVAL)
        );
    }

    #[test]
    fn readv_scatters_and_writev_gathers() {
        let mut g = Guest::new();
        let out = g.open("/v", libc::O_RDWR | libc::O_CREAT);
        g.um().write(SCRATCH, b"abc").unwrap();
        g.um().write(SCRATCH + 0x100, b"defgh").unwrap();
        let iov = SCRATCH + 0x1000;
        put_iovecs(&g, iov, &[(SCRATCH, 3), (0, 0), (SCRATCH + 0x100, 5)]);
        assert_eq!(g.call(Sysno::writev, &[out, iov, 3]), 8);
        assert_eq!(std::fs::read(g.root.join("v")).unwrap(), b"abcdefgh");
        put_iovecs(&g, iov, &[(SCRATCH + 0x200, 2), (SCRATCH + 0x300, 10)]);
        assert_eq!(g.call(Sysno::preadv, &[out, iov, 2, 0]), 8);
        assert_eq!(g.um().read_vec(SCRATCH + 0x200, 2).unwrap(), b"ab");
        assert_eq!(g.um().read_vec(SCRATCH + 0x300, 6).unwrap(), b"cdefgh");
        put_iovecs(&g, iov, &[(SCRATCH, 3), (0x10, 5)]);
        assert_eq!(g.call(Sysno::writev, &[out, iov, 2]), err(Errno::EFAULT));
        assert_eq!(g.call(Sysno::writev, &[out, iov, 5000]), err(Errno::EINVAL));
        assert_eq!(g.call(Sysno::writev, &[out, 0x20, 1]), err(Errno::EFAULT));
    }

    #[test]
    fn ready_line_is_detected_across_writes() {
        let mut d = ReadyDetector::default();
        d.feed(b"RESULT {}\nNOT READY\nREA");
        assert!(d.at().is_none());
        d.feed(b"DY");
        assert!(d.at().is_none(), "no newline yet");
        d.feed(b"\r\n");
        assert!(d.at().is_some());
        let mut d = ReadyDetector::default();
        d.feed(b"READYREADY\n");
        assert!(d.at().is_none());
    }

    #[test]
    fn ready_written_to_fd_1_is_timestamped() {
        let mut g = Guest::new();
        // Point guest fd 1 at a file so the test's stdout stays clean.
        let file = g.open("/out", libc::O_WRONLY | libc::O_CREAT);
        assert_eq!(g.call(Sysno::dup2, &[file, 1]), 1);
        g.um().write(SCRATCH, b"READY\n").unwrap();
        assert!(g.handler.ready_at().is_none());
        g.call(Sysno::write, &[2, SCRATCH, 0]);
        g.call(Sysno::write, &[1, SCRATCH, 6]);
        assert!(g.handler.ready_at().is_some());
        assert_eq!(std::fs::read(g.root.join("out")).unwrap(), b"READY\n");
    }

    #[test]
    fn tcgets_says_not_a_tty_and_fionbio_sets_nonblocking() {
        let mut g = Guest::new();
        let fd = g.open("/dir/file", libc::O_RDONLY);
        assert_eq!(
            g.call(Sysno::ioctl, &[fd, libc::TCGETS, SCRATCH]),
            err(Errno::ENOTTY)
        );
        assert_eq!(
            g.call(Sysno::ioctl, &[77, libc::TCGETS, SCRATCH]),
            err(Errno::EBADF)
        );
        g.um().write_u32(SCRATCH, 1).unwrap();
        assert_eq!(g.call(Sysno::ioctl, &[fd, libc::FIONBIO, SCRATCH]), 0);
        let fl = g.call(Sysno::fcntl, &[fd, libc::F_GETFL as u64]);
        assert_ne!(fl & libc::O_NONBLOCK as i64, 0);
        assert_eq!(
            g.call(Sysno::ioctl, &[fd, libc::FIONBIO, 0]),
            err(Errno::EFAULT)
        );
    }
}
