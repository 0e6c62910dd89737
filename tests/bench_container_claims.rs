//! End to end across crates, as root: the container claim scenarios against isolab's
//! real engine. C8: two containers from one image each see only their own write. C10:
//! PID 1, own hostname, a memory limit that OOM-kills, a pids limit that holds. C11: a write in the
//! container layer is gone in the next container, a write in a volume is not.

#[path = "../bench/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use bench::models::{container::Container, Env, Model, Tools};
use bench::scenarios::{limits::Limits, sharing::Sharing, Ctx, Measured, Params, Scenario};

/// Runs `scenario` on a prepared container model, in a scratch dir that must be empty
/// again afterwards.
fn measure(scenario: &dyn Scenario) -> Measured {
    let scratch = tempfile::tempdir().unwrap();
    let tools = Tools {
        workload: common::workload(),
        engine: common::built("engine", "engine"),
        engine_oci: common::built("engine", "engine-oci"),
        microvm: "/nonexistent".into(),
        kernel: None,
        firecracker: None,
    };
    let env = Env {
        tools: tools.clone(),
        scratch: scratch.path().to_path_buf(),
        kvm: microvm::kvm_flavor::detect(),
        cgroups: engine::cgroups::mode::detect(),
    };
    let mut model = Container::new(&env);
    model
        .prepare()
        .expect("the container model prepares as root");
    assert_eq!(scenario.skip_for(&model), None);
    let ctx = Ctx {
        model: &model,
        timeout: Duration::from_secs(60),
        quick: true,
        tools: &tools,
        scratch: scratch.path().join("work"),
    };
    std::fs::create_dir_all(&ctx.scratch).unwrap();
    let m = scenario.sample(&ctx, &Params::new()).unwrap();
    assert_eq!(
        std::fs::read_dir(&ctx.scratch).unwrap().count(),
        0,
        "scratch left behind"
    );
    m
}

#[test]
fn interference_two_containers_from_one_image_see_only_their_own_write_as_root() {
    let m = measure(&Sharing::Interference);
    assert_eq!(m.metrics["isolated"].value, 1.0, "{:?}", m.facts);
}

#[test]
fn volume_write_survives_the_container_and_layer_write_does_not_as_root() {
    let m = measure(&Sharing::Volume);
    assert_eq!(
        m.metrics["layer_write_survives"].value, 0.0,
        "{:?}",
        m.facts
    );
    assert_eq!(
        m.metrics["volume_write_survives"].value, 1.0,
        "{:?}",
        m.facts
    );
}

#[test]
fn limits_pid1_hostname_oom_kill_and_pids_limit_as_root() {
    let m = measure(&Limits);
    assert_eq!(m.facts["pid1"], "yes");
    assert_eq!(m.facts["own_hostname"], "yes");
    assert_eq!(m.metrics["oom_killed"].value, 1.0, "{:?}", m.facts);
    assert_eq!(m.metrics["pids_limit_held"].value, 1.0, "{:?}", m.facts);
}
