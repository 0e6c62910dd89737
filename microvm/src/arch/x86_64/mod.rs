//! x86_64 details: memory layout, page tables, descriptor tables, registers, CPUID and
//! MSRs.

pub mod cpuid;
pub mod gdt;
pub mod idt;
pub mod layout;
pub mod msr;
pub mod paging;
pub mod regs;
