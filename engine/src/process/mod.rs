//! The container's first process: the clone into new namespaces (`clone`), the pipe
//! protocol with the engine (`sync`), and the init recipe that runs in the child (`init`):
//! cgroup namespace, rootfs, hostname, rlimits, no_new_privileges, uid/gid, capabilities,
//! then a wait for `start` and execve (`creds`, `exec`).

pub mod clone;
pub mod creds;
pub mod exec;
pub mod init;
pub mod plan;
pub mod sync;

pub use plan::{InitPlan, ProcessPlan};

/// What failed while starting or preparing the container's process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// clone(2) into the new namespaces failed.
    #[error(
        "clone with namespaces {flags}: {errno} (are these namespaces enabled on this kernel?)"
    )]
    Clone {
        /// The namespaces asked for.
        flags: String,
        /// The kernel's answer.
        errno: nix::errno::Errno,
    },
    /// A pipe or fifo between the engine and the init failed.
    #[error("{0}: {1}")]
    Sync(&'static str, std::io::Error),
    /// A step in the init failed (reported to the engine as text).
    #[error("{0}")]
    Init(String),
    /// The init reported an error while preparing or exec'ing the container.
    #[error("container init failed: {0}")]
    InitFailed(String),
    /// The config asks for something this process cannot be given.
    #[error("invalid process config: {0}")]
    Config(String),
    /// A privileged call in the init failed.
    #[error("{0}")]
    Syscall(#[from] crate::syscall::SyscallError),
}
