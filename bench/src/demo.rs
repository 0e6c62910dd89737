//! `bench demo`: for a class. Runs `info`, `ready` and an idle instance in each model
//! and prints what the workload sees (kernel, pid, hostname, memory) and what it costs
//! (startup, host memory) side by side, with one line explaining each difference from
//! the native process.

use std::fmt::Write;
use std::time::Duration;

use crate::models::{Env, Model};
use crate::scenarios::{
    isolation::Isolation, memory::Memory, startup::Startup, Ctx, Measured, Params, Scenario,
};

/// One model's line of the demo table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// The model.
    pub model: String,
    /// Kernel release the workload saw.
    pub kernel: String,
    /// Its pid as it saw it.
    pub pid: String,
    /// The hostname it saw.
    pub hostname: String,
    /// Memory it saw, MiB.
    pub mem_seen_mib: Option<f64>,
    /// Launch to READY, ms.
    pub startup_ms: Option<f64>,
    /// Host memory of one idle instance, KiB.
    pub cost_kib: Option<f64>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// True when the model ran under software emulation.
    pub emulated: bool,
}

/// Measures one model for the demo.
pub fn row(model: &dyn Model, env: &Env, timeout: Duration, emulated: bool) -> Row {
    let ctx = Ctx {
        model,
        timeout,
        quick: true,
        tools: &env.tools,
        scratch: env.scratch.clone(),
    };
    let params = Params::new();
    let mut row = Row {
        model: model.name().to_owned(),
        emulated,
        ..Row::default()
    };
    let metric = |m: &Measured, k: &str| m.metrics.get(k).map(|v| v.value);
    match Isolation.sample(&ctx, &params) {
        Ok(info) => {
            let fact = |k: &str| info.facts.get(k).cloned().unwrap_or_else(|| "?".into());
            row.kernel = fact("kernel_release");
            row.pid = fact("pid");
            row.hostname = fact("hostname");
            row.mem_seen_mib = metric(&info, "mem_total_kib").map(|k| k / 1024.0);
        }
        Err(e) => row.error = Some(e),
    }
    row.startup_ms = Startup
        .sample(&ctx, &params)
        .ok()
        .and_then(|m| metric(&m, "launch_to_ready_ms"));
    row.cost_kib = Memory
        .sample(&ctx, &params)
        .ok()
        .and_then(|m| metric(&m, "instance_kib"));
    row
}

/// What answers the workload's questions about its machine, which decides how each
/// difference from the native process is explained.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// The host kernel, through namespaces.
    Container,
    /// A guest kernel of its own.
    GuestKernel,
    /// isolab's monitor, answering every system call of a kernel-less guest.
    Monitor,
}

/// One line per difference between `row` and the native baseline.
pub fn explain(native: &Row, row: &Row) -> Vec<String> {
    if let Some(e) = &row.error {
        return vec![format!("{}: failed: {e}", row.model)];
    }
    let m = &row.model;
    let kind = if m == "microvm" {
        Kind::Monitor
    } else if row.kernel != native.kernel {
        Kind::GuestKernel
    } else {
        Kind::Container
    };
    let mut lines = vec![match kind {
        Kind::Monitor => format!(
            "{m}: kernel {} is what isolab's monitor answers to uname: there is no guest kernel, \
             the monitor handles every system call",
            row.kernel
        ),
        Kind::GuestKernel => format!(
            "{m}: kernel {} is not the host's {}: it runs its own kernel (a VM)",
            row.kernel, native.kernel
        ),
        Kind::Container => format!(
            "{m}: kernel {} is the host's: it shares the host kernel",
            row.kernel
        ),
    }];
    if row.pid == "1" && native.pid != "1" {
        lines.push(match kind {
            Kind::Container => format!(
                "{m}: the workload is PID 1 of its own PID namespace (the host still sees it \
                 under an ordinary pid)"
            ),
            Kind::GuestKernel => {
                format!("{m}: the workload is PID 1: the guest kernel started it as init")
            }
            Kind::Monitor => format!(
                "{m}: the workload is PID 1: the monitor answers getpid with 1, the guest runs \
                 nothing else"
            ),
        });
    }
    if row.hostname != native.hostname {
        let source = match kind {
            Kind::Container => "its own UTS namespace",
            Kind::GuestKernel => "the guest kernel's, never set by anyone",
            Kind::Monitor => "what the monitor answers to uname",
        };
        lines.push(format!("{m}: hostname `{}` is {source}", row.hostname));
    }
    if let (Some(a), Some(b)) = (row.mem_seen_mib, native.mem_seen_mib) {
        if (a - b).abs() > b * 0.05 {
            lines.push(format!(
                "{m}: sees {a:.0} MiB of memory, not the host's {b:.0} MiB: the VM's own RAM"
            ));
        }
    }
    if let (Some(a), Some(b)) = (row.startup_ms, native.startup_ms) {
        let emulated = if row.emulated {
            " (emulated without hardware virtualization: a hardware VM starts far faster)"
        } else {
            ""
        };
        lines.push(format!(
            "{m}: ready in {a:.1} ms, {:.1}x the native process{emulated}",
            a / b.max(1e-6)
        ));
    }
    lines
}

/// The demo as text: the table, then the explanations.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<18} {:<28} {:>7} {:<22} {:>10} {:>10} {:>12}",
        "model", "kernel", "pid", "hostname", "mem seen", "ready ms", "host memory"
    );
    for r in rows {
        let opt = |v: Option<f64>, unit: &str| v.map_or("-".into(), |v| format!("{v:.1}{unit}"));
        let _ = writeln!(
            out,
            "{:<18} {:<28} {:>7} {:<22} {:>10} {:>10} {:>12}",
            if r.emulated {
                format!("{} (emul.)", r.model)
            } else {
                r.model.clone()
            },
            if r.error.is_some() {
                "(failed, see below)"
            } else {
                &r.kernel
            },
            r.pid,
            r.hostname,
            opt(r.mem_seen_mib, "M"),
            opt(r.startup_ms, ""),
            opt(r.cost_kib.map(|k| k / 1024.0), " MiB")
        );
    }
    if let Some(native) = rows.iter().find(|r| r.model == "native") {
        let _ = writeln!(out);
        for r in rows.iter().filter(|r| r.model != "native") {
            for line in explain(native, r) {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    // Failures explain() did not already report: the baseline's, or all without one.
    let has_native = rows.iter().any(|r| r.model == "native");
    let unexplained = |r: &&Row| r.error.is_some() && (!has_native || r.model == "native");
    for r in rows.iter().filter(unexplained) {
        let _ = writeln!(
            out,
            "{}: failed: {}",
            r.model,
            r.error.as_deref().unwrap_or_default()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, kernel: &str, pid: &str, mem: f64, ms: f64) -> Row {
        Row {
            model: model.into(),
            kernel: kernel.into(),
            pid: pid.into(),
            hostname: if model == "native" {
                "host".into()
            } else {
                model.into()
            },
            mem_seen_mib: Some(mem),
            startup_ms: Some(ms),
            cost_kib: Some(1024.0),
            error: None,
            emulated: false,
        }
    }

    #[test]
    fn vm_differences_are_explained() {
        let n = row("native", "6.1.0", "4242", 24000.0, 1.0);
        let mut vm = row("qemu", "6.1.0-guest", "1", 256.0, 500.0);
        vm.emulated = true;
        let text = explain(&n, &vm).join("\n");
        assert!(text.contains("runs its own kernel"), "{text}");
        assert!(text.contains("started it as init"), "{text}");
        assert!(text.contains("256 MiB"), "{text}");
        assert!(
            text.contains("500.0x") && text.contains("emulated"),
            "{text}"
        );
        vm.error = Some("boom".into());
        assert_eq!(explain(&n, &vm), ["qemu: failed: boom"]);
    }

    #[test]
    fn the_kernel_less_guest_is_not_said_to_run_a_kernel() {
        let n = row("native", "6.1.0", "4242", 24000.0, 1.0);
        let vm = row("microvm", "6.1.0-isolab-kernelless", "1", 256.0, 5.0);
        let text = explain(&n, &vm).join("\n");
        assert!(
            text.contains("no guest kernel") && !text.contains("runs its own kernel"),
            "{text}"
        );
        assert!(text.contains("monitor answers getpid"), "{text}");
        assert!(!text.contains("namespace"), "no namespaces in a VM: {text}");
    }

    #[test]
    fn container_shares_the_kernel() {
        let n = row("native", "6.1.0", "4242", 24000.0, 1.0);
        let c = row("runc", "6.1.0", "1", 24000.0, 20.0);
        let text = explain(&n, &c).join("\n");
        assert!(text.contains("shares the host kernel"), "{text}");
        assert!(text.contains("PID 1 of its own PID namespace"), "{text}");
        assert!(!text.contains("not the host's 24000"), "{text}");
        assert!(render(&[n, c]).contains("runc"));
    }
}
