//! Writing layers: a tar stream, gzip-compressed, hashed twice on the way into the store
//! (the compressed digest names the blob, the uncompressed one is the config's diff_id).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use oci_spec::image::{Descriptor, Digest, MediaType, RootFs, RootFsBuilder};
use tempfile::NamedTempFile;

use super::digest::HashingWriter;
use super::store::{ImageStore, StoreError};

/// What went wrong while writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("adding {path} to a layer: {source}")]
    Add { path: PathBuf, source: io::Error },
    #[error("finishing a layer: {0}")]
    Finish(io::Error),
    #[error("layer path {0:?} must be absolute inside the image and must not contain `..`")]
    BadPath(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A layer in the store: the manifest descriptor and the config diff_id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Digest and size of the compressed blob, media type tar+gzip.
    pub descriptor: Descriptor,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
}

/// The `rootfs` of an image configuration: the diff_ids of its layers, bottom first.
pub(crate) fn rootfs_of(diff_ids: Vec<String>) -> RootFs {
    RootFsBuilder::default()
        .typ("layers")
        .diff_ids(diff_ids)
        .build()
        .expect("all fields set")
}

type TarSink = HashingWriter<GzEncoder<HashingWriter<BufWriter<File>>>>;

/// Builds one layer into a temporary blob in the store.
pub struct LayerWriter<'s> {
    store: &'s ImageStore,
    tmp: NamedTempFile,
    tar: tar::Builder<TarSink>,
}

impl std::fmt::Debug for LayerWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerWriter")
            .field("tmp", &self.tmp.path())
            .finish()
    }
}

/// How host metadata goes into a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metadata {
    /// Owner root, fixed mtime, mode 0644/0755: equal content gives an equal layer
    /// (what `COPY` and `ADD` write).
    Reproducible,
    /// Owner, mode and mtime as on disk (what a `RUN` step changed).
    Preserved,
}

impl<'s> LayerWriter<'s> {
    pub fn new(store: &'s ImageStore, metadata: Metadata) -> Result<Self, LayerError> {
        let tmp = store.temp_blob()?;
        let file = tmp.reopen().map_err(LayerError::Finish)?;
        let gz = GzEncoder::new(
            HashingWriter::new(BufWriter::new(file)),
            Compression::fast(),
        );
        let mut tar = tar::Builder::new(HashingWriter::new(gz));
        tar.follow_symlinks(false);
        tar.mode(match metadata {
            Metadata::Reproducible => tar::HeaderMode::Deterministic,
            Metadata::Preserved => tar::HeaderMode::Complete,
        });
        Ok(LayerWriter { store, tmp, tar })
    }

    /// Adds a host file, symlink or directory tree at `dest` (an absolute path in the
    /// image), entries in sorted order so equal trees give equal layers.
    pub fn add_tree(&mut self, src: &Path, dest: &str) -> Result<(), LayerError> {
        let dest = layer_path(dest)?;
        let walk = walkdir::WalkDir::new(src)
            .follow_links(false)
            .sort_by_file_name();
        for entry in walk {
            let entry = entry.map_err(|e| LayerError::Add {
                path: src.to_path_buf(),
                source: e.into(),
            })?;
            let rel = entry
                .path()
                .strip_prefix(src)
                .expect("walk stays under its root");
            let name = if rel.as_os_str().is_empty() {
                dest.clone()
            } else {
                dest.join(rel)
            };
            if name.as_os_str().is_empty() {
                continue; // the image root itself
            }
            self.tar
                .append_path_with_name(entry.path(), &name)
                .map_err(|source| LayerError::Add {
                    path: entry.path().to_path_buf(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Adds one host file, symlink or directory (without its contents) at `dest`.
    pub fn add_entry(&mut self, src: &Path, dest: &str) -> Result<(), LayerError> {
        let name = layer_path(dest)?;
        self.tar
            .append_path_with_name(src, &name)
            .map_err(|source| LayerError::Add {
                path: src.to_path_buf(),
                source,
            })
    }

    /// Adds a directory entry (mode 0755, root-owned) at `dest`.
    pub fn add_dir(&mut self, dest: &str) -> Result<(), LayerError> {
        let name = layer_path(dest)?;
        if name.as_os_str().is_empty() {
            return Ok(());
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        self.tar
            .append_data(&mut header, &name, io::empty())
            .map_err(|source| LayerError::Add { path: name, source })
    }

    /// Adds a whiteout for `dest`: the path is deleted from the layers below.
    pub fn add_whiteout(&mut self, dest: &str) -> Result<(), LayerError> {
        let name = layer_path(dest)?;
        let file = name
            .file_name()
            .ok_or_else(|| LayerError::BadPath(dest.to_string()))?;
        let whiteout = name.with_file_name(format!(".wh.{}", file.to_string_lossy()));
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(0);
        self.tar
            .append_data(&mut header, &whiteout, io::empty())
            .map_err(|source| LayerError::Add {
                path: whiteout,
                source,
            })
    }

    /// Ends the archive and moves the blob to its content address.
    pub fn finish(self) -> Result<Layer, LayerError> {
        let sink = self.tar.into_inner().map_err(LayerError::Finish)?;
        let (gz, diff_id, _) = sink.finish();
        let hashing = gz.finish().map_err(LayerError::Finish)?;
        let (mut file, digest, size) = hashing.finish();
        file.flush().map_err(LayerError::Finish)?;
        self.store.commit_blob(self.tmp, &digest)?;
        Ok(Layer {
            descriptor: Descriptor::new(MediaType::ImageLayerGzip, size, digest),
            diff_id,
        })
    }
}

/// Turns an absolute image path into the relative name a layer entry carries.
fn layer_path(dest: &str) -> Result<PathBuf, LayerError> {
    let path = Path::new(dest);
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            _ => return Err(LayerError::BadPath(dest.to_string())),
        }
    }
    if !path.has_root() {
        return Err(LayerError::BadPath(dest.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(store: &ImageStore, layer: &Layer) -> Vec<String> {
        let blob = store.read_blob(layer.descriptor.digest()).unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(super::super::digest::of_bytes(&raw), layer.diff_id);
        let mut archive = tar::Archive::new(&raw[..]);
        let names = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string());
        names.collect()
    }

    #[test]
    fn tree_is_added_sorted_under_its_destination() {
        let root = tempfile::tempdir().unwrap();
        let store = ImageStore::open(&root.path().join("store")).unwrap();
        let src = root.path().join("src");
        std::fs::create_dir_all(src.join("b")).unwrap();
        std::fs::write(src.join("b/x"), "x").unwrap();
        std::fs::write(src.join("a"), "a").unwrap();
        let mut w = LayerWriter::new(&store, Metadata::Reproducible).unwrap();
        w.add_tree(&src, "/app").unwrap();
        w.add_whiteout("/old").unwrap();
        let layer = w.finish().unwrap();
        assert_eq!(
            entries(&store, &layer),
            ["app", "app/a", "app/b", "app/b/x", ".wh.old"]
        );
    }

    #[test]
    fn relative_or_escaping_destinations_are_refused() {
        assert!(matches!(layer_path("rel"), Err(LayerError::BadPath(_))));
        assert!(matches!(layer_path("/a/../b"), Err(LayerError::BadPath(_))));
        assert_eq!(layer_path("/a/./b").unwrap(), PathBuf::from("a/b"));
    }
}
