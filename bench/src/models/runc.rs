//! `runc`: the reference OCI runtime on the same bundle as isolab's engine.

use super::oci::ExternalRuntime;
use super::Env;

/// The runc model.
pub fn model(env: &Env) -> ExternalRuntime {
    ExternalRuntime::new(
        env,
        "runc",
        "runc (the reference OCI runtime, Go) on the same bundle",
    )
}
