//! Guest physical memory layout of the kernel-less guest and the x86 selector and
//! port numbers the monitor and its CPL0 stub agree on. Constants only.

/// Size of a small page.
pub const PAGE_SIZE: u64 = 0x1000; // 4 KiB
/// Size of a large (PD-level) page.
pub const LARGE_PAGE_SIZE: u64 = 0x20_0000; // 2 MiB

/// The top-level page table (PML4).
pub const PML4_ADDR: u64 = 0x1000; // page 0 stays unmapped so NULL faults
/// The page-directory-pointer table, covering the first 512 GiB.
pub const PDPT_ADDR: u64 = 0x2000;
/// The first page directory; one per GiB follows it.
pub const PD_ADDR: u64 = 0x3000;
/// How many page directories the layout has room for (one per GiB of RAM).
pub const PD_COUNT: u64 = 4; // 0x3000..0x7000, up to 4 GiB
/// The page table for the first 2 MiB, mapped in 4 KiB pages so page 0 can be left out.
pub const PT0_ADDR: u64 = 0x7000;
/// The global descriptor table.
pub const GDT_ADDR: u64 = 0x8000;
/// The interrupt descriptor table (exception vectors 0-31 only).
pub const IDT_ADDR: u64 = 0x9000;
/// The 64-bit task-state segment (holds RSP0 and IST1).
pub const TSS_ADDR: u64 = 0xa000;
/// The stub code: the syscall entry and one exit stub per exception vector. Mapped
/// read-only and user-executable: on PVM hosts the syscall entry runs at CPL3.
pub const STUB_ADDR: u64 = 0xb000;
/// Lowest address of the CPL0 stack exceptions are delivered on.
pub const KERNEL_STACK_BOTTOM: u64 = 0xc000;
/// Top of the CPL0 stack (RSP0 and IST1 in the TSS).
pub const KERNEL_STACK_TOP: u64 = 0x1_0000; // 64 KiB
/// First address a program segment may use: everything below is supervisor-only.
pub const USER_START: u64 = 0x1_0000; // 64 KiB

/// Where a static-pie program (ET_DYN) is loaded, as Linux's ELF_ET_DYN_BASE is for PIEs.
pub const STATIC_PIE_BASE: u64 = 0x40_0000; // 4 MiB
/// Address space kept free for brk above the program image, at most.
pub const BRK_MAX: u64 = 0x800_0000; // 128 MiB
/// Size of the main thread's stack at the top of guest memory.
pub const STACK_SIZE: u64 = 0x80_0000; // 8 MiB

/// Smallest guest memory `exec` accepts.
pub const MIN_MEM_MIB: u64 = 16;
/// Largest guest memory `exec` accepts: stays below the usual 32-bit MMIO hole.
pub const MAX_MEM_MIB: u64 = 3072;

/// Null selector.
pub const NULL_SELECTOR: u16 = 0x00;
/// 64-bit kernel code segment (CPL0): the syscall entry runs here.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data segment; SYSCALL loads SS from STAR as KERNEL_CS + 8.
pub const KERNEL_DS: u16 = 0x10;
/// User data segment (RPL 3); SYSRET loads SS from STAR as KERNEL_DS + 8.
pub const USER_DS: u16 = 0x18 | 3;
/// 64-bit user code segment (RPL 3); SYSRET loads CS from STAR as KERNEL_DS + 16.
pub const USER_CS: u16 = 0x20 | 3;
/// The TSS descriptor (16 bytes in long mode).
pub const TSS_SELECTOR: u16 = 0x28;
/// Number of 8-byte GDT slots: null, 4 segments, and the 2-slot TSS.
pub const GDT_ENTRIES: usize = 7;
/// Number of IDT gates: the architectural exception vectors.
pub const IDT_ENTRIES: usize = 32;

/// The port the syscall entry writes to: each guest `syscall` is an exit on it. The
/// TSS I/O bitmap opens it to CPL3 too, where PVM runs the entry.
pub const SYSCALL_PORT: u16 = 0xe0;
/// Exception vector N's stub writes to port EXCEPTION_PORT_BASE + N (N < 32).
pub const EXCEPTION_PORT_BASE: u16 = 0xc0; // 0xc0..=0xdf
/// Offset of the syscall entry in the stub page (MSR_LSTAR points here).
pub const SYSCALL_ENTRY_OFFSET: u64 = 0x0;
/// Offset of the SYSRET instruction in the stub page (after the 2-byte `out`): the
/// vCPU starts here to enter CPL3.
pub const SYSRET_OFFSET: u64 = 0x2;
/// Offset of the first exception stub in the stub page.
pub const EXCEPTION_STUBS_OFFSET: u64 = 0x100;
/// Bytes per exception stub.
pub const EXCEPTION_STUB_SIZE: u64 = 8;

/// I/O port of the first 16550 UART (COM1).
pub const COM1_PORT: u16 = 0x3f8;
/// I/O ports of the 8042 keyboard controller (data at 0x60, command/status at 0x64).
pub const I8042_PORT: u16 = 0x60;
/// The CMOS real-time clock: index port; data at the next port.
pub const CMOS_RTC_PORT: u16 = 0x70;
