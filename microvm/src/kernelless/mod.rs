//! The kernel-less guest: a static Linux binary runs at CPL3 directly on the vCPU,
//! with no guest kernel. Its `syscall`s exit to the monitor through a two-instruction
//! CPL0 stub, the monitor performs them (`syscalls/`), and CPU exceptions end the VM
//! with a report. `exec` is what `microvm exec` runs.

pub mod elf;
pub mod exception;
pub mod stack;
pub mod stub;
pub mod syscalls;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvm_ioctls::VcpuFd;
use vm_memory::GuestMemoryMmap;

use kvm_bindings::kvm_regs;

use crate::arch::x86_64::layout::{
    MAX_MEM_MIB, MIN_MEM_MIB, STUB_ADDR, SYSCALL_ENTRY_OFFSET, SYSCALL_PORT, SYSRET_OFFSET,
};
use crate::arch::x86_64::msr::{msrs, MSR_FS_BASE};
use crate::builder::{build_kernelless, BuildError, KernellessSpec, KernellessVm};
use crate::stats::{ExitStats, Phases, StatsReport};
use crate::vstate::vcpu::{install_kick_handler, ioctl, Kicker, StopReason, VcpuError, Watchdog};
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
    #[error("creating an empty temporary rootfs: {0}")]
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
            Outcome::Stopped(_) => MONITOR_FAILURE_EXIT_CODE,
        }
    }

    /// A line for stderr when the outcome is not a normal exit.
    pub fn report(&self) -> Option<String> {
        match self {
            Outcome::Exited(_) => None,
            Outcome::Exception(e) => Some(e.to_string()),
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
    Temp(tempfile::TempDir),
}

impl Rootfs {
    fn open(given: Option<&PathBuf>) -> Result<Self, ExecError> {
        let Some(path) = given else {
            let dir = tempfile::Builder::new()
                .prefix("isolab-rootfs-")
                .tempdir()
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
    let mut stats = StatsReport::new(vm.vm.flavor(), options.mem_mib, &phases, &exits);
    stats.syscalls = serde_json::to_value(handler.stats()).unwrap_or_default();
    if let Outcome::Exited(code) = outcome {
        stats.exit_code = Some(code);
    }
    Ok(ExecReport { outcome, stats })
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
    let watchdog = match timeout {
        Some(t) => {
            install_kick_handler()?;
            Some(Watchdog::start(
                t,
                Kicker::for_current_thread(kicked.clone()),
            ))
        }
        None => None,
    };
    let mem = vm.mem.clone();
    let mut exception = None;
    phases.mark("first_instruction");
    let stop = vm
        .vcpu
        .run::<ExecError, _>((&vm.pio, &vm.mmio), exits, &kicked, |fd, port| {
            let regs = fd
                .get_regs()
                .map_err(ioctl("reading registers after a trap"))?;
            if port == SYSCALL_PORT {
                return syscall(fd, &mem, handler, regs);
            }
            let vector = stub::exception_vector(port).unwrap_or(u8::MAX);
            let frame = ExceptionFrame::read(&mem, vector, regs.rsp);
            if is_syscall_entry_fault(&frame) {
                return syscall(fd, &mem, handler, resume_user_via_sysret(regs, &frame));
            }
            let sregs = fd
                .get_sregs()
                .map_err(ioctl("reading CR2 after a guest exception"))?;
            exception = Some(GuestException::new(vector, &frame, sregs.cr2));
            Ok(Some(StopReason::Exception(vector)))
        });
    let timed_out = watchdog.is_some_and(Watchdog::stop);
    Ok(match (stop?, exception) {
        (StopReason::Exited(code), _) => Outcome::Exited(code),
        (StopReason::Exception(_), Some(e)) => Outcome::Exception(e),
        (StopReason::Kicked, _) if timed_out => Outcome::TimedOut(timeout.unwrap_or_default()),
        (other, _) => Outcome::Stopped(other),
    })
}

/// True when an exception was raised by the syscall entry itself at CPL3. On PVM
/// hosts `syscall` moves RIP to MSR_LSTAR without entering CPL0, so the stub's first
/// instruction faults (a #PF, the stub page being supervisor-only); the fault then
/// stands for the syscall. On hardware KVM the entry runs at CPL0 and never faults.
pub fn is_syscall_entry_fault(frame: &ExceptionFrame) -> bool {
    frame.rip == STUB_ADDR + SYSCALL_ENTRY_OFFSET && frame.cpl() == 3
}

/// Registers that make the stub's SYSRET return to the program as the syscall would
/// have: the user RSP comes back from the exception frame; RCX (return address) and
/// R11 (RFLAGS) are still what `syscall` put there.
pub fn resume_user_via_sysret(mut regs: kvm_regs, frame: &ExceptionFrame) -> kvm_regs {
    regs.rip = STUB_ADDR + SYSRET_OFFSET;
    regs.rsp = frame.rsp;
    regs
}

/// Performs one guest syscall: arguments from `regs`, the result in RAX.
fn syscall(
    fd: &VcpuFd,
    mem: &GuestMemoryMmap,
    handler: &mut SyscallHandler,
    mut regs: kvm_regs,
) -> Result<Option<StopReason>, ExecError> {
    let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
    let mut cpu = VcpuCpuState { fd, error: None };
    let action = handler.handle(mem, &mut cpu, regs.rax, args);
    if let Some(err) = cpu.error {
        return Err(err.into());
    }
    match action {
        SyscallAction::Exit(code) => Ok(Some(StopReason::Exited(code))),
        SyscallAction::Return(rax) => {
            regs.rax = rax;
            fd.set_regs(&regs)
                .map_err(ioctl("writing the syscall result"))?;
            Ok(None)
        }
    }
}

/// The syscall layer's view of the vCPU: FS base through the MSR ioctls.
struct VcpuCpuState<'a> {
    fd: &'a VcpuFd,
    error: Option<VcpuError>,
}

impl CpuState for VcpuCpuState<'_> {
    fn fs_base(&self) -> u64 {
        let mut list = msrs(&[kvm_bindings::kvm_msr_entry {
            index: MSR_FS_BASE,
            ..Default::default()
        }]);
        match self.fd.get_msrs(&mut list) {
            Ok(1) => list.as_slice()[0].data,
            _ => 0,
        }
    }

    fn set_fs_base(&mut self, base: u64) {
        let list = msrs(&[kvm_bindings::kvm_msr_entry {
            index: MSR_FS_BASE,
            data: base,
            ..Default::default()
        }]);
        if let Err(e) = self.fd.set_msrs(&list) {
            self.error = Some(ioctl("setting FS base")(e));
        }
    }
}
