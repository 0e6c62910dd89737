//! `kill`: send a signal (by name, with or without SIG, or by number) to the init.

use std::str::FromStr;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::ContainerState;

use super::{ContainerError, Runtime};
use crate::cgroups::Cgroup;

/// Parses `KILL`, `SIGKILL`, `kill` or `9`.
pub fn parse_signal(text: &str) -> Result<Signal, ContainerError> {
    let bad = || ContainerError::BadSignal(text.into());
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| bad())
}

impl Runtime {
    /// Sends `signal` to container `id`'s init (created or running only).
    pub fn kill(&self, id: &str, signal: Signal) -> Result<(), ContainerError> {
        let record = self.load(id)?;
        let (ContainerState::Created | ContainerState::Running, Some(pid)) =
            (record.status, record.pid)
        else {
            return Err(ContainerError::BadState {
                op: "kill",
                id: id.into(),
                status: record.status.to_string(),
            });
        };
        kill(Pid::from_raw(pid), signal).map_err(|e| ContainerError::Kill(id.into(), e))
    }

    /// Sends `signal` to every process of container `id`'s cgroup (runc's `kill --all`).
    pub fn kill_all(&self, id: &str, signal: Signal) -> Result<(), ContainerError> {
        let record = self.load(id)?;
        let path = match (record.status, &record.cgroup_path) {
            (ContainerState::Created | ContainerState::Running, Some(path)) => path.clone(),
            _ => {
                return Err(ContainerError::BadState {
                    op: "kill",
                    id: id.into(),
                    status: record.status.to_string(),
                })
            }
        };
        let cgroup = Cgroup::open(&super::cgroup_root()?, &path)?;
        for pid in cgroup.pids() {
            // A process may exit meanwhile: that is not an error.
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(ContainerError::Kill(id.into(), e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_and_number() {
        for text in ["KILL", "SIGKILL", "kill", "9"] {
            assert_eq!(parse_signal(text).unwrap(), Signal::SIGKILL, "{text}");
        }
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        for bad in ["NOPE", "999", "", "-1"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
