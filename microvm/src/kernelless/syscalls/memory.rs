//! The guest's heap and mappings: `brk` over `[brk_start, mmap_start)` and an allocator
//! for `mmap`/`munmap`/`mremap` over `[mmap_start, mmap_end)`.
//!
//! Guest memory is identity mapped and always present, so "mapping" is bookkeeping plus
//! the Linux guarantee that new anonymous memory reads as zeros. That guarantee is kept
//! by one invariant: every page of the two ranges that is not handed out holds zeros.
//! Memory is zeroed when it is given back (`munmap`, a shrinking `brk`), by returning the
//! host pages to the host kernel, which also lowers the monitor's RSS.

use std::collections::BTreeMap;

use syscalls::Errno;

use super::user_memory::UserMemory;
use super::{AddressSpace, SysResult, SyscallHandler};

/// Guest page size.
pub const PAGE: u64 = 4096;

/// Rounds `v` up to a page boundary; `None` on overflow.
fn page_up(v: u64) -> Option<u64> {
    v.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
}

/// A set of disjoint, non-adjacent half-open ranges `[start, end)`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RangeSet {
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// Adds `[start, end)`, merging with neighbours.
    pub fn insert(&mut self, mut start: u64, mut end: u64) {
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(..=end)
            .filter(|(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.ranges.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
    }

    /// Removes `[start, end)`, splitting ranges that straddle it.
    pub fn remove(&mut self, start: u64, end: u64) {
        for (s, e) in self.overlapping(start, end) {
            self.ranges.remove(&s);
            if s < start {
                self.ranges.insert(s, start);
            }
            if e > end {
                self.ranges.insert(end, e);
            }
        }
    }

    /// The stored ranges that overlap `[start, end)`, whole.
    pub fn overlapping(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        self.ranges
            .range(..end)
            .filter(|(_, &e)| e > start)
            .map(|(&s, &e)| (s, e))
            .collect()
    }

    /// Whether all of `[start, end)` is in the set.
    pub fn contains(&self, start: u64, end: u64) -> bool {
        self.ranges
            .range(..=start)
            .next_back()
            .is_some_and(|(_, &e)| e >= end)
    }

    /// The highest free gap of `len` bytes inside `[lo, hi)`, as its start.
    pub fn highest_gap(&self, lo: u64, hi: u64, len: u64) -> Option<u64> {
        let mut top = hi;
        for (&s, &e) in self.ranges.range(..hi).rev() {
            if e <= top && top - e >= len && top - len >= lo {
                return Some(top - len);
            }
            top = top.min(s);
        }
        (top >= lo && top - lo >= len).then(|| top - len)
    }

    /// Total bytes in the set.
    pub fn total(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }
}

/// The program break and the mapped ranges of one guest.
#[derive(Debug)]
pub struct MemoryState {
    space: AddressSpace,
    brk: u64,
    maps: RangeSet,
}

impl MemoryState {
    /// Empty heap and no mappings; `None` if the ranges are inconsistent.
    pub fn new(space: AddressSpace) -> Option<Self> {
        // brk_start may end mid-page (the end of .bss); the mmap area must be in pages.
        let aligned = space.mmap_start % PAGE == 0 && space.mmap_end % PAGE == 0;
        let ordered = space.brk_start <= space.mmap_start && space.mmap_start < space.mmap_end;
        (aligned && ordered).then(|| Self {
            space,
            brk: space.brk_start,
            maps: RangeSet::default(),
        })
    }

    /// Bytes of the heap and mappings in use.
    pub fn used(&self) -> u64 {
        (self.brk - self.space.brk_start) + self.maps.total()
    }

    /// `brk(2)`: moves the break inside `[brk_start, mmap_start]`; answers the break.
    pub fn brk(&mut self, um: &UserMemory<'_>, want: u64) -> u64 {
        if want < self.space.brk_start || want > self.space.mmap_start {
            return self.brk;
        }
        if want < self.brk {
            let from = page_up(want).unwrap_or(want);
            let to = page_up(self.brk).unwrap_or(self.brk);
            if to > from && um.discard(from, (to - from) as usize).is_err() {
                return self.brk;
            }
        }
        self.brk = want;
        want
    }

    /// Chooses and records the range for a new mapping of `len` (page-rounded) bytes.
    fn place(&mut self, um: &UserMemory<'_>, addr: u64, len: u64, flags: i32) -> SysResult {
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        let inside = addr >= self.space.mmap_start && end <= self.space.mmap_end;
        if flags & (libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE) != 0 {
            if addr % PAGE != 0 {
                return Err(Errno::EINVAL);
            }
            if !inside {
                return Err(Errno::ENOMEM);
            }
            if !self.maps.overlapping(addr, end).is_empty() {
                if flags & libc::MAP_FIXED_NOREPLACE != 0 {
                    return Err(Errno::EEXIST);
                }
                self.unmap_range(um, addr, end)?;
            }
        } else if !(addr % PAGE == 0 && inside && self.maps.overlapping(addr, end).is_empty()) {
            let (lo, hi) = (self.space.mmap_start, self.space.mmap_end);
            let start = self.maps.highest_gap(lo, hi, len).ok_or(Errno::ENOMEM)?;
            self.maps.insert(start, start + len);
            return Ok(start);
        }
        self.maps.insert(addr, end);
        Ok(addr)
    }

    /// Zeroes and forgets the mapped parts of `[start, end)`.
    fn unmap_range(&mut self, um: &UserMemory<'_>, start: u64, end: u64) -> Result<(), Errno> {
        for (s, e) in self.maps.overlapping(start, end) {
            let (s, e) = (s.max(start), e.min(end));
            um.discard(s, (e - s) as usize)?;
        }
        self.maps.remove(start, end);
        Ok(())
    }

    /// `munmap(2)`. Ranges outside the mmap area (the image, the stack) are left alone.
    pub fn munmap(&mut self, um: &UserMemory<'_>, addr: u64, len: u64) -> SysResult {
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::EINVAL)?;
        if addr % PAGE != 0 || len == 0 {
            return Err(Errno::EINVAL);
        }
        let start = addr.max(self.space.mmap_start);
        let end = end.min(self.space.mmap_end);
        if start < end {
            self.unmap_range(um, start, end)?;
        }
        Ok(0)
    }

    /// `mprotect(2)`: checked, then accepted; the guest runs with all its memory
    /// readable and writable (there is no separate guest kernel to enforce it).
    pub fn mprotect(&self, addr: u64, len: u64) -> SysResult {
        if addr % PAGE != 0 || page_up(len).and_then(|l| addr.checked_add(l)).is_none() {
            return Err(Errno::EINVAL);
        }
        Ok(0)
    }

    /// `madvise(2)`: `MADV_DONTNEED` zeroes (and gives back to the host) the mapped
    /// pages and heap pages of the range, as Linux does for private anonymous memory;
    /// every other advice is accepted and ignored.
    pub fn madvise(&mut self, um: &UserMemory<'_>, addr: u64, len: u64, advice: u64) -> SysResult {
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::EINVAL)?;
        if addr % PAGE != 0 {
            return Err(Errno::EINVAL);
        }
        if advice as i32 != libc::MADV_DONTNEED || addr == end {
            return Ok(0);
        }
        // The page holding the image's end is not heap: under Linux it would revert to
        // the file's contents, not to zeros, so it is left alone.
        let heap_start = page_up(self.space.brk_start).unwrap_or(self.space.brk_start);
        let heap = (heap_start, page_up(self.brk).unwrap_or(self.brk));
        let mut ranges = self.maps.overlapping(addr, end);
        ranges.push(heap);
        for (s, e) in ranges {
            let (s, e) = (s.max(addr), e.min(end));
            if s < e {
                um.discard(s, (e - s) as usize)?;
            }
        }
        Ok(0)
    }

    /// `mremap(2)` with `MREMAP_MAYMOVE`; `MREMAP_FIXED` and `MREMAP_DONTUNMAP` are
    /// refused with `EINVAL`.
    pub fn mremap(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let (old, old_len, new_len, flags) = (a[0], a[1], a[2], a[3] as i32);
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        if old % PAGE != 0 || new_len == 0 || flags & !libc::MREMAP_MAYMOVE != 0 {
            return Err(Errno::EINVAL);
        }
        let old_end = old.checked_add(old_len).ok_or(Errno::EFAULT)?;
        if old_len == 0 || !self.maps.contains(old, old_end) {
            return Err(Errno::EFAULT);
        }
        if new_len <= old_len {
            self.unmap_range(um, old + new_len, old_end)?;
            return Ok(old);
        }
        let grow_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
        if grow_end <= self.space.mmap_end && self.maps.overlapping(old_end, grow_end).is_empty() {
            self.maps.insert(old_end, grow_end);
            return Ok(old);
        }
        if flags & libc::MREMAP_MAYMOVE == 0 {
            return Err(Errno::ENOMEM);
        }
        let new = self.place(um, 0, new_len, 0)?;
        copy_chunked(um, old, new, old_len as usize)?;
        self.unmap_range(um, old, old_end)?;
        Ok(new)
    }
}

/// Copies between two non-overlapping guest ranges through a bounded host buffer.
fn copy_chunked(um: &UserMemory<'_>, src: u64, dst: u64, len: usize) -> Result<(), Errno> {
    const CHUNK: usize = 1 << 20;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(CHUNK);
        um.copy_within(src + done as u64, dst + done as u64, n)?;
        done += n;
    }
    Ok(())
}

impl SyscallHandler {
    /// `mmap(2)`: anonymous memory, or a private copy of a file's contents.
    pub(super) fn mmap(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let (addr, len, prot, flags, fd, offset) =
            (a[0], a[1], a[2] as i32, a[3] as i32, a[4], a[5]);
        let len = page_up(len).filter(|&l| l > 0).ok_or(Errno::EINVAL)?;
        let kind = flags & libc::MAP_TYPE;
        if !matches!(
            kind,
            libc::MAP_PRIVATE | libc::MAP_SHARED | libc::MAP_SHARED_VALIDATE
        ) || offset % PAGE != 0
        {
            return Err(Errno::EINVAL);
        }
        if flags & libc::MAP_ANONYMOUS != 0 {
            return self.memory.place(um, addr, len, flags);
        }
        let host = self.fds.host_fd(fd)?;
        if kind != libc::MAP_PRIVATE && prot & libc::PROT_WRITE != 0 {
            // A shared writable mapping would need writes to reach the file.
            return Err(Errno::ENODEV);
        }
        let start = self.memory.place(um, addr, len, flags)?;
        let iov = um.host_iovecs(start, len as usize)?;
        if let Err(e) = super::host::preadv(host, &iov, offset) {
            self.memory.unmap_range(um, start, start + len)?;
            return Err(if e == Errno::EISDIR { Errno::ENODEV } else { e });
        }
        Ok(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernelless::syscalls::tests::{err, Guest, SCRATCH, SPACE};
    use syscalls::Sysno;

    const ANON: u64 = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    const RW: u64 = (libc::PROT_READ | libc::PROT_WRITE) as u64;

    #[test]
    fn range_set_merges_splits_and_finds_gaps() {
        let mut s = RangeSet::default();
        s.insert(0x1000, 0x2000);
        s.insert(0x2000, 0x3000);
        assert_eq!(s.overlapping(0, u64::MAX), vec![(0x1000, 0x3000)]);
        s.remove(0x1800, 0x2800);
        assert_eq!(
            s.overlapping(0, u64::MAX),
            vec![(0x1000, 0x1800), (0x2800, 0x3000)]
        );
        assert!(s.contains(0x1000, 0x1800) && !s.contains(0x1000, 0x2000));
        assert_eq!(s.highest_gap(0x1000, 0x4000, 0x1000), Some(0x3000));
        assert_eq!(s.highest_gap(0x1000, 0x3000, 0x1000), Some(0x1800));
        assert_eq!(s.highest_gap(0x1000, 0x3000, 0x2000), None);
        assert_eq!(s.total(), 0x1000);
    }

    #[test]
    fn brk_grows_inside_its_range_and_zeroes_what_it_gives_back() {
        let mut g = Guest::new();
        let base = g.call(Sysno::brk, &[0]) as u64;
        assert_eq!(base, SPACE.brk_start);
        assert_eq!(g.call(Sysno::brk, &[base + 0x3000]) as u64, base + 0x3000);
        g.um().write(base + 0x2000, b"heap").unwrap();
        assert_eq!(g.call(Sysno::brk, &[base + 0x1000]) as u64, base + 0x1000);
        assert_eq!(g.call(Sysno::brk, &[base + 0x3000]) as u64, base + 0x3000);
        assert_eq!(g.um().read_vec(base + 0x2000, 4).unwrap(), vec![0; 4]);
        // Past the mmap area's start, or below the start: refused, break unchanged.
        assert_eq!(
            g.call(Sysno::brk, &[SPACE.mmap_start + 1]) as u64,
            base + 0x3000
        );
        assert_eq!(g.call(Sysno::brk, &[0x1000]) as u64, base + 0x3000);
    }

    #[test]
    fn mmap_hands_out_disjoint_zeroed_ranges_and_reuses_freed_ones() {
        let mut g = Guest::new();
        let a = g.call(Sysno::mmap, &[0, 0x2000, RW, ANON, u64::MAX, 0]) as u64;
        let b = g.call(Sysno::mmap, &[0, 0x1001, RW, ANON, u64::MAX, 0]) as u64;
        assert!(a >= SPACE.mmap_start && a + 0x2000 <= SPACE.mmap_end);
        assert!(
            b + 0x2000 <= a || b >= a + 0x2000,
            "disjoint: {a:#x} {b:#x}"
        );
        g.um().write(a, &[0xaa; 0x2000]).unwrap();
        assert_eq!(g.call(Sysno::munmap, &[a, 0x2000]), 0);
        let c = g.call(Sysno::mmap, &[0, 0x2000, RW, ANON, u64::MAX, 0]) as u64;
        assert_eq!(c, a, "the freed range is reused");
        assert_eq!(g.um().read_vec(c, 0x2000).unwrap(), vec![0; 0x2000]);
    }

    #[test]
    fn mmap_fixed_is_honoured_inside_the_area_only() {
        let mut g = Guest::new();
        let fixed = (libc::MAP_FIXED as u64) | ANON;
        let at = SPACE.mmap_start + 0x10000;
        assert_eq!(
            g.call(Sysno::mmap, &[at, 0x1000, RW, fixed, u64::MAX, 0]) as u64,
            at
        );
        g.um().write(at, b"old").unwrap();
        // Mapping over it again replaces (and zeroes) the old contents.
        assert_eq!(
            g.call(Sysno::mmap, &[at, 0x1000, RW, fixed, u64::MAX, 0]) as u64,
            at
        );
        assert_eq!(g.um().read_vec(at, 3).unwrap(), vec![0; 3]);
        let noreplace = (libc::MAP_FIXED_NOREPLACE as u64) | ANON;
        assert_eq!(
            g.call(Sysno::mmap, &[at, 0x1000, RW, noreplace, u64::MAX, 0]),
            err(Errno::EEXIST)
        );
        assert_eq!(
            g.call(Sysno::mmap, &[0x1000, 0x1000, RW, fixed, u64::MAX, 0]),
            err(Errno::ENOMEM)
        );
        assert_eq!(
            g.call(Sysno::mmap, &[at + 1, 0x1000, RW, fixed, u64::MAX, 0]),
            err(Errno::EINVAL)
        );
    }

    #[test]
    fn mmap_refuses_bad_arguments_and_exhaustion() {
        let mut g = Guest::new();
        assert_eq!(
            g.call(Sysno::mmap, &[0, 0, RW, ANON, u64::MAX, 0]),
            err(Errno::EINVAL)
        );
        let no_type = libc::MAP_ANONYMOUS as u64;
        assert_eq!(
            g.call(Sysno::mmap, &[0, 0x1000, RW, no_type, u64::MAX, 0]),
            err(Errno::EINVAL)
        );
        let too_big = SPACE.mmap_end - SPACE.mmap_start + 0x1000;
        assert_eq!(
            g.call(Sysno::mmap, &[0, too_big, RW, ANON, u64::MAX, 0]),
            err(Errno::ENOMEM)
        );
        assert_eq!(
            g.call(Sysno::mmap, &[0, u64::MAX, RW, ANON, u64::MAX, 0]),
            err(Errno::EINVAL)
        );
        let file = (libc::MAP_PRIVATE) as u64;
        assert_eq!(
            g.call(Sysno::mmap, &[0, 0x1000, RW, file, 42, 0]),
            err(Errno::EBADF)
        );
    }

    #[test]
    fn mremap_grows_in_place_or_moves_with_contents() {
        let mut g = Guest::new();
        let a = g.call(Sysno::mmap, &[0, 0x1000, RW, ANON, u64::MAX, 0]) as u64;
        g.um().write(a, b"keep me").unwrap();
        // The allocator is top-down: `b` lands right below `a`, so `b` cannot grow in
        // place and must move.
        let b = g.call(Sysno::mmap, &[0, 0x1000, RW, ANON, u64::MAX, 0]) as u64;
        assert_eq!(b + 0x1000, a);
        g.um().write(b, b"move me").unwrap();
        let maymove = libc::MREMAP_MAYMOVE as u64;
        assert_eq!(
            g.call(Sysno::mremap, &[b, 0x1000, 0x3000, 0]),
            err(Errno::ENOMEM)
        );
        let moved = g.call(Sysno::mremap, &[b, 0x1000, 0x3000, maymove]) as u64;
        assert_ne!(moved, b);
        assert_eq!(g.um().read_vec(moved, 7).unwrap(), b"move me");
        assert_eq!(
            g.um().read_vec(b, 7).unwrap(),
            vec![0; 7],
            "old range freed and zeroed"
        );
        // Shrinking stays in place; growing back into the freed tail is in place too.
        let shrunk = g.call(Sysno::mremap, &[moved, 0x3000, 0x1000, 0]) as u64;
        assert_eq!(shrunk, moved);
        assert_eq!(
            g.call(Sysno::mremap, &[moved, 0x1000, 0x2000, 0]) as u64,
            moved
        );
        assert_eq!(
            g.call(Sysno::mremap, &[SCRATCH, 0x1000, 0x2000, maymove]),
            err(Errno::EFAULT)
        );
    }

    #[test]
    fn madvise_dontneed_zeroes_mapped_and_heap_pages_only() {
        let mut g = Guest::new();
        let a = g.call(Sysno::mmap, &[0, 0x2000, RW, ANON, u64::MAX, 0]) as u64;
        g.um().write(a, &[1; 0x2000]).unwrap();
        let dontneed = libc::MADV_DONTNEED as u64;
        assert_eq!(g.call(Sysno::madvise, &[a + 0x1000, 0x1000, dontneed]), 0);
        assert_eq!(g.um().read_vec(a, 2).unwrap(), [1, 1]);
        assert_eq!(g.um().read_vec(a + 0x1000, 2).unwrap(), [0, 0]);
        let heap = SPACE.brk_start;
        g.call(Sysno::brk, &[heap + 0x1000]);
        g.um().write(heap, b"heap").unwrap();
        g.um().write(SCRATCH, b"image").unwrap();
        assert_eq!(g.call(Sysno::madvise, &[heap, 0x1000, dontneed]), 0);
        assert_eq!(g.call(Sysno::madvise, &[SCRATCH, 0x1000, dontneed]), 0);
        assert_eq!(g.um().read_vec(heap, 4).unwrap(), [0; 4]);
        assert_eq!(
            g.um().read_vec(SCRATCH, 5).unwrap(),
            b"image",
            "outside: left alone"
        );
        assert_eq!(
            g.call(Sysno::madvise, &[a + 1, 0x1000, dontneed]),
            err(Errno::EINVAL)
        );
        assert_eq!(
            g.call(Sysno::madvise, &[a, 0x1000, libc::MADV_WILLNEED as u64]),
            0
        );
    }

    #[test]
    fn file_backed_private_mmap_reads_the_file() {
        let mut g = Guest::new();
        let path = g.put_str(SCRATCH, "/dir/file");
        let fd = g.call(Sysno::open, &[path, libc::O_RDONLY as u64]) as u64;
        let private = libc::MAP_PRIVATE as u64;
        let at = g.call(Sysno::mmap, &[0, 0x1000, RW, private, fd, 0]) as u64;
        assert_eq!(g.um().read_vec(at, 6).unwrap(), b"hello\0");
        let shared = libc::MAP_SHARED as u64;
        assert_eq!(
            g.call(Sysno::mmap, &[0, 0x1000, RW, shared, fd, 0]),
            err(Errno::ENODEV)
        );
    }
}
