//! `engine image import`: copies images out of an OCI image layout made by another tool
//! (skopeo, umoci, buildah), given as a directory or a tar of one, verifying every blob
//! against its digest on the way in. Nested indexes are followed to the linux/amd64
//! manifest.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType, OciLayout};

use super::digest::{self, HashingReader};
use super::reference::Reference;
use super::store::{ref_name, ImageStore, StoreError};
use super::unpack::{self, Limits, Mode, UnpackError};

/// Docker's manifest media types, which skopeo keeps when copying docker images.
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Largest manifest, index or config accepted (real ones are a few KiB).
const MAX_JSON_BYTES: u64 = 4 << 20;

/// What went wrong importing an image.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path} is not an OCI image layout: {reason}")]
    NotLayout { path: PathBuf, reason: String },
    #[error("{path}: blob {digest}: {reason}")]
    Blob {
        path: PathBuf,
        digest: String,
        reason: String,
    },
    #[error("{path}: no linux/amd64 image in the layout")]
    NoImage { path: PathBuf },
    #[error("{path} names no image: give it a name with --tag NAME[:TAG]")]
    NoName { path: PathBuf },
    #[error("--tag names one image but {path} holds {count}")]
    TagNeedsOne { path: PathBuf, count: usize },
    #[error("unpacking the archive {path}: {source}")]
    Archive { path: PathBuf, source: UnpackError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, ImportError>;

/// An image that was imported.
#[derive(Debug, Clone)]
pub struct Imported {
    pub name: Reference,
    pub id: oci_spec::image::Digest,
}

/// Imports every image of the layout at `path` (a directory or a tar, optionally
/// gzip-compressed). `tag` names the image when the layout holds exactly one.
pub fn import(store: &ImageStore, path: &Path, tag: Option<&Reference>) -> Result<Vec<Imported>> {
    if path.is_dir() {
        return import_dir(store, path, path, tag);
    }
    let tmp =
        tempfile::tempdir().map_err(|e| not_layout(path, format!("creating a temp dir: {e}")))?;
    let file = File::open(path).map_err(|e| not_layout(path, e.to_string()))?;
    let mut reader = BufReader::new(file);
    let gz = io::BufRead::fill_buf(&mut reader).is_ok_and(|b| b.starts_with(&[0x1f, 0x8b]));
    let result = if gz {
        unpack::unpack_archive(
            flate2::read::GzDecoder::new(reader),
            tmp.path(),
            Mode::Flatten,
            Limits::default(),
        )
    } else {
        unpack::unpack_archive(reader, tmp.path(), Mode::Flatten, Limits::default())
    };
    result.map_err(|source| ImportError::Archive {
        path: path.to_path_buf(),
        source,
    })?;
    import_dir(store, tmp.path(), path, tag)
}

fn not_layout(path: &Path, reason: String) -> ImportError {
    ImportError::NotLayout {
        path: path.to_path_buf(),
        reason,
    }
}

/// `dir` is the layout; `shown` is what the user gave (the tar, or `dir`).
fn import_dir(
    store: &ImageStore,
    dir: &Path,
    shown: &Path,
    tag: Option<&Reference>,
) -> Result<Vec<Imported>> {
    let layout = OciLayout::from_file(dir.join("oci-layout"))
        .map_err(|e| not_layout(shown, format!("oci-layout: {e}")))?;
    if !layout.image_layout_version().starts_with("1.") {
        let version = layout.image_layout_version();
        return Err(not_layout(
            shown,
            format!("unsupported imageLayoutVersion {version}"),
        ));
    }
    let index = ImageIndex::from_file(dir.join("index.json"))
        .map_err(|e| not_layout(shown, format!("index.json: {e}")))?;
    let source = Layout { dir, shown };
    let mut found = Vec::new();
    for desc in index.manifests() {
        if let Some(manifest) = source.pick_manifest(desc)? {
            found.push((ref_name(desc).map(str::to_string), manifest));
        }
    }
    if found.is_empty() {
        return Err(ImportError::NoImage {
            path: shown.to_path_buf(),
        });
    }
    if tag.is_some() && found.len() > 1 {
        return Err(ImportError::TagNeedsOne {
            path: shown.to_path_buf(),
            count: found.len(),
        });
    }
    found
        .into_iter()
        .map(|(annotation, manifest)| {
            let name = name_for(shown, tag, annotation.as_deref())?;
            source.copy_image(store, &manifest)?;
            store.tag(&name, manifest.clone())?;
            Ok(Imported {
                name,
                id: manifest.digest().clone(),
            })
        })
        .collect()
}

/// The name: `--tag`, else the layout's ref name (`NAME:TAG`, or just a tag, which is
/// put after the layout's file name as skopeo's `oci:DIR:TAG` means).
fn name_for(shown: &Path, tag: Option<&Reference>, annotation: Option<&str>) -> Result<Reference> {
    if let Some(tag) = tag {
        return Ok(tag.clone());
    }
    let no_name = || ImportError::NoName {
        path: shown.to_path_buf(),
    };
    let annotation = annotation.ok_or_else(no_name)?;
    if annotation.contains(':') || annotation.contains('/') {
        return annotation.parse().map_err(|_| no_name());
    }
    let stem = shown
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let stem = stem.trim_end_matches(".tar");
    format!("{stem}:{annotation}")
        .parse()
        .map_err(|_| no_name())
}

/// A layout being imported from.
struct Layout<'a> {
    dir: &'a Path,
    shown: &'a Path,
}

impl Layout<'_> {
    /// The manifest a descriptor leads to: itself, or the linux/amd64 entry of an index.
    fn pick_manifest(&self, desc: &Descriptor) -> Result<Option<Descriptor>> {
        match desc.media_type() {
            MediaType::ImageManifest => Ok(Some(desc.clone())),
            MediaType::Other(t) if t == DOCKER_MANIFEST => Ok(Some(desc.clone())),
            MediaType::ImageIndex => self.pick_from_index(desc),
            MediaType::Other(t) if t == DOCKER_LIST => self.pick_from_index(desc),
            _ => Ok(None),
        }
    }

    fn pick_from_index(&self, desc: &Descriptor) -> Result<Option<Descriptor>> {
        let index: ImageIndex = self.read_json(desc)?;
        let fits = |d: &&Descriptor| {
            d.platform().as_ref().is_none_or(|p| {
                p.os().to_string() == "linux" && p.architecture().to_string() == "amd64"
            })
        };
        match index.manifests().iter().find(fits) {
            Some(inner) => self.pick_manifest(inner),
            None => Ok(None),
        }
    }

    fn blob_path(&self, desc: &Descriptor) -> Result<PathBuf> {
        let hex = digest::hex_of(desc.digest()).map_err(|e| self.blob_err(desc, e.to_string()))?;
        Ok(self.dir.join("blobs/sha256").join(hex))
    }

    fn blob_err(&self, desc: &Descriptor, reason: String) -> ImportError {
        ImportError::Blob {
            path: self.shown.to_path_buf(),
            digest: desc.digest().to_string(),
            reason,
        }
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, desc: &Descriptor) -> Result<T> {
        let file =
            File::open(self.blob_path(desc)?).map_err(|e| self.blob_err(desc, e.to_string()))?;
        let mut bytes = Vec::new();
        file.take(MAX_JSON_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.blob_err(desc, e.to_string()))?;
        if bytes.len() as u64 > MAX_JSON_BYTES {
            let reason = format!("a JSON document over {MAX_JSON_BYTES} bytes is refused");
            return Err(self.blob_err(desc, reason));
        }
        if &digest::of_bytes(&bytes) != desc.digest() {
            return Err(self.blob_err(desc, "content does not match its digest".into()));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| self.blob_err(desc, format!("invalid JSON: {e}")))
    }

    /// Copies a manifest, its config and its layers into the store.
    fn copy_image(&self, store: &ImageStore, manifest_desc: &Descriptor) -> Result<()> {
        let manifest: ImageManifest = self.read_json(manifest_desc)?;
        for desc in manifest
            .layers()
            .iter()
            .chain([manifest.config(), manifest_desc])
        {
            self.copy_blob(store, desc)?;
        }
        Ok(())
    }

    fn copy_blob(&self, store: &ImageStore, desc: &Descriptor) -> Result<()> {
        if store.has_blob(desc.digest()) {
            return Ok(());
        }
        let path = self.blob_path(desc)?;
        let file = File::open(&path).map_err(|e| self.blob_err(desc, e.to_string()))?;
        let tmp = store.temp_blob()?;
        let mut out = tmp
            .reopen()
            .map_err(|e| self.blob_err(desc, e.to_string()))?;
        let mut reader = HashingReader::new(file);
        io::copy(&mut reader, &mut out).map_err(|e| self.blob_err(desc, e.to_string()))?;
        let (actual, size) = reader.finish();
        if &actual != desc.digest() || size != desc.size() {
            let reason = format!(
                "content hashes to {actual} ({size} bytes), expected {} bytes",
                desc.size()
            );
            return Err(self.blob_err(desc, reason));
        }
        store.commit_blob(tmp, desc.digest())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn layout_with_manifest(dir: &Path, manifest: &[u8], digest: &str) {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        let hex = digest.trim_start_matches("sha256:");
        if hex.len() == 64 {
            fs::write(dir.join("blobs/sha256").join(hex), manifest).unwrap();
        }
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"x:1"}}}}]}}"#,
            manifest.len()
        );
        fs::write(dir.join("index.json"), index).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    }

    fn store() -> (tempfile::TempDir, ImageStore) {
        let root = tempfile::tempdir().unwrap();
        let store = ImageStore::open(root.path()).unwrap();
        (root, store)
    }

    #[test]
    fn a_directory_without_oci_layout_is_refused() {
        let (_root, store) = store();
        let dir = tempfile::tempdir().unwrap();
        let err = import(&store, dir.path(), None).unwrap_err();
        assert!(matches!(err, ImportError::NotLayout { .. }), "{err}");
    }

    #[test]
    fn an_oversized_manifest_is_refused() {
        let (_root, store) = store();
        let dir = tempfile::tempdir().unwrap();
        let huge = vec![b' '; (MAX_JSON_BYTES + 10) as usize];
        let digest = digest::of_bytes(&huge).to_string();
        layout_with_manifest(dir.path(), &huge, &digest);
        let err = import(&store, dir.path(), None).unwrap_err();
        assert!(err.to_string().contains("is refused"), "{err}");
    }

    #[test]
    fn a_path_like_digest_in_the_index_is_refused() {
        let (_root, store) = store();
        let dir = tempfile::tempdir().unwrap();
        layout_with_manifest(dir.path(), b"{}", "sha256:../../../../etc/passwd");
        assert!(import(&store, dir.path(), None).is_err());
    }
}
