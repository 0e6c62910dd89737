//! The container-only claims, measured with isolab's engine (and the other OCI
//! runtimes): image layers (C7), no interference (C8), the same output everywhere
//! (C9), namespaces and cgroups (C10), and what survives removal (C11).

use super::{check, combine, ClaimCheck, Evidence, Outcome, Verdict};
use crate::report::view::{self, num, Kind, Run};

/// Whether `name` (a 0/1 metric or a true/false fact) equals `expect` in every
/// successful sample of the first container model that measured it.
fn flag(run: &Run, scenario: &str, name: &str, expect: bool) -> Option<(String, bool, Evidence)> {
    run.measured_of(Kind::Container).into_iter().find_map(|m| {
        let sr = run.result(&m, scenario)?;
        if let Some(f) = view::figure(sr, name) {
            let stat = if expect { "min" } else { "max" };
            let e = Evidence::stat(format!("{m}: {name} ({stat} over samples)"), &f, stat);
            let ok = (e.number() >= 0.5) == expect;
            return Some((m, ok, e));
        }
        let facts: Vec<&String> = sr
            .samples
            .iter()
            .filter(|s| s.ok)
            .filter_map(|s| s.facts.get(name))
            .collect();
        let first = facts.first()?;
        let ok = facts.iter().all(|f| truthy(f) == expect);
        let e = Evidence::text(
            format!("{m}: {name}"),
            first,
            format!("{m}/{scenario}/facts.{name}"),
        );
        Some((m, ok, e))
    })
}

/// Reads a fact as a boolean: `1`, `true` and `yes` are true.
fn truthy(fact: &str) -> bool {
    matches!(
        fact.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes"
    )
}

/// One part of a claim from a flag: holds, does not hold, or not measured.
fn flag_part(
    run: &Run,
    ev: &mut Vec<Evidence>,
    scenario: &str,
    name: &str,
    expect: bool,
    yes: &str,
    no: &str,
) -> Outcome {
    match flag(run, scenario, name, expect) {
        Some((m, ok, e)) => {
            ev.push(e);
            yes_or_no(&m, ok, yes, no)
        }
        None => (Verdict::NotMeasured, run.why_missing("container", scenario)),
    }
}

/// A measured yes/no part: it holds with the `yes` text, or does not with `no`, each
/// after the model's name.
fn yes_or_no(model: &str, ok: bool, yes: &str, no: &str) -> Outcome {
    let v = if ok {
        Verdict::Holds
    } else {
        Verdict::DoesNotHold
    };
    (v, format!("{model}: {}", if ok { yes } else { no }))
}

const C7: (&str, &str, &str) = (
    "C7",
    "Images are read-only layers; a rebuild makes only the changed layers; layers make containers light and quick to start.",
    "holds when a rebuild after one change reuses at least one layer but not all, a \
     further container from the image adds less disk than the first, and starts faster \
     (medians); each part that fails is named",
);

/// C7: layer reuse, disk and start time of further containers from one image.
pub(super) fn c7(run: &Run) -> ClaimCheck {
    let mut ev = vec![];
    let model = run
        .measured_of(Kind::Container)
        .into_iter()
        .find(|m| run.result(m, "image").is_some());
    let Some(m) = model else {
        let why = (Verdict::NotMeasured, run.why_missing("container", "image"));
        return check(C7, why, ev);
    };
    let mut get = |metric: &str| -> Option<f64> {
        let f = run.figure(&m, "image", metric)?;
        let e = Evidence::stat(format!("{m}: {metric} (median)"), &f, "median");
        ev.push(e);
        Some(f.summary.median)
    };
    let (total, reused) = (get("layers_total"), get("layers_reused_on_rebuild"));
    let (d1, dn) = (get("first_disk_kib"), get("next_disk_kib"));
    let (s1, sn) = (get("first_start_ms"), get("next_start_ms"));
    let parts = [
        ("rebuild", reuse(total, reused)),
        ("disk", less(dn, d1, "KiB", "a further container adds")),
        ("start", less(sn, s1, "ms", "a further container starts in")),
    ];
    check(C7, combine(&parts), ev)
}

/// Whether a rebuild reused some layers and rebuilt some.
fn reuse(total: Option<f64>, reused: Option<f64>) -> Outcome {
    let (Some(t), Some(r)) = (total, reused) else {
        return (
            Verdict::NotMeasured,
            "no layer counts in the image scenario".into(),
        );
    };
    let text = format!("{} of {} layers reused", num(r), num(t));
    if r >= 1.0 && r < t {
        (Verdict::Holds, text)
    } else {
        (Verdict::DoesNotHold, text)
    }
}

/// Whether the further container's figure is below the first's.
fn less(next: Option<f64>, first: Option<f64>, unit: &str, what: &str) -> Outcome {
    let (Some(n), Some(f)) = (next, first) else {
        return (
            Verdict::NotMeasured,
            format!("{what}: not in the image scenario"),
        );
    };
    let text = format!("{what} {} {unit}, the first {} {unit}", num(n), num(f));
    (
        if n < f {
            Verdict::Holds
        } else {
            Verdict::DoesNotHold
        },
        text,
    )
}

const C8: (&str, &str, &str) = (
    "C8",
    "Containers made from one image do not interfere with each other.",
    "holds when, in every sample, two containers from one image writing the same path \
     each see only their own write (`isolated` = 1); any 0 does not hold",
);

/// C8: two containers write the same path.
pub(super) fn c8(run: &Run) -> ClaimCheck {
    let mut ev = vec![];
    let o = flag_part(
        run,
        &mut ev,
        "interference",
        "isolated",
        true,
        "each saw only its own write",
        "a container saw the other's write",
    );
    check(C8, o, ev)
}

const C9: (&str, &str, &str) = (
    "C9",
    "The same image runs the same everywhere (\"works on my machine\" solved).",
    "holds when at least two OCI runtimes running the same image report the same cpu \
     checksum; any difference does not hold; one runtime alone is not measured",
);

/// C9: the cpu checksum under each container runtime (and, for reference, the rest).
pub(super) fn c9(run: &Run) -> ClaimCheck {
    let mut ev = vec![];
    let mut sums = vec![];
    for m in run.models() {
        let Some(sr) = run.result(&m, "cpu") else {
            continue;
        };
        let Some(sum) = sr
            .samples
            .iter()
            .filter(|s| s.ok)
            .find_map(|s| s.facts.get("checksum"))
        else {
            continue;
        };
        ev.push(Evidence::text(
            format!("{}: cpu checksum", run.display(&m)),
            sum,
            format!("{m}/cpu/facts.checksum"),
        ));
        if view::kind(&m) == Kind::Container {
            sums.push((m, sum.clone()));
        }
    }
    check(C9, c9_outcome(run, &sums), ev)
}

fn c9_outcome(run: &Run, sums: &[(String, String)]) -> Outcome {
    let names: Vec<&str> = sums.iter().map(|(m, _)| m.as_str()).collect();
    if sums.len() < 2 {
        let others: Vec<String> = ["container", "runc", "crun", "youki"]
            .iter()
            .filter(|m| !names.contains(m))
            .map(|m| run.why_missing(m, "cpu"))
            .collect();
        return (
            Verdict::NotMeasured,
            format!(
                "fewer than two OCI runtimes ran the image: {}",
                others.join("; ")
            ),
        );
    }
    if sums.iter().all(|(_, s)| s == &sums[0].1) {
        (
            Verdict::Holds,
            format!("{} give the same checksum", names.join(", ")),
        )
    } else {
        (
            Verdict::DoesNotHold,
            "the runtimes' checksums differ".into(),
        )
    }
}

const C10: (&str, &str, &str) = (
    "C10",
    "Namespaces and cgroups isolate processes and manage their resources.",
    "holds when, in every sample, the workload is PID 1 with its own hostname, is \
     OOM-killed past its memory limit, and cannot exceed its pids limit; each part that \
     fails or was not measured is named",
);

/// C10: PID 1, own hostname, memory and pids limits enforced.
pub(super) fn c10(run: &Run) -> ClaimCheck {
    let mut ev = vec![];
    let parts = [
        ("PID namespace", pid_namespace(run, &mut ev)),
        ("UTS namespace", uts_namespace(run, &mut ev)),
        (
            "memory limit",
            flag_part(
                run,
                &mut ev,
                "limits",
                "oom_killed",
                true,
                "OOM-killed past the limit",
                "not OOM-killed past the limit",
            ),
        ),
        (
            "pids limit",
            flag_part(
                run,
                &mut ev,
                "limits",
                "pids_limit_held",
                true,
                "pids limit held",
                "pids limit exceeded",
            ),
        ),
    ];
    check(C10, combine(&parts), ev)
}

/// PID 1 inside: the `limits` scenario's fact, else the `info` workload's PID.
fn pid_namespace(run: &Run, ev: &mut Vec<Evidence>) -> Outcome {
    let (yes, no) = ("the workload is PID 1", "the workload is not PID 1");
    let o = flag_part(run, ev, "limits", "pid1", true, yes, no);
    if o.0 != Verdict::NotMeasured {
        return o;
    }
    let seen = run.measured_of(Kind::Container).into_iter().find_map(|m| {
        let f = run.figure(&m, "isolation", "pid")?;
        Some((
            m.clone(),
            Evidence::stat(
                format!("{m}: pid seen by info (max over samples)"),
                &f,
                "max",
            ),
        ))
    });
    let Some((m, e)) = seen else { return o };
    let ok = e.number() == 1.0;
    ev.push(e);
    yes_or_no(&m, ok, yes, no)
}

/// An own hostname: the `limits` scenario's fact, else `info`'s hostname against the
/// host's.
fn uts_namespace(run: &Run, ev: &mut Vec<Evidence>) -> Outcome {
    let o = flag_part(
        run,
        ev,
        "limits",
        "own_hostname",
        true,
        "own hostname",
        "the host's hostname",
    );
    if o.0 != Verdict::NotMeasured {
        return o;
    }
    let host = &run.results.host.hostname;
    let seen = run.measured_of(Kind::Container).into_iter().find_map(|m| {
        let sr = run.result(&m, "isolation")?;
        let name = sr
            .samples
            .iter()
            .filter(|s| s.ok)
            .find_map(|s| s.facts.get("hostname"))?;
        let src = format!("{m}/isolation/facts.hostname");
        Some((
            m.clone(),
            name.clone(),
            Evidence::text(format!("{m}: hostname seen by info"), name, src),
        ))
    });
    let Some((m, name, e)) = seen else { return o };
    ev.push(e);
    ev.push(Evidence::text(
        "host: hostname",
        host,
        "host.hostname".into(),
    ));
    if &name == host {
        (
            Verdict::DoesNotHold,
            format!("{m} sees the host's hostname"),
        )
    } else {
        (Verdict::Holds, format!("{m}: own hostname"))
    }
}

const C11: (&str, &str, &str) = (
    "C11",
    "What a container writes is gone when it is removed, unless it is in a volume.",
    "holds when, in every sample, a write to the container layer is gone after remove \
     and recreate (`layer_write_survives` = 0) and a write to a volume is kept \
     (`volume_write_survives` = 1)",
);

/// C11: what survives remove and recreate.
pub(super) fn c11(run: &Run) -> ClaimCheck {
    let mut ev = vec![];
    let parts = [
        (
            "container layer",
            flag_part(
                run,
                &mut ev,
                "volume",
                "layer_write_survives",
                false,
                "the write is gone",
                "the write survived",
            ),
        ),
        (
            "volume",
            flag_part(
                run,
                &mut ev,
                "volume",
                "volume_write_survives",
                true,
                "the write is kept",
                "the write was lost",
            ),
        ),
    ];
    check(C11, combine(&parts), ev)
}
