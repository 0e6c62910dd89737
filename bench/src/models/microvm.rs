//! `microvm`: the workload as the only program of a kernel-less KVM guest; isolab's
//! monitor answers its system calls (`microvm exec --stats`). The `STATS {json}` stderr
//! line gives the startup phases, the VM exits and the syscall layer's allow-list.

use std::process::Command;

use super::{
    measure, phases_from_json, tagged_json, Env, Launch, Model, Observed, Placement, Prepared,
};
use crate::results::KvmFlavor;

/// The kernel-less microVM.
#[derive(Debug)]
pub struct Microvm {
    env: Env,
}

impl Microvm {
    /// The microvm model for `env`.
    pub fn new(env: &Env) -> Self {
        Self { env: env.clone() }
    }
}

impl Model for Microvm {
    fn name(&self) -> &'static str {
        "microvm"
    }

    fn description(&self) -> &'static str {
        "kernel-less KVM guest: the workload runs alone in a VM, isolab's monitor answers its syscalls"
    }

    fn placement(&self) -> Placement {
        Placement::Guest
    }

    fn prepare(&mut self) -> Result<Prepared, String> {
        if self.env.kvm == KvmFlavor::None {
            return Err("no usable /dev/kvm (load kvm_intel or kvm_amd, or enable \
                        virtualization in the firmware)"
                .to_owned());
        }
        if !self.env.tools.microvm.is_file() {
            return Err(format!(
                "{} not found (build it with `cargo build -p microvm` or pass --microvm)",
                self.env.tools.microvm.display()
            ));
        }
        Ok(Prepared::default())
    }

    fn command(&self, launch: &Launch) -> Result<Command, String> {
        let mut cmd = Command::new(&self.env.tools.microvm);
        cmd.args(["exec", "--stats", "--mem"])
            .arg(launch.guest_mem_mib().to_string())
            .arg("--")
            .arg(&self.env.tools.workload);
        cmd.args(&launch.args);
        Ok(cmd)
    }

    fn observe(&self, stderr: &str) -> Observed {
        let mut o = tagged_json(stderr, "STATS ")
            .map(|s| observe_stats(&s))
            .unwrap_or_default();
        // The monitor's allow-list: every other call the guest makes answers ENOSYS
        // without reaching the host kernel.
        let reachable = microvm::kernelless::syscalls::stats::IMPLEMENTED.len();
        o.metrics
            .entry("host_syscalls_reachable".into())
            .or_insert_with(|| measure(reachable as f64, "syscalls"));
        o
    }
}

/// Phases, exits and syscall surface from a monitor's `STATS` JSON (shared with the
/// Linux-guest model, whose monitor prints the same line).
pub fn observe_stats(stats: &serde_json::Value) -> Observed {
    let mut o = Observed {
        phases: phases_from_json(&stats["phases"]),
        ..Observed::default()
    };
    if let Some(exits) = stats["exits"].as_object() {
        let total: f64 = exits.values().filter_map(|e| e["count"].as_f64()).sum();
        o.metrics
            .insert("exits_total".into(), measure(total, "exits"));
        let reasons: Vec<&str> = exits.keys().map(String::as_str).collect();
        o.facts.insert("exit_reasons".into(), reasons.join(","));
    }
    if let Some(n) = allow_list_len(&stats["syscalls"]) {
        o.metrics.insert(
            "host_syscalls_reachable".into(),
            measure(n as f64, "syscalls"),
        );
    }
    if let Some(kib) = stats["guest_touched_kib"]
        .as_f64()
        .or(stats["memory"]["touched_kib"].as_f64())
    {
        o.metrics
            .insert("guest_touched_kib".into(), measure(kib, "KiB"));
    }
    if let Some(f) = stats["kvm_flavor"].as_str() {
        o.facts.insert("kvm_flavor".into(), f.to_owned());
    }
    o
}

/// The syscall layer's allow-list size, under whichever key it reports it.
fn allow_list_len(syscalls: &serde_json::Value) -> Option<usize> {
    [
        "allowed",
        "allow_list",
        "host_syscalls",
        "host_syscalls_reachable",
    ]
    .iter()
    .find_map(|k| {
        let v = &syscalls[*k];
        v.as_u64()
            .map(|n| n as usize)
            .or(v.as_array().map(Vec::len))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_line_gives_phases_exits_and_surface() {
        let s: serde_json::Value = serde_json::from_str(
            r#"{"kvm_flavor":"pvm","phases":[{"name":"create_vm","us":10.0},{"name":"ready","us":5}],
                "exits":{"io":{"count":3,"total_us":1.0},"hlt":{"count":2,"total_us":1.0}},
                "syscalls":{"allowed":["read","write","exit"]}}"#,
        )
        .unwrap();
        let o = observe_stats(&s);
        assert_eq!(o.phases.len(), 2);
        assert_eq!(o.metrics["exits_total"].value, 5.0);
        assert_eq!(o.facts["exit_reasons"], "hlt,io");
        assert_eq!(o.metrics["host_syscalls_reachable"].value, 3.0);
        assert_eq!(o.facts["kvm_flavor"], "pvm");
    }
}
