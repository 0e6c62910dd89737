//! The default rootfs of `microvm exec`: an empty directory `isolab-rootfs-<pid>-*`
//! in `$TMPDIR` that cannot leak. Its owner holds an exclusive `flock` on it for its
//! whole life and removes it on drop; the kernel drops the lock when the owner dies,
//! even by SIGKILL, so every later monitor removes the directories nobody holds.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The name prefix shared by every default rootfs.
pub const PREFIX: &str = "isolab-rootfs-";

/// How often creation is retried when a sweeping monitor took the new directory.
const CREATE_ATTEMPTS: usize = 3;

/// An empty directory, locked by this process and removed on drop.
#[derive(Debug)]
pub struct TempRootfs {
    path: PathBuf,
    _lock: File,
}

impl TempRootfs {
    /// Removes the stale rootfs directories in `parent`, then creates and locks a new one.
    pub fn create_in(parent: &Path) -> io::Result<Self> {
        sweep_stale(parent);
        let prefix = format!("{PREFIX}{}-", std::process::id());
        let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
        for _ in 0..CREATE_ATTEMPTS {
            let path = tempfile::Builder::new()
                .prefix(&prefix)
                .tempdir_in(parent)?
                .keep();
            match lock_fresh(&path) {
                Ok(lock) => return Ok(Self { path, _lock: lock }),
                Err(err) => last = err,
            }
        }
        Err(last)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempRootfs {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_dir_all(&self.path) {
            log::warn!("removing {}: {err}", self.path.display());
        }
    }
}

/// Locks the directory just created at `path`. Fails if a sweeping monitor holds it
/// or has already removed it (between `mkdir` and `flock` it looks abandoned).
fn lock_fresh(path: &Path) -> io::Result<File> {
    let lock = File::open(path)?;
    if !try_lock(&lock)? || lock.metadata()?.nlink() == 0 {
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "another monitor removed the new rootfs directory",
        ));
    }
    Ok(lock)
}

/// Takes an exclusive lock on `file` without waiting; false if another holds one.
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on an fd we own; it has no memory-safety preconditions.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    match io::Error::last_os_error() {
        err if err.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        err => Err(err),
    }
}

/// Removes every rootfs directory in `parent` whose monitor is gone; returns how
/// many. Only names `isolab-rootfs-<pid>-*` whose process no longer exists, and
/// whose lock nobody holds, are removed, so neither a live monitor's directory nor
/// one made by an older monitor without the lock (`isolab-rootfs-XXXXXX`) is taken,
/// nor anything not a plain directory of ours (symlinks included).
pub fn sweep_stale(parent: &Path) -> usize {
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| owner_pid(&e.file_name().to_string_lossy()).is_some_and(|p| !alive(p)))
        .filter(|e| remove_if_stale(&e.path()))
        .count()
}

/// The pid in a rootfs name `isolab-rootfs-<pid>-<random>`.
fn owner_pid(name: &str) -> Option<libc::pid_t> {
    let (pid, _) = name.strip_prefix(PREFIX)?.split_once('-')?;
    pid.parse().ok().filter(|&p| p > 0)
}

/// Whether process `pid` exists (in this pid namespace).
fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn remove_if_stale(path: &Path) -> bool {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let ours = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.uid() == uid);
    if !ours {
        return false;
    }
    let Ok(lock) = File::open(path) else {
        return false;
    };
    if !try_lock(&lock).unwrap_or(false) {
        return false;
    }
    match fs::remove_dir_all(path) {
        Ok(()) => true,
        Err(err) => {
            log::warn!("removing the stale rootfs {}: {err}", path.display());
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rootfs_is_empty_named_for_its_owner_and_removed_on_drop() {
        let parent = tempfile::tempdir().unwrap();
        let root = TempRootfs::create_in(parent.path()).unwrap();
        let name = root
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with(&format!("{PREFIX}{}-", std::process::id())));
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
        fs::write(root.path().join("guest-file"), b"x").unwrap();
        drop(root);
        assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_held_rootfs_survives_a_sweep() {
        let parent = tempfile::tempdir().unwrap();
        let root = TempRootfs::create_in(parent.path()).unwrap();
        assert_eq!(sweep_stale(parent.path()), 0);
        assert!(root.path().is_dir());
    }

    #[test]
    fn an_abandoned_rootfs_is_swept_with_its_contents() {
        let parent = tempfile::tempdir().unwrap();
        // What a SIGKILLed monitor leaves: a directory whose lock died with it, named
        // for a process that is gone.
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        gone.wait().unwrap();
        let stale = parent.path().join(format!("{PREFIX}{}-abc", gone.id()));
        fs::create_dir_all(stale.join("sub")).unwrap();
        fs::write(stale.join("sub/file"), b"x").unwrap();
        let other = parent.path().join("someone-else");
        fs::create_dir(&other).unwrap();
        let root = TempRootfs::create_in(parent.path()).unwrap();
        assert!(!stale.exists(), "swept at creation");
        assert!(other.exists(), "only isolab rootfs directories are touched");
        drop(root);
    }

    #[test]
    fn names_without_a_dead_owner_pid_are_left_alone() {
        assert_eq!(owner_pid("isolab-rootfs-123-aBc"), Some(123));
        assert_eq!(owner_pid("isolab-rootfs-aB3dE9"), None, "older monitors");
        assert_eq!(owner_pid("isolab-rootfs-0-x"), None);
        let parent = tempfile::tempdir().unwrap();
        let older = parent.path().join(format!("{PREFIX}aB3dE9"));
        let live = parent
            .path()
            .join(format!("{PREFIX}{}-x", std::process::id()));
        fs::create_dir(&older).unwrap();
        fs::create_dir(&live).unwrap();
        assert_eq!(sweep_stale(parent.path()), 0);
        assert!(older.exists() && live.exists());
    }

    #[test]
    fn a_symlink_named_like_a_rootfs_is_left_alone() {
        let parent = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        fs::write(target.path().join("keep"), b"x").unwrap();
        let link = parent.path().join(format!("{PREFIX}1-link"));
        std::os::unix::fs::symlink(target.path(), &link).unwrap();
        assert_eq!(sweep_stale(parent.path()), 0);
        assert!(target.path().join("keep").exists());
        assert!(fs::symlink_metadata(&link).is_ok());
    }
}
