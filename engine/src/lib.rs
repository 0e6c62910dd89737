//! isolab's container engine: OCI images (`image/`), an OCI runtime (`container/`,
//! `process/`, `rootfs/`, `cgroups/`, `network/`) and the library behind the two CLIs,
//! `engine-oci` (runc-compatible) and `engine` (docker-like).

pub mod cgroups;
pub mod image;
pub mod network;
pub mod volume;
