//! Helpers shared by engine's integration tests.

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use assert_cmd::Command;

/// The real `workload` binary next to `engine`, built by cargo once per test binary:
/// engine does not depend on it, so `cargo test -p engine` alone does not build it,
/// and one left by an earlier build may be stale.
pub fn workload() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = assert_cmd::cargo::cargo_bin("engine")
                .parent()
                .expect("the bin dir")
                .to_owned();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = std::process::Command::new(cargo);
            build.args(["build", "--quiet", "-p", "workload", "--bin", "workload"]);
            // The bin dir is named after the profile; `debug` is the dev profile.
            match dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => {}
                Some(profile) => {
                    build.args(["--profile", profile]);
                }
            }
            let status = build.status().expect("running cargo build -p workload");
            assert!(status.success(), "cargo build -p workload failed");
            let path = dir.join("workload");
            assert!(path.is_file(), "{} missing after the build", path.display());
            path
        })
        .clone()
}

/// The docker-like `engine` binary with its own state `--root`.
pub fn engine(root: &Path) -> Command {
    let mut cmd = Command::cargo_bin("engine").unwrap();
    cmd.arg("--root").arg(root);
    cmd
}

/// Whether the tests run as root (containers, mounts and cgroups need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Fails the test with the command's stderr unless it exited successfully.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
