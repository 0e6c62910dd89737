//! The kernel-less guest: a static Linux binary runs at CPL3 and the monitor answers its
//! system calls.

pub mod syscalls;
