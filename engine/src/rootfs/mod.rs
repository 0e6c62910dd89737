//! The container's file system: the root (a bind of the bundle's rootfs, or an overlay of
//! an image's layers), the config mounts, /dev, pivot_root, masked and read-only paths.
//! Everything here runs in the container's init, in its own mount namespace, through the
//! syscall seam; the mounts vanish with that namespace.

pub mod devices;
pub mod mounts;
pub mod options;
pub mod pivot;
pub mod plan;

use std::path::PathBuf;

use nix::mount::MsFlags;

use crate::syscall::{MountArgs, Syscall, SyscallError};
pub use plan::{MountPlan, RootSource, RootfsPlan, LOWERDIRS_ANNOTATION};

/// What went wrong planning or building a container's file system.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// config.json has no `root`.
    #[error("config.json has no root (root.path is required)")]
    NoRoot,
    /// The bundle's rootfs directory is missing.
    #[error("rootfs {0} does not exist or is not a directory")]
    MissingRootfs(PathBuf),
    /// The lowerdirs annotation is wrong.
    #[error("annotation {LOWERDIRS_ANNOTATION}={0:?}: {1}")]
    BadLowers(String, &'static str),
    /// A container path is relative or escapes the root.
    #[error("path {0:?} {1}")]
    BadPath(PathBuf, &'static str),
    /// A bind mount's source cannot be read.
    #[error("bind mount source {0}: {1}")]
    BindSource(PathBuf, std::io::Error),
    /// Unknown `linux.rootfsPropagation`.
    #[error("unsupported linux.rootfsPropagation {0:?}")]
    BadPropagation(String),
    /// A privileged call failed.
    #[error("{0}")]
    Syscall(#[from] SyscallError),
}

/// Phase 1: detaches from the host's mount events and mounts the root (bind or overlay).
pub fn prepare_root(sys: &dyn Syscall, plan: &RootfsPlan) -> Result<(), RootfsError> {
    sys.mount(&crate::syscall::linux::propagation(
        "/".as_ref(),
        plan.propagation,
    ))?;
    match &plan.source {
        RootSource::Bind => sys.mount(&MountArgs {
            source: Some(plan.root.clone()),
            target: plan.root.clone(),
            fstype: None,
            flags: MsFlags::MS_BIND | MsFlags::MS_REC,
            data: None,
        })?,
        RootSource::Overlay {
            lowers,
            upper,
            work,
        } => {
            for dir in [upper, work, &plan.root] {
                sys.mkdir_all(dir)?;
            }
            let lower = lowers
                .iter()
                .map(|l| l.display().to_string())
                .collect::<Vec<_>>()
                .join(":");
            sys.mount(&MountArgs {
                source: Some("overlay".into()),
                target: plan.root.clone(),
                fstype: Some("overlay".into()),
                flags: MsFlags::empty(),
                data: Some(format!(
                    "lowerdir={lower},upperdir={},workdir={}",
                    upper.display(),
                    work.display()
                )),
            })?
        }
    }
    Ok(())
}

/// Phase 2: config mounts, /dev nodes, pivot_root, masked and read-only paths.
pub fn mount_and_pivot(sys: &dyn Syscall, plan: &RootfsPlan) -> Result<(), RootfsError> {
    for mount in &plan.mounts {
        mounts::mount_one(sys, plan, mount)?;
    }
    if plan
        .mounts
        .iter()
        .any(|m| m.destination == std::path::Path::new("/dev"))
    {
        devices::populate(sys, plan)?;
    }
    pivot::pivot_root(sys, &plan.root)?;
    pivot::mask_paths(sys, &plan.masked)?;
    pivot::readonly_paths(sys, &plan.readonly_paths)?;
    if plan.readonly {
        sys.mount(&MountArgs {
            source: None,
            target: "/".into(),
            fstype: None,
            flags: MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            data: None,
        })?;
    }
    Ok(())
}
