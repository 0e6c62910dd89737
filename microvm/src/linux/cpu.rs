//! The vCPU state the 64-bit Linux boot protocol asks for: long mode with an identity
//! map of the first GiB, a GDT with `__BOOT_CS`/`__BOOT_DS`, interrupts off, RSI
//! pointing at the zero page. Pure functions over kvm-bindings structs and guest memory.

use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};
use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

use super::layout::{
    BOOT_GDT_ADDR, BOOT_IDT_ADDR, BOOT_STACK_POINTER, PDPT_ADDR, PD_ADDR, PML4_ADDR, ZERO_PAGE_ADDR,
};

/// `__BOOT_CS`: the boot protocol's code selector.
pub const BOOT_CS: u16 = 0x10;
/// `__BOOT_DS`: the boot protocol's data selector.
pub const BOOT_DS: u16 = 0x18;
/// The TSS selector (KVM wants a usable TR).
const BOOT_TSS: u16 = 0x20;

const CR0_PE: u64 = 1;
const CR0_ET: u64 = 1 << 4;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
/// Page-table entry: present, writable.
const PTE_PRESENT_RW: u64 = 0x3;
/// Page-directory entry: present, writable, 2 MiB page.
const PDE_LARGE: u64 = 0x83;

/// A GDT entry from its flags (access byte and granularity nibble), base and limit.
pub fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    let base = u64::from(base);
    let limit = u64::from(limit);
    let flags = u64::from(flags);
    ((base & 0xff00_0000) << 32)
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0xffff)
        | ((limit & 0xf_0000) << 32)
        | ((flags & 0xf0ff) << 40)
}

/// The boot GDT: null, null, 64-bit code (0x10), data (0x18), TSS (0x20).
pub fn boot_gdt() -> [u64; 5] {
    [
        0,
        0,
        gdt_entry(0xa09b, 0, 0xf_ffff),
        gdt_entry(0xc093, 0, 0xf_ffff),
        gdt_entry(0x808b, 0, 0xf_ffff),
    ]
}

/// A descriptor's limit in bytes, as KVM takes it: page-granular limits (G set) are
/// scaled, so a flat segment reaches 4 GiB and not 1 MiB.
fn byte_limit(entry: u64) -> u32 {
    let limit = (((entry >> 32) & 0xf_0000) | (entry & 0xffff)) as u32;
    if (entry >> 55) & 1 == 1 {
        (limit << 12) | 0xfff
    } else {
        limit
    }
}

/// The KVM segment register a GDT `entry` loads with `selector`.
pub fn segment(entry: u64, selector: u16) -> kvm_segment {
    let bit = |n: u32| ((entry >> n) & 1) as u8;
    kvm_segment {
        base: ((entry >> 16) & 0xff_ffff) | (((entry >> 56) & 0xff) << 24),
        limit: byte_limit(entry),
        selector,
        type_: ((entry >> 40) & 0xf) as u8,
        present: bit(47),
        dpl: ((entry >> 45) & 3) as u8,
        db: bit(54),
        s: bit(44),
        l: bit(53),
        g: bit(55),
        avl: bit(52),
        unusable: u8::from(bit(47) == 0),
        padding: 0,
    }
}

/// Writes the boot GDT, an empty IDT and the page tables identity-mapping 1 GiB.
pub fn write_boot_tables(mem: &GuestMemoryMmap) -> Result<(), GuestMemoryError> {
    for (i, entry) in boot_gdt().iter().enumerate() {
        mem.write_obj(*entry, GuestAddress(BOOT_GDT_ADDR + 8 * i as u64))?;
    }
    mem.write_obj(0u64, GuestAddress(BOOT_IDT_ADDR))?;
    mem.write_obj(PDPT_ADDR | PTE_PRESENT_RW, GuestAddress(PML4_ADDR))?;
    mem.write_obj(PD_ADDR | PTE_PRESENT_RW, GuestAddress(PDPT_ADDR))?;
    for i in 0..512u64 {
        mem.write_obj((i << 21) | PDE_LARGE, GuestAddress(PD_ADDR + 8 * i))?;
    }
    Ok(())
}

/// The system registers at entry: long mode, paging on with the boot page tables.
pub fn boot_sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    let gdt = boot_gdt();
    let code = segment(gdt[2], BOOT_CS);
    let data = segment(gdt[3], BOOT_DS);
    sregs.gdt.base = BOOT_GDT_ADDR;
    sregs.gdt.limit = (std::mem::size_of_val(&gdt) - 1) as u16;
    sregs.idt.base = BOOT_IDT_ADDR;
    sregs.idt.limit = 7;
    sregs.cs = code;
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.tr = segment(gdt[4], BOOT_TSS);
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 |= CR4_PAE;
    sregs.cr0 |= CR0_PE | CR0_ET | CR0_PG;
    sregs.efer |= EFER_LME | EFER_LMA;
    sregs
}

/// The general registers at entry: RIP at the kernel's 64-bit entry, RSI at the zero
/// page, interrupts off.
pub fn boot_regs(entry: u64) -> kvm_regs {
    kvm_regs {
        rflags: 0x2,
        rip: entry,
        rsp: BOOT_STACK_POINTER,
        rbp: BOOT_STACK_POINTER,
        rsi: ZERO_PAGE_ADDR,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_entries_match_the_kernels_encoding() {
        // The values Linux's own boot code and Firecracker use for these descriptors.
        assert_eq!(gdt_entry(0xa09b, 0, 0xf_ffff), 0x00af_9b00_0000_ffff);
        assert_eq!(gdt_entry(0xc093, 0, 0xf_ffff), 0x00cf_9300_0000_ffff);
        assert_eq!(gdt_entry(0x808b, 0, 0xf_ffff), 0x008f_8b00_0000_ffff);
    }

    #[test]
    fn code_segment_is_64bit_ring0_at_boot_cs() {
        let sregs = boot_sregs(kvm_sregs::default());
        assert_eq!(
            (sregs.cs.selector, sregs.cs.l, sregs.cs.db, sregs.cs.dpl),
            (0x10, 1, 0, 0)
        );
        assert_eq!((sregs.cs.type_, sregs.cs.present, sregs.cs.s), (0xb, 1, 1));
        assert_eq!(
            (sregs.cs.limit, sregs.cs.g),
            (0xffff_ffff, 1),
            "page-granular limit in bytes"
        );
        assert_eq!(
            (sregs.ds.selector, sregs.ss.type_, sregs.ss.db),
            (0x18, 0x3, 1)
        );
        assert_eq!(
            (sregs.tr.selector, sregs.tr.type_, sregs.tr.s),
            (0x20, 0xb, 0)
        );
    }

    #[test]
    fn long_mode_and_paging_are_on() {
        let sregs = boot_sregs(kvm_sregs::default());
        assert_eq!(sregs.cr3, PML4_ADDR);
        assert_ne!(sregs.cr0 & CR0_PG, 0);
        assert_ne!(sregs.cr4 & CR4_PAE, 0);
        assert_eq!(sregs.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
        assert_eq!(sregs.gdt.limit, 39);
    }

    #[test]
    fn page_tables_identity_map_the_first_gib_in_2mib_pages() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        write_boot_tables(&mem).unwrap();
        let read = |addr| mem.read_obj::<u64>(GuestAddress(addr)).unwrap();
        assert_eq!(read(PML4_ADDR), PDPT_ADDR | 3);
        assert_eq!(read(PDPT_ADDR), PD_ADDR | 3);
        assert_eq!(read(PD_ADDR), 0x83);
        assert_eq!(read(PD_ADDR + 8 * 511), (511 << 21) | 0x83);
        assert_eq!(read(BOOT_GDT_ADDR + 16), 0x00af_9b00_0000_ffff);
    }

    #[test]
    fn registers_point_at_entry_and_zero_page() {
        let regs = boot_regs(0x10_0200);
        assert_eq!(
            (regs.rip, regs.rsi, regs.rflags),
            (0x10_0200, ZERO_PAGE_ADDR, 2)
        );
    }
}
