//! `startup`: launch `workload ready` and time it: launch to `READY`, launch to exit,
//! teardown, the host CPU spent, peak RSS, and the startup breakdown (phases) the engine
//! or monitor reported.
//!
//! Teardown is the time from `READY` to the launcher being reaped. `ready` exits right
//! after printing `READY`, so this is the workload's exit plus everything the launcher
//! does after it (unmounting, removing cgroups, destroying the VM) until it is gone.

use super::{run_to_exit, Ctx, Measured, Params, Scenario};

/// The startup scenario.
#[derive(Debug)]
pub struct Startup;

impl Scenario for Startup {
    fn name(&self) -> &'static str {
        "startup"
    }

    fn sample(&self, ctx: &Ctx<'_>, _params: &Params) -> Result<Measured, String> {
        let (ready, f) = run_to_exit(ctx, &["ready"], true, false)?;
        let ready = ready.unwrap_or_default();
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
        m.metric("peak_rss_kib", f.reaped.max_rss_kib as f64, "KiB");
        m.absorb(ctx.model.observe(&f.stderr));
        Ok(m)
    }
}
