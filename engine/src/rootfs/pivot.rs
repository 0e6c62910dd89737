//! pivot_root into the new root (runc's "." onto "." trick, so no put_old directory is
//! needed), then masked and read-only paths, which name paths of the new root.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use super::RootfsError;
use crate::syscall::{MountArgs, Syscall};

/// Makes `root` the process's `/` and detaches the old root.
pub fn pivot_root(sys: &dyn Syscall, root: &Path) -> Result<(), RootfsError> {
    sys.chdir(root)?;
    sys.pivot_root(Path::new("."), Path::new("."))?;
    // The old root is now stacked on "."; lazily detaching it leaves the new root on top.
    sys.umount2(Path::new("."), MntFlags::MNT_DETACH)?;
    sys.chdir(Path::new("/"))?;
    Ok(())
}

fn absent(errno: Errno) -> bool {
    errno == Errno::ENOENT
}

/// Hides each path: /dev/null over a file, an empty read-only tmpfs over a directory.
pub fn mask_paths(sys: &dyn Syscall, paths: &[PathBuf]) -> Result<(), RootfsError> {
    for path in paths {
        let null = MountArgs {
            source: Some("/dev/null".into()),
            target: path.clone(),
            fstype: None,
            flags: MsFlags::MS_BIND,
            data: None,
        };
        match sys.mount(&null) {
            Err(e) if e.errno == Errno::ENOTDIR => sys.mount(&MountArgs {
                source: Some("tmpfs".into()),
                target: path.clone(),
                fstype: Some("tmpfs".into()),
                flags: MsFlags::MS_RDONLY,
                data: None,
            })?,
            Err(e) if absent(e.errno) => {}
            other => other?,
        }
    }
    Ok(())
}

/// Makes each path read-only with a bind onto itself and a read-only remount.
pub fn readonly_paths(sys: &dyn Syscall, paths: &[PathBuf]) -> Result<(), RootfsError> {
    for path in paths {
        let bind = MountArgs {
            source: Some(path.clone()),
            target: path.clone(),
            fstype: None,
            flags: MsFlags::MS_BIND | MsFlags::MS_REC,
            data: None,
        };
        match sys.mount(&bind) {
            Err(e) if absent(e.errno) => continue,
            other => other?,
        }
        sys.mount(&MountArgs {
            source: None,
            target: path.clone(),
            fstype: None,
            flags: MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            data: None,
        })?;
    }
    Ok(())
}
