//! The real implementation of the syscall seam, through `nix`.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::socket::{AddressFamily, SockFlag, SockType};
use nix::sys::stat::{makedev, Mode, SFlag};
use std::os::fd::{AsRawFd, OwnedFd};

use super::{MountArgs, Syscall, SyscallError};

/// Makes each call on the running kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscall;

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

fn io_errno(err: &std::io::Error) -> Errno {
    Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO))
}

impl Syscall for LinuxSyscall {
    fn mount(&self, a: &MountArgs) -> Result<(), SyscallError> {
        nix::mount::mount(
            a.source.as_deref(),
            &a.target,
            a.fstype.as_deref(),
            a.flags,
            a.data.as_deref(),
        )
        .map_err(|e| SyscallError::new("mount", path_str(&a.target), e))
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), SyscallError> {
        nix::mount::umount2(target, flags)
            .map_err(|e| SyscallError::new("umount", path_str(target), e))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), SyscallError> {
        nix::unistd::pivot_root(new_root, put_old)
            .map_err(|e| SyscallError::new("pivot_root", path_str(new_root), e))
    }

    fn chdir(&self, path: &Path) -> Result<(), SyscallError> {
        nix::unistd::chdir(path).map_err(|e| SyscallError::new("chdir", path_str(path), e))
    }

    fn unshare(&self, flags: CloneFlags) -> Result<(), SyscallError> {
        nix::sched::unshare(flags)
            .map_err(|e| SyscallError::new("unshare", format!("{flags:?}"), e))
    }

    fn sethostname(&self, name: &str) -> Result<(), SyscallError> {
        nix::unistd::sethostname(name).map_err(|e| SyscallError::new("sethostname", name, e))
    }

    fn mknod_char(
        &self,
        path: &Path,
        perm: u32,
        major: u64,
        minor: u64,
    ) -> Result<(), SyscallError> {
        let mode = Mode::from_bits_truncate(perm);
        nix::sys::stat::mknod(path, SFlag::S_IFCHR, mode, makedev(major, minor))
            .map_err(|e| SyscallError::new("mknod", path_str(path), e))?;
        // mknod applies the umask; the spec's modes are exact.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            path,
            mode,
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| SyscallError::new("chmod", path_str(path), e))
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<(), SyscallError> {
        match std::os::unix::fs::symlink(target, link) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                Err(SyscallError::new("symlink", path_str(link), io_errno(&e)))
            }
            _ => Ok(()),
        }
    }

    fn mkdir_all(&self, path: &Path) -> Result<(), SyscallError> {
        std::fs::create_dir_all(path)
            .map_err(|e| SyscallError::new("mkdir", path_str(path), io_errno(&e)))
    }

    fn touch(&self, path: &Path) -> Result<(), SyscallError> {
        if let Some(parent) = path.parent() {
            self.mkdir_all(parent)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| SyscallError::new("create", path_str(path), io_errno(&e)))
    }

    fn set_link_up(&self, name: &str) -> Result<(), SyscallError> {
        let err = |e| SyscallError::new("setting link up", name, e);
        let mut req = ifreq_named(name).ok_or(err(Errno::EINVAL))?;
        let sock = nix::sys::socket::socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(err)?;
        if_flags(&sock, libc::SIOCGIFFLAGS, &mut req).map_err(err)?;
        // SAFETY: SIOCGIFFLAGS succeeded, so the kernel filled the union's `ifru_flags`.
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        if_flags(&sock, libc::SIOCSIFFLAGS, &mut req).map_err(err)
    }
}

/// Applies `flags` to `path` with MS_* propagation flags only (no source, no type).
pub fn propagation(path: &Path, flags: MsFlags) -> MountArgs {
    MountArgs {
        source: None,
        target: path.to_path_buf(),
        fstype: None,
        flags,
        data: None,
    }
}

/// An `ifreq` naming interface `name`, or `None` when the name does not fit.
fn ifreq_named(name: &str) -> Option<libc::ifreq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return None;
    }
    // SAFETY: ifreq is a plain C struct (a char array and a union of integers and
    // addresses) for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Some(req)
}

/// ioctl `request` (SIOCGIFFLAGS or SIOCSIFFLAGS) on `sock` with `req`.
fn if_flags(sock: &OwnedFd, request: libc::c_ulong, req: &mut libc::ifreq) -> Result<(), Errno> {
    // SAFETY: both requests read and write exactly one `struct ifreq`, which `req` is and
    // which outlives the call; its name is NUL-terminated (see `ifreq_named`).
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), request, req as *mut libc::ifreq) };
    Errno::result(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_that_do_not_fit_an_ifreq_are_refused() {
        let req = ifreq_named("lo").unwrap();
        assert_eq!(
            req.ifr_name[..3],
            [b'l' as libc::c_char, b'o' as libc::c_char, 0]
        );
        for bad in ["", "a-name-of-16-chr", "l\0o"] {
            assert!(ifreq_named(bad).is_none(), "{bad:?}");
        }
        let err = LinuxSyscall.set_link_up("a-name-of-16-chr").unwrap_err();
        assert_eq!(err.errno, Errno::EINVAL);
    }
}
