//! `limits` (CLAIMS C10, container model only): namespaces and cgroups isolate and
//! limit. Facts `pid1` and `own_hostname` come from `workload info` in the container;
//! `oom_killed` is 1 when `workload mem` asking for more than a container memory limit
//! is killed (SIGKILL, or exit status 137 passed on by the runtime) rather than
//! finishing. The pids limit is not measured: the workload has no subcommand that
//! starts processes (fact `pids_limit` says so).

use super::{
    isolation::from_info, launch_as, next_id, run_to_exit, Ctx, Measured, Params, Scenario,
};
use crate::models::{Launch, Model};

/// The limits scenario.
#[derive(Debug)]
pub struct Limits;

/// The memory limit of the OOM test, MiB.
pub const LIMIT_MIB: u64 = 32;
/// What the workload then asks for, MiB.
pub const ASK_MIB: u64 = 128;

impl Scenario for Limits {
    fn name(&self) -> &'static str {
        "limits"
    }

    fn once(&self) -> bool {
        true
    }

    fn skip_for(&self, model: &dyn Model) -> Option<String> {
        (model.name() != "container")
            .then(|| "a claim about isolab's engine (namespaces, cgroups), measured on the container model".into())
    }

    fn sample(&self, ctx: &Ctx<'_>, _params: &Params) -> Result<Measured, String> {
        let info = from_info(&run_to_exit(ctx, &["info"], false)?.stdout)?;
        let host = crate::host::gather_in(std::path::Path::new("/")).hostname;
        let mut m = Measured::default();
        let fact = |k: &str| info.facts.get(k).cloned().unwrap_or_default();
        m.facts.insert("pid1".into(), yes_no(fact("pid") == "1"));
        m.facts
            .insert("own_hostname".into(), yes_no(fact("hostname") != host));
        let (killed, status) = oom(ctx)?;
        m.metric("oom_killed", if killed { 1.0 } else { 0.0 }, "bool");
        m.facts.insert("oom_status".into(), status);
        m.facts.insert(
            "memory_limit".into(),
            format!("{LIMIT_MIB} MiB, workload asked for {ASK_MIB} MiB"),
        );
        m.facts.insert(
            "pids_limit".into(),
            "not measured: the workload has no subcommand that starts processes".into(),
        );
        Ok(m)
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// Runs `mem` past the limit; returns whether it was killed, and how it ended.
fn oom(ctx: &Ctx<'_>) -> Result<(bool, String), String> {
    let launch = Launch {
        id: next_id(),
        args: ["mem", "--size-mib", &ASK_MIB.to_string()]
            .map(str::to_owned)
            .to_vec(),
        host_network: false,
        memory_limit_mib: Some(LIMIT_MIB),
    };
    let (mut instance, launch) = launch_as(ctx, launch)?;
    let outcome = instance.wait_exit(ctx.timeout);
    ctx.model.cleanup(&launch.id);
    let finished = outcome.map_err(|e| e.to_string())?;
    let r = finished.reaped;
    let killed = r.signal == Some(9) || r.code == Some(137);
    Ok((killed, finished.status_text()))
}
