//! `container`: isolab's own OCI runtime (`engine-oci run --timings`) on the bundle the
//! `engine` builds; its `TIMINGS {json}` stderr line gives the startup breakdown.

use std::path::PathBuf;
use std::process::Command;

use super::oci::Bundle;
use super::{phases_from_json, tagged_json, Env, Launch, Model, Observed, Placement, Prepared};

/// isolab's container runtime.
#[derive(Debug)]
pub struct Container {
    env: Env,
    bundle: Option<Bundle>,
}

impl Container {
    /// The container model for `env`.
    pub fn new(env: &Env) -> Self {
        Self {
            env: env.clone(),
            bundle: None,
        }
    }

    fn state_root(&self) -> PathBuf {
        self.env.scratch.join("engine-oci-state")
    }
}

impl Model for Container {
    fn name(&self) -> &'static str {
        "container"
    }

    fn description(&self) -> &'static str {
        "isolab's container runtime (engine-oci): namespaces, cgroups, overlay rootfs"
    }

    fn placement(&self) -> Placement {
        Placement::Container
    }

    fn prepare(&mut self) -> Result<Prepared, String> {
        for tool in [&self.env.tools.engine, &self.env.tools.engine_oci] {
            if !tool.is_file() {
                return Err(format!(
                    "{} not found (build it with `cargo build -p engine` or pass --engine-dir)",
                    tool.display()
                ));
            }
        }
        let dir = self.env.scratch.join("container-bundle");
        self.bundle = Some(Bundle::build(
            &self.env,
            &self.env.scratch.join("images"),
            &dir,
        )?);
        Ok(Prepared::default())
    }

    fn command(&self, launch: &Launch) -> Result<Command, String> {
        let bundle = self.bundle.as_ref().ok_or("container was not prepared")?;
        bundle.configure(launch)?;
        let mut cmd = Command::new(&self.env.tools.engine_oci);
        cmd.arg("--root").arg(self.state_root());
        cmd.args(["run", "--timings", "--bundle"])
            .arg(&bundle.dir)
            .arg(&launch.id);
        Ok(cmd)
    }

    fn observe(&self, stderr: &str) -> Observed {
        let phases = tagged_json(stderr, "TIMINGS ")
            .map(|t| phases_from_json(&t["phases"]))
            .unwrap_or_default();
        Observed {
            phases,
            ..Observed::default()
        }
    }

    fn cleanup(&self, id: &str) {
        let mut cmd = Command::new(&self.env.tools.engine_oci);
        cmd.arg("--root")
            .arg(self.state_root())
            .args(["delete", "--force", id]);
        let _ = cmd.output();
    }
}
