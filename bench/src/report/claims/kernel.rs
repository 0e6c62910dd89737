//! The kernel and isolation claims: a container sees the host's kernel and a VM its
//! own (C5), a VM exposes less of the host kernel (C6), and other kernels need a VM
//! (C12). All read the `isolation` scenario (the `info` workload in each model).

use super::{check, combine, ClaimCheck, Evidence, Outcome, Value, Verdict};
use crate::report::view::{Kind, Run};

/// A fact the `info` workload reported in `model`, as evidence.
fn info(run: &Run, model: &str, name: &str) -> Option<Evidence> {
    let sr = run.result(model, "isolation")?;
    let text = sr
        .samples
        .iter()
        .filter(|s| s.ok)
        .find_map(|s| s.facts.get(name))?;
    let what = format!("{}: {name}", run.display(model));
    Some(Evidence::text(
        what,
        text,
        format!("{model}/isolation/facts.{name}"),
    ))
}

/// A metric of the isolation scenario, as median evidence.
fn metric(run: &Run, model: &str, name: &str) -> Option<Evidence> {
    let f = run.figure(model, "isolation", name)?;
    Some(Evidence::stat(
        format!("{}: {name} (median)", run.display(model)),
        &f,
        "median",
    ))
}

/// The host's kernel release and memory, as evidence.
fn host_evidence(run: &Run) -> (Evidence, Evidence) {
    let h = &run.results.host;
    let release = Evidence::text("host: kernel release", &h.kernel, "host.kernel".into());
    let mem = Evidence {
        what: "host: memory total".into(),
        value: Value::Num {
            value: h.memory_bytes as f64 / 1024.0,
            unit: "KiB".into(),
        },
        source: "host.memory_bytes/1024".into(),
    };
    (release, mem)
}

fn text_of(e: &Evidence) -> String {
    e.value.to_string()
}

/// Models of a kind whose `info` reported a kernel release.
fn with_release(run: &Run, k: Kind, ev: &mut Vec<Evidence>) -> Vec<(String, String)> {
    let mut out = vec![];
    for m in run.measured_of(k) {
        if let Some(e) = info(run, &m, "kernel_release") {
            out.push((m, text_of(&e)));
            ev.push(e);
        }
    }
    out
}

/// Whether every container reports the host's kernel release.
fn containers_share(run: &Run, ev: &mut Vec<Evidence>) -> Outcome {
    let host = &run.results.host.kernel;
    let cs = with_release(run, Kind::Container, ev);
    if cs.is_empty() {
        return (
            Verdict::NotMeasured,
            super::cost::none_of(run, Kind::Container, "isolation", "kernel_release"),
        );
    }
    let differ: Vec<String> = cs
        .iter()
        .filter(|(_, r)| r != host)
        .map(|(m, r)| format!("{m} reports {r}"))
        .collect();
    if differ.is_empty() {
        let names: Vec<&str> = cs.iter().map(|(m, _)| m.as_str()).collect();
        (
            Verdict::Holds,
            format!("{} report the host's kernel {host}", names.join(", ")),
        )
    } else {
        (
            Verdict::DoesNotHold,
            format!("{} on host kernel {host}", differ.join(", ")),
        )
    }
}

const C5: (&str, &str, &str) = (
    "C5",
    "A container sees the host's kernel; a VM runs its own.",
    "holds when every container's `info` reports the host's kernel release and every VM's \
     reports another release or another memory total (its own kernel's view); a VM with \
     the host's release but its own memory total, or only the kernel-less microVM, holds \
     with a nuance",
);

/// C5: what kernel and memory each model's workload sees.
pub(super) fn c5(run: &Run) -> ClaimCheck {
    let (release, mem) = host_evidence(run);
    let host_kib = mem.number();
    let mut ev = vec![release, mem];
    let containers = containers_share(run, &mut ev);
    let vms = vms_own(run, host_kib, &mut ev);
    check(C5, combine(&[("containers", containers), ("VMs", vms)]), ev)
}

/// Whether every VM reports its own kernel (another release or memory total).
fn vms_own(run: &Run, host_kib: f64, ev: &mut Vec<Evidence>) -> Outcome {
    let host = run.results.host.kernel.clone();
    let vms = with_release(run, Kind::Vm, ev);
    if vms.is_empty() {
        return (
            Verdict::NotMeasured,
            super::cost::none_of(run, Kind::Vm, "isolation", "kernel_release"),
        );
    }
    let (mut own, mut same_release, mut hosts) = (vec![], vec![], vec![]);
    for (m, r) in &vms {
        let mem = metric(run, m, "mem_total_kib");
        let mem_differs = mem
            .as_ref()
            .is_some_and(|e| (e.number() - host_kib).abs() > host_kib * 0.01);
        if let Some(e) = mem {
            ev.push(e);
        }
        match (r != &host, mem_differs) {
            (true, _) => own.push(format!("{} reports {r}", run.display(m))),
            (false, true) => same_release.push(run.display(m)),
            (false, false) => hosts.push(run.display(m)),
        }
    }
    vm_outcome(&vms, &own, &same_release, &hosts)
}

/// The VM half of C5 from the models sorted by what they reported.
fn vm_outcome(
    vms: &[(String, String)],
    own: &[String],
    same: &[String],
    hosts: &[String],
) -> Outcome {
    if !hosts.is_empty() {
        let v = if own.is_empty() && same.is_empty() {
            Verdict::DoesNotHold
        } else {
            Verdict::HoldsWithNuance
        };
        return (
            v,
            format!("{} report the host's kernel and memory", hosts.join(", ")),
        );
    }
    if !same.is_empty() {
        let mut msg = format!(
            "{} booted the host's kernel release, but see their own memory total",
            same.join(", ")
        );
        if !own.is_empty() {
            msg = format!("{}; {msg}", own.join(", "));
        }
        return (Verdict::HoldsWithNuance, msg);
    }
    if vms.iter().all(|(m, _)| m == "microvm") {
        let msg = format!(
            "only the kernel-less microVM ran: it has no guest kernel, its monitor answers ({})",
            own.join(", ")
        );
        return (Verdict::HoldsWithNuance, msg);
    }
    (Verdict::Holds, own.join(", "))
}

/// Syscall counts by model.
type Counts = Vec<(String, f64)>;

const C6: (&str, &str, &str) = (
    "C6",
    "VMs isolate completely; containers share the kernel and isolate less.",
    "holds with a nuance when every VM model lets its workload reach fewer distinct host \
     syscalls than every container (fewer, but not zero: the monitor still runs on the \
     host kernel); holds only at zero; does not hold when a VM reaches as many",
);

/// C6: the host kernel surface each model exposes.
pub(super) fn c6(run: &Run) -> ClaimCheck {
    let mut ev = vec![];
    let get = |k: Kind, ev: &mut Vec<Evidence>| -> Vec<(String, f64)> {
        let mut out = vec![];
        for m in run.measured_of(k) {
            if let Some(e) = metric(run, &m, "host_syscalls_reachable") {
                out.push((run.display(&m), e.number()));
                ev.push(e);
            }
            ev.extend(metric(run, &m, "exits_total"));
            ev.extend(info(run, &m, "exit_reasons"));
        }
        out
    };
    let (cs, vs) = (get(Kind::Container, &mut ev), get(Kind::Vm, &mut ev));
    check(C6, c6_outcome(run, &cs, &vs), ev)
}

fn c6_outcome(run: &Run, cs: &[(String, f64)], vs: &[(String, f64)]) -> Outcome {
    use crate::report::view::num;
    if cs.is_empty() {
        return (
            Verdict::NotMeasured,
            super::cost::none_of(run, Kind::Container, "isolation", "host_syscalls_reachable"),
        );
    }
    if vs.is_empty() {
        return (
            Verdict::NotMeasured,
            super::cost::none_of(run, Kind::Vm, "isolation", "host_syscalls_reachable"),
        );
    }
    let fewest_c = cs.iter().map(|(_, n)| *n).fold(f64::INFINITY, f64::min);
    let list = |xs: &[(String, f64)]| -> String {
        let v: Vec<String> = xs.iter().map(|(m, n)| format!("{m} {}", num(*n))).collect();
        v.join(", ")
    };
    let (fewer, not): (Counts, Counts) = vs.iter().cloned().partition(|(_, n)| *n < fewest_c);
    let both = format!("VMs: {}; containers: {}", list(vs), list(cs));
    match (fewer.is_empty(), not.is_empty()) {
        (_, true) if fewer.iter().all(|(_, n)| *n == 0.0) => (Verdict::Holds, both),
        (_, true) => (
            Verdict::HoldsWithNuance,
            format!("fewer host syscalls, but not none ({both})"),
        ),
        (true, _) => (
            Verdict::DoesNotHold,
            format!("no VM exposes fewer host syscalls ({both})"),
        ),
        (false, false) => (
            Verdict::HoldsWithNuance,
            format!("only {} expose fewer ({both})", list(&fewer)),
        ),
    }
}

const C12: (&str, &str, &str) = (
    "C12",
    "A Linux host runs only Linux containers; other kernels need a VM.",
    "holds when every container reports the host's kernel and a VM with a guest kernel \
     reports another release; a guest booting the host's own release, or no guest \
     kernel measured, holds with a nuance (the part not shown is named)",
);

/// C12: the kernel each model runs.
pub(super) fn c12(run: &Run) -> ClaimCheck {
    let (release, _) = host_evidence(run);
    let mut ev = vec![release];
    let containers = containers_share(run, &mut ev);
    let guests = guest_kernels(run, &mut ev);
    check(
        C12,
        combine(&[("containers", containers), ("other kernels", guests)]),
        ev,
    )
}

/// Whether a VM with a guest kernel ran another kernel than the host's.
fn guest_kernels(run: &Run, ev: &mut Vec<Evidence>) -> Outcome {
    let host = run.results.host.kernel.clone();
    let mut all = vec![];
    let guests: Vec<(String, String)> = with_release(run, Kind::Vm, &mut all)
        .into_iter()
        .filter(|(m, _)| m != "microvm")
        .collect();
    ev.extend(
        all.into_iter()
            .filter(|e| !e.source.starts_with("microvm/")),
    );
    if guests.is_empty() {
        let why = format!(
            "no guest kernel ran: {}",
            run.why_missing("microvm-linux", "isolation")
        );
        return (Verdict::NotMeasured, why);
    }
    let other: Vec<String> = guests
        .iter()
        .filter(|(_, r)| r != &host)
        .map(|(m, r)| format!("{} ran {r}", run.display(m)))
        .collect();
    if other.is_empty() {
        let msg =
            format!("the guests booted the host's own release {host}; no other kernel was shown");
        (Verdict::HoldsWithNuance, msg)
    } else {
        (
            Verdict::Holds,
            format!("{} on host kernel {host}", other.join(", ")),
        )
    }
}
