//! The boot recipe behind `microvm run`, one named step at a time: check the host,
//! create the VM with its irqchip and PIT, map memory, load the kernel, place the
//! initrd and command line, write the zero page and MP table, attach the legacy
//! devices, set up each vCPU for the 64-bit boot protocol, run until the workload
//! reports its exit status (or the guest resets, or `--timeout`).

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kvm_bindings::{kvm_lapic_state, kvm_msr_entry};
use kvm_ioctls::VcpuFd;
use linux_loader::cmdline::Cmdline;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::acpi::{self, AcpiError};
use super::boot_params::{self, BootParamsError, ZeroPage};
use super::cpu;
use super::devices::{legacy_devices, GuestPorts};
use super::layout::{
    CMDLINE_ADDR, CMDLINE_MAX_SIZE, MAX_MEM_MIB, MIN_MEM_MIB, SERIAL_IRQ, VIRTIO_IRQ_BASE,
    VIRTIO_MMIO_BASE, VIRTIO_MMIO_SIZE, ZERO_PAGE_ADDR,
};
use super::loader::{self, LoadError, LoadedKernel};
use super::mptable::{self, MptableError, MAX_VCPUS};
use super::pvh;
use crate::arch::x86_64::{cpuid, msr};
use crate::devices::bus::{Bus, BusError};
use crate::devices::virtio::block::{Block, BlockError};
use crate::devices::virtio::mmio::MmioTransport;
use crate::devices::virtio::net::{open_tap, Net, TapError};
use crate::devices::virtio::VirtioDevice;
use crate::kvm_flavor::{self, KvmFlavor};
use crate::stats::{ExitStats, Phases, StatsReport};
use crate::vstate::kick::terminated_by;
use crate::vstate::memory::{self, MemoryError};
use crate::vstate::vcpu::{install_kick_handler, ioctl, Kicker, StopReason, Vcpu, VcpuError};
use crate::vstate::vm::{Vm, VmConfig, VmError};

/// The command line when none is given: serial console, reset through the i8042 (our
/// shutdown), reboot at once on panic, no PCI to probe, an i8042 without the probes our
/// model does not answer. Every word is one the kernel knows: an unknown word without
/// `=` is handed to init as an argument, ahead of the workload's subcommand.
pub const DEFAULT_CMDLINE: &str =
    "console=ttyS0 reboot=k panic=-1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd quiet";
/// Exit status when `--timeout` expired (as timeout(1)).
pub const TIMEOUT_EXIT_CODE: i32 = 124;
/// Exit status when the monitor failed or the guest stopped without a status.
pub const MONITOR_FAILURE_EXIT_CODE: i32 = 125;
/// IA32_MISC_ENABLE, with fast string operations on (as firmware leaves it).
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MISC_ENABLE_FAST_STRING: u64 = 1;
/// Local APIC registers: the LINT0 and LINT1 local vector table entries.
const APIC_LVT_LINT0: usize = 0x350;
const APIC_LVT_LINT1: usize = 0x360;
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

/// Why `run` failed (as opposed to the guest failing).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A PVM host without `--force`.
    #[error("this host's /dev/kvm is PVM (software virtualization): guest kernel code runs instruction-emulated, about 300x slower, and the emulator fails on instructions a stock kernel uses (cmpxchg16b, xrstor), so a Linux guest cannot boot here. Use hardware KVM (VT-x/AMD-V), the kernel-less guest (`microvm exec`), or pass --force to try anyway")]
    Pvm,
    /// No KVM at all.
    #[error("no usable /dev/kvm on this host (is KVM enabled, and may this user open /dev/kvm?)")]
    NoKvm,
    /// Bad `--mem`.
    #[error("--mem {0} MiB: must be an even number between {MIN_MEM_MIB} and {MAX_MEM_MIB}")]
    Mem(u64),
    /// Bad `--vcpus`.
    #[error("--vcpus {0}: must be between 1 and {MAX_VCPUS}")]
    Vcpus(u8),
    /// No `--kernel` and none found in /boot.
    #[error("no kernel given and none found as /boot/vmlinuz-*; pass --kernel PATH (see docs/linux-guest.md for building one)")]
    NoKernel,
    /// The initrd file.
    #[error("reading the initrd {path}: {source}")]
    Initrd {
        /// The initrd.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A bad command line.
    #[error("kernel command line: {0}")]
    Cmdline(String),
    /// Loading the kernel.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Opening the disk image.
    #[error(transparent)]
    Disk(#[from] BlockError),
    /// Attaching the tap device.
    #[error(transparent)]
    Tap(#[from] TapError),
    /// The zero page.
    #[error(transparent)]
    BootParams(#[from] BootParamsError),
    /// The MP table.
    #[error(transparent)]
    Mptable(#[from] MptableError),
    /// The ACPI tables.
    #[error(transparent)]
    Acpi(#[from] AcpiError),
    /// Creating the VM.
    #[error(transparent)]
    Vm(#[from] VmError),
    /// Mapping memory.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// Configuring or running a vCPU.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
    /// Setting up the buses.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Writing boot structures into guest memory.
    #[error("writing {what} into guest memory: {source}")]
    GuestMemory {
        /// What.
        what: &'static str,
        /// The error.
        source: vm_memory::GuestMemoryError,
    },
    /// The serial interrupt eventfd.
    #[error("creating the serial interrupt eventfd: {0}")]
    EventFd(#[source] std::io::Error),
    /// A vCPU thread could not start.
    #[error("starting a vCPU thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The kernel (None: the newest /boot/vmlinuz-*).
    pub kernel: Option<PathBuf>,
    /// The initramfs.
    pub initrd: Option<PathBuf>,
    /// Kernel parameters (None: [`DEFAULT_CMDLINE`]).
    pub cmdline: Option<String>,
    /// Arguments for init, passed after ` -- `.
    pub init_args: Vec<String>,
    /// A raw disk image, attached as virtio-blk (`/dev/vda` in the guest).
    pub disk: Option<PathBuf>,
    /// An existing tap device, attached as virtio-net (`eth0` in the guest).
    pub net: Option<String>,
    /// Guest memory in MiB.
    pub mem_mib: u64,
    /// vCPUs.
    pub vcpus: u8,
    /// End the guest after this long.
    pub timeout: Option<Duration>,
    /// Run even on PVM.
    pub force: bool,
}

/// How the guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The workload wrote its exit status.
    Exited(u8),
    /// The guest reset without reporting a status (panic with panic=-1, or an init
    /// that is not isolab's workload).
    ResetWithoutStatus,
    /// `--timeout` expired.
    TimedOut(Duration),
    /// SIGINT, SIGTERM or SIGHUP ended the VM (this signal).
    Terminated(i32),
    /// A vCPU stopped for another reason.
    Stopped(StopReason),
}

impl Outcome {
    /// The exit status of `microvm run`.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited(code) => i32::from(*code),
            Outcome::TimedOut(_) => TIMEOUT_EXIT_CODE,
            Outcome::Terminated(signal) => 128 + signal,
            _ => MONITOR_FAILURE_EXIT_CODE,
        }
    }

    /// A line for stderr when the guest did not end normally.
    pub fn report(&self) -> Option<String> {
        match self {
            Outcome::Exited(_) => None,
            Outcome::ResetWithoutStatus => Some(
                "guest reset without reporting an exit status (kernel panic, or an init that is not isolab's workload)".into(),
            ),
            Outcome::TimedOut(t) => Some(format!("guest ran longer than --timeout {}s; stopped", t.as_secs_f64())),
            Outcome::Terminated(signal) => Some(format!("stopped by signal {signal}; the VM was torn down")),
            Outcome::Stopped(StopReason::Failed(why)) => Some(format!("guest stopped: {why}")),
            Outcome::Stopped(other) => Some(format!("guest stopped: {other:?}")),
        }
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct RunReport {
    /// How the guest ended.
    pub outcome: Outcome,
    /// What `--stats` prints.
    pub stats: StatsReport,
}

/// The newest `/boot/vmlinuz-*`, if any.
pub fn default_kernel() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Checks the options and the host before anything is created.
fn check(options: &RunOptions, flavor: KvmFlavor) -> Result<PathBuf, RunError> {
    match flavor {
        KvmFlavor::Pvm if !options.force => return Err(RunError::Pvm),
        KvmFlavor::None => return Err(RunError::NoKvm),
        _ => {}
    }
    if !(MIN_MEM_MIB..=MAX_MEM_MIB).contains(&options.mem_mib) || options.mem_mib % 2 != 0 {
        return Err(RunError::Mem(options.mem_mib));
    }
    if options.vcpus == 0 || options.vcpus > MAX_VCPUS {
        return Err(RunError::Vcpus(options.vcpus));
    }
    options
        .kernel
        .clone()
        .or_else(default_kernel)
        .ok_or(RunError::NoKernel)
}

/// The full command line: kernel parameters, then ` -- ` and init's arguments.
pub fn cmdline(options: &RunOptions) -> Result<Cmdline, RunError> {
    let bad = |e: linux_loader::cmdline::Error| RunError::Cmdline(e.to_string());
    let mut cmdline = Cmdline::new(CMDLINE_MAX_SIZE).map_err(bad)?;
    cmdline
        .insert_str(options.cmdline.as_deref().unwrap_or(DEFAULT_CMDLINE))
        .map_err(bad)?;
    for slot in 0..virtio_count(options) {
        let (base, irq) = virtio_slot(slot);
        cmdline
            .add_virtio_mmio_device(VIRTIO_MMIO_SIZE, GuestAddress(base), irq, None)
            .map_err(bad)?;
    }
    if !options.init_args.is_empty() {
        cmdline
            .insert_init_args(options.init_args.join(" "))
            .map_err(bad)?;
    }
    Ok(cmdline)
}

/// Boots the guest; `start` is when the monitor started.
pub fn run(options: &RunOptions, start: Instant) -> Result<RunReport, RunError> {
    let flavor = kvm_flavor::detect();
    let kernel_path = check(options, flavor)?;
    let cmdline = cmdline(options)?;
    let disk = options.disk.as_deref().map(Block::open).transpose()?;
    let tap = options.net.as_deref().map(open_tap).transpose()?;
    let mut phases = Phases::new(start);
    let mut vm = Vm::new(VmConfig { irqchip: true })?;
    let mem_bytes = options.mem_mib << 20;
    let ram = boot_params::ram_ranges(mem_bytes);
    let mem = memory::create(&ram)?;
    vm.register_memory(&mem)?;
    let kernel = loader::load(&mem, &kernel_path)?;
    load_boot_data(&mem, &kernel, options, &cmdline, &ram)?;
    let serial_irq = EventFd::new(libc::EFD_NONBLOCK).map_err(RunError::EventFd)?;
    vm.fd()
        .register_irqfd(&serial_irq, SERIAL_IRQ)
        .map_err(|source| VmError::Ioctl {
            what: "wiring the serial interrupt (KVM_IRQFD)",
            source,
        })?;
    let devices = legacy_devices(serial_irq, Box::new(std::io::stdout()))?;
    let vcpus = (0..options.vcpus)
        .map(|index| setup_vcpu(&vm, index, options.vcpus, &kernel))
        .collect::<Result<Vec<_>, _>>()?;
    phases.mark("monitor_setup");
    let (mmio, _net_poller) = virtio_bus(&vm, &mem, disk, tap)?;
    let buses = (devices.pio, mmio);
    let (outcome, exits) = run_vcpus(vcpus, &buses, &devices.ports, options.timeout)?;
    let ports = devices.ports.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(ready) = ports.report().ready_at() {
        phases.mark_at("kernel_boot", ready);
        phases.mark("init");
    } else {
        phases.mark("kernel_boot");
    }
    let mut stats = StatsReport::new(flavor, options.mem_mib, &phases, &exits);
    if let Outcome::Exited(code) = outcome {
        stats.exit_code = Some(i32::from(code));
    }
    Ok(RunReport { outcome, stats })
}

/// How many virtio devices the options ask for (the disk first, then the net card).
fn virtio_count(options: &RunOptions) -> usize {
    usize::from(options.disk.is_some()) + usize::from(options.net.is_some())
}

/// Register window and GSI of virtio-mmio device number `slot`.
fn virtio_slot(slot: usize) -> (u64, u32) {
    (
        VIRTIO_MMIO_BASE + slot as u64 * VIRTIO_MMIO_SIZE,
        VIRTIO_IRQ_BASE + slot as u32,
    )
}

/// The MMIO bus with the disk and the net card, in slot order, each on its own GSI;
/// and the thread that feeds the net card from its tap (stopped when dropped).
fn virtio_bus(
    vm: &Vm,
    mem: &GuestMemoryMmap,
    disk: Option<Block>,
    tap: Option<File>,
) -> Result<(Bus, Option<NetPoller>), RunError> {
    let mut bus = Bus::new();
    let mut slot = 0;
    if let Some(disk) = disk {
        attach(vm, &mut bus, slot, disk, mem)?;
        slot += 1;
    }
    let poller = match tap {
        Some(tap) => {
            let fd = tap.as_raw_fd();
            let transport = attach(vm, &mut bus, slot, Net::new(tap), mem)?;
            Some(NetPoller::start(transport, fd).map_err(RunError::Thread)?)
        }
        None => None,
    };
    Ok((bus, poller))
}

/// Puts `device` at `slot` on the bus with its interrupt wired to the irqchip.
fn attach<D: VirtioDevice + 'static>(
    vm: &Vm,
    bus: &mut Bus,
    slot: usize,
    device: D,
    mem: &GuestMemoryMmap,
) -> Result<Arc<Mutex<MmioTransport<D>>>, RunError> {
    let (base, gsi) = virtio_slot(slot);
    let irq = EventFd::new(libc::EFD_NONBLOCK).map_err(RunError::EventFd)?;
    vm.fd()
        .register_irqfd(&irq, gsi)
        .map_err(|source| VmError::Ioctl {
            what: "wiring a virtio interrupt (KVM_IRQFD)",
            source,
        })?;
    let transport = Arc::new(Mutex::new(MmioTransport::new(device, mem.clone(), irq)));
    bus.insert(base, VIRTIO_MMIO_SIZE, transport.clone())?;
    Ok(transport)
}

/// The thread that moves frames from the tap into the guest's receive queue.
#[derive(Debug)]
struct NetPoller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long the poller waits on the tap before checking whether to stop.
const NET_POLL_INTERVAL_MS: i32 = 50;

impl NetPoller {
    fn start(transport: Arc<Mutex<MmioTransport<Net<File>>>>, fd: RawFd) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("virtio-net".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    let mut pollfd = libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: `pollfd` is one valid pollfd; `fd` is the tap, kept open by
                    // the transport this thread holds an Arc on.
                    let ready = unsafe { libc::poll(&mut pollfd, 1, NET_POLL_INTERVAL_MS) };
                    if ready > 0 && !transport.lock().unwrap_or_else(|p| p.into_inner()).poll() {
                        // A frame waits for a receive buffer: let the guest post one.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for NetPoller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Initrd, command line, zero page, MP table and boot page tables.
fn load_boot_data(
    mem: &GuestMemoryMmap,
    kernel: &LoadedKernel,
    options: &RunOptions,
    cmdline: &Cmdline,
    ram: &[(u64, u64)],
) -> Result<(), RunError> {
    let guest = |what| move |source| RunError::GuestMemory { what, source };
    let initrd = match &options.initrd {
        Some(path) => Some(load_initrd(mem, path, kernel, ram[0].1)?),
        None => None,
    };
    let line = cmdline
        .as_cstring()
        .map_err(|e| RunError::Cmdline(e.to_string()))?;
    let page = ZeroPage {
        header: kernel.header,
        cmdline: (CMDLINE_ADDR, line.as_bytes().len()),
        initrd,
        e820: boot_params::e820_map(ram),
    };
    let mut params = boot_params::build(&page)?;
    // Kernels without MP-table support (Debian's) learn the vCPUs from ACPI's MADT.
    let rsdp = acpi::write(mem, options.vcpus)?;
    params.acpi_rsdp_addr = rsdp;
    mem.write_slice(line.as_bytes_with_nul(), GuestAddress(CMDLINE_ADDR))
        .map_err(guest("the command line"))?;
    mem.write_obj(params, GuestAddress(ZERO_PAGE_ADDR))
        .map_err(guest("the zero page"))?;
    mptable::write(mem, options.vcpus)?;
    cpu::write_boot_tables(mem).map_err(guest("the boot page tables and GDT"))?;
    if kernel.pvh_entry.is_some() {
        pvh::write(mem, CMDLINE_ADDR, initrd, &page.e820, rsdp)
            .map_err(guest("the PVH start info"))?;
    }
    Ok(())
}

/// Places the initrd at the top of low memory; returns (address, size).
fn load_initrd(
    mem: &GuestMemoryMmap,
    path: &PathBuf,
    kernel: &LoadedKernel,
    lowmem_end: u64,
) -> Result<(u64, u64), RunError> {
    let read_err = |source| RunError::Initrd {
        path: path.clone(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    let addr_max = kernel.header.map_or(0, |h| h.initrd_addr_max);
    let addr = boot_params::initrd_addr(size, lowmem_end, addr_max, kernel.end)?;
    let len =
        usize::try_from(size).map_err(|_| read_err(std::io::ErrorKind::FileTooLarge.into()))?;
    mem.read_exact_volatile_from(GuestAddress(addr), &mut file, len)
        .map_err(|source| RunError::GuestMemory {
            what: "the initrd",
            source,
        })?;
    Ok((addr, size))
}

/// CPUID, MSRs, registers, FPU and the LAPIC's LINT pins for vCPU `index`.
fn setup_vcpu(vm: &Vm, index: u8, count: u8, kernel: &LoadedKernel) -> Result<Vcpu, RunError> {
    let fd = vm.create_vcpu(index)?;
    let mut cpuid = vm.supported_cpuid()?;
    cpuid::filter(&mut cpuid, index, count);
    fd.set_cpuid2(&cpuid).map_err(ioctl("setting CPUID"))?;
    let entries = [kvm_msr_entry {
        index: MSR_IA32_MISC_ENABLE,
        data: MISC_ENABLE_FAST_STRING,
        ..Default::default()
    }];
    fd.set_msrs(&msr::msrs(&entries))
        .map_err(ioctl("setting the boot MSRs"))?;
    set_lint(&fd)?;
    if index == 0 {
        let sregs = fd
            .get_sregs()
            .map_err(ioctl("reading the system registers"))?;
        // An ELF kernel with a PVH note starts at its 32-bit PVH entry; otherwise the
        // 64-bit boot protocol (bzImage, or ELF without the note).
        let (sregs, regs) = match kernel.pvh_entry {
            Some(entry) => (pvh::sregs(sregs), pvh::regs(entry)),
            None => (cpu::boot_sregs(sregs), cpu::boot_regs(kernel.entry)),
        };
        fd.set_sregs(&sregs)
            .map_err(ioctl("setting the system registers"))?;
        fd.set_regs(&regs)
            .map_err(ioctl("setting the boot registers"))?;
        fd.set_fpu(&crate::arch::x86_64::regs::initial_fpu())
            .map_err(ioctl("setting the FPU state"))?;
    }
    Ok(Vcpu::new(fd, index))
}

/// LINT0 delivers the PIC's ExtINT, LINT1 NMIs, as firmware leaves them.
fn set_lint(fd: &VcpuFd) -> Result<(), RunError> {
    let mut lapic = fd.get_lapic().map_err(ioctl("reading the local APIC"))?;
    set_delivery_mode(&mut lapic, APIC_LVT_LINT0, APIC_MODE_EXTINT);
    set_delivery_mode(&mut lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
    fd.set_lapic(&lapic)
        .map_err(ioctl("setting the local APIC"))?;
    Ok(())
}

/// Sets the delivery mode (bits 8-10) of the LVT register at `offset`.
pub fn set_delivery_mode(lapic: &mut kvm_lapic_state, offset: usize, mode: u32) {
    let bytes: Vec<u8> = lapic.regs[offset..offset + 4]
        .iter()
        .map(|b| *b as u8)
        .collect();
    let value = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let value = (value & !0x700) | (mode << 8);
    for (dst, src) in lapic.regs[offset..offset + 4]
        .iter_mut()
        .zip(value.to_le_bytes())
    {
        *dst = src as libc::c_char;
    }
}

/// What each vCPU thread sends back.
type VcpuDone = (u8, Result<StopReason, VcpuError>, ExitStats);

/// Runs every vCPU on its own thread until one stops (or the timeout), then stops the
/// others and joins them all.
fn run_vcpus(
    vcpus: Vec<Vcpu>,
    buses: &(Bus, Bus),
    ports: &Arc<Mutex<GuestPorts>>,
    timeout: Option<Duration>,
) -> Result<(Outcome, ExitStats), RunError> {
    install_kick_handler()?;
    let kicked = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel::<VcpuDone>();
    let (kicker_tx, kicker_rx) = mpsc::channel::<(u8, Kicker)>();
    std::thread::scope(|scope| {
        // The handles are kept (not detached) so that a kick at a thread that has just
        // finished still names a valid, joinable thread.
        let mut handles = Vec::new();
        let mut spawn_error = None;
        for mut vcpu in vcpus {
            let (done_tx, kicker_tx, kicked) = (done_tx.clone(), kicker_tx.clone(), kicked.clone());
            let thread = std::thread::Builder::new()
                .name(format!("vcpu{}", vcpu.index()))
                .spawn_scoped(scope, move || {
                    let _ =
                        kicker_tx.send((vcpu.index(), Kicker::for_current_thread(kicked.clone())));
                    let mut exits = ExitStats::default();
                    let stop = vcpu.run::<VcpuError, _>(
                        (&buses.0, &buses.1),
                        &mut exits,
                        &kicked,
                        |_, _| Ok(None),
                    );
                    let _ = done_tx.send((vcpu.index(), stop, exits));
                });
            match thread {
                Ok(handle) => handles.push(handle),
                Err(err) => {
                    spawn_error = Some(err);
                    break;
                }
            }
        }
        drop(done_tx);
        let spawned = handles.len();
        let kickers: Vec<(u8, Kicker)> = kicker_rx.iter().take(spawned).collect();
        if let Some(err) = spawn_error {
            stop_all(&kickers, &done_rx, Vec::new(), spawned);
            return Err(RunError::Thread(err));
        }
        let first = match timeout {
            Some(t) => done_rx.recv_timeout(t).ok(),
            None => done_rx.recv().ok(),
        };
        let first_index = first.as_ref().map(|d| d.0);
        let rest = stop_all(
            &kickers,
            &done_rx,
            first_index.into_iter().collect(),
            spawned,
        );
        Ok(conclude(first, rest, ports, timeout))
    })
}

/// Kicks every vCPU that has not reported back until all have (a kick that lands
/// just before KVM_RUN is entered would otherwise be lost). A thread that reported is
/// never kicked again: it may have exited, and its handle is no longer valid.
fn stop_all(
    kickers: &[(u8, Kicker)],
    done: &mpsc::Receiver<VcpuDone>,
    mut finished: Vec<u8>,
    total: usize,
) -> Vec<VcpuDone> {
    let mut rest = Vec::new();
    while finished.len() < total {
        kickers
            .iter()
            .filter(|(i, _)| !finished.contains(i))
            .for_each(|(_, k)| k.kick());
        if let Ok(d) = done.recv_timeout(Duration::from_millis(5)) {
            finished.push(d.0);
            rest.push(d);
        }
    }
    rest
}

/// Turns what the vCPUs reported into the outcome and the merged exit stats.
fn conclude(
    first: Option<VcpuDone>,
    rest: Vec<VcpuDone>,
    ports: &Arc<Mutex<GuestPorts>>,
    timeout: Option<Duration>,
) -> (Outcome, ExitStats) {
    let mut exits = ExitStats::default();
    for (_, _, e) in first.iter().chain(&rest) {
        for (reason, c) in &e.exits {
            let total = exits.exits.entry(reason).or_default();
            total.count += c.count;
            total.total_us += c.total_us;
        }
        for (port, c) in &e.ports {
            let total = exits.ports.entry(*port).or_default();
            total.count += c.count;
            total.total_us += c.total_us;
        }
    }
    let status = ports
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .report()
        .exit_status();
    let outcome = match (first, status) {
        (_, Some(code)) => Outcome::Exited(code),
        (_, None) if terminated_by().is_some() => {
            Outcome::Terminated(terminated_by().unwrap_or_default())
        }
        (None, None) => Outcome::TimedOut(timeout.unwrap_or_default()),
        (Some((_, Ok(StopReason::Shutdown), _)), None) => Outcome::ResetWithoutStatus,
        (Some((_, Ok(reason), _)), None) => Outcome::Stopped(reason),
        (Some((index, Err(err), _)), None) => {
            Outcome::Stopped(StopReason::Failed(format!("vCPU {index}: {err}")))
        }
    };
    (outcome, exits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> RunOptions {
        RunOptions {
            kernel: Some("/boot/vmlinuz-test".into()),
            initrd: None,
            cmdline: None,
            init_args: vec![],
            disk: None,
            net: None,
            mem_mib: 256,
            vcpus: 1,
            timeout: None,
            force: false,
        }
    }

    #[test]
    fn pvm_is_refused_with_the_reason_unless_forced() {
        let err = check(&options(), KvmFlavor::Pvm).unwrap_err();
        assert!(err.to_string().contains("cmpxchg16b"), "{err}");
        assert!(err.to_string().contains("--force"), "{err}");
        let forced = RunOptions {
            force: true,
            ..options()
        };
        assert_eq!(
            check(&forced, KvmFlavor::Pvm).unwrap(),
            PathBuf::from("/boot/vmlinuz-test")
        );
        assert!(check(&options(), KvmFlavor::Vmx).is_ok());
        assert!(matches!(
            check(&options(), KvmFlavor::None),
            Err(RunError::NoKvm)
        ));
    }

    /// Linux hands every parameter it does not know, and that has no `=`, to init as an
    /// argument: the workload would take it for its subcommand (seen on a nested AMD-V
    /// boot when `nomodules`, which Linux has no handler for, was in the default). So
    /// the default's bare words are only parameters the kernel consumes.
    #[test]
    fn default_cmdline_hands_init_nothing_but_its_arguments() {
        const KERNEL_FLAGS: &[&str] = &["quiet"];
        for word in DEFAULT_CMDLINE.split_whitespace() {
            assert!(
                word.contains('=') || word.contains('.') || KERNEL_FLAGS.contains(&word),
                "`{word}` would reach init as an argument"
            );
        }
        let with_args = RunOptions {
            init_args: vec!["cpu".into(), "--iterations".into(), "5".into()],
            ..options()
        };
        let line = cmdline(&with_args).unwrap().as_cstring().unwrap();
        let line = line.to_str().unwrap();
        assert!(line.starts_with(DEFAULT_CMDLINE), "{line}");
        assert!(line.ends_with(" -- cpu --iterations 5"), "{line}");
    }

    #[test]
    fn memory_and_vcpu_counts_are_checked() {
        for mem_mib in [0, 16, 255, MAX_MEM_MIB + 2] {
            let bad = RunOptions {
                mem_mib,
                ..options()
            };
            assert!(
                matches!(check(&bad, KvmFlavor::Vmx), Err(RunError::Mem(_))),
                "{mem_mib}"
            );
        }
        for vcpus in [0, MAX_VCPUS + 1] {
            let bad = RunOptions { vcpus, ..options() };
            assert!(
                matches!(check(&bad, KvmFlavor::Vmx), Err(RunError::Vcpus(_))),
                "{vcpus}"
            );
        }
    }

    #[test]
    fn init_arguments_follow_a_double_dash() {
        let with_args = RunOptions {
            init_args: vec!["cpu".into(), "--iterations".into(), "5".into()],
            ..options()
        };
        let line = cmdline(&with_args).unwrap().as_cstring().unwrap();
        let line = line.to_str().unwrap();
        assert!(
            line.starts_with("console=ttyS0 reboot=k panic=-1"),
            "{line}"
        );
        assert!(line.ends_with(" -- cpu --iterations 5"), "{line}");
        let custom = RunOptions {
            cmdline: Some("console=ttyS0 quiet".into()),
            ..options()
        };
        assert_eq!(
            cmdline(&custom)
                .unwrap()
                .as_cstring()
                .unwrap()
                .to_str()
                .unwrap(),
            "console=ttyS0 quiet"
        );
    }

    #[test]
    fn disk_and_net_are_announced_on_the_command_line_as_virtio_mmio() {
        let with_disk = RunOptions {
            disk: Some("/tmp/disk.img".into()),
            init_args: vec!["info".into()],
            ..options()
        };
        let line = cmdline(&with_disk).unwrap().as_cstring().unwrap();
        let line = line.to_str().unwrap();
        assert!(
            line.contains(" virtio_mmio.device=4K@0xc0000000:5 -- info"),
            "{line}"
        );
        let both = RunOptions {
            net: Some("isolab0".into()),
            ..with_disk
        };
        let line = cmdline(&both).unwrap().as_cstring().unwrap();
        let line = line.to_str().unwrap();
        let devices =
            "virtio_mmio.device=4K@0xc0000000:5 virtio_mmio.device=4K@0xc0001000:6 -- info";
        assert!(line.contains(devices), "{line}");
    }

    #[test]
    fn a_command_line_longer_than_the_kernel_accepts_is_an_error() {
        let long = RunOptions {
            cmdline: Some("x".repeat(CMDLINE_MAX_SIZE + 1)),
            ..options()
        };
        assert!(matches!(cmdline(&long), Err(RunError::Cmdline(_))));
    }

    #[test]
    fn lint_delivery_modes_are_set_without_touching_other_bits() {
        let mut lapic = kvm_lapic_state::default();
        lapic.regs[APIC_LVT_LINT0 + 2] = 1; // bit 16: masked
        set_delivery_mode(&mut lapic, APIC_LVT_LINT0, APIC_MODE_EXTINT);
        set_delivery_mode(&mut lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
        assert_eq!(
            (
                lapic.regs[APIC_LVT_LINT0 + 1],
                lapic.regs[APIC_LVT_LINT0 + 2]
            ),
            (7, 1)
        );
        assert_eq!(lapic.regs[APIC_LVT_LINT1 + 1], 4);
    }

    #[test]
    fn exit_status_wins_and_silence_is_a_timeout() {
        let ports = Arc::new(Mutex::new(GuestPorts::default()));
        let (outcome, _) = conclude(None, vec![], &ports, Some(Duration::from_secs(1)));
        assert_eq!(outcome, Outcome::TimedOut(Duration::from_secs(1)));
        assert_eq!(outcome.exit_code(), TIMEOUT_EXIT_CODE);
        let reset = Some((0, Ok(StopReason::Shutdown), ExitStats::default()));
        let (outcome, _) = conclude(reset, vec![], &ports, None);
        assert_eq!(outcome, Outcome::ResetWithoutStatus);
        use crate::devices::bus::BusDevice;
        ports.lock().unwrap().write(1, &[7]);
        let shutdown = Some((0, Ok(StopReason::Shutdown), ExitStats::default()));
        assert_eq!(conclude(shutdown, vec![], &ports, None).0.exit_code(), 7);
    }
}
