//! `delete`: remove a stopped container's network, cgroup and state dir; with `force`,
//! kill a created or running (or half-created) one first.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::ContainerState;

use super::state::ContainerRecord;
use super::{ContainerError, Runtime};
use std::path::Path;

use crate::cgroups::{Cgroup, CgroupError};
use crate::network::{self, NETWORK_ANNOTATION};

/// Kills the init and waits (up to ~2 s) until it is gone or a zombie.
fn kill_and_wait(record: &ContainerRecord) {
    let Some(pid) = record.pid.filter(|_| record.init_alive()) else {
        return;
    };
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    for _ in 0..400 {
        // Reap it when it is our child (a `run` in this process); else its parent does.
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        if !record.init_alive() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn release(record: &ContainerRecord, state_root: &Path) -> Result<(), ContainerError> {
    match record.network.clone() {
        Some(net) => net.teardown()?,
        // A create killed during a bridge setup saved no handle: remove what it may have made.
        None if record
            .annotations
            .get(NETWORK_ANNOTATION)
            .map(String::as_str)
            == Some("bridge") =>
        {
            network::teardown_leftovers(&record.id, state_root)?
        }
        None => {}
    }
    if let Some(path) = &record.cgroup_path {
        match Cgroup::open(&super::cgroup_root()?, path) {
            Ok(cgroup) => cgroup.destroy()?,
            Err(CgroupError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Runtime {
    /// Deletes container `id`; `force` kills it first when it is not stopped.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), ContainerError> {
        let record = self.load(id)?;
        if record.status != ContainerState::Stopped {
            if !force {
                return Err(ContainerError::BadState {
                    op: "delete",
                    id: id.into(),
                    status: record.status.to_string(),
                });
            }
            kill_and_wait(&record);
        }
        release(&record, &self.root)?;
        let dir = self.state_dir(id)?;
        std::fs::remove_dir_all(&dir).map_err(|e| ContainerError::Io("removing", dir, e))
    }
}
