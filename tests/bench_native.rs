//! End to end across crates: `bench run --quick` on the real workload as a native
//! process writes a results file with every scenario measured, the cpu checksum the
//! workload computes, `info` facts that agree with the host, and a report.

#[path = "../bench/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use bench::results::Results;

#[test]
fn quick_native_run_measures_every_scenario() {
    let workload = common::workload();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    common::bench()
        .args([
            "run",
            "--quick",
            "--models",
            "native",
            "--iterations",
            "2",
            "--density",
            "1,3",
        ])
        .arg("--workload")
        .arg(&workload)
        .arg("--out")
        .arg(&out)
        .timeout(Duration::from_secs(120))
        .assert()
        .success();
    let r = Results::load(&out.join("results.json")).unwrap();
    assert!(r.finished_at.is_some());
    assert!(r.models[0].available, "{:?}", r.models[0].skip_reason);
    for s in &r.scenarios {
        assert!(
            s.samples.iter().all(|x| x.ok),
            "{} failed: {:?}",
            s.scenario,
            s.samples
        );
    }
    let get = |name: &str| r.scenarios.iter().find(|s| s.scenario == name).unwrap();
    for (scenario, metric) in [
        ("startup", "launch_to_ready_ms"),
        ("startup", "host_cpu_ms"),
        ("memory", "pss_kib"),
        ("cpu", "cpu.ops_per_s"),
        ("mem", "mem.copy_gb_per_s"),
        ("syscall", "syscall.ns_per_call"),
        ("fileio", "fileio.write_mb_per_s"),
        ("net", "net.rtt_us"),
        ("isolation", "mem_total_kib"),
    ] {
        assert!(
            get(scenario).summary.contains_key(metric),
            "{scenario} lacks {metric}"
        );
    }
    let checksums: Vec<&String> = get("cpu")
        .samples
        .iter()
        .map(|s| &s.facts["checksum"])
        .collect();
    assert!(checksums.windows(2).all(|w| w[0] == w[1]), "{checksums:?}");
    let info = &get("isolation").samples[0].facts;
    assert_eq!(info["kernel_release"], r.host.kernel);
    assert_eq!(info["hostname"], r.host.hostname);
    let density: Vec<_> = r
        .scenarios
        .iter()
        .filter(|s| s.scenario == "density")
        .collect();
    assert_eq!(density.len(), 2);
    assert_eq!(density[1].samples[0].metrics["ready"].value, 3.0);
    assert!(out.join("report.md").is_file());
}
