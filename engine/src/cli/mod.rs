//! Command-line front ends (clap derive structs) of the engine's binaries.

pub mod oci;
