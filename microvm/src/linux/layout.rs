//! Guest physical memory layout of the Linux guest (the x86 boot protocol's fixed
//! places, after Firecracker's). Constants only.

/// The GDT the vCPU starts with (the kernel replaces it at once).
pub const BOOT_GDT_ADDR: u64 = 0x500;
/// An empty IDT: interrupts stay off until the kernel sets up its own.
pub const BOOT_IDT_ADDR: u64 = 0x520;
/// The zero page (`struct boot_params`); RSI points here at entry.
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// The boot stack's top; the kernel switches to its own stack early.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Boot page tables: PML4, then one PDPT, then one page directory.
pub const PML4_ADDR: u64 = 0x9000;
/// The page-directory-pointer table of the boot page tables.
pub const PDPT_ADDR: u64 = 0xa000;
/// The page directory mapping the first 1 GiB with 2 MiB pages.
pub const PD_ADDR: u64 = 0xb000;
/// The kernel command line.
pub const CMDLINE_ADDR: u64 = 0x2_0000; // 128 KiB
/// Longest command line we pass (the 64-bit kernel accepts 2048 bytes by default).
pub const CMDLINE_MAX_SIZE: usize = 2048;
/// The MP table (floating pointer and configuration table), in the last KiB of
/// conventional memory where the kernel scans for it.
pub const MPTABLE_ADDR: u64 = 0x9_fc00;
/// The ACPI tables (RSDP, XSDT, MADT), in the BIOS area the kernel scans for the RSDP
/// (0xE0000-0xFFFFF, reserved in the e820 map).
pub const ACPI_TABLES_ADDR: u64 = 0xe_0000;
/// End of usable conventional memory: the EBDA starts here.
pub const EBDA_START: u64 = 0x9_fc00;
/// Start of high memory: the protected-mode kernel is loaded here.
pub const HIMEM_START: u64 = 0x10_0000; // 1 MiB
/// Start of the 32-bit MMIO hole (virtio-mmio devices, IOAPIC, LAPIC live above).
pub const MMIO_GAP_START: u64 = 0xc000_0000; // 3 GiB
/// End of the 32-bit MMIO hole; RAM beyond 3 GiB continues here.
pub const MMIO_GAP_END: u64 = 0x1_0000_0000; // 4 GiB
/// Where the first virtio-mmio device's registers are mapped.
pub const VIRTIO_MMIO_BASE: u64 = MMIO_GAP_START;
/// Size of one virtio-mmio device's register window.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// The first GSI given to virtio-mmio devices (0-15 are the legacy ISA lines).
pub const VIRTIO_IRQ_BASE: u32 = 5;
/// The COM1 serial port's interrupt line.
pub const SERIAL_IRQ: u32 = 4;
/// Where the IOAPIC is mapped (fixed by the in-kernel irqchip).
pub const IOAPIC_ADDR: u32 = 0xfec0_0000;
/// Where each local APIC is mapped.
pub const APIC_ADDR: u32 = 0xfee0_0000;
/// Smallest guest memory `run` accepts.
pub const MIN_MEM_MIB: u64 = 32;
/// Largest guest memory `run` accepts.
pub const MAX_MEM_MIB: u64 = 64 * 1024;
/// The PVH `hvm_start_info` (RBX points here when an ELF kernel is entered by PVH).
pub const PVH_INFO_ADDR: u64 = 0x6000;
/// The PVH module list (the initrd).
pub const PVH_MODLIST_ADDR: u64 = 0x6040;
/// The PVH memory map (the e820 entries, at most 8 here).
pub const PVH_MEMMAP_ADDR: u64 = 0x6080;
