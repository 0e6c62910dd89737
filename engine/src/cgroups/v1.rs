//! cgroup v1: one directory per controller hierarchy (memory, pids, cpu, cpuacct), each
//! holding its own limits; OOM kills read from `memory.oom_control`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::files;
use super::resources::{Controller, Setting};
use super::CgroupError;

/// Writes each setting into the directory of its controller's hierarchy.
pub(crate) fn apply(
    dirs: &BTreeMap<Controller, PathBuf>,
    settings: &[Setting],
) -> Result<(), CgroupError> {
    for s in settings {
        let dir = dirs
            .get(&s.controller)
            .ok_or(CgroupError::NoController(s.controller.name()))?;
        files::write_setting(dir, s)?;
    }
    Ok(())
}

/// Whether the kernel OOM-killed a task of the memory cgroup at `dir`: the `oom_kill`
/// count of `memory.oom_control` (Linux 4.13+), else a non-zero `memory.failcnt`.
pub(crate) fn oom_killed(dir: &Path) -> bool {
    match files::keyed_value(dir, "memory.oom_control", "oom_kill") {
        Some(kills) => kills > 0,
        None => files::read(dir, "memory.failcnt")
            .and_then(|c| c.parse::<u64>().ok())
            .is_some_and(|c| c > 0),
    }
}

/// The memory the cgroup at `dir` uses now, in bytes.
pub(crate) fn memory_current(dir: &Path) -> Option<u64> {
    files::read(dir, "memory.usage_in_bytes")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_land_in_their_controllers_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dirs = BTreeMap::new();
        for c in [Controller::Memory, Controller::Pids] {
            let d = tmp.path().join(c.name());
            std::fs::create_dir(&d).unwrap();
            dirs.insert(c, d);
        }
        let s = |c, f: &str, v: &str, optional| Setting {
            controller: c,
            file: f.into(),
            value: v.into(),
            optional,
        };
        let settings = [
            s(
                Controller::Memory,
                "memory.limit_in_bytes",
                "1048576",
                false,
            ),
            s(
                Controller::Memory,
                "memory.memsw.limit_in_bytes",
                "1048576",
                true,
            ),
            s(Controller::Pids, "pids.max", "4", false),
        ];
        apply(&dirs, &settings).unwrap();
        let read = |p: &str| std::fs::read_to_string(tmp.path().join(p)).unwrap();
        assert_eq!(read("memory/memory.limit_in_bytes"), "1048576");
        assert_eq!(read("pids/pids.max"), "4");
        assert!(!tmp
            .path()
            .join("memory/memory.memsw.limit_in_bytes")
            .exists());
        let cpu = [s(Controller::Cpu, "cpu.shares", "2", false)];
        assert!(matches!(
            apply(&dirs, &cpu),
            Err(CgroupError::NoController("cpu"))
        ));
    }

    #[test]
    fn oom_from_oom_control_or_failcnt() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("memory.failcnt"), "3\n").unwrap();
        assert!(
            oom_killed(tmp.path()),
            "old kernels: failcnt is the only sign"
        );
        let ctl = "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n";
        std::fs::write(tmp.path().join("memory.oom_control"), ctl).unwrap();
        assert!(!oom_killed(tmp.path()), "hitting the limit is not a kill");
        std::fs::write(
            tmp.path().join("memory.oom_control"),
            ctl.replace("kill 0", "kill 1"),
        )
        .unwrap();
        assert!(oom_killed(tmp.path()));
    }
}
