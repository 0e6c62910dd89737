//! CPUID for the guest: what KVM supports (`KVM_GET_SUPPORTED_CPUID`), with the
//! hypervisor bit set and per-vCPU APIC IDs, plus the feature words the kernel-less
//! guest derives its XCR0 and AT_HWCAP from.

use kvm_bindings::{kvm_cpuid_entry2, CpuId};

/// Leaf 1 ECX: running under a hypervisor.
pub const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 ECX: XSAVE/XRSTOR and XCR0 are supported.
pub const LEAF1_ECX_XSAVE: u32 = 1 << 26;
/// XCR0 components the guest may enable: x87, SSE, AVX, and the three AVX-512 parts.
/// MPX, PKRU and AMX are left out: they need kernel support a kernel-less guest lacks.
pub const XCR0_ALLOWED: u64 = 0b1110_0111;

/// Adjusts the supported CPUID for vCPU `index` of `count`.
pub fn filter(cpuid: &mut CpuId, index: u8, count: u8) {
    for entry in cpuid.as_mut_slice() {
        filter_entry(entry, index, count);
    }
}

fn filter_entry(entry: &mut kvm_cpuid_entry2, index: u8, count: u8) {
    match entry.function {
        0x1 => {
            entry.ecx |= LEAF1_ECX_HYPERVISOR;
            // EBX: initial APIC ID in 31:24, logical processor count in 23:16.
            entry.ebx =
                (entry.ebx & 0x0000_ffff) | (u32::from(index) << 24) | (u32::from(count) << 16);
        }
        0xb | 0x1f => entry.edx = u32::from(index), // x2APIC ID
        _ => {}
    }
}

fn leaf(cpuid: &CpuId, function: u32, index: u32) -> Option<&kvm_cpuid_entry2> {
    cpuid
        .as_slice()
        .iter()
        .find(|e| e.function == function && e.index == index)
}

/// The XCR0 value to enable: supported state components (leaf 0xD.0) that are allowed,
/// or `None` when the CPU has no XSAVE.
pub fn xcr0(cpuid: &CpuId) -> Option<u64> {
    let has_xsave = leaf(cpuid, 0x1, 0).is_some_and(|l| l.ecx & LEAF1_ECX_XSAVE != 0);
    let d = leaf(cpuid, 0xd, 0)?;
    let supported = u64::from(d.eax) | (u64::from(d.edx) << 32);
    let mut mask = supported & XCR0_ALLOWED & 0b111;
    if supported & 0b1110_0000 == 0b1110_0000 {
        mask |= 0b1110_0000; // AVX-512 only as a whole
    }
    has_xsave.then_some(mask | 1)
}

/// AT_HWCAP as Linux reports it on x86_64: CPUID leaf 1 EDX.
pub fn hwcap(cpuid: &CpuId) -> u64 {
    leaf(cpuid, 0x1, 0).map_or(0, |l| u64::from(l.edx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpuid(entries: &[(u32, u32, [u32; 4])]) -> CpuId {
        let entries: Vec<kvm_cpuid_entry2> = entries
            .iter()
            .map(
                |&(function, index, [eax, ebx, ecx, edx])| kvm_cpuid_entry2 {
                    function,
                    index,
                    eax,
                    ebx,
                    ecx,
                    edx,
                    ..Default::default()
                },
            )
            .collect();
        CpuId::from_entries(&entries).unwrap()
    }

    #[test]
    fn filter_sets_hypervisor_bit_and_apic_id() {
        let mut c = cpuid(&[(1, 0, [0, 0xff00_1234, 0, 0x1]), (0xb, 0, [0, 0, 0, 7])]);
        filter(&mut c, 3, 4);
        let l1 = c.as_slice()[0];
        assert_ne!(l1.ecx & LEAF1_ECX_HYPERVISOR, 0);
        assert_eq!(l1.ebx, 0x0304_1234);
        assert_eq!(c.as_slice()[1].edx, 3);
    }

    #[test]
    fn xcr0_keeps_allowed_supported_components() {
        let avx = cpuid(&[
            (1, 0, [0, 0, LEAF1_ECX_XSAVE, 0]),
            (0xd, 0, [0x2ff, 0, 0, 0]),
        ]);
        assert_eq!(xcr0(&avx), Some(0xe7));
        let sse = cpuid(&[
            (1, 0, [0, 0, LEAF1_ECX_XSAVE, 0]),
            (0xd, 0, [0x63, 0, 0, 0]),
        ]);
        assert_eq!(xcr0(&sse), Some(0x3));
        let none = cpuid(&[(1, 0, [0, 0, 0, 0]), (0xd, 0, [0x7, 0, 0, 0])]);
        assert_eq!(xcr0(&none), None);
    }

    #[test]
    fn hwcap_is_leaf1_edx() {
        assert_eq!(
            hwcap(&cpuid(&[(1, 0, [0, 0, 0, 0x178b_fbff])])),
            0x178b_fbff
        );
        assert_eq!(hwcap(&cpuid(&[])), 0);
    }
}
