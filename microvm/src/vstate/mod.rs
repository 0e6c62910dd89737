//! Wrappers around the KVM objects: the VM, its vCPUs, and guest memory.

pub mod kick;
pub mod memory;
pub mod regs;
pub mod vcpu;
pub mod vm;
