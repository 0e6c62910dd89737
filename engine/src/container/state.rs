//! A container's saved state (`state.json` in its state dir): the OCI state fields plus
//! what the runtime needs later (the pid's start time against pid reuse, the cgroup path,
//! the network handle). `state` prints the OCI part, through oci-spec's `State`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{ContainerState, State};
use serde::{Deserialize, Serialize};

use super::{ContainerError, Runtime};
use crate::network::NetworkHandle;

/// The OCI runtime spec version this runtime implements.
pub const OCI_VERSION: &str = "1.2.0";
const FILE_NAME: &str = "state.json";

/// Everything saved about one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The container's id.
    pub id: String,
    /// The last saved status (refreshed against the process on load).
    pub status: ContainerState,
    /// The init's pid in the host's pid namespace.
    pub pid: Option<i32>,
    /// `starttime` of that pid in /proc/<pid>/stat, to tell a reused pid apart.
    pub pid_start_time: Option<u64>,
    /// The absolute bundle path.
    pub bundle: PathBuf,
    /// config.json's annotations.
    pub annotations: HashMap<String, String>,
    /// Seconds since the epoch when create began.
    pub created_unix: u64,
    /// The cgroup path, once the cgroup was made.
    pub cgroup_path: Option<String>,
    /// The network, once set up.
    pub network: Option<NetworkHandle>,
}

/// `starttime` (field 22) of /proc/<pid>/stat, unless the process is gone or a zombie.
pub fn live_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its ')' are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl ContainerRecord {
    /// Whether the recorded init still runs (same pid, same start time).
    pub fn init_alive(&self) -> bool {
        match (self.pid, self.pid_start_time) {
            (Some(pid), Some(start)) => live_start_time(pid) == Some(start),
            _ => false,
        }
    }

    /// The status now: a created or running container whose init is gone is stopped.
    pub fn refresh(&mut self) {
        match self.status {
            ContainerState::Created | ContainerState::Running if !self.init_alive() => {
                self.status = ContainerState::Stopped;
            }
            ContainerState::Creating if self.pid.is_some() && !self.init_alive() => {
                self.status = ContainerState::Stopped;
            }
            _ => {}
        }
    }

    /// The OCI state of the container.
    pub fn oci_state(&self) -> State {
        let alive = matches!(
            self.status,
            ContainerState::Created | ContainerState::Running
        );
        let mut state = State::default();
        state
            .set_version(OCI_VERSION.into())
            .set_id(self.id.clone())
            .set_status(self.status)
            .set_pid(self.pid.filter(|_| alive))
            .set_bundle(self.bundle.clone())
            .set_annotations(Some(self.annotations.clone()));
        state
    }

    /// Saves into `dir` atomically (write then rename).
    pub fn save(&self, dir: &Path) -> Result<(), ContainerError> {
        let tmp = dir.join(".state.json.tmp");
        let json = serde_json::to_vec(self)
            .map_err(|e| ContainerError::CorruptState(self.id.clone(), e.to_string()))?;
        std::fs::write(&tmp, json).map_err(|e| ContainerError::Io("writing", tmp.clone(), e))?;
        std::fs::rename(&tmp, dir.join(FILE_NAME))
            .map_err(|e| ContainerError::Io("renaming", tmp, e))
    }
}

impl Runtime {
    /// Loads container `id`'s record, with its status refreshed.
    pub fn load(&self, id: &str) -> Result<ContainerRecord, ContainerError> {
        let dir = self.state_dir(id)?;
        let path = dir.join(FILE_NAME);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContainerError::NotFound(id.into()))
            }
            Err(e) => return Err(ContainerError::Io("reading", path, e)),
        };
        let mut record: ContainerRecord = serde_json::from_slice(&bytes)
            .map_err(|e| ContainerError::CorruptState(id.into(), e.to_string()))?;
        record.refresh();
        Ok(record)
    }

    /// The OCI state of container `id`.
    pub fn state(&self, id: &str) -> Result<State, ContainerError> {
        Ok(self.load(id)?.oci_state())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: ContainerState, pid: Option<i32>) -> ContainerRecord {
        ContainerRecord {
            id: "c1".into(),
            status,
            pid,
            pid_start_time: pid.and_then(live_start_time),
            bundle: "/b".into(),
            annotations: HashMap::new(),
            created_unix: 0,
            cgroup_path: None,
            network: None,
        }
    }

    #[test]
    fn oci_state_has_the_spec_fields_and_pid_only_while_alive() {
        let me = std::process::id() as i32;
        let json =
            serde_json::to_value(record(ContainerState::Running, Some(me)).oci_state()).unwrap();
        assert_eq!(json["ociVersion"], OCI_VERSION);
        assert_eq!(json["id"], "c1");
        assert_eq!(json["status"], "running");
        assert_eq!(json["pid"], me);
        assert_eq!(json["bundle"], "/b");
        let stopped =
            serde_json::to_value(record(ContainerState::Stopped, Some(me)).oci_state()).unwrap();
        assert!(stopped.get("pid").is_none());
    }

    #[test]
    fn a_dead_or_reused_pid_reads_as_stopped() {
        let mut r = record(ContainerState::Running, Some(std::process::id() as i32));
        r.refresh();
        assert_eq!(r.status, ContainerState::Running);
        r.pid_start_time = r.pid_start_time.map(|t| t + 1);
        r.refresh();
        assert_eq!(r.status, ContainerState::Stopped);
    }
}
