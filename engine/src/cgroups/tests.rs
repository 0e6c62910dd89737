//! Unit tests of `Cgroup` against fake cgroup trees in a temp dir (plain files stand in
//! for control files); the real-kernel tests are in `engine/tests/cgroups_root.rs`.

use super::*;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
};

/// A fake host tree of `mode` with its mount points made.
fn fake(mode: CgroupMode) -> (tempfile::TempDir, CgroupRoot) {
    let tmp = tempfile::tempdir().unwrap();
    let root = CgroupRoot::at(mode, tmp.path().to_path_buf());
    for m in root.v1_mounts_where(|_| true) {
        std::fs::create_dir_all(m).unwrap();
    }
    if let Some(u) = root.unified() {
        std::fs::create_dir_all(u).unwrap();
        std::fs::write(u.join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
    }
    (tmp, root)
}

fn limits() -> LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64i64 << 20)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .quota(50_000i64)
                .period(100_000u64)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(16).build().unwrap())
        .build()
        .unwrap()
}

fn read(base: &Path, rel: &str) -> String {
    std::fs::read_to_string(base.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn v2_enables_controllers_in_the_parent_and_writes_limits_in_the_leaf() {
    let (tmp, root) = fake(CgroupMode::V2);
    let cg = Cgroup::create(&root, "isolab/c1", Some(&limits())).unwrap();
    let base = tmp.path();
    assert_eq!(read(base, "cgroup.subtree_control"), "+memory +cpu +pids");
    assert_eq!(read(base, "isolab/c1/memory.max"), "67108864");
    assert_eq!(read(base, "isolab/c1/cpu.max"), "50000 100000");
    assert_eq!(read(base, "isolab/c1/pids.max"), "16");
    assert_eq!(cg.unified_dir(), Some(base.join("isolab/c1").as_path()));
    assert_eq!(cg.v1_dir(Controller::Memory), None);
}

#[test]
fn hybrid_limits_go_to_v1_and_cgroup2_only_tracks() {
    let (tmp, root) = fake(CgroupMode::Hybrid);
    let cg = Cgroup::create(&root, "isolab/c1", Some(&limits())).unwrap();
    let base = tmp.path();
    assert_eq!(
        read(base, "memory/isolab/c1/memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(read(base, "cpu/isolab/c1/cpu.cfs_quota_us"), "50000");
    assert_eq!(read(base, "pids/isolab/c1/pids.max"), "16");
    assert!(base.join("cpuacct/isolab/c1").is_dir());
    let unified = base.join("unified/isolab/c1");
    assert_eq!(
        std::fs::read_dir(&unified).unwrap().count(),
        0,
        "no limits in cgroup2"
    );
    assert!(!base.join("unified/cgroup.subtree_control").exists());
    cg.add_process(4242).unwrap();
    for dir in ["memory", "pids", "cpu", "cpuacct", "unified"] {
        assert_eq!(read(base, &format!("{dir}/isolab/c1/cgroup.procs")), "4242");
    }
    assert_eq!(cg.pids(), vec![4242]);
}

#[test]
fn hybrid_without_limits_has_only_the_cgroup2_directory() {
    // Each v1 hierarchy a container joins costs an RCU grace period (9-25 ms) at start.
    let (tmp, root) = fake(CgroupMode::Hybrid);
    let cg = Cgroup::create(&root, "isolab/c1", None).unwrap();
    assert!(tmp.path().join("unified/isolab/c1").is_dir());
    for dir in ["memory", "pids", "cpu", "cpuacct"] {
        assert!(!tmp.path().join(dir).join("isolab").exists(), "{dir} made");
    }
    assert!(!cg.has_v1_dirs());
    assert_eq!(cg.v1_dir(Controller::Memory), None);
    cg.add_process_to_v1(4242).unwrap();
    assert!(!tmp.path().join("unified/isolab/c1/cgroup.procs").exists());
    cg.destroy().unwrap();
    assert!(!tmp.path().join("unified/isolab").exists());
}

#[test]
fn hybrid_joins_only_the_hierarchies_its_limits_need() {
    let (tmp, root) = fake(CgroupMode::Hybrid);
    let memory_only = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1i64 << 30)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let cg = Cgroup::create(&root, "isolab/c1", Some(&memory_only)).unwrap();
    assert!(cg.has_v1_dirs());
    cg.add_process_to_v1(4242).unwrap();
    let base = tmp.path();
    assert_eq!(read(base, "memory/isolab/c1/cgroup.procs"), "4242");
    for dir in ["pids", "cpu", "cpuacct"] {
        assert!(!base.join(dir).join("isolab").exists(), "{dir} made");
    }
    // The clone put the task in the cgroup2 directory; only v1 is written.
    assert!(!base.join("unified/isolab/c1/cgroup.procs").exists());
}

#[test]
fn v1_hosts_get_every_hierarchy_even_without_limits() {
    // Without a cgroup2 tree the v1 hierarchies are all that tracks the tasks.
    let (tmp, root) = fake(CgroupMode::V1);
    let cg = Cgroup::create(&root, "isolab/c1", None).unwrap();
    for dir in ["memory", "pids", "cpu", "cpuacct"] {
        assert!(tmp.path().join(dir).join("isolab/c1").is_dir(), "{dir}");
    }
    assert!(cg.has_v1_dirs());
}

#[test]
fn v1_oom_and_memory_are_read_from_the_memory_hierarchy() {
    let (tmp, root) = fake(CgroupMode::V1);
    let cg = Cgroup::create(&root, "isolab/c1", None).unwrap();
    let mem = tmp.path().join("memory/isolab/c1");
    std::fs::write(mem.join("memory.usage_in_bytes"), "12345\n").unwrap();
    std::fs::write(mem.join("memory.oom_control"), "under_oom 0\noom_kill 2\n").unwrap();
    assert_eq!(cg.memory_current(), Some(12345));
    assert!(cg.oom_killed());
    assert!(cg.unified_dir().is_none());
}

#[test]
fn a_failed_step_removes_every_directory_it_made() {
    let (tmp, root) = fake(CgroupMode::Hybrid);
    // The pids hierarchy cannot hold a directory: creation fails half way.
    std::fs::remove_dir(tmp.path().join("pids")).unwrap();
    std::fs::write(tmp.path().join("pids"), "").unwrap();
    let err = Cgroup::create(&root, "isolab/c1", Some(&limits())).unwrap_err();
    assert!(err.to_string().contains("creating cgroup"), "{err}");
    for dir in ["memory", "cpu", "cpuacct", "unified"] {
        assert!(
            !tmp.path().join(dir).join("isolab").exists(),
            "{dir}/isolab left behind"
        );
    }
}

#[test]
fn bad_resources_are_refused_before_anything_is_made() {
    let (tmp, root) = fake(CgroupMode::V2);
    let cpu = LinuxCpuBuilder::default().shares(1u64).build().unwrap();
    let bad = LinuxResourcesBuilder::default().cpu(cpu).build().unwrap();
    let err = Cgroup::create(&root, "isolab/c1", Some(&bad)).unwrap_err();
    assert!(
        matches!(err, CgroupError::Resources(ResourceError::BadShares(1))),
        "{err}"
    );
    assert!(!tmp.path().join("isolab").exists());
}

#[test]
fn paths_that_leave_the_tree_are_refused() {
    let (_tmp, root) = fake(CgroupMode::V2);
    for bad in ["", "/abs", "isolab/../x", "./x", "isolab/./x"] {
        let err = Cgroup::create(&root, bad, None).unwrap_err();
        assert!(matches!(err, CgroupError::InvalidPath(_)), "{bad:?}: {err}");
    }
}

#[test]
fn open_finds_existing_groups_and_refuses_missing_ones() {
    let (_tmp, root) = fake(CgroupMode::Hybrid);
    Cgroup::create(&root, "isolab/c1", None).unwrap();
    let cg = Cgroup::open(&root, "isolab/c1").unwrap();
    assert!(cg.unified_dir().unwrap().is_dir());
    assert!(matches!(
        Cgroup::open(&root, "isolab/c2"),
        Err(CgroupError::NotFound(_))
    ));
    let again = Cgroup::create(&root, "isolab/c1", None).unwrap_err();
    assert!(matches!(again, CgroupError::Exists(_)), "{again}");
}

#[test]
fn destroy_of_an_empty_group_removes_it_and_the_unused_parent() {
    let (tmp, root) = fake(CgroupMode::V1);
    // A plain directory stands in for a cgroup whose control files the kernel hides.
    let cg = Cgroup::create(&root, "isolab/c1", None).unwrap();
    cg.destroy().unwrap();
    for dir in ["memory", "pids", "cpu", "cpuacct"] {
        assert!(
            !tmp.path().join(dir).join("isolab").exists(),
            "{dir}/isolab left behind"
        );
        assert!(tmp.path().join(dir).is_dir());
    }
}
