//! Facts about the host a run measured: CPU, memory, kernel, KVM flavor, cgroup mode and
//! CPU vulnerability mitigations. Everything is read under a root directory, so tests
//! run on fixture trees shaped like `/`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::results::HostFacts;

/// Reads the facts of this host.
pub fn gather() -> HostFacts {
    let mut facts = gather_in(Path::new("/"));
    facts.kvm_flavor = microvm::kvm_flavor::detect();
    facts.cgroup_mode = engine::cgroups::mode::detect();
    facts
}

/// Reads the facts under `root` (a directory shaped like `/`). Missing files give
/// `unknown` or zero rather than an error: a fact we cannot read is reported as such.
pub fn gather_in(root: &Path) -> HostFacts {
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap_or_default();
    let cpuinfo = read("proc/cpuinfo");
    let mounts = read("proc/self/mounts");
    HostFacts {
        hostname: non_empty(read("proc/sys/kernel/hostname").trim()),
        cpu_model: non_empty(cpu_model(&cpuinfo)),
        cores: online_cpus(read("sys/devices/system/cpu/online").trim()).unwrap_or_else(|| {
            cpuinfo
                .lines()
                .filter(|l| l.starts_with("processor"))
                .count() as u32
        }),
        memory_bytes: meminfo_kib(&read("proc/meminfo"), "MemTotal").unwrap_or(0) * 1024,
        kernel: non_empty(read("proc/sys/kernel/osrelease").trim()),
        kvm_flavor: microvm::kvm_flavor::detect_in(root),
        cgroup_mode: engine::cgroups::mode::detect_from_mounts(
            &mounts,
            Path::new("/sys/fs/cgroup"),
        ),
        mitigations: mitigations(&root.join("sys/devices/system/cpu/vulnerabilities")),
        is_root: nix::unistd::geteuid().is_root(),
        isolab_version: env!("CARGO_PKG_VERSION").to_owned(),
        date: crate::clock::now_rfc3339(),
    }
}

fn non_empty(s: &str) -> String {
    if s.is_empty() { "unknown" } else { s }.to_owned()
}

/// The first `model name` of `/proc/cpuinfo`.
fn cpu_model(cpuinfo: &str) -> &str {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("", |(_, v)| v.trim())
}

/// Counts the CPUs of a list like `0-3,6,8-9`.
fn online_cpus(list: &str) -> Option<u32> {
    let mut total = 0;
    for part in list.split(',').filter(|p| !p.is_empty()) {
        total += match part.split_once('-') {
            Some((a, b)) => b.parse::<u32>().ok()?.checked_sub(a.parse().ok()?)? + 1,
            None => part.parse::<u32>().map(|_| 1).ok()?,
        };
    }
    (total > 0).then_some(total)
}

/// A `/proc/meminfo` field in KiB.
pub fn meminfo_kib(meminfo: &str, field: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// File name to contents of the vulnerabilities directory.
fn mitigations(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let state = std::fs::read_to_string(e.path()).ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                state.trim().to_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CgroupMode, KvmFlavor};

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn fixture_host(kvm_module: &str, mounts: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "proc/cpuinfo", "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t: fpu\nprocessor\t: 1\nmodel name\t: Test CPU 9000\n");
        write(
            r,
            "proc/meminfo",
            "MemTotal:       2048 kB\nMemAvailable:   1024 kB\n",
        );
        write(r, "proc/sys/kernel/hostname", "lab1\n");
        write(r, "proc/sys/kernel/osrelease", "6.1.0-test\n");
        write(r, "proc/self/mounts", mounts);
        write(r, "sys/devices/system/cpu/online", "0-3,6\n");
        write(
            r,
            "sys/devices/system/cpu/vulnerabilities/meltdown",
            "Not affected\n",
        );
        write(r, "dev/kvm", "");
        std::fs::create_dir_all(r.join("sys/module").join(kvm_module)).unwrap();
        dir
    }

    #[test]
    fn pvm_hybrid_fixture() {
        let mounts = "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        let dir = fixture_host("kvm_pvm", mounts);
        let f = gather_in(dir.path());
        assert_eq!(f.hostname, "lab1");
        assert_eq!(f.cpu_model, "Test CPU 9000");
        assert_eq!(f.cores, 5);
        assert_eq!(f.memory_bytes, 2048 * 1024);
        assert_eq!(f.kernel, "6.1.0-test");
        assert_eq!(f.kvm_flavor, KvmFlavor::Pvm);
        assert_eq!(f.cgroup_mode, CgroupMode::Hybrid);
        assert_eq!(f.mitigations["meltdown"], "Not affected");
    }

    #[test]
    fn vmx_v2_fixture() {
        let dir = fixture_host("kvm_intel", "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n");
        let f = gather_in(dir.path());
        assert_eq!(f.kvm_flavor, KvmFlavor::Vmx);
        assert_eq!(f.cgroup_mode, CgroupMode::V2);
    }

    #[test]
    fn empty_root_reports_unknown_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let f = gather_in(dir.path());
        assert_eq!(f.cpu_model, "unknown");
        assert_eq!(f.cores, 0);
        assert_eq!(f.kvm_flavor, KvmFlavor::None);
        assert!(f.mitigations.is_empty());
    }

    #[test]
    fn cpu_lists_and_meminfo_parse() {
        assert_eq!(online_cpus("0"), Some(1));
        assert_eq!(online_cpus("0-1"), Some(2));
        assert_eq!(online_cpus("garbage"), None);
        assert_eq!(
            meminfo_kib("MemAvailable:  77 kB\n", "MemAvailable"),
            Some(77)
        );
        assert_eq!(meminfo_kib("MemTotal: 1 kB\n", "MemAvailable"), None);
    }
}
