//! `engine run`: image → shared layer dirs → a bundle whose config.json names them for
//! the overlay rootfs → the runtime's create/start/wait/delete. A failure before the
//! program runs removes the container's dirs, so nothing is left behind.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::container::{CreateOptions, ExitInfo};
use crate::image::bundle::{self, Overrides, ANNOTATION_IMAGE_ID};
use crate::image::store::Image;
use crate::image::unpack;
use crate::network::NetworkMode;
use crate::timings::Timings;
use crate::volume::Volumes;

use super::spec::{self, Limits, VolumeArg};
use super::{io_err, ContainerMeta, Frontend, FrontendError};

/// What `engine run` was asked.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// NAME[:TAG] or image id.
    pub image: String,
    /// Replaces the image's CMD when not empty.
    pub args: Vec<String>,
    /// The container id; a random one when not given.
    pub name: Option<String>,
    /// Remove the container once it exits.
    pub remove: bool,
    /// Start it and return; its output goes to its log.
    pub detach: bool,
    pub limits: Limits,
    pub network: NetworkMode,
    pub volumes: Vec<VolumeArg>,
    /// `KEY=VALUE` over the image's env.
    pub env: Vec<String>,
    /// Print the startup steps' durations (`TIMINGS {json}` on stderr).
    pub timings: bool,
}

/// How `engine run` ended.
#[derive(Debug, Clone)]
pub enum RunOutcome {
    /// Started in the background.
    Detached { id: String },
    /// Ran to the end.
    Exited { id: String, info: ExitInfo },
}

/// A container prepared on disk, removed on drop unless kept.
struct Prepared {
    id: String,
    dir: PathBuf,
    keep: bool,
    /// The front end's own startup step: finding (first time: unpacking) the image's
    /// layer dirs and writing the bundle.
    timings: Timings,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl Frontend {
    /// Runs an image as a container.
    pub fn run(&self, opts: &RunOptions) -> Result<RunOutcome, FrontendError> {
        let mut prepared = self.prepare(opts)?;
        let bundle = prepared.dir.join("bundle");
        let outcome = if opts.detach {
            self.start_detached(&prepared, &bundle, opts)?;
            RunOutcome::Detached {
                id: prepared.id.clone(),
            }
        } else {
            let print = |t: &Timings| print_timings(opts.timings, &prepared.timings, t);
            let info =
                self.runtime()
                    .run(&prepared.id, &bundle, &CreateOptions::from_env(None), print)?;
            self.record_exit(&prepared.id, &info)?;
            prepared.keep = !opts.remove;
            return Ok(RunOutcome::Exited {
                id: prepared.id.clone(),
                info,
            });
        };
        prepared.keep = true;
        Ok(outcome)
    }

    /// Writes `containers/<id>/` (meta.json, bundle/config.json, bundle/rootfs/).
    fn prepare(&self, opts: &RunOptions) -> Result<Prepared, FrontendError> {
        let since = std::time::Instant::now();
        let store = self.store()?;
        let image = store.resolve(&opts.image)?;
        let layers = image
            .manifest
            .layers()
            .iter()
            .map(|layer| unpack::layer_dir(&store, layer))
            .collect::<Result<Vec<_>, _>>()?;
        let id = match &opts.name {
            Some(name) => name.clone(),
            None => random_id()?,
        };
        let dir = self.container_dir(&id)?;
        fs::create_dir_all(dir.parent().expect("has a parent"))
            .map_err(io_err("creating", &dir))?;
        fs::create_dir(&dir).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => FrontendError::NameInUse(id.clone()),
            _ => io_err("creating", &dir)(e),
        })?;
        let mut prepared = Prepared {
            id,
            dir,
            keep: false,
            timings: Timings::default(),
        };
        self.write_bundle(&prepared, &image, &layers, opts)?;
        prepared.timings.record("image_layers_bundle", since);
        Ok(prepared)
    }

    fn write_bundle(
        &self,
        prepared: &Prepared,
        image: &Image,
        layers: &[PathBuf],
        opts: &RunOptions,
    ) -> Result<(), FrontendError> {
        let overrides = Overrides {
            args: opts.args.clone(),
            env: opts.env.clone(),
            hostname: Some(prepared.id.chars().take(12).collect()),
        };
        let top_first: Vec<PathBuf> = layers.iter().rev().cloned().collect();
        let mut spec = bundle::runtime_spec(&image.config, &overrides, &top_first)?;
        spec::apply_lowerdirs(&mut spec, layers);
        spec::apply_network(&mut spec, opts.network);
        spec::apply_limits(&mut spec, opts.limits);
        let volume_paths = self.resolve_volumes(&opts.volumes)?;
        spec::apply_volumes(&mut spec, &opts.volumes, &volume_paths);
        let mut annotations = spec.annotations().clone().unwrap_or_default();
        annotations.insert(ANNOTATION_IMAGE_ID.into(), image.id.to_string());
        spec.set_annotations(Some(annotations));

        let rootfs = prepared.dir.join("bundle/rootfs");
        fs::create_dir_all(&rootfs).map_err(io_err("creating", &rootfs))?;
        let config = prepared.dir.join("bundle/config.json");
        spec.save(&config)
            .map_err(|source| bundle::BundleError::Spec {
                path: config,
                source,
            })?;
        let command = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default();
        self.save_meta(&ContainerMeta {
            id: prepared.id.clone(),
            image: opts.image.clone(),
            image_id: image.id.to_string(),
            command,
            created_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            exit_code: None,
            oom_killed: false,
        })
    }

    /// Host paths of `-v` sources: named volumes are created; host paths must exist.
    fn resolve_volumes(&self, volumes: &[VolumeArg]) -> Result<Vec<PathBuf>, FrontendError> {
        let named = Volumes::new(&self.root);
        volumes
            .iter()
            .map(|v| match v.source.starts_with('/') {
                true => fs::canonicalize(&v.source)
                    .map_err(io_err("finding volume source", Path::new(&v.source))),
                false => Ok(named.ensure(&v.source)?),
            })
            .collect()
    }

    /// Creates and starts with the container's stdio on its log file.
    fn start_detached(
        &self,
        prepared: &Prepared,
        bundle: &Path,
        opts: &RunOptions,
    ) -> Result<(), FrontendError> {
        let log_path = prepared.dir.join("log");
        let log = File::create(&log_path).map_err(io_err("creating", &log_path))?;
        let redirect =
            StdioRedirect::to(&log).map_err(io_err("redirecting output to", &log_path))?;
        let started = self
            .runtime()
            .create(&prepared.id, bundle, &CreateOptions::from_env(None))
            .and_then(|mut c| self.runtime().start_created(&prepared.id, &mut c));
        drop(redirect);
        match started {
            Ok(timings) => {
                print_timings(opts.timings, &prepared.timings, &timings);
                Ok(())
            }
            Err(e) => {
                let _ = self.runtime().delete(&prepared.id, true);
                Err(e.into())
            }
        }
    }

    fn record_exit(&self, id: &str, info: &ExitInfo) -> Result<(), FrontendError> {
        let mut meta = self.load_meta(id)?;
        meta.exit_code = info.code;
        meta.oom_killed = info.oom_killed;
        self.save_meta(&meta)
    }
}

/// Prints the front end's step, then the runtime's, as one `TIMINGS {json}` line.
fn print_timings(enabled: bool, frontend: &Timings, runtime: &Timings) {
    if enabled {
        let mut all = frontend.clone();
        all.phases.extend(runtime.phases.iter().cloned());
        eprintln!("{}", all.line());
    }
}

/// 12 random hex digits, like docker's short ids.
fn random_id() -> Result<String, FrontendError> {
    let mut bytes = [0u8; 6];
    let path = Path::new("/dev/urandom");
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_err("reading", path))?;
    Ok(hex::encode(bytes))
}

/// Points this process's stdin at /dev/null and stdout/stderr at a file while held (the
/// container's init inherits them), and puts the originals back on drop.
struct StdioRedirect {
    saved: [std::os::fd::OwnedFd; 3],
}

impl StdioRedirect {
    fn to(log: &File) -> io::Result<Self> {
        // Close-on-exec copies: the container must not hold our caller's pipes open.
        let saved = [
            io::stdin().as_fd().try_clone_to_owned()?,
            io::stdout().as_fd().try_clone_to_owned()?,
            io::stderr().as_fd().try_clone_to_owned()?,
        ];
        let null = File::open("/dev/null")?;
        nix::unistd::dup2_stdin(&null)?;
        nix::unistd::dup2_stdout(log)?;
        nix::unistd::dup2_stderr(log)?;
        Ok(StdioRedirect { saved })
    }
}

impl Drop for StdioRedirect {
    fn drop(&mut self) {
        let _ = nix::unistd::dup2_stdin(&self.saved[0]);
        let _ = nix::unistd::dup2_stdout(&self.saved[1]);
        let _ = nix::unistd::dup2_stderr(&self.saved[2]);
    }
}
