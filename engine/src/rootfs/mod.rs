//! The container's file system: the root (a bind of the bundle's rootfs, or an overlay of
//! an image's layers), the config mounts, /dev, pivot_root, masked and read-only paths.
//! Everything here runs in the container's init, in its own mount namespace, through the
//! syscall seam; the mounts vanish with that namespace.

pub mod devices;
pub mod mounts;
pub mod options;
pub mod pivot;
pub mod plan;
pub mod resolve;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::{Call, RecordingSyscall};
    use oci_spec::runtime::Spec;
    use std::path::Path;

    fn plan() -> RootfsPlan {
        let bundle = tempfile::tempdir().unwrap();
        std::fs::create_dir(bundle.path().join("rootfs")).unwrap();
        let mut p = RootfsPlan::from_spec(
            &Spec::default(),
            bundle.path(),
            Path::new("/state/c1"),
            false,
        )
        .unwrap();
        p.root = "/b/rootfs".into();
        p
    }

    fn position(calls: &[Call], pred: impl Fn(&Call) -> bool) -> usize {
        calls.iter().position(pred).expect("call missing")
    }

    #[test]
    fn setup_order_is_propagation_bind_mounts_devices_pivot_masks() {
        let sys = RecordingSyscall::new();
        let p = plan();
        prepare_root(&sys, &p).unwrap();
        mount_and_pivot(&sys, &p).unwrap();
        let calls = sys.calls();
        let first = calls[0].as_mount().unwrap();
        assert_eq!(
            (first.target.as_path(), first.flags),
            (Path::new("/"), MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        let bind = calls[1].as_mount().unwrap();
        assert_eq!(bind.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        let proc_at = position(&calls, |c| {
            c.as_mount()
                .is_some_and(|m| m.fstype.as_deref() == Some("proc"))
        });
        let null_at = position(
            &calls,
            |c| matches!(c, Call::Mknod(p, 0o666, 1, 3) if p.ends_with("dev/null")),
        );
        let pivot_at = position(&calls, |c| matches!(c, Call::PivotRoot(..)));
        let mask_at = position(&calls, |c| {
            c.as_mount()
                .is_some_and(|m| m.target == Path::new("/proc/kcore"))
        });
        assert!(
            proc_at < null_at && null_at < pivot_at && pivot_at < mask_at,
            "{calls:#?}"
        );
        assert_eq!(calls[pivot_at - 1], Call::Chdir("/b/rootfs".into()));
        assert_eq!(
            calls[pivot_at + 1],
            Call::Umount(".".into(), nix::mount::MntFlags::MNT_DETACH)
        );
    }

    #[test]
    fn overlay_root_gets_lower_upper_and_work() {
        let sys = RecordingSyscall::new();
        let mut p = plan();
        p.root = "/state/c1/rootfs".into();
        p.source = RootSource::Overlay {
            lowers: vec!["/l/top".into(), "/l/base".into()],
            upper: "/state/c1/upper".into(),
            work: "/state/c1/work".into(),
        };
        prepare_root(&sys, &p).unwrap();
        let overlay = sys.calls().iter().find_map(|c| {
            c.as_mount()
                .filter(|m| m.fstype.as_deref() == Some("overlay"))
                .cloned()
        });
        let overlay = overlay.expect("no overlay mount");
        assert_eq!(
            overlay.data.as_deref(),
            Some("lowerdir=/l/top:/l/base,upperdir=/state/c1/upper,workdir=/state/c1/work")
        );
    }

    #[test]
    fn a_failing_call_stops_the_setup_there() {
        for k in 0..6 {
            let sys = RecordingSyscall::failing_at(k);
            let p = plan();
            let result = prepare_root(&sys, &p).and_then(|()| mount_and_pivot(&sys, &p));
            assert!(result.is_err(), "call {k} failed but setup went on");
            assert_eq!(sys.calls().len(), k + 1, "calls after the failure at {k}");
        }
    }

    #[test]
    fn masked_directory_falls_back_to_read_only_tmpfs() {
        struct NotDir(RecordingSyscall);
        impl Syscall for NotDir {
            fn mount(&self, a: &MountArgs) -> Result<(), SyscallError> {
                self.0.mount(a)?;
                if a.source.as_deref() == Some(Path::new("/dev/null")) {
                    return Err(SyscallError::new("mount", "x", nix::errno::Errno::ENOTDIR));
                }
                Ok(())
            }
            fn umount2(&self, t: &Path, f: nix::mount::MntFlags) -> Result<(), SyscallError> {
                self.0.umount2(t, f)
            }
            fn pivot_root(&self, a: &Path, b: &Path) -> Result<(), SyscallError> {
                self.0.pivot_root(a, b)
            }
            fn chdir(&self, p: &Path) -> Result<(), SyscallError> {
                self.0.chdir(p)
            }
            fn unshare(&self, f: nix::sched::CloneFlags) -> Result<(), SyscallError> {
                self.0.unshare(f)
            }
            fn sethostname(&self, n: &str) -> Result<(), SyscallError> {
                self.0.sethostname(n)
            }
            fn mknod_char(&self, p: &Path, m: u32, a: u64, b: u64) -> Result<(), SyscallError> {
                self.0.mknod_char(p, m, a, b)
            }
            fn symlink(&self, a: &Path, b: &Path) -> Result<(), SyscallError> {
                self.0.symlink(a, b)
            }
            fn mkdir_all(&self, p: &Path) -> Result<(), SyscallError> {
                self.0.mkdir_all(p)
            }
            fn touch(&self, p: &Path) -> Result<(), SyscallError> {
                self.0.touch(p)
            }
            fn set_link_up(&self, n: &str) -> Result<(), SyscallError> {
                self.0.set_link_up(n)
            }
        }
        let sys = NotDir(RecordingSyscall::new());
        pivot::mask_paths(&sys, &["/proc/acpi".into()]).unwrap();
        let calls = sys.0.calls();
        let tmpfs = calls[1].as_mount().unwrap();
        assert_eq!(
            (tmpfs.fstype.as_deref(), tmpfs.flags),
            (Some("tmpfs"), MsFlags::MS_RDONLY)
        );
    }
}
