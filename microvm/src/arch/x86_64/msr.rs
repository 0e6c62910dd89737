//! Model-specific registers the kernel-less guest needs: the SYSCALL entry point and
//! selectors, and FS base (thread-local storage) which `arch_prctl` changes.

use kvm_bindings::{kvm_msr_entry, Msrs};

use super::layout::{KERNEL_CS, KERNEL_DS, STUB_ADDR, SYSCALL_ENTRY_OFFSET};

/// SYSCALL/SYSRET segment selectors.
pub const MSR_STAR: u32 = 0xc000_0081;
/// SYSCALL target RIP in 64-bit mode.
pub const MSR_LSTAR: u32 = 0xc000_0082;
/// RFLAGS bits SYSCALL clears.
pub const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
/// FS segment base (the TLS pointer on x86_64 Linux).
pub const MSR_FS_BASE: u32 = 0xc000_0100;
/// GS segment base.
pub const MSR_GS_BASE: u32 = 0xc000_0101;

/// RFLAGS cleared on SYSCALL: TF, IF, DF, AC, NT (as Linux does).
pub const SYSCALL_RFLAGS_MASK: u64 = 0x4_7700;

/// `STAR`: SYSCALL loads CS/SS from KERNEL_CS; SYSRET loads them relative to KERNEL_DS.
pub const fn star_value() -> u64 {
    ((KERNEL_DS as u64) << 48) | ((KERNEL_CS as u64) << 32)
}

/// The MSR entries that route `syscall` to the CPL0 stub.
pub fn syscall_msrs() -> Vec<kvm_msr_entry> {
    let entry = |index, data| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    };
    vec![
        entry(MSR_STAR, star_value()),
        entry(MSR_LSTAR, STUB_ADDR + SYSCALL_ENTRY_OFFSET),
        entry(MSR_SYSCALL_MASK, SYSCALL_RFLAGS_MASK),
        entry(MSR_FS_BASE, 0),
        entry(MSR_GS_BASE, 0),
    ]
}

/// Wraps entries for the KVM_SET_MSRS / KVM_GET_MSRS ioctls.
pub fn msrs(entries: &[kvm_msr_entry]) -> Msrs {
    // Only fails above KVM_MAX_MSR_ENTRIES (256); callers pass a handful.
    Msrs::from_entries(entries).expect("a handful of MSRs fits in a KVM MSR list")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_gives_sysret_the_user_selectors() {
        let star = star_value();
        assert_eq!((star >> 32) & 0xffff, 0x08);
        let sysret_base = (star >> 48) & 0xffff;
        assert_eq!(sysret_base + 16, 0x20); // user CS without RPL
        assert_eq!(sysret_base + 8, 0x18); // user SS without RPL
    }

    #[test]
    fn lstar_points_at_the_stub_entry() {
        let entries = syscall_msrs();
        let lstar = entries.iter().find(|e| e.index == MSR_LSTAR).unwrap();
        assert_eq!(lstar.data, STUB_ADDR + SYSCALL_ENTRY_OFFSET);
        assert_eq!(msrs(&entries).as_slice().len(), entries.len());
    }
}
