//! Table-driven checks that each claim's verdict follows from the data on both sides
//! of its threshold, and says "not measured" when a model or scenario is missing.

use std::collections::BTreeMap;

use super::Verdict::{self, DoesNotHold, Holds, HoldsWithNuance, NotMeasured};
use crate::report::testdata::{results_with, sample, sr};
use crate::report::view;
use crate::results::ScenarioResult;

/// The verdict and explanation of claim `id` on results holding `scenarios`.
fn judge(id: &str, scenarios: Vec<ScenarioResult>) -> (Verdict, String) {
    let r = results_with(scenarios);
    let runs = view::runs(std::slice::from_ref(&r));
    let c = super::check_all(&runs[0])
        .into_iter()
        .find(|c| c.id == id)
        .unwrap();
    (c.verdict, c.why)
}

/// Asserts every case of a claim's table.
fn table(id: &str, cases: Vec<(&str, Vec<ScenarioResult>, Verdict)>) {
    for (name, scenarios, want) in cases {
        let (got, why) = judge(id, scenarios);
        assert_eq!(got, want, "{id} case '{name}': {why}");
        assert!(!why.is_empty(), "{id} case '{name}' explains its verdict");
    }
}

/// One sample carrying several metrics.
fn multi(model: &str, scenario: &str, metrics: &[(&str, f64)]) -> ScenarioResult {
    let mut s = sr(model, scenario, "none", &[0.0]);
    s.samples = vec![sample(0, metrics)];
    s
}

fn with_facts(mut s: ScenarioResult, facts: &[(&str, &str)]) -> ScenarioResult {
    for smp in &mut s.samples {
        smp.facts = facts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    }
    s
}

fn mem(model: &str, kib: f64) -> Vec<ScenarioResult> {
    let mut d = sr(
        model,
        "density",
        "mem_available_drop_per_instance_kib",
        &[kib],
    );
    d.params = BTreeMap::from([("instances".to_owned(), "10".to_owned())]);
    let m = multi(
        model,
        "memory",
        &[("instance_kib", kib), ("pss_kib", kib * 0.8)],
    );
    vec![m, d]
}

fn cat(parts: Vec<Vec<ScenarioResult>>) -> Vec<ScenarioResult> {
    parts.into_iter().flatten().collect()
}

#[test]
fn c1_container_lighter_than_vm() {
    table(
        "C1",
        vec![
            (
                "VM 4.5x heavier",
                cat(vec![mem("container", 2000.0), mem("microvm", 9000.0)]),
                Holds,
            ),
            (
                "VM 1.5x heavier",
                cat(vec![mem("container", 2000.0), mem("microvm", 3000.0)]),
                HoldsWithNuance,
            ),
            (
                "VM lighter",
                cat(vec![mem("container", 2000.0), mem("microvm", 1500.0)]),
                DoesNotHold,
            ),
            (
                "one VM lighter, one heavier",
                cat(vec![
                    mem("container", 2000.0),
                    mem("microvm", 9000.0),
                    mem("qemu", 1000.0),
                ]),
                HoldsWithNuance,
            ),
            ("no VM", mem("container", 2000.0), NotMeasured),
            ("no container", mem("microvm", 2000.0), NotMeasured),
        ],
    );
}

#[test]
fn c2_containers_start_faster() {
    let st = |m: &str, v: &[f64]| sr(m, "startup", "launch_to_ready_ms", v);
    table(
        "C2",
        vec![
            (
                "VM 10x slower",
                vec![
                    st("container", &[10.0, 11.0, 12.0]),
                    st("microvm", &[100.0, 110.0, 120.0]),
                ],
                Holds,
            ),
            (
                "VM 1.5x slower",
                vec![
                    st("container", &[10.0, 11.0, 12.0]),
                    st("microvm", &[15.0, 16.0, 17.0]),
                ],
                HoldsWithNuance,
            ),
            (
                "medians apart, distributions overlap",
                vec![
                    st("container", &[10.0, 11.0, 40.0]),
                    st("microvm", &[30.0, 35.0, 38.0]),
                ],
                HoldsWithNuance,
            ),
            (
                "VM faster",
                vec![st("container", &[10.0]), st("microvm", &[5.0])],
                DoesNotHold,
            ),
            ("no VM", vec![st("container", &[10.0])], NotMeasured),
        ],
    );
}

#[test]
fn c3_containers_use_fewer_resources() {
    let cpu = |m: &str, v: f64| sr(m, "startup", "host_cpu_ms", &[v]);
    let im = |m: &str, v: f64| sr(m, "memory", "instance_kib", &[v]);
    table(
        "C3",
        vec![
            (
                "VM costs more; disk not compared",
                vec![
                    cpu("container", 10.0),
                    cpu("microvm", 20.0),
                    im("container", 1e3),
                    im("microvm", 5e3),
                ],
                HoldsWithNuance,
            ),
            (
                "VM costs less",
                vec![
                    cpu("container", 10.0),
                    cpu("microvm", 5.0),
                    im("container", 1e3),
                    im("microvm", 500.0),
                ],
                DoesNotHold,
            ),
            ("nothing measured", vec![], NotMeasured),
        ],
    );
    let (_, why) = judge("C3", vec![cpu("container", 10.0), cpu("microvm", 20.0)]);
    assert!(
        why.contains("disk"),
        "the unmeasured resource is named: {why}"
    );
}

#[test]
fn c4_vm_overhead() {
    let t = |m: &str, scen: &str, metric: &str, v: f64| sr(m, scen, metric, &[v]);
    let native = || {
        vec![
            t("native", "cpu", "cpu.ops_per_s", 1000.0),
            t("native", "syscall", "syscall.ns_per_call", 100.0),
        ]
    };
    table(
        "C4",
        vec![
            (
                "large everywhere",
                cat(vec![
                    native(),
                    vec![
                        t("microvm", "cpu", "cpu.ops_per_s", 500.0),
                        t("microvm", "syscall", "syscall.ns_per_call", 1000.0),
                    ],
                ]),
                Holds,
            ),
            (
                "within 10%",
                cat(vec![
                    native(),
                    vec![
                        t("microvm", "cpu", "cpu.ops_per_s", 980.0),
                        t("microvm", "syscall", "syscall.ns_per_call", 105.0),
                    ],
                ]),
                DoesNotHold,
            ),
            (
                "cpu native, syscalls slow",
                cat(vec![
                    native(),
                    vec![
                        t("microvm", "cpu", "cpu.ops_per_s", 980.0),
                        t("microvm", "syscall", "syscall.ns_per_call", 1000.0),
                    ],
                ]),
                HoldsWithNuance,
            ),
            (
                "only an emulated VM",
                cat(vec![
                    native(),
                    vec![t("qemu", "cpu", "cpu.ops_per_s", 20.0)],
                ]),
                NotMeasured,
            ),
            ("no VM", native(), NotMeasured),
        ],
    );
    let (_, why) = judge(
        "C4",
        cat(vec![
            native(),
            vec![t("qemu", "cpu", "cpu.ops_per_s", 20.0)],
        ]),
    );
    assert!(why.contains("emulat"), "{why}");
}

/// What the `info` workload saw: a kernel release and a memory total.
fn info(model: &str, release: &str, mem_kib: f64) -> ScenarioResult {
    with_facts(
        sr(model, "isolation", "mem_total_kib", &[mem_kib]),
        &[("kernel_release", release), ("kernel_name", "Linux")],
    )
}

/// The fixture host's memory in KiB (`testdata::results_with`).
const HOST_KIB: f64 = 25_165_824.0;
const HOST_KERNEL: &str = "6.1.0-test";

#[test]
fn c5_container_sees_host_kernel_vm_its_own() {
    table(
        "C5",
        vec![
            (
                "as claimed",
                vec![
                    info("container", HOST_KERNEL, HOST_KIB),
                    info("microvm-linux", "6.6.0-guest", 250_000.0),
                ],
                Holds,
            ),
            (
                "guest boots the host's release",
                vec![
                    info("container", HOST_KERNEL, HOST_KIB),
                    info("microvm-linux", HOST_KERNEL, 250_000.0),
                ],
                HoldsWithNuance,
            ),
            (
                "only the kernel-less microVM",
                vec![
                    info("container", HOST_KERNEL, HOST_KIB),
                    info("microvm", "isolab-0.1", 65_536.0),
                ],
                HoldsWithNuance,
            ),
            (
                "reversed",
                vec![
                    info("container", "5.10.0-other", HOST_KIB),
                    info("microvm-linux", HOST_KERNEL, HOST_KIB),
                ],
                DoesNotHold,
            ),
            (
                "no VM",
                vec![info("container", HOST_KERNEL, HOST_KIB)],
                HoldsWithNuance,
            ),
            ("nothing", vec![], NotMeasured),
        ],
    );
}

#[test]
fn c6_vm_exposes_less_of_the_host_kernel() {
    let n = |m: &str, v: f64| sr(m, "isolation", "host_syscalls_reachable", &[v]);
    table(
        "C6",
        vec![
            (
                "fewer but not none",
                vec![n("container", 360.0), n("microvm", 20.0)],
                HoldsWithNuance,
            ),
            (
                "none at all",
                vec![n("container", 360.0), n("microvm", 0.0)],
                Holds,
            ),
            (
                "as many",
                vec![n("container", 360.0), n("microvm", 400.0)],
                DoesNotHold,
            ),
            ("no VM", vec![n("container", 360.0)], NotMeasured),
        ],
    );
}

#[test]
fn c7_image_layers() {
    let img = |reused: f64, next_disk: f64, next_start: f64| {
        multi(
            "container",
            "image",
            &[
                ("layers_total", 3.0),
                ("layers_reused_on_rebuild", reused),
                ("first_disk_kib", 5000.0),
                ("next_disk_kib", next_disk),
                ("first_start_ms", 100.0),
                ("next_start_ms", next_start),
            ],
        )
    };
    table(
        "C7",
        vec![
            (
                "reuse, small disk, quick start",
                vec![img(2.0, 40.0, 50.0)],
                Holds,
            ),
            (
                "reuse and disk, start not quicker",
                vec![img(2.0, 40.0, 120.0)],
                HoldsWithNuance,
            ),
            (
                "nothing reused, no gain",
                vec![img(0.0, 6000.0, 150.0)],
                DoesNotHold,
            ),
            ("no image scenario", vec![], NotMeasured),
        ],
    );
}

#[test]
fn c8_no_interference() {
    let i = |v: &[f64]| sr("container", "interference", "isolated", v);
    table(
        "C8",
        vec![
            ("isolated every time", vec![i(&[1.0, 1.0])], Holds),
            (
                "one sample saw the other's write",
                vec![i(&[1.0, 0.0])],
                DoesNotHold,
            ),
            ("not run", vec![], NotMeasured),
        ],
    );
}

#[test]
fn c9_same_output_everywhere() {
    let c = |m: &str, sum: &str| {
        with_facts(sr(m, "cpu", "cpu.ops_per_s", &[1.0]), &[("checksum", sum)])
    };
    table(
        "C9",
        vec![
            (
                "same checksum",
                vec![c("container", "abc"), c("runc", "abc")],
                Holds,
            ),
            (
                "different checksum",
                vec![c("container", "abc"), c("runc", "abd")],
                DoesNotHold,
            ),
            ("one runtime", vec![c("container", "abc")], NotMeasured),
        ],
    );
}

#[test]
fn c10_namespaces_and_cgroups() {
    let l = |pid1: &str, host: &str, oom: f64, pids: f64| {
        with_facts(
            multi(
                "container",
                "limits",
                &[("oom_killed", oom), ("pids_limit_held", pids)],
            ),
            &[("pid1", pid1), ("own_hostname", host)],
        )
    };
    table(
        "C10",
        vec![
            ("all enforced", vec![l("true", "true", 1.0, 1.0)], Holds),
            (
                "memory limit not enforced",
                vec![l("true", "true", 0.0, 1.0)],
                HoldsWithNuance,
            ),
            (
                "nothing enforced",
                vec![l("false", "false", 0.0, 0.0)],
                DoesNotHold,
            ),
            ("not run", vec![], NotMeasured),
        ],
    );
    // Without the limits scenario, the info workload's PID and hostname still decide
    // the namespace parts (the fixture host is `lab1`).
    let info = |pid: f64, host: &str| {
        with_facts(
            sr("container", "isolation", "pid", &[pid]),
            &[("hostname", host)],
        )
    };
    let (v, why) = judge("C10", vec![info(1.0, "isolab-c1")]);
    assert_eq!(
        v, HoldsWithNuance,
        "namespaces hold, limits not measured: {why}"
    );
    let (v, why) = judge("C10", vec![info(4711.0, "lab1")]);
    assert_eq!(v, DoesNotHold, "{why}");
}

#[test]
fn c11_writes_gone_unless_in_volume() {
    let v = |layer: f64, vol: f64| {
        multi(
            "container",
            "volume",
            &[
                ("layer_write_survives", layer),
                ("volume_write_survives", vol),
            ],
        )
    };
    table(
        "C11",
        vec![
            ("as claimed", vec![v(0.0, 1.0)], Holds),
            ("reversed", vec![v(1.0, 0.0)], DoesNotHold),
            ("layer write survived", vec![v(1.0, 1.0)], HoldsWithNuance),
            ("not run", vec![], NotMeasured),
        ],
    );
}

#[test]
fn c12_other_kernels_need_a_vm() {
    table(
        "C12",
        vec![
            (
                "guest runs another kernel",
                vec![
                    info("container", HOST_KERNEL, HOST_KIB),
                    info("microvm-linux", "6.6.0-guest", 250_000.0),
                ],
                Holds,
            ),
            (
                "guest boots the host's release",
                vec![
                    info("container", HOST_KERNEL, HOST_KIB),
                    info("qemu", HOST_KERNEL, 250_000.0),
                ],
                HoldsWithNuance,
            ),
            (
                "no guest kernel",
                vec![
                    info("container", HOST_KERNEL, HOST_KIB),
                    info("microvm", "isolab", 65_536.0),
                ],
                HoldsWithNuance,
            ),
            (
                "container on another kernel",
                vec![info("container", "5.10.0-other", HOST_KIB)],
                DoesNotHold,
            ),
            ("nothing", vec![], NotMeasured),
        ],
    );
    let (_, why) = judge("C12", vec![info("container", HOST_KERNEL, HOST_KIB)]);
    assert!(
        why.contains("hardware KVM"),
        "the reason names what is missing: {why}"
    );
}

#[test]
fn every_claim_is_checked_once_in_order() {
    let r = results_with(vec![]);
    let runs = view::runs(std::slice::from_ref(&r));
    let ids: Vec<&str> = super::check_all(&runs[0]).iter().map(|c| c.id).collect();
    let want: Vec<String> = (1..=12).map(|i| format!("C{i}")).collect();
    assert_eq!(ids, want);
}
