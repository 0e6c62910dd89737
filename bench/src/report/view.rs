//! A read-only view of one host's results: which models ran, the figure of a metric
//! (the stored summary, or one recomputed from samples), where each figure comes from,
//! and why something is missing. Every number the report prints goes through here.

use std::collections::BTreeMap;

use crate::results::{Results, ScenarioResult, Summary};

use super::summary;

/// What kind of isolation a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A plain host process: the baseline.
    Native,
    /// A container runtime: shares the host kernel.
    Container,
    /// A virtual machine: its own (or no) guest kernel behind a monitor.
    Vm,
}

/// The kind of a model, from its name.
pub(crate) fn kind(model: &str) -> Kind {
    match model {
        "native" => Kind::Native,
        "container" | "runc" | "crun" | "youki" => Kind::Container,
        _ => Kind::Vm,
    }
}

/// The throughput scenarios, reported relative to native.
pub(crate) const THROUGHPUT: &[&str] = &["cpu", "mem", "syscall", "fileio", "net"];

/// The throughput figures compared with native (the shared metric contract), with
/// whether a larger value is better (a rate) or worse (a cost). Other metrics of
/// those scenarios (`cpu.iterations`, `cpu.elapsed_s`) describe the run, not its speed.
pub(crate) const THROUGHPUT_METRICS: &[(&str, bool)] = &[
    ("cpu.ops_per_s", true),
    ("mem.copy_gb_per_s", true),
    ("mem.fault_ns_per_page", false),
    ("syscall.ns_per_call", false),
    ("fileio.write_mb_per_s", true),
    ("fileio.read_mb_per_s", true),
    ("fileio.create_unlink_per_s", true),
    ("net.rtt_us", false),
    ("net.stream_mb_per_s", true),
];

/// True when a larger value of `metric` is better (a rate), false for a cost.
pub(crate) fn higher_is_better(metric: &str) -> bool {
    THROUGHPUT_METRICS
        .iter()
        .find(|(m, _)| *m == metric)
        .map_or(metric.ends_with("_per_s"), |(_, higher)| *higher)
}

/// The throughput metrics of `sr` in contract order.
pub(crate) fn throughput_metrics(sr: &ScenarioResult) -> Vec<String> {
    let present = metric_names(sr);
    THROUGHPUT_METRICS
        .iter()
        .map(|(m, _)| (*m).to_owned())
        .filter(|m| present.contains(m))
        .collect()
}

/// Scenario parameters as a short key, e.g. `density{instances=10}`.
pub(crate) fn scenario_key(scenario: &str, params: &BTreeMap<String, String>) -> String {
    if params.is_empty() {
        return scenario.to_owned();
    }
    let inner: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{scenario}{{{}}}", inner.join(","))
}

/// A number as the report prints it: enough digits to read, few enough to compare.
/// Integers print whole; others keep 3 to 4 significant digits.
pub(crate) fn num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "n/a".to_owned()
    } else if (v.fract() == 0.0 && a < 1e15) || a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.001 {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// One metric's statistics and where they came from.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    /// The statistics.
    pub summary: Summary,
    /// True when the results file had no summary and the report computed it.
    pub recomputed: bool,
    /// `model/scenario/metric`, the path of the figure in the results file.
    pub source: String,
}

impl Figure {
    /// The source of one statistic, e.g. `container/memory/instance_kib.median`.
    pub fn src(&self, stat: &str) -> String {
        format!("{}.{stat}", self.source)
    }
}

/// Values of `metric` over the successful samples of `sr`, with its unit.
pub(crate) fn values(sr: &ScenarioResult, metric: &str) -> (Vec<f64>, String) {
    let mut unit = String::new();
    let vals = sr
        .samples
        .iter()
        .filter(|s| s.ok)
        .filter_map(|s| s.metrics.get(metric))
        .map(|m| {
            unit.clone_from(&m.unit);
            m.value
        })
        .collect();
    (vals, unit)
}

/// The figure of `metric` in `sr`: its stored summary, else one from the samples.
pub(crate) fn figure(sr: &ScenarioResult, metric: &str) -> Option<Figure> {
    let source = format!(
        "{}/{}/{metric}",
        sr.model,
        scenario_key(&sr.scenario, &sr.params)
    );
    if let Some(s) = sr.summary.get(metric).filter(|s| s.n > 0) {
        let summary = s.clone();
        return Some(Figure {
            summary,
            recomputed: false,
            source,
        });
    }
    let (vals, unit) = values(sr, metric);
    let summary = summary::summarize(&vals, &unit)?;
    Some(Figure {
        summary,
        recomputed: true,
        source,
    })
}

/// Every metric name of `sr`, from summaries and samples, in name order.
pub(crate) fn metric_names(sr: &ScenarioResult) -> Vec<String> {
    let mut names: Vec<String> = sr.summary.keys().cloned().collect();
    for s in &sr.samples {
        names.extend(s.metrics.keys().cloned());
    }
    names.sort();
    names.dedup();
    names
}

/// The reason the harness recorded for not running a scenario (the `skipped` field
/// bench-core adds to `ScenarioResult`). Read through serde so this compiles with and
/// without that additive field; use `sr.skipped` directly once it is on main.
fn skipped(sr: &ScenarioResult) -> Option<String> {
    let v = serde_json::to_value(sr).ok()?;
    v.get("skipped")?.as_str().map(str::to_owned)
}

/// One host's results, under the label the report uses for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run<'a> {
    /// The results.
    pub results: &'a Results,
    /// Index in the merged comparison, for telling same-named hosts apart.
    pub index: usize,
    /// Whether a host label needs the index (two files from same-named hosts).
    pub disambiguate: bool,
}

/// The runs of several results files, labelled so each host is told apart.
pub(crate) fn runs(all: &[Results]) -> Vec<Run<'_>> {
    all.iter()
        .enumerate()
        .map(|(index, results)| Run {
            results,
            index,
            disambiguate: all
                .iter()
                .filter(|r| r.host.hostname == results.host.hostname)
                .count()
                > 1,
        })
        .collect()
}

impl<'a> Run<'a> {
    /// The host's label: its name, plus `#N` when two files share one.
    pub fn label(&self) -> String {
        let name = &self.results.host.hostname;
        if self.disambiguate {
            format!("{name}#{}", self.index + 1)
        } else {
            name.clone()
        }
    }

    /// Models in the order the run lists them, then any found only in scenarios.
    pub fn models(&self) -> Vec<String> {
        let r = self.results;
        let mut names: Vec<String> = r.config.models.clone();
        names.extend(r.models.iter().map(|m| m.name.clone()));
        names.extend(r.scenarios.iter().map(|s| s.model.clone()));
        let mut seen = std::collections::BTreeSet::new();
        names.retain(|n| seen.insert(n.clone()));
        names
    }

    /// Models of `k` with at least one result.
    pub fn measured_of(&self, k: Kind) -> Vec<String> {
        let r = self.results;
        self.models()
            .into_iter()
            .filter(|m| kind(m) == k && r.scenarios.iter().any(|s| &s.model == m))
            .collect()
    }

    /// True when the model ran under software emulation.
    pub fn emulated(&self, model: &str) -> bool {
        self.results
            .models
            .iter()
            .any(|m| m.name == model && m.emulated)
    }

    /// The model's name as printed: `qemu (emulated)` when emulated.
    pub fn display(&self, model: &str) -> String {
        if self.emulated(model) {
            format!("{model} (emulated)")
        } else {
            model.to_owned()
        }
    }

    /// The result of `model` in `scenario` with no parameters.
    pub fn result(&self, model: &str, scenario: &str) -> Option<&'a ScenarioResult> {
        self.results
            .scenarios
            .iter()
            .find(|s| s.model == model && s.scenario == scenario && s.params.is_empty())
    }

    /// The figure of `metric` for `model` in `scenario` (no parameters).
    pub fn figure(&self, model: &str, scenario: &str, metric: &str) -> Option<Figure> {
        figure(self.result(model, scenario)?, metric)
    }

    /// Density results of `model`, by instance count.
    pub fn densities(&self, model: &str) -> Vec<(u32, &'a ScenarioResult)> {
        let mut out: Vec<(u32, &ScenarioResult)> = self
            .results
            .scenarios
            .iter()
            .filter(|s| s.model == model && s.scenario == "density")
            .filter_map(|s| Some((s.params.get("instances")?.parse().ok()?, s)))
            .collect();
        out.sort_by_key(|(n, _)| *n);
        out
    }

    /// Why `model` has no `metric` in `scenario`: the scenario's reason, or that its
    /// successful samples did not record that metric.
    pub fn why_no_metric(&self, model: &str, scenario: &str, metric: &str) -> String {
        match self.result(model, scenario) {
            Some(sr) if sr.samples.iter().any(|s| s.ok) => {
                format!("{model} recorded no {metric} in {scenario}")
            }
            _ => self.why_missing(model, scenario),
        }
    }

    /// Why `model` has no figure in `scenario`, in words a reader can act on.
    pub fn why_missing(&self, model: &str, scenario: &str) -> String {
        let r = self.results;
        if let Some(m) = r.models.iter().find(|m| m.name == model && !m.available) {
            let why = m.skip_reason.as_deref().unwrap_or("no reason recorded");
            return format!("{model} could not run on this host: {why}");
        }
        if model == "microvm-linux" && !r.models.iter().any(|m| m.name == model) {
            let flavor = serde_json::to_value(r.host.kvm_flavor).unwrap_or_default();
            let flavor = flavor.as_str().unwrap_or("unknown").to_owned();
            if flavor != "vmx" && flavor != "svm" {
                return format!("the Linux guest needs hardware KVM; this host's KVM is {flavor}");
            }
        }
        if !r.config.scenarios.iter().any(|s| s == scenario) {
            return format!("scenario {scenario} was not part of this run");
        }
        if !self.models().iter().any(|m| m == model) {
            return format!("{model} was not part of this run");
        }
        if let Some(sr) = self.result(model, scenario) {
            if let Some(why) = skipped(sr) {
                return format!("{model} could not run {scenario}: {why}");
            }
            return match sr.samples.iter().find_map(|s| s.error.clone()) {
                Some(e) => format!("{model} failed in {scenario}: {e}"),
                None => format!("{model} has no successful sample in {scenario}"),
            };
        }
        if r.finished_at.is_none() {
            return format!("the run was interrupted before {model} ran {scenario}");
        }
        format!("{model} has no result in {scenario}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testdata::{results_with, sr};

    #[test]
    fn figure_prefers_the_stored_summary_and_recomputes_when_absent() {
        let mut s = sr("native", "startup", "launch_to_ready_ms", &[1.0, 2.0, 3.0]);
        let f = figure(&s, "launch_to_ready_ms").unwrap();
        assert!(f.recomputed);
        assert_eq!(f.summary.median, 2.0);
        assert_eq!(f.src("median"), "native/startup/launch_to_ready_ms.median");
        let mut stored = f.summary.clone();
        stored.median = 9.0;
        s.summary.insert("launch_to_ready_ms".into(), stored);
        let f = figure(&s, "launch_to_ready_ms").unwrap();
        assert!(!f.recomputed);
        assert_eq!(f.summary.median, 9.0);
    }

    #[test]
    fn only_contract_throughput_figures_are_compared_with_native() {
        let mut s = sr("native", "cpu", "cpu.ops_per_s", &[1.0]);
        let m = s.samples[0].metrics["cpu.ops_per_s"].clone();
        s.samples[0].metrics.insert("cpu.iterations".into(), m);
        assert_eq!(throughput_metrics(&s), vec!["cpu.ops_per_s"]);
        assert!(higher_is_better("cpu.ops_per_s"));
        assert!(!higher_is_better("net.rtt_us"));
        assert!(!higher_is_better("mem.fault_ns_per_page"));
    }

    #[test]
    fn numbers_print_with_readable_precision() {
        assert_eq!(num(3.0), "3");
        assert_eq!(num(1234.56), "1235");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(1.2345), "1.23");
        assert_eq!(num(0.012345), "0.0123");
        assert_eq!(num(0.0000123), "1.230e-5");
        assert_eq!(num(f64::NAN), "n/a");
    }

    #[test]
    fn missing_figures_say_why() {
        let mut r = results_with(vec![]);
        r.models[0].available = false;
        r.models[0].skip_reason = Some("runc not found".into());
        let runs = runs(std::slice::from_ref(&r));
        let why = runs[0].why_missing(&r.models[0].name.clone(), "startup");
        assert!(why.contains("runc not found"), "{why}");
        let why = runs[0].why_missing("microvm-linux", "startup");
        assert!(why.contains("this host's KVM is pvm"), "{why}");
        assert!(runs[0]
            .why_missing("native", "nosuch")
            .contains("not part of this run"));
    }

    #[test]
    fn same_named_hosts_get_numbered_labels() {
        let r = results_with(vec![]);
        let all = vec![r.clone(), r];
        let labels: Vec<String> = runs(&all).iter().map(Run::label).collect();
        assert_eq!(labels, vec!["lab1#1", "lab1#2"]);
    }
}
