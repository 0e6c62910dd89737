//! What `--stats` reports: the time of each start-up phase, and the count and time of
//! vCPU exits per reason and per port. Printed at exit as one `STATS {json}` line on
//! stderr, which the bench harness parses.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::kvm_flavor::KvmFlavor;

/// One phase of a VM's life.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Phase {
    /// "create_vm", "memory", "vcpu_setup", "load", "first_instruction", "ready", "exit".
    pub name: String,
    /// How long the phase took, in microseconds (since the previous phase ended).
    pub us: f64,
    /// When the phase ended, in microseconds since the monitor started.
    pub at_us: f64,
}

/// Phases in the order they ended.
#[derive(Debug, Clone)]
pub struct Phases {
    start: Instant,
    last: Instant,
    list: Vec<Phase>,
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

impl Phases {
    /// Starts the clock at `start` (the monitor's start).
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            last: start,
            list: Vec::new(),
        }
    }

    /// Ends phase `name` now.
    pub fn mark(&mut self, name: &str) {
        self.mark_at(name, Instant::now());
    }

    /// Ends phase `name` at `at` (a timestamp taken elsewhere, e.g. by a device).
    pub fn mark_at(&mut self, name: &str, at: Instant) {
        let at = at.max(self.last);
        self.list.push(Phase {
            name: name.to_owned(),
            us: micros(at - self.last),
            at_us: micros(at - self.start),
        });
        self.last = at;
    }

    /// The phases so far.
    pub fn list(&self) -> &[Phase] {
        &self.list
    }
}

/// A count and a total time.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Counter {
    /// How many.
    pub count: u64,
    /// Their total time, in microseconds.
    pub total_us: f64,
}

impl Counter {
    fn add(&mut self, time: Duration) {
        self.count += 1;
        self.total_us += micros(time);
    }
}

/// Host memory of the monitor process, to tell the monitor's own cost from the guest's.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Peak resident set of the whole monitor process (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// Guest memory resident in host RAM (the pages the guest and loader touched), KiB.
    pub touched_kib: u64,
}

impl MemoryUsage {
    /// The monitor's peak RSS now, and `guest_resident` bytes of guest memory; `None`
    /// where /proc is not mounted.
    pub fn measure(guest_resident: u64) -> Option<Self> {
        use std::io::Read;
        // A stack buffer and a byte scan: the measurement should not fault in code
        // and heap of its own before reading the peak it reports.
        let mut buf = [0u8; 4096];
        let mut file = std::fs::File::open("/proc/self/status").ok()?;
        let mut len = 0;
        while len < buf.len() {
            match file.read(&mut buf[len..]).ok()? {
                0 => break,
                n => len += n,
            }
        }
        Some(Self {
            peak_rss_kib: status_kib(&buf[..len], b"VmHWM:")?,
            touched_kib: guest_resident >> 10,
        })
    }
}

/// The `kB` value of field `key` in a /proc/PID/status text.
fn status_kib(status: &[u8], key: &[u8]) -> Option<u64> {
    let at = status.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = status[at..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit());
    digits.fold(None, |n: Option<u64>, &d| {
        Some(n.unwrap_or(0).checked_mul(10)? + u64::from(d - b'0'))
    })
}

/// vCPU exits counted by reason and by port.
#[derive(Debug, Clone, Default)]
pub struct ExitStats {
    /// Per exit reason.
    pub exits: BTreeMap<&'static str, Counter>,
    /// Per I/O port.
    pub ports: BTreeMap<u16, Counter>,
}

impl ExitStats {
    /// Counts one exit that the monitor spent `time` handling.
    pub fn record(&mut self, reason: &'static str, port: Option<u16>, time: Duration) {
        self.exits.entry(reason).or_default().add(time);
        if let Some(port) = port {
            self.ports.entry(port).or_default().add(time);
        }
    }
}

/// The `STATS {json}` line.
#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    /// The KVM flavor the VM ran on.
    pub kvm_flavor: KvmFlavor,
    /// Guest memory size, in MiB.
    pub mem_mib: u64,
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// Exits per reason.
    pub exits: BTreeMap<&'static str, Counter>,
    /// Exits per port, keyed "0x3f8".
    pub ports: BTreeMap<String, Counter>,
    /// The syscall layer's own stats (kernel-less guest), or null.
    pub syscalls: serde_json::Value,
    /// The guest's exit code, when it exited on its own.
    pub exit_code: Option<i32>,
    /// The monitor's memory at the end of the run (`--stats` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryUsage>,
    /// Whether trap handlers read and wrote the guest registers in the `kvm_run` page
    /// (`KVM_CAP_SYNC_REGS`) rather than by ioctl; absent for guests without traps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_regs: Option<bool>,
}

impl StatsReport {
    /// Builds the report.
    pub fn new(flavor: KvmFlavor, mem_mib: u64, phases: &Phases, exits: &ExitStats) -> Self {
        Self {
            kvm_flavor: flavor,
            mem_mib,
            phases: phases.list().to_vec(),
            exits: exits.exits.clone(),
            ports: exits
                .ports
                .iter()
                .map(|(p, c)| (format!("{p:#x}"), *c))
                .collect(),
            syscalls: serde_json::Value::Null,
            exit_code: None,
            sync_regs: None,
            memory: None,
        }
    }

    /// The line to print.
    pub fn line(&self) -> String {
        // Serializing plain maps, strings and numbers cannot fail.
        format!("STATS {}", serde_json::to_string(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_read_from_proc_status() {
        let status = b"Name:\tmicrovm\nVmPeak:\t  9000 kB\nVmHWM:\t    2100 kB\n";
        assert_eq!(status_kib(status, b"VmHWM:"), Some(2100));
        assert_eq!(status_kib(status, b"VmRSS:"), None);
        let now = MemoryUsage::measure(8 << 10).unwrap();
        assert!(now.peak_rss_kib > 0);
        assert_eq!(now.touched_kib, 8);
    }

    #[test]
    fn phases_are_durations_since_the_previous_mark() {
        let start = Instant::now();
        let mut phases = Phases::new(start);
        phases.mark_at("create_vm", start + Duration::from_micros(100));
        phases.mark_at("memory", start + Duration::from_micros(150));
        // A timestamp from before the last mark (a device racing) counts as zero.
        phases.mark_at("ready", start + Duration::from_micros(120));
        let got: Vec<_> = phases
            .list()
            .iter()
            .map(|p| (p.name.as_str(), p.us.round(), p.at_us.round()))
            .collect();
        assert_eq!(
            got,
            [
                ("create_vm", 100.0, 100.0),
                ("memory", 50.0, 150.0),
                ("ready", 0.0, 150.0)
            ]
        );
    }

    #[test]
    fn report_has_the_fields_bench_parses() {
        let mut exits = ExitStats::default();
        exits.record("io_out", Some(0x3f8), Duration::from_micros(7));
        exits.record("io_out", Some(0x3f8), Duration::from_micros(3));
        exits.record("hlt", None, Duration::ZERO);
        let mut phases = Phases::new(Instant::now());
        phases.mark("create_vm");
        let line = StatsReport::new(KvmFlavor::Pvm, 64, &phases, &exits).line();
        let json: serde_json::Value =
            serde_json::from_str(line.strip_prefix("STATS ").unwrap()).unwrap();
        assert_eq!(json["kvm_flavor"], "pvm");
        assert_eq!(json["phases"][0]["name"], "create_vm");
        assert_eq!(json["exits"]["io_out"]["count"], 2);
        assert_eq!(
            json["ports"]["0x3f8"]["total_us"].as_f64().unwrap().round(),
            10.0
        );
        assert_eq!(json["exits"]["hlt"]["count"], 1);
    }
}
