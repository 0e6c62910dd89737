//! Command-line interface of `microvm` (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// isolab's microVM monitor: runs a workload in a KVM virtual machine.
#[derive(Debug, Parser)]
#[command(name = "microvm", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a static x86_64 Linux binary in a kernel-less VM (no guest kernel).
    ///
    /// The binary runs at CPL3 inside the VM; each of its syscalls exits to this
    /// monitor, which performs it (files confined to --rootfs). Exit status: the
    /// guest's own; 128+signal for a guest CPU exception (e.g. 139 for a page fault)
    /// or when the monitor gets SIGINT/SIGTERM/SIGHUP (it stops the guest and cleans up
    /// first); 124 when --timeout expires; 125 when the monitor fails.
    #[command(after_help = "Examples:\n  \
        microvm exec -- /bin/busybox echo hello\n  \
        microvm exec --rootfs ./root --stats -- ./workload fileio --dir /\n  \
        microvm exec --mem 64 --timeout 2.5 -- ./static-program arg1 arg2")]
    Exec(ExecArgs),
    /// Print the KVM flavor of this host (vmx, svm, pvm or none).
    Flavor,
}

/// Arguments of `microvm exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Guest memory in MiB (even, 16 to 3072). Mapped lazily: only touched pages cost.
    #[arg(long, value_name = "MiB", default_value_t = 256)]
    pub mem: u64,
    /// Directory the guest's file system calls are confined to [default: an empty
    /// temporary directory $TMPDIR/isolab-rootfs-<pid>-*, removed at exit, or by the
    /// next microvm exec if this one is killed].
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// End the guest after this many seconds (fractions allowed); exit status 124.
    #[arg(long, value_name = "S", value_parser = parse_timeout)]
    pub timeout: Option<f64>,
    /// At exit, print one `STATS {json}` line to stderr: phases, exits, ports, syscalls.
    #[arg(long)]
    pub stats: bool,
    /// Exchange the guest's registers at each syscall with the KVM_GET_REGS and
    /// KVM_SET_REGS ioctls instead of the shared kvm_run page (KVM_CAP_SYNC_REGS, used
    /// by default where KVM offers it): to measure what the sync registers save.
    #[arg(long)]
    pub no_sync_regs: bool,
    /// Set an environment variable for the guest (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The static binary (read from the host).
    #[arg(value_name = "BINARY", required = true)]
    pub binary: PathBuf,
    /// Arguments for the binary (put them after `--`).
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if secs.is_finite() && secs > 0.0 && secs < 1e9 {
        Ok(secs)
    } else {
        Err(format!("{s}: must be a positive number of seconds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_takes_the_binary_and_its_hyphenated_args_after_double_dash() {
        let cli = Cli::try_parse_from([
            "microvm",
            "exec",
            "--mem",
            "64",
            "--",
            "/bin/busybox",
            "ls",
            "-l",
        ])
        .unwrap();
        let Command::Exec(args) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(args.mem, 64);
        assert_eq!(args.binary, PathBuf::from("/bin/busybox"));
        assert_eq!(args.args, ["ls", "-l"]);
    }

    #[test]
    fn timeout_must_be_positive() {
        assert_eq!(parse_timeout("0.5"), Ok(0.5));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("soon").is_err());
    }
}
