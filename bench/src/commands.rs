//! The subcommands' glue: turn parsed options into a run, a doctor check or a demo and
//! print the outcome. Returns the process exit code.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use bench::cli::{DemoArgs, RunArgs, ToolArgs};
use bench::models::MODEL_NAMES;
use bench::results::RunConfig;
use bench::runner::{self, RunOptions};
use bench::scenarios::{density::QUICK_COUNTS, SCENARIO_NAMES};

/// Exit code of a run stopped by Ctrl-C.
const INTERRUPTED: i32 = 130;

/// `bench run`.
pub fn run(args: &RunArgs) -> anyhow::Result<i32> {
    let opts = options(args);
    bench::interrupt::install();
    eprintln!(
        "isolab bench: writing {}",
        opts.out.join("results.json").display()
    );
    let results = runner::run(&opts)?;
    print!("{}", bench::table::render(&results));
    if bench::interrupt::requested() {
        eprintln!(
            "partial results kept in {}; `bench report {} --out DIR` uses them",
            opts.out.display(),
            opts.out.join("results.json").display()
        );
        return Ok(INTERRUPTED);
    }
    if !args.no_report {
        bench::report::generate(std::slice::from_ref(&results), &opts.out)
            .with_context(|| format!("writing the report in {}", opts.out.display()))?;
        eprintln!("report: {}", opts.out.join("report.md").display());
    }
    Ok(0)
}

/// The run's configuration: the user's options with `--quick` or full defaults.
fn options(args: &RunArgs) -> RunOptions {
    let names = |given: &[String], all: &[&str]| -> Vec<String> {
        if given.is_empty() {
            all.iter().map(|s| (*s).to_owned()).collect()
        } else {
            given.to_vec()
        }
    };
    let density = match (args.density.is_empty(), args.quick) {
        (false, _) => args.density.clone(),
        (true, true) => QUICK_COUNTS.to_vec(),
        (true, false) => vec![1, 10, 50, 100],
    };
    let config = RunConfig {
        models: names(&args.models, MODEL_NAMES),
        scenarios: names(&args.scenarios, SCENARIO_NAMES),
        iterations: args.iterations.unwrap_or(if args.quick { 5 } else { 10 }),
        warmup: args.warmup.unwrap_or(1),
        seed: args.seed,
        quick: args.quick,
        density,
    };
    RunOptions {
        config,
        out: args.out.clone().unwrap_or_else(default_out),
        timeout: Duration::from_secs(args.timeout.unwrap_or(if args.quick { 20 } else { 60 })),
        tools: bench::binaries::locate(&args.tools),
    }
}

/// `reports/<date>-<host>` under the current directory.
fn default_out() -> PathBuf {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "host".into());
    let date = bench::clock::date(std::time::SystemTime::now());
    PathBuf::from("reports").join(format!("{date}-{host}"))
}

/// `bench doctor`.
pub fn doctor(args: &ToolArgs) -> anyhow::Result<i32> {
    let checks = bench::doctor::checks(&bench::binaries::locate(args));
    print!("{}", bench::doctor::render(&checks));
    Ok(0)
}

/// `bench demo`.
pub fn demo(args: &DemoArgs) -> anyhow::Result<i32> {
    let tools = bench::binaries::locate(&args.tools);
    let scratch = tempfile::Builder::new()
        .prefix("isolab-demo-")
        .tempdir()
        .context("creating a scratch directory")?;
    let env = bench::models::Env {
        tools,
        scratch: scratch.path().to_path_buf(),
        kvm: microvm::kvm_flavor::detect(),
        cgroups: engine::cgroups::mode::detect(),
    };
    let names = if args.models.is_empty() {
        MODEL_NAMES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        args.models.clone()
    };
    let timeout = Duration::from_secs(args.timeout);
    let mut rows = Vec::new();
    for mut model in bench::models::by_names(&env, &names) {
        match model.prepare() {
            Ok(p) => rows.push(bench::demo::row(model.as_ref(), &env, timeout, p.emulated)),
            Err(why) => eprintln!("skipped {}: {why}", model.name()),
        }
    }
    print!("{}", bench::demo::render(&rows));
    Ok(0)
}
