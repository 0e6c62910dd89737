//! The KVM VM: opening `/dev/kvm`, creating the VM (with the in-kernel irqchip and PIT
//! only when a guest needs them), and registering guest memory.

use kvm_bindings::{kvm_pit_config, kvm_userspace_memory_region, CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::kvm_flavor::{self, KvmFlavor};

/// Why the VM could not be created or configured.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// `/dev/kvm` missing or not accessible.
    #[error("opening /dev/kvm (is KVM available, and may this user open it?)")]
    OpenKvm(#[source] kvm_ioctls::Error),
    /// A KVM ioctl on the VM failed.
    #[error("{what}")]
    Ioctl {
        /// What was being done.
        what: &'static str,
        /// The errno.
        source: kvm_ioctls::Error,
    },
}

fn ioctl(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmError {
    move |source| VmError::Ioctl { what, source }
}

/// Options for [`Vm::new`].
#[derive(Debug, Clone, Copy, Default)]
pub struct VmConfig {
    /// Create the in-kernel irqchip (PIC, IOAPIC, LAPICs) and the PIT. A Linux guest
    /// needs them; the kernel-less guest does not (they cost 10-25 ms on PVM hosts).
    pub irqchip: bool,
}

/// A KVM VM and the `/dev/kvm` handle it came from.
#[derive(Debug)]
pub struct Vm {
    kvm: Kvm,
    fd: VmFd,
    flavor: KvmFlavor,
    /// Registered guest memory, kept mapped for as long as KVM may access it.
    memory: Vec<GuestMemoryMmap>,
}

impl Vm {
    /// Opens `/dev/kvm` and creates a VM.
    pub fn new(config: VmConfig) -> Result<Self, VmError> {
        let kvm = Kvm::new().map_err(VmError::OpenKvm)?;
        let fd = kvm
            .create_vm()
            .map_err(ioctl("creating the VM (KVM_CREATE_VM)"))?;
        if config.irqchip {
            fd.create_irq_chip()
                .map_err(ioctl("creating the in-kernel irqchip"))?;
            let pit = kvm_pit_config {
                flags: kvm_bindings::KVM_PIT_SPEAKER_DUMMY,
                ..Default::default()
            };
            fd.create_pit2(pit).map_err(ioctl("creating the PIT"))?;
        }
        Ok(Self {
            kvm,
            fd,
            flavor: kvm_flavor::detect(),
            memory: Vec::new(),
        })
    }

    /// The flavor of KVM the VM runs on.
    pub fn flavor(&self) -> KvmFlavor {
        self.flavor
    }

    /// The `/dev/kvm` handle.
    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    /// The VM file descriptor (for irqfds, ioeventfds, ...).
    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// Registers every region of `mem` as a KVM memory slot, in order. The VM keeps a
    /// handle on the mappings, so they outlive every vCPU access.
    pub fn register_memory(&mut self, mem: &GuestMemoryMmap) -> Result<(), VmError> {
        let first_slot = self.memory.iter().map(|m| m.num_regions()).sum::<usize>();
        self.memory.push(mem.clone());
        for (index, region) in mem.iter().enumerate() {
            let slot = first_slot + index;
            let host = region
                .get_host_address(vm_memory::MemoryRegionAddress(0))
                .map_err(|_| VmError::Ioctl {
                    what: "finding the host address of guest memory",
                    source: kvm_ioctls::Error::new(libc::EFAULT),
                })?;
            let region = kvm_userspace_memory_region {
                slot: slot as u32,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: host as u64,
                flags: 0,
            };
            // SAFETY: the region is a live mapping of `region.len()` bytes; `self.memory`
            // holds a clone of its Arc, so it stays mapped as long as the VM fd exists.
            unsafe { self.fd.set_user_memory_region(region) }.map_err(ioctl(
                "registering guest memory (KVM_SET_USER_MEMORY_REGION)",
            ))?;
        }
        Ok(())
    }

    /// The CPUID KVM supports on this host.
    pub fn supported_cpuid(&self) -> Result<CpuId, VmError> {
        self.kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(ioctl("reading KVM_GET_SUPPORTED_CPUID"))
    }

    /// Creates vCPU number `index`.
    pub fn create_vcpu(&self, index: u8) -> Result<VcpuFd, VmError> {
        self.fd
            .create_vcpu(u64::from(index))
            .map_err(ioctl("creating a vCPU (KVM_CREATE_VCPU)"))
    }
}
