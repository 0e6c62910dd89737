//! `engine-oci`: the runc-compatible command line (`create`, `start`, `state`, `kill`,
//! `delete`, `run`, `list`) over [`crate::Runtime`].

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::container::{kill::parse_signal, CreateOptions, Runtime, DEFAULT_ROOT};

/// isolab's OCI runtime: runs an OCI bundle (a rootfs and config.json) as a container,
/// with runc's commands and arguments, so tools that drive runc can drive it.
#[derive(Debug, Parser)]
#[command(
    name = "engine-oci",
    version,
    about = "isolab's OCI runtime: runs an OCI bundle as a container, with runc's commands and arguments",
    after_help = "A bundle is a directory with config.json and the root file system it names.\n\
                  Examples:\n  engine-oci run -b ./bundle c1\n  engine-oci create -b ./bundle c1 && engine-oci start c1\n  \
                  engine-oci state c1\n  engine-oci kill c1 KILL && engine-oci delete c1\n\
                  State lives under --root (default /run/isolab), one directory per container."
)]
pub struct Cli {
    /// Directory holding the containers' state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Also append errors to this file (runc compatibility).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format (runc compatibility; errors are plain text).
    #[arg(long = "log-format", global = true, hide = true)]
    pub log_format: Option<String>,
    /// Accepted for runc compatibility; no effect.
    #[arg(long, global = true, hide = true)]
    pub debug: bool,
    /// The operation.
    #[command(subcommand)]
    pub command: Command,
}

/// Arguments shared by `create` and `run`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Container id: 1-64 characters from [A-Za-z0-9_.-].
    pub id: String,
    /// The bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Accepted for runc compatibility; config.json's process.terminal=true is refused.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Print one `TIMINGS {json}` line on stderr with each startup step's duration.
    #[arg(long)]
    pub timings: bool,
}

/// Output format of `list`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    /// Columns.
    Table,
    /// A JSON array of OCI states.
    Json,
}

/// runc's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container that waits for `start` (its init holds the namespaces).
    Create(CreateArgs),
    /// Run a created container's program.
    Start {
        /// Container id.
        id: String,
    },
    /// Print the container's OCI state JSON.
    State {
        /// Container id.
        id: String,
    },
    /// Send a signal (name like KILL or SIGKILL, or number; default TERM) to the container.
    Kill {
        /// Container id.
        id: String,
        /// The signal.
        #[arg(default_value = "TERM")]
        signal: String,
        /// Signal every process of the container's cgroup, not only its init.
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a stopped container (with --force, kill it first).
    Delete {
        /// Container id.
        id: String,
        /// Kill the container first if it is not stopped.
        #[arg(short, long)]
        force: bool,
    },
    /// Create, start, wait for exit, delete; exits with the program's status.
    Run {
        /// Create args.
        #[command(flatten)]
        create: CreateArgs,
        /// Return after start, leaving the container running.
        #[arg(short, long)]
        detach: bool,
    },
    /// List containers.
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Print ids only.
        #[arg(short, long)]
        quiet: bool,
    },
}

fn check_console(args: &CreateArgs) -> anyhow::Result<()> {
    if args.console_socket.is_some() {
        let (_, spec) = crate::container::bundle::load(&args.bundle)?;
        if spec.process().as_ref().and_then(|p| p.terminal()) == Some(true) {
            anyhow::bail!(
                "--console-socket with process.terminal=true: terminals are not supported"
            );
        }
    }
    Ok(())
}

fn list(rt: &Runtime, format: ListFormat, quiet: bool) -> anyhow::Result<i32> {
    let records = rt.list()?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for r in &records {
            writeln!(out, "{}", r.id)?;
        }
    } else if let ListFormat::Json = format {
        let states: Vec<_> = records.iter().map(|r| r.oci_state()).collect();
        writeln!(out, "{}", serde_json::to_string(&states)?)?;
    } else {
        writeln!(
            out,
            "{:<20} {:<8} {:<10} {:<12} BUNDLE",
            "ID", "PID", "STATUS", "CREATED"
        )?;
        for r in &records {
            let pid = r.pid.filter(|_| r.init_alive()).unwrap_or(0);
            writeln!(
                out,
                "{:<20} {:<8} {:<10} {:<12} {}",
                r.id,
                pid,
                r.status,
                r.created_unix,
                r.bundle.display()
            )?;
        }
    }
    Ok(0)
}

fn run(rt: &Runtime, args: &CreateArgs, detach: bool) -> anyhow::Result<i32> {
    check_console(args)?;
    let opts = CreateOptions::from_env(args.pid_file.clone());
    let print = |t: &crate::timings::Timings| {
        if args.timings {
            eprintln!("{}", t.line());
        }
    };
    if detach {
        let mut created = rt.create(&args.id, &args.bundle, &opts)?;
        match rt.start_created(&args.id, &mut created) {
            Ok(t) => print(&t),
            Err(e) => {
                let _ = rt.delete(&args.id, true);
                return Err(e.into());
            }
        }
        return Ok(0);
    }
    let info = rt.run(&args.id, &args.bundle, &opts, print)?;
    if info.oom_killed {
        eprintln!(
            "engine-oci: container {} hit its memory limit: the OOM killer ended a process",
            args.id
        );
    }
    Ok(info.code.unwrap_or(0))
}

/// Runs the parsed command; returns the process's exit code.
pub fn execute(cli: &Cli) -> anyhow::Result<i32> {
    let rt = Runtime::new(&cli.root);
    match &cli.command {
        Command::Create(args) => {
            check_console(args)?;
            let created = rt.create(
                &args.id,
                &args.bundle,
                &CreateOptions::from_env(args.pid_file.clone()),
            )?;
            if args.timings {
                eprintln!("{}", created.timings.line());
            }
        }
        Command::Start { id } => rt.start(id)?,
        Command::State { id } => println!("{}", serde_json::to_string_pretty(&rt.state(id)?)?),
        Command::Kill {
            id,
            signal,
            all: false,
        } => rt.kill(id, parse_signal(signal)?)?,
        Command::Kill {
            id,
            signal,
            all: true,
        } => rt.kill_all(id, parse_signal(signal)?)?,
        Command::Delete { id, force } => rt.delete(id, *force)?,
        Command::Run { create, detach } => return run(&rt, create, *detach),
        Command::List { format, quiet } => return list(&rt, *format, *quiet),
    }
    Ok(0)
}
