//! Guest RAM: anonymous, private, MAP_NORESERVE mappings through vm-memory, so a VM
//! costs host memory only for the pages its guest touches.

use vm_memory::{GuestAddress, GuestMemoryMmap};

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

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestMemoryBackend};

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
