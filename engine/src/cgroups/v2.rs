//! cgroup v2 (unified): controllers enabled in each parent's `cgroup.subtree_control`,
//! limits in one directory, OOM kills counted in `memory.events`.

use std::path::Path;

use super::files;
use super::resources::{Controller, Setting};
use super::CgroupError;

/// The controllers a container's cgroup gets on a v2 host.
pub(crate) const CONTROLLERS: [Controller; 3] =
    [Controller::Memory, Controller::Cpu, Controller::Pids];

/// Enables, in `parent`, those of `wanted` that `parent` offers (its `cgroup.controllers`),
/// so its children get their files. Already enabled controllers are left as they are.
pub(crate) fn enable_controllers(parent: &Path, wanted: &[Controller]) -> Result<(), CgroupError> {
    let offered = files::read(parent, "cgroup.controllers").unwrap_or_default();
    let enabled = files::read(parent, "cgroup.subtree_control").unwrap_or_default();
    let missing: Vec<String> = wanted
        .iter()
        .map(|c| c.name())
        .filter(|n| offered.split_whitespace().any(|o| o == *n))
        .filter(|n| !enabled.split_whitespace().any(|e| e == *n))
        .map(|n| format!("+{n}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    files::write(parent, "cgroup.subtree_control", &missing.join(" "))
}

/// Writes `settings` into the cgroup directory `dir`; optional files the kernel lacks
/// are skipped with a warning ([`files::write_setting`]).
pub(crate) fn apply(dir: &Path, settings: &[Setting]) -> Result<(), CgroupError> {
    for s in settings {
        files::write_setting(dir, s)?;
    }
    Ok(())
}

/// Whether the kernel OOM-killed a task of the cgroup at `dir`.
pub(crate) fn oom_killed(dir: &Path) -> bool {
    files::keyed_value(dir, "memory.events", "oom_kill").is_some_and(|n| n > 0)
}

/// The memory the cgroup at `dir` uses now, in bytes.
pub(crate) fn memory_current(dir: &Path) -> Option<u64> {
    files::read(dir, "memory.current")?.parse().ok()
}

/// Kills every task in `dir` at once through `cgroup.kill` (Linux 5.14+); `false` when
/// the kernel lacks it and the caller must signal task by task.
pub(crate) fn kill_all(dir: &Path) -> bool {
    dir.join("cgroup.kill").exists() && files::write(dir, "cgroup.kill", "1").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_offered_and_not_yet_enabled_controllers_are_written() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("cgroup.controllers"),
            "cpuset cpu io memory\n",
        )
        .unwrap();
        std::fs::write(tmp.path().join("cgroup.subtree_control"), "cpu\n").unwrap();
        enable_controllers(tmp.path(), &CONTROLLERS).unwrap();
        let written = std::fs::read_to_string(tmp.path().join("cgroup.subtree_control")).unwrap();
        assert_eq!(written, "+memory", "pids is not offered, cpu is already on");
    }

    #[test]
    fn oom_kill_count_decides() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("memory.events"), "oom 1\noom_kill 0\n").unwrap();
        assert!(!oom_killed(tmp.path()));
        std::fs::write(tmp.path().join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
        assert!(oom_killed(tmp.path()));
    }
}
