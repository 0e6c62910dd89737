//! `density`: N idle instances started at once. Measures how long until all printed
//! `READY`, how many failed (the first failure's reason is kept as a fact), and the
//! drop in the host's `MemAvailable` per ready instance. On a shared host other
//! programs move `MemAvailable` too, so the PSS of all instances' processes, per
//! instance, is kept beside it (`pss_per_instance_kib`) as the steadier figure.
//! Run once per model and N (`--density`), without warm-up: it is a capacity test.

use std::time::{Duration, Instant};

use super::memory::{stop, SETTLE};
use super::{launch, Ctx, Measured, Params, Scenario};
use crate::process::procfs;
use crate::results::RunConfig;

/// The density scenario.
#[derive(Debug)]
pub struct Density;

/// Instance counts of `--quick`.
pub const QUICK_COUNTS: &[u32] = &[1, 5];

impl Scenario for Density {
    fn name(&self) -> &'static str {
        "density"
    }

    fn params(&self, config: &RunConfig) -> Vec<Params> {
        config
            .density
            .iter()
            .map(|n| Params::from([("instances".to_owned(), n.to_string())]))
            .collect()
    }

    fn once(&self) -> bool {
        true
    }

    fn sample(&self, ctx: &Ctx<'_>, params: &Params) -> Result<Measured, String> {
        let n: u32 = params
            .get("instances")
            .and_then(|v| v.parse().ok())
            .ok_or("density needs an `instances` parameter")?;
        let before = procfs::mem_available_kib().ok_or("cannot read MemAvailable")?;
        let start = Instant::now();
        let mut running = Vec::new();
        let mut errors = Vec::new();
        let floor = memory_floor_kib();
        for i in 0..n {
            if procfs::mem_available_kib().is_some_and(|kib| kib < floor) {
                errors.push(format!(
                    "stopped after {i} instances: MemAvailable fell below {} MiB (protecting the host)",
                    floor / 1024
                ));
                break;
            }
            match launch(ctx, &["idle"], false) {
                Ok(pair) => running.push(pair),
                Err(e) => errors.push(e),
            }
        }
        let mut ready = 0u32;
        for (instance, _) in &mut running {
            let left = ctx.timeout.saturating_sub(instance.started().elapsed());
            match instance.wait_ready(left.max(Duration::from_millis(1))) {
                Ok(_) => ready += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
        let all_ready = start.elapsed();
        std::thread::sleep(SETTLE);
        let after = procfs::mem_available_kib().unwrap_or(before);
        let pss: u64 = running
            .iter()
            .flat_map(|(i, _)| procfs::descendants(i.pid()))
            .filter_map(procfs::pss_kib)
            .sum();
        for (instance, l) in &mut running {
            stop(instance, ctx.model.placement());
            ctx.model.cleanup(&l.id);
        }
        // Signed: on a busy host MemAvailable also moves for other reasons, and a
        // negative drop shows that noise instead of hiding it as zero.
        let drop_kib = before as f64 - after as f64;
        let failures = n - ready;
        let mut m = figures(n, ready, failures, drop_kib, all_ready);
        m.metric(
            "pss_per_instance_kib",
            pss as f64 / f64::from(ready.max(1)),
            "KiB",
        );
        if let Some(first) = errors.first() {
            m.facts.insert("first_failure".into(), first.clone());
        }
        Ok(m)
    }
}

/// MemAvailable below which no further instance is started: a tenth of the host's
/// memory, at least 512 MiB.
fn memory_floor_kib() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| procfs::field_kib(&m, "MemTotal"))
        .unwrap_or(0);
    (total / 10).max(512 * 1024)
}

fn figures(n: u32, ready: u32, failures: u32, drop_kib: f64, all_ready: Duration) -> Measured {
    let mut m = Measured::default();
    m.metric("instances", f64::from(n), "instances");
    m.metric("ready", f64::from(ready), "instances");
    m.metric("failures", f64::from(failures), "instances");
    m.metric("mem_available_drop_kib", drop_kib, "KiB");
    m.metric(
        "mem_available_drop_per_instance_kib",
        drop_kib / f64::from(ready.max(1)),
        "KiB",
    );
    m.metric("all_ready_ms", all_ready.as_secs_f64() * 1e3, "ms");
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_instance_drop_divides_by_ready_instances() {
        let m = figures(10, 8, 2, 8000.0, Duration::from_millis(5));
        assert_eq!(
            m.metrics["mem_available_drop_per_instance_kib"].value,
            1000.0
        );
        assert_eq!(m.metrics["failures"].value, 2.0);
        let none = figures(1, 0, 1, 0.0, Duration::ZERO);
        assert_eq!(
            none.metrics["mem_available_drop_per_instance_kib"].value,
            0.0
        );
    }
}
