//! The ACPI tables a kernel built without MP-table support (Debian's cloud kernel:
//! `CONFIG_X86_MPPARSE` is off) needs to see every vCPU: an RSDP in the BIOS area
//! where the kernel scans for it, an XSDT, and a MADT listing the local APICs, the
//! IOAPIC and the LINT1 NMI. No FADT and no DSDT: the guest has no ACPI hardware, so
//! the kernel finds the CPUs, then disables its ACPI interpreter. Built as bytes, each
//! table's checksum summing to zero (ACPI 6.4, 5.2).

use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

use super::layout::{ACPI_TABLES_ADDR, APIC_ADDR, IOAPIC_ADDR};
use super::mptable::{checksum, MAX_VCPUS};

/// Length of every table's standard header.
const HEADER_LEN: usize = 36;
const OEM_ID: &[u8; 6] = b"ISOLAB";
const OEM_TABLE_ID: &[u8; 8] = b"MICROVM ";
const CREATOR_ID: &[u8; 4] = b"ISOL";
/// RSDP revision 2: the XSDT address is valid.
const RSDP_REVISION: u8 = 2;
const RSDP_LEN: usize = 36;
/// MADT flags: the guest also has the dual 8259 PICs (KVM's irqchip emulates them).
const MADT_PCAT_COMPAT: u32 = 1;
/// MADT entry types and lengths.
const MADT_LOCAL_APIC: u8 = 0;
const MADT_IO_APIC: u8 = 1;
const MADT_LOCAL_APIC_NMI: u8 = 4;
/// Local APIC flags: enabled.
const LOCAL_APIC_ENABLED: u32 = 1;
/// "All processors" in a Local APIC NMI entry.
const ALL_PROCESSORS: u8 = 0xff;
/// The LINT pin NMIs arrive on.
const NMI_LINT: u8 = 1;

/// Why the tables could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AcpiError {
    /// Too many vCPUs (the MADT's APIC IDs follow the MP table's limit).
    #[error("{0} vCPUs: the ACPI tables describe 1 to {MAX_VCPUS}")]
    TooManyVcpus(u8),
    /// Guest memory refused the write.
    #[error("writing the ACPI tables into guest memory: {0}")]
    Memory(#[from] GuestMemoryError),
}

/// A system description table: the standard header (with its length and checksum
/// filled in) followed by `body`.
fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let len = HEADER_LEN + body.len();
    let mut out = Vec::with_capacity(len);
    out.extend(signature);
    out.extend((len as u32).to_le_bytes());
    out.extend([revision, 0]); // checksum at byte 9
    out.extend(OEM_ID);
    out.extend(OEM_TABLE_ID);
    out.extend(1u32.to_le_bytes()); // OEM revision
    out.extend(CREATOR_ID);
    out.extend(1u32.to_le_bytes()); // creator revision
    out.extend(body);
    out[9] = checksum(&out);
    out
}

/// The MADT: the local APIC address, then one enabled local APIC per vCPU (APIC ID =
/// vCPU index, as KVM numbers them), the IOAPIC with its ID after the CPUs' (as in
/// the MP table) at GSI 0, and NMI on LINT1 for every CPU. ISA interrupts map to
/// the same-numbered GSI, KVM's default routing, so no override entries.
fn madt(vcpus: u8) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(APIC_ADDR.to_le_bytes());
    body.extend(MADT_PCAT_COMPAT.to_le_bytes());
    for cpu in 0..vcpus {
        body.extend([MADT_LOCAL_APIC, 8, cpu, cpu]);
        body.extend(LOCAL_APIC_ENABLED.to_le_bytes());
    }
    body.extend([MADT_IO_APIC, 12, vcpus + 1, 0]);
    body.extend(IOAPIC_ADDR.to_le_bytes());
    body.extend(0u32.to_le_bytes()); // GSI base
    body.extend([MADT_LOCAL_APIC_NMI, 6, ALL_PROCESSORS, 0, 0, NMI_LINT]);
    table(b"APIC", 5, &body)
}

/// The RSDP, the XSDT and the MADT for `vcpus`, laid out from `base` in that order.
pub fn build(base: u64, vcpus: u8) -> Result<Vec<u8>, AcpiError> {
    if vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(AcpiError::TooManyVcpus(vcpus));
    }
    let xsdt_addr = base + RSDP_LEN.next_multiple_of(16) as u64;
    let xsdt_len = HEADER_LEN + 8;
    let madt_addr = xsdt_addr + xsdt_len.next_multiple_of(16) as u64;

    let mut rsdp = Vec::with_capacity(RSDP_LEN);
    rsdp.extend(b"RSD PTR ");
    rsdp.push(0); // checksum of the first 20 bytes
    rsdp.extend(OEM_ID);
    rsdp.push(RSDP_REVISION);
    rsdp.extend(0u32.to_le_bytes()); // no RSDT: the XSDT serves
    rsdp.extend((RSDP_LEN as u32).to_le_bytes());
    rsdp.extend(xsdt_addr.to_le_bytes());
    rsdp.extend([0u8; 4]); // extended checksum, reserved
    rsdp[8] = checksum(&rsdp[..20]);
    rsdp[32] = checksum(&rsdp);

    let xsdt = table(b"XSDT", 1, &madt_addr.to_le_bytes());
    let mut out = rsdp;
    out.resize((xsdt_addr - base) as usize, 0);
    out.extend(xsdt);
    out.resize((madt_addr - base) as usize, 0);
    out.extend(madt(vcpus));
    Ok(out)
}

/// Writes the tables for `vcpus` at their fixed place; returns the RSDP's address
/// (for the zero page's `acpi_rsdp_addr` and PVH's `rsdp_paddr`).
pub fn write(mem: &GuestMemoryMmap, vcpus: u8) -> Result<u64, AcpiError> {
    let bytes = build(ACPI_TABLES_ADDR, vcpus)?;
    mem.write_slice(&bytes, GuestAddress(ACPI_TABLES_ADDR))?;
    Ok(ACPI_TABLES_ADDR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    fn u64_at(bytes: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    }

    /// Follows RSDP -> XSDT -> MADT as a kernel does, checking each checksum, and
    /// returns the MADT.
    fn madt_through_the_pointers(bytes: &[u8], base: u64) -> Vec<u8> {
        assert_eq!(&bytes[..8], b"RSD PTR ");
        assert_eq!(base % 16, 0, "the kernel scans 16-byte boundaries");
        assert_eq!(sum(&bytes[..20]), 0, "RSDP checksum");
        assert_eq!(sum(&bytes[..RSDP_LEN]), 0, "RSDP extended checksum");
        assert_eq!(bytes[15], 2, "revision 2: XSDT");
        let at = |addr: u64| (addr - base) as usize;
        let xsdt = at(u64_at(bytes, 24));
        assert_eq!(&bytes[xsdt..xsdt + 4], b"XSDT");
        let xsdt_len = u32_at(bytes, xsdt + 4) as usize;
        assert_eq!(sum(&bytes[xsdt..xsdt + xsdt_len]), 0, "XSDT checksum");
        assert_eq!(xsdt_len, HEADER_LEN + 8, "one table: the MADT");
        let madt = at(u64_at(bytes, xsdt + HEADER_LEN));
        assert_eq!(&bytes[madt..madt + 4], b"APIC");
        let madt_len = u32_at(bytes, madt + 4) as usize;
        assert_eq!(madt + madt_len, bytes.len());
        assert_eq!(sum(&bytes[madt..madt + madt_len]), 0, "MADT checksum");
        bytes[madt..].to_vec()
    }

    #[test]
    fn the_madt_lists_every_vcpu_the_ioapic_and_the_nmi_line() {
        let base = ACPI_TABLES_ADDR;
        let bytes = build(base, 3).unwrap();
        let madt = madt_through_the_pointers(&bytes, base);
        assert_eq!(u32_at(&madt, HEADER_LEN), APIC_ADDR);
        let mut entries = Vec::new();
        let mut at = HEADER_LEN + 8;
        while at < madt.len() {
            let len = usize::from(madt[at + 1]);
            entries.push(madt[at..at + len].to_vec());
            at += len;
        }
        assert_eq!(at, madt.len(), "entries fill the table exactly");
        let cpus: Vec<(u8, u8, u32)> = entries
            .iter()
            .filter(|e| e[0] == MADT_LOCAL_APIC)
            .map(|e| (e[2], e[3], u32_at(e, 4)))
            .collect();
        assert_eq!(cpus, [(0, 0, 1), (1, 1, 1), (2, 2, 1)]);
        let ioapic = entries.iter().find(|e| e[0] == MADT_IO_APIC).unwrap();
        assert_eq!(
            ioapic[2], 4,
            "IOAPIC ID after the CPUs', as in the MP table"
        );
        assert_eq!((u32_at(ioapic, 4), u32_at(ioapic, 8)), (IOAPIC_ADDR, 0));
        let nmi = entries
            .iter()
            .find(|e| e[0] == MADT_LOCAL_APIC_NMI)
            .unwrap();
        assert_eq!((nmi[2], nmi[5]), (ALL_PROCESSORS, NMI_LINT));
    }

    #[test]
    fn vcpu_counts_out_of_range_are_refused() {
        assert!(matches!(build(0, 0), Err(AcpiError::TooManyVcpus(0))));
        assert!(build(0, MAX_VCPUS).is_ok());
        assert!(matches!(
            build(0, MAX_VCPUS + 1),
            Err(AcpiError::TooManyVcpus(_))
        ));
    }

    #[test]
    fn the_tables_fit_in_the_bios_area_below_1_mib() {
        let bytes = build(ACPI_TABLES_ADDR, MAX_VCPUS).unwrap();
        // Where the kernel scans for the RSDP.
        const { assert!(ACPI_TABLES_ADDR >= 0xe_0000) };
        assert!(ACPI_TABLES_ADDR + bytes.len() as u64 <= 0x10_0000);
    }
}
