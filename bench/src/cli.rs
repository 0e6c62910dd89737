//! The command line of `bench` (clap derive): `run`, `report`, `doctor`, `demo`.

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};

use crate::models::MODEL_NAMES;
use crate::scenarios::SCENARIO_NAMES;

/// isolab's harness: runs the same workload as a plain process, in containers and in
/// microVMs, and measures what each isolation model costs.
#[derive(Debug, Parser)]
#[command(name = "bench", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure every model in every scenario and write results.json, a summary table
    /// and a report. With no options: the default suite on every available model,
    /// written to reports/<date>-<host>/.
    Run(RunArgs),
    /// Make a report (report.md, report.html, plots) from saved results.json files;
    /// several files from different hosts are merged into one comparison.
    Report(crate::report::ReportArgs),
    /// Check what this host supports (root, /dev/kvm, cgroups, overlayfs, runtimes,
    /// QEMU, firecracker) and say how to fix what is missing.
    Doctor(ToolArgs),
    /// For a class: run `info` and `ready` in each model and print a side-by-side table
    /// of what the workload sees and what it costs, with a line on each difference.
    Demo(DemoArgs),
}

/// Options of `bench run`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    sudo bench run --quick                      # every model, about a minute\n  \
    sudo bench run                              # the full suite, reports/<date>-<host>/\n  \
    sudo bench run --models native,runc,microvm --scenarios startup --iterations 30\n  \
    sudo bench run --models container --scenarios density --density 1,50,200\n\n\
    Results are saved after every sample; Ctrl-C keeps what was measured (exit 130).\n\
    `bench doctor` says which models this host can run.")]
pub struct RunArgs {
    /// Models to run, comma-separated (default: all; unavailable ones are skipped with
    /// the reason).
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(MODEL_NAMES))]
    pub models: Vec<String>,
    /// Scenarios to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(SCENARIO_NAMES))]
    pub scenarios: Vec<String>,
    /// Measured iterations per model and scenario [default: 10, --quick: 5].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub iterations: Option<u32>,
    /// Warm-up iterations, run first and discarded [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub warmup: Option<u32>,
    /// Seed of the order in which models and scenarios are interleaved.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Small sizes and few iterations: the whole default suite in about a minute.
    #[arg(long)]
    pub quick: bool,
    /// Instance counts of the density scenario [default: 1,10,50,100; --quick: 1,5].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub density: Vec<u32>,
    /// Output directory [default: reports/<date>-<host>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seconds one instance may take before it is killed and counted as failed
    /// [default: 60, --quick: 20].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: Option<u64>,
    /// Do not write the report at the end (results.json and the table only).
    #[arg(long)]
    pub no_report: bool,
    /// Where the binaries are.
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// Options of `bench demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Models to show, comma-separated (default: all available).
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(MODEL_NAMES))]
    pub models: Vec<String>,
    /// Seconds one instance may take.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// Where the binaries are.
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// Where the programs are. By default the isolab binaries are looked for next to
/// `bench` itself, the kernel in /boot and the rest in PATH.
#[derive(Debug, Clone, Default, Args)]
pub struct ToolArgs {
    /// The workload binary.
    #[arg(long, env = "ISOLAB_WORKLOAD")]
    pub workload: Option<PathBuf>,
    /// isolab's `engine` binary.
    #[arg(long, env = "ISOLAB_ENGINE")]
    pub engine: Option<PathBuf>,
    /// isolab's `engine-oci` binary.
    #[arg(long, env = "ISOLAB_ENGINE_OCI")]
    pub engine_oci: Option<PathBuf>,
    /// isolab's `microvm` binary.
    #[arg(long, env = "ISOLAB_MICROVM")]
    pub microvm: Option<PathBuf>,
    /// Guest kernel for the Linux-guest models [default: newest /boot/vmlinuz-*].
    #[arg(long, env = "ISOLAB_KERNEL")]
    pub kernel: Option<PathBuf>,
    /// A firecracker binary [default: from PATH].
    #[arg(long, env = "ISOLAB_FIRECRACKER")]
    pub firecracker: Option<PathBuf>,
}
