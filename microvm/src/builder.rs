//! The recipe for a kernel-less VM, one named step at a time: create the VM, map and
//! register guest memory, set up the vCPU (CPUID, MSRs, long mode, FPU/XSAVE), write
//! the page tables, descriptor tables and CPL0 stub, load the program, and build its
//! initial stack. Each step ends a phase in `--stats`.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use kvm_bindings::CpuId;
use kvm_ioctls::{Cap, VcpuFd};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::arch::x86_64::layout::{
    BRK_MAX, EXCEPTION_PORT_BASE, IDT_ENTRIES, LARGE_PAGE_SIZE, PAGE_SIZE, STACK_SIZE,
    SYSCALL_PORT, USER_START,
};
use crate::arch::x86_64::{cpuid, gdt, idt, msr, paging, regs};
use crate::devices::bus::{Bus, BusError};
use crate::kernelless::syscalls::AddressSpace;
use crate::kernelless::{elf, stack, stub};
use crate::stats::Phases;
use crate::vstate::memory::{self, MemoryError};
use crate::vstate::vcpu::{ioctl, Vcpu, VcpuError};
use crate::vstate::vm::{Vm, VmConfig, VmError};

/// Why the VM could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Creating or configuring the VM.
    #[error(transparent)]
    Vm(#[from] VmError),
    /// Mapping guest memory.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// Configuring the vCPU.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
    /// Loading the program.
    #[error("loading {path}")]
    Elf {
        /// The program.
        path: PathBuf,
        /// What was wrong.
        source: elf::ElfError,
    },
    /// Building the initial stack.
    #[error(transparent)]
    Stack(#[from] stack::StackError),
    /// Writing page tables.
    #[error(transparent)]
    Paging(#[from] paging::PagingError),
    /// Writing system structures into guest memory.
    #[error("writing {what} into guest memory")]
    GuestMemory {
        /// What was being written.
        what: &'static str,
        /// The error.
        source: vm_memory::GuestMemoryError,
    },
    /// Setting up the buses.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Reading random bytes for AT_RANDOM.
    #[error("reading /dev/urandom for AT_RANDOM")]
    Random(#[source] std::io::Error),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct KernellessSpec {
    /// The static binary.
    pub binary: PathBuf,
    /// argv, argv[0] first.
    pub argv: Vec<String>,
    /// The environment.
    pub envp: Vec<String>,
    /// Guest memory, bytes (a multiple of 2 MiB).
    pub mem_bytes: u64,
    /// Exchange registers through the `kvm_run` page where KVM can (else by ioctl).
    pub sync_regs: bool,
}

/// A kernel-less VM ready to run.
#[derive(Debug)]
///
/// Fields drop in declaration order, which is the teardown order that matters: the
/// vCPU, then the VM (KVM destroys it when its last fd closes), then guest memory.
/// Unmapping guest memory while the VM still exists makes KVM invalidate its
/// mappings range by range, which costs milliseconds on PVM hosts.
pub struct KernellessVm {
    /// The single vCPU, parked on the SYSRET into the program.
    pub vcpu: Vcpu,
    /// The VM.
    pub vm: Vm,
    /// Guest memory.
    pub mem: GuestMemoryMmap,
    /// Port-I/O bus: the syscall and exception ports are traps.
    pub pio: Bus,
    /// MMIO bus (empty).
    pub mmio: Bus,
    /// The program's address space.
    pub address_space: AddressSpace,
}

/// Builds the VM for `spec`, marking the phases as it goes.
pub fn build_kernelless(
    spec: &KernellessSpec,
    phases: &mut Phases,
) -> Result<KernellessVm, BuildError> {
    let mut vm = Vm::new(VmConfig { irqchip: false })?;
    phases.mark("create_vm");
    let mem = memory::create(&[(0, spec.mem_bytes)])?;
    vm.register_memory(&mem)?;
    phases.mark("memory");
    let vcpu = vm.create_vcpu(0)?;
    let cpuid = configure_vcpu(&vm, &vcpu)?;
    phases.mark("vcpu_setup");
    write_system_tables(&mem, spec.mem_bytes)?;
    let (entry, sp, address_space) = load_program(&mem, spec, &cpuid)?;
    vcpu.set_regs(&regs::initial_regs(entry, sp))
        .map_err(ioctl("setting the initial registers"))?;
    phases.mark("load");
    let mut vcpu = Vcpu::new(vcpu, 0);
    if spec.sync_regs {
        vcpu.enable_sync_regs(vm.kvm());
    }
    Ok(KernellessVm {
        vm,
        mem,
        vcpu,
        pio: traps()?,
        mmio: Bus::new(),
        address_space,
    })
}

/// CPUID, MSRs, system registers, FPU and XCR0. Returns the CPUID set.
fn configure_vcpu(vm: &Vm, vcpu: &VcpuFd) -> Result<CpuId, BuildError> {
    let mut supported = vm.supported_cpuid()?;
    cpuid::filter(&mut supported, 0, 1);
    vcpu.set_cpuid2(&supported)
        .map_err(ioctl("setting CPUID"))?;
    let entries = msr::syscall_msrs();
    let written = vcpu
        .set_msrs(&msr::msrs(&entries))
        .map_err(ioctl("setting the SYSCALL MSRs"))?;
    if written != entries.len() {
        // KVM stops at the first MSR it refuses.
        let refused = VcpuError::Ioctl {
            what: "setting the SYSCALL MSRs (KVM refused one)",
            source: kvm_ioctls::Error::new(libc::EINVAL),
        };
        log::error!("KVM refused MSR {:#x}", entries[written].index);
        return Err(refused.into());
    }
    let xcr0 = cpuid::xcr0(&supported).filter(|_| vm.kvm().check_extension(Cap::Xcrs));
    let sregs = vcpu
        .get_sregs()
        .map_err(ioctl("reading the system registers"))?;
    vcpu.set_sregs(&regs::kernelless_sregs(sregs, xcr0.is_some()))
        .map_err(ioctl("setting the system registers"))?;
    vcpu.set_fpu(&regs::initial_fpu())
        .map_err(ioctl("setting the FPU state"))?;
    if let Some(xcr0) = xcr0 {
        vcpu.set_xcrs(&regs::xcrs(xcr0))
            .map_err(ioctl("setting XCR0"))?;
    }
    Ok(supported)
}

/// Page tables, GDT, TSS, IDT and the CPL0 stub.
fn write_system_tables(mem: &GuestMemoryMmap, mem_bytes: u64) -> Result<(), BuildError> {
    let guest = |what| move |source| BuildError::GuestMemory { what, source };
    paging::setup_identity_map(mem, mem_bytes)?;
    gdt::write_gdt_and_tss(mem).map_err(guest("the GDT and TSS"))?;
    idt::write_idt(mem).map_err(guest("the IDT"))?;
    stub::write_stub(mem).map_err(guest("the CPL0 stub"))
}

/// Loads the program and its stack; returns the entry, the initial RSP, and the
/// address space left for brk and mmap.
fn load_program(
    mem: &GuestMemoryMmap,
    spec: &KernellessSpec,
    cpuid: &CpuId,
) -> Result<(u64, u64, AddressSpace), BuildError> {
    let stack_bottom = spec.mem_bytes - STACK_SIZE;
    let elf_error = |source| BuildError::Elf {
        path: spec.binary.clone(),
        source,
    };
    let (mut file, plan) =
        elf::plan_file(&spec.binary, USER_START, stack_bottom).map_err(elf_error)?;
    elf::load(mem, &mut file, &plan).map_err(elf_error)?;
    let sp = write_initial_stack(mem, spec, &auxv(&plan, cpuid))?;
    Ok((plan.entry, sp, address_space(plan.image_end, stack_bottom)))
}

/// The auxiliary vector entries that describe the program and the CPU.
fn auxv(plan: &elf::LoadPlan, cpuid: &CpuId) -> [(u64, u64); 15] {
    [
        (stack::AT_PHDR, plan.phdr_addr),
        (stack::AT_PHENT, 56),
        (stack::AT_PHNUM, plan.phnum),
        (stack::AT_PAGESZ, PAGE_SIZE),
        (stack::AT_BASE, 0),
        (stack::AT_FLAGS, 0),
        (stack::AT_ENTRY, plan.entry),
        (stack::AT_UID, 0),
        (stack::AT_EUID, 0),
        (stack::AT_GID, 0),
        (stack::AT_EGID, 0),
        (stack::AT_HWCAP, cpuid::hwcap(cpuid)),
        (stack::AT_HWCAP2, 0),
        (stack::AT_CLKTCK, 100),
        (stack::AT_SECURE, 0),
    ]
}

/// Writes argv, envp, `auxv` and AT_RANDOM bytes at the top of guest memory; returns
/// the initial RSP.
fn write_initial_stack(
    mem: &GuestMemoryMmap,
    spec: &KernellessSpec,
    auxv: &[(u64, u64)],
) -> Result<u64, BuildError> {
    let mut random = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(BuildError::Random)?;
    let stack_spec = stack::StackSpec {
        argv: &spec.argv,
        envp: &spec.envp,
        execfn: spec.argv.first().map_or("", String::as_str),
        auxv,
        random,
    };
    let initial = stack::build(spec.mem_bytes, &stack_spec)?;
    mem.write_slice(&initial.bytes, GuestAddress(initial.sp))
        .map_err(|source| BuildError::GuestMemory {
            what: "the initial stack",
            source,
        })?;
    Ok(initial.sp)
}

/// brk gets up to a quarter of the free memory (at most `BRK_MAX`); mmap the rest.
pub fn address_space(image_end: u64, stack_bottom: u64) -> AddressSpace {
    let free = stack_bottom.saturating_sub(image_end);
    let brk_room = (free / 4).min(BRK_MAX);
    let mmap_start = (image_end + brk_room)
        .next_multiple_of(LARGE_PAGE_SIZE)
        .min(stack_bottom);
    AddressSpace {
        brk_start: image_end,
        mmap_start,
        mmap_end: stack_bottom,
    }
}

/// The port bus of a kernel-less guest: the syscall port and the exception ports are
/// traps the runner handles; there are no devices.
fn traps() -> Result<Bus, BusError> {
    let mut pio = Bus::new();
    pio.insert_trap(SYSCALL_PORT.into(), 1)?;
    pio.insert_trap(EXCEPTION_PORT_BASE.into(), IDT_ENTRIES as u64)?;
    Ok(pio)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_space_splits_free_memory_between_brk_and_mmap() {
        let s = address_space(0x50_0000, 0x780_0000);
        assert_eq!(s.brk_start, 0x50_0000);
        assert!(s.mmap_start > s.brk_start && s.mmap_start < s.mmap_end);
        assert_eq!(s.mmap_start % LARGE_PAGE_SIZE, 0);
        assert_eq!(s.mmap_end, 0x780_0000);
        let big = address_space(0x50_0000, 3 << 30);
        assert_eq!(
            big.mmap_start,
            (0x50_0000 + BRK_MAX).next_multiple_of(LARGE_PAGE_SIZE)
        );
    }

    #[test]
    fn traps_cover_the_syscall_and_exception_ports() {
        use crate::devices::bus::Access;
        let pio = traps().unwrap();
        assert_eq!(pio.write(SYSCALL_PORT.into(), &[0]), Access::Trap);
        assert_eq!(pio.write(0xc0 + 14, &[0]), Access::Trap);
        assert_eq!(pio.write(0x3f8, &[0]), Access::Unmapped);
    }
}
