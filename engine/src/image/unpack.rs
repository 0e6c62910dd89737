//! Extracting layers safely. Every entry is checked before anything is written: paths
//! that are absolute or climb out with `..`, links whose target leaves the root, entries
//! written through a symlink, device nodes, and archives that are corrupt or larger than
//! the limit are refused with an error naming the entry. Whiteouts (`.wh.NAME`, and
//! `.wh..wh..opq` for opaque directories) are either applied (flattening layers into one
//! rootfs) or turned into overlayfs whiteouts (one directory per layer, for overlay).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{Descriptor, MediaType};

use super::digest::{self, HashingReader};
use super::store::{ImageStore, StoreError};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What went wrong while extracting a layer.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("refusing layer entry {entry:?}: absolute paths are not allowed in a layer")]
    Absolute { entry: String },
    #[error("refusing layer entry {entry:?}: it escapes the root with `..`")]
    Escape { entry: String },
    #[error("refusing layer entry {entry:?}: its link target {target:?} points outside the root")]
    LinkOut { entry: String, target: String },
    #[error("refusing layer entry {entry:?}: it would be written through the symlink {link:?}")]
    ThroughSymlink { entry: String, link: String },
    #[error("refusing layer entry {entry:?}: device nodes are not allowed in images")]
    Device { entry: String },
    #[error("refusing layer entry {entry:?}: unsupported entry type {kind:?}")]
    UnsupportedEntry { entry: String, kind: String },
    #[error("refusing layer entry {entry:?}: hard link target {target:?} does not exist")]
    MissingLinkTarget { entry: String, target: String },
    #[error("refusing layer entry {entry:?}: its parent {parent:?} is not a directory")]
    ParentNotDir { entry: String, parent: String },
    #[error("corrupt layer archive: {0}")]
    Corrupt(io::Error),
    #[error("layer archive is larger than the limit of {limit} bytes uncompressed")]
    TooLarge { limit: u64 },
    #[error("layer archive has more than the limit of {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("layer {digest} does not match its digest (blob hashes to {actual})")]
    DigestMismatch { digest: String, actual: String },
    #[error("unsupported layer media type {0} (supported: tar, tar+gzip)")]
    MediaType(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, UnpackError>;

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> UnpackError {
    let path = path.to_path_buf();
    move |source| UnpackError::Io {
        action,
        path,
        source,
    }
}

/// How whiteouts are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Layers are applied one over another into one directory: whiteouts delete.
    Flatten,
    /// Each layer gets its own directory, an overlayfs lower dir: whiteouts become
    /// overlayfs whiteouts (0/0 character devices, `trusted.overlay.opaque` xattrs).
    Overlay,
}

/// Bounds on what one archive may unpack to, against archive bombs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of uncompressed tar stream.
    pub max_bytes: u64,
    /// Entries in the archive.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 16 << 30, // 16 GiB
            max_entries: 2_000_000,
        }
    }
}

/// What an extraction wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub entries: u64,
    pub whiteouts: u64,
}

/// Extracts a layer blob from the store into `dest`, checking its digest as it streams.
pub fn unpack_blob(
    store: &ImageStore,
    layer: &Descriptor,
    dest: &Path,
    mode: Mode,
    limits: Limits,
) -> Result<Stats> {
    let mut hashing = HashingReader::new(io::BufReader::new(store.open_blob(layer.digest())?));
    let stats = match layer.media_type() {
        MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => unpack_archive(
            flate2::read::GzDecoder::new(&mut hashing),
            dest,
            mode,
            limits,
        )?,
        MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => {
            unpack_archive(&mut hashing, dest, mode, limits)?
        }
        MediaType::Other(t) if t.ends_with("diff.tar.gzip") => unpack_archive(
            flate2::read::GzDecoder::new(&mut hashing),
            dest,
            mode,
            limits,
        )?,
        other => return Err(UnpackError::MediaType(other.to_string())),
    };
    io::copy(&mut hashing, &mut io::sink()).map_err(UnpackError::Corrupt)?;
    let (actual, _) = hashing.finish();
    if &actual != layer.digest() {
        return Err(UnpackError::DigestMismatch {
            digest: layer.digest().to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(stats)
}

/// The shared, read-only directory holding one layer unpacked for overlayfs, under
/// `<root>/images/layers/<digest hex>`; it is unpacked the first time it is asked for.
pub fn layer_dir(store: &ImageStore, layer: &Descriptor) -> Result<PathBuf> {
    let layers = store.dir().join("layers");
    let dir = layers.join(digest::hex_of(layer.digest()).map_err(StoreError::from)?);
    if dir.is_dir() {
        return Ok(dir);
    }
    fs::create_dir_all(&layers).map_err(io_err("creating", &layers))?;
    let tmp = tempfile::Builder::new()
        .prefix(".isolab-unpack-")
        .tempdir_in(&layers)
        .map_err(io_err("creating a directory in", &layers))?;
    unpack_blob(store, layer, tmp.path(), Mode::Overlay, Limits::default())?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
        .map_err(io_err("setting the mode of", tmp.path()))?;
    match fs::rename(tmp.path(), &dir) {
        Ok(()) => {
            let _ = tmp.keep();
            Ok(dir)
        }
        // Another engine unpacked the same layer meanwhile: use theirs, drop ours.
        Err(_) if dir.is_dir() => Ok(dir),
        Err(e) => Err(io_err("renaming into", &dir)(e)),
    }
}

/// Extracts every layer of an image, base first, into one directory.
pub fn flatten_layers(store: &ImageStore, layers: &[Descriptor], dest: &Path) -> Result<()> {
    for layer in layers {
        unpack_blob(store, layer, dest, Mode::Flatten, Limits::default())?;
    }
    Ok(())
}

/// Extracts one tar stream into `dest`.
pub fn unpack_archive<R: Read>(
    reader: R,
    dest: &Path,
    mode: Mode,
    limits: Limits,
) -> Result<Stats> {
    let mut archive = tar::Archive::new(LimitedReader {
        inner: reader,
        remaining: limits.max_bytes,
    });
    let mut ctx = Extraction {
        dest,
        mode,
        written: HashSet::new(),
        stats: Stats::default(),
        chown: nix::unistd::geteuid().is_root(),
    };
    let entries = archive.entries().map_err(|e| read_err(e, limits))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| read_err(e, limits))?;
        ctx.stats.entries += 1;
        if ctx.stats.entries > limits.max_entries {
            return Err(UnpackError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        ctx.entry(&mut entry, limits)?;
    }
    Ok(ctx.stats)
}

/// Tells a read error caused by the size limit from a corrupt archive.
fn read_err(e: io::Error, limits: Limits) -> UnpackError {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<SizeLimitExceeded>())
    {
        UnpackError::TooLarge {
            limit: limits.max_bytes,
        }
    } else {
        UnpackError::Corrupt(e)
    }
}

#[derive(Debug)]
struct SizeLimitExceeded;

impl std::fmt::Display for SizeLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("size limit exceeded")
    }
}

impl std::error::Error for SizeLimitExceeded {}

/// Fails reads past a byte budget, so a small compressed archive cannot fill the disk.
struct LimitedReader<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.remaining = self
            .remaining
            .checked_sub(n as u64)
            .ok_or_else(|| io::Error::other(SizeLimitExceeded))?;
        Ok(n)
    }
}

/// A layer entry's path, checked and made relative; `None` for the root itself.
fn entry_path(raw: &[u8]) -> Result<Option<PathBuf>> {
    let text = String::from_utf8_lossy(raw).into_owned();
    let mut out = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(raw)).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(UnpackError::Absolute { entry: text })
            }
            Component::ParentDir => return Err(UnpackError::Escape { entry: text }),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Checks that a symlink at `entry` pointing to `target` stays inside the root. Absolute
/// targets are resolved against the container's root when followed, so they stay in.
fn check_symlink_target(entry: &Path, target: &Path) -> Result<()> {
    if target.has_root() {
        return Ok(());
    }
    let mut depth = entry.components().count().saturating_sub(1);
    for component in target.components() {
        match component {
            Component::ParentDir if depth == 0 => {
                return Err(UnpackError::LinkOut {
                    entry: entry.display().to_string(),
                    target: target.display().to_string(),
                })
            }
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    Ok(())
}

enum Whiteout {
    /// `.wh..wh..opq`: hide everything the lower layers have in this directory.
    Opaque(PathBuf),
    /// `.wh.NAME`: delete NAME from the lower layers.
    Remove(PathBuf),
    /// Another `.wh..wh.` name (aufs metadata), ignored.
    Meta,
}

fn whiteout_of(rel: &Path) -> Result<Option<Whiteout>> {
    let name = rel
        .file_name()
        .map(OsStr::to_string_lossy)
        .unwrap_or_default();
    let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
    if name == OPAQUE_MARKER {
        return Ok(Some(Whiteout::Opaque(parent)));
    }
    if name.starts_with(".wh..wh.") {
        return Ok(Some(Whiteout::Meta));
    }
    match name.strip_prefix(WHITEOUT_PREFIX) {
        None => Ok(None),
        Some("" | "." | "..") => Err(UnpackError::Escape {
            entry: rel.display().to_string(),
        }),
        Some(target) => Ok(Some(Whiteout::Remove(parent.join(target)))),
    }
}

/// The state of one extraction.
struct Extraction<'a> {
    dest: &'a Path,
    mode: Mode,
    /// Paths this layer wrote, kept by an opaque whiteout in flatten mode.
    written: HashSet<PathBuf>,
    stats: Stats,
    chown: bool,
}

impl Extraction<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>, limits: Limits) -> Result<()> {
        let Some(rel) = entry_path(&entry.path_bytes())? else {
            return Ok(()); // "./": the root's own metadata is not the layer's to change
        };
        if let Some(whiteout) = whiteout_of(&rel)? {
            self.stats.whiteouts += 1;
            return self.whiteout(&rel, whiteout);
        }
        let target = self.prepare_parents(&rel)?;
        let kind = entry.header().entry_type();
        let shown = || rel.display().to_string();
        match kind {
            tar::EntryType::Directory => self.make_dir(&target)?,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.write_file(entry, &target, limits)?
            }
            tar::EntryType::Symlink => self.make_symlink(entry, &rel, &target)?,
            tar::EntryType::Link => return self.make_hardlink(entry, &rel, &target),
            tar::EntryType::Fifo => {
                replace(&target)?;
                nix::unistd::mkfifo(&target, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| io_err("creating fifo", &target)(e.into()))?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(UnpackError::Device { entry: shown() })
            }
            other => {
                return Err(UnpackError::UnsupportedEntry {
                    entry: shown(),
                    kind: format!("{other:?}"),
                })
            }
        }
        self.set_metadata(entry.header(), &target, kind == tar::EntryType::Symlink)?;
        self.written.insert(rel);
        Ok(())
    }

    /// Creates the missing parents of `rel`, refusing to go through a symlink or a file.
    fn prepare_parents(&self, rel: &Path) -> Result<PathBuf> {
        let mut path = self.dest.to_path_buf();
        let parents: Vec<_> = rel.components().collect();
        for component in &parents[..parents.len() - 1] {
            path.push(component);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(UnpackError::ThroughSymlink {
                        entry: rel.display().to_string(),
                        link: path
                            .strip_prefix(self.dest)
                            .unwrap_or(&path)
                            .display()
                            .to_string(),
                    })
                }
                Ok(_) => {
                    return Err(UnpackError::ParentNotDir {
                        entry: rel.display().to_string(),
                        parent: path
                            .strip_prefix(self.dest)
                            .unwrap_or(&path)
                            .display()
                            .to_string(),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&path).map_err(io_err("creating", &path))?
                }
                Err(e) => return Err(io_err("inspecting", &path)(e)),
            }
        }
        Ok(self.dest.join(rel))
    }

    fn make_dir(&self, target: &Path) -> Result<()> {
        match fs::symlink_metadata(target) {
            Ok(meta) if meta.is_dir() => Ok(()),
            _ => {
                replace(target)?;
                fs::create_dir(target).map_err(io_err("creating", target))
            }
        }
    }

    fn write_file<R: Read>(
        &self,
        entry: &mut tar::Entry<R>,
        target: &Path,
        limits: Limits,
    ) -> Result<()> {
        replace(target)?;
        let mut file = File::create(target).map_err(io_err("creating", target))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = entry.read(&mut buf).map_err(|e| read_err(e, limits))?;
            if n == 0 {
                return Ok(());
            }
            file.write_all(&buf[..n])
                .map_err(io_err("writing", target))?;
        }
    }

    fn make_symlink<R: Read>(
        &self,
        entry: &tar::Entry<R>,
        rel: &Path,
        target: &Path,
    ) -> Result<()> {
        let link = link_name(entry, rel)?;
        check_symlink_target(rel, &link)?;
        replace(target)?;
        symlink(&link, target).map_err(io_err("creating symlink", target))
    }

    fn make_hardlink<R: Read>(
        &mut self,
        entry: &tar::Entry<R>,
        rel: &Path,
        target: &Path,
    ) -> Result<()> {
        let raw = link_name(entry, rel)?;
        let shown = || (rel.display().to_string(), raw.display().to_string());
        let source_rel = match entry_path(raw.as_os_str().as_bytes()) {
            Ok(Some(p)) => p,
            _ => {
                let (entry, target) = shown();
                return Err(UnpackError::LinkOut { entry, target });
            }
        };
        let source = self.prepare_parents(&source_rel)?;
        if fs::symlink_metadata(&source).is_err() {
            let (entry, target) = shown();
            return Err(UnpackError::MissingLinkTarget { entry, target });
        }
        replace(target)?;
        // linkat without AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
        fs::hard_link(&source, target).map_err(io_err("creating hard link", target))?;
        self.written.insert(rel.to_path_buf());
        Ok(())
    }

    fn set_metadata(&self, header: &tar::Header, target: &Path, is_symlink: bool) -> Result<()> {
        if self.chown {
            let uid = header.uid().ok().and_then(|v| u32::try_from(v).ok());
            let gid = header.gid().ok().and_then(|v| u32::try_from(v).ok());
            lchown(target, uid, gid).map_err(io_err("changing the owner of", target))?;
        }
        if is_symlink {
            return Ok(());
        }
        if let Ok(mode) = header.mode() {
            fs::set_permissions(target, fs::Permissions::from_mode(mode & 0o7777))
                .map_err(io_err("setting the mode of", target))?;
        }
        if let Ok(mtime) = header.mtime() {
            let time = filetime::FileTime::from_unix_time(mtime as i64, 0);
            filetime::set_symlink_file_times(target, time, time)
                .map_err(io_err("setting the times of", target))?;
        }
        Ok(())
    }

    fn whiteout(&mut self, rel: &Path, whiteout: Whiteout) -> Result<()> {
        match (whiteout, self.mode) {
            (Whiteout::Meta, _) => Ok(()),
            (Whiteout::Remove(path), Mode::Flatten) => {
                self.prepare_parents(rel)?;
                replace(&self.dest.join(path))
            }
            (Whiteout::Remove(path), Mode::Overlay) => {
                let target = self
                    .prepare_parents(rel)?
                    .with_file_name(path.file_name().expect("checked"));
                replace(&target)?;
                let dev = nix::sys::stat::makedev(0, 0);
                nix::sys::stat::mknod(
                    &target,
                    nix::sys::stat::SFlag::S_IFCHR,
                    nix::sys::stat::Mode::empty(),
                    dev,
                )
                .map_err(|e| io_err("creating overlay whiteout", &target)(e.into()))
            }
            (Whiteout::Opaque(dir), mode) => {
                let dir_path = self
                    .prepare_parents(&dir.join(OPAQUE_MARKER))?
                    .with_file_name("");
                match mode {
                    Mode::Flatten => self.clear_lower(&dir, &dir_path),
                    Mode::Overlay => xattr::set(&dir_path, "trusted.overlay.opaque", b"y")
                        .map_err(io_err("marking opaque", &dir_path)),
                }
            }
        }
    }

    /// Removes what lower layers put in `dir`, keeping what this layer wrote there.
    fn clear_lower(&self, dir: &Path, dir_path: &Path) -> Result<()> {
        for child in fs::read_dir(dir_path).map_err(io_err("listing", dir_path))? {
            let child = child.map_err(io_err("listing", dir_path))?;
            if !self.written.contains(&dir.join(child.file_name())) {
                replace(&child.path())?;
            }
        }
        Ok(())
    }
}

fn link_name<R: Read>(entry: &tar::Entry<R>, rel: &Path) -> Result<PathBuf> {
    match entry.link_name_bytes() {
        Some(bytes) if !bytes.is_empty() => Ok(PathBuf::from(OsStr::from_bytes(&bytes))),
        _ => Err(UnpackError::Corrupt(io::Error::other(format!(
            "link entry {} has no target",
            rel.display()
        )))),
    }
}

/// Removes whatever is at `path` (never following a symlink), if anything.
fn replace(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).map_err(io_err("removing", path)),
        Ok(_) => fs::remove_file(path).map_err(io_err("removing", path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("inspecting", path)(e)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tar built entry by entry, with raw names so tests can write hostile ones.
    pub(crate) struct TarFixture(tar::Builder<Vec<u8>>);

    impl TarFixture {
        pub(crate) fn new() -> Self {
            TarFixture(tar::Builder::new(Vec::new()))
        }

        fn raw(mut self, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> Self {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(kind);
            h.set_mode(if kind == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            });
            h.set_size(data.len() as u64);
            h.set_cksum();
            self.0.append(&h, data).unwrap();
            self
        }

        pub(crate) fn file(self, name: &str, data: &str) -> Self {
            self.raw(name, tar::EntryType::Regular, "", data.as_bytes())
        }
        pub(crate) fn dir(self, name: &str) -> Self {
            self.raw(name, tar::EntryType::Directory, "", b"")
        }
        pub(crate) fn symlink(self, name: &str, target: &str) -> Self {
            self.raw(name, tar::EntryType::Symlink, target, b"")
        }
        pub(crate) fn hardlink(self, name: &str, target: &str) -> Self {
            self.raw(name, tar::EntryType::Link, target, b"")
        }
        pub(crate) fn device(self, name: &str) -> Self {
            self.raw(name, tar::EntryType::Char, "", b"")
        }
        pub(crate) fn bytes(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }
    }

    fn unpack(tar: TarFixture, dest: &Path, mode: Mode) -> Result<Stats> {
        unpack_archive(&tar.bytes()[..], dest, mode, Limits::default())
    }

    #[test]
    fn files_dirs_and_links_are_extracted() {
        let d = tempfile::tempdir().unwrap();
        let tar = TarFixture::new()
            .dir("./etc/")
            .file("etc/hosts", "127.0.0.1 localhost")
            .symlink("etc/link", "/etc/hosts")
            .hardlink("etc/hard", "etc/hosts")
            .file("deep/nested/file", "x");
        let stats = unpack(tar, d.path(), Mode::Flatten).unwrap();
        assert_eq!(stats.entries, 5);
        assert_eq!(
            fs::read_to_string(d.path().join("etc/hard")).unwrap(),
            "127.0.0.1 localhost"
        );
        assert_eq!(
            fs::read_link(d.path().join("etc/link")).unwrap(),
            Path::new("/etc/hosts")
        );
        assert!(d.path().join("deep/nested/file").is_file());
    }

    #[test]
    fn whiteouts_delete_in_flatten_mode() {
        let d = tempfile::tempdir().unwrap();
        let lower = TarFixture::new()
            .file("a/keep", "1")
            .file("a/gone", "2")
            .file("b/old", "3");
        unpack(lower, d.path(), Mode::Flatten).unwrap();
        let upper = TarFixture::new()
            .file(".wh.a", "")
            .file("b/new", "4")
            .file("b/.wh..wh..opq", "");
        let stats = unpack(upper, d.path(), Mode::Flatten).unwrap();
        assert_eq!(stats.whiteouts, 2);
        assert!(!d.path().join("a").exists());
        assert!(
            !d.path().join("b/old").exists(),
            "opaque dir hides lower content"
        );
        assert!(
            d.path().join("b/new").exists(),
            "opaque dir keeps this layer's content"
        );
    }

    #[test]
    fn single_file_whiteout_leaves_siblings() {
        let d = tempfile::tempdir().unwrap();
        unpack(
            TarFixture::new().file("a/keep", "1").file("a/gone", "2"),
            d.path(),
            Mode::Flatten,
        )
        .unwrap();
        unpack(
            TarFixture::new().file("a/.wh.gone", ""),
            d.path(),
            Mode::Flatten,
        )
        .unwrap();
        assert!(d.path().join("a/keep").exists());
        assert!(!d.path().join("a/gone").exists());
    }

    #[test]
    fn whiteouts_become_overlay_markers_in_overlay_mode() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: overlay whiteouts need root (mknod, trusted xattrs)");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let tar = TarFixture::new()
            .file(".wh.gone", "")
            .file("dir/.wh..wh..opq", "");
        unpack(tar, d.path(), Mode::Overlay).unwrap();
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = fs::symlink_metadata(d.path().join("gone")).unwrap();
        assert!(meta.file_type().is_char_device());
        assert_eq!(meta.rdev(), 0);
        let opaque = xattr::get(d.path().join("dir"), "trusted.overlay.opaque").unwrap();
        assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn dotdot_escape_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let err = unpack(
            TarFixture::new().file("a/../../evil", "x"),
            d.path(),
            Mode::Flatten,
        )
        .unwrap_err();
        assert!(matches!(err, UnpackError::Escape { .. }), "{err}");
        assert!(!d.path().parent().unwrap().join("evil").exists());
    }

    #[test]
    fn absolute_path_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let err = unpack(
            TarFixture::new().file("/tmp/isolab-evil", "x"),
            d.path(),
            Mode::Flatten,
        )
        .unwrap_err();
        assert!(matches!(err, UnpackError::Absolute { .. }), "{err}");
    }

    #[test]
    fn symlink_pointing_out_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let err = unpack(
            TarFixture::new().symlink("a/up", "../../etc"),
            d.path(),
            Mode::Flatten,
        )
        .unwrap_err();
        assert!(matches!(err, UnpackError::LinkOut { .. }), "{err}");
        // Climbing but staying inside is fine.
        unpack(
            TarFixture::new().symlink("a/b/up", "../../c"),
            d.path(),
            Mode::Flatten,
        )
        .unwrap();
    }

    #[test]
    fn writing_through_a_symlink_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let link_target = outside.path().to_str().unwrap();
        let tar = TarFixture::new()
            .symlink("etc", link_target)
            .file("etc/passwd", "pwned");
        let err = unpack(tar, d.path(), Mode::Flatten).unwrap_err();
        assert!(matches!(err, UnpackError::ThroughSymlink { .. }), "{err}");
        assert!(!outside.path().join("passwd").exists());
    }

    #[test]
    fn hardlink_pointing_out_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let err = unpack(
            TarFixture::new().hardlink("x", "../../etc/passwd"),
            d.path(),
            Mode::Flatten,
        )
        .unwrap_err();
        assert!(matches!(err, UnpackError::LinkOut { .. }), "{err}");
        let err = unpack(
            TarFixture::new().hardlink("x", "/etc/passwd"),
            d.path(),
            Mode::Flatten,
        )
        .unwrap_err();
        assert!(matches!(err, UnpackError::LinkOut { .. }), "{err}");
    }

    #[test]
    fn device_node_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let err = unpack(TarFixture::new().device("dev/sda"), d.path(), Mode::Flatten).unwrap_err();
        assert!(matches!(err, UnpackError::Device { .. }), "{err}");
        assert!(!d.path().join("dev/sda").exists());
    }

    #[test]
    fn corrupt_gzip_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let garbage = b"\x1f\x8b\x08\x00this is not deflate data at all".repeat(20);
        let err = unpack_archive(
            flate2::read::GzDecoder::new(&garbage[..]),
            d.path(),
            Mode::Flatten,
            Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, UnpackError::Corrupt(_)), "{err}");
    }

    #[test]
    fn oversized_archive_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let big = "x".repeat(100_000);
        let tar = TarFixture::new().file("big", &big).bytes();
        let limits = Limits {
            max_bytes: 10_000,
            ..Limits::default()
        };
        let err = unpack_archive(&tar[..], d.path(), Mode::Flatten, limits).unwrap_err();
        assert!(
            matches!(err, UnpackError::TooLarge { limit: 10_000 }),
            "{err}"
        );
        let limits = Limits {
            max_entries: 1,
            ..Limits::default()
        };
        let two = TarFixture::new().file("a", "").file("b", "").bytes();
        let err = unpack_archive(&two[..], d.path(), Mode::Flatten, limits).unwrap_err();
        assert!(
            matches!(err, UnpackError::TooManyEntries { limit: 1 }),
            "{err}"
        );
    }

    #[test]
    fn whiteout_naming_dotdot_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let err = unpack(
            TarFixture::new().file("a/.wh...", ""),
            d.path(),
            Mode::Flatten,
        )
        .unwrap_err();
        assert!(matches!(err, UnpackError::Escape { .. }), "{err}");
    }
}
