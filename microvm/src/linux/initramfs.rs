//! The initramfs writer: a newc ("070701") cpio archive, built in Rust with no external
//! tool, whose `/init` is the workload. The kernel unpacks it into its rootfs and runs
//! `/init` as PID 1.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Why the initramfs could not be built.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// A source file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The archive could not be written.
    #[error("writing the initramfs to {path}: {source}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A destination path inside the archive is not usable.
    #[error(
        "bad path inside the initramfs {0:?}: use an absolute path without `..`, such as /bin/tool"
    )]
    BadDestination(String),
    /// An `--add` argument without the `SRC:DST` shape.
    #[error("bad --add {0:?}: expected SRC:DST, for example ./data.bin:/data.bin")]
    BadAdd(String),
    /// Two entries for the same path.
    #[error("{0} is in the initramfs twice")]
    Duplicate(String),
    /// A file too large for the format's 32-bit size field.
    #[error("{0} is larger than the 4 GiB a cpio entry can hold")]
    TooLarge(PathBuf),
    /// No init binary was given and none was found next to the monitor.
    #[error("no init binary: {0} not found; build the workload (cargo build -p workload) or pass --init BINARY")]
    NoInit(PathBuf),
}

/// Character device mode bits (S_IFCHR).
const S_IFCHR: u32 = 0o020_000;
/// Directory mode bits (S_IFDIR).
const S_IFDIR: u32 = 0o040_000;
/// Regular file mode bits (S_IFREG).
const S_IFREG: u32 = 0o100_000;
/// The newc magic.
const MAGIC: &[u8; 6] = b"070701";
/// The name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file with its contents.
    File(Vec<u8>),
    /// A character device (major, minor).
    CharDev(u32, u32),
}

/// One archive entry; `path` is relative (`init`, `dev/console`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path inside the archive, without a leading `/`.
    pub path: String,
    /// Permission bits (0o755, ...).
    pub perm: u32,
    /// The entry's type and data.
    pub kind: EntryKind,
}

impl Entry {
    fn mode(&self) -> u32 {
        let kind = match self.kind {
            EntryKind::Dir => S_IFDIR,
            EntryKind::File(_) => S_IFREG,
            EntryKind::CharDev(..) => S_IFCHR,
        };
        kind | (self.perm & 0o7777)
    }
}

/// An archive being assembled: parent directories are added on demand, in order.
#[derive(Debug, Default)]
pub struct Archive {
    entries: Vec<Entry>,
    paths: BTreeSet<String>,
}

/// Checks and normalises an archive path: absolute or relative, no `..`, not empty.
pub fn normalise(dst: &str) -> Result<String, InitramfsError> {
    let mut parts = Vec::new();
    for component in Path::new(dst).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => parts.push(
                part.to_str()
                    .ok_or_else(|| InitramfsError::BadDestination(dst.into()))?,
            ),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(InitramfsError::BadDestination(dst.into()))
            }
        }
    }
    if parts.is_empty() {
        return Err(InitramfsError::BadDestination(dst.into()));
    }
    Ok(parts.join("/"))
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// The archive every guest gets: `/dev/console` (so init has a stdout even before
    /// devtmpfs is mounted) and the mount points init uses.
    pub fn with_base_layout() -> Self {
        let mut archive = Self::new();
        for dir in ["dev", "proc", "sys", "tmp"] {
            archive.push_dir(dir);
        }
        archive.push(Entry {
            path: "dev/console".into(),
            perm: 0o600,
            kind: EntryKind::CharDev(5, 1),
        });
        archive
    }

    fn push_dir(&mut self, path: &str) {
        if self.paths.insert(path.to_owned()) {
            self.entries.push(Entry {
                path: path.to_owned(),
                perm: 0o755,
                kind: EntryKind::Dir,
            });
        }
    }

    fn push(&mut self, entry: Entry) {
        self.paths.insert(entry.path.clone());
        self.entries.push(entry);
    }

    /// Adds a file at `dst` with `data`, creating its parent directories.
    pub fn add_file(&mut self, dst: &str, perm: u32, data: Vec<u8>) -> Result<(), InitramfsError> {
        let path = normalise(dst)?;
        if self.paths.contains(&path) {
            return Err(InitramfsError::Duplicate(format!("/{path}")));
        }
        let mut parent = String::new();
        for part in path.split('/').take(path.split('/').count() - 1) {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            self.push_dir(&parent.clone());
        }
        self.push(Entry {
            path,
            perm,
            kind: EntryKind::File(data),
        });
        Ok(())
    }

    /// Adds the host file `src` at `dst`, keeping its permission bits.
    pub fn add_host_file(&mut self, src: &Path, dst: &str) -> Result<(), InitramfsError> {
        self.add_host_file_with(src, dst, 0)
    }

    /// Adds the host file `src` at `dst` with its permission bits plus `extra_perm`.
    fn add_host_file_with(
        &mut self,
        src: &Path,
        dst: &str,
        extra_perm: u32,
    ) -> Result<(), InitramfsError> {
        let read_err = |source| InitramfsError::Read {
            path: src.to_owned(),
            source,
        };
        let meta = fs::metadata(src).map_err(read_err)?;
        if meta.len() > u64::from(u32::MAX) {
            return Err(InitramfsError::TooLarge(src.to_owned()));
        }
        let data = fs::read(src).map_err(read_err)?;
        self.add_file(dst, meta.permissions().mode() | extra_perm, data)
    }

    /// The entries, in archive order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Writes the archive in newc format, ending with the trailer.
    pub fn write_to<W: Write>(&self, out: &mut W) -> io::Result<()> {
        for (index, entry) in self.entries.iter().enumerate() {
            let ino = u32::try_from(index + 1).unwrap_or(u32::MAX);
            write_entry(out, ino, entry)?;
        }
        let trailer = Entry {
            path: TRAILER.into(),
            perm: 0,
            kind: EntryKind::File(Vec::new()),
        };
        write_header(out, 0, &trailer, 0)?;
        write_name_and_data(out, TRAILER, &[])
    }
}

fn write_entry<W: Write>(out: &mut W, ino: u32, entry: &Entry) -> io::Result<()> {
    let data: &[u8] = match &entry.kind {
        EntryKind::File(data) => data,
        _ => &[],
    };
    let nlink = if entry.kind == EntryKind::Dir { 2 } else { 1 };
    write_header(out, ino, entry, nlink)?;
    write_name_and_data(out, &entry.path, data)
}

fn write_header<W: Write>(out: &mut W, ino: u32, entry: &Entry, nlink: u32) -> io::Result<()> {
    let (size, rdev) = match &entry.kind {
        EntryKind::File(data) => (data.len(), (0, 0)),
        EntryKind::Dir => (0, (0, 0)),
        EntryKind::CharDev(major, minor) => (0, (*major, *minor)),
    };
    let size = u32::try_from(size).map_err(|_| io::Error::other("entry larger than 4 GiB"))?;
    let namesize =
        u32::try_from(entry.path.len() + 1).map_err(|_| io::Error::other("name too long"))?;
    let fields = [
        ino,
        entry.mode(),
        0,
        0,
        nlink,
        0,
        size,
        0,
        0,
        rdev.0,
        rdev.1,
        namesize,
        0,
    ];
    out.write_all(MAGIC)?;
    for field in fields {
        write!(out, "{field:08x}")?;
    }
    Ok(())
}

/// Header (110 bytes) + name + NUL is padded to 4 bytes, and so is the data.
fn write_name_and_data<W: Write>(out: &mut W, name: &str, data: &[u8]) -> io::Result<()> {
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    out.write_all(&[0; 3][..pad4(110 + name.len() + 1)])?;
    out.write_all(data)?;
    out.write_all(&[0; 3][..pad4(data.len())])
}

fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// What `microvm initramfs` builds.
#[derive(Debug, Clone)]
pub struct InitramfsSpec {
    /// The binary that becomes `/init`.
    pub init: PathBuf,
    /// Extra host files: (source, destination inside the guest).
    pub extra: Vec<(PathBuf, String)>,
}

/// Parses an `--add SRC:DST` argument (the last `:` separates them).
pub fn parse_add(arg: &str) -> Result<(PathBuf, String), InitramfsError> {
    match arg.rsplit_once(':') {
        Some((src, dst)) if !src.is_empty() && !dst.is_empty() => Ok((src.into(), dst.into())),
        _ => Err(InitramfsError::BadAdd(arg.into())),
    }
}

/// The default `/init`: the workload binary next to the running monitor.
pub fn default_init() -> Result<PathBuf, InitramfsError> {
    let exe = std::env::current_exe().unwrap_or_default();
    let candidate = exe.with_file_name("workload");
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(InitramfsError::NoInit(candidate))
    }
}

/// Builds the archive for `spec`.
pub fn build(spec: &InitramfsSpec) -> Result<Archive, InitramfsError> {
    let mut archive = Archive::with_base_layout();
    // The kernel runs /init whatever its mode was on the host; one that is not
    // executable ends the boot with "Failed to execute /init (error -13)".
    archive.add_host_file_with(&spec.init, "/init", 0o555)?;
    for (src, dst) in &spec.extra {
        archive.add_host_file(src, dst)?;
    }
    Ok(archive)
}

/// Builds the archive for `spec` and writes it to `output` (via a temp file in the same
/// directory, so a failure leaves no half-written archive behind). Returns its size.
pub fn write_file(spec: &InitramfsSpec, output: &Path) -> Result<u64, InitramfsError> {
    let archive = build(spec)?;
    let write_err = |source| InitramfsError::Write {
        path: output.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    archive.write_to(&mut bytes).map_err(write_err)?;
    let tmp = output.with_extension("isolab-tmp");
    fs::write(&tmp, &bytes)
        .and_then(|()| fs::rename(&tmp, output))
        .map_err(|source| {
            let _ = fs::remove_file(&tmp);
            write_err(source)
        })?;
    Ok(bytes.len() as u64)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A parsed entry: name, mode, (rdev major, minor), data.
    pub(crate) type Parsed = (String, u32, (u32, u32), Vec<u8>);

    /// A minimal newc reader, to prove the writer's output round-trips.
    pub(crate) fn parse(mut bytes: &[u8]) -> Vec<Parsed> {
        let mut out = Vec::new();
        loop {
            assert_eq!(&bytes[..6], MAGIC, "bad magic");
            let field = |i: usize| {
                let hex = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(hex, 16).unwrap()
            };
            let (mode, size, rdev, namesize) = (
                field(1),
                field(6) as usize,
                (field(9), field(10)),
                field(11) as usize,
            );
            let name = std::str::from_utf8(&bytes[110..110 + namesize - 1])
                .unwrap()
                .to_owned();
            assert_eq!(bytes[110 + namesize - 1], 0, "name is NUL-terminated");
            let data_start = 110 + namesize + pad4(110 + namesize);
            let data = bytes[data_start..data_start + size].to_vec();
            bytes = &bytes[data_start + size + pad4(size)..];
            if name == TRAILER {
                assert!(bytes.is_empty(), "nothing after the trailer");
                return out;
            }
            out.push((name, mode, rdev, data));
        }
    }

    #[test]
    fn archive_round_trips_through_a_newc_reader() {
        let mut archive = Archive::with_base_layout();
        archive
            .add_file("/init", 0o755, b"#!init".to_vec())
            .unwrap();
        archive
            .add_file("/usr/share/x.txt", 0o644, b"hello".to_vec())
            .unwrap();
        let mut bytes = Vec::new();
        archive.write_to(&mut bytes).unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let entries = parse(&bytes);
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "dev",
                "proc",
                "sys",
                "tmp",
                "dev/console",
                "init",
                "usr",
                "usr/share",
                "usr/share/x.txt"
            ]
        );
        assert_eq!(entries[4].1, S_IFCHR | 0o600);
        assert_eq!(entries[4].2, (5, 1));
        assert_eq!(
            entries[5],
            ("init".into(), S_IFREG | 0o755, (0, 0), b"#!init".to_vec())
        );
        assert_eq!(entries[6].1, S_IFDIR | 0o755);
        assert_eq!(entries[8].3, b"hello");
    }

    #[test]
    fn every_name_length_pads_to_four_bytes() {
        for len in 1..9 {
            let mut archive = Archive::new();
            let name = "n".repeat(len);
            archive.add_file(&name, 0o644, vec![7; len]).unwrap();
            let mut bytes = Vec::new();
            archive.write_to(&mut bytes).unwrap();
            assert_eq!(
                parse(&bytes),
                vec![(name, S_IFREG | 0o644, (0, 0), vec![7; len])]
            );
        }
    }

    #[test]
    fn escaping_empty_and_duplicate_paths_are_refused() {
        let mut archive = Archive::new();
        for bad in ["../etc/passwd", "/a/../../b", "/", ""] {
            assert!(
                matches!(
                    archive.add_file(bad, 0o644, vec![]),
                    Err(InitramfsError::BadDestination(_))
                ),
                "{bad}"
            );
        }
        archive.add_file("/a/b", 0o644, vec![]).unwrap();
        assert!(matches!(
            archive.add_file("a//b", 0o644, vec![]),
            Err(InitramfsError::Duplicate(_))
        ));
    }

    #[test]
    fn add_argument_splits_on_the_last_colon() {
        assert_eq!(
            parse_add("./x:y:/bin/x").unwrap(),
            (PathBuf::from("./x:y"), "/bin/x".into())
        );
        assert!(matches!(
            parse_add("no-colon"),
            Err(InitramfsError::BadAdd(_))
        ));
        assert!(matches!(parse_add(":/dst"), Err(InitramfsError::BadAdd(_))));
    }

    #[test]
    fn init_is_executable_whatever_its_host_mode_and_added_files_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("init.sh");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
        let spec = InitramfsSpec {
            init: script.clone(),
            extra: vec![(script, "/etc/data".into())],
        };
        let archive = build(&spec).unwrap();
        let mut bytes = Vec::new();
        archive.write_to(&mut bytes).unwrap();
        let mode_of = |name: &str| {
            parse(&bytes)
                .into_iter()
                .find(|e| e.0 == name)
                .map(|e| e.1 & 0o7777)
        };
        assert_eq!(mode_of("init"), Some(0o755));
        assert_eq!(mode_of("etc/data"), Some(0o644));
    }

    #[test]
    fn missing_source_file_names_it_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("initrd.cpio");
        let spec = InitramfsSpec {
            init: dir.path().join("absent"),
            extra: vec![],
        };
        let err = write_file(&spec, &out).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
