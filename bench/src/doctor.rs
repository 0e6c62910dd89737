//! `bench doctor`: what this host supports for each model, and the fix for each
//! missing piece.

use std::fmt::Write;
use std::path::Path;

use crate::models::{find_in_path, Tools};
use crate::results::{CgroupMode, KvmFlavor};

/// One thing checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// Whether it is there and usable.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it is missing.
    pub fix: Option<String>,
}

fn check(what: &str, ok: bool, detail: impl Into<String>, fix: &str) -> Check {
    Check {
        what: what.to_owned(),
        ok,
        detail: detail.into(),
        fix: (!ok).then(|| fix.to_owned()),
    }
}

/// Every check on this host.
pub fn checks(tools: &Tools) -> Vec<Check> {
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let mut all = vec![
        check(
            "root",
            nix::unistd::geteuid().is_root(),
            "namespaces, cgroups and mounts need root",
            "run bench as root (sudo)",
        ),
        kvm_check(microvm::kvm_flavor::detect()),
        cgroup_check(engine::cgroups::mode::detect()),
        check(
            "overlayfs",
            filesystems.contains("overlay"),
            "container root filesystems",
            "modprobe overlay",
        ),
    ];
    for (name, path) in [
        ("workload", &tools.workload),
        ("engine", &tools.engine),
        ("engine-oci", &tools.engine_oci),
        ("microvm", &tools.microvm),
    ] {
        all.push(file_check(
            name,
            path,
            "cargo build (or pass --workload/--engine/--engine-oci/--microvm)",
        ));
    }
    let kernel = tools.kernel.as_deref();
    all.push(check(
        "guest kernel",
        kernel.is_some_and(Path::is_file),
        kernel.map_or("none in /boot".into(), |k| k.display().to_string()),
        "apt-get install linux-image-amd64, or pass --kernel PATH",
    ));
    for (name, package) in [
        ("runc", "runc"),
        ("crun", "crun"),
        ("youki", "youki (from its releases)"),
        ("qemu-system-x86_64", "qemu-system-x86"),
    ] {
        all.push(path_check(name, &format!("apt-get install {package}")));
    }
    let fc = tools
        .firecracker
        .clone()
        .or_else(|| find_in_path("firecracker"));
    all.push(check(
        "firecracker",
        fc.is_some(),
        fc.map_or("not found".into(), |p| p.display().to_string()),
        "download a firecracker release binary and pass --firecracker PATH",
    ));
    all
}

fn kvm_check(flavor: KvmFlavor) -> Check {
    let detail = match flavor {
        KvmFlavor::Vmx | KvmFlavor::Svm => format!("/dev/kvm, hardware ({flavor}): every microVM model runs"),
        KvmFlavor::Pvm => "/dev/kvm is PVM (software): the kernel-less microvm runs; Linux guests cannot boot, qemu uses TCG".into(),
        KvmFlavor::None => "no usable /dev/kvm: no microVM model runs".into(),
    };
    let mut c = check("/dev/kvm", flavor.is_hardware(), detail, "");
    c.fix = match flavor {
        KvmFlavor::None => {
            Some("enable VT-x/AMD-V in the firmware and modprobe kvm_intel or kvm_amd".into())
        }
        KvmFlavor::Pvm => Some(
            "use a host with VT-x/AMD-V (bare metal or nested virtualization) for Linux guests"
                .into(),
        ),
        _ => None,
    };
    c
}

fn cgroup_check(mode: CgroupMode) -> Check {
    let (ok, detail) = match mode {
        CgroupMode::V2 => (true, "cgroup v2 (unified)".to_owned()),
        CgroupMode::Hybrid => (
            false,
            "hybrid (v1 controllers + cgroup2): isolab and runc work; crun refuses it".to_owned(),
        ),
        CgroupMode::V1 => (
            false,
            "cgroup v1 only: limits work, some runtimes warn".to_owned(),
        ),
        CgroupMode::None => (
            false,
            "no cgroup filesystem: no limits, containers fail".to_owned(),
        ),
    };
    check(
        "cgroups",
        ok,
        detail,
        "boot with systemd.unified_cgroup_hierarchy=1 for pure cgroup v2",
    )
}

fn file_check(name: &str, path: &Path, fix: &str) -> Check {
    check(name, path.is_file(), path.display().to_string(), fix)
}

fn path_check(name: &str, fix: &str) -> Check {
    let found = find_in_path(name);
    check(
        name,
        found.is_some(),
        found.map_or("not in PATH".into(), |p| p.display().to_string()),
        fix,
    )
}

/// The checks as a table with a `fix:` line under each missing piece.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.what.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let mark = if c.ok { "ok  " } else { "MISS" };
        let _ = writeln!(out, "{mark} {:<width$}  {}", c.what, c.detail);
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "     {:<width$}  fix: {fix}", "");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_pieces_come_with_a_fix() {
        let c = file_check(
            "workload",
            Path::new("/nonexistent/isolab-w"),
            "cargo build",
        );
        assert!(!c.ok);
        let text = render(&[c]);
        assert!(
            text.contains("MISS workload") && text.contains("fix: cargo build"),
            "{text}"
        );
    }

    #[test]
    fn pvm_is_explained() {
        let c = kvm_check(KvmFlavor::Pvm);
        assert!(c.detail.contains("PVM") && c.fix.is_some());
        assert!(kvm_check(KvmFlavor::Vmx).fix.is_none());
        assert!(cgroup_check(CgroupMode::Hybrid).detail.contains("crun"));
    }
}
