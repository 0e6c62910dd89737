//! `engine`: the docker-like front end (images and volumes; see `engine --help`).

// The binary's own modules live in `bin/engine/`, next to the other binaries.
#[path = "engine/cli.rs"]
mod cli;
#[path = "engine/image_cmd.rs"]
mod image_cmd;
#[path = "engine/volume_cmd.rs"]
mod volume_cmd;

use clap::Parser;
use cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Image(cmd) => image_cmd::execute(&cli.root, cmd),
        Command::Volume(cmd) => volume_cmd::execute(&cli.root, cmd),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
