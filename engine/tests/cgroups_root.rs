//! Root tests of `engine::cgroups` on the real kernel: a memory limit OOM-kills a task
//! that exceeds it, a pids limit holds, cpu quota lands, and destroy leaves nothing.
//! They run on whatever layout the host has (hybrid on the build host, v2 on most).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use engine::cgroups::{Cgroup, CgroupMode, CgroupRoot, Controller};
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

/// The host's cgroup root, or `None` (with the reason printed) where it cannot be used.
fn host_root() -> Option<CgroupRoot> {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root to create cgroups");
        return None;
    }
    match CgroupRoot::detect() {
        Ok(root) => Some(root),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// Destroys the cgroup however the test ends.
struct Guard(Option<Cgroup>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            cg.destroy().expect("destroying the test cgroup");
        }
    }
}

impl Guard {
    fn cg(&self) -> &Cgroup {
        self.0.as_ref().unwrap()
    }
}

fn unique(name: &str) -> String {
    format!("isolab/test-{name}-{}", std::process::id())
}

/// A shell that waits for a line on stdin, then runs `script`: it is moved into the
/// cgroup before it does anything.
fn held_shell(script: &str) -> Child {
    Command::new("/bin/busybox")
        .args(["sh", "-c", &format!("read go; {script}")])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning /bin/busybox")
}

fn release(child: &mut Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
}

fn resources(memory: Option<i64>, pids: Option<i64>) -> LinuxResources {
    let mut b = LinuxResourcesBuilder::default();
    if let Some(m) = memory {
        b = b.memory(
            LinuxMemoryBuilder::default()
                .limit(m)
                .swap(m)
                .build()
                .unwrap(),
        );
    }
    if let Some(p) = pids {
        b = b.pids(LinuxPidsBuilder::default().limit(p).build().unwrap());
    }
    b.cpu(
        LinuxCpuBuilder::default()
            .quota(50_000i64)
            .period(100_000u64)
            .build()
            .unwrap(),
    )
    .build()
    .unwrap()
}

#[test]
fn root_memory_limit_oom_kills_and_is_reported() {
    let Some(root) = host_root() else { return };
    let guard = Guard(Some(
        Cgroup::create(
            &root,
            &unique("oom"),
            Some(&resources(Some(16 << 20), None)),
        )
        .unwrap(),
    ));
    // dd's 64 MiB block buffer is filled from /dev/zero: four times the limit.
    let mut child = held_shell("exec busybox dd if=/dev/zero of=/dev/null bs=64M count=1");
    guard.cg().add_process(child.id() as i32).unwrap();
    assert!(!guard.cg().oom_killed());
    release(&mut child);
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "dd should be OOM-killed: {status:?}"
    );
    assert!(guard.cg().oom_killed(), "the OOM kill must be reported");
}

#[test]
fn root_pids_limit_holds() {
    let Some(root) = host_root() else { return };
    let guard = Guard(Some(
        Cgroup::create(&root, &unique("pids"), Some(&resources(None, Some(4)))).unwrap(),
    ));
    // busybox sh gives up at the first refused fork and says so on stderr.
    let mut child =
        held_shell("i=0; while [ $i -lt 12 ]; do busybox sleep 30 & i=$((i+1)); done; wait");
    guard.cg().add_process(child.id() as i32).unwrap();
    release(&mut child);
    // Read until the complaint, not to EOF: the sleeps hold stderr open.
    let (mut stderr, mut pipe, mut buf) = (String::new(), child.stderr.take().unwrap(), [0; 512]);
    while !stderr.contains("can't fork") {
        let n = std::io::Read::read(&mut pipe, &mut buf).unwrap();
        assert!(n > 0, "the shell ended without a refused fork: {stderr}");
        stderr.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let pids = guard.cg().pids();
    assert!(
        !pids.is_empty() && pids.len() <= 4,
        "pids limit 4 exceeded: {pids:?}"
    );
    drop(guard); // destroy kills the shell and its sleeps
    child.wait().unwrap();
}

#[test]
fn root_cpu_quota_is_written_and_destroy_leaves_nothing() {
    let Some(root) = host_root() else { return };
    let path = unique("cpu");
    let cg = Cgroup::create(&root, &path, Some(&resources(Some(64 << 20), Some(8)))).unwrap();
    let quota = match root.mode() {
        CgroupMode::V2 => std::fs::read_to_string(cg.unified_dir().unwrap().join("cpu.max")),
        _ => std::fs::read_to_string(cg.v1_dir(Controller::Cpu).unwrap().join("cpu.cfs_quota_us")),
    };
    assert!(quota.unwrap().starts_with("50000"));
    let mut child = held_shell("busybox sleep 30");
    cg.add_process(child.id() as i32).unwrap();
    assert_eq!(cg.pids(), vec![child.id() as i32]);
    assert!(cg.memory_current().is_some());
    let dirs: Vec<_> = [Controller::Memory, Controller::Cpu, Controller::Pids]
        .iter()
        .filter_map(|c| cg.v1_dir(*c).map(Path::to_path_buf))
        .chain(cg.unified_dir().map(Path::to_path_buf))
        .collect();
    assert!(!dirs.is_empty() && dirs.iter().all(|d| d.is_dir()));
    cg.destroy().unwrap();
    child.wait().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    assert!(matches!(
        Cgroup::open(&root, &path),
        Err(engine::cgroups::CgroupError::NotFound(_))
    ));
}

#[test]
fn root_open_and_destroy_clean_up_after_a_crashed_engine() {
    let Some(root) = host_root() else { return };
    let path = unique("crash");
    let cg = Cgroup::create(&root, &path, Some(&resources(Some(64 << 20), Some(8)))).unwrap();
    let mut child = held_shell("busybox sleep 30");
    cg.add_process(child.id() as i32).unwrap();
    drop(cg); // the engine died: only the path is known (delete --force)
    let reopened = Cgroup::open(&root, &path).unwrap();
    assert_eq!(reopened.pids(), vec![child.id() as i32]);
    reopened.destroy().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        child.wait().unwrap().signal(),
        Some(libc::SIGKILL),
        "the task is killed"
    );
    assert!(matches!(
        Cgroup::open(&root, &path),
        Err(engine::cgroups::CgroupError::NotFound(_))
    ));
}

#[test]
fn root_a_limit_the_kernel_refuses_leaves_no_directory() {
    let Some(root) = host_root() else { return };
    let path = unique("refused");
    // The kernel refuses CFS quotas under 1 ms; isolab passes it on and must undo.
    let cpu = LinuxCpuBuilder::default()
        .quota(500i64)
        .period(100_000u64)
        .build()
        .unwrap();
    let r = LinuxResourcesBuilder::default().cpu(cpu).build().unwrap();
    let err = Cgroup::create(&root, &path, Some(&r)).unwrap_err();
    assert!(
        err.to_string().contains("\"500\""),
        "the error names the value: {err}"
    );
    assert!(matches!(
        Cgroup::open(&root, &path),
        Err(engine::cgroups::CgroupError::NotFound(_))
    ));
}

/// The host's cgroup2 mount used as a pure v2 tree: on a hybrid host it has no
/// controllers, which still proves the v2 create, track, kill and remove path.
fn v2_root() -> Option<CgroupRoot> {
    let unified = host_root()?.unified()?.to_path_buf();
    Some(CgroupRoot::at(CgroupMode::V2, unified))
}

#[test]
fn root_v2_tree_tracks_kills_and_removes_on_a_real_cgroup2_mount() {
    let Some(root) = v2_root() else { return };
    let path = unique("v2");
    let cg = Cgroup::create(&root, &path, None).unwrap();
    let mut child = held_shell("busybox sleep 30");
    cg.add_process(child.id() as i32).unwrap();
    assert_eq!(cg.pids(), vec![child.id() as i32]);
    let dir = cg.unified_dir().unwrap().to_path_buf();
    cg.destroy().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn root_v2_limit_without_its_controller_is_a_clear_error_and_leaves_nothing() {
    let Some(root) = v2_root() else { return };
    let offered = std::fs::read_to_string(root.unified().unwrap().join("cgroup.controllers"));
    let offered = offered.unwrap_or_default();
    if offered.contains("pids") && offered.contains("cpu") {
        eprintln!("skipped: this cgroup2 tree offers every controller the limits need");
        return;
    }
    let path = unique("v2-nopids");
    let err = Cgroup::create(&root, &path, Some(&resources(None, Some(4)))).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(".max does not exist") && msg.contains("controller"),
        "{msg}"
    );
    assert!(matches!(
        Cgroup::open(&root, &path),
        Err(engine::cgroups::CgroupError::NotFound(_))
    ));
}
