//! The Linux guest as a user drives it: `microvm initramfs` builds an archive the
//! kernel accepts (proved by booting it under QEMU's microvm machine), and
//! `microvm run` refuses bad input with a clear error and leaves nothing behind.

mod common;

use common::microvm;

use std::path::{Path, PathBuf};
use std::process::Command;

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

/// The host kernel the tests boot (Debian's cloud kernel, a bzImage).
fn host_kernel() -> Option<PathBuf> {
    microvm::linux::run::default_kernel()
}

/// The workload, built by cargo: `cargo test -p microvm` alone does not build it.
fn workload_bin() -> PathBuf {
    common::workload()
}

fn build_initramfs(dir: &Path) -> PathBuf {
    let out = dir.join("initrd.cpio");
    microvm()
        .args(["initramfs", "--init"])
        .arg(workload_bin())
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    out
}

fn is_pvm() -> bool {
    microvm::kvm_flavor::detect() == microvm::kvm_flavor::KvmFlavor::Pvm
}

#[test]
fn initramfs_lists_init_console_and_added_files_with_cpio() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("data.txt");
    std::fs::write(&extra, "hello").unwrap();
    let out = dir.path().join("initrd.cpio");
    microvm()
        .args(["initramfs", "--init"])
        .arg(workload_bin())
        .arg("--add")
        .arg(format!("{}:/etc/isolab/data.txt", extra.display()))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let Ok(listing) = Command::new("cpio")
        .arg("-it")
        .stdin(std::fs::File::open(&out).unwrap())
        .output()
    else {
        println!("skipped the cpio cross-check: cpio is not installed (the writer is also checked by a unit-test reader)");
        return;
    };
    let names = String::from_utf8_lossy(&listing.stdout);
    for name in [
        "init",
        "dev/console",
        "etc",
        "etc/isolab",
        "etc/isolab/data.txt",
    ] {
        assert!(
            names.lines().any(|l| l == name),
            "{name} missing from {names}"
        );
    }
}

#[test]
fn initramfs_bad_add_and_missing_init_are_clear_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("initrd.cpio");
    microvm()
        .args(["initramfs", "--init"])
        .arg(workload_bin())
        .args(["--add", "nocolon", "-o"])
        .arg(&out)
        .assert()
        .failure()
        .stderr(contains("SRC:DST"));
    microvm()
        .args(["initramfs", "--init", "/nonexistent/init", "-o"])
        .arg(&out)
        .assert()
        .failure()
        .stderr(contains("/nonexistent/init"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
}

/// The archive boots a real kernel: QEMU (TCG, so it runs on any host) with the host's
/// kernel runs the workload as /init, it prints RESULT and powers the machine off.
/// QEMU's `microvm` machine under TCG has no PIT to calibrate the TSC against, and the
/// kernel stalls early in boot unless told the TSC rate (`tsc_early_khz`); any rate
/// will do, since nothing here is timed.
#[test]
fn initramfs_boots_debian_kernel_under_qemu_and_workload_reports_result() {
    let Some(kernel) = host_kernel() else {
        println!("skipped: no /boot/vmlinuz-* on this host");
        return;
    };
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: qemu-system-x86_64 is not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let initrd = build_initramfs(dir.path());
    let output = Command::new("timeout")
        .args([
            "600",
            "qemu-system-x86_64",
            "-M",
            "microvm",
            "-accel",
            "tcg",
            "-m",
            "256",
            "-nographic",
            "-no-reboot",
            "-kernel",
        ])
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args([
            "-append",
            "tsc_early_khz=2000000 tsc=reliable console=ttyS0 reboot=k panic=-1 quiet -- info",
        ])
        .output()
        .unwrap();
    assert_ne!(
        output.status.code(),
        Some(124),
        "the workload must power the guest off by itself"
    );
    let console = String::from_utf8_lossy(&output.stdout);
    // Firmware and kernel output may share the line before the guest's first output.
    let result = console
        .lines()
        .find_map(|l| l.find("RESULT {").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no RESULT line in:\n{console}"));
    assert!(result.contains("\"test\":\"info\""), "{result}");
    assert!(
        result.contains("\"pid\":\"1\""),
        "the workload ran as PID 1: {result}"
    );
    let release = kernel
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_start_matches("vmlinuz-");
    assert!(
        result.contains(&format!("\"kernel_release\":\"{release}\"")),
        "the workload saw the booted kernel {release}: {result}"
    );
}

#[test]
fn run_on_pvm_without_force_explains_why_it_refuses() {
    if !is_pvm() {
        println!("skipped: this host's KVM is not PVM");
        return;
    }
    microvm()
        .args(["run", "--kernel", "/boot/does-not-matter"])
        .assert()
        .code(125)
        .stderr(contains("PVM").and(contains("--force")));
}

fn run_forced() -> assert_cmd::Command {
    let mut cmd = microvm();
    cmd.args(["run", "--force"]);
    cmd
}

fn kvm_present() -> bool {
    Path::new("/dev/kvm").exists()
}

#[test]
fn run_a_file_that_is_not_a_kernel_is_refused() {
    if !kvm_present() {
        println!("skipped: no /dev/kvm");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("vmlinuz");
    std::fs::write(&fake, "#!/bin/sh\necho not a kernel\n").unwrap();
    run_forced()
        .arg("--kernel")
        .arg(&fake)
        .assert()
        .code(125)
        .stderr(contains("not a Linux kernel"));
}

#[test]
fn run_a_truncated_bzimage_is_refused() {
    let Some(kernel) = host_kernel().filter(|_| kvm_present()) else {
        println!("skipped: needs /dev/kvm and a /boot/vmlinuz-*");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("vmlinuz");
    let bytes = std::fs::read(kernel).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    run_forced()
        .arg("--kernel")
        .arg(&cut)
        .assert()
        .code(125)
        .stderr(contains("truncated"));
}

#[test]
fn run_an_initrd_larger_than_memory_is_refused() {
    let Some(kernel) = host_kernel().filter(|_| kvm_present()) else {
        println!("skipped: needs /dev/kvm and a /boot/vmlinuz-*");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.cpio");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    run_forced()
        .arg("--kernel")
        .arg(&kernel)
        .arg("--initrd")
        .arg(&big)
        .args(["--mem", "32"])
        .assert()
        .code(125)
        .stderr(contains("initrd").and(contains("--mem")));
}

/// On a PVM host the stock kernel's decompressor runs instruction-emulated: the test
/// asserts the monitor boots it far enough to program the serial port and print its
/// first console line (with `nokaslr`, the decompressor says so on the early console),
/// then ends the VM cleanly at --timeout with status 124 and STATS.
#[test]
fn run_forced_boot_reaches_the_kernels_serial_console_and_times_out_cleanly() {
    let Some(kernel) = host_kernel().filter(|_| kvm_present()) else {
        println!("skipped: needs /dev/kvm and a /boot/vmlinuz-*");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let initrd = build_initramfs(dir.path());
    let output = run_forced()
        .arg("--kernel")
        .arg(&kernel)
        .arg("--initrd")
        .arg(&initrd)
        .args([
            "--timeout",
            "20",
            "--stats",
            "--cmdline",
            "console=ttyS0 earlyprintk=ttyS0 nokaslr reboot=k panic=-1",
            "--",
            "info",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let console = String::from_utf8_lossy(&output.stdout);
    assert!(
        console.contains("KASLR disabled: 'nokaslr' on cmdline."),
        "the kernel's first console line reached stdout: {console:?} {stderr}"
    );
    let stats = stderr
        .lines()
        .find_map(|l| l.strip_prefix("STATS "))
        .unwrap_or_else(|| panic!("no STATS in {stderr}"));
    let stats: serde_json::Value = serde_json::from_str(stats).unwrap();
    let ports = &stats["ports"];
    assert!(
        ports["0x3fb"]["count"].as_u64().unwrap_or(0) > 0,
        "the kernel programmed the UART: {stats}"
    );
    let phases: Vec<_> = stats["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(phases[0], "monitor_setup");
    match output.status.code() {
        Some(124) => assert!(stderr.contains("--timeout"), "{stderr}"),
        // Hardware KVM: the guest boots to the workload, which exits 0.
        Some(0) => assert!(String::from_utf8_lossy(&output.stdout).contains("RESULT {")),
        other => panic!("unexpected exit {other:?}: {stderr}"),
    }
}

#[test]
fn run_a_missing_disk_image_is_refused_before_the_vm_exists() {
    let Some(kernel) = host_kernel().filter(|_| kvm_present()) else {
        println!("skipped: needs /dev/kvm and a /boot/vmlinuz-*");
        return;
    };
    run_forced()
        .arg("--kernel")
        .arg(&kernel)
        .args(["--disk", "/nonexistent/isolab-disk.img"])
        .assert()
        .code(125)
        .stderr(contains("disk image /nonexistent/isolab-disk.img"));
}

#[test]
fn run_a_missing_tap_device_is_refused_with_how_to_create_one() {
    let Some(kernel) = host_kernel().filter(|_| kvm_present()) else {
        println!("skipped: needs /dev/kvm and a /boot/vmlinuz-*");
        return;
    };
    run_forced()
        .arg("--kernel")
        .arg(&kernel)
        .args(["--net", "isolab-nothere"])
        .assert()
        .code(125)
        .stderr(contains("no tap device \"isolab-nothere\"").and(contains("ip tuntap add")));
    assert!(
        !Path::new("/sys/class/net/isolab-nothere").exists(),
        "no tap was created"
    );
}

/// A tap device this test creates, removed when dropped.
struct TestTap(String);

impl TestTap {
    fn create() -> Option<Self> {
        let name = format!("isolab{}", std::process::id() % 100_000);
        let ok = Command::new("ip")
            .args(["tuntap", "add", &name, "mode", "tap"])
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self(name))
    }
}

impl Drop for TestTap {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

/// With a disk and a tap attached the VM is built and torn down cleanly (here it ends
/// at --timeout on PVM); the user's tap device and disk image are left as they were.
#[test]
fn run_with_disk_and_tap_attaches_both_and_leaves_them_in_place() {
    let Some(kernel) = host_kernel().filter(|_| kvm_present()) else {
        println!("skipped: needs /dev/kvm and a /boot/vmlinuz-*");
        return;
    };
    let Some(tap) = TestTap::create() else {
        println!("skipped: cannot create a tap device (needs root and `ip`)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let initrd = build_initramfs(dir.path());
    let output = run_forced()
        .arg("--kernel")
        .arg(&kernel)
        .arg("--initrd")
        .arg(&initrd)
        .arg("--disk")
        .arg(&disk)
        .args(["--net", &tap.0, "--timeout", "2", "--stats", "--", "ready"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(124) | Some(0)),
        "{stderr}"
    );
    assert!(stderr.contains("STATS {"), "{stderr}");
    assert!(
        Path::new("/sys/class/net").join(&tap.0).exists(),
        "the tap is still there"
    );
    assert_eq!(std::fs::metadata(&disk).unwrap().len(), 1 << 20);
}

/// SIGTERM while the guest runs: the monitor stops the vCPUs, tears the VM down and
/// exits 128+15 with a message, like the kernel-less guest.
#[test]
fn run_sigterm_tears_the_vm_down_and_exits_143() {
    let Some(kernel) = host_kernel().filter(|_| kvm_present()) else {
        println!("skipped: needs /dev/kvm and a /boot/vmlinuz-*");
        return;
    };
    // The guest idles until killed: still booting on PVM, waiting in the workload on
    // hardware KVM.
    let dir = tempfile::tempdir().unwrap();
    let initrd = build_initramfs(dir.path());
    let child = Command::new(env!("CARGO_BIN_EXE_microvm"))
        .args(["run", "--force", "--timeout", "60", "--kernel"])
        .arg(&kernel)
        .arg("--initrd")
        .arg(&initrd)
        .args(["--", "idle"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("signal 15"), "{stderr}");
}

/// Four vCPUs, three of them parked waiting for the kernel's startup IPI: --timeout
/// still stops every one and the monitor exits (a lost kick would hang here).
#[test]
fn run_with_four_vcpus_stops_them_all_at_timeout() {
    let Some(kernel) = host_kernel().filter(|_| kvm_present()) else {
        println!("skipped: needs /dev/kvm and a /boot/vmlinuz-*");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let initrd = build_initramfs(dir.path());
    let output = run_forced()
        .arg("--kernel")
        .arg(&kernel)
        .arg("--initrd")
        .arg(&initrd)
        .args(["--vcpus", "4", "--timeout", "2", "--stats", "--", "ready"])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(124) => assert!(stderr.contains("STATS {"), "{stderr}"),
        Some(0) => assert!(String::from_utf8_lossy(&output.stdout).contains("READY")), // hardware KVM
        other => panic!("unexpected exit {other:?}: {stderr}"),
    }
}
