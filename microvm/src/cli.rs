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
    /// Boot a Linux kernel with an initramfs whose /init is the workload.
    ///
    /// The serial console goes to stdout. Arguments after `--` go to init (the
    /// workload's subcommand). Exit status: the workload's own; 124 when --timeout
    /// expires; 125 when the monitor fails or the guest resets without a status. On a
    /// PVM host (software KVM) a stock kernel cannot boot: refused unless --force.
    Run(RunArgs),
    /// Write an initramfs (newc cpio) with the workload as /init.
    Initramfs(InitramfsArgs),
    /// Print the KVM flavor of this host (vmx, svm, pvm or none).
    Flavor,
}

/// Arguments of `microvm run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The kernel: an ELF vmlinux or a bzImage [default: the newest /boot/vmlinuz-*].
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// The initramfs (see `microvm initramfs`).
    #[arg(long, value_name = "CPIO")]
    pub initrd: Option<PathBuf>,
    /// Kernel parameters, replacing the default (serial console, i8042 reset, panic
    /// reboots, quiet).
    #[arg(long, value_name = "S")]
    pub cmdline: Option<String>,
    /// Guest memory in MiB (even, 32 to 65536). Mapped lazily.
    #[arg(long, value_name = "MiB", default_value_t = 256)]
    pub mem: u64,
    /// A raw disk image, attached read-write as virtio-blk (`/dev/vda` in the guest).
    #[arg(long, value_name = "IMG")]
    pub disk: Option<PathBuf>,
    /// An existing tap device, attached as virtio-net (`eth0` in the guest).
    #[arg(long, value_name = "TAP")]
    pub net: Option<String>,
    /// Number of vCPUs (1 to 32), described to the kernel by an MP table.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub vcpus: u8,
    /// End the guest after this many seconds (fractions allowed); exit status 124.
    #[arg(long, value_name = "S", value_parser = parse_timeout)]
    pub timeout: Option<f64>,
    /// At exit, print one `STATS {json}` line to stderr: phases (monitor_setup,
    /// kernel_boot until the ready port, init until exit) and exits.
    #[arg(long)]
    pub stats: bool,
    /// Boot even on a PVM host, where a stock kernel is expected to fail.
    #[arg(long)]
    pub force: bool,
    /// Arguments for init (put them after `--`), e.g. `-- info`.
    #[arg(
        value_name = "INIT_ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub init_args: Vec<String>,
}

/// Arguments of `microvm initramfs`.
#[derive(Debug, Args)]
pub struct InitramfsArgs {
    /// Where to write the archive.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// The binary to install as /init [default: the `workload` binary next to this
    /// `microvm` binary].
    #[arg(long, value_name = "BINARY")]
    pub init: Option<PathBuf>,
    /// Also install host file SRC at DST in the guest (repeatable).
    #[arg(long = "add", value_name = "SRC:DST")]
    pub add: Vec<String>,
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
