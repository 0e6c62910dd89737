//! `memory`: the host memory one idle instance costs. The instance runs `workload idle`;
//! after `READY` every host process of the instance (the launcher and all below it) is
//! found in `/proc`, and their PSS summed.
//!
//! `instance_kib`, the figure the report uses, is:
//! - native: the PSS sum;
//! - containers: the PSS sum plus the kernel memory charged to the container's memory
//!   cgroup (slab, page tables, stacks: memory no process's PSS includes);
//! - microVMs: the PSS sum alone, because guest memory is an anonymous mapping of the
//!   monitor, so the guest pages it touched are already in the monitor's PSS
//!   (`guest_touched_kib` is kept beside it when the monitor reports it).

use std::time::Duration;

use nix::sys::signal::Signal;

use super::{launch, Ctx, Measured, Params, Scenario};
use crate::models::Placement;
use crate::process::{procfs, Instance};

/// The memory scenario.
#[derive(Debug)]
pub struct Memory;

/// How long to let an instance settle after `READY` before reading its memory, so
/// lazy setup right after the line does not land on either side of the reading.
pub const SETTLE: Duration = Duration::from_millis(100);

impl Scenario for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn sample(&self, ctx: &Ctx<'_>, _params: &Params) -> Result<Measured, String> {
        let (mut instance, l) = launch(ctx, &["idle"], false)?;
        let measured = instance
            .wait_ready(ctx.timeout)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                std::thread::sleep(SETTLE);
                measure_instance(ctx, instance.pid())
            });
        let stderr = stop(&mut instance, ctx.model.placement());
        ctx.model.cleanup(&l.id);
        let mut m = measured?;
        let observed = ctx.model.observe(&stderr);
        if let Some(touched) = observed.metrics.get("guest_touched_kib") {
            m.metrics
                .insert("guest_touched_kib".into(), touched.clone());
        }
        Ok(m)
    }
}

/// PSS of the instance's processes, its cgroup memory, and the combined figure.
pub fn measure_instance(ctx: &Ctx<'_>, pid: i32) -> Result<Measured, String> {
    let pids = procfs::descendants(pid);
    let pss: u64 = pids.iter().filter_map(|p| procfs::pss_kib(*p)).sum();
    if pss == 0 {
        return Err(format!(
            "could not read the PSS of pid {pid} (are we root?)"
        ));
    }
    let mut m = Measured::default();
    m.metric("pss_kib", pss as f64, "KiB");
    m.metric("processes", pids.len() as f64, "processes");
    let mut instance = pss;
    if ctx.model.placement() == Placement::Container {
        let workload = pids
            .iter()
            .rev()
            .find(|p| procfs::comm(**p).as_deref() == Some("workload"));
        if let Some(cg) = workload.and_then(|p| procfs::cgroup_memory(*p)) {
            m.metric("cgroup_kib", cg.usage_kib as f64, "KiB");
            instance += cg.kernel_kib;
        }
    }
    m.metric("instance_kib", instance as f64, "KiB");
    Ok(m)
}

/// Stops an instance and returns its stderr. A monitor gets SIGTERM and a moment to
/// print its `STATS` line; everything else is killed outright (a container's PID 1
/// ignores SIGTERM, so asking would only wait), and the model's cleanup removes what a
/// killed runtime left.
pub fn stop(instance: &mut Instance, placement: Placement) -> String {
    let grace = if placement == Placement::Guest {
        instance.signal(Signal::SIGTERM);
        Duration::from_secs(2)
    } else {
        instance.kill();
        Duration::from_secs(5)
    };
    let deadline = instance.started().elapsed() + grace;
    instance
        .wait_exit(deadline)
        .map(|f| f.stderr)
        .unwrap_or_default()
}
