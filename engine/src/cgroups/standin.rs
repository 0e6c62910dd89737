//! STAND-IN for engine-cgnet's cgroup module (same API as agreed): it only creates the
//! container's cgroup in the unified (v2) hierarchy to track and kill its processes; it
//! applies no limits. The integrator replaces this file with the real module.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::mode::{self, CgroupMode};

/// What failed in a cgroup operation.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup file or directory could not be written or removed.
    #[error("cgroup {0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The path is not a plain relative cgroup path.
    #[error("bad cgroup path {0:?}")]
    BadPath(String),
}

/// Where the cgroup hierarchy of this host lives.
#[derive(Debug, Clone)]
pub struct CgroupRoot {
    unified: Option<PathBuf>,
}

impl CgroupRoot {
    /// Finds the host's cgroup2 hierarchy (at the root on v2, `unified/` on hybrid).
    pub fn detect() -> CgroupRoot {
        let base = Path::new("/sys/fs/cgroup");
        let unified = match mode::detect() {
            CgroupMode::V2 => Some(base.to_path_buf()),
            CgroupMode::Hybrid => Some(base.join("unified")),
            _ => None,
        };
        CgroupRoot { unified }
    }
}

/// One container's cgroup.
#[derive(Debug)]
pub struct Cgroup {
    dir: Option<PathBuf>,
}

impl Cgroup {
    /// Creates (or opens) the cgroup `path` under `root`.
    pub fn create(
        root: &CgroupRoot,
        path: &str,
        _resources: Option<&LinuxResources>,
    ) -> Result<Cgroup, CgroupError> {
        let rel = path.trim_start_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(CgroupError::BadPath(path.into()));
        }
        let Some(unified) = &root.unified else {
            return Ok(Cgroup { dir: None });
        };
        let dir = unified.join(rel);
        std::fs::create_dir_all(&dir).map_err(|e| CgroupError::Io(dir.clone(), e))?;
        Ok(Cgroup { dir: Some(dir) })
    }

    /// Moves `pid` into this cgroup.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).map_err(|e| CgroupError::Io(procs, e))
    }

    /// Whether the kernel OOM-killed a process of this cgroup (stand-in: never known).
    pub fn oom_killed(&self) -> bool {
        false
    }

    /// Memory in use (stand-in: unknown).
    pub fn memory_current(&self) -> Option<u64> {
        None
    }

    fn pids(dir: &Path) -> Vec<i32> {
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills what remains in the cgroup and removes it.
    pub fn destroy(self) -> Result<(), CgroupError> {
        let Some(dir) = self.dir else { return Ok(()) };
        if !dir.exists() {
            return Ok(());
        }
        for _ in 0..200 {
            let pids = Self::pids(&dir);
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::fs::remove_dir(&dir).map_err(|e| CgroupError::Io(dir, e))
    }
}
