//! `engine run|ps|logs|stop|rm` driven as a user would, as root (containers need it),
//! each test with its own temp `--root`, on a busybox image built by `engine image build`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{engine, is_root};
use predicates::prelude::*;
use tempfile::TempDir;

/// A root holding image `bb` (static busybox, CMD `sh -c`), or None (with the reason
/// printed) where the host cannot run containers.
fn root_with_busybox() -> Option<TempDir> {
    if !is_root() {
        eprintln!("skipping: running containers needs root");
        return None;
    }
    let ctx = tempfile::tempdir().unwrap();
    fs::copy("/bin/busybox", ctx.path().join("busybox")).unwrap();
    fs::set_permissions(
        ctx.path().join("busybox"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::write(
        ctx.path().join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nENV PATH=/bin\nENTRYPOINT [\"/bin/busybox\"]\nCMD [\"true\"]\n",
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    engine(root.path())
        .args(["image", "build", "-t", "bb"])
        .arg(ctx.path())
        .assert()
        .success();
    Some(root)
}

/// Fails the test if a container's directory is left under `root`.
#[track_caller]
fn assert_nothing_left(root: &Path) {
    let left = leftovers(root);
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn leftovers(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["containers", "state"] {
        if let Ok(entries) = fs::read_dir(root.join(dir)) {
            out.extend(
                entries.map(|e| format!("{dir}/{}", e.unwrap().file_name().to_string_lossy())),
            );
        }
    }
    out
}

#[test]
fn container_is_pid_1_with_its_own_hostname_and_exit_status() {
    let Some(root) = root_with_busybox() else {
        return;
    };
    engine(root.path())
        .args([
            "run",
            "--rm",
            "--timings",
            "--name",
            "box1",
            "bb",
            "sh",
            "-c",
            "echo pid=$$ host=$(hostname); exit 3",
        ])
        .assert()
        .code(3)
        .stdout("pid=1 host=box1\n")
        .stderr(
            predicate::str::contains("TIMINGS {")
                .and(predicate::str::contains("image_layers_bundle"))
                .and(predicate::str::contains("rootfs_overlay")),
        );
    assert_nothing_left(root.path());
}

#[test]
fn two_containers_of_one_image_do_not_see_each_others_writes() {
    let Some(root) = root_with_busybox() else {
        return;
    };
    engine(root.path())
        .args([
            "run",
            "--name",
            "a",
            "bb",
            "sh",
            "-c",
            "echo a > /shared; cat /shared",
        ])
        .assert()
        .success()
        .stdout("a\n");
    engine(root.path())
        .args([
            "run",
            "--name",
            "b",
            "bb",
            "sh",
            "-c",
            "cat /shared 2>/dev/null || echo absent",
        ])
        .assert()
        .success()
        .stdout("absent\n");
    // Both used the one shared, read-only copy of the image's layer.
    let layers = fs::read_dir(root.path().join("images/layers"))
        .unwrap()
        .count();
    assert_eq!(layers, 1);
    engine(root.path())
        .args(["ps", "-a"])
        .assert()
        .success()
        .stdout(predicate::str::contains("a ").and(predicate::str::contains("exited (0)")));
    engine(root.path())
        .args(["rm", "a", "b"])
        .assert()
        .success();
    assert_nothing_left(root.path());
}

#[test]
fn named_volume_outlives_the_container() {
    let Some(root) = root_with_busybox() else {
        return;
    };
    engine(root.path())
        .args([
            "run",
            "--rm",
            "-v",
            "keep:/data",
            "bb",
            "sh",
            "-c",
            "echo kept > /data/f",
        ])
        .assert()
        .success();
    engine(root.path())
        .args(["run", "--rm", "-v", "keep:/data:ro", "bb", "cat", "/data/f"])
        .assert()
        .success()
        .stdout("kept\n");
    engine(root.path())
        .args(["volume", "ls"])
        .assert()
        .success()
        .stdout(predicate::str::contains("keep"));
    // The container layer's writes are gone with the container.
    engine(root.path())
        .args(["run", "--rm", "bb", "sh", "-c", "echo x > /tmpfile"])
        .assert()
        .success();
    engine(root.path())
        .args([
            "run",
            "--rm",
            "bb",
            "sh",
            "-c",
            "cat /tmpfile 2>/dev/null || echo gone",
        ])
        .assert()
        .stdout("gone\n");
}

#[test]
fn detached_container_logs_stops_and_is_removed() {
    let Some(root) = root_with_busybox() else {
        return;
    };
    // Regression: `run -d` held its caller's stdout pipe open in the container, so a
    // caller reading its output hung until the container ended.
    engine(root.path())
        .args([
            "run",
            "-d",
            "--name",
            "bg",
            "bb",
            "sh",
            "-c",
            "echo started; exec sleep 600",
        ])
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success()
        .stdout("bg\n");
    engine(root.path())
        .args(["ps"])
        .assert()
        .success()
        .stdout(predicate::str::contains("running"));
    engine(root.path())
        .args(["rm", "bg"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is running"));
    engine(root.path())
        .args(["stop", "-t", "1", "bg"])
        .assert()
        .success();
    engine(root.path())
        .args(["logs", "bg"])
        .assert()
        .success()
        .stdout(predicate::str::contains("started"));
    engine(root.path())
        .args(["ps"])
        .assert()
        .success()
        .stdout(predicate::str::contains("bg").not());
    engine(root.path()).args(["rm", "bg"]).assert().success();
    assert_nothing_left(root.path());
}

#[test]
fn run_errors_are_clear_and_leave_nothing() {
    let Some(root) = root_with_busybox() else {
        return;
    };
    engine(root.path())
        .args(["run", "nosuch"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no such image: nosuch"));
    engine(root.path())
        .args(["run", "--memory", "lots", "bb"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("invalid memory limit"));
    engine(root.path())
        .args(["run", "-v", "relative:dest", "bb"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("invalid volume"));
    engine(root.path())
        .args(["run", "--name", "dup", "bb"])
        .assert()
        .success();
    engine(root.path())
        .args(["run", "--name", "dup", "bb"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("already in use"));
    engine(root.path()).args(["rm", "dup"]).assert().success();
    engine(root.path())
        .args(["run", "--name", "../evil", "bb"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("invalid container id"));
    // A failure injected in the runtime's startup undoes everything.
    engine(root.path())
        .env("ISOLAB_FAIL_AT", "network")
        .args(["run", "--name", "failing", "bb"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("injected failure at network"));
    assert_nothing_left(root.path());
}

#[test]
fn image_in_use_is_kept_and_its_layers_go_with_it() {
    let Some(root) = root_with_busybox() else {
        return;
    };
    engine(root.path())
        .args(["run", "--name", "user", "bb"])
        .assert()
        .success();
    engine(root.path())
        .args(["image", "rm", "bb"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("used by container user"));
    engine(root.path()).args(["rm", "user"]).assert().success();
    engine(root.path())
        .args(["image", "rm", "bb"])
        .assert()
        .success();
    let layers = fs::read_dir(root.path().join("images/layers"))
        .unwrap()
        .count();
    assert_eq!(layers, 0, "unpacked layers of removed images are deleted");
}

#[test]
fn memory_limit_oom_kills_and_is_reported() {
    let Some(root) = root_with_busybox() else {
        return;
    };
    // busybox sh builds a 96 MiB string in memory; the limit is 32 MiB.
    let hog = "x=$(head -c 100663296 /dev/zero | tr '\\0' a); echo survived";
    engine(root.path())
        .args(["run", "--rm", "--memory", "32m", "bb", "sh", "-c", hog])
        .assert()
        .code(137)
        .stdout(predicate::str::contains("survived").not())
        .stderr(predicate::str::contains("killed by the OOM killer"));
    // Under a roomy limit the same program completes.
    engine(root.path())
        .args(["run", "--rm", "--memory", "1g", "bb", "sh", "-c", hog])
        .assert()
        .success()
        .stdout("survived\n");
    assert_nothing_left(root.path());
}

#[test]
fn pids_limit_holds() {
    let Some(root) = root_with_busybox() else {
        return;
    };
    let forks = "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1 & done; wait; echo all-forked";
    engine(root.path())
        .args(["run", "--rm", "--pids-limit", "5", "bb", "sh", "-c", forks])
        .assert()
        .failure()
        .stdout(predicate::str::contains("all-forked").not())
        .stderr(predicate::str::contains("can't fork"));
    engine(root.path())
        .args(["run", "--rm", "--pids-limit", "50", "bb", "sh", "-c", forks])
        .assert()
        .success()
        .stdout("all-forked\n");
}

#[test]
fn network_modes_give_loopback_only_or_a_bridge_address() {
    let Some(root) = root_with_busybox() else {
        return;
    };
    let addrs = "ip -o -4 addr show | awk '{print $2}' | sort | tr '\\n' ' '";
    engine(root.path())
        .args(["run", "--rm", "--network", "none", "bb", "sh", "-c", addrs])
        .assert()
        .success()
        .stdout("lo ");
    engine(root.path())
        .args([
            "run",
            "--rm",
            "--network",
            "bridge",
            "bb",
            "sh",
            "-c",
            addrs,
        ])
        .assert()
        .success()
        .stdout("eth0 lo ");
    assert_nothing_left(root.path());
}
