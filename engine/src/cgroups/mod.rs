//! Control groups: the resource limits of a container, on v1, v2 and hybrid hosts.

pub mod mode;
mod standin;

pub use standin::{Cgroup, CgroupError, CgroupRoot};
