//! isolab's microVM monitor: one process per VM, built on the rust-vmm crates.
//!
//! - `vstate/` wraps the KVM objects (VM, vCPU, guest memory);
//! - `arch/x86_64/` holds the x86 details (layout constants, page tables, GDT, CPUID, MSRs);
//! - `devices/` holds the pure device models (bus, serial, i8042, ready port);
//! - `kernelless/` runs a static Linux binary directly at CPL3 and answers its syscalls;
//! - `builder.rs` is the recipe that puts a kernel-less VM together;
//! - `stats.rs` is what `--stats` prints;
//! - `kvm_flavor` tells hardware KVM from PVM.

pub mod arch;
pub mod builder;
pub mod devices;
pub mod kernelless;
pub mod kvm_flavor;
pub mod linux;
pub mod stats;
pub mod vstate;
