//! Helpers shared by the engine's integration tests (each test file includes this module
//! with `mod common;` and uses what it needs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

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

/// The workspace's debug `workload` binary, when it is built.
pub fn workload_binary() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-gnu/debug/workload");
    path.is_file().then_some(path)
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
