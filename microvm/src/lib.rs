//! isolab's microVM monitor: one process per VM, built on the rust-vmm crates.
//!
//! - `vstate/` wraps the KVM objects (VM, vCPU, guest memory);
//! - `arch/x86_64/` holds the x86 details (layout constants, page tables, GDT, CPUID, MSRs);
//! - `devices/` holds the pure device models (serial, i8042, ready port, virtio);
//! - `kernelless/` runs a static Linux binary directly at CPL3 and answers its syscalls;
//! - `linux/` boots a Linux kernel with an initramfs;
//! - `kvm_flavor` tells hardware KVM from PVM.

pub mod kernelless;
pub mod kvm_flavor;
