//! Identity-mapped 4-level page tables for the kernel-less guest: guest virtual equals
//! guest physical for all RAM. Page 0 is left unmapped so NULL dereferences fault, the
//! system area (tables, GDT, IDT, TSS, CPL0 stack) is supervisor-only, the stub page
//! read-only, and the rest is user-accessible. The first 2 MiB use 4 KiB pages, the
//! rest 2 MiB pages.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{
    LARGE_PAGE_SIZE, PAGE_SIZE, PDPT_ADDR, PD_ADDR, PD_COUNT, PML4_ADDR, PT0_ADDR, STUB_ADDR,
    USER_START,
};

/// Present.
pub const PTE_PRESENT: u64 = 1 << 0;
/// Writable.
pub const PTE_WRITABLE: u64 = 1 << 1;
/// Accessible from CPL3.
pub const PTE_USER: u64 = 1 << 2;
/// A PD entry maps a 2 MiB page.
pub const PTE_LARGE: u64 = 1 << 7;

/// Why the page tables could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PagingError {
    /// RAM larger than the layout's page directories cover.
    #[error("guest memory of {0:#x} bytes is more than the page tables cover ({1:#x})")]
    TooMuchMemory(u64, u64),
    /// RAM not a whole number of 2 MiB pages.
    #[error("guest memory size {0:#x} is not a multiple of 2 MiB")]
    Unaligned(u64),
    /// A table did not fit in guest memory.
    #[error("writing page tables into guest memory")]
    Write(#[from] vm_memory::GuestMemoryError),
}

/// Writes the page tables for `mem_size` bytes of RAM; CR3 must point at `PML4_ADDR`.
pub fn setup_identity_map(mem: &GuestMemoryMmap, mem_size: u64) -> Result<(), PagingError> {
    let limit = PD_COUNT * 512 * LARGE_PAGE_SIZE;
    if mem_size > limit {
        return Err(PagingError::TooMuchMemory(mem_size, limit));
    }
    if mem_size % LARGE_PAGE_SIZE != 0 || mem_size == 0 {
        return Err(PagingError::Unaligned(mem_size));
    }
    let table = PTE_PRESENT | PTE_WRITABLE | PTE_USER;
    mem.write_obj(PDPT_ADDR | table, GuestAddress(PML4_ADDR))?;
    let large_pages = mem_size / LARGE_PAGE_SIZE;
    for pd in 0..large_pages.div_ceil(512) {
        let pd_addr = PD_ADDR + pd * PAGE_SIZE;
        mem.write_obj(pd_addr | table, GuestAddress(PDPT_ADDR + pd * 8))?;
    }
    mem.write_obj(PT0_ADDR | table, GuestAddress(PD_ADDR))?;
    for page in 1..large_pages {
        let entry = (page * LARGE_PAGE_SIZE) | table | PTE_LARGE;
        mem.write_obj(entry, GuestAddress(PD_ADDR + page * 8))?;
    }
    write_first_table(mem)
}

/// The 4 KiB entries of the first 2 MiB: none for page 0, supervisor below USER_START.
fn write_first_table(mem: &GuestMemoryMmap) -> Result<(), PagingError> {
    let mut entries = [0u64; 512];
    for (index, entry) in entries.iter_mut().enumerate().skip(1) {
        let addr = index as u64 * PAGE_SIZE;
        *entry = match addr {
            STUB_ADDR => addr | PTE_PRESENT | PTE_USER,
            a if a < USER_START => addr | PTE_PRESENT | PTE_WRITABLE,
            _ => addr | PTE_PRESENT | PTE_WRITABLE | PTE_USER,
        };
    }
    let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
    mem.write_slice(&bytes, GuestAddress(PT0_ADDR))?;
    Ok(())
}

/// Walks the tables like the MMU would: the physical address and whether CPL3 may use
/// it, or `None` if `virt` is not mapped. Used by tests and by fault reports.
pub fn translate(mem: &GuestMemoryMmap, virt: u64) -> Option<(u64, bool)> {
    let read = |addr: u64| mem.read_obj::<u64>(GuestAddress(addr)).ok();
    let index = |level: u32| (virt >> (12 + 9 * level)) & 0x1ff;
    let mut table = PML4_ADDR;
    let mut user = true;
    for level in (0..4).rev() {
        let entry = read(table + index(level) * 8)?;
        if entry & PTE_PRESENT == 0 {
            return None;
        }
        user &= entry & PTE_USER != 0;
        let frame = entry & 0x000f_ffff_ffff_f000;
        if level == 1 && entry & PTE_LARGE != 0 {
            return Some((frame + (virt & (LARGE_PAGE_SIZE - 1)), user));
        }
        if level == 0 {
            return Some((frame + (virt & (PAGE_SIZE - 1)), user));
        }
        table = frame;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(size: u64) -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size as usize)]).unwrap()
    }

    #[test]
    fn ram_is_identity_mapped_for_user_code() {
        let size = 64 << 20;
        let mem = memory(size);
        setup_identity_map(&mem, size).unwrap();
        for addr in [USER_START, 0x40_1234, 0x20_0000, size - 8] {
            assert_eq!(translate(&mem, addr), Some((addr, true)), "{addr:#x}");
        }
    }

    #[test]
    fn null_page_and_memory_beyond_ram_are_unmapped() {
        let size = 32 << 20;
        let mem = memory(size);
        setup_identity_map(&mem, size).unwrap();
        assert_eq!(translate(&mem, 0), None);
        assert_eq!(translate(&mem, 0xfff), None);
        assert_eq!(translate(&mem, size), None);
        assert_eq!(translate(&mem, 1 << 40), None);
    }

    #[test]
    fn system_area_is_supervisor_only() {
        let mem = memory(16 << 20);
        setup_identity_map(&mem, 16 << 20).unwrap();
        assert_eq!(translate(&mem, PML4_ADDR), Some((PML4_ADDR, false)));
        assert_eq!(
            translate(&mem, USER_START - 1),
            Some((USER_START - 1, false))
        );
    }

    #[test]
    fn stub_is_user_executable_but_read_only() {
        // On PVM the syscall entry runs at CPL3, so it must be reachable from there.
        let mem = memory(16 << 20);
        setup_identity_map(&mem, 16 << 20).unwrap();
        assert_eq!(translate(&mem, STUB_ADDR), Some((STUB_ADDR, true)));
        let pte: u64 = mem
            .read_obj(GuestAddress(PT0_ADDR + (STUB_ADDR >> 12) * 8))
            .unwrap();
        assert_eq!(pte & PTE_WRITABLE, 0);
    }

    #[test]
    fn more_than_one_gib_uses_several_page_directories() {
        let size = 1536 << 20;
        let mem = memory(size);
        setup_identity_map(&mem, size).unwrap();
        assert_eq!(
            translate(&mem, (1 << 30) + 0x1234),
            Some(((1 << 30) + 0x1234, true))
        );
    }

    #[test]
    fn sizes_the_layout_cannot_map_are_refused() {
        let mem = memory(16 << 20);
        assert!(matches!(
            setup_identity_map(&mem, (16 << 20) + 4096),
            Err(PagingError::Unaligned(_))
        ));
        assert!(matches!(
            setup_identity_map(&mem, 8 << 30),
            Err(PagingError::TooMuchMemory(..))
        ));
    }
}
