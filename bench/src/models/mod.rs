//! The isolation models, one file each, behind one seam: "give me the command that runs
//! `workload ARGS` as instance ID, tell me what you reported about its startup, and
//! clean up after it". Spawning, the `READY` line, deadlines and host cost are common to
//! all and live in [`crate::process`]. Adding a model is adding a file and a line in
//! [`all`].

pub mod container;
pub mod crun;
pub mod firecracker;
pub mod microvm;
pub mod microvm_linux;
pub mod native;
pub mod oci;
pub mod qemu;
pub mod runc;
pub mod youki;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::Command;

use crate::results::{CgroupMode, KvmFlavor, Measure, Phase};

/// Names of every model, in the order they are listed and run.
pub const MODEL_NAMES: &[&str] = &[
    "native",
    "container",
    "runc",
    "crun",
    "youki",
    "microvm",
    "microvm-linux",
    "qemu",
    "firecracker",
];

/// Every model, constructed for `env`, in [`MODEL_NAMES`] order.
pub fn all(env: &Env) -> Vec<Box<dyn Model>> {
    vec![
        Box::new(native::Native::new(env)),
        Box::new(container::Container::new(env)),
        Box::new(runc::model(env)),
        Box::new(crun::model(env)),
        Box::new(youki::model(env)),
        Box::new(microvm::Microvm::new(env)),
        Box::new(microvm_linux::MicrovmLinux::new(env)),
        Box::new(qemu::Qemu::new(env)),
        Box::new(firecracker::Firecracker::new(env)),
    ]
}

/// The models named in `names`, in the order given.
pub fn by_names(env: &Env, names: &[String]) -> Vec<Box<dyn Model>> {
    let mut every = all(env);
    names
        .iter()
        .filter_map(|n| {
            let i = every.iter().position(|m| m.name() == n)?;
            Some(every.remove(i))
        })
        .collect()
}

/// What every model needs to know about the host and the tools.
#[derive(Debug, Clone)]
pub struct Env {
    /// Where the binaries are.
    pub tools: Tools,
    /// A private scratch directory (bundles, initramfs), removed after the run.
    pub scratch: PathBuf,
    /// The KVM flavor of the host.
    pub kvm: KvmFlavor,
    /// The cgroup layout of the host.
    pub cgroups: CgroupMode,
}

/// Paths of the programs the models drive.
#[derive(Debug, Clone, PartialEq)]
pub struct Tools {
    /// The workload binary.
    pub workload: PathBuf,
    /// isolab's docker-like front end (`engine`).
    pub engine: PathBuf,
    /// isolab's OCI runtime (`engine-oci`).
    pub engine_oci: PathBuf,
    /// isolab's virtual machine monitor (`microvm`).
    pub microvm: PathBuf,
    /// A guest kernel (bzImage) for the Linux-guest models, if any.
    pub kernel: Option<PathBuf>,
    /// A firecracker binary, if any.
    pub firecracker: Option<PathBuf>,
}

/// One launch of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// A unique instance name (`isolab-bench-<pid>-<n>`), usable as a container id.
    pub id: String,
    /// The workload's arguments (`ready`, `cpu --iterations 100`, ...).
    pub args: Vec<String>,
    /// Run in the host's network namespace so a peer on the host's loopback is reachable.
    pub host_network: bool,
    /// A memory limit for the instance, MiB (honoured by the container models; the
    /// `limits` scenario uses it).
    pub memory_limit_mib: Option<u64>,
}

/// Guest RAM of a VM model when the workload needs no more, MiB.
pub const GUEST_MEM_MIB: u64 = 256;
/// What a Linux guest keeps for itself (kernel, initramfs, page cache) beside the
/// workload's buffers, MiB; the kernel-less guest needs less, the same margin serves.
const GUEST_MEM_HEADROOM_MIB: u64 = 128;

impl Launch {
    /// Guest RAM a VM model gives this launch: [`GUEST_MEM_MIB`], or more when the
    /// workload's buffers need it (`mem --size-mib N` copies between two buffers of N
    /// MiB). Guest RAM is mapped lazily on the host, so only what the guest touches costs.
    pub fn guest_mem_mib(&self) -> u64 {
        let size_mib = self
            .args
            .iter()
            .position(|a| a == "--size-mib")
            .and_then(|i| self.args.get(i + 1))
            .and_then(|n| n.parse::<u64>().ok());
        let needed = match (self.args.first().map(String::as_str), size_mib) {
            (Some("mem"), Some(n)) => 2 * n + GUEST_MEM_HEADROOM_MIB,
            (Some("fileio"), Some(n)) => n + GUEST_MEM_HEADROOM_MIB,
            _ => 0,
        };
        // The monitor takes an even number of MiB.
        needed.max(GUEST_MEM_MIB).next_multiple_of(2)
    }
}

/// What a model found when it prepared for this host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    /// The version of the tool behind the model.
    pub version: Option<String>,
    /// True when it runs under software emulation.
    pub emulated: bool,
    /// Something a reader should know about how it was set up.
    pub note: Option<String>,
}

/// How the workload sits on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A plain host process.
    Process,
    /// A host process inside namespaces and cgroups.
    Container,
    /// Inside a virtual machine; the host sees only the monitor.
    Guest,
}

/// What a launcher reported on stderr besides the workload's own output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Startup phases, in order.
    pub phases: Vec<Phase>,
    /// Extra figures (`exits_total`, `host_syscalls_reachable`, `guest_touched_kib`).
    pub metrics: BTreeMap<String, Measure>,
    /// Extra observations (`exit_reasons`, `kvm_flavor`).
    pub facts: BTreeMap<String, String>,
}

/// An isolation model.
pub trait Model: fmt::Debug {
    /// The model's name, one of [`MODEL_NAMES`].
    fn name(&self) -> &'static str;
    /// One line a reader understands.
    fn description(&self) -> &'static str;
    /// How the workload sits on the host.
    fn placement(&self) -> Placement;
    /// Checks the host and builds what every launch shares (bundles, initramfs).
    /// `Err` is the reason the model is skipped, with the fix where there is one.
    fn prepare(&mut self) -> Result<Prepared, String>;
    /// The command that runs one instance.
    fn command(&self, launch: &Launch) -> Result<Command, String>;
    /// Why this model cannot run `scenario`, when it cannot.
    fn unsupported(&self, _scenario: &str) -> Option<String> {
        None
    }
    /// Startup phases and other figures from the launcher's stderr.
    fn observe(&self, _stderr: &str) -> Observed {
        Observed::default()
    }
    /// Removes what instance `id` may have left behind after a failure or a kill.
    fn cleanup(&self, _id: &str) {}
}

/// Builds a `Phase` list from a JSON array of `{"name": .., "us": ..}`.
pub fn phases_from_json(v: &serde_json::Value) -> Vec<Phase> {
    let Some(list) = v.as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|p| {
            Some(Phase {
                name: p.get("name")?.as_str()?.to_owned(),
                us: p.get("us")?.as_f64()?,
            })
        })
        .collect()
}

/// The JSON of the last `PREFIX{json}` line of `text` (e.g. `TIMINGS `, `STATS `).
pub fn tagged_json(text: &str, prefix: &str) -> Option<serde_json::Value> {
    text.lines()
        .rev()
        .find_map(|l| l.find(prefix).map(|i| &l[i + prefix.len()..]))
        .and_then(|json| serde_json::from_str(json.trim()).ok())
}

/// The first line of `PROGRAM --version`, when it runs.
pub fn tool_version(program: &std::path::Path) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
}

/// `name` found in `PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A `Measure` with `unit`.
pub fn measure(value: f64, unit: &str) -> Measure {
    Measure {
        value,
        unit: unit.to_owned(),
    }
}

/// Number of distinct system calls the host kernel offers (`__x64_sys_*` entries of
/// `/proc/kallsyms`): the surface a process without seccomp can reach.
pub fn host_syscall_count() -> Option<usize> {
    // Read once: kallsyms is large, and the answer does not change during a run.
    static COUNT: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| count_syscalls(&std::fs::read_to_string("/proc/kallsyms").ok()?))
}

fn count_syscalls(kallsyms: &str) -> Option<usize> {
    let names: std::collections::BTreeSet<&str> = kallsyms
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.strip_prefix("__x64_sys_"))
        .collect();
    (!names.is_empty()).then_some(names.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(args: &[&str]) -> Launch {
        Launch {
            id: "i".into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            host_network: false,
            memory_limit_mib: None,
        }
    }

    #[test]
    fn guest_memory_grows_with_the_workloads_buffers() {
        assert_eq!(launch(&["ready"]).guest_mem_mib(), GUEST_MEM_MIB);
        assert_eq!(launch(&["mem", "--size-mib", "16"]).guest_mem_mib(), 256);
        // Two 128 MiB buffers do not fit in 256 MiB beside the guest's own memory.
        assert_eq!(launch(&["mem", "--size-mib", "128"]).guest_mem_mib(), 384);
        assert_eq!(launch(&["mem", "--size-mib", "301"]).guest_mem_mib(), 730);
        assert_eq!(
            launch(&["fileio", "--size-mib", "200", "--files", "10"]).guest_mem_mib(),
            328
        );
        assert_eq!(launch(&["cpu", "--size-mib", "999"]).guest_mem_mib(), 256);
    }

    #[test]
    fn tagged_json_takes_the_last_line_after_noise() {
        let err = "warn: x\nTIMINGS {\"phases\":[{\"name\":\"a\",\"us\":1.5}]}\n\
                   [ 1.0] STATS {\"phases\":[{\"name\":\"create_vm\",\"us\":2}]}\n";
        let t = tagged_json(err, "TIMINGS ").unwrap();
        assert_eq!(phases_from_json(&t["phases"])[0].name, "a");
        let s = tagged_json(err, "STATS ").unwrap();
        assert_eq!(phases_from_json(&s["phases"])[0].us, 2.0);
        assert!(tagged_json("nothing", "STATS ").is_none());
    }

    #[test]
    fn syscalls_are_counted_once() {
        let k = "0 T __x64_sys_read\n0 T __x64_sys_write\n0 t __x64_sys_read\n0 T other\n";
        assert_eq!(count_syscalls(k), Some(2));
        assert_eq!(count_syscalls(""), None);
    }

    #[test]
    fn every_name_has_a_model() {
        let env = Env {
            tools: Tools {
                workload: "/w".into(),
                engine: "/e".into(),
                engine_oci: "/o".into(),
                microvm: "/m".into(),
                kernel: None,
                firecracker: None,
            },
            scratch: "/tmp".into(),
            kvm: KvmFlavor::None,
            cgroups: CgroupMode::V2,
        };
        let names: Vec<&str> = all(&env).iter().map(|m| m.name()).collect();
        assert_eq!(names, MODEL_NAMES);
    }
}
