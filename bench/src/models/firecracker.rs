//! `firecracker`: AWS's microVM monitor booting the same initramfs, when a firecracker
//! binary is found in `PATH` or given with `--firecracker`. Firecracker boots only an
//! uncompressed ELF `vmlinux` and needs hardware KVM.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::microvm_linux::{guest_cmdline, initramfs, kernel};
use super::{Env, Launch, Model, Placement, Prepared};

/// The firecracker model.
#[derive(Debug)]
pub struct Firecracker {
    env: Env,
    program: Option<PathBuf>,
    initrd: Option<PathBuf>,
}

impl Firecracker {
    /// The firecracker model for `env`.
    pub fn new(env: &Env) -> Self {
        let program = env
            .tools
            .firecracker
            .clone()
            .or_else(|| super::find_in_path("firecracker"));
        Self {
            env: env.clone(),
            program,
            initrd: None,
        }
    }
}

fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// Firecracker's `--config-file` JSON for one launch.
fn config(kernel: &Path, initrd: &Path, launch: &Launch) -> serde_json::Value {
    serde_json::json!({
        "boot-source": {
            "kernel_image_path": kernel,
            "initrd_path": initrd,
            "boot_args": guest_cmdline(&launch.args),
        },
        "drives": [],
        "machine-config": { "vcpu_count": 1, "mem_size_mib": launch.guest_mem_mib() },
    })
}

impl Model for Firecracker {
    fn name(&self) -> &'static str {
        "firecracker"
    }

    fn description(&self) -> &'static str {
        "Firecracker (AWS's microVM monitor) booting a Linux guest"
    }

    fn placement(&self) -> Placement {
        Placement::Guest
    }

    fn prepare(&mut self) -> Result<Prepared, String> {
        let program = self.program.clone().ok_or(
            "firecracker not found in PATH (download a release binary and pass --firecracker PATH)"
                .to_owned(),
        )?;
        if !self.env.kvm.is_hardware() {
            return Err(format!(
                "needs hardware KVM; this host's /dev/kvm is {}",
                self.env.kvm
            ));
        }
        if !is_elf(kernel(&self.env)?) {
            return Err(
                "firecracker boots an uncompressed ELF vmlinux; pass --kernel PATH/vmlinux".into(),
            );
        }
        let (initrd, note) = initramfs(&self.env)?;
        self.initrd = Some(initrd);
        Ok(Prepared {
            version: super::tool_version(&program),
            emulated: false,
            note,
        })
    }

    fn command(&self, launch: &Launch) -> Result<Command, String> {
        let (Some(program), Some(initrd)) = (&self.program, &self.initrd) else {
            return Err("firecracker was not prepared".to_owned());
        };
        let path = self
            .env
            .scratch
            .join(format!("{}.firecracker.json", launch.id));
        let json = config(kernel(&self.env)?, initrd, launch);
        std::fs::write(&path, json.to_string())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        let mut cmd = Command::new(program);
        cmd.arg("--no-api").arg("--config-file").arg(path);
        Ok(cmd)
    }

    fn unsupported(&self, scenario: &str) -> Option<String> {
        (scenario == "net").then(|| "the guest has no network path to a host peer".to_owned())
    }

    fn cleanup(&self, id: &str) {
        let _ = std::fs::remove_file(self.env.scratch.join(format!("{id}.firecracker.json")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_kernel_initrd_and_args() {
        let launch = Launch {
            id: "i".into(),
            args: vec!["mem".into(), "--size-mib".into(), "128".into()],
            host_network: false,
            memory_limit_mib: None,
        };
        let c = config(Path::new("/k"), Path::new("/i"), &launch);
        assert_eq!(c["boot-source"]["kernel_image_path"], "/k");
        assert_eq!(c["machine-config"]["mem_size_mib"], 384);
        assert!(c["boot-source"]["boot_args"]
            .as_str()
            .unwrap()
            .ends_with("-- mem --size-mib 128"));
    }
}
