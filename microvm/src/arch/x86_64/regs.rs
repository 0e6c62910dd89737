//! Register state for the kernel-less guest: long mode with paging, SSE and XSAVE
//! enabled (so ordinary compiled code runs without a kernel), SYSCALL enabled, and
//! the vCPU parked on the stub's SYSRET so the first instruction enters CPL3.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs, kvm_xcrs};

use super::gdt::segments;
use super::layout::{
    GDT_ADDR, GDT_ENTRIES, IDT_ADDR, IDT_ENTRIES, PML4_ADDR, STUB_ADDR, SYSRET_OFFSET,
};

/// CR0: protected mode.
pub const CR0_PE: u64 = 1 << 0;
/// CR0: monitor coprocessor (WAIT honours TS).
pub const CR0_MP: u64 = 1 << 1;
/// CR0: x87 emulation (must be clear for SSE).
pub const CR0_EM: u64 = 1 << 2;
/// CR0: task switched (must be clear, or the first FPU instruction faults).
pub const CR0_TS: u64 = 1 << 3;
/// CR0: extension type (always 1).
pub const CR0_ET: u64 = 1 << 4;
/// CR0: native x87 error reporting.
pub const CR0_NE: u64 = 1 << 5;
/// CR0: write-protect read-only pages at CPL0 too.
pub const CR0_WP: u64 = 1 << 16;
/// CR0: paging.
pub const CR0_PG: u64 = 1 << 31;
/// CR4: physical address extension (required by long mode).
pub const CR4_PAE: u64 = 1 << 5;
/// CR4: FXSAVE/FXRSTOR and SSE instructions enabled.
pub const CR4_OSFXSR: u64 = 1 << 9;
/// CR4: unmasked SIMD floating-point exceptions raise #XM.
pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
/// CR4: XSAVE and XGETBV/XSETBV enabled (AVX needs it).
pub const CR4_OSXSAVE: u64 = 1 << 18;
/// EFER: SYSCALL/SYSRET enabled.
pub const EFER_SCE: u64 = 1 << 0;
/// EFER: long mode enabled.
pub const EFER_LME: u64 = 1 << 8;
/// EFER: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// RFLAGS bit 1 is reserved and always set.
pub const RFLAGS_RESERVED: u64 = 1 << 1;
/// RFLAGS interrupt-enable flag, as a Linux process runs with it.
pub const RFLAGS_IF: u64 = 1 << 9;
/// The FPU control word after FNINIT.
pub const FPU_CONTROL_WORD: u16 = 0x37f;
/// MXCSR after reset: all SIMD exceptions masked.
pub const MXCSR_DEFAULT: u32 = 0x1f80;

/// Long-mode system registers for the kernel-less guest, starting from `sregs` as
/// KVM_GET_SREGS returned them. The vCPU starts at CPL0 (on the stub's SYSRET).
pub fn kernelless_sregs(mut sregs: kvm_sregs, xsave: bool) -> kvm_sregs {
    let seg = segments();
    sregs.cs = seg.kernel_code;
    sregs.ss = seg.kernel_data;
    sregs.ds = seg.user_data;
    sregs.es = seg.user_data;
    sregs.fs = seg.user_data;
    sregs.gs = seg.user_data;
    sregs.tr = seg.tss;
    sregs.ldt.unusable = 1;
    sregs.ldt.type_ = 0x2;
    sregs.ldt.selector = 0;
    sregs.ldt.present = 0;
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (GDT_ENTRIES * 8 - 1) as u16;
    sregs.idt.base = IDT_ADDR;
    sregs.idt.limit = (IDT_ENTRIES * 16 - 1) as u16;
    sregs.cr3 = PML4_ADDR;
    sregs.cr0 = (CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG) & !(CR0_EM | CR0_TS);
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | if xsave { CR4_OSXSAVE } else { 0 };
    sregs.efer = EFER_LME | EFER_LMA | EFER_SCE;
    sregs
}

/// General registers for the first instruction: the stub's SYSRET, which jumps to
/// `entry` at CPL3 with RFLAGS from R11 and the Linux initial stack in RSP.
pub fn initial_regs(entry: u64, stack_pointer: u64) -> kvm_regs {
    kvm_regs {
        rip: STUB_ADDR + SYSRET_OFFSET,
        rcx: entry,
        r11: RFLAGS_RESERVED | RFLAGS_IF,
        rsp: stack_pointer,
        rflags: RFLAGS_RESERVED,
        ..Default::default()
    }
}

/// FPU state after FNINIT with SSE exceptions masked.
pub fn initial_fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: FPU_CONTROL_WORD,
        mxcsr: MXCSR_DEFAULT,
        ..Default::default()
    }
}

/// XCR0 set to `xcr0` (bit 0, x87, is mandatory).
pub fn xcrs(xcr0: u64) -> kvm_xcrs {
    let mut xcrs = kvm_xcrs {
        nr_xcrs: 1,
        ..Default::default()
    };
    xcrs.xcrs[0].xcr = 0;
    xcrs.xcrs[0].value = xcr0 | 1;
    xcrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::x86_64::layout::{KERNEL_CS, TSS_SELECTOR};

    #[test]
    fn sregs_enable_long_mode_paging_and_sse() {
        let s = kernelless_sregs(kvm_sregs::default(), true);
        assert_eq!(s.cr0 & (CR0_PG | CR0_PE), CR0_PG | CR0_PE);
        assert_eq!(s.cr0 & (CR0_EM | CR0_TS), 0);
        assert_ne!(s.cr4 & CR4_OSFXSR, 0);
        assert_ne!(s.cr4 & CR4_OSXSAVE, 0);
        assert_eq!(
            s.efer & (EFER_LME | EFER_LMA | EFER_SCE),
            EFER_LME | EFER_LMA | EFER_SCE
        );
        assert_eq!((s.cs.selector, s.cs.l), (KERNEL_CS, 1));
        assert_eq!(s.tr.selector, TSS_SELECTOR);
        let no_xsave = kernelless_sregs(kvm_sregs::default(), false);
        assert_eq!(no_xsave.cr4 & CR4_OSXSAVE, 0);
    }

    #[test]
    fn first_instruction_is_the_sysret_into_the_program() {
        let r = initial_regs(0x40_1000, 0x7ff_f000);
        assert_eq!(r.rip, STUB_ADDR + SYSRET_OFFSET);
        assert_eq!((r.rcx, r.rsp), (0x40_1000, 0x7ff_f000));
        assert_ne!(r.r11 & RFLAGS_RESERVED, 0);
    }

    #[test]
    fn xcr0_always_has_x87() {
        assert_eq!(xcrs(0x6).xcrs[0].value, 0x7);
        assert_eq!(initial_fpu().mxcsr, MXCSR_DEFAULT);
    }
}
