//! The Intel MultiProcessor table: how a kernel without ACPI learns the vCPUs, the
//! IOAPIC and the ISA interrupt routing. Built as bytes (floating pointer, then the
//! configuration table with its entries), each structure's checksum summing to zero.

use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

use super::layout::{APIC_ADDR, IOAPIC_ADDR, MPTABLE_ADDR};

/// Most vCPUs the table (in its 1 KiB below 640 KiB) describes.
pub const MAX_VCPUS: u8 = 32;
/// Interrupt lines of the IOAPIC KVM emulates.
const IOAPIC_PINS: u8 = 24;
/// Local APIC version reported for each processor (an integrated APIC).
const APIC_VERSION: u8 = 0x14;
/// Processor signature: family 6, and the APIC and FPU feature flags.
const CPU_SIGNATURE: u32 = 0x600;
const CPU_FEATURES: u32 = 0x201;
/// Entry types.
const MP_PROCESSOR: u8 = 0;
const MP_BUS: u8 = 1;
const MP_IOAPIC: u8 = 2;
const MP_INTSRC: u8 = 3;
const MP_LINTSRC: u8 = 4;
/// Interrupt types.
const MP_INT: u8 = 0;
const MP_NMI: u8 = 1;
const MP_EXTINT: u8 = 3;
/// Processor flags: enabled, bootstrap processor.
const CPU_ENABLED: u8 = 1;
const CPU_BSP: u8 = 2;

/// Why the table could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MptableError {
    /// Too many vCPUs for the table.
    #[error("{0} vCPUs: the MP table describes 1 to {MAX_VCPUS}")]
    TooManyVcpus(u8),
    /// Guest memory refused the write.
    #[error("writing the MP table into guest memory: {0}")]
    Memory(#[from] GuestMemoryError),
}

/// The byte that makes `bytes` sum to zero (MP and ACPI tables alike).
pub(super) fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)))
}

fn entries(vcpus: u8) -> Vec<u8> {
    let ioapic_id = vcpus + 1;
    let mut out = Vec::new();
    for cpu in 0..vcpus {
        let flags = CPU_ENABLED | if cpu == 0 { CPU_BSP } else { 0 };
        out.extend([MP_PROCESSOR, cpu, APIC_VERSION, flags]);
        out.extend(CPU_SIGNATURE.to_le_bytes());
        out.extend(CPU_FEATURES.to_le_bytes());
        out.extend([0u8; 8]);
    }
    out.extend([MP_BUS, 0]);
    out.extend(b"ISA   ");
    out.extend([MP_IOAPIC, ioapic_id, APIC_VERSION, 1]);
    out.extend(IOAPIC_ADDR.to_le_bytes());
    for pin in 0..IOAPIC_PINS {
        out.extend([MP_INTSRC, MP_INT, 0, 0, 0, pin, ioapic_id, pin]);
    }
    out.extend([MP_LINTSRC, MP_EXTINT, 0, 0, 0, 0, 0xff, 0]);
    out.extend([MP_LINTSRC, MP_NMI, 0, 0, 0, 0, 0xff, 1]);
    out
}

/// The whole table for `vcpus`, as it goes at `base`: the 16-byte floating pointer,
/// then the configuration table.
pub fn build(base: u64, vcpus: u8) -> Result<Vec<u8>, MptableError> {
    if vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(MptableError::TooManyVcpus(vcpus));
    }
    let body = entries(vcpus);
    let count = u16::from(vcpus) + 3 + u16::from(IOAPIC_PINS) + 2;
    let mut table = Vec::with_capacity(44 + body.len());
    table.extend(b"PCMP");
    table.extend(((44 + body.len()) as u16).to_le_bytes());
    table.extend([4, 0]); // spec 1.4, checksum
    table.extend(b"ISOLAB  ");
    table.extend(b"MICROVM     ");
    table.extend([0u8; 4]); // no OEM table
    table.extend([0u8; 2]);
    table.extend(count.to_le_bytes());
    table.extend(APIC_ADDR.to_le_bytes());
    table.extend([0u8; 4]);
    table.extend(body);
    table[7] = checksum(&table);

    let mut out = Vec::with_capacity(16 + table.len());
    out.extend(b"_MP_");
    out.extend(((base + 16) as u32).to_le_bytes());
    out.extend([1, 4, 0, 0, 0, 0, 0, 0]); // 16 bytes long, spec 1.4, checksum, features
    out[10] = checksum(&out);
    out.extend(table);
    Ok(out)
}

/// Writes the table for `vcpus` at its fixed place.
pub fn write(mem: &GuestMemoryMmap, vcpus: u8) -> Result<(), MptableError> {
    let bytes = build(MPTABLE_ADDR, vcpus)?;
    mem.write_slice(&bytes, GuestAddress(MPTABLE_ADDR))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
    }

    #[test]
    fn floating_pointer_and_table_checksums_sum_to_zero() {
        let bytes = build(MPTABLE_ADDR, 4).unwrap();
        assert_eq!(&bytes[..4], b"_MP_");
        assert_eq!(sum(&bytes[..16]), 0);
        let ptr = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(u64::from(ptr), MPTABLE_ADDR + 16);
        let table = &bytes[16..];
        assert_eq!(&table[..4], b"PCMP");
        assert_eq!(
            usize::from(u16::from_le_bytes([table[4], table[5]])),
            table.len()
        );
        assert_eq!(sum(table), 0);
    }

    #[test]
    fn every_vcpu_is_listed_and_only_the_first_is_the_bsp() {
        let bytes = build(MPTABLE_ADDR, 3).unwrap();
        let table = &bytes[16..];
        assert_eq!(u16::from_le_bytes([table[34], table[35]]), 3 + 3 + 24 + 2);
        let cpus: Vec<_> = table[44..44 + 60]
            .chunks(20)
            .map(|e| (e[0], e[1], e[3]))
            .collect();
        assert_eq!(cpus, [(0, 0, 3), (0, 1, 1), (0, 2, 1)]);
        let ioapic = &table[44 + 60 + 8..44 + 60 + 16];
        assert_eq!((ioapic[0], ioapic[1]), (MP_IOAPIC, 4));
    }

    #[test]
    fn the_largest_table_fits_below_640_kib() {
        let bytes = build(MPTABLE_ADDR, MAX_VCPUS).unwrap();
        assert!(MPTABLE_ADDR + bytes.len() as u64 <= 0xa_0000);
        assert!(matches!(
            build(MPTABLE_ADDR, 0),
            Err(MptableError::TooManyVcpus(0))
        ));
        assert!(matches!(
            build(MPTABLE_ADDR, 33),
            Err(MptableError::TooManyVcpus(33))
        ));
    }
}
