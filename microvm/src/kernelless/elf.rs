//! Loading a static x86_64 ELF (ET_EXEC, or static-pie ET_DYN at `STATIC_PIE_BASE`)
//! into guest memory. The headers are decoded with linux-loader's ELF bindings, every
//! offset and size is checked before use, and segments are copied straight from the
//! file into guest memory through vm-memory.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use linux_loader::elf::{Elf64_Ehdr, Elf64_Phdr};
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryMmap};

use super::elf_map;
use crate::arch::x86_64::layout::STATIC_PIE_BASE;

const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EM_X86_64: u16 = 62;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const EHDR_SIZE: usize = std::mem::size_of::<Elf64_Ehdr>();
const PHDR_SIZE: usize = std::mem::size_of::<Elf64_Phdr>();
/// More program headers than this is not a real program.
const MAX_PHNUM: u16 = 256;

/// Why a program could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The file could not be opened or read (the caller names the path).
    #[error("opening or reading the file")]
    Io {
        /// The program.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file ends before a header or segment it declares.
    #[error("truncated ELF: the file ends inside the {0}")]
    Truncated(&'static str),
    /// No ELF magic.
    #[error("not an ELF file (no \\x7fELF magic)")]
    NotElf,
    /// 32-bit, big-endian, or another machine.
    #[error("not an x86_64 ELF: {0}")]
    WrongArch(String),
    /// A relocatable object, core dump, ...
    #[error("not an executable (ELF type {0}); expected a static executable or static-pie")]
    NotExecutable(u16),
    /// The program needs a dynamic loader.
    #[error("dynamically linked (interpreter {0}): the kernel-less guest needs a static binary")]
    Dynamic(String),
    /// A shared library (ET_DYN with PT_DYNAMIC but no entry point).
    #[error("no entry point (a shared library?): the kernel-less guest needs a static binary")]
    NoEntry,
    /// Malformed headers.
    #[error("malformed ELF: {0}")]
    Malformed(String),
    /// Two segments claim the same bytes.
    #[error("overlapping segments: {0:#x}..{1:#x} and {2:#x}..{3:#x}")]
    Overlap(u64, u64, u64, u64),
    /// A segment outside the room guest memory has for the program.
    #[error("segment {start:#x}..{end:#x} does not fit in guest memory (the program may use {low:#x}..{high:#x}; a larger --mem may help)")]
    DoesNotFit {
        /// Segment start (after relocation).
        start: u64,
        /// Segment end.
        end: u64,
        /// Lowest usable address.
        low: u64,
        /// Highest usable address.
        high: u64,
    },
    /// Mapping or copying a segment into guest memory failed.
    #[error("loading a segment into guest memory: {0}")]
    Copy(String),
}

/// A loadable segment, already relocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest address of the first byte.
    pub addr: u64,
    /// Bytes in memory (the tail past `file_size` is zero: .bss).
    pub mem_size: u64,
    /// Offset in the file.
    pub offset: u64,
    /// Bytes copied from the file.
    pub file_size: u64,
}

/// Where everything goes, decided before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// Load bias (0 for ET_EXEC).
    pub bias: u64,
    /// Entry point (relocated).
    pub entry: u64,
    /// Guest address of the program headers (AT_PHDR).
    pub phdr_addr: u64,
    /// Number of program headers (AT_PHNUM).
    pub phnum: u64,
    /// Segments to copy.
    pub segments: Vec<Segment>,
    /// First address past the highest segment (where brk starts, page-aligned).
    pub image_end: u64,
}

/// The headers of an ELF file.
#[derive(Debug, Clone)]
pub struct Headers {
    ehdr: Elf64_Ehdr,
    phdrs: Vec<Elf64_Phdr>,
    file_len: u64,
    interp: Option<String>,
}

fn read_obj<T: ByteValued + Default>(bytes: &[u8], what: &'static str) -> Result<T, ElfError> {
    let mut obj = T::default();
    let size = std::mem::size_of::<T>();
    let src = bytes.get(..size).ok_or(ElfError::Truncated(what))?;
    obj.as_mut_slice().copy_from_slice(src);
    Ok(obj)
}

/// Checks identity fields: magic, class, endianness, machine, type.
fn check_ident(ehdr: &Elf64_Ehdr) -> Result<(), ElfError> {
    if ehdr.e_ident[..4] != *b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    if ehdr.e_ident[EI_CLASS] != ELFCLASS64 {
        return Err(ElfError::WrongArch(format!(
            "ELF class {} is not 64-bit",
            ehdr.e_ident[EI_CLASS]
        )));
    }
    if ehdr.e_ident[EI_DATA] != ELFDATA2LSB {
        return Err(ElfError::WrongArch("big-endian".into()));
    }
    if ehdr.e_machine != EM_X86_64 {
        return Err(ElfError::WrongArch(format!("machine {}", ehdr.e_machine)));
    }
    if ehdr.e_type != ET_EXEC && ehdr.e_type != ET_DYN {
        return Err(ElfError::NotExecutable(ehdr.e_type));
    }
    Ok(())
}

impl Headers {
    /// Decodes the ELF and program headers from the start of a file of `file_len`
    /// bytes; `read_at` reads `len` bytes at an offset (a file, or a buffer in tests).
    pub fn parse(
        file_len: u64,
        read_at: &mut dyn FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
    ) -> Result<Self, ElfError> {
        let io = |e: std::io::Error| ElfError::Malformed(format!("reading headers: {e}"));
        if file_len < EHDR_SIZE as u64 {
            let head = read_at(0, file_len as usize).map_err(io)?;
            if head.len() >= 4 && head[..4] != *b"\x7fELF" {
                return Err(ElfError::NotElf);
            }
            return Err(ElfError::Truncated("ELF header"));
        }
        let ehdr: Elf64_Ehdr = read_obj(&read_at(0, EHDR_SIZE).map_err(io)?, "ELF header")?;
        check_ident(&ehdr)?;
        if usize::from(ehdr.e_phentsize) != PHDR_SIZE
            || ehdr.e_phnum == 0
            || ehdr.e_phnum > MAX_PHNUM
        {
            return Err(ElfError::Malformed(format!(
                "{} program headers of {} bytes",
                ehdr.e_phnum, ehdr.e_phentsize
            )));
        }
        let phdrs = read_phdrs(&ehdr, file_len, read_at)?;
        let interp = Self::interp(&phdrs, file_len, read_at)?;
        Ok(Self {
            ehdr,
            phdrs,
            file_len,
            interp,
        })
    }

    fn interp(
        phdrs: &[Elf64_Phdr],
        file_len: u64,
        read_at: &mut dyn FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
    ) -> Result<Option<String>, ElfError> {
        let Some(p) = phdrs.iter().find(|p| p.p_type == PT_INTERP) else {
            return Ok(None);
        };
        let len = p.p_filesz.min(4096);
        if p.p_offset.checked_add(len).is_none_or(|end| end > file_len) {
            return Ok(Some("<truncated>".into()));
        }
        let bytes = read_at(p.p_offset, len as usize).unwrap_or_default();
        let name = bytes.split(|&b| b == 0).next().unwrap_or_default();
        Ok(Some(String::from_utf8_lossy(name).into_owned()))
    }

    /// Decides where each segment goes, keeping the program inside `low..high`.
    pub fn plan(&self, low: u64, high: u64) -> Result<LoadPlan, ElfError> {
        if let Some(interp) = &self.interp {
            return Err(ElfError::Dynamic(interp.clone()));
        }
        let is_pie = self.ehdr.e_type == ET_DYN;
        if is_pie && self.ehdr.e_entry == 0 && self.phdrs.iter().any(|p| p.p_type == PT_DYNAMIC) {
            return Err(ElfError::NoEntry);
        }
        let bias = if is_pie { STATIC_PIE_BASE } else { 0 };
        let segments = self.segments(bias, low, high)?;
        let image_end = segments
            .iter()
            .map(|s| s.addr + s.mem_size)
            .max()
            .unwrap_or(low);
        let entry = bias
            .checked_add(self.ehdr.e_entry)
            .filter(|e| {
                segments
                    .iter()
                    .any(|s| (s.addr..s.addr + s.mem_size).contains(e))
            })
            .ok_or_else(|| {
                ElfError::Malformed(format!(
                    "entry point {:#x} is not in a loadable segment",
                    self.ehdr.e_entry
                ))
            })?;
        Ok(LoadPlan {
            bias,
            entry,
            phdr_addr: self.phdr_addr(bias)?,
            phnum: u64::from(self.ehdr.e_phnum),
            segments,
            image_end: image_end.next_multiple_of(4096),
        })
    }

    fn segments(&self, bias: u64, low: u64, high: u64) -> Result<Vec<Segment>, ElfError> {
        let segments = self
            .phdrs
            .iter()
            .filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0)
            .map(|p| self.segment(p, bias, low..high))
            .collect::<Result<Vec<_>, _>>()?;
        if segments.is_empty() {
            return Err(ElfError::Malformed("no loadable segments".into()));
        }
        check_overlaps(&mut segments.clone())?;
        Ok(segments)
    }

    /// One PT_LOAD, relocated by `bias` and checked against the file and `room`.
    fn segment(&self, p: &Elf64_Phdr, bias: u64, room: Range<u64>) -> Result<Segment, ElfError> {
        if p.p_filesz > p.p_memsz {
            return Err(ElfError::Malformed(format!(
                "segment at {:#x} has file size > memory size",
                p.p_vaddr
            )));
        }
        if p.p_offset
            .checked_add(p.p_filesz)
            .is_none_or(|end| end > self.file_len)
        {
            return Err(ElfError::Truncated("segment data"));
        }
        let (low, high) = (room.start, room.end);
        let start = bias.checked_add(p.p_vaddr);
        let end = start.and_then(|s| s.checked_add(p.p_memsz));
        match (start, end) {
            (Some(start), Some(end)) if start >= low && end <= high => Ok(Segment {
                addr: start,
                mem_size: p.p_memsz,
                offset: p.p_offset,
                file_size: p.p_filesz,
            }),
            (start, end) => Err(ElfError::DoesNotFit {
                start: start.unwrap_or(p.p_vaddr),
                end: end.unwrap_or(u64::MAX),
                low,
                high,
            }),
        }
    }

    /// AT_PHDR: PT_PHDR if present, else where the first segment that contains the
    /// header table in the file puts it in memory.
    fn phdr_addr(&self, bias: u64) -> Result<u64, ElfError> {
        if let Some(p) = self.phdrs.iter().find(|p| p.p_type == PT_PHDR) {
            return Ok(bias.wrapping_add(p.p_vaddr));
        }
        let table_end = self.ehdr.e_phoff + (self.phdrs.len() * PHDR_SIZE) as u64;
        self.phdrs
            .iter()
            .find(|p| {
                p.p_type == PT_LOAD
                    && p.p_offset <= self.ehdr.e_phoff
                    && table_end <= p.p_offset + p.p_filesz
            })
            .map(|p| bias + p.p_vaddr + (self.ehdr.e_phoff - p.p_offset))
            .ok_or_else(|| {
                ElfError::Malformed("program headers are not in a loadable segment".into())
            })
    }
}

/// Reads the program header table `ehdr` points at.
fn read_phdrs(
    ehdr: &Elf64_Ehdr,
    file_len: u64,
    read_at: &mut dyn FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<Elf64_Phdr>, ElfError> {
    let table_len = usize::from(ehdr.e_phnum) * PHDR_SIZE;
    if ehdr
        .e_phoff
        .checked_add(table_len as u64)
        .is_none_or(|end| end > file_len)
    {
        return Err(ElfError::Truncated("program header table"));
    }
    let table = read_at(ehdr.e_phoff, table_len)
        .map_err(|e| ElfError::Malformed(format!("reading program headers: {e}")))?;
    table
        .chunks(PHDR_SIZE)
        .map(|c| read_obj::<Elf64_Phdr>(c, "program header table"))
        .collect()
}

fn check_overlaps(segments: &mut [Segment]) -> Result<(), ElfError> {
    segments.sort_by_key(|s| s.addr);
    for pair in segments.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.addr + a.mem_size > b.addr {
            return Err(ElfError::Overlap(
                a.addr,
                a.addr + a.mem_size,
                b.addr,
                b.addr + b.mem_size,
            ));
        }
    }
    Ok(())
}

/// Reads the headers of `path` and plans the load into `low..high`.
pub fn plan_file(path: &Path, low: u64, high: u64) -> Result<(File, LoadPlan), ElfError> {
    let io = |source| ElfError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::other("not a regular file")));
    }
    let mut read_at = |offset: u64, len: usize| {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, offset).map(|()| buf)
    };
    let plan = Headers::parse(meta.len(), &mut read_at)?.plan(low, high)?;
    Ok((file, plan))
}

/// Loads the planned segments from `file` into guest memory: mapped (private, page
/// by page on demand, see `elf_map.rs`) where the layout allows, else copied. The
/// .bss tails are already zero: guest memory starts zeroed.
pub fn load(mem: &GuestMemoryMmap, file: &mut File, plan: &LoadPlan) -> Result<(), ElfError> {
    for s in plan.segments.iter().filter(|s| s.file_size > 0) {
        let failed = |e: &dyn std::fmt::Display| {
            ElfError::Copy(format!("{:#x}+{:#x}: {e}", s.addr, s.file_size))
        };
        if let Some(span) = elf_map::span(s, &plan.segments) {
            match elf_map::map(mem, file, s, span) {
                Ok(()) => continue,
                // The file system cannot map files: nothing was replaced yet, so copy.
                Err(elf_map::MapError::Mmap(e))
                    if matches!(e.raw_os_error(), Some(libc::ENODEV | libc::EACCES)) => {}
                Err(e) => return Err(failed(&e)),
            }
        }
        file.seek(SeekFrom::Start(s.offset))
            .map_err(|e| failed(&e))?;
        mem.read_exact_volatile_from(GuestAddress(s.addr), file, s.file_size as usize)
            .map_err(|e| failed(&e))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal static ELF: one RWX PT_LOAD holding the headers and `code` at 0x400000
    /// (ET_EXEC) or at 0 (ET_DYN), with the entry at the code.
    pub(crate) fn tiny_elf(e_type: u16, code: &[u8], extra: &[Elf64_Phdr]) -> Vec<u8> {
        let base = if e_type == ET_EXEC { 0x40_0000 } else { 0 };
        let phnum = 1 + extra.len();
        let code_off = (EHDR_SIZE + phnum * PHDR_SIZE) as u64;
        let total = code_off + code.len() as u64;
        let mut ehdr = Elf64_Ehdr::default();
        ehdr.e_ident[..4].copy_from_slice(b"\x7fELF");
        ehdr.e_ident[EI_CLASS] = ELFCLASS64;
        ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
        ehdr.e_ident[6] = 1;
        ehdr.e_type = e_type;
        ehdr.e_machine = EM_X86_64;
        ehdr.e_version = 1;
        ehdr.e_entry = base + code_off;
        ehdr.e_phoff = EHDR_SIZE as u64;
        ehdr.e_ehsize = EHDR_SIZE as u16;
        ehdr.e_phentsize = PHDR_SIZE as u16;
        ehdr.e_phnum = phnum as u16;
        let load = Elf64_Phdr {
            p_type: PT_LOAD,
            p_flags: 7,
            p_offset: 0,
            p_vaddr: base,
            p_paddr: base,
            p_filesz: total,
            p_memsz: total + 0x1000,
            p_align: 0x1000,
        };
        let mut bytes = ehdr.as_slice().to_vec();
        bytes.extend_from_slice(load.as_slice());
        for p in extra {
            bytes.extend_from_slice(p.as_slice());
        }
        bytes.extend_from_slice(code);
        bytes
    }

    fn headers(bytes: &[u8]) -> Result<Headers, ElfError> {
        let mut read_at = |off: u64, len: usize| {
            let start = off as usize;
            bytes
                .get(start..start + len)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
        };
        Headers::parse(bytes.len() as u64, &mut read_at)
    }

    fn plan(bytes: &[u8]) -> Result<LoadPlan, ElfError> {
        headers(bytes)?.plan(0x1_0000, 0x800_0000)
    }

    #[test]
    fn static_executable_loads_at_its_addresses() {
        let p = plan(&tiny_elf(ET_EXEC, &[0xf4], &[])).unwrap();
        assert_eq!(p.bias, 0);
        assert_eq!(p.entry, 0x40_0000 + 120);
        assert_eq!(
            p.phdr_addr,
            0x40_0000 + 64,
            "AT_PHDR from the segment holding the table"
        );
        assert_eq!(p.image_end, 0x40_2000);
    }

    #[test]
    fn static_pie_is_relocated_to_the_pie_base() {
        let p = plan(&tiny_elf(ET_DYN, &[0xf4], &[])).unwrap();
        assert_eq!(p.bias, STATIC_PIE_BASE);
        assert_eq!(p.entry, STATIC_PIE_BASE + 120);
        assert_eq!(p.phdr_addr, STATIC_PIE_BASE + 64);
    }

    #[test]
    fn truncated_files_are_reported_as_such() {
        let elf = tiny_elf(ET_EXEC, &[0xf4; 64], &[]);
        for len in [10, 63, 100] {
            let err = plan(&elf[..len]).unwrap_err();
            assert!(matches!(err, ElfError::Truncated(_)), "{len}: {err}");
        }
        assert!(plan(&elf[..elf.len() - 1])
            .unwrap_err()
            .to_string()
            .contains("truncated"));
    }

    #[test]
    fn non_elf_and_foreign_elves_are_refused() {
        assert!(matches!(
            plan(b"#!/bin/sh\necho hi\n").unwrap_err(),
            ElfError::NotElf
        ));
        let mut elf = tiny_elf(ET_EXEC, &[0xf4], &[]);
        elf[18] = 183; // EM_AARCH64
        assert!(plan(&elf)
            .unwrap_err()
            .to_string()
            .contains("not an x86_64 ELF: machine 183"));
        let mut elf32 = tiny_elf(ET_EXEC, &[0xf4], &[]);
        elf32[EI_CLASS] = 1;
        assert!(matches!(plan(&elf32).unwrap_err(), ElfError::WrongArch(_)));
        let mut object = tiny_elf(ET_EXEC, &[0xf4], &[]);
        object[16] = 1; // ET_REL
        assert!(matches!(
            plan(&object).unwrap_err(),
            ElfError::NotExecutable(1)
        ));
    }

    #[test]
    fn dynamically_linked_binary_asks_for_a_static_one() {
        let interp_off = (EHDR_SIZE + 2 * PHDR_SIZE) as u64;
        let interp = Elf64_Phdr {
            p_type: PT_INTERP,
            p_offset: interp_off,
            p_filesz: 12,
            ..Default::default()
        };
        let err = plan(&tiny_elf(ET_DYN, b"/lib/ld.so\0\0", &[interp])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dynamically linked (interpreter /lib/ld.so): the kernel-less guest needs a static binary"
        );
    }

    #[test]
    fn overlapping_segments_are_refused() {
        let second = Elf64_Phdr {
            p_type: PT_LOAD,
            p_vaddr: 0x40_0800,
            p_memsz: 0x100,
            ..Default::default()
        };
        let err = plan(&tiny_elf(ET_EXEC, &[0xf4], &[second])).unwrap_err();
        assert!(
            matches!(err, ElfError::Overlap(0x40_0000, _, 0x40_0800, _)),
            "{err}"
        );
    }

    #[test]
    fn segments_outside_guest_memory_are_refused() {
        let huge = Elf64_Phdr {
            p_type: PT_LOAD,
            p_vaddr: 0x100_0000,
            p_memsz: 1 << 40,
            ..Default::default()
        };
        let err = plan(&tiny_elf(ET_EXEC, &[0xf4], &[huge])).unwrap_err();
        assert!(err.to_string().contains("a larger --mem may help"), "{err}");
        let wrap = Elf64_Phdr {
            p_type: PT_LOAD,
            p_vaddr: u64::MAX - 10,
            p_memsz: 100,
            ..Default::default()
        };
        assert!(matches!(
            plan(&tiny_elf(ET_EXEC, &[0xf4], &[wrap])).unwrap_err(),
            ElfError::DoesNotFit { .. }
        ));
        let low = Elf64_Phdr {
            p_type: PT_LOAD,
            p_vaddr: 0x1000,
            p_memsz: 0x10,
            ..Default::default()
        };
        assert!(matches!(
            plan(&tiny_elf(ET_EXEC, &[0xf4], &[low])).unwrap_err(),
            ElfError::DoesNotFit { .. }
        ));
    }

    #[test]
    fn segment_data_past_the_end_of_file_is_truncation() {
        let beyond = Elf64_Phdr {
            p_type: PT_LOAD,
            p_vaddr: 0x50_0000,
            p_offset: 0x10_0000,
            p_filesz: 0x10,
            p_memsz: 0x10,
            ..Default::default()
        };
        assert!(matches!(
            plan(&tiny_elf(ET_EXEC, &[0xf4], &[beyond])).unwrap_err(),
            ElfError::Truncated("segment data")
        ));
    }

    #[test]
    fn segments_are_copied_into_guest_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prog");
        std::fs::write(&path, tiny_elf(ET_EXEC, &[0x90, 0xf4], &[])).unwrap();
        let (mut file, plan) = plan_file(&path, 0x1_0000, 0x80_0000).unwrap();
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x80_0000)]).unwrap();
        load(&mem, &mut file, &plan).unwrap();
        assert_eq!(
            mem.read_obj::<u16>(GuestAddress(plan.entry)).unwrap(),
            0xf490
        );
        assert_eq!(
            mem.read_obj::<u32>(GuestAddress(0x40_0000)).unwrap(),
            0x464c_457f
        );
    }

    #[test]
    fn missing_file_keeps_the_path_for_the_caller() {
        let err = plan_file(Path::new("/nonexistent/isolab-prog"), 0, 1).unwrap_err();
        assert!(matches!(&err, ElfError::Io { path, .. } if path.ends_with("isolab-prog")));
        let ElfError::Io { source, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    }
}
