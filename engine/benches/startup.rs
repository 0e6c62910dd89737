//! Startup cost of a container, step by step: runs `engine-oci run --timings` of
//! `workload ready` (or static busybox `true` when no workload binary is built) many times,
//! interleaved with runc and crun when they run the bundle here, and prints the median and
//! p90 of each startup step, of each runtime's wall time and of its peak RSS.
//!
//! Needs root. Build the workload first (`cargo build --release -p workload`): it is taken
//! from beside `engine-oci`, or from `ISOLAB_BENCH_WORKLOAD`. `ISOLAB_BENCH_RUNS` sets the
//! number of runs (default 30); `ISOLAB_BENCH_ALSO=/path/a:/path/b` adds other runtimes or
//! engine-oci builds (e.g. an older one, for before/after figures) to the interleaving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The workload binary: `ISOLAB_BENCH_WORKLOAD`, else `workload` beside `engine-oci`.
fn workload_binary(engine_oci: &Path) -> Option<PathBuf> {
    let path = match std::env::var_os("ISOLAB_BENCH_WORKLOAD") {
        Some(p) => PathBuf::from(p),
        None => engine_oci.parent()?.join("workload"),
    };
    path.is_file().then_some(path)
}

/// A bundle running `workload ready` when a workload binary is given, else busybox `true`.
fn bundle(dir: &Path, workload: Option<&Path>) -> String {
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let (args, label) = match workload {
        Some(w) => {
            std::fs::copy(w, bin.join("workload")).unwrap();
            (
                vec!["/bin/workload".into(), "ready".into()],
                "workload ready",
            )
        }
        None => {
            std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
            std::os::unix::fs::symlink("busybox", bin.join("true")).unwrap();
            (vec!["/bin/true".into()], "busybox true")
        }
    };
    let mut spec = oci_spec::runtime::Spec::default();
    let mut process = spec.process().clone().unwrap();
    process.set_terminal(Some(false));
    process.set_args(Some(args));
    spec.set_process(Some(process));
    spec.save(dir.join("config.json")).unwrap();
    label.into()
}

/// Where the runtimes keep their state: `ISOLAB_BENCH_STATE`, else /dev/shm, a tmpfs as
/// /run (runc's and engine-oci's default roots) is on most hosts. On a disk file system
/// each state.json rewrite can wait for a flush (ext4 flushes a file renamed over another).
fn state_parent() -> tempfile::TempDir {
    let parent = std::env::var_os("ISOLAB_BENCH_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/shm"));
    tempfile::Builder::new()
        .prefix("isolab-bench-")
        .tempdir_in(&parent)
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * p).round() as usize]
}

/// One run: wall ms, peak RSS in KiB (the runtime or anything it reaped), TIMINGS json.
struct Sample {
    ms: f64,
    max_rss_kib: f64,
    timings: Option<String>,
}

/// waitpid with the child's resource usage (std's `wait` does not return it).
fn wait_with_rusage(child: &std::process::Child) -> Result<(i32, libc::rusage), String> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are valid for writes for the whole call; the pid is our
    // unreaped child, so wait4 cannot reap an unrelated process.
    let ret = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    if ret < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    Ok((status, usage))
}

/// One line per runtime: median and p90 of its samples.
fn print_by_runtime(samples: BTreeMap<String, Vec<f64>>, ours: &str) {
    for (name, mut v) in samples {
        let label = if name == ours { "engine-oci" } else { &name };
        println!(
            "  {label:<20} median {:>7.2}  p90 {:>7.2}",
            percentile(&mut v, 0.5),
            percentile(&mut v, 0.9)
        );
    }
}

/// engine-oci builds print a TIMINGS line with `--timings`.
fn is_engine_oci(runtime: &str) -> bool {
    Path::new(runtime)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("engine-oci"))
}

fn run_once(runtime: &str, root: &Path, bundle: &Path, id: &str) -> Result<Sample, String> {
    let mut cmd = Command::new(runtime);
    cmd.arg("--root")
        .arg(root)
        .args(["run", "-b"])
        .arg(bundle)
        .arg(id);
    if is_engine_oci(runtime) {
        cmd.arg("--timings");
    }
    let log = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let stderr_file = log.reopen().map_err(|e| e.to_string())?;
    let since = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_file)
        .spawn()
        .map_err(|e| format!("{runtime}: {e}"))?;
    let (status, usage) = wait_with_rusage(&child)?;
    let ms = since.elapsed().as_secs_f64() * 1e3;
    let stderr = std::fs::read_to_string(log.path()).unwrap_or_default();
    if status != 0 {
        return Err(format!(
            "{runtime} failed (wait status {status}): {}",
            stderr.trim()
        ));
    }
    let timings = stderr
        .lines()
        .find_map(|l| l.strip_prefix("TIMINGS ").map(String::from));
    Ok(Sample {
        ms,
        max_rss_kib: usage.ru_maxrss as f64,
        timings,
    })
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping the startup benchmark: it needs root (namespaces, cgroups, mounts)");
        return;
    }
    let runs: usize = std::env::var("ISOLAB_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let state = state_parent();
    let ours = env!("CARGO_BIN_EXE_engine-oci").to_string();
    let program = bundle(
        &dir.path().join("bundle"),
        workload_binary(Path::new(&ours)).as_deref(),
    );
    let mut runtimes = vec![ours.clone()];
    let also = std::env::var("ISOLAB_BENCH_ALSO").unwrap_or_default();
    let others = ["crun", "runc"]
        .into_iter()
        .chain(also.split(':').filter(|s| !s.is_empty()));
    for other in others {
        // Compare only with runtimes that run this bundle here (crun 1.8 refuses hybrid cgroups).
        let root = state
            .path()
            .join(format!("state-probe-{}", other.replace('/', "_")));
        match run_once(
            other,
            &root,
            &dir.path().join("bundle"),
            "isolab-bench-probe",
        ) {
            Ok(_) => runtimes.push(other.into()),
            Err(e) => eprintln!("not compared: {e}"),
        }
    }
    let mut wall: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut rss: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    // In the order the steps ran.
    let mut phases: Vec<(String, Vec<f64>)> = Vec::new();
    for i in 0..runs + 3 {
        // Interleaved so drift hits every runtime alike; the first 3 rounds warm caches.
        for runtime in &runtimes {
            let root = state
                .path()
                .join(format!("state-{}", runtime.replace('/', "_")));
            let sample = run_once(
                runtime,
                &root,
                &dir.path().join("bundle"),
                &format!("isolab-bench-{i}"),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            if i < 3 {
                continue;
            }
            wall.entry(runtime.clone()).or_default().push(sample.ms);
            rss.entry(runtime.clone())
                .or_default()
                .push(sample.max_rss_kib / 1024.0);
            if *runtime != ours {
                continue;
            }
            let parsed: serde_json::Value = sample
                .timings
                .map(|t| serde_json::from_str(&t).unwrap())
                .unwrap_or_default();
            for p in parsed["phases"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or("?").to_string();
                let ms = p["us"].as_f64().unwrap_or(0.0) / 1e3;
                match phases.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, v)) => v.push(ms),
                    None => phases.push((name, vec![ms])),
                }
            }
        }
    }
    println!("engine-oci startup steps over {runs} runs (ms):");
    for (name, mut v) in phases {
        println!(
            "  {name:<20} median {:>7.2}  p90 {:>7.2}",
            percentile(&mut v, 0.5),
            percentile(&mut v, 0.9)
        );
    }
    println!("wall time of `run` of {program}, start to exit (ms):");
    let medians: BTreeMap<String, f64> = wall
        .iter_mut()
        .map(|(name, v)| (name.clone(), percentile(v, 0.5)))
        .collect();
    print_by_runtime(wall, &ours);
    println!("peak RSS of the runtime or anything it reaped (MiB):");
    print_by_runtime(rss, &ours);
    if let (Some(ours), Some(runc)) = (medians.get(&ours), medians.get("runc")) {
        println!(
            "engine-oci / runc median wall time: {:.2} (target: at most 0.5)",
            ours / runc
        );
    }
}
