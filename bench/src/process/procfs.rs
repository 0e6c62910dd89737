//! What `/proc` and the cgroup files say about an instance's host processes: its
//! process tree, their PSS and peak RSS, their cgroup's memory, and `MemAvailable`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `pid` and every process below it, parents first. Read from the cheap
/// `/proc/PID/task/TID/children` lists when the kernel has them, else from every
/// process's `/proc/PID/stat` parent field.
pub fn descendants(pid: i32) -> Vec<i32> {
    if !std::path::Path::new(&format!("/proc/{pid}/task/{pid}/children")).exists() {
        return descendants_by_scan(pid);
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let children = children_of(tree[i]);
        tree.extend(children);
        i += 1;
    }
    tree
}

/// The children of every thread of `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

fn descendants_by_scan(pid: i32) -> Vec<i32> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (child, parent) in all_parents() {
        children.entry(parent).or_default().push(child);
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        tree.extend(children.get(&tree[i]).into_iter().flatten());
        i += 1;
    }
    tree
}

/// (pid, parent pid) of every process.
fn all_parents() -> Vec<(i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect()
}

/// The parent pid from `/proc/PID/stat` (after the `comm` field, which may hold spaces).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ppid(&stat)
}

fn parse_stat_ppid(stat: &str) -> Option<i32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The process's command name (`/proc/PID/comm`).
pub fn comm(pid: i32) -> Option<String> {
    let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(c.trim().to_owned())
}

/// Proportional set size of `pid` in KiB, from `/proc/PID/smaps_rollup`.
pub fn pss_kib(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    field_kib(&text, "Pss")
}

/// Peak resident set size of `pid` in KiB (`VmHWM`).
pub fn peak_rss_kib(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    field_kib(&text, "VmHWM")
}

/// A `Name:   123 kB` field.
pub fn field_kib(text: &str, name: &str) -> Option<u64> {
    crate::host::meminfo_kib(text, name)
}

/// `MemAvailable` of the host in KiB.
pub fn mem_available_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    field_kib(&text, "MemAvailable")
}

/// Memory charged to a process's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupMemory {
    /// Everything charged (`memory.current` or `memory.usage_in_bytes`), KiB.
    pub usage_kib: u64,
    /// The kernel part of it (slab, page tables, stacks), KiB.
    pub kernel_kib: u64,
}

/// The memory of `pid`'s memory cgroup (v1 memory controller first, else cgroup2).
/// `None` for a process in the root cgroup, or in the harness's own memory cgroup (a
/// runtime that made none): the figure would then be the host's or the harness's.
pub fn cgroup_memory(pid: i32) -> Option<CgroupMemory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let root = Path::new("/sys/fs/cgroup");
    if memory_cgroup_dir(root, &text) == memory_cgroup_dir(root, &own) {
        return None;
    }
    cgroup_memory_in(root, &text)
}

/// As [`cgroup_memory`], with the cgroup root and `/proc/PID/cgroup` text given.
pub fn cgroup_memory_in(root: &Path, proc_cgroup: &str) -> Option<CgroupMemory> {
    let (dir, v1) = memory_cgroup_dir(root, proc_cgroup)?;
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    if v1 {
        let usage = read("memory.usage_in_bytes")?.trim().parse::<u64>().ok()?;
        let kmem = read("memory.kmem.usage_in_bytes").and_then(|s| s.trim().parse::<u64>().ok());
        return Some(CgroupMemory {
            usage_kib: usage / 1024,
            kernel_kib: kmem.unwrap_or(0) / 1024,
        });
    }
    let usage = read("memory.current")?.trim().parse::<u64>().ok()?;
    let stat = read("memory.stat").unwrap_or_default();
    let kernel = stat_field(&stat, "kernel")
        .or_else(|| Some(stat_field(&stat, "slab")? + stat_field(&stat, "kernel_stack")?));
    Some(CgroupMemory {
        usage_kib: usage / 1024,
        kernel_kib: kernel.unwrap_or(0) / 1024,
    })
}

/// The memory cgroup directory of a process and whether it is v1.
fn memory_cgroup_dir(root: &Path, proc_cgroup: &str) -> Option<(PathBuf, bool)> {
    let mut v2 = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if rel.is_empty() {
            continue;
        }
        if controllers.split(',').any(|c| c == "memory") {
            return Some((root.join("memory").join(rel), true));
        }
        if controllers.is_empty() {
            let unified = root.join("unified");
            let base = if unified.join(rel).exists() {
                unified
            } else {
                root.to_path_buf()
            };
            v2 = Some((base.join(rel), false));
        }
    }
    v2
}

/// A `name value` line of `memory.stat`, in bytes.
fn stat_field(stat: &str, name: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_comm() {
        assert_eq!(parse_stat_ppid("42 (a b) c) S 7 42 42 0"), Some(7));
        assert_eq!(parse_stat_ppid("garbage"), None);
    }

    #[test]
    fn own_process_tree_and_pss() {
        let me = std::process::id() as i32;
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("5")
            .spawn()
            .unwrap();
        for tree in [descendants(me), descendants_by_scan(me)] {
            assert_eq!(tree[0], me);
            assert!(tree.contains(&(child.id() as i32)), "{tree:?}");
        }
        assert!(pss_kib(me).unwrap() > 0);
        assert!(peak_rss_kib(me).unwrap() > 0);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn cgroup_v1_memory_fixture() {
        let dir = tempfile::tempdir().unwrap();
        let cg = dir.path().join("memory/isolab/c1");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(cg.join("memory.usage_in_bytes"), "2097152\n").unwrap();
        std::fs::write(cg.join("memory.kmem.usage_in_bytes"), "1048576\n").unwrap();
        let text = "12:pids:/isolab/c1\n4:memory:/isolab/c1\n0::/isolab/c1\n";
        let m = cgroup_memory_in(dir.path(), text).unwrap();
        assert_eq!(
            m,
            CgroupMemory {
                usage_kib: 2048,
                kernel_kib: 1024
            }
        );
    }

    #[test]
    fn cgroup_v2_memory_fixture() {
        let dir = tempfile::tempdir().unwrap();
        let cg = dir.path().join("isolab/c2");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(cg.join("memory.current"), "4194304\n").unwrap();
        std::fs::write(cg.join("memory.stat"), "anon 1\nkernel 2097152\nslab 5\n").unwrap();
        let m = cgroup_memory_in(dir.path(), "0::/isolab/c2\n").unwrap();
        assert_eq!(
            m,
            CgroupMemory {
                usage_kib: 4096,
                kernel_kib: 2048
            }
        );
        assert_eq!(cgroup_memory_in(dir.path(), "0::/\n"), None);
    }
}
