//! `qemu`: QEMU's `microvm` machine booting the same kernel and initramfs as
//! `microvm-linux`. With hardware KVM it uses `-accel kvm`; otherwise TCG, and every
//! figure is labelled emulated.

use std::path::PathBuf;
use std::process::Command;

use super::microvm_linux::{guest_cmdline, initramfs, kernel};
use super::{Env, Launch, Model, Placement, Prepared};

/// Kernel arguments for a TCG guest. Under emulation on a loaded host the kernel's TSC
/// calibration against the PIT fails ("Unable to calibrate against PIT"), the TSC is
/// declared unstable and the boot then stalls; giving the frequency skips calibration.
const TCG_CLOCK_ARGS: &str = "tsc_early_khz=2000000 tsc=reliable ";

/// QEMU with `-M microvm`.
#[derive(Debug)]
pub struct Qemu {
    env: Env,
    program: Option<PathBuf>,
    initrd: Option<PathBuf>,
}

impl Qemu {
    /// The qemu model for `env`.
    pub fn new(env: &Env) -> Self {
        Self {
            env: env.clone(),
            program: super::find_in_path("qemu-system-x86_64"),
            initrd: None,
        }
    }

    fn accel(&self) -> &'static str {
        if self.env.kvm.is_hardware() {
            "kvm"
        } else {
            "tcg"
        }
    }
}

impl Model for Qemu {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn description(&self) -> &'static str {
        "QEMU -M microvm booting a Linux guest (KVM when the host has it, else TCG emulation)"
    }

    fn placement(&self) -> Placement {
        Placement::Guest
    }

    fn prepare(&mut self) -> Result<Prepared, String> {
        let program = self
            .program
            .clone()
            .ok_or("qemu-system-x86_64 not found (apt-get install qemu-system-x86)".to_owned())?;
        kernel(&self.env)?;
        let (initrd, note) = initramfs(&self.env)?;
        self.initrd = Some(initrd);
        Ok(Prepared {
            version: super::tool_version(&program),
            emulated: self.accel() == "tcg",
            note,
        })
    }

    fn command(&self, launch: &Launch) -> Result<Command, String> {
        let (Some(program), Some(initrd)) = (&self.program, &self.initrd) else {
            return Err("qemu was not prepared".to_owned());
        };
        let mut cmd = Command::new(program);
        cmd.args(["-M", "microvm", "-accel", self.accel(), "-smp", "1"]);
        cmd.arg("-m").arg(launch.guest_mem_mib().to_string());
        cmd.args(["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"]);
        cmd.args(["-serial", "stdio"]);
        cmd.arg("-kernel")
            .arg(kernel(&self.env)?)
            .arg("-initrd")
            .arg(initrd);
        let mut append = guest_cmdline(&launch.args);
        if self.accel() == "tcg" {
            append.insert_str(0, TCG_CLOCK_ARGS);
        }
        cmd.arg("-append").arg(append);
        Ok(cmd)
    }

    fn unsupported(&self, scenario: &str) -> Option<String> {
        (scenario == "net").then(|| "the guest has no network path to a host peer".to_owned())
    }
}
