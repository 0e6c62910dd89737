//! Mapping a program segment into guest memory instead of copying it, as `execve`
//! does: a private file mapping placed over the segment's pages, so the program costs
//! host memory only for the pages the guest touches (shared with the page cache until
//! written) and loading a multi-megabyte binary takes one `mmap` per segment.

use std::fs::File;
use std::os::unix::io::AsRawFd;

use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::elf::Segment;

/// Host page size the mapping is done in (x86_64).
const PAGE: u64 = 4096;

/// The page-aligned guest range a segment's file bytes are mapped at, and the file
/// offset of its first page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSpan {
    /// First page's guest address.
    pub start: u64,
    /// End of the last page holding file bytes.
    pub end: u64,
    /// File offset of `start`.
    pub file_offset: u64,
}

/// Where `segment` would be mapped, if it can be: its file offset and address must be
/// congruent modulo the page size (true of every linker's output), and no other
/// segment may share one of its pages (the mapping brings whole file pages).
pub fn span(segment: &Segment, all: &[Segment]) -> Option<PageSpan> {
    let start = segment.addr & !(PAGE - 1);
    let lead = segment.addr - start;
    let file_offset = segment.offset.checked_sub(lead)?;
    let end = segment
        .addr
        .checked_add(segment.file_size)?
        .checked_next_multiple_of(PAGE)?;
    let congruent = file_offset % PAGE == 0;
    let alone = all.iter().filter(|o| *o != segment).all(|o| {
        let o_end = o.addr.saturating_add(o.mem_size);
        o_end <= start || o.addr >= end
    });
    (congruent && alone && segment.file_size > 0).then_some(PageSpan {
        start,
        end,
        file_offset,
    })
}

/// Why a segment could not be mapped.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The span is not inside one guest memory region.
    #[error("the segment's pages are not in one guest memory region")]
    Range(#[source] vm_memory::GuestMemoryError),
    /// mmap refused.
    #[error("mapping the file over guest memory")]
    Mmap(#[source] std::io::Error),
    /// Zeroing the start of .bss in the last file page.
    #[error("zeroing the start of .bss")]
    Zero(#[source] vm_memory::GuestMemoryError),
}

/// Maps `segment`'s file bytes at `span` over guest memory, then zeroes the rest of
/// its last page where .bss begins (the file has other bytes there).
pub fn map(
    mem: &GuestMemoryMmap,
    file: &File,
    segment: &Segment,
    span: PageSpan,
) -> Result<(), MapError> {
    let len = (span.end - span.start) as usize;
    let slice = mem
        .get_slice(GuestAddress(span.start), len)
        .map_err(MapError::Range)?;
    let host = slice.ptr_guard_mut().as_ptr();
    let offset = libc::off_t::try_from(span.file_offset)
        .map_err(|_| MapError::Mmap(std::io::Error::from_raw_os_error(libc::EOVERFLOW)))?;
    // SAFETY: `host..host+len` lies inside one guest memory region (checked by
    // get_slice), which the caller's GuestMemoryMmap keeps mapped; MAP_FIXED replaces
    // those pages with a private mapping of the file, which stays valid until the
    // region is unmapped as a whole. No vCPU runs yet, and no Rust reference into guest
    // memory exists (it is only accessed through volatile slices).
    let mapped = unsafe {
        libc::mmap(
            host.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_FIXED,
            file.as_raw_fd(),
            offset,
        )
    };
    if mapped == libc::MAP_FAILED {
        return Err(MapError::Mmap(std::io::Error::last_os_error()));
    }
    zero_bss_head(mem, segment, span)
}

/// Zeroes from the end of the file bytes to the end of their page, when the segment
/// goes on (its .bss) past them.
fn zero_bss_head(mem: &GuestMemoryMmap, s: &Segment, span: PageSpan) -> Result<(), MapError> {
    let file_end = s.addr + s.file_size;
    let zero_end = span.end.min(s.addr + s.mem_size);
    if zero_end <= file_end {
        return Ok(());
    }
    let zeros = vec![0u8; (zero_end - file_end) as usize];
    mem.write_slice(&zeros, GuestAddress(file_end))
        .map_err(MapError::Zero)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(addr: u64, offset: u64, file_size: u64, mem_size: u64) -> Segment {
        Segment {
            addr,
            mem_size,
            offset,
            file_size,
        }
    }

    #[test]
    fn a_congruent_segment_maps_whole_pages() {
        let s = seg(0x40_1100, 0x1100, 0x2000, 0x3000);
        assert_eq!(
            span(&s, &[s]),
            Some(PageSpan {
                start: 0x40_1000,
                end: 0x40_4000,
                file_offset: 0x1000
            })
        );
    }

    #[test]
    fn incongruent_shared_page_or_empty_segments_are_copied_instead() {
        let odd = seg(0x40_1100, 0x1200, 0x100, 0x100);
        assert_eq!(span(&odd, &[odd]), None);
        let text = seg(0x40_0000, 0, 0x1800, 0x1800);
        let data = seg(0x40_1900, 0x1900, 0x100, 0x200);
        assert_eq!(span(&text, &[text, data]), None, "they share page 0x401000");
        let bss_only = seg(0x60_0000, 0x2000, 0, 0x1000);
        assert_eq!(span(&bss_only, &[bss_only]), None);
    }

    #[test]
    fn mapped_pages_cost_memory_only_once_touched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image");
        std::fs::write(&path, vec![7u8; 0x3000]).unwrap(); // now in the page cache
        let file = File::open(&path).unwrap();
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        let s = seg(0x40_0000, 0, 0x2800, 0x3000);
        map(&mem, &file, &s, span(&s, &[s]).unwrap()).unwrap();
        let touched = crate::vstate::memory::resident_bytes(&mem).unwrap();
        assert_eq!(touched, 0x1000, "only the page where .bss was zeroed");
    }

    #[test]
    fn mapped_bytes_match_the_file_and_bss_starts_zeroed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image");
        let bytes: Vec<u8> = (0..0x3000u32).map(|i| (i % 251) as u8 + 1).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        // File bytes 0x1010..0x1810 at 0x40_0010, then .bss up to 0x40_2000.
        let s = seg(0x40_0010, 0x1010, 0x800, 0x1ff0);
        let span = span(&s, &[s]).unwrap();
        map(&mem, &file, &s, span).unwrap();
        let mut got = vec![0u8; 0x800];
        mem.read_slice(&mut got, GuestAddress(0x40_0010)).unwrap();
        assert_eq!(got, bytes[0x1010..0x1810]);
        let mut bss = vec![1u8; 0x7f0];
        mem.read_slice(&mut bss, GuestAddress(0x40_0810)).unwrap();
        assert!(
            bss.iter().all(|&b| b == 0),
            "file bytes past the segment hidden"
        );
        mem.write_obj(0xabu8, GuestAddress(0x40_0010)).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap()[0x1010],
            bytes[0x1010],
            "private"
        );
    }
}
