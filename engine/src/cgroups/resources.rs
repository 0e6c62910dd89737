//! Translates OCI `LinuxResources` (memory limit and swap, cpu quota, period, shares and
//! weight, pids limit) into the control files of cgroup v1 and of cgroup v2.
//!
//! The translation is pure: it yields a list of [`Setting`]s that `v1.rs` and `v2.rs`
//! write in order, so every rule here is unit-tested without a cgroup filesystem.

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

/// A controller whose files isolab writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    /// Memory limits and OOM accounting.
    Memory,
    /// CPU bandwidth (quota/period) and proportional share (shares/weight).
    Cpu,
    /// The number of tasks.
    Pids,
}

impl Controller {
    /// The controller's name in mount options and `cgroup.subtree_control`.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }
}

/// One control file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The controller the file belongs to (which v1 hierarchy it lives in).
    pub controller: Controller,
    /// The file name inside the cgroup directory, e.g. `memory.max`.
    pub file: String,
    /// The value written.
    pub value: String,
    /// Skipped with a warning when the kernel lacks the file (swap accounting off).
    pub optional: bool,
}

/// A resource request that no cgroup version can express.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResourceError {
    /// memory.swap (memory plus swap) is below memory.limit.
    #[error("memory swap limit {swap} is below the memory limit {limit} (OCI swap counts memory plus swap)")]
    SwapBelowLimit { limit: i64, swap: i64 },
    /// A limit that must be positive (or -1 for unlimited) is not.
    #[error("{what} must be positive or -1 for unlimited, got {value}")]
    NotPositive { what: &'static str, value: i64 },
    /// cpu.quota given without a usable period, or a period of zero.
    #[error("cpu period must be at least 1000 us, got {0}")]
    BadPeriod(u64),
    /// cpu.shares outside what the kernel accepts.
    #[error("cpu shares must be between 2 and 262144, got {0}")]
    BadShares(u64),
    /// `unified` (raw cgroup v2 keys) on a v1 or hybrid host.
    #[error("the `unified` resources ({0}) need a pure cgroup v2 host")]
    UnifiedOnV1(String),
    /// A `unified` key that is not a plain file name of a known controller.
    #[error("unsupported unified cgroup key {0:?}")]
    BadUnifiedKey(String),
}

/// The CFS period used when a quota is given without one, as runc does.
const DEFAULT_PERIOD_US: u64 = 100_000;

fn setting(controller: Controller, file: &str, value: impl ToString) -> Setting {
    Setting {
        controller,
        file: file.to_owned(),
        value: value.to_string(),
        optional: false,
    }
}

fn optional(controller: Controller, file: &str, value: impl ToString) -> Setting {
    Setting {
        optional: true,
        ..setting(controller, file, value)
    }
}

/// Checks a memory limit pair and returns `(limit, swap)` with -1 meaning unlimited.
fn memory_pair(mem: &LinuxMemory) -> Result<(Option<i64>, Option<i64>), ResourceError> {
    let check = |what, v: Option<i64>| match v {
        Some(v) if v <= 0 && v != -1 => Err(ResourceError::NotPositive { what, value: v }),
        other => Ok(other),
    };
    let limit = check("memory limit", mem.limit())?;
    let swap = check("memory swap limit", mem.swap())?;
    if let (Some(l), Some(s)) = (limit, swap) {
        if l != -1 && s != -1 && s < l {
            return Err(ResourceError::SwapBelowLimit { limit: l, swap: s });
        }
    }
    Ok((limit, swap))
}

/// Checks quota and period; `None` when no bandwidth limit is asked.
fn cpu_bandwidth(cpu: &LinuxCpu) -> Result<Option<(i64, u64)>, ResourceError> {
    if cpu.quota().is_none() && cpu.period().is_none() {
        return Ok(None);
    }
    let period = cpu.period().unwrap_or(DEFAULT_PERIOD_US);
    if period < 1000 {
        return Err(ResourceError::BadPeriod(period));
    }
    let quota = match cpu.quota() {
        Some(q) if q <= 0 && q != -1 => {
            return Err(ResourceError::NotPositive {
                what: "cpu quota",
                value: q,
            })
        }
        Some(q) => q,
        None => -1,
    };
    Ok(Some((quota, period)))
}

fn checked_shares(cpu: &LinuxCpu) -> Result<Option<u64>, ResourceError> {
    match cpu.shares() {
        Some(s) if !(2..=262_144).contains(&s) => Err(ResourceError::BadShares(s)),
        other => Ok(other),
    }
}

/// cpu.shares (v1, 2..262144) to cpu.weight (v2, 1..10000), the formula of runc and crun.
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

fn v2_max(value: i64) -> String {
    if value == -1 {
        "max".to_owned()
    } else {
        value.to_string()
    }
}

fn pids_limit(resources: &LinuxResources) -> Option<String> {
    // OCI: 0 or -1 mean no limit (runc writes "max" for both).
    resources.pids().as_ref().map(|p| match p.limit() {
        l if l <= 0 => "max".to_owned(),
        l => l.to_string(),
    })
}

/// The writes for a v1 hierarchy (also used for the v1 controllers of a hybrid host).
pub fn v1_settings(resources: &LinuxResources) -> Result<Vec<Setting>, ResourceError> {
    if let Some(unified) = resources.unified().as_ref().filter(|u| !u.is_empty()) {
        let keys: Vec<&str> = unified.keys().map(String::as_str).collect();
        return Err(ResourceError::UnifiedOnV1(keys.join(", ")));
    }
    let mut out = Vec::new();
    if let Some(mem) = resources.memory() {
        let (limit, swap) = memory_pair(mem)?;
        // The limit goes first: the kernel refuses memsw below the memory limit.
        if let Some(l) = limit {
            out.push(setting(Controller::Memory, "memory.limit_in_bytes", l));
        }
        if let Some(s) = swap {
            out.push(optional(
                Controller::Memory,
                "memory.memsw.limit_in_bytes",
                s,
            ));
        }
    }
    if let Some(cpu) = resources.cpu() {
        if let Some(shares) = checked_shares(cpu)? {
            out.push(setting(Controller::Cpu, "cpu.shares", shares));
        }
        if let Some((quota, period)) = cpu_bandwidth(cpu)? {
            out.push(setting(Controller::Cpu, "cpu.cfs_period_us", period));
            out.push(setting(Controller::Cpu, "cpu.cfs_quota_us", quota));
        }
    }
    if let Some(pids) = pids_limit(resources) {
        out.push(setting(Controller::Pids, "pids.max", pids));
    }
    Ok(out)
}

/// The writes for a pure cgroup v2 host.
pub fn v2_settings(resources: &LinuxResources) -> Result<Vec<Setting>, ResourceError> {
    let mut out = Vec::new();
    if let Some(mem) = resources.memory() {
        out.extend(v2_memory(mem)?);
    }
    if let Some(cpu) = resources.cpu() {
        if let Some(shares) = checked_shares(cpu)? {
            out.push(setting(
                Controller::Cpu,
                "cpu.weight",
                shares_to_weight(shares),
            ));
        }
        if let Some((quota, period)) = cpu_bandwidth(cpu)? {
            out.push(setting(
                Controller::Cpu,
                "cpu.max",
                format!("{} {period}", v2_max(quota)),
            ));
        }
    }
    if let Some(pids) = pids_limit(resources) {
        out.push(setting(Controller::Pids, "pids.max", pids));
    }
    if let Some(unified) = resources.unified() {
        out.extend(unified_settings(unified)?);
    }
    Ok(out)
}

fn v2_memory(mem: &LinuxMemory) -> Result<Vec<Setting>, ResourceError> {
    let (limit, swap) = memory_pair(mem)?;
    let mut out = Vec::new();
    if let Some(l) = limit {
        out.push(setting(Controller::Memory, "memory.max", v2_max(l)));
    }
    // v2 counts swap alone; OCI's swap is memory plus swap.
    let swap_only = match (limit, swap) {
        (_, None) => None,
        (_, Some(-1)) | (Some(-1), _) => Some("max".to_owned()),
        (Some(l), Some(s)) => Some((s - l).to_string()),
        (None, Some(s)) => Some(s.to_string()),
    };
    if let Some(s) = swap_only {
        out.push(optional(Controller::Memory, "memory.swap.max", s));
    }
    Ok(out)
}

fn unified_settings(
    unified: &std::collections::HashMap<String, String>,
) -> Result<Vec<Setting>, ResourceError> {
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    keys.into_iter()
        .map(|key| {
            let controller = match key.split_once('.') {
                Some(("memory", _)) => Controller::Memory,
                Some(("cpu", _)) => Controller::Cpu,
                Some(("pids", _)) => Controller::Pids,
                _ => return Err(ResourceError::BadUnifiedKey(key.clone())),
            };
            if key.contains('/') || key.starts_with("cgroup.") {
                return Err(ResourceError::BadUnifiedKey(key.clone()));
            }
            Ok(setting(controller, key, &unified[key]))
        })
        .collect()
}

/// The controllers that a set of writes touches.
pub fn controllers_of(settings: &[Setting]) -> Vec<Controller> {
    let mut c: Vec<Controller> = settings.iter().map(|s| s.controller).collect();
    c.sort();
    c.dedup();
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    fn resources(
        limit: i64,
        swap: Option<i64>,
        quota: i64,
        shares: u64,
        pids: i64,
    ) -> LinuxResources {
        let mut mem = LinuxMemoryBuilder::default().limit(limit);
        if let Some(s) = swap {
            mem = mem.swap(s);
        }
        LinuxResourcesBuilder::default()
            .memory(mem.build().unwrap())
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(quota)
                    .period(100_000u64)
                    .shares(shares)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(pids).build().unwrap())
            .build()
            .unwrap()
    }

    fn pairs(s: &[Setting]) -> Vec<(&str, &str)> {
        s.iter()
            .map(|s| (s.file.as_str(), s.value.as_str()))
            .collect()
    }

    #[test]
    fn v1_writes_limit_before_memsw_and_period_before_quota() {
        let s = v1_settings(&resources(64 << 20, Some(64 << 20), 50_000, 512, 32)).unwrap();
        assert_eq!(
            pairs(&s),
            vec![
                ("memory.limit_in_bytes", "67108864"),
                ("memory.memsw.limit_in_bytes", "67108864"),
                ("cpu.shares", "512"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("pids.max", "32"),
            ]
        );
        assert!(s[1].optional && !s[0].optional);
    }

    #[test]
    fn v2_swap_is_swap_alone_and_quota_shares_translate() {
        let s = v2_settings(&resources(64 << 20, Some(96 << 20), 50_000, 1024, 32)).unwrap();
        assert_eq!(
            pairs(&s),
            vec![
                ("memory.max", "67108864"),
                ("memory.swap.max", "33554432"),
                ("cpu.weight", "39"),
                ("cpu.max", "50000 100000"),
                ("pids.max", "32"),
            ]
        );
    }

    #[test]
    fn unlimited_values_become_max() {
        let s = v2_settings(&resources(-1, Some(-1), -1, 2, 0)).unwrap();
        assert_eq!(
            pairs(&s),
            vec![
                ("memory.max", "max"),
                ("memory.swap.max", "max"),
                ("cpu.weight", "1"),
                ("cpu.max", "max 100000"),
                ("pids.max", "max"),
            ]
        );
        let v1 = v1_settings(&resources(-1, None, -1, 2, -1)).unwrap();
        assert!(pairs(&v1).contains(&("pids.max", "max")));
        assert!(pairs(&v1).contains(&("cpu.cfs_quota_us", "-1")));
    }

    #[test]
    fn shares_map_onto_the_weight_range_ends() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
    }

    #[test]
    fn bad_requests_are_refused_with_reasons() {
        let err = v1_settings(&resources(64 << 20, Some(32 << 20), 1, 2, 1)).unwrap_err();
        assert!(matches!(err, ResourceError::SwapBelowLimit { .. }), "{err}");
        let err = v2_settings(&resources(0, None, 1, 2, 1)).unwrap_err();
        assert_eq!(
            err,
            ResourceError::NotPositive {
                what: "memory limit",
                value: 0
            }
        );
        let err = v2_settings(&resources(1 << 20, None, 1, 1, 1)).unwrap_err();
        assert_eq!(err, ResourceError::BadShares(1));
        let cpu = LinuxCpuBuilder::default()
            .quota(1000i64)
            .period(10u64)
            .build()
            .unwrap();
        let r = LinuxResourcesBuilder::default().cpu(cpu).build().unwrap();
        assert_eq!(v1_settings(&r).unwrap_err(), ResourceError::BadPeriod(10));
    }

    #[test]
    fn quota_without_period_uses_the_default_period() {
        let cpu = LinuxCpuBuilder::default().quota(25_000i64).build().unwrap();
        let r = LinuxResourcesBuilder::default().cpu(cpu).build().unwrap();
        assert_eq!(
            pairs(&v2_settings(&r).unwrap()),
            vec![("cpu.max", "25000 100000")]
        );
    }

    #[test]
    fn unified_keys_pass_through_on_v2_only() {
        let mut map = std::collections::HashMap::new();
        map.insert("memory.high".to_owned(), "1000000".to_owned());
        let r = LinuxResourcesBuilder::default()
            .unified(map.clone())
            .build()
            .unwrap();
        assert_eq!(
            pairs(&v2_settings(&r).unwrap()),
            vec![("memory.high", "1000000")]
        );
        assert!(matches!(
            v1_settings(&r),
            Err(ResourceError::UnifiedOnV1(_))
        ));
        map.insert("../escape".to_owned(), "1".to_owned());
        let r = LinuxResourcesBuilder::default()
            .unified(map)
            .build()
            .unwrap();
        assert!(matches!(
            v2_settings(&r),
            Err(ResourceError::BadUnifiedKey(_))
        ));
    }

    #[test]
    fn empty_resources_write_nothing() {
        let r = LinuxResources::default();
        assert!(v1_settings(&r).unwrap().is_empty());
        assert!(v2_settings(&r).unwrap().is_empty());
    }
}
