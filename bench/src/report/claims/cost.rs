//! The cost claims: containers are lighter (C1), start faster (C2) and use fewer
//! resources (C3) than VMs, and a VM's hypervisor costs throughput (C4).

use super::{check, combine, ClaimCheck, Evidence, Outcome, Verdict};
use crate::report::summary;
use crate::report::view::{self, num, Kind, Run};

/// Reads one model's figure as evidence, or `None` when it has none.
type Getter<'g> = dyn Fn(&str) -> Option<Evidence> + 'g;

/// Why no model of a kind has a figure in `scenario`.
pub(super) fn none_of(run: &Run, k: Kind, scenario: &str, metric: &str) -> String {
    let names: Vec<String> = run
        .models()
        .into_iter()
        .filter(|m| view::kind(m) == k)
        .collect();
    let names = if names.is_empty() {
        match k {
            Kind::Container => vec!["container".to_owned()],
            _ => vec!["microvm".to_owned(), "microvm-linux".to_owned()],
        }
    } else {
        names
    };
    let why: Vec<String> = names
        .iter()
        .map(|m| run.why_no_metric(m, scenario, metric))
        .collect();
    why.join("; ")
}

/// Compares every container model with every VM model on one figure (lower is
/// lighter): VM / container ratios of at least `strong` hold, ratios above 1 hold
/// with a nuance, the rest do not hold. Pushes the figures and ratios to `ev`.
fn versus(
    run: &Run,
    (scenario, metric): (&str, &str),
    get: &Getter,
    strong: f64,
    ev: &mut Vec<Evidence>,
) -> Outcome {
    let side = |k: Kind| -> Vec<(String, Evidence)> {
        let models = run.measured_of(k).into_iter();
        models
            .filter_map(|m| Some((run.display(&m), get(&m)?)))
            .collect()
    };
    let (cs, vs) = (side(Kind::Container), side(Kind::Vm));
    if cs.is_empty() || vs.is_empty() {
        let k = if cs.is_empty() {
            Kind::Container
        } else {
            Kind::Vm
        };
        return (Verdict::NotMeasured, none_of(run, k, scenario, metric));
    }
    ev.extend(cs.iter().chain(&vs).map(|(_, e)| e.clone()));
    let (mut strong_pairs, mut weak, mut against) = (vec![], vec![], vec![]);
    for (c, ce) in &cs {
        for (v, ve) in &vs {
            let r = Evidence::ratio(format!("{v} ÷ {c}"), ve, ce);
            let text = format!("{v} ÷ {c} = {}×", num(r.number()));
            match r.number() {
                x if x >= strong && x > 1.0 => strong_pairs.push(text),
                x if x > 1.0 => weak.push(text),
                _ => against.push(text),
            }
            ev.push(r);
        }
    }
    if weak.is_empty() && against.is_empty() {
        (
            Verdict::Holds,
            format!("every VM above the container ({})", strong_pairs.join(", ")),
        )
    } else if against.is_empty() {
        let msg = format!(
            "containers lower, but by less than {strong}× ({})",
            weak.join(", ")
        );
        (Verdict::HoldsWithNuance, msg)
    } else if strong_pairs.is_empty() && weak.is_empty() {
        (
            Verdict::DoesNotHold,
            format!("no VM above the container ({})", against.join(", ")),
        )
    } else {
        let pro: Vec<String> = strong_pairs.into_iter().chain(weak).collect();
        let msg = format!(
            "holds for {}; not for {}",
            pro.join(", "),
            against.join(", ")
        );
        (Verdict::HoldsWithNuance, msg)
    }
}

/// A getter of the median of `metric` in `scenario`.
fn median_of<'g>(
    run: &'g Run,
    scenario: &'g str,
    metric: &'g str,
    what: &'g str,
) -> Box<Getter<'g>> {
    Box::new(move |m: &str| {
        let f = run.figure(m, scenario, metric)?;
        Some(Evidence::stat(
            format!("{}: {what} (median)", run.display(m)),
            &f,
            "median",
        ))
    })
}

/// A getter of the MemAvailable drop per instance at the model's largest density.
fn density_of<'g>(run: &'g Run) -> Box<Getter<'g>> {
    Box::new(move |m: &str| {
        let (n, sr) =
            run.densities(m).into_iter().rev().find(|(_, sr)| {
                view::figure(sr, "mem_available_drop_per_instance_kib").is_some()
            })?;
        let f = view::figure(sr, "mem_available_drop_per_instance_kib")?;
        let what = format!(
            "{}: MemAvailable drop per instance, N={n} (median)",
            run.display(m)
        );
        Some(Evidence::stat(what, &f, "median"))
    })
}

const C1: (&str, &str, &str) = (
    "C1",
    "A container has no guest OS and shares the host kernel, so it is lighter than a VM.",
    "holds when every VM model's host memory per idle instance (PSS plus cgroup or guest \
     memory; PSS alone; and the MemAvailable drop per instance at the largest N) is at \
     least 2× the container's; above 1× holds with a nuance; at or below 1× does not hold",
);

/// C1: memory per idle instance and per instance at density, container vs VM.
pub(super) fn c1(run: &Run) -> ClaimCheck {
    let mut ev = vec![];
    let mem = median_of(
        run,
        "memory",
        "instance_kib",
        "host memory per idle instance",
    );
    let pss = median_of(run, "memory", "pss_kib", "PSS of its host processes");
    let parts = [
        (
            "memory per idle instance",
            versus(run, ("memory", "instance_kib"), &*mem, 2.0, &mut ev),
        ),
        (
            "PSS per idle instance",
            versus(run, ("memory", "pss_kib"), &*pss, 2.0, &mut ev),
        ),
        (
            "MemAvailable drop per instance",
            versus(
                run,
                ("density", "mem_available_drop_per_instance_kib"),
                &*density_of(run),
                2.0,
                &mut ev,
            ),
        ),
    ];
    check(C1, combine(&parts), ev)
}

const C2: (&str, &str, &str) = (
    "C2",
    "Containers start much faster than VMs, because a VM must boot an OS.",
    "holds when every VM model's median launch-to-ready time is at least 2× the \
     container's and the distributions do not overlap (container p95 below VM p5); \
     faster but by less, or overlapping, holds with a nuance; otherwise does not hold",
);

/// C2: launch-to-ready latency, with the spread and the largest startup phases.
pub(super) fn c2(run: &Run) -> ClaimCheck {
    let mut ev = vec![];
    let get = median_of(run, "startup", "launch_to_ready_ms", "launch to ready");
    let main = versus(run, ("startup", "launch_to_ready_ms"), &*get, 2.0, &mut ev);
    let mut parts = vec![("median launch to ready", main.clone())];
    if matches!(main.0, Verdict::Holds | Verdict::HoldsWithNuance) {
        parts.push(("spread", overlap(run, &mut ev)));
    }
    for m in run.models() {
        ev.extend(largest_phase(run, &m));
    }
    check(C2, combine(&parts), ev)
}

/// Whether any container's p95 reaches any VM's p5.
fn overlap(run: &Run, ev: &mut Vec<Evidence>) -> Outcome {
    let fig = |m: &String| run.figure(m, "startup", "launch_to_ready_ms");
    let mut overlaps = vec![];
    for c in run.measured_of(Kind::Container) {
        let Some(cf) = fig(&c) else { continue };
        for v in run.measured_of(Kind::Vm) {
            let Some(vf) = fig(&v) else { continue };
            if cf.summary.p95 >= vf.summary.p5 {
                let (a, b) = (num(cf.summary.p95), num(vf.summary.p5));
                overlaps.push(format!("{c} p95 {a} ms ≥ {} p5 {b} ms", run.display(&v)));
                ev.push(Evidence::stat(
                    format!("{c}: launch to ready (p95)"),
                    &cf,
                    "p95",
                ));
                ev.push(Evidence::stat(
                    format!("{}: launch to ready (p5)", run.display(&v)),
                    &vf,
                    "p5",
                ));
            }
        }
    }
    if overlaps.is_empty() {
        (
            Verdict::Holds,
            "no overlap between container and VM distributions".into(),
        )
    } else {
        (
            Verdict::HoldsWithNuance,
            format!("the distributions overlap: {}", overlaps.join(", ")),
        )
    }
}

/// The model's longest startup phase (by median over successful samples).
fn largest_phase(run: &Run, model: &str) -> Option<Evidence> {
    let sr = run.result(model, "startup")?;
    let mut names: Vec<&str> = sr
        .samples
        .iter()
        .flat_map(|s| s.phases.iter().map(|p| p.name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let (name, med) = names
        .into_iter()
        .filter_map(|n| Some((n, phase_median(sr, n)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    Some(Evidence {
        what: format!(
            "{}: longest startup phase, {name} (median)",
            run.display(model)
        ),
        value: super::Value::Num {
            value: med,
            unit: "us".into(),
        },
        source: format!("{model}/startup/phases.{name}.median"),
    })
}

/// The median duration of one phase over the successful samples.
pub(crate) fn phase_median(sr: &crate::results::ScenarioResult, name: &str) -> Option<f64> {
    let us: Vec<f64> = sr
        .samples
        .iter()
        .filter(|s| s.ok)
        .flat_map(|s| s.phases.iter().filter(|p| p.name == name).map(|p| p.us))
        .collect();
    summary::summarize(&us, "us").map(|s| s.median)
}

const C3: (&str, &str, &str) = (
    "C3",
    "Containers use fewer resources (CPU, memory, storage) than VMs.",
    "each resource holds when every VM model's median exceeds the container's (host CPU \
     time for launch and teardown, host memory per idle instance, disk per instance); \
     a resource not measured for both sides is named; all hold = holds, all fail = does \
     not hold, otherwise holds with a nuance",
);

/// C3: host CPU, memory and disk per instance, container vs VM.
pub(super) fn c3(run: &Run) -> ClaimCheck {
    let mut ev = vec![];
    let cpu = median_of(
        run,
        "startup",
        "host_cpu_ms",
        "host CPU for launch and teardown",
    );
    let mem = median_of(
        run,
        "memory",
        "instance_kib",
        "host memory per idle instance",
    );
    let parts = [
        (
            "CPU",
            versus(run, ("startup", "host_cpu_ms"), &*cpu, 1.0, &mut ev),
        ),
        (
            "memory",
            versus(run, ("memory", "instance_kib"), &*mem, 1.0, &mut ev),
        ),
        ("disk", disk(run, &mut ev)),
    ];
    check(C3, combine(&parts), ev)
}

/// Disk per instance: the image scenario measures containers; no VM figure exists.
fn disk(run: &Run, ev: &mut Vec<Evidence>) -> Outcome {
    let get = median_of(run, "image", "next_disk_kib", "disk of a further instance");
    let found: Vec<Evidence> = run
        .measured_of(Kind::Container)
        .iter()
        .filter_map(|m| get(m))
        .collect();
    ev.extend(found.iter().cloned());
    let why = if found.is_empty() {
        none_of(run, Kind::Container, "image", "next_disk_kib")
    } else {
        "measured for containers only; no VM disk figure in this run".to_owned()
    };
    (Verdict::NotMeasured, why)
}

const C4: (&str, &str, &str) = (
    "C4",
    "A VM has large overhead because its resources come through a hypervisor.",
    "per throughput figure, slowdown = native ÷ VM for rates, VM ÷ native for costs; \
     large overhead is a slowdown of at least 1.5×, none is within 1.1×; holds when \
     every figure of every hardware-assisted VM model is large, does not hold when none \
     is above 1.1×, otherwise holds with a nuance; emulated models are shown, not judged",
);

/// C4: throughput of the VM models relative to native.
pub(super) fn c4(run: &Run) -> ClaimCheck {
    let mut ev = vec![];
    let (mut large, mut small, mut middle) = (vec![], vec![], vec![]);
    let mut judged = 0;
    for vm in run.measured_of(Kind::Vm) {
        for (metric, slow) in slowdowns(run, &vm, &mut ev) {
            if run.emulated(&vm) {
                continue;
            }
            judged += 1;
            let text = format!("{vm} {metric} {}×", num(slow));
            match slow {
                s if s >= 1.5 => large.push(text),
                s if s <= 1.1 => small.push(text),
                _ => middle.push(text),
            }
        }
    }
    check(
        C4,
        c4_outcome(run, judged, &large, &small, &middle, ev.is_empty()),
        ev,
    )
}

/// The C4 verdict from the slowdowns sorted into large, small and in between.
fn c4_outcome(
    run: &Run,
    judged: usize,
    large: &[String],
    small: &[String],
    middle: &[String],
    nothing: bool,
) -> Outcome {
    let pvm = if run.results.host.kvm_flavor == crate::results::KvmFlavor::Pvm {
        " (this host's KVM is PVM: guest kernel code is emulated, hardware KVM differs)"
    } else {
        ""
    };
    if judged == 0 {
        let why = if nothing {
            none_of(run, Kind::Vm, "cpu", "cpu.ops_per_s")
        } else {
            "only emulated VMs ran the throughput tests; their slowdown is the emulator's, not a hypervisor's".into()
        };
        return (Verdict::NotMeasured, why);
    }
    if small.is_empty() && middle.is_empty() {
        return (
            Verdict::Holds,
            format!("large overhead on every figure: {}{pvm}", large.join(", ")),
        );
    }
    if large.is_empty() && middle.is_empty() {
        return (
            Verdict::DoesNotHold,
            format!("within 1.1× of native: {}{pvm}", small.join(", ")),
        );
    }
    let mut msg = vec![];
    for (label, list) in [
        ("large", large),
        ("moderate", middle),
        ("negligible", small),
    ] {
        if !list.is_empty() {
            msg.push(format!("{label}: {}", list.join(", ")));
        }
    }
    (Verdict::HoldsWithNuance, format!("{}{pvm}", msg.join("; ")))
}

/// The slowdown of `model` against native per throughput figure; pushes evidence.
fn slowdowns(run: &Run, model: &str, ev: &mut Vec<Evidence>) -> Vec<(String, f64)> {
    let mut out = vec![];
    for scenario in view::THROUGHPUT {
        let (Some(nat), Some(vm)) = (run.result("native", scenario), run.result(model, scenario))
        else {
            continue;
        };
        for metric in view::throughput_metrics(vm) {
            let (Some(nf), Some(vf)) = (view::figure(nat, &metric), view::figure(vm, &metric))
            else {
                continue;
            };
            let ne = Evidence::stat(format!("native: {metric} (median)"), &nf, "median");
            let ve = Evidence::stat(
                format!("{}: {metric} (median)", run.display(model)),
                &vf,
                "median",
            );
            let what = format!("{}: {metric} slowdown vs native", run.display(model));
            let r = if view::higher_is_better(&metric) {
                Evidence::ratio(what, &ne, &ve)
            } else {
                Evidence::ratio(what, &ve, &ne)
            };
            out.push((metric, r.number()));
            ev.extend([ne, ve, r]);
        }
    }
    out
}
