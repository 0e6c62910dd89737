//! `crun`: the C OCI runtime on the same bundle as isolab's engine. crun refuses hosts
//! with hybrid cgroups (v1 controllers plus cgroup2 beside them), so it is skipped there
//! with that reason rather than failing every sample.

use super::oci::ExternalRuntime;
use super::Env;
use crate::results::CgroupMode;

/// The crun model.
pub fn model(env: &Env) -> ExternalRuntime {
    let mut m = ExternalRuntime::new(
        env,
        "crun",
        "crun (a small OCI runtime in C) on the same bundle",
    );
    if env.cgroups == CgroupMode::Hybrid {
        m.refusal = Some(
            "crun refuses hybrid cgroup hierarchies (v1 controllers with cgroup2 at \
             /sys/fs/cgroup/unified); run on a pure cgroup v2 host \
             (systemd.unified_cgroup_hierarchy=1)"
                .to_owned(),
        );
    }
    m
}
