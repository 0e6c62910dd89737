//! The container's init, in the cloned child: wait for the engine's go, unshare the cgroup
//! namespace, bring its loopback up (network `none`), build the rootfs, set the hostname and credentials, report ready, wait for
//! `start` on the exec fifo, then execve. Each error is reported to the engine and ends
//! the child; its mounts vanish with its mount namespace.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::sched::CloneFlags;

use super::plan::InitPlan;
use super::sync::{self, Report};
use super::{creds, exec, ProcessError};
use crate::rootfs;
use crate::syscall::Syscall;
use crate::timings::{self, Injected, Timings};

/// The init's ends of the pipes and the path of the exec fifo.
#[derive(Debug)]
pub struct InitChannels {
    /// Engine → init.
    pub go_read: OwnedFd,
    /// Init → engine.
    pub report_write: OwnedFd,
    /// The fifo `start` writes to.
    pub exec_fifo: PathBuf,
    /// The failure hook's value (tests only).
    pub fail_at: Option<String>,
}

fn step<T>(
    t: &mut Timings,
    hook: Option<&str>,
    name: &str,
    f: impl FnOnce() -> Result<T, ProcessError>,
) -> Result<T, ProcessError> {
    if timings::injected(hook, name) != Injected::No {
        return Err(ProcessError::Init(format!("injected failure at {name}")));
    }
    t.time(name, f)
}

/// The clone kept the engine's host ids, which the new user namespace does not map; switch
/// to its root (mapped by now) so the mounts below are made as a mapped user.
fn become_userns_root() -> Result<(), ProcessError> {
    use nix::unistd::{setresgid, setresuid, Gid, Uid};
    let (g, u) = (Gid::from_raw(0), Uid::from_raw(0));
    setresgid(g, g, g)
        .map_err(|e| ProcessError::Init(format!("setresgid 0 in the user namespace: {e}")))?;
    setresuid(u, u, u)
        .map_err(|e| ProcessError::Init(format!("setresuid 0 in the user namespace: {e}")))
}

/// Everything between "go" and "ready"; returns the open exec fifo.
fn prepare(
    plan: &InitPlan,
    ch: &InitChannels,
    sys: &dyn Syscall,
    t: &mut Timings,
) -> Result<File, ProcessError> {
    let hook = ch.fail_at.as_deref();
    // Opened before pivot_root hides the state dir and while still the
    // fifo's owner (before the switch to the user namespace's root); read-write so opening never blocks.
    let fifo = File::options()
        .read(true)
        .write(true)
        .open(&ch.exec_fifo)
        .map_err(|e| ProcessError::Sync("opening the exec fifo", e))?;
    if plan.clone_flags.contains(CloneFlags::CLONE_NEWUSER) {
        become_userns_root()?;
    }
    if plan.cgroup_ns {
        sys.unshare(CloneFlags::CLONE_NEWCGROUP)?;
    }
    if plan.loopback_up {
        step(t, hook, "network", || Ok(sys.set_link_up("lo")?))?;
    }
    let rootfs_err = |e: rootfs::RootfsError| ProcessError::Init(e.to_string());
    step(t, hook, "rootfs_overlay", || {
        rootfs::prepare_root(sys, &plan.rootfs).map_err(rootfs_err)
    })?;
    step(t, hook, "pivot_root_mounts", || {
        rootfs::mount_and_pivot(sys, &plan.rootfs).map_err(rootfs_err)
    })?;
    step(t, hook, "process", || {
        if let Some(name) = &plan.hostname {
            sys.sethostname(name)?;
        }
        creds::apply(&plan.process)?;
        sys.chdir(&plan.process.cwd)?;
        Ok(())
    })?;
    Ok(fifo)
}

/// Blocks until `start` writes a byte into the fifo.
fn wait_start(mut fifo: File) -> Result<(), ProcessError> {
    let mut byte = [0u8; 1];
    fifo.read_exact(&mut byte)
        .map_err(|e| ProcessError::Sync("waiting for start", e))
}

/// The child's main: returns its exit status when anything fails.
pub fn run(plan: &InitPlan, ch: InitChannels, sys: &dyn Syscall) -> i32 {
    // Until ready, a dying engine takes the half-made container with it.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let InitChannels {
        go_read,
        report_write,
        ..
    } = &ch;
    if !sync::wait_go(go_read) {
        return 1;
    }
    let mut t = Timings::default();
    let fifo = match prepare(plan, &ch, sys, &mut t) {
        Ok(f) => f,
        Err(e) => {
            sync::send_report(report_write, &Report::Error(e.to_string()));
            return 1;
        }
    };
    // Cleared before "ready": `create` exits as soon as it reads it.
    let _ = nix::sys::prctl::set_pdeathsig(None);
    sync::send_report(report_write, &Report::Ready(t.phases));
    if let Err(e) = wait_start(fifo) {
        sync::send_report(report_write, &Report::Error(e.to_string()));
        return 1;
    }
    if timings::injected(ch.fail_at.as_deref(), "exec") != Injected::No {
        sync::send_report(
            report_write,
            &Report::Error("injected failure at exec".into()),
        );
        return 1;
    }
    let err = exec::exec(&plan.process);
    eprintln!("engine-oci: {err}");
    sync::send_report(report_write, &Report::Error(err.to_string()));
    127
}
