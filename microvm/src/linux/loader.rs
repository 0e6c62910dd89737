//! Loading the guest kernel with linux-loader: an ELF `vmlinux` or a bzImage, told
//! apart by their magic numbers, with errors that say what was wrong with the file.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::{
    bzimage, elf, BzImage, Elf, KernelLoader, KernelLoaderResult, PvhBootCapability,
};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::layout::HIMEM_START;

/// Offset of the 64-bit entry point from the start of a bzImage's protected-mode code.
const BZIMAGE_64BIT_ENTRY_OFFSET: u64 = 0x200;
/// Offset of the "HdrS" magic in a bzImage.
const BZIMAGE_MAGIC_OFFSET: usize = 0x202;
/// The start of an ELF file.
const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// Why the kernel could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened or read.
    #[error("reading the kernel {path}: {source}")]
    Read {
        /// The kernel.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Neither an ELF nor a bzImage.
    #[error("{0} is not a Linux kernel: neither an ELF vmlinux nor a bzImage (no \"HdrS\" header at 0x202); pass a vmlinux or a bzImage such as /boot/vmlinuz-*")]
    NotAKernel(PathBuf),
    /// A bzImage shorter than its header says.
    #[error("the bzImage {path} is truncated: {len} bytes, its header says {needed}")]
    Truncated {
        /// The kernel.
        path: PathBuf,
        /// The file's size.
        len: u64,
        /// The size its setup header implies.
        needed: u64,
    },
    /// linux-loader refused it.
    #[error("loading the kernel {path}: {source}{hint}")]
    Loader {
        /// The kernel.
        path: PathBuf,
        /// What linux-loader reported.
        source: linux_loader::loader::Error,
        /// What that probably means.
        hint: &'static str,
    },
}

/// The two kernel formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// An uncompressed ELF `vmlinux`.
    Elf,
    /// A compressed bzImage (`/boot/vmlinuz-*`).
    BzImage,
}

/// A kernel in guest memory.
#[derive(Debug, Clone, Copy)]
pub struct LoadedKernel {
    /// Which format it was.
    pub format: KernelFormat,
    /// The 64-bit entry point.
    pub entry: u64,
    /// The end of the kernel and of the room it needs to decompress and run.
    pub end: u64,
    /// The bzImage's setup header (None for ELF).
    pub header: Option<setup_header>,
    /// Whether an ELF kernel has a PVH entry point.
    pub pvh_entry: Option<u64>,
}

/// Tells the format from the first bytes of the file.
pub fn detect_format(head: &[u8]) -> Option<KernelFormat> {
    if head.starts_with(ELF_MAGIC) {
        return Some(KernelFormat::Elf);
    }
    let magic = head.get(BZIMAGE_MAGIC_OFFSET..BZIMAGE_MAGIC_OFFSET + 4)?;
    (magic == b"HdrS").then_some(KernelFormat::BzImage)
}

/// Checks a bzImage holds its setup sectors and the `syssize` paragraphs of
/// protected-mode code its header announces; Err((file size, size needed)).
pub fn check_bzimage_size(head: &[u8], len: u64) -> Result<(), (u64, u64)> {
    let setup_sects = match head.get(0x1f1) {
        Some(0) | None => 4,
        Some(&n) => u64::from(n),
    };
    let syssize = head
        .get(0x1f4..0x1f8)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let needed = (setup_sects + 1) * 512 + u64::from(syssize) * 16;
    if len < needed {
        return Err((len, needed));
    }
    Ok(())
}

/// Loads the kernel at `path` into `mem`.
pub fn load(mem: &GuestMemoryMmap, path: &Path) -> Result<LoadedKernel, LoadError> {
    let read_err = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let mut head = Vec::with_capacity(0x210);
    file.by_ref()
        .take(0x210)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    let format = detect_format(&head).ok_or_else(|| LoadError::NotAKernel(path.to_owned()))?;
    if format == KernelFormat::BzImage {
        let len = file.metadata().map_err(read_err)?.len();
        check_bzimage_size(&head, len).map_err(|(len, needed)| LoadError::Truncated {
            path: path.to_owned(),
            len,
            needed,
        })?;
    }
    let himem = Some(GuestAddress(HIMEM_START));
    let result = match format {
        KernelFormat::Elf => Elf::load(mem, None, &mut file, himem),
        KernelFormat::BzImage => BzImage::load(mem, None, &mut file, himem),
    }
    .map_err(|source| LoadError::Loader {
        path: path.to_owned(),
        hint: hint(&source),
        source,
    })?;
    Ok(loaded(format, &result))
}

fn loaded(format: KernelFormat, result: &KernelLoaderResult) -> LoadedKernel {
    let pvh_entry = match result.pvh_boot_cap {
        PvhBootCapability::PvhEntryPresent(addr) => Some(addr.0),
        _ => None,
    };
    let (entry, end) = match (format, result.setup_header) {
        (KernelFormat::BzImage, Some(hdr)) => {
            let load = result.kernel_load.0;
            // The kernel decompresses in place and needs init_size bytes from its load
            // address: nothing (the initrd) may go there.
            let end = result.kernel_end.max(load + u64::from(hdr.init_size));
            (load + BZIMAGE_64BIT_ENTRY_OFFSET, end)
        }
        _ => (result.kernel_load.0, result.kernel_end),
    };
    LoadedKernel {
        format,
        entry,
        end,
        header: result.setup_header,
        pvh_entry,
    }
}

fn hint(err: &linux_loader::loader::Error) -> &'static str {
    use linux_loader::loader::Error as E;
    match err {
        E::Bzimage(bzimage::Error::ReadBzImageCompressedKernel) | E::Bzimage(bzimage::Error::Underflow) => {
            " (the bzImage is truncated, or larger than guest memory: check the file and --mem)"
        }
        E::Bzimage(bzimage::Error::InvalidBzImage) => " (a bzImage too old for the 2.00 boot protocol, or not loadable high)",
        E::Elf(elf::Error::ReadKernelImage) | E::Elf(elf::Error::ReadProgramHeader) => {
            " (the ELF is truncated, or its segments do not fit in guest memory: check the file and --mem)"
        }
        E::Elf(elf::Error::BigEndianElfOnLittle) => " (not an x86_64 kernel)",
        E::InvalidKernelStartAddress | E::Elf(elf::Error::InvalidProgramHeaderAddress) => {
            " (the kernel wants to load below 1 MiB: not an x86_64 Linux kernel?)"
        }
        E::MemoryOverflow => " (give the VM more memory with --mem)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap()
    }

    /// A bzImage-shaped file: setup sectors with a 2.15 header, then `payload` bytes of
    /// protected-mode code, of which the file holds only `present`.
    fn fake_bzimage(payload: usize, present: usize) -> Vec<u8> {
        let setup_sects = 4u8;
        let mut image = vec![0u8; (usize::from(setup_sects) + 1) * 512 + payload];
        image[0x1f1] = setup_sects;
        image[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        image[0x211] = 1; // loadflags: LOADED_HIGH
        image[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
        image[0x260..0x264].copy_from_slice(&0x80_0000u32.to_le_bytes()); // init_size
        image[0x1f4..0x1f8].copy_from_slice(&(payload as u32 / 16).to_le_bytes()); // syssize
        image.truncate(image.len() - (payload - present));
        image
    }

    fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    #[test]
    fn formats_are_told_apart_by_magic() {
        assert_eq!(detect_format(b"\x7fELF\x02\x01"), Some(KernelFormat::Elf));
        assert_eq!(
            detect_format(&fake_bzimage(16, 16)),
            Some(KernelFormat::BzImage)
        );
        assert_eq!(detect_format(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(detect_format(&[]), None);
    }

    #[test]
    fn bzimage_loads_at_one_mib_with_the_64bit_entry_and_init_size_reserved() {
        let file = write_temp(&fake_bzimage(0x1000, 0x1000));
        let kernel = load(&mem(), file.path()).unwrap();
        assert_eq!(kernel.format, KernelFormat::BzImage);
        assert_eq!(kernel.entry, 0x10_0200);
        assert_eq!(kernel.end, 0x10_0000 + 0x80_0000);
        assert_eq!({ kernel.header.unwrap().version }, 0x020f);
    }

    #[test]
    fn a_file_that_is_not_a_kernel_is_named_in_the_error() {
        let file = write_temp(b"hello, I am a text file, not a kernel");
        let err = load(&mem(), file.path()).unwrap_err();
        assert!(matches!(err, LoadError::NotAKernel(_)));
        assert!(err.to_string().contains("not a Linux kernel"), "{err}");
    }

    #[test]
    fn a_truncated_bzimage_says_it_is_truncated() {
        for present in [0x800, 0] {
            let file = write_temp(&fake_bzimage(0x1000, present));
            let err = load(&mem(), file.path()).unwrap_err();
            assert!(matches!(err, LoadError::Truncated { .. }), "{err}");
            assert!(err.to_string().contains("truncated"), "{err}");
        }
        let mut head_only = fake_bzimage(0x1000, 0x1000);
        head_only.truncate(0x400);
        let file = write_temp(&head_only);
        let err = load(&mem(), file.path()).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn a_kernel_larger_than_memory_is_refused() {
        let file = write_temp(&fake_bzimage(0x20_0000, 0x20_0000));
        let small = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x20_0000)]).unwrap();
        let err = load(&small, file.path()).unwrap_err();
        assert!(err.to_string().contains("--mem"), "{err}");
    }

    #[test]
    fn missing_kernel_file_is_a_read_error() {
        let err = load(&mem(), Path::new("/nonexistent/vmlinuz")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/vmlinuz"), "{err}");
    }
}
