//! The workload binary as every model runs it: static, machine-readable, stable.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use workload::result::ResultLine;

const WORKLOAD: &str = env!("CARGO_BIN_EXE_workload");

fn run(args: &[&str]) -> Output {
    Command::new(WORKLOAD)
        .args(args)
        .env("ISOLAB_GUEST_INIT", "0")
        .output()
        .expect("workload runs")
}

fn result_of(args: &[&str]) -> ResultLine {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = ResultLine::parse_output(&stdout);
    assert_eq!(lines.len(), 1, "one RESULT line expected: {stdout}");
    lines.remove(0).expect("RESULT line parses")
}

#[test]
fn binary_is_statically_linked() {
    // A dynamic binary has a PT_INTERP program header naming its loader.
    let elf = std::fs::read(WORKLOAD).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let header = phoff + i * phentsize;
        let kind = u32::from_le_bytes(elf[header..header + 4].try_into().unwrap());
        assert_ne!(kind, PT_INTERP, "workload must not need a dynamic loader");
    }
}

#[test]
fn ready_prints_ready_and_exits_zero() {
    let out = run(&["ready"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "READY\n");
}

#[test]
fn cpu_checksum_is_stable_and_known() {
    let first = result_of(&["cpu", "--iterations", "1000"]);
    let second = result_of(&["cpu", "--iterations", "1000"]);
    let expected = "0ac122af89c4794dcaa21e5ddb490d5e7decc46240c75ad05e77ad1c6d43c161";
    assert_eq!(first.checksum.as_deref(), Some(expected));
    assert_eq!(second.checksum, first.checksum);
    assert!(first.values["ops_per_s"].value > 0.0);
}

#[test]
fn info_agrees_with_the_host() {
    let child = Command::new(WORKLOAD)
        .arg("info")
        .env("ISOLAB_GUEST_INIT", "0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let line = ResultLine::parse_output(&String::from_utf8(out.stdout).unwrap())
        .remove(0)
        .unwrap();
    let uname = rustix::system::uname();
    let host = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
    assert_eq!(line.facts["kernel_release"], host(uname.release()));
    assert_eq!(line.facts["kernel_name"], "Linux");
    assert_eq!(line.facts["hostname"], host(uname.nodename()));
    assert_eq!(line.facts["pid"], pid.to_string());
    assert_eq!(
        line.facts["uid"],
        rustix::process::getuid().as_raw().to_string()
    );
    let cpus = rustix::thread::sched_getaffinity(None).unwrap().count();
    assert_eq!(line.facts["cpus"], cpus.to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total: &str = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB");
    assert_eq!(line.facts["mem_total_kib"], total);
    let dev_kvm = if std::path::Path::new("/dev/kvm").exists() {
        "yes"
    } else {
        "no"
    };
    assert_eq!(line.facts["dev_kvm"], dev_kvm);
}

#[test]
fn every_measurement_prints_a_parsable_result_with_units() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str, Vec<&str>)> = vec![
        (
            vec!["mem", "--size-mib", "4", "--passes", "2"],
            "mem",
            vec!["copy_gb_per_s", "fault_ns_per_page"],
        ),
        (
            vec!["syscall", "--iterations", "1000"],
            "syscall",
            vec!["ns_per_call"],
        ),
        (
            vec![
                "fileio",
                "--dir",
                dir_arg,
                "--size-mib",
                "1",
                "--files",
                "20",
            ],
            "fileio",
            vec!["write_mb_per_s", "read_mb_per_s", "create_unlink_per_s"],
        ),
    ];
    for (args, test, keys) in cases {
        let line = result_of(&args);
        assert_eq!(line.test, test);
        for key in keys {
            let measure = &line.values[key];
            assert!(
                measure.value.is_finite() && measure.value > 0.0,
                "{test}.{key}"
            );
            assert!(!measure.unit.is_empty());
        }
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "fileio cleans up"
    );
}

#[test]
fn net_client_measures_against_a_served_peer() {
    let mut server = Command::new(WORKLOAD)
        .args(["net", "--serve", "127.0.0.1:0", "--connections", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    let served = ResultLine::parse_line(&first).unwrap().unwrap();
    let addr = served.facts["addr"].clone();
    let line = result_of(&[
        "net",
        "--connect",
        &addr,
        "--round-trips",
        "50",
        "--stream-mib",
        "2",
    ]);
    assert!(
        server.wait().unwrap().success(),
        "peer exits after its connections"
    );
    assert!(line.values["rtt_us"].value > 0.0);
    assert!(line.values["stream_mb_per_s"].value > 0.0);
}

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    let cases: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("unknown subcommand `frob`", vec!["frob"]),
        ("needs a number", vec!["cpu", "--iterations", "many"]),
        ("no subcommand", vec![]),
        ("IP:PORT", vec!["net", "--connect", "localhost"]),
    ]);
    for (message, args) in cases {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn failed_measurement_exits_1_naming_the_problem() {
    let out = run(&["fileio", "--dir", "/nonexistent/isolab-dir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/isolab-dir"));
}

#[test]
fn help_lists_every_subcommand() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "ready", "idle", "info", "cpu", "mem", "syscall", "fileio", "net",
    ] {
        assert!(text.contains(sub), "{sub}");
    }
}

#[test]
fn help_after_a_subcommand_prints_the_usage_instead_of_an_error() {
    for args in [&["cpu", "--help"][..], &["net", "--serve", "-h"][..]] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("--iterations"),
            "{args:?}"
        );
    }
}

#[test]
fn idle_is_ready_and_stays_until_killed() {
    let mut child = Command::new(WORKLOAD)
        .arg("idle")
        .env("ISOLAB_GUEST_INIT", "0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "READY\n");
    assert!(
        child.try_wait().unwrap().is_none(),
        "idle must keep running"
    );
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
}
