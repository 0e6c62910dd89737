//! What a container's file system will look like, worked out in the engine from
//! config.json before the clone, so the container's init only makes syscalls.

use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::Spec;

use super::options::{self, ParsedOptions};
use super::RootfsError;

/// The annotation naming overlay lower dirs (colon-separated, top first).
pub const LOWERDIRS_ANNOTATION: &str = "org.isolab.rootfs.lowerdirs";

/// Where the container's root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// The bundle's `root.path`, bound onto itself (runc's way).
    Bind,
    /// An overlay of shared read-only lowers with a per-container upper.
    Overlay {
        /// Lower dirs, top first.
        lowers: Vec<PathBuf>,
        /// The container's writable layer.
        upper: PathBuf,
        /// overlayfs's work dir (same file system as `upper`).
        work: PathBuf,
    },
}

/// One config mount, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// Absolute path inside the container.
    pub destination: PathBuf,
    /// File system type (`proc`, `tmpfs`, `bind`, ...).
    pub fstype: String,
    /// Source as written in the config (a host path for binds).
    pub source: Option<PathBuf>,
    /// Parsed options.
    pub options: ParsedOptions,
    /// For binds: the source is a file, so the target is a file too.
    pub source_is_file: bool,
}

/// The whole file-system recipe of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsPlan {
    /// The directory that becomes `/` (bundle rootfs, or the overlay mount point).
    pub root: PathBuf,
    /// Bind or overlay.
    pub source: RootSource,
    /// Propagation applied to the host's `/` copy first.
    pub propagation: MsFlags,
    /// `root.readonly`.
    pub readonly: bool,
    /// Config mounts in order.
    pub mounts: Vec<MountPlan>,
    /// `linux.maskedPaths`.
    pub masked: Vec<PathBuf>,
    /// `linux.readonlyPaths`.
    pub readonly_paths: Vec<PathBuf>,
    /// Device nodes are bound from the host (mknod is refused in a user namespace).
    pub bind_devices: bool,
    /// A cgroup2 hierarchy exists to mount for `cgroup` mounts.
    pub cgroup2: bool,
    /// The container's own cgroup v2 directory on the host, bound for `cgroup` mounts
    /// instead of a new cgroup2 mount; `None` mounts cgroup2.
    pub cgroup_dir: Option<PathBuf>,
}

/// Joins a container path onto the root, refusing `..` and relative paths.
pub fn join_in_root(root: &Path, inner: &Path) -> Result<PathBuf, RootfsError> {
    if !inner.is_absolute() {
        return Err(RootfsError::BadPath(
            inner.to_path_buf(),
            "must be absolute",
        ));
    }
    let mut out = root.to_path_buf();
    for component in inner.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            _ => {
                return Err(RootfsError::BadPath(
                    inner.to_path_buf(),
                    "must not contain '..'",
                ))
            }
        }
    }
    Ok(out)
}

/// Resolves the root source: overlay when the annotation names lowers, else a bind.
fn root_source(spec: &Spec, state_dir: &Path) -> Result<RootSource, RootfsError> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let Some(list) = annotations.get(LOWERDIRS_ANNOTATION) else {
        return Ok(RootSource::Bind);
    };
    let lowers: Vec<PathBuf> = list
        .split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    if lowers.is_empty() {
        return Err(RootfsError::BadLowers(list.clone(), "no directory named"));
    }
    for lower in &lowers {
        if !lower.is_absolute() || !lower.is_dir() {
            return Err(RootfsError::BadLowers(
                list.clone(),
                "each must be an existing absolute directory",
            ));
        }
    }
    Ok(RootSource::Overlay {
        lowers,
        upper: state_dir.join("upper"),
        work: state_dir.join("work"),
    })
}

fn mount_plan(m: &oci_spec::runtime::Mount) -> Result<MountPlan, RootfsError> {
    let options = options::parse(m.options().as_deref().unwrap_or_default());
    let fstype = m.typ().clone().unwrap_or_else(|| {
        if options.is_bind() {
            "bind".into()
        } else {
            "none".into()
        }
    });
    let mut options = options;
    if fstype == "bind" {
        options.flags |= MsFlags::MS_BIND;
    }
    let destination = m.destination().clone();
    join_in_root(Path::new("/"), &destination)?;
    let source = m.source().clone();
    let source_is_file = match (&source, options.is_bind()) {
        (Some(src), true) => {
            let meta =
                std::fs::metadata(src).map_err(|e| RootfsError::BindSource(src.clone(), e))?;
            !meta.is_dir()
        }
        _ => false,
    };
    Ok(MountPlan {
        destination,
        fstype,
        source,
        options,
        source_is_file,
    })
}

impl RootfsPlan {
    /// Works out the plan for `spec` whose bundle is `bundle`, with the container's state in `state_dir`.
    pub fn from_spec(
        spec: &Spec,
        bundle: &Path,
        state_dir: &Path,
        userns: bool,
    ) -> Result<Self, RootfsError> {
        let root_cfg = spec.root().clone().ok_or(RootfsError::NoRoot)?;
        let source = root_source(spec, state_dir)?;
        let root = match &source {
            RootSource::Bind => {
                let path = bundle.join(root_cfg.path());
                if !path.is_dir() {
                    return Err(RootfsError::MissingRootfs(path));
                }
                path
            }
            RootSource::Overlay { .. } => state_dir.join("rootfs"),
        };
        let linux = spec.linux().clone().unwrap_or_default();
        let propagation = options::root_propagation(linux.rootfs_propagation().as_deref())
            .ok_or_else(|| {
                RootfsError::BadPropagation(linux.rootfs_propagation().clone().unwrap_or_default())
            })?;
        let mounts = spec
            .mounts()
            .clone()
            .unwrap_or_default()
            .iter()
            .map(mount_plan)
            .collect::<Result<_, _>>()?;
        let to_paths = |v: &Option<Vec<String>>| {
            v.clone()
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect()
        };
        Ok(RootfsPlan {
            root,
            source,
            propagation,
            readonly: root_cfg.readonly().unwrap_or(false),
            mounts,
            masked: to_paths(linux.masked_paths()),
            readonly_paths: to_paths(linux.readonly_paths()),
            bind_devices: userns,
            cgroup2: Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
                || Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists(),
            cgroup_dir: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_in_root_refuses_escapes() {
        let root = Path::new("/r");
        assert_eq!(
            join_in_root(root, Path::new("/a/./b")).unwrap(),
            Path::new("/r/a/b")
        );
        assert!(join_in_root(root, Path::new("/a/../../etc")).is_err());
        assert!(join_in_root(root, Path::new("relative")).is_err());
    }

    #[test]
    fn overlay_annotation_with_missing_lower_is_refused() {
        let mut spec = Spec::default();
        let mut ann = std::collections::HashMap::new();
        ann.insert(
            LOWERDIRS_ANNOTATION.to_string(),
            "/nonexistent-isolab-lower".to_string(),
        );
        spec.set_annotations(Some(ann));
        let err = root_source(&spec, Path::new("/s")).unwrap_err();
        assert!(
            err.to_string().contains("nonexistent-isolab-lower"),
            "{err}"
        );
    }

    #[test]
    fn missing_rootfs_is_a_clear_error() {
        let spec = Spec::default();
        let err = RootfsPlan::from_spec(
            &spec,
            Path::new("/nonexistent-isolab-bundle"),
            Path::new("/s"),
            false,
        )
        .unwrap_err();
        assert!(matches!(err, RootfsError::MissingRootfs(_)), "{err}");
    }
}
