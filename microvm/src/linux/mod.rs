//! The Linux guest: boot a kernel (ELF vmlinux or bzImage) with an initramfs whose
//! `/init` is the workload, the way Firecracker does.
//!
//! - `layout.rs`: where things go in guest memory;
//! - `loader.rs`: the kernel, through linux-loader;
//! - `boot_params.rs`: the zero page (e820, command line, initrd);
//! - `mptable.rs`: the MP table, so the kernel sees every vCPU and the IOAPIC;
//! - `acpi.rs`: the same as ACPI tables (RSDP, XSDT, MADT), for kernels built without
//!   MP-table support;
//! - `cpu.rs`: the vCPU state the 64-bit boot protocol asks for;
//! - `pvh.rs`: the PVH start info and 32-bit entry state, for ELF kernels with the note;
//! - `devices.rs`: serial with its interrupt, i8042, CMOS clock, the ready/exit-status ports;
//! - `initramfs.rs`: the newc cpio writer behind `microvm initramfs`;
//! - `run.rs`: the boot recipe behind `microvm run`.

pub mod acpi;
pub mod boot_params;
pub mod cpu;
pub mod devices;
pub mod initramfs;
pub mod layout;
pub mod loader;
pub mod mptable;
pub mod pvh;
pub mod run;
