//! `limits` (CLAIMS C10, container model only): namespaces and cgroups isolate and
//! limit. Facts `pid1` and `own_hostname` come from `workload info` in the container;
//! `oom_killed` is 1 when `workload mem` asking for more than a container memory limit
//! is killed (SIGKILL, or exit status 137 passed on by the runtime) rather than
//! finishing. `pids_limit_held` is 1 when a busybox shell under `engine run
//! --pids-limit 10` that starts 30 background processes sees at most 10 processes in
//! its PID namespace (needs `/bin/busybox`; without it, fact `pids_limit` says why).

use super::sharing::{build_shell_image, output, start, BUSYBOX};
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

    fn applies_to(&self, model: &dyn Model) -> bool {
        model.name() == "container"
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
        match pids(ctx) {
            Ok((held, seen)) => {
                m.metric("pids_limit_held", if held { 1.0 } else { 0.0 }, "bool");
                m.facts.insert(
                    "pids_limit".into(),
                    format!("limit {PIDS_LIMIT}, tried {PIDS_TRIED}, saw {seen} processes"),
                );
            }
            Err(why) => {
                m.facts
                    .insert("pids_limit".into(), format!("not measured: {why}"));
            }
        }
        Ok(m)
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// The pids limit of the test and how many processes the shell tries to start.
pub const PIDS_LIMIT: u32 = 10;
const PIDS_TRIED: u32 = 30;

/// Starts [`PIDS_TRIED`] sleepers under a pids limit; returns whether the count of
/// processes seen stayed within it, and that count.
fn pids(ctx: &Ctx<'_>) -> Result<(bool, u32), String> {
    if !std::path::Path::new(BUSYBOX).is_file() {
        return Err(format!(
            "no static busybox at {BUSYBOX} to start processes with"
        ));
    }
    let dir = ctx.scratch.join(format!("pids-{}", next_id()));
    let outcome = build_shell_image(ctx, &dir).and_then(|()| {
        // The sleepers start in a subshell, whose failing fork ends only it; the count
        // is a glob over /proc, a builtin, since no fork is left for `ls` once the limit
        // is reached.
        let script = format!(
            "(i=0; while [ $i -lt {PIDS_TRIED} ]; do {BUSYBOX} sleep 5 & i=$((i+1)); done) 2>/dev/null; \
             set -- /proc/[0-9]*; echo $#"
        );
        let limit = PIDS_LIMIT.to_string();
        output(ctx, start(ctx, &dir.join("root"), &["--pids-limit", &limit], &script)?)
    });
    let _ = std::fs::remove_dir_all(&dir);
    let seen: u32 = outcome?
        .trim()
        .parse()
        .map_err(|_| "the shell printed no process count".to_owned())?;
    Ok((seen <= PIDS_LIMIT, seen))
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
