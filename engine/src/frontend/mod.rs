//! The docker-like front end behind `engine run|ps|logs|stop|rm`: it turns an image into
//! a container the runtime (`crate::container`) runs. Each image layer is unpacked once
//! into a shared read-only directory (`image::unpack::layer_dir`); a container's bundle
//! is just a `config.json` naming those directories in the overlay annotation, so every
//! container of an image shares the layers and writes only to its own upper dir.
//!
//! Layout under the engine root: `containers/<id>/{meta.json,bundle/,log}` is the front
//! end's, `state/<id>/` is the runtime's (`engine-oci --root <root>/state` sees it).

pub mod manage;
pub mod run;
pub mod spec;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::container::{ContainerError, Runtime};
use crate::image::bundle::BundleError;
use crate::image::store::{ImageStore, StoreError};
use crate::image::unpack::UnpackError;
use crate::volume::VolumeError;

/// What went wrong in a front-end command.
#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error("container name {0:?} is already in use (engine rm it first)")]
    NameInUse(String),
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("container {0} is running: stop it first, or use rm --force")]
    Running(String),
    #[error("image {image} is used by container {container}: remove the container first, or use image rm --force")]
    ImageInUse { image: String, container: String },
    #[error("container {0} has no log: only detached (-d) containers are logged")]
    NoLog(String),
    #[error("invalid {what} {value:?}: {reason}")]
    BadOption {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Container(#[from] ContainerError),
}

pub(crate) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FrontendError {
    let path = path.to_path_buf();
    move |source| FrontendError::Io {
        action,
        path,
        source,
    }
}

/// What the front end remembers about a container (`containers/<id>/meta.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerMeta {
    pub id: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    pub command: Vec<String>,
    /// Seconds since the epoch.
    pub created_unix: u64,
    /// Set once the program ended and the engine saw its status.
    pub exit_code: Option<i32>,
    /// The cgroup's OOM killer ended it.
    pub oom_killed: bool,
}

/// The front end over one engine root.
#[derive(Debug, Clone)]
pub struct Frontend {
    root: PathBuf,
    runtime: Runtime,
}

impl Frontend {
    pub fn new(root: &Path) -> Self {
        Frontend {
            root: root.to_path_buf(),
            runtime: Runtime::new(root.join("state")),
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn store(&self) -> Result<ImageStore, FrontendError> {
        Ok(ImageStore::open(&self.root)?)
    }

    fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// The front end's dir of container `id` (the id is checked like the runtime's).
    pub fn container_dir(&self, id: &str) -> Result<PathBuf, FrontendError> {
        crate::container::id::validate(id)?;
        Ok(self.containers_dir().join(id))
    }

    pub fn load_meta(&self, id: &str) -> Result<ContainerMeta, FrontendError> {
        let path = self.container_dir(id)?.join("meta.json");
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => FrontendError::NoSuchContainer(id.to_string()),
            _ => io_err("reading", &path)(e),
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| io_err("parsing", &path)(io::Error::new(io::ErrorKind::InvalidData, e)))
    }

    pub fn save_meta(&self, meta: &ContainerMeta) -> Result<(), FrontendError> {
        let path = self.container_dir(&meta.id)?.join("meta.json");
        let bytes = serde_json::to_vec_pretty(meta).expect("meta serializes");
        fs::write(&path, bytes).map_err(io_err("writing", &path))
    }
}
