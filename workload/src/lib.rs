//! The isolab workload: one static binary whose subcommands measure what each isolation
//! model costs. It runs unchanged as a host process, as PID 1 of a container, as `/init`
//! of a Linux guest and inside the kernel-less microVM.
//!
//! `cli` parses, `subcommands/` measures (one file each), `result` is the `RESULT {json}`
//! line, `guest_init` and `port_io` are the Linux-guest `/init` role, `guest_abi` the
//! ports shared with the monitor.

pub mod cli;
pub mod guest_abi;
pub mod guest_init;
pub mod port_io;
pub mod result;
pub mod subcommands;

use cli::Command;
use subcommands::emit;

/// Exit status for a command line that does not parse.
pub const EXIT_USAGE: i32 = 2;
/// Exit status for a measurement that failed.
pub const EXIT_FAILURE: i32 = 1;

/// Runs the workload with `args` (without the program name); returns the exit status.
pub fn run(args: &[String]) -> i32 {
    match cli::parse(args) {
        Ok(command) => execute(command),
        Err(e) => {
            eprintln!("workload: error: {e}");
            EXIT_USAGE
        }
    }
}

fn execute(command: Command) -> i32 {
    match measure(command) {
        Ok(Some(line)) => {
            emit(&line);
            0
        }
        Ok(None) => 0,
        Err(e) => {
            eprintln!("workload: error: {e}");
            EXIT_FAILURE
        }
    }
}

/// Runs one subcommand; the `RESULT` line it produced, if any, is printed by the caller.
fn measure(command: Command) -> std::io::Result<Option<result::ResultLine>> {
    use subcommands::{cpu, fileio, info, lifecycle, mem, net, syscall};
    Ok(match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            None
        }
        Command::Ready => {
            lifecycle::ready();
            None
        }
        Command::Idle => lifecycle::idle(),
        Command::Info => Some(info::run()),
        Command::Cpu {
            iterations,
            seconds,
        } => Some(cpu::run(iterations, seconds)),
        Command::Mem { size_mib, passes } => Some(mem::run(size_mib, passes)),
        Command::Syscall { iterations } => Some(syscall::run(iterations)),
        Command::FileIo {
            dir,
            size_mib,
            files,
        } => Some(fileio::run(&dir, size_mib, files)?),
        Command::NetServe { addr, connections } => {
            net::serve(addr, connections)?;
            None
        }
        Command::NetConnect {
            addr,
            round_trips,
            stream_mib,
        } => Some(net::connect(addr, round_trips, stream_mib)?),
    })
}
