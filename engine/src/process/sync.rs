//! The pipes between the engine and the container's init: the engine says "go" once the
//! init is in its cgroup (and has its uid maps); the init answers one JSON line, ready
//! with its phase timings or the error that stopped it. The init's end is close-on-exec,
//! so end-of-file after "ready" means execve succeeded.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};

use super::ProcessError;
use crate::timings::Phase;

/// The init's one report to the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Report {
    /// Prepared; waiting for start. Carries the init's own phases.
    Ready(Vec<Phase>),
    /// Preparation or exec failed.
    Error(String),
}

/// Both pipes, made before the clone; each side keeps its two ends.
#[derive(Debug)]
pub struct Pipes {
    /// Engine → init: read end (init's).
    pub go_read: OwnedFd,
    /// Engine → init: write end (engine's).
    pub go_write: OwnedFd,
    /// Init → engine: read end (engine's).
    pub report_read: OwnedFd,
    /// Init → engine: write end (init's).
    pub report_write: OwnedFd,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ProcessError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| ProcessError::Sync("creating a pipe", e.into()))
}

impl Pipes {
    /// Creates both pipes, close-on-exec.
    pub fn new() -> Result<Self, ProcessError> {
        let (go_read, go_write) = pipe()?;
        let (report_read, report_write) = pipe()?;
        Ok(Pipes {
            go_read,
            go_write,
            report_read,
            report_write,
        })
    }
}

/// Engine side: lets the init go on.
pub fn send_go(go_write: &OwnedFd) -> Result<(), ProcessError> {
    std::fs::File::from(
        go_write
            .try_clone()
            .map_err(|e| ProcessError::Sync("dup", e))?,
    )
    .write_all(b"g")
    .map_err(|e| ProcessError::Sync("telling the container init to go on", e))
}

/// Init side: waits for "go"; `false` when the engine closed the pipe instead (gave up).
pub fn wait_go(go_read: &OwnedFd) -> bool {
    let mut byte = [0u8; 1];
    matches!(nix::unistd::read(go_read, &mut byte), Ok(1))
}

/// Init side: sends one report line.
pub fn send_report(report_write: &OwnedFd, report: &Report) {
    let mut line = serde_json::to_vec(report).unwrap_or_default();
    line.push(b'\n');
    if let Ok(fd) = report_write.try_clone() {
        // The engine may be gone (after `create` exits): nothing to tell then.
        let _ = std::fs::File::from(fd).write_all(&line);
    }
}

/// Engine side: reads one report; `None` at end-of-file (the init exec'd or died).
///
/// The init writes one line (atomically: shorter than PIPE_BUF) and then waits for the
/// engine, so a read never holds more than one report.
pub fn read_report(report_read: &mut std::fs::File) -> Result<Option<Report>, ProcessError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(b"\n") {
        match report_read.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ProcessError::Sync("reading the container init's report", e)),
        }
    }
    if buf.trim_ascii().is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(buf.trim_ascii())
        .map(Some)
        .map_err(|e| {
            ProcessError::Sync(
                "parsing the container init's report",
                std::io::Error::other(e),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_crosses_the_pipe_and_eof_reads_as_none() {
        let pipes = Pipes::new().unwrap();
        let report = Report::Ready(vec![Phase {
            name: "rootfs_overlay".into(),
            us: 12.5,
        }]);
        send_report(&pipes.report_write, &report);
        drop(pipes.report_write);
        let mut read = std::fs::File::from(pipes.report_read);
        assert_eq!(read_report(&mut read).unwrap(), Some(report));
        assert_eq!(read_report(&mut read).unwrap(), None);
    }

    #[test]
    fn closing_the_go_pipe_tells_the_init_to_give_up() {
        let pipes = Pipes::new().unwrap();
        drop(pipes.go_write);
        assert!(!wait_go(&pipes.go_read));
    }
}
