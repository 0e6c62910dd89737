//! `info`: what the instance sees of the machine it runs on. The same binary reports a
//! different kernel, pid, hostname and memory in each isolation model; that difference
//! is what the `isolation` scenario and `bench demo` show.

use std::path::Path;

use crate::result::ResultLine;

/// Everything `info` reports.
pub fn run() -> ResultLine {
    let uname = rustix::system::uname();
    let text = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
    let pid = std::process::id();
    let uid = rustix::process::getuid().as_raw();
    let cpus = rustix::thread::sched_getaffinity(None)
        .map(|set| set.count())
        .unwrap_or(0);
    let info = rustix::system::sysinfo();
    let mem_total_kib = info.totalram as u64 * u64::from(info.mem_unit.max(1)) / 1024;
    ResultLine::new("info")
        .value("pid", f64::from(pid), "pid")
        .value("uid", f64::from(uid), "uid")
        .value("cpus", f64::from(cpus), "cpus")
        .value("mem_total_kib", mem_total_kib as f64, "KiB")
        .fact("kernel_name", text(uname.sysname()))
        .fact("kernel_release", text(uname.release()))
        .fact("hostname", text(uname.nodename()))
        .fact("machine", text(uname.machine()))
        .fact("pid", pid.to_string())
        .fact("uid", uid.to_string())
        .fact("cpus", cpus.to_string())
        .fact("mem_total_kib", mem_total_kib.to_string())
        .fact("cgroup", cgroup())
        .fact("dev_kvm", yes_no(Path::new("/dev/kvm").exists()))
}

/// The cgroup path(s) from `/proc/self/cgroup`, or `none` where there is no procfs.
fn cgroup() -> String {
    match std::fs::read_to_string("/proc/self/cgroup") {
        Ok(text) => {
            let paths: Vec<&str> = text
                .lines()
                .filter_map(|l| l.splitn(3, ':').nth(2))
                .collect();
            // One path for v2, many (usually identical) for v1: keep the distinct ones.
            let mut distinct: Vec<&str> = Vec::new();
            for p in paths {
                if !distinct.contains(&p) {
                    distinct.push(p);
                }
            }
            distinct.join(",")
        }
        Err(_) => "none".to_owned(),
    }
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}
