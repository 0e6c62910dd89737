//! The Linux guest on real KVM, on any host: QEMU (TCG) emulates an AMD CPU with AMD-V,
//! the host's kernel boots in it as an outer guest, loads `kvm-amd`, and runs
//! `microvm run` there, which boots the same kernel as its own guest with the workload
//! as `/init`. So the whole path that needs hardware virtualization (irqchip, PIT, MP
//! table, boot protocol, serial interrupt, ready and exit-status ports) runs on KVM
//! with the `svm` flavor even where the host has only PVM or no KVM at all. Everything
//! is emulated, so it is slow (a minute or two) and nothing here is timed.

mod common;

use common::microvm;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The modules the outer guest loads, in order, relative to `/lib/modules/RELEASE/kernel`.
const KVM_MODULES: &[&str] = &[
    "virt/lib/irqbypass.ko",
    "arch/x86/kvm/kvm.ko",
    "arch/x86/kvm/kvm-amd.ko",
];
/// A static busybox gives the outer guest its shell.
const BUSYBOX: &str = "/bin/busybox";

/// What the outer guest needs from the host, or why this host cannot run the test.
struct Parts {
    kernel: PathBuf,
    release: String,
    modules: Vec<PathBuf>,
}

fn parts() -> Result<Parts, String> {
    let kernel = microvm::linux::run::default_kernel().ok_or("no /boot/vmlinuz-* on this host")?;
    let release = kernel
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .ok_or("the kernel is not named vmlinuz-RELEASE")?
        .to_owned();
    let dir = Path::new("/lib/modules").join(&release).join("kernel");
    let modules: Vec<PathBuf> = KVM_MODULES.iter().map(|m| dir.join(m)).collect();
    if let Some(missing) = modules.iter().find(|m| !m.is_file()) {
        return Err(format!(
            "{} is missing (an uncompressed kvm-amd module for {release} is needed)",
            missing.display()
        ));
    }
    if !Path::new(BUSYBOX).is_file() {
        return Err(format!(
            "{BUSYBOX} is missing (apt-get install busybox-static)"
        ));
    }
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("qemu-system-x86_64 is not installed (.ci/run installs it)".into());
    }
    Ok(Parts {
        kernel,
        release,
        modules,
    })
}

/// The outer guest's `/init`: load KVM, run two inner guests, report their exit
/// statuses on the console, power off.
const OUTER_INIT: &str = r#"#!/bin/busybox sh
bb=/bin/busybox
$bb mkdir -p /proc /sys /dev
$bb mount -t proc proc /proc
$bb mount -t sysfs sys /sys
$bb mount -t devtmpfs dev /dev
for m in /modules/*.ko; do $bb insmod "$m" || echo "outer: insmod $m failed"; done
run() { /microvm run --kernel /vmlinuz --initrd /inner.cpio --timeout 600 "$@"; }
run --vcpus 2 --stats -- info
echo "outer: status info $?"
run -- no-such-subcommand
echo "outer: status bad-args $?"
$bb poweroff -f
"#;

#[test]
fn linux_guest_boots_on_nested_amd_v_runs_the_workload_and_returns_its_status() {
    let parts = match parts() {
        Ok(parts) => parts,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("inner.cpio");
    microvm()
        .args(["initramfs", "--init"])
        .arg(common::workload())
        .arg("-o")
        .arg(&inner)
        .assert()
        .success();
    let init = dir.path().join("init");
    std::fs::write(&init, OUTER_INIT).unwrap();
    let outer = dir.path().join("outer.cpio");
    let add = |src: &Path, dst: &str| format!("{}:{dst}", src.display());
    let mut build = microvm();
    build
        .args(["initramfs", "--init"])
        .arg(&init)
        .arg("-o")
        .arg(&outer)
        .arg("--add")
        .arg(add(Path::new(BUSYBOX), BUSYBOX))
        .arg("--add")
        .arg(add(&assert_cmd::cargo::cargo_bin("microvm"), "/microvm"))
        .arg("--add")
        .arg(add(&parts.kernel, "/vmlinuz"))
        .arg("--add")
        .arg(add(&inner, "/inner.cpio"));
    for (i, module) in parts.modules.iter().enumerate() {
        // Numbered so the init's glob loads them in dependency order.
        let name = module.file_name().unwrap().to_str().unwrap();
        build
            .arg("--add")
            .arg(add(module, &format!("/modules/{i}-{name}")));
    }
    build.assert().success();

    let output = Command::new("timeout")
        .args(["1200", "qemu-system-x86_64", "-M", "q35", "-accel", "tcg"])
        // An AMD CPU model with AMD-V (SVM), which TCG emulates.
        .args(["-cpu", "EPYC,+svm", "-m", "1024", "-smp", "1"])
        .args(["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"])
        .args(["-serial", "stdio", "-kernel"])
        .arg(&parts.kernel)
        .arg("-initrd")
        .arg(&outer)
        .args([
            "-append",
            // Under TCG the kernel cannot calibrate the TSC against the PIT: give it.
            "console=ttyS0 tsc_early_khz=2000000 tsc=reliable panic=-1 quiet",
        ])
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&output.stdout);
    assert_ne!(
        output.status.code(),
        Some(124),
        "the outer guest did not power off in time:\n{console}"
    );
    assert!(
        !console.contains("insmod"),
        "KVM did not load in the outer guest:\n{console}"
    );

    // The first inner guest: booted on KVM (svm), saw both vCPUs, ran `info` as /init.
    assert!(
        console.contains("outer: status info 0"),
        "microvm run -- info did not exit 0:\n{console}"
    );
    let json_after = |tag: &str| -> serde_json::Value {
        let line = console
            .lines()
            .find_map(|l| l.find(tag).map(|at| &l[at + tag.len()..]))
            .unwrap_or_else(|| panic!("no {tag} line in:\n{console}"));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {tag}{line}"))
    };
    let result = json_after("RESULT ");
    assert_eq!(result["test"], "info");
    assert_eq!(result["facts"]["pid"], "1", "the workload was PID 1");
    assert_eq!(
        result["facts"]["cpus"], "2",
        "the MP table showed both vCPUs"
    );
    assert_eq!(result["facts"]["kernel_release"], parts.release.as_str());
    let stats = json_after("STATS ");
    assert_eq!(stats["kvm_flavor"], "svm");
    let phases: Vec<&str> = stats["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["monitor_setup", "kernel_boot", "init"]);

    // The second: the workload failed as /init, and its status is microvm's.
    assert!(
        console.contains("unknown subcommand `no-such-subcommand`"),
        "the workload's own error reached the console:\n{console}"
    );
    assert!(
        console.contains("outer: status bad-args 2"),
        "the workload's exit status 2 did not come back through microvm run:\n{console}"
    );
}
