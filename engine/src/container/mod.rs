//! The OCI runtime's operations, one file each after youki (`create`, `start`, `state`,
//! `kill`, `delete`, `run`, `list`): each loads the container's state, checks that the
//! transition is allowed, does the work and saves the state. [`Runtime`] is the library
//! entry point shared by `engine-oci` and the docker-like `engine`.

pub mod bundle;
pub mod create;
pub mod delete;
pub mod id;
pub mod kill;
pub mod list;
pub mod run;
pub mod start;
pub mod state;

use std::path::{Path, PathBuf};

pub use create::{CreateOptions, Created};
pub use run::ExitInfo;
pub use state::ContainerRecord;

/// The default state root, as runc's is /run/runc.
pub const DEFAULT_ROOT: &str = "/run/isolab";

/// What failed in a container operation.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The id has characters that could make a path.
    #[error("invalid container id {0:?}: use 1-64 characters from [A-Za-z0-9_.-], not starting with '.' (and not \"network\", which the engine uses)")]
    BadId(String),
    /// A container with this id exists.
    #[error("container {0} already exists")]
    Exists(String),
    /// No container with this id.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// The operation is not allowed in the container's status.
    #[error("cannot {op} container {id}: it is {status}")]
    BadState {
        /// The operation.
        op: &'static str,
        /// The container.
        id: String,
        /// Its status.
        status: String,
    },
    /// The bundle or its config.json is unusable.
    #[error("bundle {0}: {1}")]
    Bundle(PathBuf, String),
    /// The config asks for something this runtime does not do.
    #[error("unsupported option: {0}")]
    Unsupported(String),
    /// A bad signal name or number.
    #[error("invalid signal {0:?}")]
    BadSignal(String),
    /// Reading or writing the state dir failed.
    #[error("{0} {1}: {2}")]
    Io(&'static str, PathBuf, std::io::Error),
    /// The container's state file is corrupt.
    #[error("state of container {0} is corrupt: {1}")]
    CorruptState(String, String),
    /// A signal could not be sent.
    #[error("signalling container {0}: {1}")]
    Kill(String, nix::errno::Errno),
    /// The file system plan failed.
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    /// The process failed.
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    /// The cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    /// The network failed.
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// A failure injected by the test hook.
    #[error("injected failure at {0}")]
    Injected(String),
}

/// The host's cgroup layout, read from /proc/self/mounts once per process (each
/// operation needs it several times; mounts under /sys/fs/cgroup do not change meanwhile).
pub fn cgroup_root() -> Result<crate::cgroups::CgroupRoot, crate::cgroups::CgroupError> {
    static ROOT: std::sync::OnceLock<Option<crate::cgroups::CgroupRoot>> =
        std::sync::OnceLock::new();
    match ROOT.get_or_init(|| crate::cgroups::CgroupRoot::detect().ok()) {
        Some(root) => Ok(root.clone()),
        None => crate::cgroups::CgroupRoot::detect(),
    }
}

/// The runtime: a state root holding one directory per container.
///
/// `create` (and `run`) clone the calling process fork-style straight into the container's
/// namespaces, without glibc's fork handlers: call them from a single-threaded process (as
/// `engine-oci` is), or at least while no other thread can hold a lock such as malloc's.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The state root (`/run/isolab` by default).
    pub root: PathBuf,
}

impl Runtime {
    /// A runtime whose state lives under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Runtime { root: root.into() }
    }

    /// The state dir of container `id` (the id must be valid).
    pub fn state_dir(&self, id: &str) -> Result<PathBuf, ContainerError> {
        id::validate(id)?;
        Ok(self.root.join(id))
    }

    /// The exec fifo of a container's state dir.
    pub fn exec_fifo(state_dir: &Path) -> PathBuf {
        state_dir.join("exec.fifo")
    }
}
