//! `engine image build`: runs a Containerfile step by step. Steps that change files
//! become layers; each such step has a cache key (its parent's key, its text and the
//! content of its inputs), and a step whose key is already in the build cache reuses
//! the cached layer and says `Using cache`.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Config, Descriptor, ImageConfiguration, ImageConfigurationBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::bundle::BundleError;
use super::containerfile::{self, ContainerfileError, Instruction, Step};
use super::layer::{self, Layer, LayerError, LayerWriter, Metadata};
use super::reference::Reference;
use super::run_step::{self, RunStepError};
use super::store::{ImageStore, StoreError};
use super::unpack::{self, Limits, Mode, UnpackError};

/// What went wrong in a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Containerfile(#[from] ContainerfileError),
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("Containerfile line {line}: {what} {src:?}: {reason}")]
    Source {
        line: usize,
        what: &'static str,
        src: String,
        reason: String,
    },
    #[error("Containerfile line {line}: base image {name}: {source}")]
    BaseImage {
        line: usize,
        name: String,
        source: Box<StoreError>,
    },
    #[error("Containerfile line {line}: {source}")]
    Layer { line: usize, source: LayerError },
    #[error("Containerfile line {line}: unpacking {src}: {source}")]
    Archive {
        line: usize,
        src: String,
        source: UnpackError,
    },
    #[error("Containerfile line {line}: RUN: {source}")]
    Run { line: usize, source: RunStepError },
    #[error("writing build output: {0}")]
    Output(io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

type Result<T> = std::result::Result<T, BuildError>;

/// What `engine image build` was asked.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The build context: COPY and ADD sources are relative to it and must stay in it.
    pub context: PathBuf,
    /// The Containerfile (default `CONTEXT/Containerfile`, else `CONTEXT/Dockerfile`).
    pub containerfile: PathBuf,
    pub tag: Reference,
    /// Build every step even when the cache has it.
    pub no_cache: bool,
    /// The runc-compatible runtime binary that executes RUN steps; `None` runs them with
    /// isolab's own runtime, in process.
    pub runtime: Option<PathBuf>,
}

/// How one step was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Only the image config changed.
    Config,
    /// A layer from an earlier build was reused.
    Cached(Layer),
    /// A new layer was written.
    Built(Layer),
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The manifest digest: the image id.
    pub id: oci_spec::image::Digest,
    pub steps: Vec<StepOutcome>,
}

/// The image as it stands after the steps so far.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) layers: Vec<Descriptor>,
    diff_ids: Vec<String>,
    history: Vec<oci_spec::image::History>,
    /// Cache key of the image so far (hex sha256).
    key: String,
}

/// A build cache entry, `<root>/images/build-cache/<key>.json`.
#[derive(Debug, Serialize, Deserialize)]
struct CacheEntry {
    layer: Descriptor,
    diff_id: String,
}

/// Builds the image and tags it, printing each step to `out`.
pub fn build(store: &ImageStore, opts: &BuildOptions, out: &mut dyn Write) -> Result<BuildOutcome> {
    let path = &opts.containerfile;
    let text = fs::read_to_string(path).map_err(|source| BuildError::Read {
        path: path.clone(),
        source,
    })?;
    let steps = containerfile::parse(&text)?;
    let context = fs::canonicalize(&opts.context).map_err(|source| BuildError::Read {
        path: opts.context.clone(),
        source,
    })?;
    let mut state = State::default();
    let mut outcomes = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        writeln!(out, "STEP {}/{}: {}", i + 1, steps.len(), step.text)
            .map_err(BuildError::Output)?;
        let outcome = apply(store, opts, &context, &mut state, step)?;
        report(out, &outcome).map_err(BuildError::Output)?;
        outcomes.push(outcome);
    }
    let id = store.put_image(&opts.tag, &image_config(&state), state.layers.clone())?;
    writeln!(out, "Successfully tagged {}\n{}", opts.tag, id).map_err(BuildError::Output)?;
    Ok(BuildOutcome {
        id,
        steps: outcomes,
    })
}

fn report(out: &mut dyn Write, outcome: &StepOutcome) -> io::Result<()> {
    match outcome {
        StepOutcome::Config => Ok(()),
        StepOutcome::Cached(l) => writeln!(out, "--> Using cache {}", l.descriptor.digest()),
        StepOutcome::Built(l) => {
            writeln!(
                out,
                "--> New layer {} ({} bytes)",
                l.descriptor.digest(),
                l.descriptor.size()
            )
        }
    }
}

fn image_config(state: &State) -> ImageConfiguration {
    ImageConfigurationBuilder::default()
        .config(state.config.clone())
        .rootfs(layer::rootfs_of(state.diff_ids.clone()))
        .history(state.history.clone())
        .build()
        .expect("all fields set")
}

fn apply(
    store: &ImageStore,
    opts: &BuildOptions,
    context: &Path,
    state: &mut State,
    step: &Step,
) -> Result<StepOutcome> {
    let line = step.line;
    match &step.instruction {
        Instruction::From(base) => from(store, state, line, base.as_deref()),
        Instruction::Workdir(dir) => {
            let dir = absolute(state, dir);
            state.config.set_working_dir(Some(dir.clone()));
            layer_step(store, opts, state, step, dir.as_bytes().to_vec(), |w, _| {
                w.add_dir(&dir)
                    .map_err(|source| BuildError::Layer { line, source })
            })
        }
        Instruction::Copy { sources, dest } => {
            copy_step(store, opts, context, state, step, sources, dest, false)
        }
        Instruction::Add { sources, dest } => {
            copy_step(store, opts, context, state, step, sources, dest, true)
        }
        Instruction::Run(args) => run_step(store, opts, state, step, args),
        config_only => {
            set_config(&mut state.config, config_only);
            Ok(config_step(state, step))
        }
    }
}

/// Applies ENV, LABEL, ENTRYPOINT or CMD to the image config.
fn set_config(config: &mut Config, instruction: &Instruction) {
    match instruction {
        Instruction::Env(pairs) => {
            let mut env = config.env().clone().unwrap_or_default();
            for (k, v) in pairs {
                env.retain(|e| e.split_once('=').map(|(key, _)| key) != Some(k));
                env.push(format!("{k}={v}"));
            }
            config.set_env(Some(env));
        }
        Instruction::Label(pairs) => {
            let mut labels = config.labels().clone().unwrap_or_default();
            labels.extend(pairs.iter().cloned());
            config.set_labels(Some(labels));
        }
        Instruction::Entrypoint(args) => {
            config.set_entrypoint(Some(args.clone()));
        }
        Instruction::Cmd(args) => {
            config.set_cmd(Some(args.clone()));
        }
        _ => unreachable!("apply handles the layer instructions"),
    }
}

fn from(
    store: &ImageStore,
    state: &mut State,
    line: usize,
    base: Option<&str>,
) -> Result<StepOutcome> {
    let Some(name) = base else {
        state.key = hex::encode(Sha256::digest(b"FROM scratch"));
        return Ok(StepOutcome::Config);
    };
    let image = store
        .resolve(name)
        .map_err(|source| BuildError::BaseImage {
            line,
            name: name.to_string(),
            source: Box::new(source),
        })?;
    state.config = image.config.config().clone().unwrap_or_default();
    state.layers = image.manifest.layers().clone();
    state.diff_ids = image.config.rootfs().diff_ids().clone();
    state.history = image.config.history().clone().unwrap_or_default();
    state.key = image.id.digest().to_string();
    Ok(StepOutcome::Config)
}

/// A step that changes only the config: its text still enters the key, so a later
/// layer step is rebuilt when an ENV before it changes.
fn config_step(state: &mut State, step: &Step) -> StepOutcome {
    state.key = chain_key(&state.key, &step.text, b"");
    state.history.push(history(step, true));
    StepOutcome::Config
}

fn chain_key(parent: &str, text: &str, inputs: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [parent.as_bytes(), b"\n", text.as_bytes(), b"\n", inputs] {
        h.update(part);
    }
    hex::encode(h.finalize())
}

fn history(step: &Step, empty: bool) -> oci_spec::image::History {
    let mut h = oci_spec::image::History::default();
    h.set_created_by(Some(format!("isolab build: {}", step.text)));
    h.set_empty_layer(empty.then_some(true));
    h
}

/// Resolves a path against the current WORKDIR, as COPY, ADD and WORKDIR do.
fn absolute(state: &State, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let base = state
        .config
        .working_dir()
        .clone()
        .unwrap_or_else(|| "/".into());
    format!("{}/{}", base.trim_end_matches('/'), path)
}

/// Runs a layer step, or reuses its cached layer when its key is known.
fn layer_step(
    store: &ImageStore,
    opts: &BuildOptions,
    state: &mut State,
    step: &Step,
    inputs: Vec<u8>,
    write: impl FnOnce(&mut LayerWriter<'_>, &State) -> Result<()>,
) -> Result<StepOutcome> {
    let key = chain_key(&state.key, &step.text, &inputs);
    let cached = (!opts.no_cache).then(|| cache_get(store, &key)).flatten();
    let outcome = match cached {
        Some(layer) => StepOutcome::Cached(layer),
        None => {
            let mut writer = LayerWriter::new(store, Metadata::Reproducible).map_err(|source| {
                BuildError::Layer {
                    line: step.line,
                    source,
                }
            })?;
            write(&mut writer, state)?;
            let layer = writer.finish().map_err(|source| BuildError::Layer {
                line: step.line,
                source,
            })?;
            cache_put(store, &key, &layer)?;
            StepOutcome::Built(layer)
        }
    };
    let (StepOutcome::Cached(layer) | StepOutcome::Built(layer)) = &outcome else {
        unreachable!("layer steps give layers")
    };
    push_layer(state, step, layer, key);
    Ok(outcome)
}

fn push_layer(state: &mut State, step: &Step, layer: &Layer, key: String) {
    state.layers.push(layer.descriptor.clone());
    state.diff_ids.push(layer.diff_id.to_string());
    state.history.push(history(step, false));
    state.key = key;
}

fn cache_path(store: &ImageStore, key: &str) -> PathBuf {
    store.dir().join("build-cache").join(format!("{key}.json"))
}

fn cache_get(store: &ImageStore, key: &str) -> Option<Layer> {
    let bytes = fs::read(cache_path(store, key)).ok()?;
    let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
    // A cache entry whose blob was collected by `image rm` is a miss, not an error.
    store.has_blob(entry.layer.digest()).then_some(())?;
    Some(Layer {
        descriptor: entry.layer,
        diff_id: super::digest::parse(&entry.diff_id).ok()?,
    })
}

fn cache_put(store: &ImageStore, key: &str, layer: &Layer) -> Result<()> {
    let path = cache_path(store, key);
    let entry = CacheEntry {
        layer: layer.descriptor.clone(),
        diff_id: layer.diff_id.to_string(),
    };
    let write = || -> io::Result<()> {
        fs::create_dir_all(path.parent().expect("has a parent"))?;
        fs::write(&path, serde_json::to_vec(&entry).expect("serializes"))
    };
    write().map_err(|source| {
        BuildError::Store(StoreError::Io {
            action: "writing build cache",
            path: path.clone(),
            source,
        })
    })
}

#[allow(clippy::too_many_arguments)]
fn copy_step(
    store: &ImageStore,
    opts: &BuildOptions,
    context: &Path,
    state: &mut State,
    step: &Step,
    sources: &[String],
    dest: &str,
    add: bool,
) -> Result<StepOutcome> {
    let what = if add { "ADD source" } else { "COPY source" };
    let resolved = sources
        .iter()
        .map(|src| resolve_source(context, step.line, what, src))
        .collect::<Result<Vec<_>>>()?;
    let mut inputs = Vec::new();
    for path in &resolved {
        inputs.extend(
            tree_digest(path).map_err(|e| source_err(step.line, what, path, e.to_string()))?,
        );
    }
    let dest = absolute(state, dest);
    let into_dir = dest.ends_with('/') || sources.len() > 1;
    layer_step(store, opts, state, step, inputs, |writer, _| {
        for path in &resolved {
            add_source(writer, step.line, path, &dest, into_dir, add)?;
        }
        Ok(())
    })
}

fn source_err(line: usize, what: &'static str, path: &Path, reason: String) -> BuildError {
    BuildError::Source {
        line,
        what,
        src: path.display().to_string(),
        reason,
    }
}

/// A source inside the context, with symlinks resolved; anything outside is refused.
fn resolve_source(context: &Path, line: usize, what: &'static str, src: &str) -> Result<PathBuf> {
    if src.starts_with("http://") || src.starts_with("https://") {
        let reason = "URLs are not supported; download the file into the build context".into();
        return Err(source_err(line, what, Path::new(src), reason));
    }
    let joined = context.join(src.trim_start_matches('/'));
    let path = fs::canonicalize(&joined).map_err(|e| {
        source_err(
            line,
            what,
            Path::new(src),
            format!("not found in the build context ({e})"),
        )
    })?;
    if !path.starts_with(context) {
        let reason = "it is outside the build context".into();
        return Err(source_err(line, what, Path::new(src), reason));
    }
    Ok(path)
}

fn add_source(
    writer: &mut LayerWriter<'_>,
    line: usize,
    path: &Path,
    dest: &str,
    into_dir: bool,
    add: bool,
) -> Result<()> {
    let layer_err = |source| BuildError::Layer { line, source };
    if add && is_archive(path) {
        return add_archive(writer, line, path, dest);
    }
    if path.is_dir() || !into_dir {
        return writer.add_tree(path, dest).map_err(layer_err);
    }
    let name = path
        .file_name()
        .expect("canonical paths have names")
        .to_string_lossy();
    let target = format!("{}/{}", dest.trim_end_matches('/'), name);
    writer.add_tree(path, &target).map_err(layer_err)
}

/// Up to the first 512 bytes of a file (empty if it cannot be read).
fn head(path: &Path) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    if let Ok(file) = fs::File::open(path) {
        let _ = file.take(512).read_to_end(&mut head);
    }
    head
}

fn starts_with(path: &Path, magic: &[u8]) -> bool {
    head(path).starts_with(magic)
}

/// Whether `path` is a tar archive, plain or gzip-compressed.
fn is_archive(path: &Path) -> bool {
    let head = head(path);
    head.starts_with(&[0x1f, 0x8b]) || head.get(257..262) == Some(b"ustar")
}

/// ADD of a local archive: its entries, checked like any layer, land under `dest`.
fn add_archive(writer: &mut LayerWriter<'_>, line: usize, path: &Path, dest: &str) -> Result<()> {
    let archive_err = |source| BuildError::Archive {
        line,
        src: path.display().to_string(),
        source,
    };
    let io_fail = |e: io::Error| archive_err(UnpackError::Corrupt(e));
    let tmp = tempfile::tempdir().map_err(io_fail)?;
    let file = io::BufReader::new(fs::File::open(path).map_err(io_fail)?);
    let result = if starts_with(path, &[0x1f, 0x8b]) {
        unpack::unpack_archive(
            flate2::read::GzDecoder::new(file),
            tmp.path(),
            Mode::Flatten,
            Limits::default(),
        )
    } else {
        unpack::unpack_archive(file, tmp.path(), Mode::Flatten, Limits::default())
    };
    result.map_err(archive_err)?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).map_err(io_fail)?;
    writer
        .add_tree(tmp.path(), dest)
        .map_err(|source| BuildError::Layer { line, source })
}

/// A digest of a file or tree's names, types, modes and contents: COPY's cache input.
fn tree_digest(path: &Path) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let mut h = Sha256::new();
    for entry in walkdir::WalkDir::new(path)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry?;
        let meta = entry.path().symlink_metadata()?;
        let rel = entry.path().strip_prefix(path).expect("under its root");
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update(meta.permissions().mode().to_le_bytes());
        if meta.file_type().is_symlink() {
            h.update(fs::read_link(entry.path())?.as_os_str().as_encoded_bytes());
        } else if meta.is_file() {
            io::copy(&mut fs::File::open(entry.path())?, &mut h)?;
        }
        h.update(b"\0");
    }
    Ok(h.finalize().to_vec())
}

fn run_step(
    store: &ImageStore,
    opts: &BuildOptions,
    state: &mut State,
    step: &Step,
    args: &[String],
) -> Result<StepOutcome> {
    // The env and cwd a RUN sees are part of what it does.
    let env = state.config.env().clone().unwrap_or_default().join("\n");
    let inputs = format!("{env}\n{:?}", state.config.working_dir()).into_bytes();
    let key = chain_key(&state.key, &step.text, &inputs);
    if let Some(layer) = (!opts.no_cache).then(|| cache_get(store, &key)).flatten() {
        push_layer(state, step, &layer, key);
        return Ok(StepOutcome::Cached(layer));
    }
    let layer = run_step::run(store, opts.runtime.as_deref(), state, args).map_err(|source| {
        BuildError::Run {
            line: step.line,
            source,
        }
    })?;
    cache_put(store, &key, &layer)?;
    push_layer(state, step, &layer, key);
    Ok(StepOutcome::Built(layer))
}
