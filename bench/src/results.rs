//! The results file, `results.json`: the one source the terminal table, the plots and
//! the reports all read. It is rewritten after every sample, so an interrupted run keeps
//! everything it measured (`finished_at` stays `None`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use engine::cgroups::mode::CgroupMode;
pub use microvm::kvm_flavor::KvmFlavor;
pub use workload::result::Measure;

/// The version of this schema; bump it on an incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one `bench run` measured on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Schema version of this file ([`SCHEMA_VERSION`] when written).
    pub schema_version: u32,
    /// What the host is, so results from different machines can be told apart.
    pub host: HostFacts,
    /// How the run was configured.
    pub config: RunConfig,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When the run finished; `None` when it was interrupted or is still running.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Every model asked for, whether it ran or was skipped, and why.
    pub models: Vec<ModelStatus>,
    /// One entry per (model, scenario, parameters), in the order first measured.
    pub scenarios: Vec<ScenarioResult>,
}

/// Facts about the host the run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    /// The host's name.
    pub hostname: String,
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Online logical CPUs.
    pub cores: u32,
    /// Total memory in bytes (`MemTotal`).
    pub memory_bytes: u64,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// The KVM implementation behind `/dev/kvm`.
    pub kvm_flavor: KvmFlavor,
    /// The cgroup layout.
    pub cgroup_mode: CgroupMode,
    /// CPU vulnerability mitigations, file name to state, from
    /// `/sys/devices/system/cpu/vulnerabilities`.
    #[serde(default)]
    pub mitigations: BTreeMap<String, String>,
    /// Whether the harness ran as root.
    pub is_root: bool,
    /// isolab's version (`CARGO_PKG_VERSION`, plus the git commit when known).
    pub isolab_version: String,
    /// When the facts were read (RFC 3339, UTC).
    pub date: String,
}

/// The options a run was started with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Models asked for, in order.
    pub models: Vec<String>,
    /// Scenarios asked for, in order.
    pub scenarios: Vec<String>,
    /// Measured iterations per (model, scenario).
    pub iterations: u32,
    /// Warm-up iterations run first and discarded.
    pub warmup: u32,
    /// Seed of the interleaving order.
    pub seed: u64,
    /// Whether `--quick` sizes were used.
    pub quick: bool,
    /// Instance counts of the density scenario.
    #[serde(default)]
    pub density: Vec<u32>,
}

/// Whether a model could run on this host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStatus {
    /// The model's name (`native`, `container`, `runc`, `microvm`, `qemu`, ...).
    pub name: String,
    /// One line a reader understands: what this model is.
    pub description: String,
    /// Whether it ran.
    pub available: bool,
    /// Why it did not run, when it did not.
    #[serde(default)]
    pub skip_reason: Option<String>,
    /// True when the model runs under software emulation (e.g. qemu with TCG); such
    /// figures are labelled "emulated" wherever they appear.
    #[serde(default)]
    pub emulated: bool,
    /// The version of the tool behind the model, when one is found (`runc --version`).
    #[serde(default)]
    pub version: Option<String>,
}

/// The samples and summary of one model in one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// The model's name.
    pub model: String,
    /// The scenario (`startup`, `memory`, `density`, `cpu`, `mem`, `syscall`,
    /// `fileio`, `net`, `isolation`, ...).
    pub scenario: String,
    /// Scenario parameters, e.g. `{"instances": "10"}` for density.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// Every measured sample, warm-ups excluded, in the order taken.
    pub samples: Vec<Sample>,
    /// Per metric name: statistics over the successful samples.
    #[serde(default)]
    pub summary: BTreeMap<String, Summary>,
    /// Why this model did not run this scenario, when it could not (e.g. no network
    /// path from a Linux guest to the host peer); `samples` is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// One iteration of one model in one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Iteration number, from 0, warm-ups excluded.
    pub iteration: u32,
    /// False when the instance failed (crash, timeout, bad output); see `error`.
    pub ok: bool,
    /// What went wrong, for a failed sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Figures by metric name, e.g. `launch_to_ready_ms`, `pss_kib`, `cpu.ops_per_s`.
    #[serde(default)]
    pub metrics: BTreeMap<String, Measure>,
    /// Startup phases the engine or the monitor reported, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
    /// Textual observations, e.g. what `info` saw (`kernel_release`, `hostname`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, String>,
}

/// One named step of an instance's startup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Step name as the tool reported it (`clone_namespaces`, `create_vm`, ...).
    pub name: String,
    /// Its duration in microseconds.
    pub us: f64,
}

/// Statistics of one metric over the successful samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The metric's unit.
    pub unit: String,
    /// Number of samples summarised.
    pub n: usize,
    /// Median.
    pub median: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// 5th percentile.
    pub p5: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Median absolute deviation (unscaled).
    pub mad: f64,
    /// Samples further than the outlier threshold from the median (in MADs).
    pub outliers: usize,
    /// A warning a reader can act on, when the spread or outliers make the figure
    /// doubtful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Reading or writing a results file failed.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a results file of this schema.
    #[error("parsing {path} (is it a results.json written by `bench run`?)")]
    Parse {
        /// The file.
        path: String,
        /// The underlying error.
        source: serde_json::Error,
    },
}

impl Results {
    /// Reads a results file.
    pub fn load(path: &Path) -> Result<Self, ResultsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Io {
            action: "reading",
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ResultsError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// Writes the file atomically (temp file, then rename), so a reader or an
    /// interruption never sees half a file.
    pub fn save(&self, path: &Path) -> Result<(), ResultsError> {
        let io = |action, source| ResultsError::Io {
            action,
            path: path.display().to_string(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| io("serializing", e.into()))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(|e| io("writing", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("renaming into", e))
    }

    /// The result of `model` in `scenario` with exactly `params`, if measured.
    pub fn scenario(
        &self,
        model: &str,
        scenario: &str,
        params: &BTreeMap<String, String>,
    ) -> Option<&ScenarioResult> {
        self.scenarios
            .iter()
            .find(|s| s.model == model && s.scenario == scenario && &s.params == params)
    }
}
