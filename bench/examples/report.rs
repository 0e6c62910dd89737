//! `cargo run -p bench --example report -- RESULTS.json... --out DIR`: the report
//! alone, the same as `bench report`, handy when working on the report's look.

use clap::Parser;

/// Writes report.md, report.html and plots/ from saved results.
#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    args: bench::report::ReportArgs,
}

fn main() {
    let cli = Cli::parse();
    if let Err(err) = bench::report::run_report(&cli.args) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
