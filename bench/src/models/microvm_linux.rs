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

/// Builds (once) the initramfs whose `/init` is the workload, with `microvm initramfs`;
/// where that fails (an older monitor), with the `cpio` tool, and says so in the note.
pub fn initramfs(env: &Env) -> Result<(PathBuf, Option<String>), String> {
    let out = env.scratch.join("initramfs.cpio");
    let mut cmd = Command::new(&env.tools.microvm);
    cmd.args(["initramfs", "-o"])
        .arg(&out)
        .arg("--init")
        .arg(&env.tools.workload);
    let monitor = super::oci::run_quiet(cmd).and_then(|()| non_empty(&out));
    match monitor {
        Ok(()) => Ok((out, None)),
        Err(why) => {
            cpio_initramfs(
                &env.tools.workload,
                &env.scratch.join("initramfs-root"),
                &out,
            )
            .map_err(|e| {
                format!("no initramfs: `microvm initramfs` failed ({why}) and so did cpio ({e})")
            })?;
            Ok((
                out,
                Some(format!(
                    "initramfs made with cpio: `microvm initramfs` failed: {why}"
                )),
            ))
        }
    }
}

fn non_empty(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => Ok(()),
        _ => Err(format!("{} was not written", path.display())),
    }
}

/// A newc archive holding only `/init` (the workload), made by `cpio -o -H newc`.
fn cpio_initramfs(workload: &Path, root: &Path, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(root).map_err(|e| format!("creating {}: {e}", root.display()))?;
    std::fs::copy(workload, root.join("init"))
        .map_err(|e| format!("copying {}: {e}", workload.display()))?;
    let file =
        std::fs::File::create(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let mut child = Command::new("cpio")
        .args(["-o", "-H", "newc", "--quiet"])
        .current_dir(root)
        .stdin(std::process::Stdio::piped())
        .stdout(file)
        .spawn()
        .map_err(|e| format!("running cpio: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, b"init\n")
            .map_err(|e| format!("feeding cpio: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("waiting for cpio: {e}"))?;
    if !status.success() {
        return Err(format!("cpio failed ({status})"));
    }
    non_empty(out)
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
        let (initrd, note) = initramfs(&self.env)?;
        self.initrd = Some(initrd);
        Ok(Prepared {
            note,
            ..Prepared::default()
        })
    }

    fn command(&self, launch: &Launch) -> Result<Command, String> {
        let initrd = self
            .initrd
            .as_ref()
            .ok_or("microvm-linux was not prepared")?;
        let mut cmd = Command::new(&self.env.tools.microvm);
        cmd.arg("run").arg("--kernel").arg(kernel(&self.env)?);
        cmd.arg("--initrd").arg(initrd).arg("--stats");
        cmd.arg("--mem").arg(launch.guest_mem_mib().to_string());
        // The monitor's default kernel parameters match its devices; the workload's
        // arguments follow `--`, which the monitor hands to init.
        cmd.arg("--").args(&launch.args);
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
    fn cpio_archive_holds_init() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("w");
        std::fs::write(&fake, b"\x7fELF-fake").unwrap();
        let out = dir.path().join("i.cpio");
        cpio_initramfs(&fake, &dir.path().join("root"), &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert!(bytes.starts_with(b"070701"), "not a newc archive");
        assert!(bytes.windows(5).any(|w| w == b"init\0"));
    }

    #[test]
    fn cmdline_passes_args_after_double_dash() {
        let c = guest_cmdline(&["cpu".into(), "--iterations".into(), "5".into()]);
        assert!(c.starts_with("console=ttyS0"));
        assert!(c.ends_with(" -- cpu --iterations 5"));
    }
}
