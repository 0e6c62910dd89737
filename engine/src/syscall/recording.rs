//! A syscall seam that records each call instead of making it, and can fail the k-th
//! call, so tests check the order, flags and rollback of a container's setup without root.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MntFlags;
use nix::sched::CloneFlags;

use super::{MountArgs, Syscall, SyscallError};

/// One recorded call with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// mount(2).
    Mount(MountArgs),
    /// umount2(2).
    Umount(PathBuf, MntFlags),
    /// pivot_root(2).
    PivotRoot(PathBuf, PathBuf),
    /// chdir(2).
    Chdir(PathBuf),
    /// unshare(2).
    Unshare(CloneFlags),
    /// sethostname(2).
    Sethostname(String),
    /// mknod(2) of a character device.
    Mknod(PathBuf, u32, u64, u64),
    /// symlink(2).
    Symlink(PathBuf, PathBuf),
    /// mkdir -p.
    MkdirAll(PathBuf),
    /// Create an empty file.
    Touch(PathBuf),
    /// Set a network interface up.
    LinkUp(String),
}

impl Call {
    /// The mount's target and flags, when this is a mount.
    pub fn as_mount(&self) -> Option<&MountArgs> {
        match self {
            Call::Mount(args) => Some(args),
            _ => None,
        }
    }
}

/// Records calls; fails the call numbered `fail_at` (0-based) with `EPERM`.
#[derive(Debug, Default)]
pub struct RecordingSyscall {
    calls: RefCell<Vec<Call>>,
    fail_at: Option<usize>,
}

impl RecordingSyscall {
    /// A recorder that never fails.
    pub fn new() -> Self {
        Self::default()
    }

    /// A recorder whose `k`-th call (0-based) fails with `EPERM`.
    pub fn failing_at(k: usize) -> Self {
        RecordingSyscall {
            calls: RefCell::default(),
            fail_at: Some(k),
        }
    }

    /// The calls made so far, in order (including a failed one, last).
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    fn record(&self, name: &'static str, call: Call) -> Result<(), SyscallError> {
        let mut calls = self.calls.borrow_mut();
        calls.push(call);
        if Some(calls.len() - 1) == self.fail_at {
            return Err(SyscallError::new(name, "injected", Errno::EPERM));
        }
        Ok(())
    }
}

impl Syscall for RecordingSyscall {
    fn mount(&self, args: &MountArgs) -> Result<(), SyscallError> {
        self.record("mount", Call::Mount(args.clone()))
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> Result<(), SyscallError> {
        self.record("umount", Call::Umount(target.into(), flags))
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<(), SyscallError> {
        self.record(
            "pivot_root",
            Call::PivotRoot(new_root.into(), put_old.into()),
        )
    }
    fn chdir(&self, path: &Path) -> Result<(), SyscallError> {
        self.record("chdir", Call::Chdir(path.into()))
    }
    fn unshare(&self, flags: CloneFlags) -> Result<(), SyscallError> {
        self.record("unshare", Call::Unshare(flags))
    }
    fn sethostname(&self, name: &str) -> Result<(), SyscallError> {
        self.record("sethostname", Call::Sethostname(name.into()))
    }
    fn mknod_char(
        &self,
        path: &Path,
        perm: u32,
        major: u64,
        minor: u64,
    ) -> Result<(), SyscallError> {
        self.record("mknod", Call::Mknod(path.into(), perm, major, minor))
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<(), SyscallError> {
        self.record("symlink", Call::Symlink(target.into(), link.into()))
    }
    fn mkdir_all(&self, path: &Path) -> Result<(), SyscallError> {
        self.record("mkdir", Call::MkdirAll(path.into()))
    }
    fn touch(&self, path: &Path) -> Result<(), SyscallError> {
        self.record("create", Call::Touch(path.into()))
    }
    fn set_link_up(&self, name: &str) -> Result<(), SyscallError> {
        self.record("set_link_up", Call::LinkUp(name.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_and_fails_the_chosen_call() {
        let sys = RecordingSyscall::failing_at(1);
        sys.chdir(Path::new("/a")).unwrap();
        let err = sys.sethostname("box").unwrap_err();
        assert_eq!(err.errno, Errno::EPERM);
        assert_eq!(
            sys.calls(),
            vec![Call::Chdir("/a".into()), Call::Sethostname("box".into())]
        );
    }
}
