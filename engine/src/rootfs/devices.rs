//! The standard device nodes of a container's /dev (null, zero, full, random, urandom,
//! tty) and its symlinks; made with mknod, or bound from the host in a user namespace.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::plan::RootfsPlan;
use super::RootfsError;
use crate::syscall::{MountArgs, Syscall};

/// (name, major, minor) of the devices every container gets, mode 0666.
pub const STANDARD_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// (link, target) under /dev.
const LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

fn make_device(
    sys: &dyn Syscall,
    dev: &Path,
    name: &str,
    major: u64,
    minor: u64,
    bind: bool,
) -> Result<(), RootfsError> {
    let path = dev.join(name);
    if !bind {
        return Ok(sys.mknod_char(&path, 0o666, major, minor)?);
    }
    sys.touch(&path)?;
    sys.mount(&MountArgs {
        source: Some(PathBuf::from("/dev").join(name)),
        target: path,
        fstype: None,
        flags: MsFlags::MS_BIND,
        data: None,
    })?;
    Ok(())
}

/// Fills the container's /dev (already mounted under `plan.root`).
pub fn populate(sys: &dyn Syscall, plan: &RootfsPlan) -> Result<(), RootfsError> {
    // Resolved inside the root: an image's `dev` symlink must not aim mknod at the host.
    let dev = super::resolve::resolve_in_root(&plan.root, Path::new("/dev"))?;
    for (name, major, minor) in STANDARD_DEVICES {
        make_device(sys, &dev, name, major, minor, plan.bind_devices)?;
    }
    for (link, target) in LINKS {
        sys.symlink(Path::new(target), &dev.join(link))?;
    }
    Ok(())
}
