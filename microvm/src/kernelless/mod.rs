//! The kernel-less guest: a static Linux binary runs at CPL3 directly on the vCPU,
//! with no guest kernel. Its `syscall`s exit to the monitor through a two-instruction
//! stub (`out` to the syscall port, then SYSRET), the monitor performs them
//! (`syscalls/`), and CPU exceptions end the VM with a report. `exec` is what
//! `microvm exec` runs.

pub mod elf;
pub mod elf_map;
pub mod exception;
pub mod stack;
pub mod stub;
pub mod syscalls;
pub mod temp_rootfs;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvm_bindings::{kvm_regs, kvm_sregs};
use vm_memory::GuestMemoryMmap;

use crate::arch::x86_64::layout::{MAX_MEM_MIB, MIN_MEM_MIB, SYSCALL_PORT};
use crate::arch::x86_64::msr::{msrs, MSR_FS_BASE};
use crate::arch::x86_64::regs::RFLAGS_RESERVED;
use crate::builder::{build_kernelless, BuildError, KernellessSpec, KernellessVm};
use crate::stats::{ExitStats, MemoryUsage, Phases, StatsReport};
use crate::vstate::kick::{self, KickError, Kicker, Watchdog};
use crate::vstate::memory;
use crate::vstate::regs::GuestRegs;
use crate::vstate::vcpu::{ioctl, StopReason, Trap, TrappedVcpu, VcpuError};
use exception::{ExceptionFrame, GuestException};
use syscalls::{CpuState, SyscallAction, SyscallConfig, SyscallError, SyscallHandler};

/// Why `exec` failed (as opposed to the guest failing).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Bad `--mem`.
    #[error("--mem {0} MiB: must be an even number between {MIN_MEM_MIB} and {MAX_MEM_MIB}")]
    Mem(u64),
    /// Bad `--rootfs`.
    #[error("--rootfs {path}: {reason}")]
    Rootfs {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Creating the default empty rootfs.
    #[error("creating an empty temporary rootfs")]
    TempRootfs(#[source] std::io::Error),
    /// Building the VM.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Starting the syscall layer.
    #[error(transparent)]
    Syscalls(#[from] SyscallError),
    /// Running the vCPU.
    #[error(transparent)]
    Vcpu(#[from] VcpuError),
    /// Installing the signal handlers that stop the vCPU.
    #[error(transparent)]
    Kick(#[from] KickError),
}

/// What to run and how.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The static binary.
    pub binary: PathBuf,
    /// Its arguments (argv[1..]); argv[0] is `binary` as given.
    pub args: Vec<String>,
    /// Its environment.
    pub env: Vec<String>,
    /// Guest memory in MiB.
    pub mem_mib: u64,
    /// The directory the guest's files come from (default: an empty temp dir).
    pub rootfs: Option<PathBuf>,
    /// End the guest after this long.
    pub timeout: Option<Duration>,
    /// Measure the monitor's peak RSS and the guest memory touched at exit (for
    /// `--stats`; it costs a read of the guest's page map).
    pub measure_memory: bool,
    /// Exchange the guest registers at each syscall through the `kvm_run` page where
    /// KVM supports it (`KVM_CAP_SYNC_REGS`); false: `KVM_GET_REGS`/`KVM_SET_REGS`.
    pub sync_regs: bool,
}

/// How the guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// exit/exit_group with this status.
    Exited(i32),
    /// A CPU exception.
    Exception(GuestException),
    /// `--timeout` expired.
    TimedOut(Duration),
    /// The monitor got this termination signal (SIGINT, SIGTERM, SIGHUP).
    Terminated(i32),
    /// The vCPU stopped for another reason (halt, triple fault, KVM failure).
    Stopped(StopReason),
}

/// Exit status of `microvm exec` when the guest ran past `--timeout` (as timeout(1)).
pub const TIMEOUT_EXIT_CODE: i32 = 124;
/// Exit status when the monitor itself failed or the VM stopped abnormally.
pub const MONITOR_FAILURE_EXIT_CODE: i32 = 125;

impl Outcome {
    /// The process exit status `microvm exec` reports for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited(code) => code & 0xff,
            Outcome::Exception(e) => e.exit_code(),
            Outcome::TimedOut(_) => TIMEOUT_EXIT_CODE,
            Outcome::Terminated(signal) => 128 + signal,
            Outcome::Stopped(_) => MONITOR_FAILURE_EXIT_CODE,
        }
    }

    /// A line for stderr when the outcome is not a normal exit.
    pub fn report(&self) -> Option<String> {
        match self {
            Outcome::Exited(_) => None,
            Outcome::Exception(e) => Some(e.to_string()),
            Outcome::Terminated(signal) => {
                let name = match *signal {
                    libc::SIGINT => "SIGINT",
                    libc::SIGTERM => "SIGTERM",
                    libc::SIGHUP => "SIGHUP",
                    _ => "a signal",
                };
                Some(format!("guest stopped: the monitor got {name} ({signal})"))
            }
            Outcome::TimedOut(t) => Some(format!(
                "guest ran longer than --timeout {}s; stopped",
                t.as_secs_f64()
            )),
            Outcome::Stopped(StopReason::Shutdown) => {
                Some("guest stopped: triple fault or reset".into())
            }
            Outcome::Stopped(StopReason::Failed(why)) => Some(format!("guest stopped: {why}")),
            Outcome::Stopped(other) => Some(format!("guest stopped: {other:?}")),
        }
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct ExecReport {
    /// How the guest ended.
    pub outcome: Outcome,
    /// What `--stats` prints.
    pub stats: StatsReport,
}

/// The rootfs directory, owning a temporary one when none was given.
enum Rootfs {
    Given(PathBuf),
    Temp(temp_rootfs::TempRootfs),
}

impl Rootfs {
    fn open(given: Option<&PathBuf>) -> Result<Self, ExecError> {
        let Some(path) = given else {
            let dir = temp_rootfs::TempRootfs::create_in(&std::env::temp_dir())
                .map_err(ExecError::TempRootfs)?;
            return Ok(Rootfs::Temp(dir));
        };
        let bad = |reason: String| ExecError::Rootfs {
            path: path.clone(),
            reason,
        };
        let canonical = path.canonicalize().map_err(|e| bad(e.to_string()))?;
        if !canonical.is_dir() {
            return Err(bad("not a directory".into()));
        }
        Ok(Rootfs::Given(canonical))
    }

    fn path(&self) -> PathBuf {
        match self {
            Rootfs::Given(p) => p.clone(),
            Rootfs::Temp(d) => d.path().to_owned(),
        }
    }
}

/// Runs `options.binary` in a kernel-less VM; `start` is when the monitor started.
pub fn exec(options: &ExecOptions, start: Instant) -> Result<ExecReport, ExecError> {
    if !(MIN_MEM_MIB..=MAX_MEM_MIB).contains(&options.mem_mib) || options.mem_mib % 2 != 0 {
        return Err(ExecError::Mem(options.mem_mib));
    }
    let rootfs = Rootfs::open(options.rootfs.as_ref())?;
    let mut phases = Phases::new(start);
    let mut argv = vec![options.binary.to_string_lossy().into_owned()];
    argv.extend(options.args.iter().cloned());
    let spec = KernellessSpec {
        binary: options.binary.clone(),
        argv,
        envp: options.env.clone(),
        mem_bytes: options.mem_mib << 20,
        sync_regs: options.sync_regs,
    };
    let mut vm = build_kernelless(&spec, &mut phases)?;
    let mut handler = SyscallHandler::new(SyscallConfig {
        rootfs: rootfs.path(),
        address_space: vm.address_space,
    })?;
    let mut exits = ExitStats::default();
    let outcome = run(
        &mut vm,
        &mut handler,
        &mut exits,
        options.timeout,
        &mut phases,
    )?;
    if let Some(ready) = handler.ready_at() {
        phases.mark_at("ready", ready);
    }
    phases.mark("exit");
    // Before the report is built, so that --stats does not count its own code.
    let memory = options
        .measure_memory
        .then(|| measure_memory(&vm))
        .flatten();
    let mut stats = StatsReport::new(vm.vm.flavor(), options.mem_mib, &phases, &exits);
    stats.syscalls = serde_json::to_value(handler.stats()).unwrap_or_default();
    if let Outcome::Exited(code) = outcome {
        stats.exit_code = Some(code);
    }
    stats.sync_regs = Some(vm.vcpu.sync_regs());
    stats.memory = memory;
    Ok(ExecReport { outcome, stats })
}

/// The monitor's peak RSS, and the guest memory it holds now.
fn measure_memory(vm: &KernellessVm) -> Option<MemoryUsage> {
    // Peak first: the page-map buffer is monitor memory too.
    let peak = MemoryUsage::measure(0)?;
    let guest = memory::resident_bytes(&vm.mem).unwrap_or(0);
    Some(MemoryUsage {
        touched_kib: guest >> 10,
        ..peak
    })
}

/// Runs the vCPU until the guest exits, faults, or times out.
fn run(
    vm: &mut KernellessVm,
    handler: &mut SyscallHandler,
    exits: &mut ExitStats,
    timeout: Option<Duration>,
    phases: &mut Phases,
) -> Result<Outcome, ExecError> {
    let kicked = Arc::new(AtomicBool::new(false));
    kick::install_handlers()?;
    let watchdog = timeout.map(|t| Watchdog::start(t, Kicker::for_current_thread(kicked.clone())));
    let mut traps = TrapHandler {
        mem: vm.mem.clone(),
        handler,
        entry: None,
        exception: None,
    };
    phases.mark("first_instruction");
    let stop = vm
        .vcpu
        .run::<ExecError, _>((&vm.pio, &vm.mmio), exits, &kicked, |vcpu, trap| {
            traps.on_trap(vcpu, trap)
        });
    let timed_out = watchdog.is_some_and(Watchdog::stop);
    Ok(match (stop?, traps.exception) {
        (StopReason::Exited(code), _) => Outcome::Exited(code),
        (StopReason::Exception(_), Some(e)) => Outcome::Exception(e),
        (StopReason::Kicked, _) if timed_out => Outcome::TimedOut(timeout.unwrap_or_default()),
        (StopReason::Kicked, _) if kick::terminated_by().is_some() => {
            Outcome::Terminated(kick::terminated_by().unwrap_or_default())
        }
        (other, _) => Outcome::Stopped(other),
    })
}

/// How the syscall entry runs on this host, found at the first syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallEntry {
    /// At CPL0, as the architecture says (hardware KVM): the stub's SYSRET returns.
    Cpl0,
    /// Still at CPL3 (PVM moves RIP to MSR_LSTAR without entering CPL0): a SYSRET
    /// would fault, so the monitor returns to the program itself.
    Cpl3,
}

impl SyscallEntry {
    /// The entry mode for a vCPU whose code segment has privilege `cs_dpl`.
    pub fn from_cs_dpl(cs_dpl: u8) -> Self {
        if cs_dpl == 3 {
            Self::Cpl3
        } else {
            Self::Cpl0
        }
    }

    /// Registers after the syscall returns `rax`.
    pub fn returned(self, mut regs: kvm_regs, rax: u64) -> kvm_regs {
        regs.rax = rax;
        if self == Self::Cpl3 {
            // What SYSRET does: RIP from RCX, RFLAGS from R11 (bit 1 always set).
            regs.rip = regs.rcx;
            regs.rflags = regs.r11 | RFLAGS_RESERVED;
        }
        regs
    }
}

/// What the trap handler needs from a stopped vCPU (a fake one in tests).
pub trait TrapVcpu: GuestRegs {
    /// The system registers (CS at the first syscall, CR2 after a fault).
    fn sregs(&self) -> Result<kvm_sregs, VcpuError>;
    /// The FS base (thread pointer).
    fn fs_base(&self) -> Result<u64, VcpuError>;
    /// Sets the FS base.
    fn set_fs_base(&mut self, base: u64) -> Result<(), VcpuError>;
}

impl TrapVcpu for TrappedVcpu<'_> {
    fn sregs(&self) -> Result<kvm_sregs, VcpuError> {
        self.fd()
            .get_sregs()
            .map_err(ioctl("reading the system registers after a trap"))
    }

    fn fs_base(&self) -> Result<u64, VcpuError> {
        let mut list = msrs(&[kvm_bindings::kvm_msr_entry {
            index: MSR_FS_BASE,
            ..Default::default()
        }]);
        match self.fd().get_msrs(&mut list) {
            Ok(1) => Ok(list.as_slice()[0].data),
            Ok(_) => Err(ioctl("reading FS base")(kvm_ioctls::Error::new(
                libc::EINVAL,
            ))),
            Err(e) => Err(ioctl("reading FS base")(e)),
        }
    }

    fn set_fs_base(&mut self, base: u64) -> Result<(), VcpuError> {
        let list = msrs(&[kvm_bindings::kvm_msr_entry {
            index: MSR_FS_BASE,
            data: base,
            ..Default::default()
        }]);
        self.fd()
            .set_msrs(&list)
            .map(drop)
            .map_err(ioctl("setting FS base"))
    }
}

/// Answers the traps of a running kernel-less guest: syscalls and exceptions.
struct TrapHandler<'a> {
    mem: GuestMemoryMmap,
    handler: &'a mut SyscallHandler,
    entry: Option<SyscallEntry>,
    exception: Option<GuestException>,
}

impl TrapHandler<'_> {
    fn on_trap(
        &mut self,
        vcpu: &mut impl TrapVcpu,
        trap: Trap,
    ) -> Result<Option<StopReason>, ExecError> {
        let regs = vcpu.regs()?;
        match trap {
            Trap::Pio(SYSCALL_PORT) => self.syscall(vcpu, regs),
            Trap::Pio(port) => {
                let vector = stub::exception_vector(port).unwrap_or(u8::MAX);
                let frame = ExceptionFrame::read(&self.mem, vector, regs.rsp);
                let cr2 = vcpu.sregs()?.cr2;
                self.exception = Some(GuestException::new(vector, &frame, cr2));
                Ok(Some(StopReason::Exception(vector)))
            }
            Trap::Mmio(addr) => Ok(Some(StopReason::Failed(format!(
                "unexpected MMIO trap at {addr:#x}"
            )))),
        }
    }

    /// Performs one guest syscall: arguments from `regs`, the result in RAX.
    fn syscall(
        &mut self,
        vcpu: &mut impl TrapVcpu,
        regs: kvm_regs,
    ) -> Result<Option<StopReason>, ExecError> {
        let entry = match self.entry {
            Some(entry) => entry,
            None => *self
                .entry
                .insert(SyscallEntry::from_cs_dpl(vcpu.sregs()?.cs.dpl)),
        };
        let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
        let mut cpu = VcpuCpuState { vcpu, error: None };
        let action = self.handler.handle(&self.mem, &mut cpu, regs.rax, args);
        if let Some(err) = cpu.error {
            return Err(err.into());
        }
        match action {
            SyscallAction::Exit(code) => Ok(Some(StopReason::Exited(code))),
            SyscallAction::Return(rax) => {
                vcpu.set_regs(&entry.returned(regs, rax))?;
                Ok(None)
            }
        }
    }
}

/// The syscall layer's view of the vCPU: the FS base; the first error is kept.
struct VcpuCpuState<'a, V> {
    vcpu: &'a mut V,
    error: Option<VcpuError>,
}

impl<V: TrapVcpu> CpuState for VcpuCpuState<'_, V> {
    fn fs_base(&self) -> u64 {
        self.vcpu.fs_base().unwrap_or(0)
    }

    fn set_fs_base(&mut self, base: u64) {
        if let Err(e) = self.vcpu.set_fs_base(base) {
            self.error.get_or_insert(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_return_on_a_pvm_style_entry_emulates_sysret() {
        let regs = kvm_regs {
            rip: 0xb009,
            rcx: 0x40_1234,
            r11: 0x246,
            rflags: 0x2,
            rax: 39,
            ..Default::default()
        };
        let back = SyscallEntry::from_cs_dpl(3).returned(regs, 1);
        assert_eq!((back.rax, back.rip, back.rflags), (1, 0x40_1234, 0x246));
        let stub = SyscallEntry::from_cs_dpl(0).returned(regs, 1);
        assert_eq!(
            (stub.rax, stub.rip, stub.rflags),
            (1, 0xb009, 0x2),
            "the stub's SYSRET returns"
        );
    }

    use super::syscalls::tests::Guest;
    use crate::vstate::regs::{enable_sync_regs, SyncRegs};
    use kvm_bindings::kvm_run;

    /// A stopped vCPU whose registers live in a `kvm_run` page, as with sync regs.
    struct FakeVcpu {
        run: Box<kvm_run>,
        sregs: kvm_sregs,
        fs_base: u64,
    }

    impl FakeVcpu {
        /// A vCPU that just ran `syscall` with `regs` (KVM stored them in the page).
        fn after_syscall(regs: kvm_regs, cs_dpl: u8) -> Self {
            let mut run = Box::new(kvm_run::default());
            enable_sync_regs(&mut run);
            run.s.regs.regs = regs;
            let mut sregs = kvm_sregs::default();
            sregs.cs.dpl = cs_dpl;
            sregs.cr2 = 0xdead_0000;
            Self {
                run,
                sregs,
                fs_base: 0,
            }
        }
    }

    impl GuestRegs for FakeVcpu {
        fn regs(&mut self) -> Result<kvm_regs, VcpuError> {
            SyncRegs::new(&mut self.run).regs()
        }
        fn set_regs(&mut self, regs: &kvm_regs) -> Result<(), VcpuError> {
            SyncRegs::new(&mut self.run).set_regs(regs)
        }
    }

    impl TrapVcpu for FakeVcpu {
        fn sregs(&self) -> Result<kvm_sregs, VcpuError> {
            Ok(self.sregs)
        }
        fn fs_base(&self) -> Result<u64, VcpuError> {
            Ok(self.fs_base)
        }
        fn set_fs_base(&mut self, base: u64) -> Result<(), VcpuError> {
            self.fs_base = base;
            Ok(())
        }
    }

    fn syscall_regs(nr: u64, args: [u64; 2]) -> kvm_regs {
        kvm_regs {
            rax: nr,
            rdi: args[0],
            rsi: args[1],
            rip: 0xb009,
            rcx: 0x40_1234,
            r11: 0x246,
            rflags: 0x2,
            ..Default::default()
        }
    }

    fn trap_handler(guest: &mut Guest) -> TrapHandler<'_> {
        TrapHandler {
            mem: guest.mem.clone(),
            handler: &mut guest.handler,
            entry: None,
            exception: None,
        }
    }

    #[test]
    fn a_syscall_trap_answers_in_the_sync_regs_page_and_marks_it_dirty() {
        let mut guest = Guest::new();
        let mut traps = trap_handler(&mut guest);
        let getpid = ::syscalls::Sysno::getpid as u64;
        let mut vcpu = FakeVcpu::after_syscall(syscall_regs(getpid, [0, 0]), 3);
        let stop = traps.on_trap(&mut vcpu, Trap::Pio(SYSCALL_PORT)).unwrap();
        assert_eq!(stop, None);
        assert_eq!(traps.entry, Some(SyscallEntry::Cpl3));
        assert_eq!(
            vcpu.run.kvm_dirty_regs,
            u64::from(kvm_bindings::KVM_SYNC_X86_REGS)
        );
        let back = vcpu.regs().unwrap();
        assert_eq!((back.rax, back.rip, back.rflags), (1, 0x40_1234, 0x246));
    }

    #[test]
    fn arch_prctl_through_a_trap_sets_fs_base_and_exit_stops_the_vcpu() {
        const ARCH_SET_FS: u64 = 0x1002;
        let mut guest = Guest::new();
        let mut traps = trap_handler(&mut guest);
        let arch_prctl = ::syscalls::Sysno::arch_prctl as u64;
        let mut vcpu = FakeVcpu::after_syscall(syscall_regs(arch_prctl, [ARCH_SET_FS, 0x7000]), 0);
        assert_eq!(
            traps.on_trap(&mut vcpu, Trap::Pio(SYSCALL_PORT)).unwrap(),
            None
        );
        assert_eq!(vcpu.fs_base, 0x7000);
        assert_eq!(
            vcpu.regs().unwrap().rip,
            0xb009,
            "CPL0 entry: the stub's SYSRET returns"
        );
        let exit_group = ::syscalls::Sysno::exit_group as u64;
        let mut vcpu = FakeVcpu::after_syscall(syscall_regs(exit_group, [7, 0]), 0);
        let stop = traps.on_trap(&mut vcpu, Trap::Pio(SYSCALL_PORT)).unwrap();
        assert_eq!(stop, Some(StopReason::Exited(7)));
        assert_eq!(vcpu.run.kvm_dirty_regs, 0, "nothing to write back on exit");
    }

    #[test]
    fn an_exception_trap_reports_the_vector_and_cr2() {
        let mut guest = Guest::new();
        let mut traps = trap_handler(&mut guest);
        let mut regs = syscall_regs(0, [0, 0]);
        regs.rsp = 0x8000;
        let mut vcpu = FakeVcpu::after_syscall(regs, 0);
        let port = crate::arch::x86_64::layout::EXCEPTION_PORT_BASE + 14;
        let stop = traps.on_trap(&mut vcpu, Trap::Pio(port)).unwrap();
        assert_eq!(stop, Some(StopReason::Exception(14)));
        let report = traps.exception.unwrap().to_string();
        assert!(report.contains("0xdead0000"), "{report}");
    }

    #[test]
    fn outcomes_map_to_exit_codes() {
        assert_eq!(Outcome::Exited(256 + 7).exit_code(), 7);
        assert_eq!(
            Outcome::TimedOut(Duration::from_secs(1)).exit_code(),
            TIMEOUT_EXIT_CODE
        );
        assert_eq!(
            Outcome::Stopped(StopReason::Shutdown).exit_code(),
            MONITOR_FAILURE_EXIT_CODE
        );
        assert!(Outcome::Exited(0).report().is_none());
        assert!(Outcome::TimedOut(Duration::from_millis(1500))
            .report()
            .unwrap()
            .contains("1.5s"));
    }
}
