//! End to end across crates: the `image` claim scenario (CLAIMS C7) drives the real
//! `engine image build` twice with one change, counts the layer the engine reused, and
//! runs two containers from the image with `engine run` (needs root): the first
//! unpacks the layers onto disk, the next reuses them.

#[path = "../bench/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use bench::models::{container::Container, Env, Tools};
use bench::results::{CgroupMode, KvmFlavor};
use bench::scenarios::{image::Image, Ctx, Params, Scenario};

#[test]
fn rebuild_reuses_the_unchanged_layer_and_the_next_container_reuses_the_unpacked_ones_as_root() {
    let scratch = tempfile::tempdir().unwrap();
    let tools = Tools {
        workload: common::workload(),
        engine: common::built("engine", "engine"),
        engine_oci: "/nonexistent".into(),
        microvm: "/nonexistent".into(),
        kernel: None,
        firecracker: None,
    };
    let env = Env {
        tools: tools.clone(),
        scratch: scratch.path().to_path_buf(),
        kvm: KvmFlavor::None,
        cgroups: CgroupMode::V2,
    };
    let model = Container::new(&env);
    let ctx = Ctx {
        model: &model,
        timeout: Duration::from_secs(60),
        quick: true,
        tools: &tools,
        scratch: scratch.path().to_path_buf(),
    };
    let m = Image.sample(&ctx, &Params::new()).unwrap();
    assert_eq!(m.metrics["layers_first_build"].value, 2.0);
    assert_eq!(m.metrics["layers_total"].value, 2.0);
    assert_eq!(m.metrics["layers_reused_on_rebuild"].value, 1.0);
    assert!(m.metrics.contains_key("first_start_ms") && m.metrics.contains_key("next_start_ms"));
    let (first, next) = (
        m.metrics["first_disk_kib"].value,
        m.metrics["next_disk_kib"].value,
    );
    assert!(
        first > next,
        "the first container unpacks layers: {first} KiB vs {next} KiB"
    );
    // Everything the scenario made is gone again.
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
}
