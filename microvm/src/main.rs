//! `microvm`: the command-line front of the monitor. Parses arguments, runs the VM,
//! and exits with the guest's status.

mod cli;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use cli::{Cli, Command, ExecArgs, InitramfsArgs, RunArgs};
use microvm::kernelless::{self, ExecOptions, MONITOR_FAILURE_EXIT_CODE};
use microvm::linux::{initramfs, run as linux_run};
use microvm::stats::StatsReport;

fn main() -> ExitCode {
    let start = Instant::now();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Flavor => {
            println!("{}", microvm::kvm_flavor::detect());
            Ok(0)
        }
        Command::Exec(args) => exec(args, start),
        Command::Run(args) => run(args, start),
        Command::Initramfs(args) => build_initramfs(args),
    };
    match code {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(MONITOR_FAILURE_EXIT_CODE as u8)
        }
    }
}

fn exec(args: ExecArgs, start: Instant) -> anyhow::Result<i32> {
    let options = ExecOptions {
        binary: args.binary,
        args: args.args,
        env: args.env,
        mem_mib: args.mem,
        rootfs: args.rootfs,
        timeout: args.timeout.map(Duration::from_secs_f64),
        sync_regs: !args.no_sync_regs,
        measure_memory: args.stats,
    };
    let report = kernelless::exec(&options, start)?;
    tell_end(report.outcome.report(), args.stats.then_some(&report.stats))?;
    Ok(report.outcome.exit_code())
}

fn run(args: RunArgs, start: Instant) -> anyhow::Result<i32> {
    let options = linux_run::RunOptions {
        kernel: args.kernel,
        initrd: args.initrd,
        cmdline: args.cmdline,
        init_args: args.init_args,
        disk: args.disk,
        net: args.net,
        mem_mib: args.mem,
        vcpus: args.vcpus,
        timeout: args.timeout.map(Duration::from_secs_f64),
        force: args.force,
    };
    let report = linux_run::run(&options, start)?;
    std::io::stdout().flush()?;
    tell_end(report.outcome.report(), args.stats.then_some(&report.stats))?;
    Ok(report.outcome.exit_code())
}

/// Says on stderr how the guest ended, if that needs saying, and with `--stats` the
/// stats line.
fn tell_end(outcome: Option<String>, stats: Option<&StatsReport>) -> std::io::Result<()> {
    let mut stderr = std::io::stderr().lock();
    if let Some(line) = outcome {
        writeln!(stderr, "microvm: {line}")?;
    }
    if let Some(stats) = stats {
        writeln!(stderr, "{}", stats.line())?;
    }
    Ok(())
}

fn build_initramfs(args: InitramfsArgs) -> anyhow::Result<i32> {
    let init = match args.init {
        Some(init) => init,
        None => initramfs::default_init()?,
    };
    let extra = args
        .add
        .iter()
        .map(|a| initramfs::parse_add(a))
        .collect::<Result<Vec<_>, _>>()?;
    let spec = initramfs::InitramfsSpec { init, extra };
    let size = initramfs::write_file(&spec, &args.output)?;
    eprintln!("microvm: wrote {} ({size} bytes)", args.output.display());
    Ok(0)
}
