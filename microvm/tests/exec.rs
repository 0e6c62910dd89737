//! `microvm exec` end to end (needs /dev/kvm): static binaries run in the kernel-less
//! guest, their exit codes pass through, faults and timeouts are reported, and bad
//! binaries are refused with a clear error and nothing left behind.

mod common;

use common::{code, elf, exec, kvm_available, leftovers, phdr, program};
use predicates::prelude::*;

const EXEC: u16 = 2;
const DYN: u16 = 3;

fn setup(test: &str) -> Option<(tempfile::TempDir, tempfile::TempDir)> {
    kvm_available(test).then(|| (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()))
}

#[test]
fn kvm_guest_exit_code_passes_through() {
    let Some((bins, tmp)) = setup("kvm_guest_exit_code_passes_through") else {
        return;
    };
    let prog = program(bins.path(), "exit42", &elf(EXEC, &code::exit(42), &[]));
    exec(tmp.path()).arg(&prog).assert().code(42).stderr("");
    assert!(leftovers(tmp.path()).is_empty(), "temporary rootfs removed");
}

#[test]
fn kvm_static_pie_writes_to_stdout() {
    let Some((bins, tmp)) = setup("kvm_static_pie_writes_to_stdout") else {
        return;
    };
    // Static-pie is loaded at 4 MiB; the code follows the headers (64 + 56 bytes).
    let hello = code::hello(b"hello from the guest\n", 0x40_0000 + 120);
    let prog = program(bins.path(), "hello", &elf(DYN, &hello, &[]));
    exec(tmp.path())
        .arg(&prog)
        .assert()
        .success()
        .stdout("hello from the guest\n");
}

#[test]
fn kvm_busybox_echo_runs_in_the_guest() {
    let Some((_bins, tmp)) = setup("kvm_busybox_echo_runs_in_the_guest") else {
        return;
    };
    if !std::path::Path::new("/bin/busybox").exists() {
        eprintln!("skipping: /bin/busybox (busybox-static) is not installed");
        return;
    }
    exec(tmp.path())
        .args(["--", "/bin/busybox", "echo", "hi", "-n", "there"])
        .assert()
        .success()
        .stdout("hi -n there\n");
}

#[test]
fn kvm_workload_ready_prints_ready() {
    let Some((_bins, tmp)) = setup("kvm_workload_ready_prints_ready") else {
        return;
    };
    let workload = common::workload();
    let out = exec(tmp.path())
        .arg("--stats")
        .arg(&workload)
        .arg("ready")
        .assert()
        .success();
    let out = out.get_output();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "READY\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stats = stderr
        .lines()
        .find_map(|l| l.strip_prefix("STATS "))
        .expect("a STATS line");
    let json: serde_json::Value = serde_json::from_str(stats).unwrap();
    let names: Vec<&str> = json["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "create_vm",
            "memory",
            "vcpu_setup",
            "load",
            "first_instruction",
            "ready",
            "exit"
        ]
    );
    assert!(
        json["ports"]["0xe0"]["count"].as_u64().unwrap() > 5,
        "one exit per syscall"
    );
    assert!(json["syscalls"].is_object());
    let guest = json["memory"]["touched_kib"].as_u64().unwrap();
    let peak = json["memory"]["peak_rss_kib"].as_u64().unwrap();
    assert!(
        guest > 0 && peak > guest,
        "guest {guest} KiB of peak {peak} KiB"
    );
    assert!(["vmx", "svm", "pvm"].contains(&json["kvm_flavor"].as_str().unwrap()));
}

/// The debug `workload` next to the test binaries, if built.
fn workload() -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-gnu/debug/workload");
    let found = path.exists();
    if !found {
        eprintln!("skipping: build the workload first (cargo build -p workload)");
    }
    found.then_some(path)
}

/// The STATS line of a run's stderr, parsed.
fn stats_of(stderr: &[u8]) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(stderr);
    let line = stderr.lines().find_map(|l| l.strip_prefix("STATS "));
    serde_json::from_str(line.expect("a STATS line")).unwrap()
}

#[test]
fn kvm_syscalls_work_with_sync_registers_and_with_register_ioctls() {
    let Some((_bins, tmp)) =
        setup("kvm_syscalls_work_with_sync_registers_and_with_register_ioctls")
    else {
        return;
    };
    let Some(workload) = workload() else { return };
    let kvm = kvm_ioctls::Kvm::new().unwrap();
    let supported = microvm::vstate::regs::sync_regs_supported(&kvm);
    for (flag, sync) in [(None, supported), (Some("--no-sync-regs"), false)] {
        let mut cmd = exec(tmp.path());
        cmd.arg("--stats").args(flag);
        let out = cmd
            .arg(&workload)
            .args(["syscall", "--iterations", "500"])
            .assert()
            .success();
        let out = out.get_output();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with("RESULT {\"test\":\"syscall\""),
            "{flag:?}: {stdout}"
        );
        let stats = stats_of(&out.stderr);
        assert_eq!(stats["sync_regs"], sync, "{flag:?}");
        // Each getpid returned to the right place with the right value, or the
        // workload would have crashed or looped.
        assert_eq!(stats["syscalls"]["calls"]["getpid"], 501, "{flag:?}");
    }
}

#[test]
fn kvm_a_sigkilled_monitors_rootfs_is_removed_by_the_next_one() {
    use std::io::{BufRead, BufReader};
    let Some((bins, tmp)) = setup("kvm_a_sigkilled_monitors_rootfs_is_removed_by_the_next_one")
    else {
        return;
    };
    let prog = program(
        bins.path(),
        "spin",
        &elf(EXEC, &code::ready_then_spin(0x40_0078), &[]),
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("microvm"))
        .env("TMPDIR", tmp.path())
        .arg("exec")
        .arg(&prog)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "READY\n");
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    let left = leftovers(tmp.path());
    assert_eq!(left.len(), 1, "SIGKILL cannot be caught: {left:?}");
    assert!(left[0].starts_with(&format!("isolab-rootfs-{}-", child.id())));
    let exit0 = program(bins.path(), "exit0", &elf(EXEC, &code::exit(0), &[]));
    exec(tmp.path()).arg(&exit0).assert().success();
    assert!(
        leftovers(tmp.path()).is_empty(),
        "the next monitor removed the abandoned rootfs and its own"
    );
}

#[test]
fn kvm_null_dereference_is_reported_as_a_page_fault() {
    let Some((bins, tmp)) = setup("kvm_null_dereference_is_reported_as_a_page_fault") else {
        return;
    };
    let prog = program(bins.path(), "null", &elf(EXEC, code::NULL_READ, &[]));
    exec(tmp.path())
        .arg(&prog)
        .assert()
        .code(128 + 11)
        .stderr(predicate::str::contains(
            "guest exception #PF (page fault, vector 14) at rip 0x400078",
        ))
        .stderr(predicate::str::contains("fault address 0x0"))
        .stderr(predicate::str::contains(
            "user read from a not-present page",
        ));
}

#[test]
fn kvm_invalid_opcode_is_reported() {
    let Some((bins, tmp)) = setup("kvm_invalid_opcode_is_reported") else {
        return;
    };
    let prog = program(bins.path(), "ud2", &elf(EXEC, code::UD2, &[]));
    exec(tmp.path())
        .arg(&prog)
        .assert()
        .code(128 + 4)
        .stderr(predicate::str::contains(
            "#UD (invalid opcode, vector 6) at rip 0x400078",
        ));
}

#[test]
fn kvm_timeout_stops_a_guest_that_never_exits() {
    let Some((bins, tmp)) = setup("kvm_timeout_stops_a_guest_that_never_exits") else {
        return;
    };
    let prog = program(bins.path(), "spin", &elf(EXEC, code::SPIN, &[]));
    common::microvm()
        .env("TMPDIR", tmp.path())
        .args(["exec", "--timeout", "0.3"])
        .arg(&prog)
        .assert()
        .code(124)
        .stderr(predicate::str::contains("longer than --timeout 0.3s"));
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn kvm_sigterm_stops_the_guest_and_cleans_up() {
    use std::io::{BufRead, BufReader};
    let Some((bins, tmp)) = setup("kvm_sigterm_stops_the_guest_and_cleans_up") else {
        return;
    };
    let prog = program(
        bins.path(),
        "spin",
        &elf(EXEC, &code::ready_then_spin(0x40_0078), &[]),
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("microvm"))
        .env("TMPDIR", tmp.path())
        .arg("exec")
        .arg(&prog)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line, "READY\n",
        "the guest runs (and its temporary rootfs exists)"
    );
    assert_eq!(leftovers(tmp.path()).len(), 1);
    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGTERM),
        "exited, not killed"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the monitor got SIGTERM"));
    assert!(leftovers(tmp.path()).is_empty(), "temporary rootfs removed");
}

/// Runs `bytes` as a program and expects a monitor error mentioning `message`.
fn refused(name: &str, bytes: &[u8], message: &str) {
    let Some((bins, tmp)) = setup(name) else {
        return;
    };
    let prog = program(bins.path(), name, bytes);
    exec(tmp.path())
        .arg(&prog)
        .assert()
        .code(125)
        .stdout("")
        .stderr(predicate::str::starts_with("error: loading "))
        .stderr(predicate::str::contains(message));
    assert!(leftovers(tmp.path()).is_empty(), "nothing left behind");
}

#[test]
fn kvm_truncated_elf_is_refused() {
    let whole = elf(EXEC, &code::exit(0), &[]);
    refused("truncated_header", &whole[..40], "truncated ELF");
    refused(
        "truncated_segment",
        &whole[..whole.len() - 4],
        "truncated ELF",
    );
}

#[test]
fn kvm_non_elf_and_foreign_elf_are_refused() {
    refused("script", b"#!/bin/sh\necho hi\n", "not an ELF file");
    let mut arm = elf(EXEC, &code::exit(0), &[]);
    arm[18] = 183; // EM_AARCH64
    refused("arm64", &arm, "not an x86_64 ELF: machine 183");
}

#[test]
fn kvm_dynamically_linked_binary_needs_a_static_one() {
    let interp = phdr(3, 64 + 2 * 56 + 12, 0, 12, 12);
    let mut code = code::exit(0);
    code.extend(b"/lib/ld.so\0\0");
    refused(
        "dynamic",
        &elf(DYN, &code, &[interp]),
        "needs a static binary",
    );
}

#[test]
fn kvm_overlapping_and_oversized_segments_are_refused() {
    let overlap = phdr(1, 0, 0x40_0800, 0, 0x100);
    refused(
        "overlap",
        &elf(EXEC, &code::exit(0), &[overlap]),
        "overlapping segments",
    );
    let huge = phdr(1, 0, 0x100_0000, 0, 1 << 32);
    refused(
        "huge",
        &elf(EXEC, &code::exit(0), &[huge]),
        "a larger --mem may help",
    );
}

#[test]
fn kvm_binary_larger_than_guest_memory_is_refused() {
    let Some((bins, tmp)) = setup("kvm_binary_larger_than_guest_memory_is_refused") else {
        return;
    };
    // 40 MiB of data in a 32 MiB guest.
    let mut code = code::exit(0);
    code.resize(40 << 20, 0);
    let prog = program(bins.path(), "big", &elf(EXEC, &code, &[]));
    common::microvm()
        .env("TMPDIR", tmp.path())
        .args(["exec", "--mem", "32"])
        .arg(&prog)
        .assert()
        .code(125)
        .stderr(predicate::str::contains("does not fit in guest memory"));
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn missing_binary_and_bad_options_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    exec(tmp.path())
        .arg("/nonexistent/isolab-prog")
        .assert()
        .code(125)
        .stderr(predicate::str::contains(
            "error: loading /nonexistent/isolab-prog: opening or reading the file: No such file",
        ));
    common::microvm()
        .args(["exec", "--mem", "7", "/bin/true"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains("--mem 7 MiB"));
    common::microvm()
        .args(["exec", "--rootfs", "/nonexistent/isolab-root", "/bin/true"])
        .assert()
        .code(125)
        .stderr(predicate::str::contains(
            "--rootfs /nonexistent/isolab-root",
        ));
    common::microvm()
        .args(["exec", "--timeout", "0", "/bin/true"])
        .assert()
        .code(2);
}

#[test]
fn help_explains_exec() {
    common::microvm()
        .args(["exec", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("kernel-less"))
        .stdout(predicate::str::contains("--rootfs"))
        .stdout(predicate::str::contains("124"));
}

#[test]
fn kvm_error_cause_is_printed_once() {
    // Regression: the cause was repeated ("...: not an ELF file: not an ELF file").
    let Some((bins, tmp)) = setup("kvm_error_cause_is_printed_once") else {
        return;
    };
    let prog = program(bins.path(), "text", b"plain text, not a program\n");
    exec(tmp.path())
        .arg(&prog)
        .assert()
        .code(125)
        .stderr(format!(
            "error: loading {}: not an ELF file (no \\x7fELF magic)\n",
            prog.display()
        ));
}
