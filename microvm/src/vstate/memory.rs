//! Guest RAM: anonymous, private, MAP_NORESERVE mappings through vm-memory, so a VM
//! costs host memory only for the pages its guest touches (which `resident_bytes`
//! counts).

use std::fs::File;
use std::os::unix::fs::FileExt;

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

/// Why guest memory could not be created.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// mmap failed or the ranges were invalid.
    #[error("mapping {size_mib} MiB of guest memory")]
    Map {
        /// Total size requested.
        size_mib: u64,
        /// What vm-memory reported.
        source: vm_memory::mmap::FromRangesError,
    },
    /// A range larger than the host's address space.
    #[error("guest memory range of {0:#x} bytes is too large for this host")]
    TooLarge(u64),
}

/// Maps one region per `(guest address, size)` range.
pub fn create(ranges: &[(u64, u64)]) -> Result<GuestMemoryMmap, MemoryError> {
    let converted = ranges
        .iter()
        .map(|&(addr, size)| {
            let size = usize::try_from(size).map_err(|_| MemoryError::TooLarge(size))?;
            Ok((GuestAddress(addr), size))
        })
        .collect::<Result<Vec<_>, MemoryError>>()?;
    let size_mib = ranges.iter().map(|r| r.1).sum::<u64>() >> 20;
    GuestMemoryMmap::from_ranges(&converted).map_err(|source| MemoryError::Map { size_mib, source })
}

/// How many bytes of guest memory this process has mapped in host RAM now: the pages
/// the guest (and the loader) touched. `mincore` finds the candidates cheaply (one
/// byte per page), but it also counts file pages that are merely in the page cache,
/// so `/proc/self/pagemap` settles the candidates. `None` if the kernel would not say.
pub fn resident_bytes(mem: &GuestMemoryMmap) -> Option<u64> {
    let pagemap = File::open("/proc/self/pagemap").ok()?;
    mem.iter().try_fold(0u64, |total, region| {
        let host = region
            .get_host_address(vm_memory::MemoryRegionAddress(0))
            .ok()?;
        let len = usize::try_from(region.len()).ok()?;
        let candidates = in_core(host, len)?;
        Some(total + present(&pagemap, host as u64, &candidates)? * PAGE)
    })
}

/// Host page size (x86_64).
const PAGE: u64 = 4096;
/// Pagemap entry bit: the page is present in this process's page tables.
const PAGEMAP_PRESENT: u64 = 1 << 63;

/// `mincore` of `host..host+len`: one byte per page, bit 0 set when in RAM.
fn in_core(host: *mut u8, len: usize) -> Option<Vec<u8>> {
    let mut vec = vec![0u8; len.div_ceil(PAGE as usize)];
    // SAFETY: `host..host+len` is one live, page-aligned mapping owned by the guest
    // memory object the caller borrows; `vec` has one byte per page of it.
    let rc = unsafe { libc::mincore(host.cast(), len, vec.as_mut_ptr()) };
    (rc == 0).then_some(vec)
}

/// How many of the `in_core` pages starting at `host` are present in our page
/// tables, reading pagemap only for runs of candidate pages.
fn present(pagemap: &File, host: u64, in_core: &[u8]) -> Option<u64> {
    let mut count = 0;
    let mut page = 0;
    let mut entries = Vec::new();
    while page < in_core.len() {
        let run = in_core[page..].iter().take_while(|&&b| b & 1 != 0).count();
        if run > 0 {
            entries.resize(run * 8, 0);
            pagemap
                .read_exact_at(&mut entries, (host / PAGE + page as u64) * 8)
                .ok()?;
            count += entries
                .chunks_exact(8)
                .filter(|e| {
                    u64::from_le_bytes((*e).try_into().unwrap_or_default()) & PAGEMAP_PRESENT != 0
                })
                .count() as u64;
        }
        page += run
            + in_core[page + run..]
                .iter()
                .take_while(|&&b| b & 1 == 0)
                .count();
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::Bytes;

    #[test]
    fn only_touched_pages_are_resident() {
        let mem = create(&[(0, 4 << 20)]).unwrap();
        assert_eq!(resident_bytes(&mem), Some(0), "mapped lazily");
        mem.write_obj(1u8, GuestAddress(0x1000)).unwrap();
        mem.write_obj(1u8, GuestAddress(0x3000)).unwrap();
        let touched = resident_bytes(&mem).unwrap();
        // Two 4 KiB pages, or one transparent huge page where THP is "always".
        assert!(touched == 0x2000 || touched == 2 << 20, "{touched:#x}");
    }

    #[test]
    fn ranges_become_regions_that_read_back_writes() {
        let mem = create(&[(0, 1 << 20), (4 << 20, 1 << 20)]).unwrap();
        assert_eq!(mem.num_regions(), 2);
        mem.write_obj(0xdead_beef_u32, GuestAddress((4 << 20) + 16))
            .unwrap();
        assert_eq!(
            mem.read_obj::<u32>(GuestAddress((4 << 20) + 16)).unwrap(),
            0xdead_beef
        );
        assert!(
            mem.read_obj::<u32>(GuestAddress(2 << 20)).is_err(),
            "hole stays unmapped"
        );
    }

    #[test]
    fn overlapping_ranges_are_an_error() {
        let err = create(&[(0, 2 << 20), (1 << 20, 2 << 20)]).unwrap_err();
        assert!(err.to_string().contains("guest memory"), "{err}");
    }
}
