//! The global descriptor table and task-state segment of the kernel-less guest: kernel
//! code and data for the CPL0 stub, user data and code for the program (ordered as
//! SYSCALL/SYSRET require), and a TSS whose RSP0/IST1 give exceptions a stack.

use kvm_bindings::kvm_segment;
use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

use super::layout::{
    GDT_ADDR, GDT_ENTRIES, KERNEL_CS, KERNEL_DS, KERNEL_STACK_TOP, SYSCALL_PORT, TSS_ADDR,
    TSS_SELECTOR, USER_CS, USER_DS,
};

/// Size of a 64-bit TSS without I/O bitmap (the architectural minimum limit is 0x67).
pub const TSS_SIZE: u64 = 104;
/// I/O permission bitmap bytes: ports 0-255, plus the all-ones byte the CPU requires
/// after the bitmap.
pub const IO_BITMAP_BYTES: u64 = 256 / 8 + 1;
/// TSS with its bitmap.
pub const TSS_WITH_BITMAP: u64 = TSS_SIZE + IO_BITMAP_BYTES;

/// Encodes a code/data segment descriptor. `flags` holds the G/DB/L nibble, `access` the
/// P/DPL/S/type byte; base and limit are spread over the descriptor as the SDM shows.
pub const fn descriptor(flags: u64, access: u64, base: u64, limit: u64) -> u64 {
    ((base & 0xff00_0000) << 32)
        | ((flags & 0xf) << 52)
        | ((limit & 0xf_0000) << 32)
        | ((access & 0xff) << 40)
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0xffff)
}

/// The two 8-byte slots of a 64-bit available-TSS descriptor.
pub fn tss_descriptor(base: u64, limit: u64) -> [u64; 2] {
    [descriptor(0x0, 0x89, base, limit), base >> 32]
}

/// Kernel code: long mode (L), present, DPL0, execute/read.
pub const KERNEL_CODE: u64 = descriptor(0xa, 0x9b, 0, 0xf_ffff);
/// Kernel data: present, DPL0, read/write.
pub const KERNEL_DATA: u64 = descriptor(0xc, 0x93, 0, 0xf_ffff);
/// User data: present, DPL3, read/write.
pub const USER_DATA: u64 = descriptor(0xc, 0xf3, 0, 0xf_ffff);
/// User code: long mode (L), present, DPL3, execute/read.
pub const USER_CODE: u64 = descriptor(0xa, 0xfb, 0, 0xf_ffff);

/// The whole table, indexed by selector / 8.
pub fn gdt_entries() -> [u64; GDT_ENTRIES] {
    let [tss_low, tss_high] = tss_descriptor(TSS_ADDR, TSS_WITH_BITMAP - 1);
    [
        0,
        KERNEL_CODE,
        KERNEL_DATA,
        USER_DATA,
        USER_CODE,
        tss_low,
        tss_high,
    ]
}

/// The TSS bytes: RSP0 and IST1 on the CPL0 stack, and an I/O permission bitmap that
/// opens only the syscall port to CPL3 (PVM runs the syscall entry at CPL3, see
/// `kernelless`); every other port faults there.
pub fn tss_bytes() -> [u8; TSS_WITH_BITMAP as usize] {
    let mut tss = [0u8; TSS_WITH_BITMAP as usize];
    tss[4..12].copy_from_slice(&KERNEL_STACK_TOP.to_le_bytes()); // RSP0
    tss[36..44].copy_from_slice(&KERNEL_STACK_TOP.to_le_bytes()); // IST1
    tss[102..104].copy_from_slice(&(TSS_SIZE as u16).to_le_bytes()); // I/O map base
    let bitmap = &mut tss[TSS_SIZE as usize..];
    bitmap.fill(0xff);
    bitmap[usize::from(SYSCALL_PORT / 8)] &= !(1 << (SYSCALL_PORT % 8));
    tss
}

/// Writes the GDT and the TSS into guest memory.
pub fn write_gdt_and_tss(mem: &GuestMemoryMmap) -> Result<(), GuestMemoryError> {
    let gdt: Vec<u8> = gdt_entries().iter().flat_map(|d| d.to_le_bytes()).collect();
    mem.write_slice(&gdt, GuestAddress(GDT_ADDR))?;
    mem.write_slice(&tss_bytes(), GuestAddress(TSS_ADDR))
}

/// The `kvm_segment` KVM expects for a descriptor loaded with `selector`, decoded from
/// the same bits written into the GDT so the two cannot disagree.
pub fn kvm_segment_from(selector: u16, desc: u64) -> kvm_segment {
    let base = ((desc >> 16) & 0xff_ffff) | ((desc >> 32) & 0xff00_0000);
    let raw_limit = (desc & 0xffff) | ((desc >> 32) & 0xf_0000);
    let granular = (desc >> 55) & 1 == 1;
    let limit = if granular {
        (raw_limit << 12) | 0xfff
    } else {
        raw_limit
    };
    kvm_segment {
        base,
        limit: limit as u32,
        selector,
        type_: ((desc >> 40) & 0xf) as u8,
        present: ((desc >> 47) & 1) as u8,
        dpl: ((desc >> 45) & 3) as u8,
        db: ((desc >> 54) & 1) as u8,
        s: ((desc >> 44) & 1) as u8,
        l: ((desc >> 53) & 1) as u8,
        g: granular as u8,
        avl: ((desc >> 52) & 1) as u8,
        unusable: 0,
        padding: 0,
    }
}

/// The segments KVM holds for the GDT's selectors.
#[derive(Debug, Clone, Copy)]
pub struct Segments {
    /// Kernel code (CPL0 stub).
    pub kernel_code: kvm_segment,
    /// Kernel data (SS while in the stub).
    pub kernel_data: kvm_segment,
    /// User code.
    pub user_code: kvm_segment,
    /// User data.
    pub user_data: kvm_segment,
    /// Task register (a busy 64-bit TSS once loaded).
    pub tss: kvm_segment,
}

/// Decodes all segments from [`gdt_entries`].
pub fn segments() -> Segments {
    let gdt = gdt_entries();
    let mut tss = kvm_segment_from(TSS_SELECTOR, gdt[usize::from(TSS_SELECTOR / 8)]);
    tss.type_ = 0xb; // a loaded TSS is busy
    Segments {
        kernel_code: kvm_segment_from(KERNEL_CS, gdt[usize::from(KERNEL_CS / 8)]),
        kernel_data: kvm_segment_from(KERNEL_DS, gdt[usize::from(KERNEL_DS / 8)]),
        user_code: kvm_segment_from(USER_CS, gdt[usize::from(USER_CS / 8)]),
        user_data: kvm_segment_from(USER_DS, gdt[usize::from(USER_DS / 8)]),
        tss,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_match_the_well_known_encodings() {
        // The values Linux and Firecracker use for flat 64-bit segments.
        assert_eq!(KERNEL_CODE, 0x00af_9b00_0000_ffff);
        assert_eq!(KERNEL_DATA, 0x00cf_9300_0000_ffff);
        assert_eq!(USER_DATA, 0x00cf_f300_0000_ffff);
        assert_eq!(USER_CODE, 0x00af_fb00_0000_ffff);
    }

    #[test]
    fn selectors_are_ordered_as_syscall_and_sysret_require() {
        // SYSCALL: CS = STAR.47:32, SS = +8. SYSRET: SS = STAR.63:48 + 8, CS = + 16.
        assert_eq!(KERNEL_DS, KERNEL_CS + 8);
        assert_eq!(USER_DS, (KERNEL_DS + 8) | 3);
        assert_eq!(USER_CS, (KERNEL_DS + 16) | 3);
    }

    #[test]
    fn segments_decode_back_from_the_table() {
        let s = segments();
        assert_eq!(
            (s.kernel_code.l, s.kernel_code.dpl, s.kernel_code.db),
            (1, 0, 0)
        );
        assert_eq!(
            (s.user_code.l, s.user_code.dpl, s.user_code.type_),
            (1, 3, 0xb)
        );
        assert_eq!((s.user_data.dpl, s.user_data.limit), (3, 0xffff_ffff));
        assert_eq!(
            (s.tss.base, s.tss.limit, s.tss.s),
            (TSS_ADDR, TSS_WITH_BITMAP as u32 - 1, 0)
        );
    }

    #[test]
    fn tss_points_rsp0_and_ist1_at_the_kernel_stack() {
        let tss = tss_bytes();
        let top = KERNEL_STACK_TOP.to_le_bytes();
        assert_eq!(&tss[4..12], &top);
        assert_eq!(&tss[36..44], &top);
        assert_eq!(tss_descriptor(0x1_2345_6789, 0x67)[1], 0x1);
    }

    #[test]
    fn io_bitmap_opens_only_the_syscall_port() {
        let tss = tss_bytes();
        let base = usize::from(u16::from_le_bytes([tss[102], tss[103]]));
        let open = |port: u16| tss[base + usize::from(port / 8)] & (1 << (port % 8)) == 0;
        assert!(open(SYSCALL_PORT));
        assert!((0..256).filter(|&p| p != SYSCALL_PORT).all(|p| !open(p)));
        assert_eq!(*tss.last().unwrap(), 0xff, "terminating byte");
        assert_eq!(segments().tss.limit as usize, tss.len() - 1);
    }
}
