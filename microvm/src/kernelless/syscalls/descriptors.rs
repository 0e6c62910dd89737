//! Descriptor operations that work on the guest fd table: `dup`, `dup2`, `dup3`,
//! `fcntl`, `pipe`, `pipe2`.

use std::sync::Arc;

use syscalls::{Errno, Sysno};

use super::fd_table::HostFile;
use super::host;
use super::user_memory::UserMemory;
use super::{SysResult, SyscallHandler};

impl SyscallHandler {
    /// `dup(2)`: the lowest free guest fd, sharing the open file.
    pub(super) fn dup(&mut self, fd: u64) -> SysResult {
        let file = self.fds.get(fd)?.file.clone();
        self.fds.insert_from(0, file, false).map(u64::from)
    }

    /// `dup2(2)` (`legacy`) and `dup3(2)`.
    pub(super) fn dup3(&mut self, old: u64, new: u64, flags: u64, legacy: bool) -> SysResult {
        let file = self.fds.get(old)?.file.clone();
        if flags & !(libc::O_CLOEXEC as u64) != 0 {
            return Err(Errno::EINVAL);
        }
        if old == new {
            // dup2 on the same fd is a validity check; dup3 refuses it.
            return if legacy { Ok(new) } else { Err(Errno::EINVAL) };
        }
        let cloexec = flags != 0;
        self.fds.insert_at(new, file, cloexec).map(u64::from)
    }

    /// `fcntl(2)`: descriptor flags, status flags and duplication. Locks and other
    /// commands answer `EINVAL`.
    pub(super) fn fcntl(&mut self, fd: u64, cmd: u64, arg: u64) -> SysResult {
        let entry = self.fds.get(fd)?.clone();
        match cmd as i32 {
            libc::F_GETFD => Ok(if entry.cloexec {
                libc::FD_CLOEXEC as u64
            } else {
                0
            }),
            libc::F_SETFD => {
                self.fds
                    .set_cloexec(fd, arg & libc::FD_CLOEXEC as u64 != 0)?;
                Ok(0)
            }
            libc::F_GETFL | libc::F_SETFL => {
                let args = [entry.file.raw() as u64, cmd, arg, 0];
                host::plain(Sysno::fcntl, args).map(|v| v as u64)
            }
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
                let min = u32::try_from(arg).map_err(|_| Errno::EINVAL)?;
                if min >= super::fd_table::MAX_FDS {
                    return Err(Errno::EINVAL);
                }
                let cloexec = cmd as i32 == libc::F_DUPFD_CLOEXEC;
                self.fds
                    .insert_from(min, entry.file, cloexec)
                    .map(u64::from)
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// `pipe(2)` and `pipe2(2)`: a host pipe; the two guest fds are written as ints.
    pub(super) fn pipe2(&mut self, um: &UserMemory<'_>, out: u64, flags: u64) -> SysResult {
        let allowed = (libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_DIRECT) as u64;
        if flags & !allowed != 0 {
            return Err(Errno::EINVAL);
        }
        um.check(out, 8)?;
        let (r, w) = host::pipe2(flags as i32 & !libc::O_CLOEXEC)?;
        let cloexec = flags & libc::O_CLOEXEC as u64 != 0;
        let rfd = self
            .fds
            .insert_from(0, Arc::new(HostFile::Owned(r)), cloexec)?;
        let wfd = match self
            .fds
            .insert_from(0, Arc::new(HostFile::Owned(w)), cloexec)
        {
            Ok(fd) => fd,
            Err(e) => {
                self.fds.remove(rfd.into())?;
                return Err(e);
            }
        };
        let mut pair = [0u8; 8];
        pair[..4].copy_from_slice(&rfd.to_le_bytes());
        pair[4..].copy_from_slice(&wfd.to_le_bytes());
        um.write(out, &pair)?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use crate::kernelless::syscalls::tests::{err, Guest, SCRATCH};
    use syscalls::{Errno, Sysno};

    fn pipe(g: &mut Guest) -> (u64, u64) {
        assert_eq!(g.call(Sysno::pipe2, &[SCRATCH, libc::O_CLOEXEC as u64]), 0);
        (
            g.um().read_u32(SCRATCH).unwrap().into(),
            g.um().read_u32(SCRATCH + 4).unwrap().into(),
        )
    }

    #[test]
    fn pipes_carry_bytes_between_guest_fds() {
        let mut g = Guest::new();
        let (r, w) = pipe(&mut g);
        assert_eq!((r, w), (3, 4));
        g.um().write(SCRATCH + 0x100, b"through the pipe").unwrap();
        assert_eq!(g.call(Sysno::write, &[w, SCRATCH + 0x100, 16]), 16);
        assert_eq!(g.call(Sysno::read, &[r, SCRATCH + 0x200, 64]), 16);
        assert_eq!(
            g.um().read_vec(SCRATCH + 0x200, 16).unwrap(),
            b"through the pipe"
        );
        assert_eq!(
            g.call(Sysno::fcntl, &[r, libc::F_GETFD as u64]),
            libc::FD_CLOEXEC as i64
        );
        assert_eq!(g.call(Sysno::close, &[w]), 0);
        assert_eq!(
            g.call(Sysno::read, &[r, SCRATCH + 0x200, 64]),
            0,
            "EOF once the writer closed"
        );
        assert_eq!(g.call(Sysno::pipe2, &[0x10, 0]), err(Errno::EFAULT));
        assert_eq!(g.call(Sysno::pipe2, &[SCRATCH, 0x1]), err(Errno::EINVAL));
    }

    #[test]
    fn dup_shares_the_open_file_and_its_offset() {
        let mut g = Guest::new();
        let p = g.put_str(SCRATCH, "/dir/file");
        let fd = g.call(Sysno::open, &[p, 0]) as u64;
        let d = g.call(Sysno::dup, &[fd]) as u64;
        assert_eq!(d, fd + 1);
        assert_eq!(g.call(Sysno::read, &[fd, SCRATCH, 2]), 2);
        assert_eq!(
            g.call(Sysno::read, &[d, SCRATCH, 10]),
            3,
            "offset is shared"
        );
        assert_eq!(g.call(Sysno::close, &[fd]), 0);
        assert_eq!(
            g.call(Sysno::lseek, &[d, 0, 0]),
            0,
            "the dup survives close"
        );
        assert_eq!(g.call(Sysno::dup2, &[d, 9]), 9);
        assert_eq!(g.call(Sysno::dup2, &[d, d]), d as i64);
        assert_eq!(g.call(Sysno::dup3, &[d, d, 0]), err(Errno::EINVAL));
        assert_eq!(g.call(Sysno::dup3, &[d, 9, libc::O_CLOEXEC as u64]), 9);
        assert_eq!(
            g.call(Sysno::fcntl, &[9, libc::F_GETFD as u64]),
            libc::FD_CLOEXEC as i64
        );
        assert_eq!(g.call(Sysno::fcntl, &[d, libc::F_DUPFD as u64, 20]), 20);
        assert_eq!(g.call(Sysno::dup, &[50]), err(Errno::EBADF));
        assert_eq!(g.call(Sysno::dup2, &[d, 5000]), err(Errno::EBADF));
        assert_eq!(
            g.call(Sysno::fcntl, &[d, libc::F_SETLK as u64, SCRATCH]),
            err(Errno::EINVAL)
        );
    }

    #[test]
    fn closing_guest_stdout_leaves_the_monitors_open() {
        let mut g = Guest::new();
        assert_eq!(g.call(Sysno::close, &[1]), 0);
        assert_eq!(g.call(Sysno::close, &[1]), err(Errno::EBADF));
        // SAFETY: F_GETFD only inspects the descriptor number.
        assert!(unsafe { libc::fcntl(1, libc::F_GETFD) } >= 0);
    }
}
