//! The kernel-less guest: a static Linux binary runs at CPL3 directly on the vCPU,
//! with no guest kernel. Its `syscall`s exit to the monitor through a two-instruction
//! stub (`out` to the syscall port, then SYSRET), the monitor performs them
//! (`syscalls/`), and CPU exceptions end the VM with a report. `exec` is what
//! `microvm exec` runs.

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

use crate::arch::x86_64::layout::{MAX_MEM_MIB, MIN_MEM_MIB, SYSCALL_PORT};
use crate::arch::x86_64::msr::{msrs, MSR_FS_BASE};
use crate::arch::x86_64::regs::RFLAGS_RESERVED;
use crate::builder::{build_kernelless, BuildError, KernellessSpec, KernellessVm};
use crate::stats::{ExitStats, Phases, StatsReport};
use crate::vstate::kick::{self, KickError, Kicker, Watchdog};
use crate::vstate::vcpu::{ioctl, StopReason, Trap, VcpuError};
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
        .run::<ExecError, _>((&vm.pio, &vm.mmio), exits, &kicked, |fd, trap| {
            traps.on_trap(fd, trap)
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

/// Answers the traps of a running kernel-less guest: syscalls and exceptions.
struct TrapHandler<'a> {
    mem: GuestMemoryMmap,
    handler: &'a mut SyscallHandler,
    entry: Option<SyscallEntry>,
    exception: Option<GuestException>,
}

impl TrapHandler<'_> {
    fn on_trap(&mut self, fd: &VcpuFd, trap: Trap) -> Result<Option<StopReason>, ExecError> {
        let regs = fd
            .get_regs()
            .map_err(ioctl("reading registers after a trap"))?;
        match trap {
            Trap::Pio(SYSCALL_PORT) => self.syscall(fd, regs),
            Trap::Pio(port) => {
                let vector = stub::exception_vector(port).unwrap_or(u8::MAX);
                let frame = ExceptionFrame::read(&self.mem, vector, regs.rsp);
                let sregs = fd
                    .get_sregs()
                    .map_err(ioctl("reading CR2 after a guest exception"))?;
                self.exception = Some(GuestException::new(vector, &frame, sregs.cr2));
                Ok(Some(StopReason::Exception(vector)))
            }
            Trap::Mmio(addr) => Ok(Some(StopReason::Failed(format!(
                "unexpected MMIO trap at {addr:#x}"
            )))),
        }
    }

    /// Performs one guest syscall: arguments from `regs`, the result in RAX.
    fn syscall(&mut self, fd: &VcpuFd, regs: kvm_regs) -> Result<Option<StopReason>, ExecError> {
        let entry = match self.entry {
            Some(entry) => entry,
            None => {
                let sregs = fd
                    .get_sregs()
                    .map_err(ioctl("reading CS at the first syscall"))?;
                *self.entry.insert(SyscallEntry::from_cs_dpl(sregs.cs.dpl))
            }
        };
        let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
        let mut cpu = VcpuCpuState { fd, error: None };
        let action = self.handler.handle(&self.mem, &mut cpu, regs.rax, args);
        if let Some(err) = cpu.error {
            return Err(err.into());
        }
        match action {
            SyscallAction::Exit(code) => Ok(Some(StopReason::Exited(code))),
            SyscallAction::Return(rax) => {
                fd.set_regs(&entry.returned(regs, rax))
                    .map_err(ioctl("writing the syscall result"))?;
                Ok(None)
            }
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
