//! One running instance as the host sees it: a process group started by a model's
//! command, whose stdout is watched for the `READY` line, whose exit is awaited with a
//! deadline, and which is killed, never leaked, when anything goes wrong.

pub mod procfs;
pub mod sys;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

pub use sys::Reaped;

/// Starting or watching an instance failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The command could not be started.
    #[error("starting {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// No `READY` line before the deadline.
    #[error("no READY line within {0:?} (killed it; is the workload hanging?)")]
    ReadyTimeout(Duration),
    /// The instance ended before printing `READY`.
    #[error("ended before READY ({status}){stderr}")]
    EndedEarly {
        /// How it ended.
        status: String,
        /// The end of its stderr, prefixed for display.
        stderr: String,
    },
    /// The instance did not end before the deadline.
    #[error("did not exit within {0:?} (killed it; is the workload hanging?)")]
    ExitTimeout(Duration),
    /// Waiting for the process failed.
    #[error("waiting for pid {pid}: {source}")]
    Wait {
        /// The process.
        pid: i32,
        /// Why.
        source: std::io::Error,
    },
}

/// How an instance ended, with everything it printed.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit status and host cost of the launcher and all it reaped.
    pub reaped: Reaped,
    /// From launch to the launcher being reaped.
    pub launch_to_exit: Duration,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

impl Finished {
    /// True for exit code 0.
    pub fn success(&self) -> bool {
        self.reaped.code == Some(0)
    }

    /// `exit code N` or `killed by signal N`.
    pub fn status_text(&self) -> String {
        status_text(&self.reaped)
    }
}

fn status_text(r: &Reaped) -> String {
    match (r.code, r.signal) {
        (Some(c), _) => format!("exit code {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown status".to_owned(),
    }
}

/// A launched instance.
#[derive(Debug)]
pub struct Instance {
    pid: i32,
    started: Instant,
    lines: Receiver<String>,
    stdout: String,
    stderr: Receiver<String>,
    exit: Receiver<std::io::Result<(Reaped, Instant)>>,
    reaped: bool,
}

impl Instance {
    /// Starts `cmd` in its own process group with stdout and stderr captured.
    pub fn spawn(mut cmd: Command) -> Result<Self, ProcessError> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        sys::isolate_child(&mut cmd);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|source| ProcessError::Spawn { program, source })?;
        let pid = child.id() as i32;
        let (out, err) = (child.stdout.take(), child.stderr.take());
        Ok(Self {
            pid,
            started,
            lines: read_lines(out),
            stdout: String::new(),
            stderr: read_all(err),
            exit: wait_in_thread(pid),
            reaped: false,
        })
    }

    /// The launcher's pid (also the process group of the instance).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// When the instance was launched.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits for the `READY` line; returns the time from launch. On timeout the instance
    /// is killed; when it ends first, the error says how.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<Duration, ProcessError> {
        let deadline = self.started + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let at = self.started.elapsed();
                    let is_ready = line.trim() == workload::result::READY_LINE;
                    self.stdout.push_str(&line);
                    if is_ready {
                        return Ok(at);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    return Err(ProcessError::ReadyTimeout(timeout));
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.ended_early(timeout)),
            }
        }
    }

    fn ended_early(&mut self, timeout: Duration) -> ProcessError {
        match self.wait_exit(timeout) {
            Ok(f) => ProcessError::EndedEarly {
                status: f.status_text(),
                stderr: tail(&f.stderr),
            },
            Err(e) => e,
        }
    }

    /// Sends `signal` to the instance's whole process group.
    pub fn signal(&self, signal: Signal) {
        if !self.reaped {
            // ESRCH (already gone) is fine: there is nothing left to stop.
            let _ = killpg(Pid::from_raw(self.pid), signal);
        }
    }

    /// Kills the whole process group.
    pub fn kill(&self) {
        self.signal(Signal::SIGKILL);
    }

    /// Waits until the launcher ends (killing it at `timeout` after launch) and collects
    /// its output.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Finished, ProcessError> {
        let left = (self.started + timeout).saturating_duration_since(Instant::now());
        let (reaped, at) = match self.exit.recv_timeout(left) {
            Ok(r) => r,
            Err(_) => {
                self.kill();
                let _ = self.exit.recv_timeout(Duration::from_secs(5));
                self.reaped = true;
                return Err(ProcessError::ExitTimeout(timeout));
            }
        }
        .map_err(|source| ProcessError::Wait {
            pid: self.pid,
            source,
        })?;
        self.reaped = true;
        // Stragglers that escaped the group may hold the pipes; never wait on them long.
        let grace = Duration::from_secs(2);
        while let Ok(line) = self.lines.recv_timeout(grace) {
            self.stdout.push_str(&line);
        }
        Ok(Finished {
            reaped,
            launch_to_exit: at - self.started,
            stdout: std::mem::take(&mut self.stdout),
            stderr: self.stderr.recv_timeout(grace).unwrap_or_default(),
        })
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            let _ = self.exit.recv_timeout(Duration::from_secs(5));
        }
    }
}

/// The last lines of `stderr`, as `: ...` for an error message, or nothing. The
/// machine-readable `STATS`/`TIMINGS` lines are left out and long lines shortened.
pub fn tail(stderr: &str) -> String {
    let lines: Vec<String> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("STATS ") && !l.starts_with("TIMINGS "))
        .map(|l| match l.char_indices().nth(240) {
            Some((i, _)) => format!("{}...", &l[..i]),
            None => l.to_owned(),
        })
        .collect();
    let start = lines.len().saturating_sub(3);
    if lines.is_empty() {
        String::new()
    } else {
        format!(": {}", lines[start..].join(" | "))
    }
}

fn read_lines(out: Option<impl Read + Send + 'static>) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = out {
        std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                if tx.send(std::mem::take(&mut line)).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

fn read_all(err: Option<impl Read + Send + 'static>) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut err) = err {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
    }
    rx
}

fn wait_in_thread(pid: i32) -> Receiver<std::io::Result<(Reaped, Instant)>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = sys::wait4(pid).map(|r| (r, Instant::now()));
        let _ = tx.send(r);
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn ready_then_exit_reports_output_and_status() {
        let mut i = Instance::spawn(sh("echo hello; echo READY; echo bye >&2; exit 3")).unwrap();
        i.wait_ready(Duration::from_secs(10)).unwrap();
        let f = i.wait_exit(Duration::from_secs(10)).unwrap();
        assert_eq!(f.reaped.code, Some(3));
        assert!(f.stdout.contains("hello") && f.stdout.contains("READY"));
        assert_eq!(f.stderr.trim(), "bye");
        assert!(f.launch_to_exit > Duration::ZERO);
    }

    #[test]
    fn hanging_instance_is_killed_at_the_deadline() {
        let mut i = Instance::spawn(sh("sleep 600")).unwrap();
        let pid = i.pid();
        let err = i.wait_ready(Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, ProcessError::ReadyTimeout(_)), "{err}");
        drop(i);
        // The whole group is gone: no process is left in it.
        assert!(procfs::comm(pid).is_none());
    }

    #[test]
    fn crash_before_ready_is_an_error_with_stderr() {
        let mut i = Instance::spawn(sh("echo boom >&2; kill -SEGV $$")).unwrap();
        let err = i
            .wait_ready(Duration::from_secs(10))
            .unwrap_err()
            .to_string();
        assert!(err.contains("signal 11") && err.contains("boom"), "{err}");
    }

    #[test]
    fn tail_skips_stats_lines_and_shortens() {
        let long = "x".repeat(500);
        let t = tail(&format!("a\nb\n{long}\nSTATS {{}}\n"));
        assert!(
            t.starts_with(": a | b | xxx") && t.ends_with("...") && !t.contains("STATS"),
            "{t}"
        );
        assert_eq!(tail("\n"), "");
    }

    #[test]
    fn missing_program_is_a_clear_error() {
        let err = Instance::spawn(Command::new("/nonexistent/isolab-x")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/isolab-x"));
    }
}
