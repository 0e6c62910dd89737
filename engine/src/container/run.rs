//! `run`: create, start, wait for the program to exit, delete; and the wait itself, which
//! the docker-like front end uses too.

use std::path::Path;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::create::{CreateOptions, Created};
use super::{ContainerError, Runtime};
use crate::cgroups::Cgroup;
use crate::process::sync::{self, Report};
use crate::process::ProcessError;
use crate::timings::Timings;

/// How a container's program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code, or 128 + signal number, as a shell reports it; `None` when the init was
    /// not this process's child and its status could not be collected.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// The cgroup's OOM killer killed a process of the container.
    pub oom_killed: bool,
}

fn exit_of(status: WaitStatus) -> Option<(i32, Option<i32>)> {
    match status {
        WaitStatus::Exited(_, code) => Some((code, None)),
        WaitStatus::Signaled(_, sig, _) => Some((128 + sig as i32, Some(sig as i32))),
        _ => None,
    }
}

/// Waits for `pid`: waitpid when it is our child, else polls until it is gone.
fn wait_pid(pid: Pid) -> (Option<i32>, Option<i32>) {
    loop {
        match waitpid(pid, None) {
            Ok(status) => {
                if let Some((code, sig)) = exit_of(status) {
                    return (Some(code), sig);
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    while super::state::live_start_time(pid.as_raw()).is_some() {
        std::thread::sleep(Duration::from_millis(10));
    }
    (None, None)
}

/// The init that `run` forwards signals to (0: none).
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(signal: libc::c_int) {
    let pid = FORWARD_TO.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe and takes plain integers.
        unsafe { libc::kill(pid, signal) };
    }
}

/// The signals `run` forwards.
const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// While alive, the signals a user sends to `run` (Ctrl-C, `kill`) reach the container's
/// init, as runc does, instead of killing the engine and orphaning the container. Dropping
/// it puts the caller's own handlers back (the library may run inside a longer-lived
/// front end).
struct SignalForwarding {
    previous: Vec<(Signal, SigAction)>,
}

impl SignalForwarding {
    fn to(pid: Pid) -> Self {
        FORWARD_TO.store(pid.as_raw(), Ordering::Relaxed);
        let action = SigAction::new(
            SigHandler::Handler(forward),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let mut previous = Vec::new();
        for signal in FORWARDED {
            // SAFETY: `forward` only loads an atomic and calls kill(2), both async-signal-safe.
            if let Ok(old) = unsafe { sigaction(signal, &action) } {
                previous.push((signal, old));
            }
        }
        SignalForwarding { previous }
    }
}

impl Drop for SignalForwarding {
    fn drop(&mut self) {
        for (signal, old) in &self.previous {
            // SAFETY: reinstalls the action that was in place before `to`, unchanged.
            let _ = unsafe { sigaction(*signal, old) };
        }
        FORWARD_TO.store(0, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Waits until container `id`'s program exits.
    pub fn wait(&self, id: &str) -> Result<ExitInfo, ContainerError> {
        let record = self.load(id)?;
        let (code, signal) = match record.pid {
            Some(pid) => wait_pid(Pid::from_raw(pid)),
            None => (None, None),
        };
        let oom_killed = match &record.cgroup_path {
            Some(path) => super::cgroup_root()
                .and_then(|root| Cgroup::open(&root, path))
                .is_ok_and(|cg| cg.oom_killed()),
            None => false,
        };
        Ok(ExitInfo {
            code,
            signal,
            oom_killed,
        })
    }

    /// Starts a container this process created and waits until its program runs
    /// (records the `exec` phase: start until the init's pipe closes on execve).
    pub fn start_created(
        &self,
        id: &str,
        created: &mut Created,
    ) -> Result<Timings, ContainerError> {
        let since = Instant::now();
        self.release_init(id)?;
        match sync::read_report(&mut created.report)? {
            None => {}
            Some(Report::Error(msg)) => return Err(ProcessError::InitFailed(msg).into()),
            Some(Report::Ready(_)) => {
                return Err(ProcessError::InitFailed("unexpected second ready".into()).into())
            }
        }
        let mut t = created.timings.clone();
        t.record("exec", since);
        let _ = t.save(&created.state_dir);
        Ok(t)
    }

    /// `run`: create, start, wait, delete. `on_started` gets the timings once the program runs.
    pub fn run(
        &self,
        id: &str,
        bundle: &Path,
        opts: &CreateOptions,
        on_started: impl FnOnce(&Timings),
    ) -> Result<ExitInfo, ContainerError> {
        let mut created = self.create(id, bundle, opts)?;
        let forwarding = SignalForwarding::to(created.pid);
        let started = self.start_created(id, &mut created);
        let result = started.map(|t| on_started(&t)).and_then(|()| self.wait(id));
        drop(forwarding);
        let cleanup = self.delete(id, true);
        let info = result?;
        cleanup?;
        Ok(info)
    }
}
