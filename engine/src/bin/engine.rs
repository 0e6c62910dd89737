//! `engine`: the docker-like front end (images, containers, volumes; see `engine --help`).

// The binary's own modules live in `bin/engine/`, next to the other binaries.
#[path = "engine/cli.rs"]
mod cli;
#[path = "engine/container_cmd.rs"]
mod container_cmd;
#[path = "engine/image_cmd.rs"]
mod image_cmd;
#[path = "engine/volume_cmd.rs"]
mod volume_cmd;

use clap::Parser;
use cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Image(cmd) => image_cmd::execute(&cli.root, cmd).map(|()| 0),
        Command::Volume(cmd) => volume_cmd::execute(&cli.root, cmd).map(|()| 0),
        other => container_cmd::execute(&cli.root, other),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(1);
        }
    }
}
