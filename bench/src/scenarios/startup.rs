//! `startup`: launch `workload ready` and time it: launch to `READY`, launch to exit,
//! teardown, the host CPU spent, peak RSS, and the startup breakdown (phases) the engine
//! or monitor reported.
//!
//! Teardown is the time from `READY` to the launcher being reaped. `ready` exits right
//! after printing `READY`, so this is the workload's exit plus everything the launcher
//! does after it (unmounting, removing cgroups, destroying the VM) until it is gone.
//!
//! Peak RSS is the sum of `VmHWM` over the instance's host processes, read when
//! `READY` arrives (processes already gone by then are not counted; when none is left,
//! as with a native `ready`, the figure is left out). `ru_maxrss` from `wait4` cannot be used: Linux carries the forking
//! parent's high-water mark across `exec`, so every child would report the harness's
//! own size.

use super::{run_to_exit_with, Ctx, Measured, Params, Scenario};
use crate::process::procfs;

/// The startup scenario.
#[derive(Debug)]
pub struct Startup;

impl Scenario for Startup {
    fn name(&self) -> &'static str {
        "startup"
    }

    fn sample(&self, ctx: &Ctx<'_>, _params: &Params) -> Result<Measured, String> {
        let mut peak_kib = 0;
        let (ready, f) = run_to_exit_with(ctx, &["ready"], false, |pid| {
            peak_kib = peak_rss_kib(pid);
        })?;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        let mut m = Measured::default();
        m.metric("launch_to_ready_ms", ms(ready), "ms");
        m.metric("launch_to_exit_ms", ms(f.launch_to_exit), "ms");
        m.metric(
            "teardown_ms",
            ms(f.launch_to_exit.saturating_sub(ready)),
            "ms",
        );
        m.metric("host_cpu_ms", f.reaped.cpu_ms, "ms");
        // A process that already ended has no VmHWM: a native `ready` is usually gone
        // by the time READY is read, and is then left unmeasured rather than zero.
        if peak_kib > 0 {
            m.metric("peak_rss_kib", peak_kib as f64, "KiB");
        }
        m.absorb_phases(ctx.model.observe(&f.stderr));
        Ok(m)
    }
}

/// Sum of the peak RSS of `pid` and every process below it, KiB.
pub fn peak_rss_kib(pid: i32) -> u64 {
    procfs::descendants(pid)
        .iter()
        .filter_map(|p| procfs::peak_rss_kib(*p))
        .sum()
}
