//! Control groups: the resource limits of a container, on v1, v2 and hybrid hosts.
//!
//! [`CgroupRoot`] says where the hierarchies are mounted (`root.rs`); [`Cgroup`] is one
//! container's group. `resources.rs` turns OCI resources into control-file writes,
//! `v1.rs` and `v2.rs` write them. On a hybrid host (v1 controllers plus a cgroup2 mount
//! without them, as systemd's hybrid mode) limits go to the v1 hierarchies and a
//! controller-less cgroup2 directory tracks the same tasks.

mod files;
pub mod mode;
pub mod resources;
mod root;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

pub use mode::CgroupMode;
pub use resources::{Controller, ResourceError};
pub use root::CgroupRoot;

/// What went wrong creating, filling or removing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The host has no cgroup filesystem under the expected root.
    #[error("no cgroup filesystem mounted under {0}")]
    NoCgroupFs(PathBuf),
    /// The cgroup path is empty, absolute or has `..`.
    #[error("invalid cgroup path {0:?}: expected a relative path like \"isolab/<id>\"")]
    InvalidPath(String),
    /// A cgroup of that path already exists.
    #[error("cgroup {0} already exists (is a container with this id running?)")]
    Exists(PathBuf),
    /// `open` found no directory of that path in any hierarchy.
    #[error("cgroup {0:?} does not exist")]
    NotFound(String),
    /// A limit needs a v1 controller that is not mounted.
    #[error("the {0} cgroup controller is not mounted on this host")]
    NoController(&'static str),
    /// A limit's control file is missing: its controller is off for this cgroup.
    #[error("{} does not exist: the {controller} controller is not enabled for this cgroup", file.display())]
    ControllerUnavailable {
        controller: &'static str,
        file: PathBuf,
    },
    /// The resources cannot be expressed.
    #[error("invalid cgroup resources: {0}")]
    Resources(#[from] ResourceError),
    /// Tasks were still alive after being killed.
    #[error("cgroup {path} still has tasks {pids:?} after SIGKILL")]
    StillPopulated { path: PathBuf, pids: Vec<i32> },
    /// A filesystem operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// One container's cgroup, in every hierarchy the host uses.
#[derive(Debug)]
pub struct Cgroup {
    mode: CgroupMode,
    /// The path below each mount, e.g. `isolab/c1`.
    rel: PathBuf,
    /// `(mount, directory)` per distinct v1 hierarchy.
    v1_dirs: Vec<(PathBuf, PathBuf)>,
    /// Where each v1 controller's files are.
    v1_by_controller: BTreeMap<Controller, PathBuf>,
    /// `(mount, directory)` in the cgroup2 tree: all limits on v2, tracking on hybrid.
    unified: Option<(PathBuf, PathBuf)>,
}

/// Removes the directories created so far unless the creation completed.
struct Undo(Vec<PathBuf>);

impl Drop for Undo {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl Cgroup {
    /// Creates the cgroup `path` (e.g. `isolab/<id>`) and writes `resources` into it.
    /// On any failure, every directory it made is removed again.
    pub fn create(
        root: &CgroupRoot,
        path: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<Cgroup, CgroupError> {
        let rel = check_path(path)?;
        let default = LinuxResources::default();
        let resources = resources.unwrap_or(&default);
        let mut undo = Undo(Vec::new());
        let cgroup = match root.mode() {
            CgroupMode::V2 => create_v2(root, &rel, resources, &mut undo.0)?,
            CgroupMode::V1 | CgroupMode::Hybrid => create_v1(root, &rel, resources, &mut undo.0)?,
            CgroupMode::None => {
                return Err(CgroupError::NoCgroupFs(PathBuf::from("/sys/fs/cgroup")))
            }
        };
        undo.0.clear();
        Ok(cgroup)
    }

    /// The existing cgroup `path`, e.g. to delete what a crashed engine left.
    pub fn open(root: &CgroupRoot, path: &str) -> Result<Cgroup, CgroupError> {
        let rel = check_path(path)?;
        let cgroup = layout(root, &rel);
        let exists = cgroup.dirs().any(|d| d.is_dir());
        if !exists {
            return Err(CgroupError::NotFound(path.to_owned()));
        }
        Ok(cgroup)
    }

    /// Moves the process `pid` (and so its future children) into the cgroup.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        self.dirs()
            .try_for_each(|dir| files::write(dir, "cgroup.procs", &pid.to_string()))
    }

    /// Moves `pid`, already in the cgroup2 directory (cloned into it), into the cgroup's
    /// v1 hierarchies: what [`add_process`](Self::add_process) would do beyond that.
    pub fn add_process_to_v1(&self, pid: i32) -> Result<(), CgroupError> {
        self.v1_dirs
            .iter()
            .try_for_each(|(_, dir)| files::write(dir, "cgroup.procs", &pid.to_string()))
    }

    /// Whether the cgroup has v1 directories, which a task must be moved into by a
    /// `cgroup.procs` write (see [`add_process_to_v1`](Self::add_process_to_v1)).
    pub fn has_v1_dirs(&self) -> bool {
        !self.v1_dirs.is_empty()
    }

    /// Whether the kernel OOM-killed a task of this cgroup.
    pub fn oom_killed(&self) -> bool {
        match (self.mode, self.memory_dir()) {
            (CgroupMode::V2, Some(dir)) => v2::oom_killed(dir),
            (_, Some(dir)) => v1::oom_killed(dir),
            (_, None) => false,
        }
    }

    /// The memory the cgroup's tasks use now, in bytes.
    pub fn memory_current(&self) -> Option<u64> {
        match (self.mode, self.memory_dir()) {
            (CgroupMode::V2, Some(dir)) => v2::memory_current(dir),
            (_, Some(dir)) => v1::memory_current(dir),
            (_, None) => None,
        }
    }

    /// The processes in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let Some(dir) = self.dirs().find(|d| d.is_dir()) else {
            return Vec::new();
        };
        let text = files::read(dir, "cgroup.procs").unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// The cgroup's path below each mount, e.g. `isolab/c1` (what `open` takes).
    pub fn path(&self) -> &Path {
        &self.rel
    }

    /// The directory of this cgroup in the cgroup2 tree (v2 and hybrid hosts).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_ref().map(|(_, d)| d.as_path())
    }

    /// The directory of a v1 controller's files (v1 and hybrid hosts).
    pub fn v1_dir(&self, controller: Controller) -> Option<&Path> {
        self.v1_by_controller.get(&controller).map(PathBuf::as_path)
    }

    /// Kills the remaining tasks and removes every directory of the cgroup, then the
    /// parents (`isolab`) that no other container uses.
    pub fn destroy(self) -> Result<(), CgroupError> {
        self.kill_remaining()?;
        let mut first_err = None;
        for (mount, dir) in self.v1_dirs.iter().chain(self.unified.iter()) {
            if let Err(e) = files::remove_dir(dir) {
                first_err.get_or_insert(e);
                continue;
            }
            files::remove_empty_parents(mount, &self.rel);
        }
        first_err.map_or(Ok(()), Err)
    }

    /// SIGKILLs the tasks until none is left (a forking task may add new ones meanwhile).
    fn kill_remaining(&self) -> Result<(), CgroupError> {
        let used_kill_file = self.unified_dir().is_some_and(v2::kill_all);
        for _ in 0..400 {
            let pids = self.pids();
            if pids.is_empty() {
                return Ok(());
            }
            if !used_kill_file {
                for pid in pids {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let path = self
            .dirs()
            .next()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Err(CgroupError::StillPopulated {
            path,
            pids: self.pids(),
        })
    }

    /// Every directory of the cgroup: the v1 ones, then the cgroup2 one.
    fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.v1_dirs
            .iter()
            .chain(self.unified.iter())
            .map(|(_, d)| d.as_path())
    }

    fn memory_dir(&self) -> Option<&Path> {
        match self.mode {
            CgroupMode::V2 => self.unified_dir(),
            _ => self.v1_dir(Controller::Memory),
        }
    }
}

/// Accepts `a/b` style paths only: no root, no `.` or `..`, not empty.
fn check_path(path: &str) -> Result<PathBuf, CgroupError> {
    // Split by hand: `Path::components` silently drops interior `.` parts.
    let plain = path.split('/').all(|part| !matches!(part, "" | "." | ".."));
    if !plain || path.contains('\0') {
        return Err(CgroupError::InvalidPath(path.to_owned()));
    }
    Ok(PathBuf::from(path))
}

/// The directories a cgroup of `rel` has (or would have) under `root`, in every hierarchy.
fn layout(root: &CgroupRoot, rel: &Path) -> Cgroup {
    layout_in(root, rel, |_| true)
}

/// The directories of a cgroup of `rel` under `root`, in the v1 hierarchies of the
/// controllers (by name) that `wanted` accepts, and in the cgroup2 tree.
fn layout_in(root: &CgroupRoot, rel: &Path, wanted: impl Fn(&str) -> bool) -> Cgroup {
    let v1 = root.mode() != CgroupMode::V2;
    let v1_dirs: Vec<(PathBuf, PathBuf)> = root
        .v1_mounts_where(|name| v1 && wanted(name))
        .into_iter()
        .map(|m| (m.to_path_buf(), m.join(rel)))
        .collect();
    let v1_by_controller = [Controller::Memory, Controller::Cpu, Controller::Pids]
        .into_iter()
        .filter(|c| v1 && wanted(c.name()))
        .filter_map(|c| root.v1_mount_of(c).map(|m| (c, m.join(rel))))
        .collect();
    let unified = root.unified().map(|m| (m.to_path_buf(), m.join(rel)));
    Cgroup {
        mode: root.mode(),
        rel: rel.to_path_buf(),
        v1_dirs,
        v1_by_controller,
        unified,
    }
}

/// Whether a new cgroup gets a directory in the v1 hierarchy of controller `name`.
///
/// On a v1 host, in all of them: they are all that tracks the container's tasks. On a
/// hybrid host the cgroup2 directory tracks them (the init is cloned into it for free), so
/// only the controllers that `needed` limits get one: moving a task into a v1 hierarchy
/// costs an RCU grace period (9-25 ms on the build host), most of a container's start.
/// `cpuacct` goes with `cpu`, as the two are usually mounted together.
fn v1_wanted(mode: CgroupMode, needed: &[Controller], name: &str) -> bool {
    let serves = |c: &Controller| c.name() == name || (*c == Controller::Cpu && name == "cpuacct");
    mode == CgroupMode::V1 || needed.iter().any(serves)
}

fn create_v2(
    root: &CgroupRoot,
    rel: &Path,
    resources: &LinuxResources,
    created: &mut Vec<PathBuf>,
) -> Result<Cgroup, CgroupError> {
    let settings = resources::v2_settings(resources)?;
    let cgroup = layout(root, rel);
    let (mount, _) = cgroup
        .unified
        .as_ref()
        .ok_or(CgroupError::NoController("cgroup2"))?;
    let enable = |parent: &Path| v2::enable_controllers(parent, &v2::CONTROLLERS);
    let dir = files::make_dirs(mount, rel, enable, created)?;
    v2::apply(&dir, &settings)?;
    Ok(cgroup)
}

/// v1 hosts, and hybrid ones where a cgroup2 directory without controllers is added.
fn create_v1(
    root: &CgroupRoot,
    rel: &Path,
    resources: &LinuxResources,
    created: &mut Vec<PathBuf>,
) -> Result<Cgroup, CgroupError> {
    let settings = resources::v1_settings(resources)?;
    let needed = resources::controllers_of(&settings);
    let cgroup = layout_in(root, rel, |name| v1_wanted(root.mode(), &needed, name));
    for (mount, _) in cgroup.v1_dirs.iter().chain(cgroup.unified.iter()) {
        files::make_dirs(mount, rel, |_| Ok(()), created)?;
    }
    v1::apply(&cgroup.v1_by_controller, &settings)?;
    Ok(cgroup)
}

#[cfg(test)]
mod tests;
