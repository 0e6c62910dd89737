//! isolab's container engine: OCI images (`image/`), an OCI runtime (`container/`,
//! `process/`, `rootfs/`, `cgroups/`, `network/`) and the library behind the two CLIs,
//! `engine-oci` (runc-compatible) and `engine` (docker-like).

pub mod cgroups;
pub mod cli;
pub mod container;
pub mod frontend;
pub mod image;
pub mod network;
pub mod process;
pub mod rootfs;
pub mod syscall;
pub mod timings;
pub mod volume;

pub use container::{ContainerError, Runtime};
