//! Where a host's cgroup hierarchies are mounted: the v1 controller mount points and
//! the cgroup2 (unified) mount, found from the mount table or laid out under a test dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::mode::{self, CgroupMode};
use super::resources::Controller;
use super::CgroupError;

/// The v1 controllers isolab uses; cpuacct is created beside cpu for accounting.
const V1_CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "cpuacct"];

/// The cgroup hierarchies of a host, as a parameter so tests can point it at a temp dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupRoot {
    mode: CgroupMode,
    /// v1 controller name to its mount point (`cpu` and `cpuacct` may share one).
    v1: BTreeMap<String, PathBuf>,
    /// The cgroup2 mount: the whole tree on v2, the tracking tree on hybrid hosts.
    unified: Option<PathBuf>,
}

impl CgroupRoot {
    /// The host's hierarchies, read from `/proc/self/mounts` under `/sys/fs/cgroup`.
    pub fn detect() -> Result<Self, CgroupError> {
        let mounts =
            std::fs::read_to_string("/proc/self/mounts").map_err(|source| CgroupError::Io {
                what: "reading /proc/self/mounts".into(),
                source,
            })?;
        Self::from_mounts(&mounts, Path::new("/sys/fs/cgroup"))
    }

    /// The hierarchies described by a mount table in `/proc/self/mounts` format.
    pub fn from_mounts(mounts: &str, cgroup_root: &Path) -> Result<Self, CgroupError> {
        let mode = mode::detect_from_mounts(mounts, cgroup_root);
        if mode == CgroupMode::None {
            return Err(CgroupError::NoCgroupFs(cgroup_root.to_path_buf()));
        }
        let mut root = CgroupRoot {
            mode,
            v1: BTreeMap::new(),
            unified: None,
        };
        for (target, fstype, options) in cgroup_mounts(mounts, cgroup_root) {
            match fstype {
                "cgroup2" => root.unified = Some(target),
                _ if mode == CgroupMode::V2 => {}
                _ => {
                    for ctl in options.split(',').filter(|o| V1_CONTROLLERS.contains(o)) {
                        root.v1.insert(ctl.to_owned(), target.clone());
                    }
                }
            }
        }
        Ok(root)
    }

    /// A root laid out the standard way under `base` (`base/<controller>` and
    /// `base/unified` for v1 and hybrid, `base` itself for v2): for tests on a temp dir.
    pub fn at(mode: CgroupMode, base: PathBuf) -> Self {
        let v1_layout = || {
            V1_CONTROLLERS
                .iter()
                .map(|c| (c.to_string(), base.join(c)))
                .collect()
        };
        match mode {
            CgroupMode::V2 => CgroupRoot {
                mode,
                v1: BTreeMap::new(),
                unified: Some(base),
            },
            CgroupMode::V1 => CgroupRoot {
                mode,
                v1: v1_layout(),
                unified: None,
            },
            CgroupMode::Hybrid => CgroupRoot {
                mode,
                v1: v1_layout(),
                unified: Some(base.join("unified")),
            },
            CgroupMode::None => CgroupRoot {
                mode,
                v1: BTreeMap::new(),
                unified: None,
            },
        }
    }

    /// The layout of this host.
    pub fn mode(&self) -> CgroupMode {
        self.mode
    }

    /// The cgroup2 mount point, if any.
    pub fn unified(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// The mount point of a v1 controller by name (`memory`, `pids`, `cpu`, `cpuacct`).
    pub fn v1_mount(&self, name: &str) -> Option<&Path> {
        self.v1.get(name).map(PathBuf::as_path)
    }

    /// The v1 mount that holds the files of `controller`.
    pub(crate) fn v1_mount_of(&self, controller: Controller) -> Option<&Path> {
        self.v1_mount(controller.name())
    }

    /// The distinct v1 mount points of the controllers (by name) that `wanted` accepts,
    /// in a fixed order.
    pub(crate) fn v1_mounts_where(&self, wanted: impl Fn(&str) -> bool) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for ctl in V1_CONTROLLERS.into_iter().filter(|c| wanted(c)) {
            if let Some(p) = self.v1_mount(ctl) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }
}

/// `(target, fstype, options)` of every cgroup mount under `cgroup_root`.
fn cgroup_mounts<'a>(
    mounts: &'a str,
    cgroup_root: &'a Path,
) -> impl Iterator<Item = (PathBuf, &'a str, &'a str)> + 'a {
    mounts.lines().filter_map(move |line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (target, fstype, options) = (*f.get(1)?, *f.get(2)?, *f.get(3)?);
        let target = PathBuf::from(target);
        let ours = target.starts_with(cgroup_root) && matches!(fstype, "cgroup" | "cgroup2");
        ours.then_some((target, fstype, options))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/sys/fs/cgroup";

    #[test]
    fn hybrid_host_with_separate_cpu_and_cpuacct_mounts() {
        let m = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
                 cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n\
                 cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0\n\
                 cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n\
                 cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0\n\
                 cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0\n\
                 cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
        let root = CgroupRoot::from_mounts(m, Path::new(ROOT)).unwrap();
        assert_eq!(root.mode(), CgroupMode::Hybrid);
        assert_eq!(root.v1_mount("cpu"), Some(Path::new("/sys/fs/cgroup/cpu")));
        assert_eq!(
            root.v1_mount("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpuacct"))
        );
        assert_eq!(root.unified(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(root.v1_mounts_where(|_| true).len(), 4);
    }

    #[test]
    fn comounted_cpu_cpuacct_is_one_directory() {
        let m = "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n\
                 cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n";
        let root = CgroupRoot::from_mounts(m, Path::new(ROOT)).unwrap();
        assert_eq!(root.mode(), CgroupMode::V1);
        assert_eq!(root.v1_mount("cpu"), root.v1_mount("cpuacct"));
        assert_eq!(root.v1_mounts_where(|_| true).len(), 2);
        assert_eq!(root.unified(), None);
    }

    #[test]
    fn pure_v2_and_no_cgroup_fs() {
        let m = "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n";
        let root = CgroupRoot::from_mounts(m, Path::new(ROOT)).unwrap();
        assert_eq!(root, CgroupRoot::at(CgroupMode::V2, ROOT.into()));
        let err = CgroupRoot::from_mounts("proc /proc proc rw 0 0\n", Path::new(ROOT)).unwrap_err();
        assert!(err.to_string().contains("no cgroup filesystem"), "{err}");
    }
}
