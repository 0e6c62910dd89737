//! RUN steps of a build: the image so far is flattened into a scratch bundle, the
//! command runs there (under isolab's runtime, or a runc-compatible binary given with
//! `--runtime`), and what it changed (new or modified entries, and whiteouts for deleted
//! ones) becomes the step's layer.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use oci_spec::image::ImageConfigurationBuilder;

use super::build::State;
use super::bundle::{self, BundleError, Overrides};
use super::layer::{self, Layer, LayerError, LayerWriter, Metadata};
use super::store::{ImageStore, StoreError};
use super::unpack::{self, UnpackError};

/// What went wrong running a RUN step.
#[derive(Debug, thiserror::Error)]
pub enum RunStepError {
    #[error("starting the runtime {runtime}: {source} (choose one with --runtime)")]
    Spawn { runtime: PathBuf, source: io::Error },
    #[error("the command {command:?} failed: {status}")]
    Failed {
        command: Vec<String>,
        status: String,
    },
    #[error(transparent)]
    Container(#[from] crate::container::ContainerError),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, RunStepError>;

/// What identifies a file's state: if any of it moved, the RUN changed the file.
type Stamp = (u32, u32, u32, u64, i64, i64, i64, i64, u64);

/// Runs `args` on the image `state` describes and returns the layer of its changes.
pub(crate) fn run(
    store: &ImageStore,
    runtime: Option<&Path>,
    state: &State,
    args: &[String],
) -> Result<Layer> {
    let scratch = store.dir().join("tmp");
    fs::create_dir_all(&scratch).map_err(io_err("creating", &scratch))?;
    let work = tempfile::Builder::new()
        .prefix("isolab-run-")
        .tempdir_in(&scratch)
        .map_err(io_err("creating a directory in", &scratch))?;
    let rootfs = work.path().join("rootfs");
    fs::create_dir(&rootfs).map_err(io_err("creating", &rootfs))?;
    unpack::flatten_layers(store, &state.layers, &rootfs)?;
    let before = snapshot(&rootfs)?;
    let mountpoints = write_spec(work.path(), state, args)?;
    let id = container_id(work.path());
    match runtime {
        Some(binary) => execute_external(binary, work.path(), &id, args)?,
        None => execute_builtin(&scratch.join("state"), work.path(), &id, args)?,
    }
    let after = snapshot(&rootfs)?;
    let mut writer = LayerWriter::new(store, Metadata::Preserved)?;
    write_changes(&mut writer, &rootfs, &before, &after, &mountpoints)?;
    Ok(writer.finish()?)
}

/// Writes `config.json`; returns the mount destinations (the runtime may create them).
fn write_spec(bundle: &Path, state: &State, args: &[String]) -> Result<HashSet<PathBuf>> {
    let mut config = state.config.clone();
    config.set_entrypoint(None);
    config.set_cmd(Some(args.to_vec()));
    let image = ImageConfigurationBuilder::default()
        .config(config)
        .rootfs(layer::rootfs_of(Vec::new()))
        .build()
        .expect("all fields set");
    let overrides = Overrides {
        hostname: Some("isolab-build".into()),
        ..Overrides::default()
    };
    let spec = bundle::runtime_spec(&image, &overrides, &[bundle.join("rootfs")])?;
    let path = bundle.join("config.json");
    spec.save(&path)
        .map_err(|source| BundleError::Spec { path, source })?;
    let mounts = spec.mounts().clone().unwrap_or_default();
    Ok(mounts
        .iter()
        .map(|m| {
            m.destination()
                .strip_prefix("/")
                .unwrap_or(m.destination())
                .to_path_buf()
        })
        .collect())
}

/// A container id unique to this step (the scratch dir's random name).
fn container_id(bundle: &Path) -> String {
    let name = bundle
        .file_name()
        .expect("tempdir has a name")
        .to_string_lossy();
    format!(
        "isolab-build-{}",
        name.trim_start_matches("isolab-run-").to_lowercase()
    )
}

/// Runs the step with isolab's runtime library: create, start, wait, delete.
fn execute_builtin(state_root: &Path, bundle: &Path, id: &str, args: &[String]) -> Result<()> {
    let runtime = crate::container::Runtime::new(state_root);
    let opts = crate::container::CreateOptions::default();
    let info = runtime.run(id, bundle, &opts, |_| {})?;
    match info.code {
        Some(0) => Ok(()),
        code => Err(RunStepError::Failed {
            command: args.to_vec(),
            status: match (code, info.signal) {
                (_, Some(sig)) => format!("killed by signal {sig}"),
                (Some(code), None) => format!("exit status: {code}"),
                (None, None) => "exit status unknown".into(),
            },
        }),
    }
}

/// Runs the step with a runc-compatible binary (`runc run --bundle B ID`).
fn execute_external(runtime: &Path, bundle: &Path, id: &str, args: &[String]) -> Result<()> {
    let status = Command::new(runtime)
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .status()
        .map_err(|source| RunStepError::Spawn {
            runtime: runtime.to_path_buf(),
            source,
        })?;
    // `run` deletes the container when it exits; this covers a runtime that did not.
    let _ = Command::new(runtime)
        .args(["delete", "--force", id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !status.success() {
        return Err(RunStepError::Failed {
            command: args.to_vec(),
            status: status.to_string(),
        });
    }
    Ok(())
}

/// Every entry under `root` (not the root itself) with its stamp.
fn snapshot(root: &Path) -> Result<BTreeMap<PathBuf, Stamp>> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let entry = entry.map_err(|e| io_err("scanning", root)(e.into()))?;
        let m = entry
            .path()
            .symlink_metadata()
            .map_err(io_err("inspecting", entry.path()))?;
        let stamp = (
            m.mode(),
            m.uid(),
            m.gid(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
            m.ino(),
        );
        out.insert(
            entry
                .path()
                .strip_prefix(root)
                .expect("under root")
                .to_path_buf(),
            stamp,
        );
    }
    Ok(out)
}

/// Adds what changed between two snapshots: new and modified entries (sorted, so
/// parents come first) and a whiteout for each deleted entry whose parent survived.
fn write_changes(
    writer: &mut LayerWriter<'_>,
    rootfs: &Path,
    before: &BTreeMap<PathBuf, Stamp>,
    after: &BTreeMap<PathBuf, Stamp>,
    mountpoints: &HashSet<PathBuf>,
) -> Result<()> {
    for (rel, stamp) in after {
        let created_mountpoint = !before.contains_key(rel) && mountpoints.contains(rel);
        if before.get(rel) != Some(stamp) && !created_mountpoint {
            writer.add_entry(&rootfs.join(rel), &format!("/{}", rel.display()))?;
        }
    }
    for rel in before.keys().filter(|r| !after.contains_key(*r)) {
        let parent_gone = rel
            .parent()
            .is_some_and(|p| !p.as_os_str().is_empty() && !after.contains_key(p));
        if !parent_gone {
            writer.add_whiteout(&format!("/{}", rel.display()))?;
        }
    }
    Ok(())
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RunStepError {
    let path = path.to_path_buf();
    move |source| RunStepError::Io {
        action,
        path,
        source,
    }
}
