//! The OCI bundle every container model runs: the workload in a `FROM scratch` image
//! built by isolab's `engine`, unpacked once, then driven by isolab's `engine-oci` or by
//! runc, crun or youki, so each runtime runs exactly the same files.

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::{LinuxMemoryBuilder, LinuxNamespaceType, Spec};

use super::{Env, Launch, Model, Observed, Placement, Prepared};

/// The image name the harness builds.
pub const IMAGE: &str = "isolab-bench-workload";

/// An unpacked bundle whose `config.json` is rewritten per launch.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory (`config.json`, `rootfs/`).
    pub dir: PathBuf,
    template: Spec,
}

impl Bundle {
    /// Builds the image under `image_root` and unpacks it into `dir`.
    pub fn build(env: &Env, image_root: &Path, dir: &Path) -> Result<Self, String> {
        let context = env.scratch.join("image-context");
        std::fs::create_dir_all(&context)
            .map_err(|e| format!("creating {}: {e}", context.display()))?;
        std::fs::copy(&env.tools.workload, context.join("workload"))
            .map_err(|e| format!("copying {}: {e}", env.tools.workload.display()))?;
        std::fs::write(
            context.join("Containerfile"),
            "FROM scratch\nCOPY workload /workload\nENTRYPOINT [\"/workload\"]\n",
        )
        .map_err(|e| format!("writing the Containerfile: {e}"))?;
        let engine = |args: &[&str]| -> Result<(), String> {
            let mut cmd = Command::new(&env.tools.engine);
            cmd.arg("--root").arg(image_root).args(args);
            run_quiet(cmd)
        };
        let ctx = context.to_string_lossy().into_owned();
        engine(&["image", "build", "-t", IMAGE, &ctx])?;
        engine(&["image", "unpack", IMAGE, &dir.to_string_lossy()])?;
        let config = dir.join("config.json");
        let template =
            Spec::load(&config).map_err(|e| format!("reading {}: {e}", config.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            template,
        })
    }

    /// A bundle made without isolab's engine: the workload copied into `rootfs/` and
    /// the runtime's own default `config.json` (`runc spec`), made writable and
    /// terminal-less, so runc, crun and youki still run where the engine cannot make
    /// a bundle; the model's description then says so.
    pub fn from_runtime_spec(env: &Env, program: &Path, dir: &Path) -> Result<Self, String> {
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs)
            .map_err(|e| format!("creating {}: {e}", rootfs.display()))?;
        std::fs::copy(&env.tools.workload, rootfs.join("workload"))
            .map_err(|e| format!("copying {}: {e}", env.tools.workload.display()))?;
        let mut cmd = Command::new(program);
        cmd.arg("spec").arg("--bundle").arg(dir);
        run_quiet(cmd)?;
        let config = dir.join("config.json");
        let mut spec =
            Spec::load(&config).map_err(|e| format!("reading {}: {e}", config.display()))?;
        if let Some(p) = spec.process_mut() {
            p.set_terminal(Some(false));
        }
        if let Some(root) = spec.root_mut() {
            root.set_readonly(Some(false));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            template: spec,
        })
    }

    /// Writes `config.json` for one launch: the workload's arguments and, when asked,
    /// the host's network namespace (so a peer on the host's loopback is reachable).
    pub fn configure(&self, launch: &Launch) -> Result<(), String> {
        let mut spec = self.template.clone();
        let mut args = vec!["/workload".to_owned()];
        args.extend(launch.args.iter().cloned());
        if let Some(p) = spec.process_mut() {
            p.set_args(Some(args));
        }
        if launch.host_network {
            if let Some(ns) = spec
                .linux_mut()
                .as_mut()
                .and_then(|l| l.namespaces_mut().as_mut())
            {
                ns.retain(|n| n.typ() != LinuxNamespaceType::Network);
            }
        }
        if let Some(mib) = launch.memory_limit_mib {
            set_memory_limit(&mut spec, mib)?;
        }
        // Atomically (temp file, then rename): density launches many instances at
        // once, and a runtime must never read a half-written config.json.
        let path = self.dir.join("config.json");
        let tmp = self.dir.join(format!("config.json.{}", launch.id));
        spec.save(&tmp)
            .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("renaming into {}: {e}", path.display()))
    }
}

/// Sets `linux.resources.memory` to `mib` MiB, swap included.
fn set_memory_limit(spec: &mut Spec, mib: u64) -> Result<(), String> {
    let bytes = i64::try_from(mib * 1024 * 1024)
        .map_err(|_| format!("memory limit {mib} MiB is too large"))?;
    let memory = LinuxMemoryBuilder::default()
        .limit(bytes)
        .swap(bytes)
        .build()
        .map_err(|e| format!("building the memory limit: {e}"))?;
    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    let mut resources = linux.resources().clone().unwrap_or_default();
    resources.set_memory(Some(memory));
    linux.set_resources(Some(resources));
    Ok(())
}

/// Runs `cmd` to completion; its stderr becomes the error.
pub fn run_quiet(mut cmd: Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("running {shown}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(format!("{shown} failed ({}): {}", out.status, err.trim()))
}

/// An external OCI runtime (runc, crun, youki) on the shared bundle.
#[derive(Debug)]
pub struct ExternalRuntime {
    /// Model and program name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// The program, when found.
    pub program: Option<PathBuf>,
    /// Why it cannot run on this host, decided before trying (e.g. crun on hybrid).
    pub refusal: Option<String>,
    env: Env,
    bundle: Option<Bundle>,
}

impl ExternalRuntime {
    /// A runtime model that runs `PROGRAM --root STATE run --bundle B ID`.
    pub fn new(env: &Env, name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            description,
            program: super::find_in_path(name),
            refusal: None,
            env: env.clone(),
            bundle: None,
        }
    }

    fn state_root(&self) -> PathBuf {
        self.env.scratch.join(format!("{}-state", self.name))
    }
}

impl Model for ExternalRuntime {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn placement(&self) -> Placement {
        Placement::Container
    }

    fn prepare(&mut self) -> Result<Prepared, String> {
        let program = self.program.clone().ok_or_else(|| {
            format!(
                "{} not found in PATH (install it, e.g. `apt-get install {}`)",
                self.name, self.name
            )
        })?;
        if let Some(why) = &self.refusal {
            return Err(why.clone());
        }
        let dir = self.env.scratch.join(format!("{}-bundle", self.name));
        let images = self.env.scratch.join("images");
        let (bundle, note) = match Bundle::build(&self.env, &images, &dir) {
            Ok(b) => (b, None),
            Err(why) => {
                let _ = std::fs::remove_dir_all(&dir);
                let b = Bundle::from_runtime_spec(&self.env, &program, &dir)?;
                (
                    b,
                    Some(format!(
                        "bundle from `{} spec`, isolab's engine could not make one: {why}",
                        self.name
                    )),
                )
            }
        };
        self.bundle = Some(bundle);
        Ok(Prepared {
            version: super::tool_version(&program),
            emulated: false,
            note,
        })
    }

    fn command(&self, launch: &Launch) -> Result<Command, String> {
        let (Some(program), Some(bundle)) = (&self.program, &self.bundle) else {
            return Err(format!("{} was not prepared", self.name));
        };
        bundle.configure(launch)?;
        let mut cmd = Command::new(program);
        cmd.arg("--root").arg(self.state_root());
        cmd.args(["run", "--bundle"])
            .arg(&bundle.dir)
            .arg(&launch.id);
        Ok(cmd)
    }

    fn observe(&self, _stderr: &str) -> Observed {
        Observed::default()
    }

    fn cleanup(&self, id: &str) {
        if let Some(program) = &self.program {
            let mut cmd = Command::new(program);
            cmd.arg("--root")
                .arg(self.state_root())
                .args(["delete", "--force", id]);
            let _ = cmd.output();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limit_lands_in_the_spec() {
        let mut spec = Spec::default();
        set_memory_limit(&mut spec, 32).unwrap();
        let memory = spec
            .linux()
            .as_ref()
            .unwrap()
            .resources()
            .as_ref()
            .unwrap()
            .memory()
            .unwrap();
        assert_eq!(memory.limit(), Some(32 * 1024 * 1024));
        assert_eq!(memory.swap(), Some(32 * 1024 * 1024));
    }

    #[test]
    fn launch_config_has_args_and_drops_the_netns_for_host_network() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = Bundle {
            dir: dir.path().to_path_buf(),
            template: Spec::default(),
        };
        let launch = Launch {
            id: "isolab-t".into(),
            args: vec!["cpu".into(), "--iterations".into(), "5".into()],
            host_network: true,
            memory_limit_mib: None,
        };
        bundle.configure(&launch).unwrap();
        let spec = Spec::load(dir.path().join("config.json")).unwrap();
        let args = spec.process().as_ref().unwrap().args().clone().unwrap();
        assert_eq!(args, ["/workload", "cpu", "--iterations", "5"]);
        let namespaces = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(namespaces
            .iter()
            .all(|n| n.typ() != LinuxNamespaceType::Network));
        assert!(namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Pid));
        // No temp file is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
