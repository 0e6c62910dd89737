//! The seam over the privileged calls that build a container's world (mount, pivot_root,
//! unshare, sethostname, mknod, ...): `linux` does them, `recording` records them so the
//! order and flags of a container's setup are unit-tested without root.

pub mod linux;
pub mod recording;

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

pub use linux::LinuxSyscall;
pub use recording::{Call, RecordingSyscall};

/// A privileged call that failed: which call, on what, and the errno.
#[derive(Debug, thiserror::Error)]
#[error("{call} {target}: {errno}")]
pub struct SyscallError {
    /// The call, e.g. `mount` or `pivot_root`.
    pub call: &'static str,
    /// What it acted on (a path, a hostname, flags).
    pub target: String,
    /// The kernel's answer.
    pub errno: Errno,
}

impl SyscallError {
    /// Builds an error for `call` on `target`.
    pub fn new(call: &'static str, target: impl Into<String>, errno: Errno) -> Self {
        SyscallError {
            call,
            target: target.into(),
            errno,
        }
    }
}

/// What a mount call asks for, in the argument order of mount(2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountArgs {
    /// Source (device, directory or the file system's name); `None` for remounts.
    pub source: Option<PathBuf>,
    /// Where it is mounted.
    pub target: PathBuf,
    /// File system type; `None` for binds and propagation changes.
    pub fstype: Option<String>,
    /// MS_* flags.
    pub flags: MsFlags,
    /// File-system-specific options (e.g. overlay's lowerdir=...).
    pub data: Option<String>,
}

/// The privileged calls a container's setup makes, one method per call.
pub trait Syscall {
    /// mount(2).
    fn mount(&self, args: &MountArgs) -> Result<(), SyscallError>;
    /// umount2(2).
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), SyscallError>;
    /// pivot_root(2).
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), SyscallError>;
    /// chdir(2).
    fn chdir(&self, path: &Path) -> Result<(), SyscallError>;
    /// unshare(2).
    fn unshare(&self, flags: CloneFlags) -> Result<(), SyscallError>;
    /// sethostname(2).
    fn sethostname(&self, name: &str) -> Result<(), SyscallError>;
    /// mknod(2) of a character device with mode `perm`.
    fn mknod_char(
        &self,
        path: &Path,
        perm: u32,
        major: u64,
        minor: u64,
    ) -> Result<(), SyscallError>;
    /// symlink(2): `link` points at `target`.
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), SyscallError>;
    /// `mkdir -p`.
    fn mkdir_all(&self, path: &Path) -> Result<(), SyscallError>;
    /// Creates an empty file (and its parents) to bind a file onto.
    fn touch(&self, path: &Path) -> Result<(), SyscallError>;
    /// Sets the network interface `name` up (ioctl SIOCSIFFLAGS with IFF_UP).
    fn set_link_up(&self, name: &str) -> Result<(), SyscallError>;
}
