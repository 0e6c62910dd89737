//! The zero page (`struct boot_params`) of the x86 Linux boot protocol: the setup
//! header, the e820 memory map, where the command line and the initrd are.

use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};

use super::layout::{EBDA_START, HIMEM_START, MMIO_GAP_END, MMIO_GAP_START};

/// e820 type of usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type of reserved memory.
pub const E820_RESERVED: u32 = 2;
/// "HdrS", the setup header's magic.
const HDR_MAGIC: u32 = 0x5372_6448;
/// The boot sector signature.
const BOOT_FLAG: u16 = 0xaa55;
/// type_of_loader for a boot loader without an assigned ID.
const LOADER_UNDEFINED: u8 = 0xff;
/// loadflags bit: the kernel is loaded high (at 1 MiB).
const LOADED_HIGH: u8 = 0x01;
/// The kernel's alignment when it has none in its header (16 MiB).
const DEFAULT_KERNEL_ALIGNMENT: u32 = 0x100_0000;
/// initrd_addr_max of kernels whose header predates the field (boot protocol < 2.03).
const DEFAULT_INITRD_ADDR_MAX: u64 = 0x37ff_ffff;

/// Why the zero page could not be built.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BootParamsError {
    /// The initrd does not fit between the kernel and the top of low memory.
    #[error("the initrd ({size} bytes) does not fit in guest memory below {limit:#x} above the kernel (ends at {kernel_end:#x}); give the VM more memory (--mem) or use a smaller initrd")]
    InitrdTooLarge {
        /// Its size.
        size: u64,
        /// The highest address it may end at.
        limit: u64,
        /// The end of the kernel (and the room it decompresses into).
        kernel_end: u64,
    },
    /// More RAM regions than the zero page holds.
    #[error("guest memory has too many regions for the e820 map")]
    TooManyRegions,
    /// The command line is longer than the kernel accepts.
    #[error("the kernel command line is {len} bytes; this kernel accepts at most {max}")]
    CmdlineTooLong {
        /// Its length.
        len: usize,
        /// The kernel's limit.
        max: usize,
    },
}

/// Guest RAM as (start, size) ranges: below the 32-bit MMIO hole, and above it for
/// the rest.
pub fn ram_ranges(mem_bytes: u64) -> Vec<(u64, u64)> {
    if mem_bytes <= MMIO_GAP_START {
        vec![(0, mem_bytes)]
    } else {
        vec![
            (0, MMIO_GAP_START),
            (MMIO_GAP_END, mem_bytes - MMIO_GAP_START),
        ]
    }
}

/// The e820 map for `ram`: conventional memory up to the EBDA, the BIOS area as
/// reserved, then RAM from 1 MiB.
pub fn e820_map(ram: &[(u64, u64)]) -> Vec<boot_e820_entry> {
    let entry = |addr, size, r#type| boot_e820_entry { addr, size, r#type };
    let mut map = vec![
        entry(0, EBDA_START, E820_RAM),
        entry(EBDA_START, HIMEM_START - EBDA_START, E820_RESERVED),
    ];
    for &(start, size) in ram {
        let start_hi = start.max(HIMEM_START);
        let end = start + size;
        if end > start_hi {
            map.push(entry(start_hi, end - start_hi, E820_RAM));
        }
    }
    map
}

/// Where an initrd of `size` bytes goes: as high as possible in low memory (below
/// `initrd_addr_max` and `lowmem_end`), page-aligned, and above `kernel_end`.
pub fn initrd_addr(
    size: u64,
    lowmem_end: u64,
    initrd_addr_max: u32,
    kernel_end: u64,
) -> Result<u64, BootParamsError> {
    let max = if initrd_addr_max == 0 {
        DEFAULT_INITRD_ADDR_MAX
    } else {
        u64::from(initrd_addr_max)
    };
    let limit = lowmem_end.min(max + 1);
    let too_large = BootParamsError::InitrdTooLarge {
        size,
        limit,
        kernel_end,
    };
    let addr = limit.checked_sub(size).ok_or(too_large.clone())? & !0xfff;
    if addr < kernel_end {
        return Err(too_large);
    }
    Ok(addr)
}

/// What goes into the zero page.
#[derive(Debug, Clone)]
pub struct ZeroPage {
    /// The bzImage's setup header, or `None` for an ELF vmlinux.
    pub header: Option<setup_header>,
    /// Guest address and length (without the NUL) of the command line.
    pub cmdline: (u64, usize),
    /// Guest address and size of the initrd, if any.
    pub initrd: Option<(u64, u64)>,
    /// The e820 map.
    pub e820: Vec<boot_e820_entry>,
}

/// Builds `struct boot_params` from `page`.
pub fn build(page: &ZeroPage) -> Result<boot_params, BootParamsError> {
    let mut params = boot_params::default();
    if let Some(header) = page.header {
        params.hdr = header;
    }
    let hdr = &mut params.hdr;
    hdr.type_of_loader = LOADER_UNDEFINED;
    hdr.boot_flag = BOOT_FLAG;
    hdr.header = HDR_MAGIC;
    hdr.loadflags |= LOADED_HIGH;
    if hdr.kernel_alignment == 0 {
        hdr.kernel_alignment = DEFAULT_KERNEL_ALIGNMENT;
    }
    let max = cmdline_max(hdr);
    if page.cmdline.1 > max {
        return Err(BootParamsError::CmdlineTooLong {
            len: page.cmdline.1,
            max,
        });
    }
    hdr.cmd_line_ptr = page.cmdline.0 as u32;
    hdr.cmdline_size = page.cmdline.1 as u32 + 1;
    if let Some((addr, size)) = page.initrd {
        hdr.ramdisk_image = addr as u32;
        hdr.ramdisk_size = size as u32;
    }
    if page.e820.len() > params.e820_table.len() {
        return Err(BootParamsError::TooManyRegions);
    }
    params.e820_table[..page.e820.len()].copy_from_slice(&page.e820);
    params.e820_entries = page.e820.len() as u8;
    Ok(params)
}

/// The longest command line the kernel takes: its header's `cmdline_size` (boot
/// protocol 2.06+), else the old 255-byte limit; an ELF vmlinux has no header, and the
/// 64-bit kernel's COMMAND_LINE_SIZE is 2048.
fn cmdline_max(hdr: &setup_header) -> usize {
    match (hdr.version, hdr.cmdline_size) {
        (0, _) => super::layout::CMDLINE_MAX_SIZE,
        (v, size) if v >= 0x206 && size > 0 => (size as usize).saturating_sub(1),
        _ => 255,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_memory_is_one_region_and_large_memory_skips_the_mmio_hole() {
        assert_eq!(ram_ranges(256 << 20), vec![(0, 256 << 20)]);
        assert_eq!(ram_ranges(MMIO_GAP_START), vec![(0, MMIO_GAP_START)]);
        assert_eq!(
            ram_ranges(5 << 30),
            vec![
                (0, MMIO_GAP_START),
                (MMIO_GAP_END, (5 << 30) - MMIO_GAP_START)
            ]
        );
    }

    #[test]
    fn e820_reserves_the_bios_area_and_maps_ram_from_one_mib() {
        let map = e820_map(&ram_ranges(5 << 30));
        let view: Vec<_> = map.iter().map(|e| (e.addr, e.size, e.r#type)).collect();
        assert_eq!(
            view,
            vec![
                (0, 0x9_fc00, E820_RAM),
                (0x9_fc00, 0x10_0000 - 0x9_fc00, E820_RESERVED),
                (0x10_0000, MMIO_GAP_START - 0x10_0000, E820_RAM),
                (MMIO_GAP_END, (2 << 30), E820_RAM),
            ]
        );
    }

    #[test]
    fn initrd_goes_to_the_top_of_low_memory_page_aligned() {
        let addr = initrd_addr(10_000, 128 << 20, 0x7fff_ffff, 0x200_0000).unwrap();
        assert_eq!(addr, ((128 << 20) - 10_000) & !0xfff);
        assert!(addr + 10_000 <= 128 << 20);
    }

    #[test]
    fn initrd_respects_the_kernels_initrd_addr_max() {
        let addr = initrd_addr(0x1000, 2 << 30, 0x37ff_ffff, 0x200_0000).unwrap();
        assert_eq!(addr, 0x3800_0000 - 0x1000);
        let old = initrd_addr(0x1000, 2 << 30, 0, 0x200_0000).unwrap();
        assert_eq!(old, addr, "a header without the field gets the old default");
    }

    #[test]
    fn initrd_larger_than_memory_is_a_clear_error() {
        let err = initrd_addr(200 << 20, 128 << 20, 0x7fff_ffff, 0x200_0000).unwrap_err();
        assert!(err.to_string().contains("--mem"), "{err}");
        let over_kernel = initrd_addr(100 << 20, 128 << 20, 0x7fff_ffff, 60 << 20);
        assert!(matches!(
            over_kernel,
            Err(BootParamsError::InitrdTooLarge { .. })
        ));
    }

    fn page() -> ZeroPage {
        ZeroPage {
            header: None,
            cmdline: (0x2_0000, 20),
            initrd: Some((0x700_0000, 0x1234)),
            e820: e820_map(&ram_ranges(128 << 20)),
        }
    }

    #[test]
    fn zero_page_carries_cmdline_initrd_e820_and_loader_fields() {
        let params = build(&page()).unwrap();
        let hdr = params.hdr;
        assert_eq!(
            (
                hdr.boot_flag,
                hdr.header,
                hdr.type_of_loader,
                hdr.kernel_alignment
            ),
            (0xaa55, 0x5372_6448, 0xff, 0x100_0000)
        );
        assert_eq!((hdr.cmd_line_ptr, hdr.cmdline_size), (0x2_0000, 21));
        assert_eq!((hdr.ramdisk_image, hdr.ramdisk_size), (0x700_0000, 0x1234));
        assert_eq!(params.e820_entries, 3);
        let last = params.e820_table[2];
        assert_eq!((last.addr, last.size), (0x10_0000, (128 << 20) - 0x10_0000));
    }

    #[test]
    fn bzimage_header_is_kept_and_its_cmdline_limit_enforced() {
        let header = setup_header {
            version: 0x20f,
            cmdline_size: 16,
            code32_start: 0x10_0000,
            initrd_addr_max: 0x7fff_ffff,
            ..Default::default()
        };
        let mut page = page();
        page.header = Some(header);
        let err = build(&page).unwrap_err();
        assert_eq!(err, BootParamsError::CmdlineTooLong { len: 20, max: 15 });
        page.cmdline.1 = 10;
        let params = build(&page).unwrap();
        assert_eq!({ params.hdr.code32_start }, 0x10_0000);
        assert_eq!({ params.hdr.version }, 0x20f);
    }
}
