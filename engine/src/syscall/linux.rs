//! The real implementation of the syscall seam, through `nix`.

use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::{makedev, Mode, SFlag};

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
