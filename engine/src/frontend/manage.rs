//! `engine ps`, `logs`, `stop` and `rm`: the front end's containers and their status.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use oci_spec::runtime::ContainerState;

use super::{io_err, ContainerMeta, Frontend, FrontendError};
use crate::container::ContainerError;
use crate::image::bundle::ANNOTATION_LOWERDIRS;

/// A row of `engine ps`.
#[derive(Debug, Clone)]
pub struct ContainerStatus {
    pub meta: ContainerMeta,
    /// `running`, `created`, `exited (CODE)`, `exited (OOM killed)` or `stopped`.
    pub status: String,
}

impl Frontend {
    /// Every container the front end knows, oldest first.
    pub fn list(&self) -> Result<Vec<ContainerStatus>, FrontendError> {
        let dir = self.containers_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("listing", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let id = entry
                .map_err(io_err("listing", &dir))?
                .file_name()
                .to_string_lossy()
                .into_owned();
            if let Ok(meta) = self.load_meta(&id) {
                let status = self.status_of(&meta);
                out.push(ContainerStatus { meta, status });
            }
        }
        out.sort_by_key(|c| (c.meta.created_unix, c.meta.id.clone()));
        Ok(out)
    }

    fn status_of(&self, meta: &ContainerMeta) -> String {
        if let Ok(mut record) = self.runtime().load(&meta.id) {
            record.refresh();
            if record.status != ContainerState::Stopped {
                return record.status.to_string();
            }
        }
        match (meta.oom_killed, meta.exit_code) {
            (true, _) => "exited (OOM killed)".into(),
            (false, Some(code)) => format!("exited ({code})"),
            (false, None) => "stopped".into(),
        }
    }

    /// The output of a detached container.
    pub fn logs(&self, id: &str) -> Result<Vec<u8>, FrontendError> {
        self.load_meta(id)?;
        let path = self.container_dir(id)?.join("log");
        fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => FrontendError::NoLog(id.to_string()),
            _ => io_err("reading", &path)(e),
        })
    }

    /// SIGTERM, then SIGKILL after `grace`; the runtime's state is deleted after.
    pub fn stop(&self, id: &str, grace: Duration) -> Result<(), FrontendError> {
        self.load_meta(id)?;
        let record = match self.runtime().load(id) {
            Ok(record) => record,
            Err(ContainerError::NotFound(_)) => return Ok(()), // already stopped and deleted
            Err(e) => return Err(e.into()),
        };
        if record.init_alive() {
            let _ = self.runtime().kill(id, Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while record.init_alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // delete --force sends SIGKILL if it is still alive and waits for it.
        self.runtime().delete(id, true)?;
        Ok(())
    }

    /// Removes an image's name(s), refusing while a container was made from it (unless
    /// `force`), then deletes blobs and unpacked layer dirs nothing uses any more.
    pub fn remove_image(&self, image: &str, force: bool) -> Result<Vec<String>, FrontendError> {
        let store = self.store()?;
        let target = store.resolve(image)?;
        let containers = self.list()?;
        if let Some(user) = containers
            .iter()
            .find(|c| c.meta.image_id == target.id.to_string())
        {
            if !force {
                return Err(FrontendError::ImageInUse {
                    image: image.to_string(),
                    container: user.meta.id.clone(),
                });
            }
        }
        let removed = store.remove(image)?;
        let mut in_use = BTreeSet::new();
        for c in &containers {
            in_use.extend(self.layer_dirs_of(&c.meta.id));
        }
        store.prune_layer_dirs(&in_use)?;
        Ok(removed)
    }

    /// The names of the layer dirs a container's bundle mounts.
    fn layer_dirs_of(&self, id: &str) -> Vec<String> {
        let Ok(dir) = self.container_dir(id) else {
            return Vec::new();
        };
        let Ok(spec) = oci_spec::runtime::Spec::load(dir.join("bundle/config.json")) else {
            return Vec::new();
        };
        let annotations = spec.annotations().clone().unwrap_or_default();
        let lowerdirs = annotations
            .get(ANNOTATION_LOWERDIRS)
            .cloned()
            .unwrap_or_default();
        lowerdirs
            .split(':')
            .filter_map(|p| {
                Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .collect()
    }

    /// Removes a container; a running one only with `force` (it is killed).
    pub fn remove(&self, id: &str, force: bool) -> Result<(), FrontendError> {
        self.load_meta(id)?;
        match self.runtime().load(id) {
            Ok(mut record) => {
                record.refresh();
                if record.status != ContainerState::Stopped && !force {
                    return Err(FrontendError::Running(id.to_string()));
                }
                self.runtime().delete(id, true)?;
            }
            Err(ContainerError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let dir = self.container_dir(id)?;
        fs::remove_dir_all(&dir).map_err(io_err("removing", &dir))
    }
}
