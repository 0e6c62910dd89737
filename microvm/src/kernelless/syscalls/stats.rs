//! Per-name counts of the guest's system calls, for `--stats` and for the report's
//! "host kernel surface" (claim C6): which calls the guest made, and which it asked for
//! but the monitor does not implement.

use std::collections::BTreeMap;

use serde::Serialize;
use syscalls::{Errno, Sysno};

/// Counts of the guest's system calls, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyscallStats {
    /// How many system calls the guest made in all.
    pub total: u64,
    /// Calls per system-call name (`unknown_N` for numbers Linux does not define).
    pub calls: BTreeMap<String, u64>,
    /// Of those, the calls answered `ENOSYS` because the monitor does not implement them.
    pub enosys: BTreeMap<String, u64>,
}

/// Accumulates [`SyscallStats`] cheaply: counts by number, names made at snapshot time.
#[derive(Debug, Default)]
pub(crate) struct StatsRecorder {
    calls: BTreeMap<u64, u64>,
    enosys: BTreeMap<u64, u64>,
}

impl StatsRecorder {
    /// Counts one call and, when it was answered `ENOSYS`, one unimplemented call.
    pub(crate) fn record(&mut self, nr: u64, result: &Result<u64, Errno>) {
        *self.calls.entry(nr).or_default() += 1;
        if *result == Err(Errno::ENOSYS) {
            *self.enosys.entry(nr).or_default() += 1;
        }
    }

    /// The counts so far, by name.
    pub(crate) fn snapshot(&self) -> SyscallStats {
        SyscallStats {
            total: self.calls.values().sum(),
            calls: by_name(&self.calls),
            enosys: by_name(&self.enosys),
        }
    }
}

fn by_name(counts: &BTreeMap<u64, u64>) -> BTreeMap<String, u64> {
    counts.iter().map(|(&nr, &n)| (name(nr), n)).collect()
}

/// The Linux x86_64 name of a system call number.
pub fn name(nr: u64) -> String {
    usize::try_from(nr)
        .ok()
        .and_then(Sysno::new)
        .map_or_else(|| format!("unknown_{nr}"), |s| s.name().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_x86_64_table() {
        assert_eq!(name(0), "read");
        assert_eq!(name(437), "openat2");
        assert_eq!(name(9999), "unknown_9999");
    }

    #[test]
    fn snapshot_serializes_counts_by_name() {
        let mut r = StatsRecorder::default();
        r.record(1, &Ok(5));
        r.record(1, &Err(Errno::EBADF));
        r.record(425, &Err(Errno::ENOSYS));
        let json = serde_json::to_value(r.snapshot()).unwrap();
        assert_eq!(json["total"], 3);
        assert_eq!(json["calls"]["write"], 2);
        assert_eq!(json["enosys"]["io_uring_setup"], 1);
        assert!(json["enosys"].get("write").is_none());
    }
}
