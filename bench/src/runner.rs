//! A run: prepare each model (skipping, with the reason, those this host cannot run),
//! then take warm-ups and measured samples, interleaving models and scenarios in an
//! order shuffled by `--seed` so drift on the host hits every model alike. Each sample
//! is bounded by `--timeout`; a crash or hang is a failed sample. `results.json` is
//! rewritten after every sample.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::models::{self, Env, Model, Tools};
use crate::progress::Progress;
use crate::results::{
    ModelStatus, Results, ResultsError, RunConfig, Sample, ScenarioResult, Summary,
};
use crate::scenarios::{self, Ctx, Params, Scenario};

/// A run failed as a whole (single samples fail on their own, inside the results).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The output directory could not be made.
    #[error("creating the output directory {path}: {source}")]
    OutDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The scratch directory could not be made.
    #[error("creating a scratch directory in the temp dir ($TMPDIR): {0}")]
    Scratch(std::io::Error),
    /// The results file could not be written.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// No model can run on this host.
    #[error("none of the models asked for can run here ({0}); see `bench doctor`")]
    NoModel(String),
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Models, scenarios, iterations, seed, sizes.
    pub config: RunConfig,
    /// Where `results.json` goes.
    pub out: PathBuf,
    /// Deadline of one instance.
    pub timeout: Duration,
    /// The binaries.
    pub tools: Tools,
}

/// One (model, scenario, params) to sample.
#[derive(Debug)]
struct Cell {
    model: usize,
    scenario: Box<dyn Scenario>,
    params: Params,
    result: usize,
    /// Warm-ups of this cell (fewer than the run's for density and slow models).
    warmup: u32,
    /// Measured iterations of this cell.
    iterations: u32,
}

impl Cell {
    /// Whether the cell takes a sample in `round` of a run with `warmup` warm-up rounds.
    fn runs_in(&self, round: u32, warmup: u32) -> bool {
        if round < warmup {
            round < self.warmup
        } else {
            round - warmup < self.iterations
        }
    }
}

/// Scenarios an emulated model still runs under `--quick` (one sample each): at
/// seconds per launch, the rest would not fit the quick suite's minute.
const QUICK_EMULATED: &[&str] = &["startup", "memory", "isolation"];

/// Runs the whole plan; returns the results (also saved in `OUT/results.json`).
pub fn run(opts: &RunOptions) -> Result<Results, RunError> {
    std::fs::create_dir_all(&opts.out).map_err(|source| RunError::OutDir {
        path: opts.out.clone(),
        source,
    })?;
    let scratch = tempfile::Builder::new()
        .prefix("isolab-bench-")
        .tempdir()
        .map_err(RunError::Scratch)?;
    let env = Env {
        tools: opts.tools.clone(),
        scratch: scratch.path().to_path_buf(),
        kvm: microvm::kvm_flavor::detect(),
        cgroups: engine::cgroups::mode::detect(),
    };
    let path = opts.out.join("results.json");
    let mut results = new_results(&opts.config);
    let mut models = models::by_names(&env, &opts.config.models);
    results.models = prepare_all(&mut models, &env, opts.timeout);
    results.save(&path)?;
    if !results.models.iter().any(|m| m.available) {
        return Err(RunError::NoModel(skip_summary(&results.models)));
    }
    let statuses = results.models.clone();
    let cells = plan(&models, &statuses, &opts.config, &mut results);
    results.save(&path)?;
    measure(&models, &cells, opts, &env, &mut results, &path)?;
    results.finished_at = Some(crate::clock::now_rfc3339());
    results.save(&path)?;
    Ok(results)
}

fn new_results(config: &RunConfig) -> Results {
    Results {
        schema_version: crate::results::SCHEMA_VERSION,
        host: crate::host::gather(),
        config: config.clone(),
        started_at: crate::clock::now_rfc3339(),
        finished_at: None,
        models: Vec::new(),
        scenarios: Vec::new(),
    }
}

fn skip_summary(models: &[ModelStatus]) -> String {
    let reasons: Vec<String> = models
        .iter()
        .map(|m| format!("{}: {}", m.name, m.skip_reason.as_deref().unwrap_or("?")))
        .collect();
    reasons.join("; ")
}

/// Prepares each model and tries one `workload ready` in it; a model that fails either
/// is skipped with the reason.
fn prepare_all(models: &mut [Box<dyn Model>], env: &Env, timeout: Duration) -> Vec<ModelStatus> {
    models
        .iter_mut()
        .map(|m| {
            let prepared = m
                .prepare()
                .and_then(|p| trial(m.as_ref(), env, timeout).map(|()| p));
            ModelStatus {
                name: m.name().to_owned(),
                description: describe(m.as_ref(), prepared.as_ref().ok()),
                available: prepared.is_ok(),
                emulated: prepared.as_ref().is_ok_and(|p| p.emulated),
                version: prepared.as_ref().ok().and_then(|p| p.version.clone()),
                skip_reason: prepared.err(),
            }
        })
        .collect()
}

fn describe(model: &dyn Model, prepared: Option<&crate::models::Prepared>) -> String {
    match prepared.and_then(|p| p.note.as_deref()) {
        Some(note) => format!("{} ({note})", model.description()),
        None => model.description().to_owned(),
    }
}

fn trial(model: &dyn Model, env: &Env, timeout: Duration) -> Result<(), String> {
    let ctx = context(model, env, timeout, true);
    scenarios::run_to_exit_with(&ctx, &["ready"], false, |_| {})
        .map(|_| ())
        .map_err(|e| format!("a trial `workload ready` failed: {e}"))
}

fn context<'a>(model: &'a dyn Model, env: &'a Env, timeout: Duration, quick: bool) -> Ctx<'a> {
    Ctx {
        model,
        timeout,
        quick,
        tools: &env.tools,
        scratch: env.scratch.clone(),
    }
}

/// The cells to sample, with an (empty) result entry for each, and a skipped entry for
/// each scenario a model cannot run.
fn plan(
    models: &[Box<dyn Model>],
    statuses: &[ModelStatus],
    config: &RunConfig,
    results: &mut Results,
) -> Vec<Cell> {
    let mut cells = Vec::new();
    for name in &config.scenarios {
        let Some(probe) = scenarios::by_name(name) else {
            continue;
        };
        for params in probe.params(config) {
            let applicable = statuses
                .iter()
                .enumerate()
                .filter(|(i, s)| s.available && probe.applies_to(models[*i].as_ref()));
            for (model, status) in applicable {
                let skipped = skip_reason(models[model].as_ref(), status, name, config.quick)
                    .or_else(|| emulated_density_cap(status, name, &params));
                let result = empty_result(&status.name, name, &params, skipped.clone());
                results.scenarios.push(result);
                let Some(scenario) = scenarios::by_name(name).filter(|_| skipped.is_none()) else {
                    continue;
                };
                let reduced = scenario.once() || (config.quick && status.emulated);
                let (warmup, iterations) = if reduced {
                    (0, 1)
                } else {
                    (config.warmup, config.iterations)
                };
                let result = results.scenarios.len() - 1;
                cells.push(Cell {
                    model,
                    scenario,
                    params: params.clone(),
                    result,
                    warmup,
                    iterations,
                });
            }
        }
    }
    cells
}

/// Why `model` does not run `scenario`, if it does not.
fn skip_reason(
    model: &dyn Model,
    status: &ModelStatus,
    scenario: &str,
    quick: bool,
) -> Option<String> {
    let applies = scenarios::by_name(scenario).and_then(|s| s.skip_for(model));
    applies.or_else(|| model.unsupported(scenario)).or_else(|| {
        (quick && status.emulated && !QUICK_EMULATED.contains(&scenario)).then(|| {
            format!(
                "left out of --quick: {} is emulated and takes seconds per launch; run without --quick",
                status.name
            )
        })
    })
}

/// Most emulated guests started at once: each takes seconds of CPU to boot and its
/// full guest RAM on the host, so a hundred would swamp a small host.
pub const EMULATED_DENSITY_MAX: u32 = 10;

fn emulated_density_cap(status: &ModelStatus, scenario: &str, params: &Params) -> Option<String> {
    let n: u32 = params.get("instances")?.parse().ok()?;
    (scenario == "density" && status.emulated && n > EMULATED_DENSITY_MAX).then(|| {
        format!(
            "{n} emulated guests at once would take minutes and about {n} x 256 MiB of host memory; \
             at most {EMULATED_DENSITY_MAX} are started for an emulated model"
        )
    })
}

fn empty_result(
    model: &str,
    scenario: &str,
    params: &Params,
    skipped: Option<String>,
) -> ScenarioResult {
    ScenarioResult {
        model: model.to_owned(),
        scenario: scenario.to_owned(),
        params: params.clone(),
        samples: Vec::new(),
        summary: BTreeMap::new(),
        skipped,
    }
}

/// Rounds of warm-ups then measured iterations; each round visits every cell once in
/// a seeded random order. Cells measured once (density) run in the first measured round.
fn measure(
    models: &[Box<dyn Model>],
    cells: &[Cell],
    opts: &RunOptions,
    env: &Env,
    results: &mut Results,
    path: &Path,
) -> Result<(), RunError> {
    let (warmup, iterations) = (opts.config.warmup, opts.config.iterations);
    let progress = Progress::new(total_samples(cells));
    let mut rng = fastrand::Rng::with_seed(opts.config.seed);
    for round in 0..warmup + iterations {
        for cell in round_order(cells, round, warmup, &mut rng) {
            if crate::interrupt::requested() {
                progress.finish();
                eprintln!("interrupted: stopped after the sample in flight; partial results kept");
                return Ok(());
            }
            let model = models[cell.model].as_ref();
            progress.start(&format!("{} {}", model.name(), cell.scenario.name()));
            let ctx = context(model, env, opts.timeout, opts.config.quick);
            let sample = take_sample(&ctx, cell, round.saturating_sub(warmup));
            progress.done();
            if round >= warmup {
                record(&mut results.scenarios[cell.result], sample, &progress);
                results.save(path)?;
            }
        }
    }
    progress.finish();
    Ok(())
}

/// The cells of `round`, in the seeded random order.
fn round_order<'a>(
    cells: &'a [Cell],
    round: u32,
    warmup: u32,
    rng: &mut fastrand::Rng,
) -> Vec<&'a Cell> {
    let mut order: Vec<&Cell> = cells.iter().filter(|c| c.runs_in(round, warmup)).collect();
    rng.shuffle(&mut order);
    order
}

fn total_samples(cells: &[Cell]) -> u64 {
    cells
        .iter()
        .map(|c| u64::from(c.warmup + c.iterations))
        .sum()
}

fn take_sample(ctx: &Ctx<'_>, cell: &Cell, iteration: u32) -> Sample {
    match cell.scenario.sample(ctx, &cell.params) {
        Ok(m) => Sample {
            iteration,
            ok: true,
            error: None,
            metrics: m.metrics,
            phases: m.phases,
            facts: m.facts,
        },
        Err(error) => Sample {
            iteration,
            ok: false,
            error: Some(error),
            metrics: BTreeMap::new(),
            phases: Vec::new(),
            facts: BTreeMap::new(),
        },
    }
}

fn record(result: &mut ScenarioResult, sample: Sample, progress: &Progress) {
    if let Some(error) = &sample.error {
        progress.note(&format!(
            "{} {}: failed sample: {error}",
            result.model, result.scenario
        ));
    }
    result.samples.push(sample);
    result.summary = summarize(&result.samples);
}

/// Per metric: statistics over the successful samples.
pub fn summarize(samples: &[Sample]) -> BTreeMap<String, Summary> {
    let mut values: BTreeMap<&str, (Vec<f64>, &str)> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.ok) {
        for (name, m) in &s.metrics {
            let entry = values.entry(name).or_insert_with(|| (Vec::new(), &m.unit));
            entry.0.push(m.value);
        }
    }
    values
        .into_iter()
        .filter_map(|(name, (v, unit))| Some((name.to_owned(), crate::stats::summarize(&v, unit)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Measure;

    fn sample(ok: bool, v: f64) -> Sample {
        Sample {
            iteration: 0,
            ok,
            error: None,
            metrics: BTreeMap::from([(
                "x_ms".to_owned(),
                Measure {
                    value: v,
                    unit: "ms".into(),
                },
            )]),
            phases: Vec::new(),
            facts: BTreeMap::new(),
        }
    }

    fn cell(model: usize, warmup: u32, iterations: u32) -> Cell {
        Cell {
            model,
            scenario: scenarios::by_name("startup").unwrap(),
            params: Params::new(),
            result: model,
            warmup,
            iterations,
        }
    }

    #[test]
    fn cells_take_their_warmups_and_iterations_in_the_right_rounds() {
        let full = cell(0, 1, 3);
        let once = cell(1, 0, 1);
        let runs = |c: &Cell| (0..4).filter(|r| c.runs_in(*r, 1)).collect::<Vec<_>>();
        assert_eq!(runs(&full), [0, 1, 2, 3]);
        assert_eq!(runs(&once), [1]);
        assert_eq!(total_samples(&[full, once]), 5);
    }

    #[test]
    fn emulated_models_start_at_most_ten_guests_at_once() {
        let status = |emulated| ModelStatus {
            name: "qemu".into(),
            description: String::new(),
            available: true,
            skip_reason: None,
            emulated,
            version: None,
        };
        let n = |v: &str| Params::from([("instances".to_owned(), v.to_owned())]);
        assert!(emulated_density_cap(&status(true), "density", &n("100")).is_some());
        assert!(emulated_density_cap(&status(true), "density", &n("10")).is_none());
        assert!(emulated_density_cap(&status(false), "density", &n("100")).is_none());
    }

    #[test]
    fn the_seed_decides_the_interleaving() {
        let cells: Vec<Cell> = (0..8).map(|m| cell(m, 0, 1)).collect();
        let order = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            round_order(&cells, 0, 0, &mut rng)
                .iter()
                .map(|c| c.model)
                .collect::<Vec<_>>()
        };
        assert_eq!(order(7), order(7));
        assert_ne!(order(7), order(8));
        let mut sorted = order(7);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn failed_samples_are_left_out_of_the_summary() {
        let s = summarize(&[sample(true, 1.0), sample(false, 100.0), sample(true, 3.0)]);
        assert_eq!(s["x_ms"].n, 2);
        assert_eq!(s["x_ms"].median, 2.0);
        assert_eq!(s["x_ms"].unit, "ms");
    }
}
