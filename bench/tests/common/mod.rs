//! Shared helpers of bench's integration tests: the real binaries and fake workloads.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `bench` binary under test.
pub fn bench() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("bench").expect("bench binary")
}

/// The real workload binary next to `bench`, built with cargo (bench only depends on
/// the workload's library, so `cargo test -p bench` does not build its binary).
pub fn workload() -> PathBuf {
    built("workload", "workload")
}

/// Binary `bin` of `package`, next to `bench`, built with cargo first.
pub fn built(package: &str, bin: &str) -> PathBuf {
    let bench = assert_cmd::cargo::cargo_bin("bench");
    let path = bench.parent().expect("bin dir").join(bin);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .status()
        .expect("running cargo build");
    assert!(
        status.success(),
        "cargo build -p {package} --bin {bin} failed"
    );
    assert!(path.is_file(), "{} missing after the build", path.display());
    path
}

/// Writes an executable shell script standing in for the workload.
pub fn fake_workload(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("fake-workload");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A fake workload whose `ready` works, `cpu` crashes and `syscall` hangs.
pub const CRASH_AND_HANG: &str = r#"case "$1" in
  ready) echo READY ;;
  idle) echo READY; exec sleep 600 ;;
  cpu) echo 'about to crash' >&2; kill -SEGV $$ ;;
  syscall) exec sleep 600 ;;
  *) echo "unknown $1" >&2; exit 9 ;;
esac"#;
