//! `microvm-linux`: a Linux guest in isolab's monitor (`microvm run --kernel K --initrd
//! I --stats`), with the workload as `/init`. It needs hardware KVM: on PVM a stock
//! kernel's privileged code is emulated and cannot boot.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::microvm::observe_stats;
use super::{tagged_json, Env, Launch, Model, Observed, Placement, Prepared};

/// The Linux-guest microVM.
#[derive(Debug)]
pub struct MicrovmLinux {
    env: Env,
    initrd: Option<PathBuf>,
}

impl MicrovmLinux {
    /// The microvm-linux model for `env`.
    pub fn new(env: &Env) -> Self {
        Self {
            env: env.clone(),
            initrd: None,
        }
    }
}

/// The kernel command line that runs `workload ARGS` as init and powers off after.
pub fn guest_cmdline(args: &[String]) -> String {
    format!(
        "console=ttyS0 reboot=k panic=-1 quiet -- {}",
        args.join(" ")
    )
}

/// Builds (once) the initramfs whose `/init` is the workload, with `microvm initramfs`.
pub fn initramfs(env: &Env) -> Result<PathBuf, String> {
    let out = env.scratch.join("initramfs.cpio");
    if out.is_file() {
        return Ok(out);
    }
    let mut cmd = Command::new(&env.tools.microvm);
    cmd.args(["initramfs", "-o"])
        .arg(&out)
        .arg("--init")
        .arg(&env.tools.workload);
    super::oci::run_quiet(cmd)?;
    Ok(out)
}

/// The guest kernel, or the reason there is none.
pub fn kernel(env: &Env) -> Result<&Path, String> {
    env.tools.kernel.as_deref().ok_or_else(|| {
        "no guest kernel (install linux-image-amd64 so /boot/vmlinuz-* exists, or pass --kernel PATH)"
            .to_owned()
    })
}

impl Model for MicrovmLinux {
    fn name(&self) -> &'static str {
        "microvm-linux"
    }

    fn description(&self) -> &'static str {
        "a Linux guest kernel in isolab's monitor, the workload as /init"
    }

    fn placement(&self) -> Placement {
        Placement::Guest
    }

    fn prepare(&mut self) -> Result<Prepared, String> {
        if !self.env.kvm.is_hardware() {
            return Err(format!(
                "needs hardware KVM (VT-x or AMD-V); this host's /dev/kvm is {}: a stock \
                 kernel's privileged code cannot run there",
                self.env.kvm
            ));
        }
        kernel(&self.env)?;
        self.initrd = Some(initramfs(&self.env)?);
        Ok(Prepared::default())
    }

    fn command(&self, launch: &Launch) -> Result<Command, String> {
        let initrd = self
            .initrd
            .as_ref()
            .ok_or("microvm-linux was not prepared")?;
        let mut cmd = Command::new(&self.env.tools.microvm);
        cmd.arg("run").arg("--kernel").arg(kernel(&self.env)?);
        cmd.arg("--initrd")
            .arg(initrd)
            .arg("--cmdline")
            .arg(guest_cmdline(&launch.args));
        cmd.arg("--stats");
        Ok(cmd)
    }

    fn unsupported(&self, scenario: &str) -> Option<String> {
        (scenario == "net").then(|| "the guest has no network path to a host peer".to_owned())
    }

    fn observe(&self, stderr: &str) -> Observed {
        tagged_json(stderr, "STATS ")
            .map(|s| observe_stats(&s))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_passes_args_after_double_dash() {
        let c = guest_cmdline(&["cpu".into(), "--iterations".into(), "5".into()]);
        assert!(c.starts_with("console=ttyS0"));
        assert!(c.ends_with(" -- cpu --iterations 5"));
    }
}
