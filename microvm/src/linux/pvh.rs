//! The PVH boot protocol, used for an ELF `vmlinux` whose PVH note names a 32-bit
//! entry point: `hvm_start_info` (magic, command line, initrd as module 0, memory map)
//! written as little-endian bytes, and the flat 32-bit protected-mode vCPU state.

use kvm_bindings::{kvm_regs, kvm_sregs};
use linux_loader::loader::bootparam::boot_e820_entry;
use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

use super::cpu::{gdt_entry, segment, BOOT_CS, BOOT_DS};
use super::layout::{BOOT_GDT_ADDR, PVH_INFO_ADDR, PVH_MEMMAP_ADDR, PVH_MODLIST_ADDR};

/// `XEN_HVM_START_MAGIC_VALUE`.
pub const PVH_MAGIC: u32 = 0x336e_c578;
/// Most memory-map entries that fit between the map and the zero page.
pub const MAX_MEMMAP_ENTRIES: usize = 8;
const CR0_PE: u64 = 1;
const CR0_ET: u64 = 1 << 4;

/// The three PVH structures as bytes: start info, module list, memory map.
pub fn start_info(
    cmdline_addr: u64,
    initrd: Option<(u64, u64)>,
    memmap: &[boot_e820_entry],
    rsdp_addr: u64,
) -> [Vec<u8>; 3] {
    let memmap = &memmap[..memmap.len().min(MAX_MEMMAP_ENTRIES)];
    let mut info = Vec::with_capacity(56);
    info.extend(PVH_MAGIC.to_le_bytes());
    info.extend(1u32.to_le_bytes()); // version
    info.extend(0u32.to_le_bytes()); // flags
    info.extend(u32::from(initrd.is_some()).to_le_bytes());
    info.extend(
        if initrd.is_some() {
            PVH_MODLIST_ADDR
        } else {
            0
        }
        .to_le_bytes(),
    );
    info.extend(cmdline_addr.to_le_bytes());
    info.extend(rsdp_addr.to_le_bytes());
    info.extend(PVH_MEMMAP_ADDR.to_le_bytes());
    info.extend((memmap.len() as u32).to_le_bytes());
    info.extend(0u32.to_le_bytes());
    let mut modlist = Vec::new();
    if let Some((addr, size)) = initrd {
        modlist.extend(addr.to_le_bytes());
        modlist.extend(size.to_le_bytes());
        modlist.extend([0u8; 16]); // no module command line, reserved
    }
    let mut map = Vec::with_capacity(24 * memmap.len());
    for entry in memmap {
        let (addr, size, kind) = (entry.addr, entry.size, entry.r#type);
        map.extend(addr.to_le_bytes());
        map.extend(size.to_le_bytes());
        map.extend(kind.to_le_bytes());
        map.extend(0u32.to_le_bytes());
    }
    [info, modlist, map]
}

/// Writes the start info, module list and memory map, and a GDT with a 32-bit code
/// segment at `__BOOT_CS`.
pub fn write(
    mem: &GuestMemoryMmap,
    cmdline_addr: u64,
    initrd: Option<(u64, u64)>,
    memmap: &[boot_e820_entry],
    rsdp_addr: u64,
) -> Result<(), GuestMemoryError> {
    let [info, modlist, map] = start_info(cmdline_addr, initrd, memmap, rsdp_addr);
    mem.write_slice(&info, GuestAddress(PVH_INFO_ADDR))?;
    mem.write_slice(&modlist, GuestAddress(PVH_MODLIST_ADDR))?;
    mem.write_slice(&map, GuestAddress(PVH_MEMMAP_ADDR))?;
    mem.write_obj(
        gdt_entry(0xc09b, 0, 0xf_ffff),
        GuestAddress(BOOT_GDT_ADDR + u64::from(BOOT_CS)),
    )
}

/// Flat 32-bit protected mode, paging off, as the PVH entry expects.
pub fn sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    let code = segment(gdt_entry(0xc09b, 0, 0xf_ffff), BOOT_CS);
    let data = segment(gdt_entry(0xc093, 0, 0xf_ffff), BOOT_DS);
    sregs.gdt.base = BOOT_GDT_ADDR;
    sregs.gdt.limit = 5 * 8 - 1;
    sregs.cs = code;
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.tr = segment(gdt_entry(0x008b, 0, 0xf_ffff), 0x20);
    sregs.cr0 = CR0_PE | CR0_ET;
    sregs.cr4 = 0;
    sregs.efer = 0;
    sregs
}

/// EIP at the PVH entry, EBX at the start info.
pub fn regs(entry: u64) -> kvm_regs {
    kvm_regs {
        rflags: 0x2,
        rip: entry,
        rbx: PVH_INFO_ADDR,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::boot_params::{e820_map, ram_ranges};

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    #[test]
    fn start_info_has_the_layout_of_hvm_start_info() {
        let map = e820_map(&ram_ranges(128 << 20));
        let [info, modlist, memmap] =
            start_info(0x2_0000, Some((0x700_0000, 0x1234)), &map, 0xe_0000);
        assert_eq!(
            info.len(),
            std::mem::size_of::<linux_loader::loader::elf::start_info::hvm_start_info>()
        );
        assert_eq!(
            (u32_at(&info, 0), u32_at(&info, 4), u32_at(&info, 12)),
            (PVH_MAGIC, 1, 1)
        );
        assert_eq!(
            (u64_at(&info, 16), u64_at(&info, 24)),
            (PVH_MODLIST_ADDR, 0x2_0000)
        );
        assert_eq!((u64_at(&info, 40), u32_at(&info, 48)), (PVH_MEMMAP_ADDR, 3));
        assert_eq!(
            (u64_at(&modlist, 0), u64_at(&modlist, 8)),
            (0x700_0000, 0x1234)
        );
        assert_eq!(memmap.len(), 3 * 24);
        assert_eq!((u64_at(&memmap, 48), u32_at(&memmap, 64)), (0x10_0000, 1));
        assert!(
            PVH_MEMMAP_ADDR + (MAX_MEMMAP_ENTRIES * 24) as u64
                <= crate::linux::layout::ZERO_PAGE_ADDR
        );
    }

    #[test]
    fn without_an_initrd_there_are_no_modules() {
        let [info, modlist, _] = start_info(0x2_0000, None, &[], 0xe_0000);
        assert_eq!((u32_at(&info, 12), u64_at(&info, 16)), (0, 0));
        assert!(modlist.is_empty());
    }

    #[test]
    fn vcpu_starts_in_flat_32bit_protected_mode() {
        let s = sregs(kvm_sregs::default());
        assert_eq!((s.cr0 & 0x8000_0001, s.efer, s.cr4), (1, 0, 0));
        assert_eq!(
            (s.cs.l, s.cs.db, s.cs.limit, s.cs.g),
            (0, 1, 0xffff_ffff, 1)
        );
        assert_eq!((s.ds.type_, s.ds.db), (3, 1));
        let r = regs(0x100_0000);
        assert_eq!((r.rip, r.rbx), (0x100_0000, PVH_INFO_ADDR));
    }
}
