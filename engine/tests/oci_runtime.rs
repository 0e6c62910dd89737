//! `engine-oci` driven as runc's users drive it (needs root, like every runtime): a busybox
//! bundle built in a temp dir, the lifecycle and its OCI state JSON, refusals, and cleanup
//! after a failure injected at each startup step.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::assert_success;
use oci_spec::runtime::Spec;
use predicates::str::contains;
use serde_json::Value;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A bundle whose rootfs holds static busybox, running `args`.
    fn new(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bundle/rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
        for applet in ["sh", "echo", "hostname", "cat", "sleep", "touch", "ls"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let f = Fixture { dir };
        f.write_config(|spec| {
            let mut p = spec.process().clone().unwrap();
            p.set_terminal(Some(false));
            p.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
            spec.set_process(Some(p));
        });
        f
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn write_config(&self, edit: impl FnOnce(&mut Spec)) {
        let path = self.bundle().join("config.json");
        let mut spec = Spec::load(&path).unwrap_or_default();
        edit(&mut spec);
        spec.save(&path).unwrap();
    }

    fn oci(&self) -> Command {
        let mut cmd = Command::cargo_bin("engine-oci").unwrap();
        cmd.arg("--root").arg(self.root());
        cmd
    }

    /// Runs a command that leaves a container behind (`create`, `run -d`): the container
    /// inherits stdio, so the output goes to files, not to pipes the test would wait on.
    fn detached(&self, cmd: &mut std::process::Command) -> (bool, String) {
        let log = self.dir.path().join("detached.log");
        let file = std::fs::File::create(&log).unwrap();
        let status = cmd
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .status()
            .unwrap();
        (status.success(), std::fs::read_to_string(log).unwrap())
    }

    fn oci_std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("engine-oci"));
        cmd.arg("--root").arg(self.root());
        cmd
    }

    /// `engine-oci run [extra] -b BUNDLE id`, to its end.
    fn run(&self, id: &str, extra: &[&str]) -> std::process::Output {
        self.oci()
            .arg("run")
            .args(extra)
            .arg("-b")
            .arg(self.bundle())
            .arg(id)
            .output()
            .unwrap()
    }

    fn state(&self, id: &str) -> Value {
        let out = self.oci().args(["state", id]).output().unwrap();
        assert_success(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Fails the test if anything of container `id` is left on the host.
    fn assert_nothing_left(&self, id: &str) {
        assert!(!self.root().join(id).exists(), "state dir left");
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let here = self.dir.path().to_str().unwrap();
        assert!(!mountinfo.contains(here), "mount left: {mountinfo}");
        // Every hierarchy: v2 at the root, and each v1 controller (or the hybrid unified) below.
        let mut hierarchies = vec![PathBuf::from("/sys/fs/cgroup")];
        hierarchies.extend(
            std::fs::read_dir("/sys/fs/cgroup")
                .unwrap()
                .flatten()
                .map(|e| e.path()),
        );
        for h in hierarchies {
            assert!(
                !h.join("isolab").join(id).exists(),
                "cgroup {}/isolab/{id} left",
                h.display()
            );
        }
        let busybox = self.bundle().join("rootfs/bin/busybox");
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let exe = std::fs::read_link(entry.path().join("exe")).unwrap_or_default();
            assert_ne!(exe, busybox, "process {:?} left", entry.file_name());
        }
    }
}

impl Drop for Fixture {
    /// A failed assertion must not leave containers (and their cgroups) behind.
    fn drop(&mut self) {
        for entry in std::fs::read_dir(self.root())
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = self
                .oci_std()
                .arg("delete")
                .arg("--force")
                .arg(entry.file_name())
                .output();
        }
    }
}

fn unique(name: &str) -> String {
    format!("isolab-t-{name}-{}", std::process::id())
}

#[test]
fn root_run_gives_pid_1_own_hostname_and_own_mounts() {
    let f = Fixture::new(&[
        "sh",
        "-c",
        "echo pid=$$; hostname; cat /proc/self/mountinfo",
    ]);
    f.write_config(|s| {
        s.set_hostname(Some("isolab-box".into()));
    });
    let id = unique("run");
    let out = f.run(&id, &["--timings"]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("pid=1"));
    assert_eq!(lines.next(), Some("isolab-box"));
    let mounts: Vec<&str> = lines.collect();
    let mount_point = |l: &&str| l.split(' ').nth(4).map(String::from);
    let points: Vec<String> = mounts.iter().filter_map(mount_point).collect();
    assert_eq!(
        points.first().map(String::as_str),
        Some("/"),
        "root is not the first mount: {mounts:?}"
    );
    assert!(points.iter().any(|p| p == "/proc"), "no /proc: {mounts:?}");
    assert!(
        !points.iter().any(|p| p.starts_with("/tmp") || p == "/boot"),
        "host mounts visible: {mounts:?}"
    );
    assert!(
        mounts.len()
            < std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .count()
                + 20
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let timings = stderr
        .lines()
        .find_map(|l| l.strip_prefix("TIMINGS "))
        .expect("no TIMINGS line");
    let phases: Value = serde_json::from_str(timings).unwrap();
    let names: Vec<&str> = phases["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // cgroup_join only where v1 hierarchies need the init moved: on v1 hosts; hybrid
    // ones need it only for limits, and this bundle sets none.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let v1_only = mounts.lines().any(|l| l.contains(" cgroup "))
        && !mounts.lines().any(|l| l.contains(" cgroup2 "));
    let mut expected = vec!["cgroups", "clone_namespaces"];
    if v1_only {
        expected.push("cgroup_join");
    }
    expected.extend([
        "network",
        "rootfs_overlay",
        "pivot_root_mounts",
        "process",
        "exec",
    ]);
    assert_eq!(names, expected);
    f.assert_nothing_left(&id);
}

#[test]
fn root_exit_status_of_the_program_is_engine_ocis() {
    let f = Fixture::new(&["sh", "-c", "exit 7"]);
    let id = unique("exit");
    f.oci()
        .args(["run", "-b"])
        .arg(f.bundle())
        .arg(&id)
        .assert()
        .code(7);
    f.assert_nothing_left(&id);
}

#[test]
fn root_lifecycle_state_json_follows_the_oci_spec() {
    let f = Fixture::new(&["sleep", "60"]);
    let id = unique("life");
    let pid_file = f.dir.path().join("pid");
    let (ok, log) = f.detached(
        f.oci_std()
            .args(["create", "--pid-file"])
            .arg(&pid_file)
            .arg("-b")
            .arg(f.bundle())
            .arg(&id),
    );
    assert!(ok, "{log}");
    let created = f.state(&id);
    assert_eq!(created["ociVersion"], "1.2.0");
    assert_eq!(created["id"], id.as_str());
    assert_eq!(created["status"], "created");
    assert_eq!(
        created["bundle"],
        f.bundle().canonicalize().unwrap().to_str().unwrap()
    );
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(created["pid"], pid);
    f.oci().args(["start", &id]).assert().success();
    assert_eq!(f.state(&id)["status"], "running");
    f.oci()
        .args(["start", &id])
        .assert()
        .failure()
        .stderr(contains("running"));
    f.oci()
        .args(["delete", &id])
        .assert()
        .failure()
        .stderr(contains("running"));
    f.oci().args(["kill", &id, "KILL"]).assert().success();
    let mut stopped = f.state(&id);
    for _ in 0..200 {
        if stopped["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        stopped = f.state(&id);
    }
    assert_eq!(stopped["status"], "stopped");
    assert!(stopped.get("pid").is_none());
    f.oci().args(["delete", &id]).assert().success();
    f.oci()
        .args(["state", &id])
        .assert()
        .failure()
        .stderr(contains("does not exist"));
    f.assert_nothing_left(&id);
}

#[test]
fn root_kill_by_number_and_sig_name_and_list() {
    let f = Fixture::new(&["sleep", "60"]);
    let id = unique("kill");
    let (ok, log) = f.detached(
        f.oci_std()
            .args(["run", "-d", "-b"])
            .arg(f.bundle())
            .arg(&id),
    );
    assert!(ok, "{log}");
    f.oci()
        .args(["list", "-q"])
        .assert()
        .success()
        .stdout(contains(id.as_str()));
    f.oci()
        .args(["kill", &id, "SIGNOPE"])
        .assert()
        .failure()
        .stderr(contains("invalid signal"));
    f.oci()
        .args(["kill", "--all", &id, "CONT"])
        .assert()
        .success();
    f.oci().args(["kill", &id, "9"]).assert().success();
    f.oci().args(["delete", "--force", &id]).assert().success();
    f.assert_nothing_left(&id);
}

#[test]
fn root_delete_force_cleans_a_create_killed_midway() {
    for phase in ["cgroups", "network"] {
        let f = Fixture::new(&["sleep", "60"]);
        let id = unique(&format!("killed-{phase}"));
        let (ok, _) = f.detached(
            f.oci_std()
                .env("ISOLAB_FAIL_AT", format!("kill:{phase}"))
                .args(["create", "-b"])
                .arg(f.bundle())
                .arg(&id),
        );
        assert!(!ok, "a killed create reported success");
        assert!(
            f.root().join(&id).exists(),
            "a killed create leaves its state"
        );
        f.oci().args(["delete", "--force", &id]).assert().success();
        f.assert_nothing_left(&id);
    }
}

#[test]
fn root_an_injected_failure_at_each_step_leaves_nothing() {
    let steps = [
        "clone_namespaces",
        "cgroups",
        "network",
        "rootfs_overlay",
        "pivot_root_mounts",
        "process",
        "exec",
    ];
    for step in steps {
        let f = Fixture::new(&["sh", "-c", "echo ran"]);
        let id = unique(&format!("fail-{step}"));
        f.oci()
            .env("ISOLAB_FAIL_AT", step)
            .args(["run", "-b"])
            .arg(f.bundle())
            .arg(&id)
            .assert()
            .failure()
            .stdout(predicates::str::contains("ran").not())
            .stderr(contains(format!("injected failure at {step}")));
        f.assert_nothing_left(&id);
    }
}

use predicates::prelude::PredicateBooleanExt;

#[test]
fn root_refusals_are_clear_errors() {
    let f = Fixture::new(&["true"]);
    let dup = unique("dup");
    let (ok, log) = f.detached(f.oci_std().args(["create", "-b"]).arg(f.bundle()).arg(&dup));
    assert!(ok, "{log}");
    let (ok, log) = f.detached(f.oci_std().args(["create", "-b"]).arg(f.bundle()).arg(&dup));
    assert!(!ok && log.contains("already exists"), "{log}");
    assert_eq!(
        f.state(&dup)["status"],
        "created",
        "a refused duplicate harmed the first"
    );
    f.oci()
        .args(["delete", &dup])
        .assert()
        .failure()
        .stderr(contains("created"));
    f.oci().args(["delete", "--force", &dup]).assert().success();
    f.assert_nothing_left(&dup);
    f.oci()
        .args(["state", "../etc"])
        .assert()
        .failure()
        .stderr(contains("invalid container id"));
    f.oci()
        .args(["state", "nope"])
        .assert()
        .failure()
        .stderr(contains("does not exist"));
    f.oci()
        .args(["create", "-b", "/nonexistent-isolab", "x"])
        .assert()
        .failure()
        .stderr(contains("cannot open"));
    let id = unique("refuse");
    f.write_config(|s| {
        let mut p = s.process().clone().unwrap();
        p.set_terminal(Some(true));
        s.set_process(Some(p));
    });
    f.oci()
        .args(["create", "-b"])
        .arg(f.bundle())
        .arg(&id)
        .assert()
        .failure()
        .stderr(contains("terminal"));
    f.write_config(|s| {
        let mut p = s.process().clone().unwrap();
        p.set_terminal(Some(false));
        s.set_process(Some(p));
        let mut linux = s.linux().clone().unwrap();
        linux.set_seccomp(Some(Default::default()));
        s.set_linux(Some(linux));
    });
    f.oci()
        .args(["create", "-b"])
        .arg(f.bundle())
        .arg(&id)
        .assert()
        .failure()
        .stderr(contains("seccomp"));
    std::fs::write(f.bundle().join("config.json"), "{ broken").unwrap();
    f.oci()
        .args(["create", "-b"])
        .arg(f.bundle())
        .arg(&id)
        .assert()
        .failure()
        .stderr(contains("config.json"));
    let g = Fixture::new(&["true"]);
    std::fs::remove_dir_all(g.bundle().join("rootfs")).unwrap();
    g.oci()
        .args(["create", "-b"])
        .arg(g.bundle())
        .arg(&id)
        .assert()
        .failure()
        .stderr(contains("rootfs"));
    g.assert_nothing_left(&id);
    f.assert_nothing_left(&id);
}

#[test]
fn root_overlay_containers_of_one_image_do_not_see_each_others_writes() {
    let f = Fixture::new(&["sh", "-c", "ls /data; touch /data/$(hostname)"]);
    let lower = f.bundle().join("rootfs");
    std::fs::create_dir(lower.join("data")).unwrap();
    std::fs::write(lower.join("data/base"), "").unwrap();
    f.write_config(|s| {
        let ann = [(
            "org.isolab.rootfs.lowerdirs".to_string(),
            lower.display().to_string(),
        )]
        .into_iter()
        .collect();
        s.set_annotations(Some(ann));
        let mut root = s.root().clone().unwrap();
        root.set_readonly(Some(false));
        s.set_root(Some(root));
    });
    for name in ["one", "two"] {
        f.write_config(|s| {
            s.set_hostname(Some(name.into()));
        });
        let id = unique(&format!("ovl-{name}"));
        let out = f.run(&id, &[]);
        assert_success(&out);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "base\n",
            "saw another container's write"
        );
        f.assert_nothing_left(&id);
    }
    let entries: Vec<_> = std::fs::read_dir(lower.join("data"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        entries,
        ["base"],
        "a container wrote into the shared lower layer"
    );
}

#[test]
fn root_same_bundle_same_output_as_runc() {
    if !Path::new("/usr/bin/runc").exists() && !Path::new("/usr/sbin/runc").exists() {
        eprintln!("skipping: runc is not installed on this host");
        return;
    }
    let f = Fixture::new(&[
        "sh",
        "-c",
        "echo pid=$$; hostname; ls /dev | sort | tr '\\n' ' '",
    ]);
    let id = unique("vsrunc");
    let ours = f.run(&id, &[]);
    let runc_root = f.dir.path().join("runc-state");
    let theirs = std::process::Command::new("runc")
        .arg("--root")
        .arg(&runc_root)
        .args(["run", "-b"])
        .arg(f.bundle())
        .arg(&id)
        .output()
        .unwrap();
    assert!(
        theirs.status.success(),
        "runc: {}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&theirs.stdout)
    );
}

#[test]
fn root_user_namespace_maps_container_root_to_an_unprivileged_host_uid() {
    let f = Fixture::new(&["sh", "-c", "id -u; cat /proc/self/uid_map; ls /dev/null"]);
    f.write_config(|s| {
        let mut linux = s.linux().clone().unwrap();
        let mut namespaces = linux.namespaces().clone().unwrap();
        namespaces.push(
            oci_spec::runtime::LinuxNamespaceBuilder::default()
                .typ(oci_spec::runtime::LinuxNamespaceType::User)
                .build()
                .unwrap(),
        );
        linux.set_namespaces(Some(namespaces));
        let map = oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(100000u32)
            .size(65536u32)
            .build()
            .unwrap();
        linux.set_uid_mappings(Some(vec![map]));
        linux.set_gid_mappings(Some(vec![map]));
        s.set_linux(Some(linux));
    });
    // The mapped root must be able to read its rootfs.
    std::process::Command::new("chown")
        .arg("-R")
        .arg("100000:100000")
        .arg(f.bundle().join("rootfs"))
        .status()
        .unwrap();
    let id = unique("userns");
    let out = f.run(&id, &[]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "0");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_eq!(lines[2], "/dev/null");
    f.assert_nothing_left(&id);
}

#[test]
fn root_a_signal_to_run_reaches_the_container() {
    // Symptom it guards against: Ctrl-C killed engine-oci and orphaned the container.
    let f = Fixture::new(&[
        "sh",
        "-c",
        "trap 'echo got-term; exit 3' TERM; echo up; while :; do sleep 0.05; done",
    ]);
    let id = unique("sigfwd");
    let mut child = f
        .oci_std()
        .args(["run", "-b"])
        .arg(f.bundle())
        .arg(&id)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "up\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(3));
    f.assert_nothing_left(&id);
}

fn limit(f: &Fixture, resources: serde_json::Value) {
    let path = f.bundle().join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["linux"]["resources"] = resources;
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
}

#[test]
fn root_a_memory_limit_oom_kills_and_run_says_so() {
    // dd allocates and fills a 64 MiB buffer: past a 16 MiB limit.
    let f = Fixture::new(&["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);
    std::os::unix::fs::symlink("busybox", f.bundle().join("rootfs/bin/dd")).unwrap();
    limit(
        &f,
        serde_json::json!({"memory": {"limit": 16777216, "swap": 16777216}}),
    );
    let id = unique("oom");
    let out = f.run(&id, &[]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("memory limit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    f.assert_nothing_left(&id);
}

#[test]
fn root_a_hybrid_host_joins_only_the_v1_hierarchies_of_the_limits() {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let hybrid = mounts.contains(" cgroup2 ") && mounts.contains(" cgroup ");
    if !hybrid {
        eprintln!("skipping: not a hybrid cgroup host (v1 controllers plus cgroup2)");
        return;
    }
    // Without a cgroup namespace, /proc/self/cgroup shows the host's paths.
    let f = Fixture::new(&["cat", "/proc/self/cgroup"]);
    f.write_config(|spec| {
        let mut linux = spec.linux().clone().unwrap();
        let namespaces = linux.namespaces().clone().unwrap_or_default();
        linux.set_namespaces(Some(
            namespaces
                .into_iter()
                .filter(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Cgroup)
                .collect(),
        ));
        spec.set_linux(Some(linux));
    });
    let id = unique("hybrid");
    let cgroup_of = |controller: &str| {
        let out = f.run(&id, &["--timings"]);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let joined = String::from_utf8_lossy(&out.stderr).contains("cgroup_join");
        let line = stdout
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == controller))
            })
            .unwrap_or_else(|| panic!("no {controller} line in {stdout}"))
            .to_string();
        (line, stdout, joined)
    };
    let (memory, all, joined) = cgroup_of("memory");
    assert!(!memory.contains("isolab"), "joined memory: {all}");
    assert!(all.contains(&format!("0::/isolab/{id}")), "{all}");
    assert!(!joined, "no limits, no cgroup_join");
    limit(&f, serde_json::json!({"memory": {"limit": 1073741824}}));
    let (memory, all, joined) = cgroup_of("memory");
    assert!(memory.ends_with(&format!("/isolab/{id}")), "{all}");
    let (pids, _, _) = cgroup_of("pids");
    assert!(!pids.contains("isolab"), "joined pids: {all}");
    assert!(joined, "a memory limit needs the v1 join");
    f.assert_nothing_left(&id);
}

#[test]
fn root_a_pids_limit_holds() {
    let f = Fixture::new(&[
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait",
    ]);
    limit(&f, serde_json::json!({"pids": {"limit": 4}}));
    let id = unique("pids");
    let out = f.run(&id, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("can't fork") || stderr.contains("Resource temporarily unavailable"),
        "{stderr}"
    );
    f.assert_nothing_left(&id);
}

#[test]
fn root_the_workload_runs_as_pid_1_with_its_own_hostname() {
    let workload = common::workload();
    let f = Fixture::new(&["/workload", "info"]);
    std::fs::copy(&workload, f.bundle().join("rootfs/workload")).unwrap();
    f.write_config(|s| {
        s.set_hostname(Some("isolab-wl".into()));
    });
    let id = unique("workload");
    let out = f.run(&id, &[]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .expect("no RESULT line");
    let result: Value = serde_json::from_str(json).unwrap();
    assert_eq!(result["facts"]["pid"], "1");
    assert_eq!(result["facts"]["hostname"], "isolab-wl");
    f.assert_nothing_left(&id);
}

#[test]
fn root_an_image_symlink_cannot_aim_mounts_or_device_nodes_at_the_host() {
    // An image whose /dev points at an absolute host directory: the tmpfs and the device
    // nodes must land inside the rootfs, not in that host directory.
    let f = Fixture::new(&["sh", "-c", "ls /dev/null"]);
    let outside = f.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, f.bundle().join("rootfs/dev")).unwrap();
    let id = unique("symlink");
    let out = f.run(&id, &[]);
    assert_success(&out);
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "something was made outside the rootfs"
    );
    f.assert_nothing_left(&id);
}

#[test]
fn root_an_image_built_with_engine_oci_runs_the_same_under_engine_oci_and_runc() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::copy("/bin/busybox", ctx.join("busybox")).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox mkdir /made && echo built > /made/x\"]\n\
         CMD [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox cat /made/x; /bin/busybox hostname\"]\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    let engine = || {
        let mut cmd = Command::cargo_bin("engine").unwrap();
        cmd.arg("--root").arg(&store);
        cmd
    };
    let oci = assert_cmd::cargo::cargo_bin("engine-oci");
    engine()
        .args(["image", "build", "--runtime"])
        .arg(&oci)
        .args(["-t", "isolab-t:1"])
        .arg(&ctx)
        .assert()
        .success();
    let bundle = dir.path().join("bundle");
    engine()
        .args(["image", "unpack", "isolab-t:1"])
        .arg(&bundle)
        .assert()
        .success();
    let id = unique("built");
    let ours = Command::new(&oci)
        .arg("--root")
        .arg(dir.path().join("s1"))
        .args(["run", "-b"])
        .arg(&bundle)
        .arg(&id)
        .output()
        .unwrap();
    assert!(
        ours.status.success(),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    assert!(String::from_utf8_lossy(&ours.stdout).starts_with("built\n"));
    if which_runc() {
        let theirs = std::process::Command::new("runc")
            .arg("--root")
            .arg(dir.path().join("s2"))
            .args(["run", "-b"])
            .arg(&bundle)
            .arg(&id)
            .output()
            .unwrap();
        assert_eq!(
            ours.stdout,
            theirs.stdout,
            "runc: {}",
            String::from_utf8_lossy(&theirs.stderr)
        );
    }
}

fn which_runc() -> bool {
    let found = std::process::Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("runc is not installed: comparing with runc skipped");
    }
    found
}

#[test]
fn root_kill_all_reaches_every_process_of_the_container() {
    // PID 1 ignores TERM (no handler); its child does not: only --all ends the container.
    let f = Fixture::new(&["sh", "-c", "sleep 60 & wait"]);
    let id = unique("killall");
    let (ok, log) = f.detached(
        f.oci_std()
            .args(["run", "-d", "-b"])
            .arg(f.bundle())
            .arg(&id),
    );
    assert!(ok, "{log}");
    f.oci().args(["kill", &id, "TERM"]).assert().success();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(
        f.state(&id)["status"],
        "running",
        "TERM reached more than PID 1"
    );
    f.oci()
        .args(["kill", "--all", &id, "TERM"])
        .assert()
        .success();
    let mut status = f.state(&id)["status"].clone();
    for _ in 0..300 {
        if status == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        status = f.state(&id)["status"].clone();
    }
    assert_eq!(status, "stopped");
    f.oci().args(["delete", &id]).assert().success();
    f.assert_nothing_left(&id);
}
