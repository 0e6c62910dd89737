//! The terminal summary printed at the end of a run: per scenario, model and metric the
//! median and the p5..p95 spread, failed samples, skipped models and statistical
//! warnings, all read from the same `Results` the report uses.

use std::fmt::Write;

use crate::results::{Results, ScenarioResult};

/// The summary as text.
pub fn render(results: &Results) -> String {
    let mut rows = vec![header()];
    for s in &results.scenarios {
        rows.extend(rows_of(s));
    }
    let mut out = format_rows(&rows);
    out.push_str(&reasons(results));
    for m in results.models.iter().filter(|m| !m.available) {
        let _ = writeln!(
            out,
            "skipped {}: {}",
            m.name,
            m.skip_reason.as_deref().unwrap_or("?")
        );
    }
    for m in results.models.iter().filter(|m| m.emulated) {
        let _ = writeln!(
            out,
            "note: {} ran emulated (no hardware virtualization): its figures are not a VM's cost",
            m.name
        );
    }
    for s in &results.scenarios {
        out.push_str(&warnings(s));
    }
    out
}

/// One line per distinct warning of a (model, scenario), naming the metrics it hits.
fn warnings(s: &ScenarioResult) -> String {
    let mut by_text: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (metric, sum) in &s.summary {
        if let Some(w) = &sum.warning {
            by_text
                .entry(w.split(':').next().unwrap_or(w))
                .or_default()
                .push(metric);
        }
    }
    let mut out = String::new();
    for (text, metrics) in by_text {
        let full = s.summary[metrics[0]].warning.as_deref().unwrap_or(text);
        let advice = full.split_once(": ").map_or("", |(_, a)| a);
        let _ = writeln!(
            out,
            "warning: {} {} ({}): {text}: {advice}",
            s.model,
            label(s),
            metrics.join(", ")
        );
    }
    out
}

fn header() -> Vec<String> {
    [
        "scenario", "model", "metric", "median", "p5..p95", "unit", "ok/n",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `startup` or `density instances=10`.
fn label(s: &ScenarioResult) -> String {
    let params: Vec<String> = s.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if params.is_empty() {
        s.scenario.clone()
    } else {
        format!("{} {}", s.scenario, params.join(","))
    }
}

fn rows_of(s: &ScenarioResult) -> Vec<Vec<String>> {
    let ok = s.samples.iter().filter(|x| x.ok).count();
    let counts = format!("{ok}/{}", s.samples.len());
    let note = |text: &str| {
        let mut row = vec![label(s), s.model.clone(), text.to_owned()];
        row.extend([String::new(), String::new(), String::new(), counts.clone()]);
        vec![row]
    };
    if s.skipped.is_some() {
        return note("skipped (see below)");
    }
    if s.summary.is_empty() {
        return note("failed (see below)");
    }
    s.summary
        .iter()
        .map(|(metric, sum)| {
            vec![
                label(s),
                s.model.clone(),
                metric.clone(),
                num(sum.median),
                format!("{}..{}", num(sum.p5), num(sum.p95)),
                sum.unit.clone(),
                counts.clone(),
            ]
        })
        .collect()
}

/// Skipped cells and failed samples, one line per distinct reason.
fn reasons(results: &Results) -> String {
    let mut out = String::new();
    let mut seen = std::collections::BTreeSet::new();
    for s in &results.scenarios {
        let errors = s.samples.iter().filter_map(|x| x.error.as_deref());
        for (kind, why) in s
            .skipped
            .as_deref()
            .map(|w| ("skipped", w))
            .into_iter()
            .chain(errors.map(|e| ("failed", e)))
        {
            if seen.insert((s.model.clone(), s.scenario.clone(), why.to_owned())) {
                let _ = writeln!(out, "{kind}: {} {}: {why}", s.model, label(s));
            }
        }
    }
    out
}

/// A figure with about four significant digits.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn format_rows(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count().min(60))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_and_failed_cells_are_explained_once() {
        let json = r#"{"schema_version":1,"host":{"hostname":"h","cpu_model":"c","cores":2,
            "memory_bytes":1,"kernel":"k","kvm_flavor":"pvm","cgroup_mode":"hybrid",
            "is_root":true,"isolab_version":"0","date":"d"},
            "config":{"models":["native"],"scenarios":["net"],"iterations":2,"warmup":0,"seed":1,"quick":true},
            "started_at":"s","models":[{"name":"qemu","description":"q","available":true,"emulated":true}],
            "scenarios":[
              {"model":"qemu","scenario":"net","samples":[],"skipped":"no network"},
              {"model":"native","scenario":"cpu","samples":[
                {"iteration":0,"ok":false,"error":"boom"},{"iteration":1,"ok":false,"error":"boom"}]}]}"#;
        let r: Results = serde_json::from_str(json).unwrap();
        let text = render(&r);
        assert_eq!(
            text.matches("failed: native cpu: boom").count(),
            1,
            "{text}"
        );
        assert!(text.contains("skipped: qemu net: no network"), "{text}");
        assert!(text.contains("qemu ran emulated"), "{text}");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(12345.678), "12346");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(1.23456), "1.235");
        assert_eq!(num(3.0), "3");
    }
}
