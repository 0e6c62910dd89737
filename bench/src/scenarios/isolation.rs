//! `isolation`: what the workload can see from inside each model (`workload info`:
//! kernel, pid, hostname, CPUs, memory, cgroup, /dev/kvm), plus the host kernel surface
//! the model exposes: for a VM the monitor's exits and its syscall allow-list, for a
//! process or a container without seccomp every host system call.

use super::{results_for, run_to_exit, Ctx, Measured, Params, Scenario};
use crate::models::{host_syscall_count, Placement};

/// The isolation scenario.
#[derive(Debug)]
pub struct Isolation;

/// `info` facts also kept as numeric metrics.
const NUMERIC_FACTS: &[(&str, &str)] =
    &[("pid", "pid"), ("cpus", "cpus"), ("mem_total_kib", "KiB")];

impl Scenario for Isolation {
    fn name(&self) -> &'static str {
        "isolation"
    }

    /// What a model lets the workload see does not change from run to run.
    fn once(&self) -> bool {
        true
    }

    fn sample(&self, ctx: &Ctx<'_>, _params: &Params) -> Result<Measured, String> {
        let finished = run_to_exit(ctx, &["info"], false)?;
        let mut m = from_info(&finished.stdout)?;
        let observed = ctx.model.observe(&finished.stderr);
        m.metrics.extend(observed.metrics);
        m.facts.extend(observed.facts);
        if ctx.model.placement() != Placement::Guest
            && !m.metrics.contains_key("host_syscalls_reachable")
        {
            if let Some(n) = host_syscall_count() {
                m.metric("host_syscalls_reachable", n as f64, "syscalls");
            }
        }
        Ok(m)
    }
}

/// The facts of the `info` RESULT line, with the numeric ones also as metrics.
pub fn from_info(stdout: &str) -> Result<Measured, String> {
    let mut m = Measured::default();
    for line in results_for(stdout, "info")? {
        for (name, value) in &line.values {
            m.facts
                .entry(name.clone())
                .or_insert_with(|| format_number(value.value));
        }
        m.facts.extend(line.facts);
    }
    for (name, unit) in NUMERIC_FACTS {
        if let Some(v) = m
            .facts
            .get(*name)
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            m.metric(name, v, unit);
        }
    }
    Ok(m)
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_facts_and_numbers() {
        let out = r#"RESULT {"test":"info","facts":{"kernel_release":"6.1.0","pid":"1","cpus":"2","mem_total_kib":"1000","hostname":"c1"}}"#;
        let m = from_info(out).unwrap();
        assert_eq!(m.facts["kernel_release"], "6.1.0");
        assert_eq!(m.metrics["pid"].value, 1.0);
        assert_eq!(m.metrics["mem_total_kib"].unit, "KiB");
    }

    #[test]
    fn numeric_values_count_as_facts_too() {
        let out = r#"RESULT {"test":"info","values":{"cpus":{"value":4.0,"unit":"cpus"}}}"#;
        let m = from_info(out).unwrap();
        assert_eq!(m.facts["cpus"], "4");
        assert_eq!(m.metrics["cpus"].value, 4.0);
    }
}
