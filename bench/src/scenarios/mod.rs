//! The scenarios, one file each: what a sample launches and which figures it keeps.
//! Each scenario turns one launch (or, for density, many) of a model into metrics named
//! as in the results contract (`launch_to_ready_ms`, `pss_kib`, `cpu.ops_per_s`, ...).

pub mod density;
pub mod image;
pub mod isolation;
pub mod limits;
pub mod memory;
pub mod net;
pub mod sharing;
pub mod startup;
pub mod throughput;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use workload::result::ResultLine;

use crate::models::{Launch, Model, Observed, Tools};
use crate::process::{Finished, Instance};
use crate::results::{Measure, Phase, RunConfig};

/// Every scenario name, in run order; the default suite is all of them.
pub const SCENARIO_NAMES: &[&str] = &[
    "startup",
    "memory",
    "density",
    "cpu",
    "mem",
    "syscall",
    "fileio",
    "net",
    "isolation",
    "image",
    "limits",
    "interference",
    "volume",
];

/// Scenario parameters, e.g. `{"instances": "10"}`.
pub type Params = BTreeMap<String, String>;

/// What one sample measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// Figures by metric name.
    pub metrics: BTreeMap<String, Measure>,
    /// Startup phases.
    pub phases: Vec<Phase>,
    /// Textual observations.
    pub facts: BTreeMap<String, String>,
}

impl Measured {
    /// Adds a figure.
    pub fn metric(&mut self, name: &str, value: f64, unit: &str) {
        self.metrics
            .insert(name.to_owned(), crate::models::measure(value, unit));
    }

    /// Takes in what the launcher reported.
    pub fn absorb(&mut self, observed: Observed) {
        self.phases = observed.phases;
        self.metrics.extend(observed.metrics);
        self.facts.extend(observed.facts);
    }

    /// Takes in only the launcher's startup phases (throughput scenarios keep their
    /// own figures; exits and the syscall surface belong to `isolation`).
    pub fn absorb_phases(&mut self, observed: Observed) {
        self.phases = observed.phases;
    }
}

/// What a scenario needs to take a sample.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The model under test.
    pub model: &'a dyn Model,
    /// Deadline of one instance, from launch.
    pub timeout: Duration,
    /// Small sizes for `--quick`.
    pub quick: bool,
    /// The binaries (the net scenario runs its peer natively).
    pub tools: &'a Tools,
    /// Scratch space (fileio's directory for native runs).
    pub scratch: PathBuf,
}

/// A scenario.
pub trait Scenario: fmt::Debug {
    /// Its name, one of [`SCENARIO_NAMES`].
    fn name(&self) -> &'static str;
    /// The parameter sets it runs with (one empty set by default).
    fn params(&self, _config: &RunConfig) -> Vec<Params> {
        vec![Params::new()]
    }
    /// True when it is measured once per model, without warm-up (density).
    fn once(&self) -> bool {
        false
    }
    /// Whether the scenario is about `model` at all. The container claim scenarios are
    /// claims about isolab's engine: other models get no entry, not a "skipped" one.
    fn applies_to(&self, _model: &dyn Model) -> bool {
        true
    }
    /// Why `model` cannot run this scenario on this host, when it cannot.
    fn skip_for(&self, _model: &dyn Model) -> Option<String> {
        None
    }
    /// Takes one sample; `Err` is a failed sample with the reason.
    fn sample(&self, ctx: &Ctx<'_>, params: &Params) -> Result<Measured, String>;
}

/// The scenario called `name`.
pub fn by_name(name: &str) -> Option<Box<dyn Scenario>> {
    Some(match name {
        "startup" => Box::new(startup::Startup),
        "memory" => Box::new(memory::Memory),
        "density" => Box::new(density::Density),
        "net" => Box::new(net::Net),
        "isolation" => Box::new(isolation::Isolation),
        "image" => Box::new(image::Image),
        "limits" => Box::new(limits::Limits),
        "interference" => Box::new(sharing::Sharing::Interference),
        "volume" => Box::new(sharing::Sharing::Volume),
        other => Box::new(throughput::Throughput::named(other)?),
    })
}

/// A unique instance id: `isolab-bench-<harness pid>-<n>`.
pub fn next_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("isolab-bench-{}-{n}", std::process::id())
}

/// Launches `args` in the model.
pub fn launch(
    ctx: &Ctx<'_>,
    args: &[&str],
    host_network: bool,
) -> Result<(Instance, Launch), String> {
    let launch = Launch {
        id: next_id(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        host_network,
        memory_limit_mib: None,
    };
    launch_as(ctx, launch)
}

/// Launches `launch` in the model.
pub fn launch_as(ctx: &Ctx<'_>, launch: Launch) -> Result<(Instance, Launch), String> {
    let cmd = ctx.model.command(&launch)?;
    let instance = Instance::spawn(cmd).map_err(|e| e.to_string())?;
    Ok((instance, launch))
}

/// One run of `workload ARGS` to its end, which must be exit code 0 (the measuring
/// subcommands print no `READY` line). A failure is cleaned up and explained.
pub fn run_to_exit(ctx: &Ctx<'_>, args: &[&str], host_network: bool) -> Result<Finished, String> {
    let (mut instance, launch) = launch(ctx, args, host_network)?;
    let result = instance.wait_exit(ctx.timeout).map(|f| ((), f));
    finish(ctx, instance, &launch, result).map(|((), f)| f)
}

/// As [`run_to_exit`] with the `READY` line required first; `at_ready` gets the
/// launcher's pid as soon as it arrives (to read the instance's processes while they
/// live). Returns the time from launch to `READY`.
pub fn run_to_exit_with(
    ctx: &Ctx<'_>,
    args: &[&str],
    host_network: bool,
    at_ready: impl FnOnce(i32),
) -> Result<(Duration, Finished), String> {
    let (mut instance, launch) = launch(ctx, args, host_network)?;
    let result = instance.wait_ready(ctx.timeout).and_then(|ready| {
        at_ready(instance.pid());
        Ok((ready, instance.wait_exit(ctx.timeout)?))
    });
    finish(ctx, instance, &launch, result)
}

/// Turns a run's outcome into a sample's: exit code 0 or an explained failure, with
/// the instance cleaned up after a failure.
fn finish<T>(
    ctx: &Ctx<'_>,
    instance: Instance,
    launch: &Launch,
    result: Result<(T, Finished), crate::process::ProcessError>,
) -> Result<(T, Finished), String> {
    let outcome = match result {
        Ok((_, ref f)) if !f.success() => Err(format!(
            "`workload {}` ended with {}{}",
            launch.args.join(" "),
            f.status_text(),
            crate::process::tail(&f.stderr)
        )),
        Ok(ok) => Ok(ok),
        Err(e) => Err(e.to_string()),
    };
    if outcome.is_err() {
        drop(instance);
        ctx.model.cleanup(&launch.id);
    }
    outcome
}

/// The workload's `RESULT` lines for `test` in `stdout`; none, or a malformed one, is
/// an error.
pub fn results_for(stdout: &str, test: &str) -> Result<Vec<ResultLine>, String> {
    let mut found = Vec::new();
    for line in ResultLine::parse_output(stdout) {
        let line = line.map_err(|e| format!("malformed RESULT line: {e}"))?;
        if line.test == test {
            found.push(line);
        }
    }
    if found.is_empty() {
        return Err(format!("the workload printed no RESULT line for `{test}`"));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_a_scenario() {
        for name in SCENARIO_NAMES {
            assert_eq!(by_name(name).unwrap().name(), *name);
        }
        assert!(by_name("nope").is_none());
    }

    #[test]
    fn result_lines_are_filtered_by_test() {
        let out = "READY\nRESULT {\"test\":\"cpu\",\"values\":{}}\nRESULT {\"test\":\"x\"}\n";
        assert_eq!(results_for(out, "cpu").unwrap().len(), 1);
        assert!(results_for(out, "mem").unwrap_err().contains("no RESULT"));
        assert!(results_for("RESULT {oops", "cpu")
            .unwrap_err()
            .contains("malformed"));
    }

    #[test]
    fn ids_are_unique_and_prefixed() {
        let (a, b) = (next_id(), next_id());
        assert_ne!(a, b);
        assert!(a.starts_with("isolab-bench-"));
    }
}
