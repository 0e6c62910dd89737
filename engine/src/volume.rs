//! Named volumes: directories under `<root>/volumes/<name>/_data` that `engine run -v
//! NAME:/path` mounts into a container and that outlive it (`engine volume ls|rm`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What went wrong with a volume.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume name {0:?}: use letters, digits and _ . - (starting with a letter or digit)")]
    BadName(String),
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// The named volumes under an engine root.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    pub fn new(root: &Path) -> Self {
        Volumes {
            dir: root.join("volumes"),
        }
    }

    /// Whether `name` is a volume name (rather than a host path) in `-v NAME:DST`.
    pub fn is_name(name: &str) -> bool {
        name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    }

    /// The data directory of volume `name`, created the first time.
    pub fn ensure(&self, name: &str) -> Result<PathBuf, VolumeError> {
        let data = self.data_dir(name)?;
        fs::create_dir_all(&data).map_err(|source| VolumeError::Io {
            action: "creating",
            path: data.clone(),
            source,
        })?;
        Ok(data)
    }

    /// Every volume's name, sorted.
    pub fn list(&self) -> Result<Vec<String>, VolumeError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.io("listing", source)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io("listing", e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.retain(|n| Self::is_name(n));
        names.sort();
        Ok(names)
    }

    /// Deletes a volume and its data.
    pub fn remove(&self, name: &str) -> Result<(), VolumeError> {
        let data = self.data_dir(name)?;
        let dir = data.parent().expect("has a parent");
        if !dir.is_dir() {
            return Err(VolumeError::NotFound(name.to_string()));
        }
        fs::remove_dir_all(dir).map_err(|source| VolumeError::Io {
            action: "removing",
            path: dir.to_path_buf(),
            source,
        })
    }

    fn data_dir(&self, name: &str) -> Result<PathBuf, VolumeError> {
        if !Self::is_name(name) {
            return Err(VolumeError::BadName(name.to_string()));
        }
        Ok(self.dir.join(name).join("_data"))
    }

    fn io(&self, action: &'static str, source: io::Error) -> VolumeError {
        VolumeError::Io {
            action,
            path: self.dir.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_are_created_listed_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let volumes = Volumes::new(root.path());
        assert!(volumes.list().unwrap().is_empty());
        let data = volumes.ensure("data").unwrap();
        fs::write(data.join("f"), "kept").unwrap();
        assert_eq!(
            volumes.ensure("data").unwrap(),
            data,
            "ensure keeps existing data"
        );
        assert_eq!(fs::read_to_string(data.join("f")).unwrap(), "kept");
        assert_eq!(volumes.list().unwrap(), ["data"]);
        volumes.remove("data").unwrap();
        assert!(matches!(
            volumes.remove("data"),
            Err(VolumeError::NotFound(_))
        ));
    }

    #[test]
    fn path_like_names_are_refused() {
        let volumes = Volumes::new(Path::new("/nonexistent"));
        for bad in ["../x", "/abs", "a/b", ".hidden", ""] {
            assert!(
                matches!(volumes.ensure(bad), Err(VolumeError::BadName(_))),
                "{bad}"
            );
        }
    }
}
