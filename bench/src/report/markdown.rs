//! `report.md`: host facts and caveats first, then the claims check with the numbers
//! behind each verdict, the plots, and every figure of the results in tables. Numbers
//! are printed from the results only (see `view::num` for the precision).

use std::fmt::Write as _;

use super::claims::ClaimCheck;
use super::plots::{relative, Plot};
use super::view::{self, num, Run};

/// The whole report.
pub(crate) fn render(runs: &[Run], checks: &[(String, Vec<ClaimCheck>)], plots: &[Plot]) -> String {
    let mut md = String::from("# isolab report\n\n");
    md.push_str(
        "The same workload, run as a plain process, in containers and in microVMs, on the \
         hosts below. Every number comes from the results file(s); a figure derived from \
         others (a ratio) names its sources. Medians are shown with p5-p95; \
         `n` counts successful samples.\n\n",
    );
    hosts(&mut md, runs);
    caveats(&mut md, runs);
    models(&mut md, runs);
    claims(&mut md, checks);
    plot_section(&mut md, plots);
    figures(&mut md, runs);
    relative_table(&mut md, runs);
    phases(&mut md, runs);
    isolation(&mut md, runs);
    failures(&mut md, runs);
    md
}

/// A table row from cells; `|` inside a cell is escaped.
fn row(cells: &[String]) -> String {
    let cells: Vec<String> = cells
        .iter()
        .map(|c| c.replace('|', "\\|").replace('\n', " "))
        .collect();
    format!("| {} |\n", cells.join(" | "))
}

/// A table header with its separator line.
fn header(cols: &[&str]) -> String {
    let cells: Vec<String> = cols.iter().map(|c| (*c).to_owned()).collect();
    let sep: Vec<String> = cols.iter().map(|_| "---".to_owned()).collect();
    format!("\n{}{}", row(&cells), row(&sep))
}

/// A section that is a table: its heading and introduction, then the header and the
/// rows in `body`. A table without rows leaves the whole section out.
fn table_section(md: &mut String, intro: &str, cols: &[&str], body: &str) {
    if !body.is_empty() {
        md.push_str(intro);
        let _ = writeln!(md, "{}{body}", header(cols));
    }
}

fn lower(v: impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn hosts(md: &mut String, runs: &[Run]) {
    md.push_str("## Hosts\n");
    md.push_str(&header(&[
        "host",
        "CPU",
        "cores",
        "memory (GiB)",
        "kernel",
        "KVM",
        "cgroups",
        "root",
        "isolab",
        "started",
        "finished",
    ]));
    for run in runs {
        let h = &run.results.host;
        let finished = run
            .results
            .finished_at
            .clone()
            .unwrap_or_else(|| "interrupted (partial results)".into());
        md.push_str(&row(&[
            run.label(),
            h.cpu_model.clone(),
            h.cores.to_string(),
            num(h.memory_bytes as f64 / f64::from(1u32 << 30)),
            h.kernel.clone(),
            lower(h.kvm_flavor),
            lower(h.cgroup_mode),
            if h.is_root { "yes" } else { "no" }.into(),
            h.isolab_version.clone(),
            run.results.started_at.clone(),
            finished,
        ]));
    }
    md.push('\n');
}

fn caveats(md: &mut String, runs: &[Run]) {
    md.push_str("## Caveats\n\n");
    for run in runs {
        for c in host_caveats(run) {
            let _ = writeln!(md, "- **{}**: {c}", run.label());
        }
    }
    md.push('\n');
}

/// What a reader must keep in mind about one host's figures.
fn host_caveats(run: &Run) -> Vec<String> {
    let r = run.results;
    let mut out = vec![];
    match lower(r.host.kvm_flavor).as_str() {
        "pvm" => out.push("`/dev/kvm` is PVM (software virtualization, no VT-x/AMD-V): guest user code runs natively but guest kernel code is emulated, and each port-I/O exit is costly; microVM figures here are not what hardware KVM gives, and a Linux guest cannot boot.".into()),
        "none" => out.push("no `/dev/kvm`: no microVM ran with KVM.".into()),
        _ => {}
    }
    for m in r.models.iter().filter(|m| m.emulated) {
        out.push(format!("{} ran under software emulation (no KVM): its figures measure an emulator and are labelled \"(emulated)\".", m.name));
    }
    match lower(r.host.cgroup_mode).as_str() {
        "hybrid" => out.push("cgroups are hybrid (v1 controllers plus a cgroup2 mount): container memory comes from the v1 memory controller; most hosts today are pure v2.".into()),
        "v1" => out.push("cgroups are v1 only.".into()),
        _ => {}
    }
    if r.finished_at.is_none() {
        out.push("the run did not finish (interrupted or still running): the report covers what was measured; summaries missing from the file were recomputed from the samples.".into());
    }
    if !r.host.is_root {
        out.push("the harness did not run as root: root-only models were skipped.".into());
    }
    out.extend(noisy(run));
    out
}

/// A caveat naming the figures whose p5-p95 spread exceeds half their median.
fn noisy(run: &Run) -> Option<String> {
    let mut wide = vec![];
    for sr in &run.results.scenarios {
        for metric in view::metric_names(sr) {
            let Some(f) = view::figure(sr, &metric) else {
                continue;
            };
            let s = &f.summary;
            if s.n > 1 && s.median != 0.0 && (s.p95 - s.p5) > s.median.abs() / 2.0 {
                wide.push(format!("`{}`", f.source));
            }
        }
    }
    (!wide.is_empty()).then(|| format!(
        "noisy machine: these figures spread widely (p95 - p5 above half the median), so compare them with care and rerun with more `--iterations`: {}.",
        wide.join(", ")
    ))
}

fn models(md: &mut String, runs: &[Run]) {
    md.push_str("## Models\n");
    md.push_str(&header(&[
        "host",
        "model",
        "ran",
        "what it is / why it did not run",
        "version",
    ]));
    for run in runs {
        for m in &run.results.models {
            let note = if m.available {
                m.description.clone()
            } else {
                m.skip_reason.clone().unwrap_or_default()
            };
            let ran = if m.available { "yes" } else { "skipped" };
            md.push_str(&row(&[
                run.label(),
                run.display(&m.name),
                ran.into(),
                note,
                m.version.clone().unwrap_or_default(),
            ]));
        }
    }
    md.push('\n');
}

fn claims(md: &mut String, checks: &[(String, Vec<ClaimCheck>)]) {
    md.push_str("## Claims check\n\nEach claim of the Docker introductions, checked against this run. See `docs/report.md` for what each verdict means.\n");
    md.push_str(&header(&["id", "claim", "host", "verdict"]));
    for (host, list) in checks {
        for c in list {
            md.push_str(&row(&[
                c.id.to_owned(),
                c.claim.to_owned(),
                host.clone(),
                format!("**{}**", c.verdict),
            ]));
        }
    }
    md.push('\n');
    let Some((_, first)) = checks.first() else {
        return;
    };
    for (i, c) in first.iter().enumerate() {
        let _ = writeln!(
            md,
            "### {}: {}\n\n*Threshold:* {}\n",
            c.id, c.claim, c.threshold
        );
        for (host, list) in checks {
            claim_host(md, host, &list[i]);
        }
    }
}

fn claim_host(md: &mut String, host: &str, c: &ClaimCheck) {
    let _ = writeln!(md, "**{host}: {}.** {}\n", c.verdict, c.why);
    if c.evidence.is_empty() {
        return;
    }
    md.push_str(header(&["host", "figure", "value", "unit", "source"]).trim_start());
    for e in &c.evidence {
        let unit = match &e.value {
            super::claims::Value::Num { unit, .. } => unit.clone(),
            super::claims::Value::Text(_) => String::new(),
        };
        md.push_str(&row(&[
            host.to_owned(),
            e.what.clone(),
            e.value.to_string(),
            unit,
            format!("`{}`", e.source),
        ]));
    }
    md.push('\n');
}

fn plot_section(md: &mut String, plots: &[Plot]) {
    md.push_str("## Plots\n\n");
    if plots.is_empty() {
        md.push_str("No scenario with data to plot.\n\n");
    }
    for p in plots {
        let _ = writeln!(
            md,
            "![{}](plots/{}.svg)\n\nFiles: `plots/{}.svg`, `plots/{}.png`\n",
            p.title, p.name, p.name, p.name
        );
    }
}

/// Scenario names of a run in report order: the run order, then unknown scenarios
/// (from other isolab versions) in name order.
fn scenario_names(runs: &[Run]) -> Vec<String> {
    let mut names: Vec<String> = crate::scenarios::SCENARIO_NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut extra: Vec<String> = runs
        .iter()
        .flat_map(|r| r.results.scenarios.iter().map(|s| s.scenario.clone()))
        .filter(|s| !names.contains(s))
        .collect();
    extra.sort();
    extra.dedup();
    names.extend(extra);
    names
}

fn figures(md: &mut String, runs: &[Run]) {
    md.push_str("## Figures\n\nEvery metric of every model and scenario. A note says when the summary was recomputed from the samples (the file had none) and repeats the harness's warnings.\n\n");
    for scenario in scenario_names(runs) {
        let mut body = String::new();
        for run in runs {
            for sr in run
                .results
                .scenarios
                .iter()
                .filter(|s| s.scenario == scenario)
            {
                for metric in view::metric_names(sr) {
                    let Some(f) = view::figure(sr, &metric) else {
                        continue;
                    };
                    let s = &f.summary;
                    let note = match (&s.warning, f.recomputed) {
                        (Some(w), _) => w.clone(),
                        (None, true) => "recomputed from samples".into(),
                        (None, false) => String::new(),
                    };
                    let key = view::scenario_key(&sr.scenario, &sr.params);
                    body.push_str(&row(&[
                        run.label(),
                        run.display(&sr.model),
                        key,
                        metric,
                        s.unit.clone(),
                        s.n.to_string(),
                        num(s.median),
                        num(s.p5),
                        num(s.p95),
                        num(s.min),
                        num(s.max),
                        note,
                    ]));
                }
            }
        }
        if !body.is_empty() {
            let _ = write!(
                md,
                "### {scenario}\n{}{body}\n",
                header(&[
                    "host", "model", "scenario", "metric", "unit", "n", "median", "p5", "p95",
                    "min", "max", "note"
                ])
            );
        }
    }
}

fn relative_table(md: &mut String, runs: &[Run]) {
    let mut body = String::new();
    for scenario in view::THROUGHPUT {
        for run in runs {
            let Some(nat) = run.result("native", scenario) else {
                continue;
            };
            for metric in view::throughput_metrics(nat) {
                let Some(nf) = view::figure(nat, &metric) else {
                    continue;
                };
                for m in run.models().into_iter().filter(|m| m != "native") {
                    let Some(f) = run.figure(&m, scenario, &metric) else {
                        continue;
                    };
                    let Some((v, lo, hi)) =
                        relative(&nf.summary, &f.summary, view::higher_is_better(&metric))
                    else {
                        continue;
                    };
                    body.push_str(&row(&[
                        run.label(),
                        run.display(&m),
                        format!("{scenario}/{metric}"),
                        num(v),
                        num(lo),
                        num(hi),
                    ]));
                }
            }
        }
    }
    table_section(
        md,
        "## Throughput relative to native\n\nAbove 1 is better than native: model ÷ native for rates, native ÷ model for costs, each over native's median; p5 and p95 are the model's, mapped the same way.\n",
        &[
            "host",
            "model",
            "figure",
            "relative (median)",
            "relative p5",
            "relative p95",
        ],
        &body,
    );
}

fn phases(md: &mut String, runs: &[Run]) {
    let mut body = String::new();
    for run in runs {
        for m in run.models() {
            let Some(sr) = run.result(&m, "startup") else {
                continue;
            };
            let mut names: Vec<&str> = vec![];
            for p in sr.samples.iter().filter(|s| s.ok).flat_map(|s| &s.phases) {
                if !names.contains(&p.name.as_str()) {
                    names.push(&p.name);
                }
            }
            for n in names {
                if let Some(med) = super::claims::phase_median(sr, n) {
                    body.push_str(&row(&[
                        run.label(),
                        run.display(&m),
                        n.to_owned(),
                        num(med),
                    ]));
                }
            }
        }
    }
    table_section(
        md,
        "## Startup breakdown\n\nThe phases the engine or the monitor reported, in order, as the median over successful samples.\n",
        &["host", "model", "phase", "median (us)"],
        &body,
    );
}

fn isolation(md: &mut String, runs: &[Run]) {
    const FACTS: [&str; 8] = [
        "kernel_name",
        "kernel_release",
        "hostname",
        "pid",
        "uid",
        "cpus",
        "mem_total_kib",
        "cgroup",
    ];
    let mut body = String::new();
    for run in runs {
        for m in run.models() {
            let Some(sr) = run.result(&m, "isolation") else {
                continue;
            };
            let Some(s) = sr.samples.iter().find(|s| s.ok) else {
                continue;
            };
            let mut cells = vec![run.label(), run.display(&m)];
            cells.extend(
                FACTS
                    .iter()
                    .map(|f| s.facts.get(*f).cloned().unwrap_or_default()),
            );
            cells.push(s.facts.get("exit_reasons").cloned().unwrap_or_default());
            body.push_str(&row(&cells));
        }
    }
    table_section(
        md,
        "## What the workload saw in each model\n\nThe `info` workload's observations (first successful sample).\n",
        &[
            "host",
            "model",
            "kernel",
            "release",
            "hostname",
            "pid",
            "uid",
            "cpus",
            "mem_total_kib",
            "cgroup",
            "exit reasons",
        ],
        &body,
    );
}

fn failures(md: &mut String, runs: &[Run]) {
    let mut body = String::new();
    for run in runs {
        for sr in &run.results.scenarios {
            for s in sr.samples.iter().filter(|s| !s.ok) {
                let key = view::scenario_key(&sr.scenario, &sr.params);
                let err = s
                    .error
                    .clone()
                    .unwrap_or_else(|| "no error recorded".into());
                body.push_str(&row(&[
                    run.label(),
                    run.display(&sr.model),
                    key,
                    s.iteration.to_string(),
                    err,
                ]));
            }
        }
    }
    table_section(
        md,
        "## Failed samples\n\nFailed samples are kept out of every statistic above.\n",
        &["host", "model", "scenario", "iteration", "error"],
        &body,
    );
}
