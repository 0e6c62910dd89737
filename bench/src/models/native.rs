//! `native`: the workload as a plain host process, the baseline every other model is
//! compared with.

use std::process::Command;

use super::{Env, Launch, Model, Placement, Prepared};

/// The workload run directly on the host.
#[derive(Debug)]
pub struct Native {
    workload: std::path::PathBuf,
}

impl Native {
    /// The native model for `env`.
    pub fn new(env: &Env) -> Self {
        Self {
            workload: env.tools.workload.clone(),
        }
    }
}

impl Model for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn description(&self) -> &'static str {
        "a plain host process: no isolation, the baseline"
    }

    fn placement(&self) -> Placement {
        Placement::Process
    }

    fn prepare(&mut self) -> Result<Prepared, String> {
        if !self.workload.is_file() {
            return Err(format!(
                "workload binary not found at {} (build it with `cargo build -p workload` \
                 or pass --workload PATH)",
                self.workload.display()
            ));
        }
        Ok(Prepared::default())
    }

    fn command(&self, launch: &Launch) -> Result<Command, String> {
        let mut cmd = Command::new(&self.workload);
        cmd.args(&launch.args);
        Ok(cmd)
    }
}
