//! A vCPU and its run loop. The exit handler is a free function over a
//! `kvm_ioctls::VcpuExit`, so tests feed it fake exits; the loop adds timing, stats and
//! the kick (see `kick.rs`) that stops a guest on `--timeout` or SIGTERM. Traps are
//! handed a [`TrappedVcpu`], whose registers come from the `kvm_run` page where KVM
//! syncs them (see `regs.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use kvm_bindings::kvm_regs;
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd};

use super::kick;
pub use super::kick::{kick_signal, KickError, Kicker, Watchdog};
use super::regs::{self, GuestRegs, IoctlRegs, SyncRegs};
use crate::devices::bus::{Access, Bus, DeviceEvent};
use crate::stats::ExitStats;

/// Why a vCPU failed.
#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    /// A vCPU ioctl failed.
    #[error("{what}")]
    Ioctl {
        /// What was being done.
        what: &'static str,
        /// The errno.
        source: kvm_ioctls::Error,
    },
    /// Installing the kick or termination signal handlers failed.
    #[error(transparent)]
    Kick(#[from] KickError),
}

/// Installs the signal handlers a running vCPU relies on: the kick (for timeouts and
/// tear-down) and SIGINT/SIGTERM/SIGHUP, which stop every running vCPU cleanly.
pub fn install_kick_handler() -> Result<(), VcpuError> {
    kick::install_handlers().map_err(VcpuError::from)
}

/// Maps a KVM error to a [`VcpuError`] that says what was being done.
pub fn ioctl(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VcpuError {
    move |source| VcpuError::Ioctl { what, source }
}

/// Why a vCPU stopped running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The guest reset or powered off (i8042 reset, triple fault, system event).
    Shutdown,
    /// The guest halted with no interrupt controller to wake it.
    Halted,
    /// The vCPU was kicked: a timeout, or the monitor got SIGINT/SIGTERM/SIGHUP.
    Kicked,
    /// KVM could not run the guest any further.
    Failed(String),
    /// A trap handler ended the run with a guest exit code.
    Exited(i32),
    /// A guest CPU exception (vector) ended the run.
    Exception(u8),
}

/// An access to a trap range, which the run loop hands to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    /// Port I/O on this port.
    Pio(u16),
    /// MMIO at this guest physical address.
    Mmio(u64),
}

/// What the run loop does after an exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitAction {
    /// Re-enter the guest.
    Continue,
    /// A trap range was accessed: the caller decides.
    Trap(Trap),
    /// Stop the vCPU.
    Stop(StopReason),
}

/// An exit after handling: the action, and what to count it as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandledExit {
    /// What to do next.
    pub action: ExitAction,
    /// The exit reason's name in stats ("io_out", "mmio_read", "hlt", ...).
    pub reason: &'static str,
    /// The port, for port I/O exits.
    pub port: Option<u16>,
}

impl HandledExit {
    fn new(action: ExitAction, reason: &'static str) -> Self {
        Self {
            action,
            reason,
            port: None,
        }
    }
}

fn bus_action(access: Access, trap: Trap) -> ExitAction {
    match access {
        Access::Handled(DeviceEvent::Shutdown) => ExitAction::Stop(StopReason::Shutdown),
        Access::Trap => ExitAction::Trap(trap),
        _ => ExitAction::Continue,
    }
}

/// Handles one exit against the port-I/O and MMIO buses.
pub fn handle_exit(exit: VcpuExit<'_>, pio: &Bus, mmio: &Bus) -> HandledExit {
    let port_exit = |action, reason, port| HandledExit {
        action,
        reason,
        port: Some(port),
    };
    match exit {
        VcpuExit::IoOut(port, data) => port_exit(
            bus_action(pio.write(port.into(), data), Trap::Pio(port)),
            "io_out",
            port,
        ),
        VcpuExit::IoIn(port, data) => port_exit(
            bus_action(pio.read(port.into(), data), Trap::Pio(port)),
            "io_in",
            port,
        ),
        VcpuExit::MmioRead(addr, data) => HandledExit::new(
            bus_action(mmio.read(addr, data), Trap::Mmio(addr)),
            "mmio_read",
        ),
        VcpuExit::MmioWrite(addr, data) => HandledExit::new(
            bus_action(mmio.write(addr, data), Trap::Mmio(addr)),
            "mmio_write",
        ),
        other => handle_other_exit(other),
    }
}

fn handle_other_exit(exit: VcpuExit<'_>) -> HandledExit {
    use ExitAction::{Continue, Stop};
    match exit {
        VcpuExit::Hlt => HandledExit::new(Stop(StopReason::Halted), "hlt"),
        VcpuExit::Shutdown => HandledExit::new(Stop(StopReason::Shutdown), "shutdown"),
        VcpuExit::SystemEvent(..) => HandledExit::new(Stop(StopReason::Shutdown), "system_event"),
        VcpuExit::Intr => HandledExit::new(Continue, "intr"),
        VcpuExit::FailEntry(reason, cpu) => HandledExit::new(
            Stop(StopReason::Failed(format!(
                "KVM could not enter the guest (hardware reason {reason:#x}, cpu {cpu})"
            ))),
            "fail_entry",
        ),
        VcpuExit::InternalError => HandledExit::new(
            Stop(StopReason::Failed(
                "KVM internal error (an instruction KVM could not emulate?)".into(),
            )),
            "internal_error",
        ),
        other => HandledExit::new(
            Stop(StopReason::Failed(format!(
                "unexpected vCPU exit {other:?}"
            ))),
            "other",
        ),
    }
}

/// A vCPU ready to run.
#[derive(Debug)]
pub struct Vcpu {
    fd: VcpuFd,
    index: u8,
    sync_regs: bool,
}

impl Vcpu {
    /// Wraps a created vCPU.
    pub fn new(fd: VcpuFd, index: u8) -> Self {
        Self {
            fd,
            index,
            sync_regs: false,
        }
    }

    /// The KVM vCPU (for register access).
    pub fn fd(&self) -> &VcpuFd {
        &self.fd
    }

    /// The vCPU's index.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// Has KVM keep the general registers in the `kvm_run` page, where `kvm` supports
    /// it, so trap handlers read and write them without ioctls. Returns whether it does.
    pub fn enable_sync_regs(&mut self, kvm: &Kvm) -> bool {
        if regs::sync_regs_supported(kvm) {
            regs::enable_sync_regs(self.fd.get_kvm_run());
            self.sync_regs = true;
        }
        self.sync_regs
    }

    /// Whether trap handlers get the registers from the `kvm_run` page.
    pub fn sync_regs(&self) -> bool {
        self.sync_regs
    }

    /// Runs until a stop: exits go to [`handle_exit`], traps to `on_trap` (which returns
    /// `Some(reason)` to stop). Each exit is counted in `stats` with the time the monitor
    /// spent on it before re-entering the guest.
    pub fn run<E, F>(
        &mut self,
        buses: (&Bus, &Bus),
        stats: &mut ExitStats,
        kicked: &AtomicBool,
        mut on_trap: F,
    ) -> Result<StopReason, E>
    where
        E: From<VcpuError>,
        F: FnMut(&mut TrappedVcpu<'_>, Trap) -> Result<Option<StopReason>, E>,
    {
        let _armed = kick::arm_termination(self.index, self.fd.get_kvm_run());
        loop {
            if kicked.load(Ordering::Acquire) || kick::terminated_by().is_some() {
                return Ok(StopReason::Kicked);
            }
            let handled = match self.fd.run() {
                Ok(exit) => handle_exit(exit, buses.0, buses.1),
                Err(err) if err.errno() == libc::EINTR => {
                    HandledExit::new(ExitAction::Continue, "intr")
                }
                Err(err) if err.errno() == libc::EAGAIN => continue,
                Err(err) => return Err(ioctl("running the vCPU (KVM_RUN)")(err).into()),
            };
            let exited = Instant::now();
            let action = match handled.action {
                ExitAction::Trap(trap) => {
                    let mut trapped = TrappedVcpu {
                        fd: &mut self.fd,
                        sync_regs: self.sync_regs,
                    };
                    on_trap(&mut trapped, trap)?.map_or(ExitAction::Continue, ExitAction::Stop)
                }
                action => action,
            };
            stats.record(handled.reason, handled.port, exited.elapsed());
            if let ExitAction::Stop(reason) = action {
                return Ok(reason);
            }
        }
    }
}

/// A vCPU stopped on a trap: its registers (from the `kvm_run` page when synced, else
/// by ioctl) and its fd for everything else.
#[derive(Debug)]
pub struct TrappedVcpu<'a> {
    fd: &'a mut VcpuFd,
    sync_regs: bool,
}

impl TrappedVcpu<'_> {
    /// The KVM vCPU (system registers, MSRs, ...).
    pub fn fd(&self) -> &VcpuFd {
        self.fd
    }
}

impl GuestRegs for TrappedVcpu<'_> {
    fn regs(&mut self) -> Result<kvm_regs, VcpuError> {
        if self.sync_regs {
            SyncRegs::new(self.fd.get_kvm_run()).regs()
        } else {
            IoctlRegs::new(self.fd).regs()
        }
    }

    fn set_regs(&mut self, regs: &kvm_regs) -> Result<(), VcpuError> {
        if self.sync_regs {
            SyncRegs::new(self.fd.get_kvm_run()).set_regs(regs)
        } else {
            IoctlRegs::new(self.fd).set_regs(regs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::bus::{BusDevice, SharedDevice};
    use crate::devices::i8042::I8042;
    use std::sync::{Arc, Mutex};

    fn buses() -> (Bus, Bus) {
        let mut pio = Bus::new();
        let i8042: SharedDevice = Arc::new(Mutex::new(I8042::new()));
        pio.insert(0x60, 5, i8042).unwrap();
        pio.insert_trap(0xe0, 1).unwrap();
        (pio, Bus::new())
    }

    #[test]
    fn i8042_reset_write_stops_the_vm() {
        let (pio, mmio) = buses();
        let handled = handle_exit(VcpuExit::IoOut(0x64, &[0xfe]), &pio, &mmio);
        assert_eq!(handled.action, ExitAction::Stop(StopReason::Shutdown));
        assert_eq!((handled.reason, handled.port), ("io_out", Some(0x64)));
    }

    #[test]
    fn trap_ports_go_back_to_the_caller() {
        let (pio, mmio) = buses();
        let handled = handle_exit(VcpuExit::IoOut(0xe0, &[0]), &pio, &mmio);
        assert_eq!(handled.action, ExitAction::Trap(Trap::Pio(0xe0)));
        let mut mmio = Bus::new();
        mmio.insert_trap(0xc000_0000, 0x1000).unwrap();
        let handled = handle_exit(VcpuExit::MmioWrite(0xc000_0000, &[0]), &pio, &mmio);
        assert_eq!(handled.action, ExitAction::Trap(Trap::Mmio(0xc000_0000)));
        assert_eq!((handled.reason, handled.port), ("mmio_write", None));
    }

    #[test]
    fn unmapped_port_read_returns_all_ones_and_continues() {
        let (pio, mmio) = buses();
        let mut data = [0u8; 2];
        let handled = handle_exit(VcpuExit::IoIn(0x80, &mut data), &pio, &mmio);
        assert_eq!(handled.action, ExitAction::Continue);
        assert_eq!(data, [0xff, 0xff]);
    }

    #[test]
    fn mmio_goes_to_the_mmio_bus() {
        struct Const;
        impl BusDevice for Const {
            fn read(&mut self, _: u64, data: &mut [u8]) {
                data.fill(0x5a);
            }
            fn write(&mut self, _: u64, _: &[u8]) -> DeviceEvent {
                DeviceEvent::Shutdown
            }
        }
        let (pio, mut mmio) = buses();
        mmio.insert(0xd000_0000, 0x1000, Arc::new(Mutex::new(Const)))
            .unwrap();
        let mut data = [0u8; 4];
        let read = handle_exit(VcpuExit::MmioRead(0xd000_0010, &mut data), &pio, &mmio);
        assert_eq!((read.action, data), (ExitAction::Continue, [0x5a; 4]));
        let write = handle_exit(VcpuExit::MmioWrite(0xd000_0000, &[1]), &pio, &mmio);
        assert_eq!(write.action, ExitAction::Stop(StopReason::Shutdown));
    }

    #[test]
    fn halt_triple_fault_and_entry_failure_stop_with_a_reason() {
        let (pio, mmio) = buses();
        let stop = |exit| handle_exit(exit, &pio, &mmio).action;
        assert_eq!(stop(VcpuExit::Hlt), ExitAction::Stop(StopReason::Halted));
        assert_eq!(
            stop(VcpuExit::Shutdown),
            ExitAction::Stop(StopReason::Shutdown)
        );
        assert!(matches!(
            stop(VcpuExit::FailEntry(0x21, 0)),
            ExitAction::Stop(StopReason::Failed(msg)) if msg.contains("0x21")
        ));
        assert!(matches!(
            stop(VcpuExit::InternalError),
            ExitAction::Stop(StopReason::Failed(_))
        ));
        assert_eq!(stop(VcpuExit::Intr), ExitAction::Continue);
    }
}
