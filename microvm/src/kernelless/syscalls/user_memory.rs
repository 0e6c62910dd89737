//! Checked access to guest memory: every pointer and length a guest passes goes through
//! here, and a bad one becomes `EFAULT` instead of a host fault.
//!
//! Guest memory is identity mapped (guest virtual == guest physical), so a guest pointer
//! is a [`GuestAddress`]. Page 0 is never mapped for the guest, so it is refused here too:
//! a NULL pointer faults as it would under Linux.

use syscalls::Errno;
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};

/// The first guest address a pointer may name: page 0 is left unmapped.
pub const FIRST_VALID_ADDR: u64 = 0x1000; // 4 KiB

/// Longest path the guest may pass, with its NUL (Linux `PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// A view of guest memory that answers in errno terms.
#[derive(Debug, Clone, Copy)]
pub struct UserMemory<'a> {
    mem: &'a GuestMemoryMmap,
}

impl<'a> UserMemory<'a> {
    /// Wraps the guest memory of one VM.
    pub fn new(mem: &'a GuestMemoryMmap) -> Self {
        Self { mem }
    }

    /// The guest memory behind this view.
    pub fn guest_memory(&self) -> &'a GuestMemoryMmap {
        self.mem
    }

    /// Checks that `[addr, addr + len)` lies in guest memory, outside page 0.
    pub fn check(&self, addr: u64, len: usize) -> Result<GuestAddress, Errno> {
        if len == 0 {
            return Ok(GuestAddress(addr));
        }
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        if addr < FIRST_VALID_ADDR || end <= addr {
            return Err(Errno::EFAULT);
        }
        if GuestMemoryBackend::check_range(self.mem, GuestAddress(addr), len) {
            Ok(GuestAddress(addr))
        } else {
            Err(Errno::EFAULT)
        }
    }

    /// Copies `buf.len()` bytes from the guest at `addr`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let at = self.check(addr, buf.len())?;
        self.mem.read_slice(buf, at).map_err(|_| Errno::EFAULT)
    }

    /// Copies `len` bytes from the guest at `addr` into a new vector.
    pub fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        self.check(addr, len)?;
        let mut buf = vec![0; len];
        self.read(addr, &mut buf)?;
        Ok(buf)
    }

    /// Copies `buf` into the guest at `addr`.
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        let at = self.check(addr, buf.len())?;
        self.mem.write_slice(buf, at).map_err(|_| Errno::EFAULT)
    }

    /// Reads a little-endian `u32` (a C `int` or `unsigned`).
    pub fn read_u32(&self, addr: u64) -> Result<u32, Errno> {
        let mut b = [0; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a little-endian `u64` (a C `long`, `size_t` or pointer).
    pub fn read_u64(&self, addr: u64) -> Result<u64, Errno> {
        let mut b = [0; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a little-endian `u32`.
    pub fn write_u32(&self, addr: u64, v: u32) -> Result<(), Errno> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Writes a little-endian `u64`.
    pub fn write_u64(&self, addr: u64, v: u64) -> Result<(), Errno> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Reads a NUL-terminated string of at most `max` bytes (NUL included), without the
    /// NUL. Too long gives `ENAMETOOLONG`; running off guest memory gives `EFAULT`.
    pub fn read_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut cur = addr;
        while out.len() < max {
            // Read up to the next page boundary so a string ending just before an
            // unmapped page is still read.
            let to_page_end = (0x1000 - (cur & 0xfff)) as usize;
            let mut chunk = vec![0; to_page_end.min(max - out.len())];
            self.read(cur, &mut chunk)?;
            if let Some(nul) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            cur = cur.checked_add(chunk.len() as u64).ok_or(Errno::EFAULT)?;
        }
        Err(Errno::ENAMETOOLONG)
    }

    /// Reads a guest path argument (at most `PATH_MAX` bytes).
    pub fn read_path(&self, addr: u64) -> Result<Vec<u8>, Errno> {
        self.read_cstr(addr, PATH_MAX)
    }

    /// Writes `len` zero bytes at `addr`.
    pub fn zero(&self, addr: u64, len: usize) -> Result<(), Errno> {
        self.check(addr, len)?;
        let zeros = [0u8; 4096];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(zeros.len());
            self.write(addr + done as u64, &zeros[..n])?;
            done += n;
        }
        Ok(())
    }

    /// Copies `len` bytes inside guest memory from `src` to `dst` (ranges may overlap).
    pub fn copy_within(&self, src: u64, dst: u64, len: usize) -> Result<(), Errno> {
        let data = self.read_vec(src, len)?;
        self.write(dst, &data)
    }

    /// Host `iovec`s covering the guest range `[addr, addr + len)`, for a host call that
    /// reads or writes guest memory in place. The pointers stay valid while `self` lives.
    pub fn host_iovecs(&self, addr: u64, len: usize) -> Result<Vec<libc::iovec>, Errno> {
        let at = self.check(addr, len)?;
        let mut iovecs = Vec::new();
        for slice in GuestMemoryBackend::get_slices(self.mem, at, len) {
            let slice = slice.map_err(|_| Errno::EFAULT)?;
            iovecs.push(libc::iovec {
                iov_base: slice.ptr_guard_mut().as_ptr().cast(),
                iov_len: slice.len(),
            });
        }
        Ok(iovecs)
    }

    /// Zeroes `[addr, addr + len)`. Whole pages of private anonymous memory are given
    /// back to the host kernel instead (they read back as zeros and stop counting towards
    /// the monitor's RSS); other backings get zeros written.
    pub fn discard(&self, addr: u64, len: usize) -> Result<(), Errno> {
        self.check(addr, len)?;
        let end = addr + len as u64;
        let mut cur = addr;
        while cur < end {
            let region = self
                .mem
                .find_region(GuestAddress(cur))
                .ok_or(Errno::EFAULT)?;
            let region_end = region.start_addr().raw_value() + region.len();
            let n = (region_end.min(end) - cur) as usize;
            let anonymous = region.file_offset().is_none()
                && region.flags() & libc::MAP_PRIVATE != 0
                && region.flags() & libc::MAP_ANONYMOUS != 0;
            let offset = MemoryRegionAddress(cur - region.start_addr().raw_value());
            let host = region.get_host_address(offset).map_err(|_| Errno::EFAULT)?;
            if !(anonymous && super::host::discard_pages(host, n)) {
                self.zero(cur, n)?;
            }
            cur += n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// 4 MiB of guest memory at address 0, as the monitor lays it out.
    pub(crate) fn guest_memory() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 4 << 20)]).expect("guest memory")
    }

    #[test]
    fn page_zero_and_out_of_range_pointers_fault() {
        let mem = guest_memory();
        let um = UserMemory::new(&mem);
        assert_eq!(um.check(0, 1), Err(Errno::EFAULT));
        assert_eq!(um.check(0xfff, 1), Err(Errno::EFAULT));
        assert_eq!(um.check(4 << 20, 1), Err(Errno::EFAULT));
        assert_eq!(um.check((4 << 20) - 1, 2), Err(Errno::EFAULT));
        assert_eq!(um.check(u64::MAX, 2), Err(Errno::EFAULT));
        assert!(um.check(0x1000, 16).is_ok());
        assert!(um.check(0, 0).is_ok(), "an empty range is not a fault");
    }

    #[test]
    fn strings_stop_at_nul_and_limits_are_enforced() {
        let mem = guest_memory();
        let um = UserMemory::new(&mem);
        um.write(0x2ffe, b"ab/cd\0").unwrap();
        assert_eq!(um.read_cstr(0x2ffe, 64).unwrap(), b"ab/cd");
        um.write(0x5000, &[b'x'; 100]).unwrap();
        assert_eq!(um.read_cstr(0x5000, 50), Err(Errno::ENAMETOOLONG));
        // A string that runs off the end of guest memory faults.
        um.write((4 << 20) - 3, b"abc").unwrap();
        assert_eq!(um.read_cstr((4 << 20) - 3, 64), Err(Errno::EFAULT));
    }

    #[test]
    fn discard_zeroes_the_range() {
        let mem = guest_memory();
        let um = UserMemory::new(&mem);
        um.write(0x10000, &[7; 0x3000]).unwrap();
        um.discard(0x10000, 0x2000).unwrap();
        assert_eq!(um.read_vec(0x10000, 0x2000).unwrap(), vec![0; 0x2000]);
        assert_eq!(um.read_vec(0x12000, 0x1000).unwrap(), vec![7; 0x1000]);
    }
}
