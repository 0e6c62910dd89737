//! `bench` as a user runs it: bad arguments, a crashing and a hanging workload, an
//! interrupted run whose partial results still make a report, and `doctor`.

mod common;

use std::time::{Duration, Instant};

use bench::results::Results;
use common::{bench, fake_workload, CRASH_AND_HANG};
use predicates::prelude::*;

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    bench()
        .args(["run", "--models", "vmware"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("invalid value 'vmware'")
                .and(predicate::str::contains("native")),
        );
    bench()
        .args(["run", "--iterations", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--iterations"));
    bench()
        .args(["run", "--scenarios", "startup,bogus"])
        .assert()
        .code(2);
    bench().arg("frobnicate").assert().code(2);
}

#[test]
fn help_explains_the_subcommands() {
    bench().arg("--help").assert().success().stdout(
        predicate::str::contains("run")
            .and(predicate::str::contains("doctor"))
            .and(predicate::str::contains("demo")),
    );
    bench()
        .args(["run", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--quick").and(predicate::str::contains("--seed")));
}

#[test]
fn crashing_and_hanging_workloads_are_failed_samples_not_a_hung_harness() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_workload(dir.path(), CRASH_AND_HANG);
    let out = dir.path().join("out");
    bench()
        .args([
            "run",
            "--models",
            "native",
            "--scenarios",
            "startup,cpu,syscall",
        ])
        .args([
            "--iterations",
            "1",
            "--warmup",
            "0",
            "--timeout",
            "2",
            "--no-report",
        ])
        .arg("--workload")
        .arg(&fake)
        .arg("--out")
        .arg(&out)
        .timeout(Duration::from_secs(60))
        .assert()
        .success()
        .stdout(predicate::str::contains("failed"));
    let r = Results::load(&out.join("results.json")).unwrap();
    assert!(r.finished_at.is_some());
    // The file round-trips: what is saved again loads back equal.
    r.save(&dir.path().join("again.json")).unwrap();
    assert_eq!(Results::load(&dir.path().join("again.json")).unwrap(), r);
    let get = |s: &str| r.scenarios.iter().find(|x| x.scenario == s).unwrap();
    assert!(get("startup").samples[0].ok);
    let crash = get("cpu").samples[0].error.clone().unwrap();
    assert!(
        crash.contains("signal 11") && crash.contains("about to crash"),
        "{crash}"
    );
    let hang = get("syscall").samples[0].error.clone().unwrap();
    assert!(hang.contains("did not exit within"), "{hang}");
}

#[test]
fn a_missing_workload_is_a_skip_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    bench()
        .args([
            "run",
            "--models",
            "native",
            "--scenarios",
            "startup",
            "--no-report",
        ])
        .args(["--workload", "/nonexistent/isolab-workload", "--out"])
        .arg(dir.path())
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("error: none of the models")
                .and(predicate::str::contains("cargo build -p workload")),
        );
}

/// Waits until `path` holds a results file with at least one sample.
fn wait_for_a_sample(path: &std::path::Path) -> Results {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = Results::load(path) {
            if r.scenarios.iter().any(|s| !s.samples.is_empty()) {
                return r;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no sample was written to {}", path.display());
}

#[test]
fn killed_run_keeps_partial_results_that_report_can_use() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_workload(dir.path(), CRASH_AND_HANG);
    let out = dir.path().join("out");
    // startup samples come quickly; the hanging syscall scenario keeps the run going.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("bench"))
        .args([
            "run",
            "--models",
            "native",
            "--scenarios",
            "startup,syscall",
        ])
        .args([
            "--iterations",
            "3",
            "--warmup",
            "0",
            "--timeout",
            "30",
            "--no-report",
        ])
        // A killed harness cannot remove its scratch directory: keep it in ours.
        .env("TMPDIR", dir.path())
        .arg("--workload")
        .arg(&fake)
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_a_sample(&out.join("results.json"));
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = Results::load(&out.join("results.json")).unwrap();
    assert_eq!(partial.finished_at, None);
    let report = dir.path().join("report");
    bench()
        .arg("report")
        .arg(out.join("results.json"))
        .arg("--out")
        .arg(&report)
        .assert()
        .success();
    assert!(report.join("report.md").is_file());
}

#[test]
fn ctrl_c_stops_after_the_sample_in_flight_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_workload(dir.path(), CRASH_AND_HANG);
    let out = dir.path().join("out");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("bench"))
        .args([
            "run",
            "--models",
            "native",
            "--scenarios",
            "startup,syscall",
        ])
        .args([
            "--iterations",
            "50",
            "--warmup",
            "0",
            "--timeout",
            "2",
            "--no-report",
        ])
        .arg("--workload")
        .arg(&fake)
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_a_sample(&out.join("results.json"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let r = Results::load(&out.join("results.json")).unwrap();
    let taken: usize = r.scenarios.iter().map(|s| s.samples.len()).sum();
    assert!(
        taken < 100,
        "the run went on after Ctrl-C ({taken} samples)"
    );
}

#[test]
fn doctor_lists_each_piece_with_fixes_for_missing_ones() {
    bench()
        .args([
            "doctor",
            "--firecracker",
            "/nonexistent/fc",
            "--workload",
            "/nonexistent/isolab-w",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("root")
                .and(predicate::str::contains("/dev/kvm"))
                .and(predicate::str::contains("cgroups"))
                .and(predicate::str::contains("overlayfs"))
                .and(predicate::str::contains("runc"))
                .and(predicate::str::contains("MISS workload"))
                .and(predicate::str::contains("fix: cargo build")),
        );
}

/// Regression: a density run whose MemAvailable "drop" was 0 at one N and negative at
/// another (a busy host) made the report's plot axis overflow and `bench run` panic.
#[test]
fn report_survives_a_negative_memavailable_drop() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/negative-memavailable-drop.json"
    );
    let out = tempfile::tempdir().unwrap();
    bench()
        .arg("report")
        .arg(fixture)
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    assert!(out.path().join("plots/density.svg").is_file());
}
