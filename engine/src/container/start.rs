//! `start`: a created container's init is blocked reading its exec fifo; one byte lets it
//! execve the container's program.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Instant;

use oci_spec::runtime::ContainerState;

use super::{ContainerError, Runtime};
use crate::timings::Timings;

impl Runtime {
    /// Starts created container `id`.
    pub fn start(&self, id: &str) -> Result<(), ContainerError> {
        let since = Instant::now();
        let dir = self.release_init(id)?;
        let mut t = Timings::load(&dir);
        t.record("start", since);
        let _ = t.save(&dir);
        Ok(())
    }

    /// `start` without its timings record (`run` records `exec` instead): lets the init
    /// exec and marks the container running. Returns its state dir.
    pub(crate) fn release_init(&self, id: &str) -> Result<std::path::PathBuf, ContainerError> {
        let mut record = self.load(id)?;
        if record.status != ContainerState::Created {
            return Err(ContainerError::BadState {
                op: "start",
                id: id.into(),
                status: record.status.to_string(),
            });
        }
        let dir = self.state_dir(id)?;
        let fifo = Runtime::exec_fifo(&dir);
        // Non-blocking: ENXIO means no reader, i.e. the init is gone, instead of a hang.
        let mut writer = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .map_err(|e| {
                ContainerError::Io(
                    "opening the exec fifo (is the container's init alive?)",
                    fifo.clone(),
                    e,
                )
            })?;
        writer
            .write_all(b"s")
            .map_err(|e| ContainerError::Io("writing", fifo.clone(), e))?;
        let _ = std::fs::remove_file(&fifo);
        record.status = ContainerState::Running;
        record.save(&dir)?;
        Ok(dir)
    }
}
