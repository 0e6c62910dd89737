//! `engine run|ps|logs|stop|rm`: calls into `engine::frontend` and prints the results.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use engine::frontend::run::{RunOptions, RunOutcome};
use engine::frontend::spec::{self, Limits};
use engine::frontend::Frontend;
use engine::network::NetworkMode;

use super::cli::{Command, Network, RunArgs};

/// Runs a container command; returns the exit status for the process.
pub fn execute(root: &Path, cmd: &Command) -> Result<i32> {
    let frontend = Frontend::new(root);
    match cmd {
        Command::Run(args) => run(&frontend, args),
        Command::Ps { all } => ps(&frontend, *all).map(|()| 0),
        Command::Logs { container } => {
            std::io::stdout().write_all(&frontend.logs(container)?)?;
            Ok(0)
        }
        Command::Stop { time, containers } => {
            for id in containers {
                frontend.stop(id, Duration::from_secs(*time))?;
                println!("{id}");
            }
            Ok(0)
        }
        Command::Rm { force, containers } => {
            for id in containers {
                frontend.remove(id, *force)?;
                println!("{id}");
            }
            Ok(0)
        }
        Command::Image(_) | Command::Volume(_) => unreachable!("dispatched in main"),
    }
}

fn run(frontend: &Frontend, args: &RunArgs) -> Result<i32> {
    let opts = RunOptions {
        image: args.image.clone(),
        args: args.args.clone(),
        name: args.name.clone(),
        remove: args.rm,
        detach: args.detach,
        limits: Limits {
            memory_bytes: args.memory.as_deref().map(spec::parse_memory).transpose()?,
            cpus: args.cpus.as_deref().map(spec::parse_cpus).transpose()?,
            pids: args.pids_limit,
        },
        network: match args.network {
            Network::None => NetworkMode::None,
            Network::Host => NetworkMode::Host,
            Network::Bridge => NetworkMode::Bridge,
        },
        volumes: args
            .volumes
            .iter()
            .map(|v| spec::parse_volume(v))
            .collect::<Result<_, _>>()?,
        env: args.env.clone(),
        timings: args.timings,
    };
    if opts.detach && opts.remove {
        bail!(
            "--rm and -d together are not supported: remove a detached container with `engine rm`"
        );
    }
    match frontend.run(&opts)? {
        RunOutcome::Detached { id } => {
            println!("{id}");
            Ok(0)
        }
        RunOutcome::Exited { id, info } => {
            if info.oom_killed {
                eprintln!(
                    "engine: container {id} was killed by the OOM killer (memory limit reached)"
                );
            }
            Ok(info.code.unwrap_or(if info.oom_killed { 137 } else { 1 }))
        }
    }
}

fn ps(frontend: &Frontend, all: bool) -> Result<()> {
    println!(
        "{:<14} {:<24} {:<22} COMMAND",
        "CONTAINER ID", "IMAGE", "STATUS"
    );
    for c in frontend.list()? {
        if !all && c.status != "running" && c.status != "created" {
            continue;
        }
        let command = c.meta.command.join(" ");
        println!(
            "{:<14} {:<24} {:<22} {}",
            c.meta.id, c.meta.image, c.status, command
        );
    }
    Ok(())
}
