//! The content-addressed image store: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/<hex>`) under `<root>/images`, whose `index.json` doubles as the name
//! index (each manifest carries its `NAME:TAG` in `org.opencontainers.image.ref.name`).

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::{
    Descriptor, Digest, ImageConfiguration, ImageIndex, ImageIndexBuilder, ImageManifest,
    MediaType, OciLayoutBuilder, ANNOTATION_REF_NAME,
};
use tempfile::NamedTempFile;

use super::digest::{self, DigestError, HashingReader};
use super::reference::{Reference, ReferenceError};

/// The store's folder under the engine root.
pub const IMAGES_DIR: &str = "images";

/// What went wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("reading {path}: {source}")]
    Json {
        path: PathBuf,
        source: oci_spec::OciSpecError,
    },
    #[error("locking the image store {path}: {source}")]
    Lock { path: PathBuf, source: nix::Error },
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("blob {digest} is missing from the image store")]
    MissingBlob { digest: String },
    #[error("blob {expected} is corrupt: its content hashes to {actual}")]
    CorruptBlob { expected: String, actual: String },
    #[error("no such image: {0} (see `engine image ls`)")]
    UnknownImage(String),
    #[error("image id prefix {0} is ambiguous; give more digits")]
    Ambiguous(String),
}

type Result<T> = std::result::Result<T, StoreError>;

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// An image in the store: its manifest, its config and the names that point at it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's digest: the image id.
    pub id: Digest,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// Every `NAME:TAG` pointing at this manifest.
    pub names: Vec<String>,
}

impl Image {
    /// The first 12 hex digits of the id, as `engine image ls` shows it.
    pub fn short_id(&self) -> String {
        self.id.digest().chars().take(12).collect()
    }

    /// Bytes of the compressed layers and the config.
    pub fn size(&self) -> u64 {
        let layers: u64 = self.manifest.layers().iter().map(|l| l.size()).sum();
        layers + self.manifest.config().size()
    }
}

/// An OCI image layout used as a store.
#[derive(Debug, Clone)]
pub struct ImageStore {
    dir: PathBuf,
}

impl ImageStore {
    /// Opens the store under `root`, creating an empty layout the first time.
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join(IMAGES_DIR);
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io_err("creating", &blobs))?;
        let store = ImageStore { dir };
        let layout = store.dir.join("oci-layout");
        if !layout.exists() {
            let version = OciLayoutBuilder::default()
                .image_layout_version("1.0.0")
                .build()
                .expect("all fields set");
            version.to_file(&layout).map_err(json_err(&layout))?;
        }
        if !store.index_path().exists() {
            store.write_index(&empty_index())?;
        }
        Ok(store)
    }

    /// The layout folder (`<root>/images`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    /// Where a blob lives; refuses digests that are not sha256.
    pub fn blob_path(&self, digest: &Digest) -> Result<PathBuf> {
        Ok(self.dir.join("blobs/sha256").join(digest::hex_of(digest)?))
    }

    /// Whether the store holds this blob.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// A temporary file in the store, to stream a blob into before [`Self::commit_blob`].
    pub fn temp_blob(&self) -> Result<NamedTempFile> {
        let dir = self.dir.join("blobs");
        NamedTempFile::with_prefix_in(".isolab-tmp-", &dir)
            .map_err(io_err("creating a file in", &dir))
    }

    /// Moves a finished temporary file to its content address.
    pub fn commit_blob(&self, tmp: NamedTempFile, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest)?;
        tmp.persist(&path)
            .map_err(|e| e.error)
            .map_err(io_err("storing blob", &path))?;
        Ok(())
    }

    /// Stores `bytes` as a blob and returns its digest and size.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let digest = digest::of_bytes(bytes);
        if !self.has_blob(&digest) {
            let tmp = self.temp_blob()?;
            fs::write(tmp.path(), bytes).map_err(io_err("writing", tmp.path()))?;
            self.commit_blob(tmp, &digest)?;
        }
        Ok((digest, bytes.len() as u64))
    }

    /// Opens a blob for streaming (the caller verifies, or uses [`Self::read_blob`]).
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest)?;
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob {
                digest: digest.to_string(),
            },
            _ => StoreError::Io {
                action: "opening",
                path,
                source: e,
            },
        })
    }

    /// Reads a whole blob and checks it against its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut reader = HashingReader::new(self.open_blob(digest)?);
        let mut bytes = Vec::new();
        let path = self.blob_path(digest)?;
        reader
            .read_to_end(&mut bytes)
            .map_err(io_err("reading", &path))?;
        let (actual, _) = reader.finish();
        if &actual != digest {
            return Err(StoreError::CorruptBlob {
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Stores a config and manifest and points `reference` at the manifest.
    pub fn put_image(
        &self,
        reference: &Reference,
        config: &ImageConfiguration,
        layers: Vec<Descriptor>,
    ) -> Result<Digest> {
        let config_json = serde_json::to_vec(config).expect("config serializes");
        let (config_digest, config_size) = self.write_blob(&config_json)?;
        let config_desc = Descriptor::new(MediaType::ImageConfig, config_size, config_digest);
        let manifest = oci_spec::image::ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config_desc)
            .layers(layers)
            .build()
            .expect("all fields set");
        let manifest_json = serde_json::to_vec(&manifest).expect("manifest serializes");
        let (digest, size) = self.write_blob(&manifest_json)?;
        self.tag(
            reference,
            Descriptor::new(MediaType::ImageManifest, size, digest.clone()),
        )?;
        Ok(digest)
    }

    /// Points `reference` at a manifest already in the store (replacing its old target).
    pub fn tag(&self, reference: &Reference, manifest: Descriptor) -> Result<()> {
        let _lock = self.lock()?;
        let mut index = self.read_index()?;
        let name = reference.to_string();
        let mut manifests = index.manifests().clone();
        manifests.retain(|d| ref_name(d) != Some(name.as_str()));
        let mut desc = manifest;
        desc.set_annotations(Some(HashMap::from([(
            ANNOTATION_REF_NAME.to_string(),
            name,
        )])));
        manifests.push(desc);
        index.set_manifests(manifests);
        self.write_index(&index)
    }

    /// Every image in the store, one entry per manifest, names sorted.
    pub fn list(&self) -> Result<Vec<Image>> {
        let index = self.read_index()?;
        let mut by_id: Vec<(Digest, Vec<String>)> = Vec::new();
        for desc in index.manifests() {
            let name = ref_name(desc).map(str::to_string);
            match by_id.iter_mut().find(|(id, _)| id == desc.digest()) {
                Some((_, names)) => names.extend(name),
                None => by_id.push((desc.digest().clone(), name.into_iter().collect())),
            }
        }
        by_id
            .into_iter()
            .map(|(id, mut names)| {
                names.sort();
                self.load(id, names)
            })
            .collect()
    }

    /// Finds an image by `NAME[:TAG]`, by full id (`sha256:...`) or by a unique id prefix.
    pub fn resolve(&self, text: &str) -> Result<Image> {
        let images = self.list()?;
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        let looks_like_id = hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if let Ok(reference) = text.parse::<Reference>() {
            let name = reference.to_string();
            if let Some(image) = images.iter().find(|i| i.names.contains(&name)) {
                return Ok(image.clone());
            }
        } else if !looks_like_id {
            return Err(text.parse::<Reference>().unwrap_err().into());
        }
        let mut matches = images
            .into_iter()
            .filter(|i| looks_like_id && i.id.digest().starts_with(hex));
        match (matches.next(), matches.next()) {
            (Some(image), None) => Ok(image),
            (Some(_), Some(_)) => Err(StoreError::Ambiguous(text.to_string())),
            _ => Err(StoreError::UnknownImage(text.to_string())),
        }
    }

    /// Removes a name (or, given an id, every name of that image), then deletes the blobs
    /// no remaining image uses. Returns the names removed.
    pub fn remove(&self, text: &str) -> Result<Vec<String>> {
        let image = self.resolve(text)?;
        let by_name = text.parse::<Reference>().ok().map(|r| r.to_string());
        let removed: Vec<String> = match by_name.filter(|n| image.names.contains(n)) {
            Some(name) => vec![name],
            None => image.names.clone(),
        };
        {
            let _lock = self.lock()?;
            let mut index = self.read_index()?;
            let mut manifests = index.manifests().clone();
            manifests.retain(|d| {
                let named = ref_name(d).is_some_and(|n| removed.iter().any(|r| r == n));
                !(named || (removed.is_empty() && d.digest() == &image.id))
            });
            index.set_manifests(manifests);
            self.write_index(&index)?;
        }
        self.collect_garbage()?;
        Ok(removed)
    }

    /// Deletes the unpacked layer dirs (`layers/<hex>`) that no image uses and that are
    /// not in `in_use` (layer dirs of containers); returns how many went.
    pub fn prune_layer_dirs(&self, in_use: &BTreeSet<String>) -> Result<usize> {
        let _lock = self.lock()?;
        let mut keep = in_use.clone();
        for image in self.list()? {
            for layer in image.manifest.layers() {
                keep.insert(digest::hex_of(layer.digest())?.to_string());
            }
        }
        let dir = self.dir.join("layers");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(0);
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(io_err("listing", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Dot-names are unpacks in progress (another engine's, perhaps).
            if !name.starts_with('.') && !keep.contains(&name) {
                fs::remove_dir_all(entry.path()).map_err(io_err("removing", &entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Deletes blobs that no image in the index refers to.
    fn collect_garbage(&self) -> Result<()> {
        let _lock = self.lock()?;
        let mut keep = BTreeSet::new();
        for image in self.list()? {
            keep.insert(digest::hex_of(&image.id)?.to_string());
            keep.insert(digest::hex_of(image.manifest.config().digest())?.to_string());
            for layer in image.manifest.layers() {
                keep.insert(digest::hex_of(layer.digest())?.to_string());
            }
        }
        let blobs = self.dir.join("blobs/sha256");
        for entry in fs::read_dir(&blobs).map_err(io_err("listing", &blobs))? {
            let entry = entry.map_err(io_err("listing", &blobs))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                fs::remove_file(entry.path()).map_err(io_err("removing", &entry.path()))?;
            }
        }
        Ok(())
    }

    fn load(&self, id: Digest, names: Vec<String>) -> Result<Image> {
        let manifest: ImageManifest = self.read_json(&id)?;
        let config: ImageConfiguration = self.read_json(manifest.config().digest())?;
        Ok(Image {
            id,
            manifest,
            config,
            names,
        })
    }

    /// Reads and parses a JSON blob (a manifest, config or index), checking its digest.
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, digest: &Digest) -> Result<T> {
        let bytes = self.read_blob(digest)?;
        let path = self.blob_path(digest)?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Json {
            path,
            source: oci_spec::OciSpecError::SerDe(e),
        })
    }

    fn read_index(&self) -> Result<ImageIndex> {
        let path = self.index_path();
        ImageIndex::from_file(&path).map_err(json_err(&path))
    }

    fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let tmp = NamedTempFile::with_prefix_in(".index-", &self.dir)
            .map_err(io_err("creating a file in", &self.dir))?;
        index
            .to_file_pretty(tmp.path())
            .map_err(json_err(tmp.path()))?;
        let path = self.index_path();
        tmp.persist(&path)
            .map_err(|e| e.error)
            .map_err(io_err("writing", &path))?;
        Ok(())
    }

    /// An exclusive lock on the store, so concurrent engines do not lose index updates.
    fn lock(&self) -> Result<Flock<File>> {
        let path = self.dir.join("lock");
        let file = File::create(&path).map_err(io_err("creating", &path))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, source)| StoreError::Lock { path, source })
    }
}

fn json_err(path: &Path) -> impl FnOnce(oci_spec::OciSpecError) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Json { path, source }
}

fn empty_index() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()
        .expect("all fields set")
}

/// The `NAME:TAG` a descriptor in `index.json` carries, if any.
pub fn ref_name(desc: &Descriptor) -> Option<&str> {
    desc.annotations()
        .as_ref()?
        .get(ANNOTATION_REF_NAME)
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layer;
    use oci_spec::image::ImageConfigurationBuilder;

    pub(crate) fn empty_config() -> ImageConfiguration {
        ImageConfigurationBuilder::default()
            .rootfs(layer::rootfs_of(Vec::new()))
            .build()
            .unwrap()
    }

    #[test]
    fn put_resolve_and_remove_an_image() {
        let root = tempfile::tempdir().unwrap();
        let store = ImageStore::open(root.path()).unwrap();
        let r: Reference = "demo:1".parse().unwrap();
        let id = store.put_image(&r, &empty_config(), vec![]).unwrap();
        let image = store.resolve("demo:1").unwrap();
        assert_eq!(image.id, id);
        assert_eq!(store.resolve(&image.short_id()).unwrap().id, id);
        assert!(matches!(
            store.resolve("demo:2"),
            Err(StoreError::UnknownImage(_))
        ));
        assert_eq!(store.remove("demo:1").unwrap(), vec!["demo:1".to_string()]);
        assert!(store.list().unwrap().is_empty());
        assert!(
            !store.has_blob(&id),
            "unreferenced manifest blob is collected"
        );
    }

    #[test]
    fn retagging_moves_the_name() {
        let root = tempfile::tempdir().unwrap();
        let store = ImageStore::open(root.path()).unwrap();
        let r: Reference = "demo".parse().unwrap();
        store.put_image(&r, &empty_config(), vec![]).unwrap();
        let mut config = empty_config();
        config.set_author(Some("someone".into()));
        let second = store.put_image(&r, &config, vec![]).unwrap();
        let images = store.list().unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].id, second);
    }

    #[test]
    fn corrupt_blob_is_detected() {
        let root = tempfile::tempdir().unwrap();
        let store = ImageStore::open(root.path()).unwrap();
        let (d, _) = store.write_blob(b"content").unwrap();
        fs::write(store.blob_path(&d).unwrap(), b"tampered").unwrap();
        assert!(matches!(
            store.read_blob(&d),
            Err(StoreError::CorruptBlob { .. })
        ));
    }
}
