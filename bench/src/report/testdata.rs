//! Small results built in code for the report's unit tests.

use std::collections::BTreeMap;

use crate::results::{
    CgroupMode, HostFacts, KvmFlavor, Measure, ModelStatus, Results, RunConfig, Sample,
    ScenarioResult,
};

/// A sample with one metric per (name, value).
pub(crate) fn sample(i: u32, metrics: &[(&str, f64)]) -> Sample {
    Sample {
        iteration: i,
        ok: true,
        error: None,
        metrics: metrics
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    Measure {
                        value: *v,
                        unit: "u".into(),
                    },
                )
            })
            .collect(),
        phases: vec![],
        facts: BTreeMap::new(),
    }
}

/// A scenario result whose samples carry `metric` with `values`, without summary.
/// Built through serde, so fields added to the schema later take their defaults.
pub(crate) fn sr(model: &str, scenario: &str, metric: &str, values: &[f64]) -> ScenarioResult {
    let mut s: ScenarioResult = serde_json::from_value(serde_json::json!({
        "model": model,
        "scenario": scenario,
        "samples": [],
    }))
    .expect("a minimal scenario result");
    s.samples = (0u32..)
        .zip(values)
        .map(|(i, v)| sample(i, &[(metric, *v)]))
        .collect();
    s
}

/// A finished run on host `lab1` (PVM, hybrid cgroups) holding `scenarios`; the
/// models list names every model found in them.
pub(crate) fn results_with(scenarios: Vec<ScenarioResult>) -> Results {
    let mut names: Vec<String> = vec!["runc".into()];
    for s in &scenarios {
        if !names.contains(&s.model) {
            names.push(s.model.clone());
        }
    }
    let mut scen: Vec<String> = scenarios.iter().map(|s| s.scenario.clone()).collect();
    scen.dedup();
    Results {
        schema_version: 1,
        host: HostFacts {
            hostname: "lab1".into(),
            cpu_model: "Test CPU".into(),
            cores: 2,
            memory_bytes: 25_769_803_776,
            kernel: "6.1.0-test".into(),
            kvm_flavor: KvmFlavor::Pvm,
            cgroup_mode: CgroupMode::Hybrid,
            mitigations: BTreeMap::new(),
            is_root: true,
            isolab_version: "0.1.0".into(),
            date: "2026-11-24T12:00:00Z".into(),
        },
        config: RunConfig {
            models: names.clone(),
            scenarios: scen,
            iterations: 3,
            warmup: 1,
            seed: 1,
            quick: true,
            density: vec![],
        },
        started_at: "2026-11-24T12:00:00Z".into(),
        finished_at: Some("2026-11-24T12:01:00Z".into()),
        models: names
            .iter()
            .map(|n| ModelStatus {
                name: n.clone(),
                description: format!("{n} model"),
                available: true,
                skip_reason: None,
                emulated: n == "qemu",
                version: None,
            })
            .collect(),
        scenarios,
    }
}
