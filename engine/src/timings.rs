//! How long each startup step of a container took: recorded in order, saved as
//! `timings.json` in the container's state dir and printed as one `TIMINGS {json}` line
//! on stderr with `--timings` (the bench harness parses it).

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The file name in the container's state dir.
pub const FILE_NAME: &str = "timings.json";

/// One startup step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Step name: cgroups, clone_namespaces, network, rootfs_overlay, pivot_root_mounts,
    /// process, exec (or start for `engine-oci start`).
    pub name: String,
    /// Duration in microseconds.
    pub us: f64,
}

/// The steps of one container's startup, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Steps in the order they ran.
    pub phases: Vec<Phase>,
}

impl Timings {
    /// Records `name` as having run from `since` until now.
    pub fn record(&mut self, name: &str, since: Instant) {
        self.phases.push(Phase {
            name: name.into(),
            us: since.elapsed().as_secs_f64() * 1e6,
        });
    }

    /// Runs `step`, recording its duration under `name`.
    pub fn time<T>(&mut self, name: &str, step: impl FnOnce() -> T) -> T {
        let since = Instant::now();
        let out = step();
        self.record(name, since);
        out
    }

    /// The line printed with `--timings`.
    pub fn line(&self) -> String {
        format!(
            "TIMINGS {}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    /// Writes `timings.json` into `dir`.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::write(dir.join(FILE_NAME), serde_json::to_vec(self)?)
    }

    /// Reads `timings.json` from `dir` (empty when missing or unreadable).
    pub fn load(dir: &Path) -> Self {
        std::fs::read(dir.join(FILE_NAME))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// Test hook: `ISOLAB_FAIL_AT=<phase>` makes that startup step fail, and
/// `ISOLAB_FAIL_AT=kill:<phase>` kills the engine itself (SIGKILL) before it, so tests can
/// check that every step is undone and that `delete --force` cleans up a killed create.
pub const FAIL_AT_ENV: &str = "ISOLAB_FAIL_AT";

/// What the failure hook asks of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// Run the step.
    No,
    /// Fail the step.
    Fail,
    /// Kill the engine before the step.
    Kill,
}

/// Whether `phase` should fail, given the hook's value.
pub fn injected(hook: Option<&str>, phase: &str) -> Injected {
    match hook {
        Some(h) if h == phase => Injected::Fail,
        Some(h) if h.strip_prefix("kill:") == Some(phase) => Injected::Kill,
        _ => Injected::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_is_the_agreed_format_and_round_trips() {
        let mut t = Timings::default();
        t.phases.push(Phase {
            name: "cgroups".into(),
            us: 123.0,
        });
        assert_eq!(
            t.line(),
            r#"TIMINGS {"phases":[{"name":"cgroups","us":123.0}]}"#
        );
        let dir = tempfile::tempdir().unwrap();
        t.save(dir.path()).unwrap();
        assert_eq!(Timings::load(dir.path()), t);
    }

    #[test]
    fn the_failure_hook_names_one_step() {
        assert_eq!(injected(Some("network"), "network"), Injected::Fail);
        assert_eq!(injected(Some("kill:network"), "network"), Injected::Kill);
        assert_eq!(injected(Some("network"), "cgroups"), Injected::No);
        assert_eq!(injected(None, "cgroups"), Injected::No);
    }
}
