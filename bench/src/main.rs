//! `bench`: the command-line front of the harness (parse, dispatch, print errors once).

mod commands;

use clap::Parser;

use bench::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => commands::run(args),
        Command::Report(args) => bench::report::run_report(args).map(|()| 0),
        Command::Doctor(args) => commands::doctor(args),
        Command::Demo(args) => commands::demo(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(1);
        }
    }
}
