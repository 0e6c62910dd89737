//! A vCPU's general registers after an exit, two ways: straight from the shared
//! `kvm_run` page (`KVM_CAP_SYNC_REGS`: KVM copies them there on every exit and back
//! on entry when marked dirty, so a syscall round trip costs one ioctl, `KVM_RUN`),
//! or through `KVM_GET_REGS`/`KVM_SET_REGS` where KVM lacks the capability.

use kvm_bindings::{kvm_regs, kvm_run, KVM_SYNC_X86_REGS};
use kvm_ioctls::{Cap, Kvm, VcpuFd};

use super::vcpu::{ioctl, VcpuError};

/// Reading and writing the general registers of a stopped vCPU.
pub trait GuestRegs {
    /// The registers as the guest left them.
    fn regs(&mut self) -> Result<kvm_regs, VcpuError>;
    /// Sets the registers the guest resumes with.
    fn set_regs(&mut self, regs: &kvm_regs) -> Result<(), VcpuError>;
}

/// Whether this KVM copies the general registers into `kvm_run` on exit.
pub fn sync_regs_supported(kvm: &Kvm) -> bool {
    let fields = kvm.check_extension_int(Cap::SyncRegs);
    fields > 0 && (fields as u32) & KVM_SYNC_X86_REGS != 0
}

/// Asks KVM to store the general registers in `run` at every exit.
pub fn enable_sync_regs(run: &mut kvm_run) {
    run.kvm_valid_regs |= u64::from(KVM_SYNC_X86_REGS);
}

/// The registers in a `kvm_run` page whose `kvm_valid_regs` includes
/// `KVM_SYNC_X86_REGS` (see [`enable_sync_regs`]). Writing marks them dirty, so KVM
/// loads them at the next `KVM_RUN` (and clears the dirty bit).
#[derive(Debug)]
pub struct SyncRegs<'a> {
    run: &'a mut kvm_run,
}

impl<'a> SyncRegs<'a> {
    /// The sync registers of `run`.
    pub fn new(run: &'a mut kvm_run) -> Self {
        Self { run }
    }
}

impl GuestRegs for SyncRegs<'_> {
    fn regs(&mut self) -> Result<kvm_regs, VcpuError> {
        // SAFETY: `s` is a union of `kvm_sync_regs` and padding, both plain integers
        // for which every bit pattern is valid; the page is `kvm_run`-sized.
        Ok(unsafe { self.run.s.regs.regs })
    }

    fn set_regs(&mut self, regs: &kvm_regs) -> Result<(), VcpuError> {
        // Writing a `Copy` union field is safe; `regs` reads it back.
        self.run.s.regs.regs = *regs;
        self.run.kvm_dirty_regs |= u64::from(KVM_SYNC_X86_REGS);
        Ok(())
    }
}

/// The registers through `KVM_GET_REGS` and `KVM_SET_REGS` (two ioctls per exit).
#[derive(Debug)]
pub struct IoctlRegs<'a> {
    fd: &'a VcpuFd,
}

impl<'a> IoctlRegs<'a> {
    /// The registers of vCPU `fd`.
    pub fn new(fd: &'a VcpuFd) -> Self {
        Self { fd }
    }
}

impl GuestRegs for IoctlRegs<'_> {
    fn regs(&mut self) -> Result<kvm_regs, VcpuError> {
        self.fd
            .get_regs()
            .map_err(ioctl("reading the registers (KVM_GET_REGS)"))
    }

    fn set_regs(&mut self, regs: &kvm_regs) -> Result<(), VcpuError> {
        self.fd
            .set_regs(regs)
            .map_err(ioctl("writing the registers (KVM_SET_REGS)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_regs_read_what_kvm_stored_and_mark_writes_dirty() {
        let mut run = kvm_run::default();
        enable_sync_regs(&mut run);
        assert_eq!(run.kvm_valid_regs, u64::from(KVM_SYNC_X86_REGS));
        // What KVM does at an exit: store the registers in the page.
        run.s.regs.regs.rax = 39;
        let mut sync = SyncRegs::new(&mut run);
        let mut regs = sync.regs().unwrap();
        assert_eq!(regs.rax, 39);
        regs.rax = 1;
        sync.set_regs(&regs).unwrap();
        assert_eq!(run.kvm_dirty_regs, u64::from(KVM_SYNC_X86_REGS));
        // SAFETY: as above.
        assert_eq!(unsafe { run.s.regs.regs.rax }, 1);
    }

    #[test]
    fn a_read_alone_leaves_the_registers_clean() {
        let mut run = kvm_run::default();
        enable_sync_regs(&mut run);
        SyncRegs::new(&mut run).regs().unwrap();
        assert_eq!(
            run.kvm_dirty_regs, 0,
            "KVM would reload unchanged registers"
        );
    }
}
