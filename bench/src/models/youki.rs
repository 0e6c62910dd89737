//! `youki`: the Rust OCI runtime on the same bundle as isolab's engine.

use super::oci::ExternalRuntime;
use super::Env;

/// The youki model.
pub fn model(env: &Env) -> ExternalRuntime {
    ExternalRuntime::new(
        env,
        "youki",
        "youki (an OCI runtime in Rust) on the same bundle",
    )
}
