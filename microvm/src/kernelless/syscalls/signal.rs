//! Signals as far as a runtime's start-up needs them: dispositions, the mask and the
//! alternate stack are recorded and reported back; no signal is ever delivered to a
//! handler. A signal the guest sends itself whose action is to terminate ends the guest
//! with status 128 + signal, as a shell reports a process killed by it.

use syscalls::Errno;

use super::user_memory::UserMemory;
use super::{SysResult, SyscallHandler};

/// Highest signal number (Linux `_NSIG`).
const NSIG: u64 = 64;
/// Size of the kernel's `struct sigaction` on x86_64 (handler, flags, restorer, mask).
const SIGACTION_SIZE: usize = 32;
/// Size of `stack_t` on x86_64.
const STACK_T_SIZE: usize = 24;
/// Bits that can never be blocked: SIGKILL and SIGSTOP.
const UNBLOCKABLE: u64 = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));

/// The recorded signal state of the guest.
#[derive(Debug)]
pub struct SignalState {
    actions: Vec<[u8; SIGACTION_SIZE]>,
    mask: u64,
    altstack: [u8; STACK_T_SIZE],
}

impl Default for SignalState {
    fn default() -> Self {
        let mut altstack = [0u8; STACK_T_SIZE];
        altstack[8..12].copy_from_slice(&libc::SS_DISABLE.to_le_bytes());
        Self {
            actions: vec![[0; SIGACTION_SIZE]; NSIG as usize + 1],
            mask: 0,
            altstack,
        }
    }
}

impl SignalState {
    /// `rt_sigaction(2)`: records the new action, reports the old.
    pub fn rt_sigaction(
        &mut self,
        um: &UserMemory<'_>,
        sig: u64,
        act: u64,
        old: u64,
        setsize: u64,
    ) -> SysResult {
        let fixed = sig == libc::SIGKILL as u64 || sig == libc::SIGSTOP as u64;
        if setsize != 8 || sig == 0 || sig > NSIG || (act != 0 && fixed) {
            return Err(Errno::EINVAL);
        }
        let new = if act != 0 {
            let mut b = [0u8; SIGACTION_SIZE];
            um.read(act, &mut b)?;
            Some(b)
        } else {
            None
        };
        if old != 0 {
            um.write(old, &self.actions[sig as usize])?;
        }
        if let Some(new) = new {
            self.actions[sig as usize] = new;
        }
        Ok(0)
    }

    /// `rt_sigprocmask(2)`.
    pub fn rt_sigprocmask(
        &mut self,
        um: &UserMemory<'_>,
        how: u64,
        set: u64,
        old: u64,
        setsize: u64,
    ) -> SysResult {
        if setsize != 8 {
            return Err(Errno::EINVAL);
        }
        let new = if set != 0 {
            Some(um.read_u64(set)?)
        } else {
            None
        };
        if old != 0 {
            um.write_u64(old, self.mask)?;
        }
        if let Some(set) = new {
            self.mask = match how as i32 {
                libc::SIG_BLOCK => self.mask | set,
                libc::SIG_UNBLOCK => self.mask & !set,
                libc::SIG_SETMASK => set,
                _ => return Err(Errno::EINVAL),
            } & !UNBLOCKABLE;
        }
        Ok(0)
    }

    /// `sigaltstack(2)`.
    pub fn sigaltstack(&mut self, um: &UserMemory<'_>, new: u64, old: u64) -> SysResult {
        let stack = if new != 0 {
            let mut b = [0u8; STACK_T_SIZE];
            um.read(new, &mut b)?;
            let flags = i32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
            let size = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
            if flags & !(libc::SS_DISABLE | (1 << 31)) != 0 {
                return Err(Errno::EINVAL);
            }
            if flags & libc::SS_DISABLE == 0 && size < libc::MINSIGSTKSZ as u64 {
                return Err(Errno::ENOMEM);
            }
            Some(b)
        } else {
            None
        };
        if old != 0 {
            um.write(old, &self.altstack)?;
        }
        if let Some(stack) = stack {
            self.altstack = stack;
        }
        Ok(0)
    }

    /// What sending `sig` to the guest does: `true` if it ends the guest.
    fn terminates(&self, sig: u64) -> bool {
        let handler =
            u64::from_le_bytes(self.actions[sig as usize][..8].try_into().expect("8 bytes"));
        let default_ignored = [libc::SIGCHLD, libc::SIGURG, libc::SIGWINCH, libc::SIGCONT];
        let blocked = self.mask & (1 << (sig - 1)) != 0;
        match handler as usize {
            libc::SIG_IGN => false,
            libc::SIG_DFL => !blocked && !default_ignored.contains(&(sig as i32)),
            // A handler cannot run (no delivery); Linux would run it, so the guest cannot
            // go on as it expects: end it rather than pretend.
            _ => !blocked,
        }
    }
}

/// `pause(2)`: no signal is ever delivered to the guest, so it waits until the monitor
/// thread is interrupted (the `--timeout` kick) or the monitor is killed; an interrupt
/// answers `EINTR`, as Linux does after a signal.
pub fn pause() -> SysResult {
    Err(super::host::pause())
}

impl SyscallHandler {
    /// `kill(2)`, `tkill(2)`, `tgkill(2)` aimed at the guest itself.
    pub(super) fn kill(&mut self, pid: u64, sig: u64) -> SysResult {
        if !matches!(pid as i32, -1..=1) {
            return Err(Errno::ESRCH);
        }
        if sig > NSIG {
            return Err(Errno::EINVAL);
        }
        if sig != 0 && self.signals.terminates(sig) {
            log::warn!(
                "guest sent itself signal {sig}; ending it with status {}",
                128 + sig
            );
            self.exit = Some(128 + sig as i32);
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernelless::syscalls::tests::{err, Guest, SCRATCH};
    use crate::kernelless::syscalls::SyscallAction;
    use syscalls::Sysno;

    #[test]
    fn sigaction_records_and_reports_dispositions() {
        let mut g = Guest::new();
        let act = SCRATCH;
        let old = SCRATCH + 0x100;
        g.um().write_u64(act, libc::SIG_IGN as u64).unwrap();
        g.um().write_u64(act + 8, 0x0400_0000).unwrap();
        let pipe = libc::SIGPIPE as u64;
        assert_eq!(g.call(Sysno::rt_sigaction, &[pipe, act, old, 8]), 0);
        assert_eq!(g.um().read_u64(old).unwrap(), libc::SIG_DFL as u64);
        assert_eq!(g.call(Sysno::rt_sigaction, &[pipe, 0, old, 8]), 0);
        assert_eq!(g.um().read_u64(old).unwrap(), libc::SIG_IGN as u64);
        assert_eq!(g.um().read_u64(old + 8).unwrap(), 0x0400_0000);
        assert_eq!(
            g.call(Sysno::rt_sigaction, &[libc::SIGKILL as u64, act, 0, 8]),
            err(Errno::EINVAL)
        );
        assert_eq!(
            g.call(Sysno::rt_sigaction, &[pipe, act, 0, 4]),
            err(Errno::EINVAL)
        );
        assert_eq!(
            g.call(Sysno::rt_sigaction, &[pipe, 0x10, 0, 8]),
            err(Errno::EFAULT)
        );
    }

    #[test]
    fn sigprocmask_and_sigaltstack_round_trip() {
        let mut g = Guest::new();
        g.um().write_u64(SCRATCH, u64::MAX).unwrap();
        assert_eq!(
            g.call(
                Sysno::rt_sigprocmask,
                &[libc::SIG_BLOCK as u64, SCRATCH, 0, 8]
            ),
            0
        );
        assert_eq!(g.call(Sysno::rt_sigprocmask, &[0, 0, SCRATCH + 8, 8]), 0);
        assert_eq!(g.um().read_u64(SCRATCH + 8).unwrap(), !UNBLOCKABLE);
        assert_eq!(
            g.call(Sysno::rt_sigprocmask, &[7, SCRATCH, 0, 8]),
            err(Errno::EINVAL)
        );
        assert_eq!(g.call(Sysno::sigaltstack, &[0, SCRATCH]), 0);
        assert_eq!(
            g.um().read_u32(SCRATCH + 8).unwrap(),
            libc::SS_DISABLE as u32
        );
        let ss = SCRATCH + 0x100;
        g.um().write_u64(ss, 0x50_0000).unwrap();
        g.um().write_u64(ss + 8, 0).unwrap();
        g.um().write_u64(ss + 16, 0x8000).unwrap();
        assert_eq!(g.call(Sysno::sigaltstack, &[ss, 0]), 0);
        assert_eq!(g.call(Sysno::sigaltstack, &[0, SCRATCH]), 0);
        assert_eq!(g.um().read_u64(SCRATCH + 16).unwrap(), 0x8000);
        g.um().write_u64(ss + 16, 100).unwrap();
        assert_eq!(g.call(Sysno::sigaltstack, &[ss, 0]), err(Errno::ENOMEM));
    }

    extern "C" fn ignore_signal(_: libc::c_int) {}

    #[test]
    fn pause_returns_eintr_when_the_monitor_thread_is_interrupted() {
        // As vmm-core's --timeout kick does: a handler without SA_RESTART, then a signal
        // to the vCPU thread.
        // SAFETY: installs a handler that does nothing for a signal only this test uses.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = ignore_signal as *const () as usize;
            assert_eq!(
                libc::sigaction(libc::SIGUSR2, &act, std::ptr::null_mut()),
                0
            );
        }
        let (result_tx, result_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut g = Guest::new();
            result_tx.send(g.call(Sysno::pause, &[])).unwrap();
            // Stay alive until the kicks have stopped, so none targets a dead thread.
            stop_rx.recv().unwrap();
        });
        let pthread = std::os::unix::thread::JoinHandleExt::as_pthread_t(&thread);
        // Keep kicking until the result is in: the first kick may land before pause.
        let result = loop {
            if let Ok(r) = result_rx.try_recv() {
                break r;
            }
            // SAFETY: the thread is alive: it waits on `stop_rx` before it ends.
            unsafe { libc::pthread_kill(pthread, libc::SIGUSR2) };
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        stop_tx.send(()).unwrap();
        thread.join().unwrap();
        assert_eq!(result, err(Errno::EINTR));
    }

    #[test]
    fn a_fatal_signal_to_self_ends_the_guest() {
        let mut g = Guest::new();
        assert_eq!(g.call(Sysno::kill, &[1, 0]), 0);
        assert_eq!(
            g.call(Sysno::kill, &[1, libc::SIGCHLD as u64]),
            0,
            "ignored by default"
        );
        assert_eq!(g.call(Sysno::kill, &[77, 9]), err(Errno::ESRCH));
        let abrt = libc::SIGABRT as u64;
        let r = g.handler.handle(
            &g.mem,
            &mut g.cpu,
            Sysno::tgkill as u64,
            [1, 1, abrt, 0, 0, 0],
        );
        assert_eq!(r, SyscallAction::Exit(128 + libc::SIGABRT));
    }
}
