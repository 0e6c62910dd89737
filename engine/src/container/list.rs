//! `list`: every container under the state root, with its refreshed status.

use super::state::ContainerRecord;
use super::{ContainerError, Runtime};

impl Runtime {
    /// The records of all containers, sorted by id (unreadable ones are skipped).
    pub fn list(&self) -> Result<Vec<ContainerRecord>, ContainerError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ContainerError::Io("reading", self.root.clone(), e)),
        };
        let mut records: Vec<ContainerRecord> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .filter_map(|id| self.load(&id).ok())
            .collect();
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(records)
    }
}
