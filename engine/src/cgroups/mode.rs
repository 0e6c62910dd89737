//! Which cgroup hierarchy a host runs: v1 only, v2 only (unified), or hybrid (v1
//! controllers with a cgroup2 mount beside them, as on this project's build host).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The cgroup layout of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// Only v1 controller hierarchies.
    V1,
    /// The unified cgroup2 hierarchy at the cgroup root.
    V2,
    /// v1 controllers plus a cgroup2 mount (usually at `<root>/unified`) without them.
    Hybrid,
    /// No cgroup filesystem found.
    None,
}

impl CgroupMode {
    /// The lowercase name used in results and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupMode::V1 => "v1",
            CgroupMode::V2 => "v2",
            CgroupMode::Hybrid => "hybrid",
            CgroupMode::None => "none",
        }
    }
}

impl fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The host's mode, read from `/proc/self/mounts` against the root `/sys/fs/cgroup`.
pub fn detect() -> CgroupMode {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    detect_from_mounts(&mounts, Path::new("/sys/fs/cgroup"))
}

/// Decides the mode from a mount table in `/proc/self/mounts` format.
pub fn detect_from_mounts(mounts: &str, cgroup_root: &Path) -> CgroupMode {
    let mut v1 = false;
    let mut v2_at_root = false;
    let mut v2_elsewhere = false;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_src), Some(target), Some(fstype)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let target = Path::new(target);
        if !target.starts_with(cgroup_root) {
            continue;
        }
        match fstype {
            "cgroup2" if target == cgroup_root => v2_at_root = true,
            "cgroup2" => v2_elsewhere = true,
            "cgroup" => v1 = true,
            _ => {}
        }
    }
    match (v1, v2_at_root, v2_elsewhere) {
        (_, true, _) => CgroupMode::V2,
        (true, false, true) => CgroupMode::Hybrid,
        (true, false, false) => CgroupMode::V1,
        (false, false, true) => CgroupMode::V2,
        (false, false, false) => CgroupMode::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/sys/fs/cgroup";

    #[test]
    fn pure_v2() {
        let m = "proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n";
        assert_eq!(detect_from_mounts(m, Path::new(ROOT)), CgroupMode::V2);
    }

    #[test]
    fn hybrid_like_this_build_host() {
        let m = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
                 cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n\
                 cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\n\
                 cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(detect_from_mounts(m, Path::new(ROOT)), CgroupMode::Hybrid);
    }

    #[test]
    fn pure_v1_and_none() {
        let v1 = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n";
        assert_eq!(detect_from_mounts(v1, Path::new(ROOT)), CgroupMode::V1);
        assert_eq!(
            detect_from_mounts("proc /proc proc rw 0 0\n", Path::new(ROOT)),
            CgroupMode::None
        );
    }

    #[test]
    fn cgroup_mounts_elsewhere_are_ignored() {
        let m = "cgroup2 /run/other cgroup2 rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n";
        assert_eq!(detect_from_mounts(m, Path::new(ROOT)), CgroupMode::V2);
    }
}
