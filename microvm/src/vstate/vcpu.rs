//! A vCPU and its run loop. The exit handler is a free function over a
//! `kvm_ioctls::VcpuExit`, so tests feed it fake exits; the loop adds timing, stats and
//! the kick (a signal plus a flag) that `--timeout` uses to stop a spinning guest.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use kvm_ioctls::{VcpuExit, VcpuFd};

use crate::devices::bus::{Access, Bus, DeviceEvent};
use crate::stats::ExitStats;

/// Why a vCPU failed.
#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    /// A vCPU ioctl failed.
    #[error("{what}: {source}")]
    Ioctl {
        /// What was being done.
        what: &'static str,
        /// The errno.
        source: kvm_ioctls::Error,
    },
    /// Installing the kick signal handler failed.
    #[error("installing the vCPU kick signal handler: {0}")]
    Signal(#[source] vmm_sys_util::errno::Error),
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
    /// Another thread kicked the vCPU (timeout, or the VM is being torn down).
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
}

impl Vcpu {
    /// Wraps a created vCPU.
    pub fn new(fd: VcpuFd, index: u8) -> Self {
        Self { fd, index }
    }

    /// The KVM vCPU (for register access).
    pub fn fd(&self) -> &VcpuFd {
        &self.fd
    }

    /// The vCPU's index.
    pub fn index(&self) -> u8 {
        self.index
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
        F: FnMut(&VcpuFd, Trap) -> Result<Option<StopReason>, E>,
    {
        loop {
            if kicked.load(Ordering::Acquire) {
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
                    on_trap(&self.fd, trap)?.map_or(ExitAction::Continue, ExitAction::Stop)
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

/// The signal that interrupts KVM_RUN on a vCPU thread.
pub fn kick_signal() -> libc::c_int {
    vmm_sys_util::signal::SIGRTMIN()
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs the (empty) kick handler; without SA_RESTART, KVM_RUN returns EINTR.
pub fn install_kick_handler() -> Result<(), VcpuError> {
    vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick).map_err(VcpuError::Signal)
}

/// Stops a vCPU thread: sets the flag the run loop checks, and signals the thread so
/// a guest that never exits on its own leaves KVM_RUN.
#[derive(Debug, Clone)]
pub struct Kicker {
    thread: libc::pthread_t,
    flag: Arc<AtomicBool>,
}

impl Kicker {
    /// A kicker for the calling thread, which must outlive every kick (see [`Watchdog`]).
    pub fn for_current_thread(flag: Arc<AtomicBool>) -> Self {
        // SAFETY: pthread_self has no preconditions.
        let thread = unsafe { libc::pthread_self() };
        Self { thread, flag }
    }

    /// Sets the flag and interrupts the thread.
    pub fn kick(&self) {
        self.flag.store(true, Ordering::Release);
        // SAFETY: `thread` is alive: the Watchdog that owns kicks is joined before the
        // vCPU thread's run ends, and the signal has a handler installed.
        unsafe { libc::pthread_kill(self.thread, kick_signal()) };
    }
}

/// Kicks a vCPU after a timeout, again every few milliseconds until dropped (a kick
/// that lands just before KVM_RUN is entered would otherwise be lost).
#[derive(Debug)]
pub struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<bool>>,
}

/// How often a watchdog re-kicks a vCPU that has not stopped yet.
const REKICK_INTERVAL: Duration = Duration::from_millis(5);

impl Watchdog {
    /// Starts the timer.
    pub fn start(timeout: Duration, kicker: Kicker) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            if stopped.recv_timeout(timeout) != Err(mpsc::RecvTimeoutError::Timeout) {
                return false;
            }
            loop {
                kicker.kick();
                if stopped.recv_timeout(REKICK_INTERVAL) != Err(mpsc::RecvTimeoutError::Timeout) {
                    return true;
                }
            }
        });
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops the timer; true if it had fired.
    pub fn stop(mut self) -> bool {
        self.finish()
    }

    fn finish(&mut self) -> bool {
        drop(self.stop.take());
        self.thread
            .take()
            .is_some_and(|t| t.join().unwrap_or(false))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::bus::{BusDevice, SharedDevice};
    use crate::devices::i8042::I8042;
    use std::sync::Mutex;

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

    #[test]
    fn watchdog_stopped_in_time_never_fires() {
        install_kick_handler().unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let dog = Watchdog::start(
            Duration::from_secs(3600),
            Kicker::for_current_thread(flag.clone()),
        );
        assert!(!dog.stop());
        assert!(!flag.load(Ordering::Acquire));
    }

    #[test]
    fn watchdog_fires_and_sets_the_flag() {
        install_kick_handler().unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let dog = Watchdog::start(Duration::ZERO, Kicker::for_current_thread(flag.clone()));
        while !flag.load(Ordering::Acquire) {
            thread::yield_now();
        }
        assert!(dog.stop());
    }
}
