//! Stopping a running vCPU from elsewhere: a flag the run loop checks before each
//! `KVM_RUN`, and a signal that makes a running `KVM_RUN` return (`EINTR`), so even a
//! guest spinning without exits stops. Used by `--timeout` (a watchdog thread) and by
//! SIGINT/SIGTERM/SIGHUP, which end the VM cleanly so nothing is left behind.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread;
use std::time::Duration;

use kvm_bindings::kvm_run;

/// Why a handler could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum KickError {
    /// sigaction failed.
    #[error("installing the handler for signal {signal}")]
    Signal {
        /// The signal.
        signal: libc::c_int,
        /// The errno.
        source: vmm_sys_util::errno::Error,
    },
}

/// The signal that interrupts KVM_RUN on a vCPU thread.
pub fn kick_signal() -> libc::c_int {
    vmm_sys_util::signal::SIGRTMIN()
}

/// Signals that end the VM cleanly (the guest is stopped, then everything is released).
pub const TERMINATION_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// How many vCPUs termination can reach at once.
const MAX_ARMED: usize = 32;

static TERMINATED_BY: AtomicI32 = AtomicI32::new(0);
static ARMED_RUN: [AtomicPtr<kvm_run>; MAX_ARMED] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_ARMED];
static ARMED_THREAD: [AtomicU64; MAX_ARMED] = [const { AtomicU64::new(0) }; MAX_ARMED];

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

extern "C" fn on_terminate(signal: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    TERMINATED_BY.store(signal, Ordering::SeqCst);
    for (run, thread) in ARMED_RUN.iter().zip(&ARMED_THREAD) {
        let run = run.load(Ordering::SeqCst);
        if !run.is_null() {
            // SAFETY: an armed pointer is the live kvm_run mapping of a vCPU inside
            // `Vcpu::run`, which disarms it before returning; KVM reads immediate_exit on
            // entry, so a byte store is what it expects (Firecracker does the same).
            unsafe { ptr::write_volatile(ptr::addr_of_mut!((*run).immediate_exit), 1) };
        }
        let thread = thread.load(Ordering::SeqCst);
        if thread != 0 {
            // SAFETY: pthread_kill is async-signal-safe; the thread is inside
            // `Vcpu::run` (armed), so it is alive.
            unsafe { libc::pthread_kill(thread as libc::pthread_t, kick_signal()) };
        }
    }
}

/// Installs the kick handler (empty: its only effect is EINTR) and the termination
/// handlers, once per process.
pub fn install_handlers() -> Result<(), KickError> {
    static INSTALLED: OnceLock<Result<(), (libc::c_int, i32)>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        install(kick_signal(), on_kick)?;
        TERMINATION_SIGNALS
            .iter()
            .try_for_each(|&s| install(s, on_terminate))
    });
    result.map_err(|(signal, errno)| KickError::Signal {
        signal,
        source: vmm_sys_util::errno::Error::new(errno),
    })
}

fn install(
    signal: libc::c_int,
    handler: vmm_sys_util::signal::SignalHandler,
) -> Result<(), (libc::c_int, i32)> {
    vmm_sys_util::signal::register_signal_handler(signal, handler).map_err(|e| (signal, e.errno()))
}

/// The termination signal received, if any.
pub fn terminated_by() -> Option<libc::c_int> {
    match TERMINATED_BY.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// While alive, a termination signal reaches vCPU `index` on the calling thread.
#[derive(Debug)]
pub struct Armed {
    slot: usize,
}

/// Arms termination for vCPU `index` running on this thread with `run` as its shared
/// `kvm_run` page; disarmed on drop.
pub fn arm_termination(index: u8, run: &mut kvm_run) -> Armed {
    let slot = usize::from(index) % MAX_ARMED;
    // SAFETY: pthread_self has no preconditions.
    let thread = unsafe { libc::pthread_self() };
    ARMED_THREAD[slot].store(thread as u64, Ordering::SeqCst);
    ARMED_RUN[slot].store(run, Ordering::SeqCst);
    Armed { slot }
}

impl Drop for Armed {
    fn drop(&mut self) {
        ARMED_RUN[self.slot].store(ptr::null_mut(), Ordering::SeqCst);
        ARMED_THREAD[self.slot].store(0, Ordering::SeqCst);
    }
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

    #[test]
    fn watchdog_stopped_in_time_never_fires() {
        install_handlers().unwrap();
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
        install_handlers().unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let dog = Watchdog::start(Duration::ZERO, Kicker::for_current_thread(flag.clone()));
        while !flag.load(Ordering::Acquire) {
            thread::yield_now();
        }
        assert!(dog.stop());
    }

    #[test]
    fn armed_vcpu_is_disarmed_on_drop() {
        let mut run = kvm_run::default();
        {
            let _armed = arm_termination(31, &mut run);
            assert!(!ARMED_RUN[31].load(Ordering::SeqCst).is_null());
        }
        assert!(ARMED_RUN[31].load(Ordering::SeqCst).is_null());
        assert_eq!(ARMED_THREAD[31].load(Ordering::SeqCst), 0);
    }
}
