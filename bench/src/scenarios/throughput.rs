//! The throughput scenarios `cpu`, `mem`, `syscall` and `fileio`: the workload measures
//! itself and prints `RESULT` lines; each value becomes a metric `<test>.<value>` (e.g.
//! `cpu.ops_per_s`), and a checksum becomes the fact `checksum`. Relative-to-native
//! figures are derived by the report, not stored.

use super::{results_for, run_to_exit, Ctx, Measured, Params, Scenario};
use crate::models::Placement;

/// One throughput scenario.
#[derive(Debug)]
pub struct Throughput {
    test: &'static str,
}

impl Throughput {
    /// The scenario for `name`, if it is a throughput test.
    pub fn named(name: &str) -> Option<Self> {
        let test = ["cpu", "mem", "syscall", "fileio"]
            .into_iter()
            .find(|t| *t == name)?;
        Some(Self { test })
    }

    /// The workload's arguments; `--quick` sizes keep the whole suite within a minute.
    pub fn args(&self, quick: bool) -> Vec<String> {
        let sizes: &[&str] = match (self.test, quick) {
            ("cpu", true) => &["--iterations", "200000"],
            ("cpu", false) => &["--iterations", "1000000"],
            ("mem", true) => &["--size-mib", "16"],
            ("mem", false) => &["--size-mib", "128"],
            ("syscall", true) => &["--iterations", "2000"],
            ("syscall", false) => &["--iterations", "200000"],
            ("fileio", true) => &["--size-mib", "4", "--files", "100"],
            (_, _) => &["--size-mib", "64", "--files", "1000"],
        };
        std::iter::once(self.test)
            .chain(sizes.iter().copied())
            .map(str::to_owned)
            .collect()
    }
}

impl Scenario for Throughput {
    fn name(&self) -> &'static str {
        self.test
    }

    fn sample(&self, ctx: &Ctx<'_>, _params: &Params) -> Result<Measured, String> {
        let mut args = self.args(ctx.quick);
        // A native fileio run writes in the harness's scratch space; in the other models
        // it writes where the workload defaults to: the container's or guest's own /tmp.
        let dir = ctx.scratch.join(format!("fileio-{}", super::next_id()));
        if self.test == "fileio" && ctx.model.placement() == Placement::Process {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            args.extend(["--dir".to_owned(), dir.to_string_lossy().into_owned()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let outcome = run_to_exit(ctx, &refs, false);
        let _ = std::fs::remove_dir_all(&dir);
        let finished = outcome?;
        let mut m = from_results(&finished.stdout, self.test)?;
        m.absorb_phases(ctx.model.observe(&finished.stderr));
        Ok(m)
    }
}

/// `RESULT` values that echo the run's settings rather than measure anything: kept as
/// facts, so the report does not compare them across models.
const SETTINGS: &[&str] = &[
    "iterations",
    "size_mib",
    "elapsed_s",
    "passes",
    "files",
    "round_trips",
    "stream_mib",
    "seconds",
];

/// Metrics `<test>.<value>` and the checksum from the `RESULT` lines of `test`.
pub fn from_results(stdout: &str, test: &str) -> Result<Measured, String> {
    let mut m = Measured::default();
    for line in results_for(stdout, test)? {
        for (name, value) in line.values {
            if SETTINGS.contains(&name.as_str()) {
                let text = format!("{} {}", crate::table::num(value.value), value.unit);
                m.facts.insert(name, text);
            } else {
                m.metrics.insert(format!("{test}.{name}"), value);
            }
        }
        if let Some(sum) = line.checksum {
            m.facts.insert("checksum".to_owned(), sum);
        }
        m.facts.extend(line.facts);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_prefixed_metrics_and_checksum_a_fact() {
        let out = "READY\nRESULT {\"test\":\"cpu\",\"values\":{\"ops_per_s\":{\"value\":5.0,\"unit\":\"ops/s\"}},\"checksum\":\"ab\"}\n";
        let m = from_results(out, "cpu").unwrap();
        assert_eq!(m.metrics["cpu.ops_per_s"].value, 5.0);
        assert_eq!(m.metrics["cpu.ops_per_s"].unit, "ops/s");
        assert_eq!(m.facts["checksum"], "ab");
        let out =
            "RESULT {\"test\":\"mem\",\"values\":{\"size_mib\":{\"value\":16.0,\"unit\":\"MiB\"}}}";
        let m = from_results(out, "mem").unwrap();
        assert!(m.metrics.is_empty());
        assert_eq!(m.facts["size_mib"], "16 MiB");
    }

    #[test]
    fn quick_sizes_are_smaller() {
        let t = Throughput::named("mem").unwrap();
        assert_eq!(t.args(true), ["mem", "--size-mib", "16"]);
        assert_eq!(t.args(false)[0], "mem");
        assert!(Throughput::named("net").is_none());
    }
}
