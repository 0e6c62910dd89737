//! One config mount (proc, tmpfs, devpts, sysfs, cgroup, bind, ...) made under the new root.

use nix::mount::MsFlags;

use super::plan::{MountPlan, RootfsPlan};
use super::resolve::resolve_in_root;
use super::RootfsError;
use crate::syscall::{MountArgs, Syscall};

fn ensure_target(
    sys: &dyn Syscall,
    mount: &MountPlan,
    target: &std::path::Path,
) -> Result<(), RootfsError> {
    if mount.source_is_file {
        sys.touch(target)?;
    } else {
        sys.mkdir_all(target)?;
    }
    Ok(())
}

/// The type mount(2) gets: binds have none; `cgroup` means cgroup2 (the unified view).
fn fstype_for(mount: &MountPlan, plan: &RootfsPlan) -> Option<Option<String>> {
    match mount.fstype.as_str() {
        _ if mount.options.is_bind() => Some(None),
        "cgroup" | "cgroup2" if !plan.cgroup2 => None,
        "cgroup" => Some(Some("cgroup2".into())),
        other => Some(Some(other.into())),
    }
}

fn bind_cgroup(
    sys: &dyn Syscall,
    source: &std::path::Path,
    target: &std::path::Path,
    flags: MsFlags,
) -> Result<(), RootfsError> {
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    sys.mount(&MountArgs {
        source: Some(source.into()),
        target: target.into(),
        fstype: None,
        flags: bind,
        data: None,
    })?;
    let keep = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | (flags & keep);
    sys.mount(&MountArgs {
        source: None,
        target: target.into(),
        fstype: None,
        flags: remount,
        data: None,
    })?;
    Ok(())
}

/// Mounts `mount` under `plan.root`; binds that ask for `ro` are remounted read-only.
pub fn mount_one(
    sys: &dyn Syscall,
    plan: &RootfsPlan,
    mount: &MountPlan,
) -> Result<(), RootfsError> {
    let Some(fstype) = fstype_for(mount, plan) else {
        log::warn!(
            "no cgroup2 hierarchy on this host: skipping the mount at {}",
            mount.destination.display()
        );
        return Ok(());
    };
    let target = resolve_in_root(&plan.root, &mount.destination)?;
    ensure_target(sys, mount, &target)?;
    let bind = mount.options.is_bind();
    let source = match (&mount.source, &fstype) {
        (Some(src), _) => Some(src.clone()),
        (None, Some(t)) => Some(t.into()),
        (None, None) => None,
    };
    let data = (!mount.options.data.is_empty()).then(|| mount.options.data.clone());
    // A bind ignores every flag but MS_BIND|MS_REC on the first call; the rest need a remount.
    let first_flags = if bind {
        mount.options.flags & (MsFlags::MS_BIND | MsFlags::MS_REC)
    } else {
        mount.options.flags
    };
    let is_cgroup = fstype.as_deref() == Some("cgroup2");
    let args = MountArgs {
        source,
        target: target.clone(),
        fstype,
        flags: first_flags,
        data,
    };
    if let Some(dir) = plan.cgroup_dir.as_ref().filter(|_| is_cgroup) {
        // The container's own cgroup, bound: the view a cgroup2 mount in its cgroup namespace
        // gives, without a new superblock (a cgroup2 mount costs ~10 ms on the build host).
        return bind_cgroup(sys, dir, &target, mount.options.flags);
    }
    match sys.mount(&args) {
        // A user namespace may not mount cgroup2 without its own cgroup namespace: show the
        // host's hierarchy read-only instead, as runc does.
        Err(e) if is_cgroup && e.errno == nix::errno::Errno::EPERM => {
            return bind_cgroup(
                sys,
                std::path::Path::new("/sys/fs/cgroup"),
                &target,
                MsFlags::MS_RDONLY,
            )
        }
        other => other?,
    }
    if bind && mount.options.flags != first_flags {
        let flags = mount.options.flags | MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
        sys.mount(&MountArgs {
            source: None,
            target: target.clone(),
            fstype: None,
            flags: flags - MsFlags::MS_REC,
            data: None,
        })?;
    }
    if !mount.options.propagation.is_empty() {
        sys.mount(&crate::syscall::linux::propagation(
            &target,
            mount.options.propagation,
        ))?;
    }
    Ok(())
}
