//! End-to-end tests of the kernel-less guest's system-call layer: real static binaries
//! (Debian's busybox-static and isolab's workload) run under `microvm exec` with a
//! `--rootfs`, and their output is compared with the same binary run natively.
//! They need /dev/kvm and skip, saying so, on a host without it.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;

use assert_cmd::cargo::cargo_bin;
use common::workload;
use predicates::prelude::*;

const BUSYBOX: &str = "/bin/busybox";

/// Whether this host can run guests; prints why not when it cannot.
fn kvm_available() -> bool {
    let ok = Path::new("/dev/kvm").exists();
    if !ok {
        eprintln!("skipped: /dev/kvm is absent on this host, so no guest can run");
    }
    ok
}

/// Whether busybox-static is installed; prints why not when it is not.
fn busybox_available() -> bool {
    let ok = Path::new(BUSYBOX).is_file();
    if !ok {
        eprintln!("skipped: {BUSYBOX} is absent (apt-get install busybox-static)");
    }
    ok
}

/// A rootfs with a few files, inside a dir that also holds a host-only secret, and
/// symlinks that try to reach it and the host's /etc/passwd.
fn rootfs() -> (tempfile::TempDir, PathBuf) {
    let outer = tempfile::Builder::new()
        .prefix("isolab-syscalls-")
        .tempdir()
        .unwrap();
    std::fs::write(outer.path().join("secret"), "HOST-SECRET-42\n").unwrap();
    let root = outer.path().join("rootfs");
    std::fs::create_dir_all(root.join("data/sub")).unwrap();
    std::fs::write(root.join("data/hello.txt"), "hello from the rootfs\n").unwrap();
    let numbers: String = (1..=500).map(|i| format!("{i}\n")).collect();
    std::fs::write(root.join("data/numbers.txt"), numbers).unwrap();
    std::fs::write(root.join("data/sub/inner"), "inner\n").unwrap();
    symlink("/etc/passwd", root.join("passwd-link")).unwrap();
    symlink(outer.path().join("secret"), root.join("secret-abs")).unwrap();
    symlink("../../secret", root.join("data/secret-rel")).unwrap();
    (outer, root)
}

/// `microvm exec --rootfs ROOT -- BINARY ARGS...`
fn exec(root: &Path, binary: &Path, args: &[&str]) -> assert_cmd::Command {
    exec_with(&[], root, binary, args)
}

/// `microvm exec FLAGS --rootfs ROOT -- BINARY ARGS...`
fn exec_with(flags: &[&str], root: &Path, binary: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("microvm").unwrap();
    cmd.args(["exec", "--timeout", "60"])
        .args(flags)
        .arg("--rootfs")
        .arg(root);
    cmd.arg("--").arg(binary).args(args);
    cmd
}

/// Runs `binary args` natively in the rootfs directory, which is the guest's working
/// directory too, so relative paths name the same files in both.
fn native(root: &Path, binary: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(binary)
        .args(args)
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "native {args:?}: {out:?}");
    out.stdout
}

#[test]
fn busybox_applets_read_files_from_the_rootfs_like_natively() {
    if !kvm_available() || !busybox_available() {
        return;
    }
    let (_outer, root) = rootfs();
    let bb = Path::new(BUSYBOX);
    for args in [
        &["cat", "data/hello.txt"][..],
        &["wc", "data/numbers.txt"],
        &["sha256sum", "data/hello.txt", "data/numbers.txt"],
        &["ls", "data"],
        &["head", "-n", "3", "data/numbers.txt"],
    ] {
        let expected = native(&root, bb, args);
        exec(&root, bb, args).assert().success().stdout(expected);
    }
    exec(&root, bb, &["echo", "hi", "there"])
        .assert()
        .success()
        .stdout("hi there\n");
    // The rootfs has no /dev: the standard devices are lent from the host.
    exec(&root, bb, &["sh", "-c", "echo x > /dev/null && echo ok"])
        .assert()
        .success()
        .stdout("ok\n");
    exec(&root, bb, &["od", "-An", "-N4", "-tx1", "/dev/zero"])
        .assert()
        .success()
        .stdout(" 00 00 00 00\n");
    exec(&root, bb, &["ls", "-l", "/data/sub"])
        .assert()
        .success()
        .stdout(predicate::str::contains("inner"));
}

#[test]
fn busybox_changes_files_only_inside_the_rootfs() {
    if !kvm_available() || !busybox_available() {
        return;
    }
    let (_outer, root) = rootfs();
    let bb = Path::new(BUSYBOX);
    exec(&root, bb, &["mkdir", "/made"]).assert().success();
    exec(&root, bb, &["cp", "/data/hello.txt", "/made/copy"])
        .assert()
        .success();
    exec(&root, bb, &["mv", "/made/copy", "/made/moved"])
        .assert()
        .success();
    exec(&root, bb, &["touch", "/made/touched"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(root.join("made/moved")).unwrap(),
        "hello from the rootfs\n"
    );
    assert!(root.join("made/touched").is_file());
    exec(&root, bb, &["rm", "-r", "/made"]).assert().success();
    assert!(!root.join("made").exists());
}

#[test]
fn guest_cannot_read_host_files_through_symlinks_or_dot_dot() {
    if !kvm_available() || !busybox_available() {
        return;
    }
    let (outer, root) = rootfs();
    let bb = Path::new(BUSYBOX);
    let host_secret = outer.path().join("secret");
    for path in [
        "/passwd-link",
        "/secret-abs",
        "/data/secret-rel",
        "../secret",
        "/../../../../etc/passwd",
        "/../secret",
        host_secret.to_str().unwrap(),
    ] {
        exec(&root, bb, &["cat", path])
            .assert()
            .failure()
            .stdout(predicate::str::contains("HOST-SECRET").not())
            .stdout(predicate::str::contains("root:x:0").not())
            .stderr(predicate::str::contains("No such file or directory"));
    }
    // A guest-made symlink to the host path also resolves inside the rootfs.
    let script = format!("ln -s {} /mine; cat /mine", host_secret.display());
    exec(&root, bb, &["sh", "-c", &script])
        .assert()
        .failure()
        .stdout(predicate::str::contains("HOST-SECRET").not());
}

#[test]
fn guest_exit_status_and_unimplemented_calls_reach_the_user() {
    if !kvm_available() || !busybox_available() {
        return;
    }
    let (_outer, root) = rootfs();
    let bb = Path::new(BUSYBOX);
    exec(&root, bb, &["sh", "-c", "exit 7"]).assert().code(7);
    exec(&root, bb, &["false"]).assert().code(1);
    // One process per VM: fork is not implemented, and --stats says so by name.
    let out = exec_with(
        &["--stats"],
        &root,
        bb,
        &["sh", "-c", "/bin/true; echo after"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stats = stderr
        .lines()
        .find_map(|l| l.strip_prefix("STATS "))
        .expect("STATS line");
    let stats: serde_json::Value = serde_json::from_str(stats).unwrap();
    let enosys = stats["syscalls"]["enosys"].as_object().expect("enosys map");
    assert!(
        ["fork", "vfork", "clone", "clone3"]
            .iter()
            .any(|c| enosys.contains_key(*c)),
        "{enosys:?}"
    );
    assert!(
        stats["syscalls"]["calls"]["execve"].is_null(),
        "sh never reached exec"
    );
}

#[test]
fn workload_subcommands_match_native_results() {
    if !kvm_available() {
        return;
    }
    let (_outer, root) = rootfs();
    let wl = workload();
    exec(&root, &wl, &["ready"])
        .assert()
        .success()
        .stdout("READY\n");
    exec(&root, &wl, &["info"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            r#""kernel_name":"isolab-microvm""#,
        ))
        .stdout(predicate::str::contains(r#""pid":"1""#));
    // The cpu checksum depends only on the iteration count: same in guest and native.
    let checksum = |out: &[u8]| {
        let text = String::from_utf8_lossy(out).into_owned();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .expect("RESULT line");
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["checksum"].as_str().expect("checksum").to_owned()
    };
    let args = ["cpu", "--iterations", "3000"];
    let guest = exec(&root, &wl, &args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(checksum(&guest), checksum(&native(&root, &wl, &args)));
    for args in [
        &["syscall", "--iterations", "200"][..],
        &["mem", "--size-mib", "4", "--passes", "1"],
        &[
            "fileio",
            "--dir",
            "/data",
            "--size-mib",
            "1",
            "--files",
            "20",
        ],
    ] {
        exec(&root, &wl, args)
            .assert()
            .success()
            .stdout(predicate::str::starts_with(format!(
                r#"RESULT {{"test":"{}""#,
                args[0]
            )));
    }
}

/// Kills the child if a test fails before waiting for it, so no guest is left running.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn workload_net_talks_tcp_between_guest_and_host_over_loopback() {
    if !kvm_available() {
        return;
    }
    let (_outer, root) = rootfs();
    let wl = workload();
    // The guest serves on an ephemeral loopback port and says which.
    let mut server = ChildGuard(
        Command::new(cargo_bin("microvm"))
            .args(["exec", "--timeout", "60", "--rootfs"])
            .arg(&root)
            .arg("--")
            .arg(&wl)
            .args(["net", "--serve", "127.0.0.1:0", "--connections", "2"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a RESULT line").unwrap();
    let v: serde_json::Value =
        serde_json::from_str(first.strip_prefix("RESULT ").unwrap()).unwrap();
    let addr = v["facts"]["addr"].as_str().unwrap().to_owned();
    assert_eq!(lines.next().unwrap().unwrap(), "READY");
    // The native client measures against it (one echo and one stream connection).
    let out = Command::new(&wl)
        .args([
            "net",
            "--connect",
            &addr,
            "--round-trips",
            "50",
            "--stream-mib",
            "1",
        ])
        .output()
        .unwrap();
    let status = server.0.wait().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#""test":"net""#));
    assert!(status.success(), "guest server: {status}");
}
