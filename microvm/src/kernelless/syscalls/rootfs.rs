//! Confinement of guest paths to `--rootfs`.
//!
//! Every guest path is made absolute (against the guest's cwd or a directory fd's guest
//! path) and resolved by the host kernel with `openat2(RESOLVE_IN_ROOT)` relative to a
//! descriptor of the rootfs directory: `..`, absolute symlinks and relative symlinks are
//! all clamped at the rootfs as if it were `/`, so no host path outside it is reachable.
//! Calls that act on a name rather than a file (`mkdir`, `unlink`, `rename`, `symlink`)
//! resolve the parent directory that way and then act on the last component relative to
//! that descriptor, which the kernel never follows further.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use syscalls::Errno;

use super::host;
use super::SyscallError;

/// `RESOLVE_NO_MAGICLINKS`: refuse `/proc/*/fd`-style links (none exist in a rootfs
/// normally, but a bind-mounted /proc must not become a way out).
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
/// `RESOLVE_IN_ROOT`: resolve as if the dirfd were `/`.
const RESOLVE_IN_ROOT: u64 = 0x10;

/// The guest's root directory and working directory.
#[derive(Debug)]
pub struct Rootfs {
    root: OwnedFd,
    root_path: PathBuf,
    cwd: Vec<u8>,
}

impl Rootfs {
    /// Opens `path` as the guest's `/`; the guest starts in `/`.
    pub fn open(path: &Path) -> Result<Self, SyscallError> {
        let root_path = path.canonicalize().map_err(|source| SyscallError::Rootfs {
            path: path.to_owned(),
            source,
        })?;
        let root = std::fs::File::open(&root_path)
            .and_then(|f| {
                if f.metadata()?.is_dir() {
                    Ok(f)
                } else {
                    Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
                }
            })
            .map_err(|source| SyscallError::Rootfs {
                path: path.to_owned(),
                source,
            })?;
        let root: OwnedFd = root.into();
        // Confinement rests on openat2 (Linux 5.6): refuse to start without it rather
        // than fail every open later.
        let probe = host::openat2(root.as_fd(), c".", libc::O_PATH, 0, RESOLVE_IN_ROOT);
        if let Err(errno) = probe {
            return Err(SyscallError::Confinement(errno));
        }
        Ok(Self {
            root,
            root_path,
            cwd: b"/".to_vec(),
        })
    }

    /// The guest's working directory, as a guest path.
    pub fn cwd(&self) -> &[u8] {
        &self.cwd
    }

    /// Opens a guest path (already absolute) inside the rootfs. The standard character
    /// devices (`/dev/null`, ...) are the host's when the rootfs has none of its own.
    pub fn open_abs(&self, abs: &[u8], flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
        let path = c_path(abs)?;
        let resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        match host::openat2(self.root.as_fd(), &path, flags, mode, resolve) {
            Err(Errno::ENOENT) => match standard_device(abs) {
                Some(dev) => host::openat2(self.root.as_fd(), dev, flags, 0, RESOLVE_NO_SYMLINKS),
                None => Err(Errno::ENOENT),
            },
            other => other,
        }
    }

    /// Makes `path` absolute against `base` (the cwd or a directory's guest path).
    pub fn absolute(base: &[u8], path: &[u8]) -> Vec<u8> {
        if path.first() == Some(&b'/') {
            return path.to_vec();
        }
        let mut abs = base.to_vec();
        if abs.last() != Some(&b'/') {
            abs.push(b'/');
        }
        abs.extend_from_slice(path);
        abs
    }

    /// The guest path of a host descriptor that refers to something inside the rootfs,
    /// read back from `/proc/self/fd` so renames and symlinks are accounted for.
    pub fn guest_path_of(&self, host_fd: RawFd) -> Result<Vec<u8>, Errno> {
        let link = CString::new(format!("/proc/self/fd/{host_fd}")).map_err(|_| Errno::EBADF)?;
        let mut buf = vec![0u8; 4096];
        let n = host::readlink(&link, &mut buf)?;
        buf.truncate(n);
        let root = self.root_path.as_os_str().as_encoded_bytes();
        if buf == root {
            return Ok(b"/".to_vec());
        }
        match buf.strip_prefix(root) {
            Some(rest) if rest.first() == Some(&b'/') || root == b"/" => {
                Ok(Self::absolute(b"/", rest))
            }
            // A pipe, a socket, stdio or a file outside: not a directory of the guest.
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// Changes the guest's working directory to an absolute guest path.
    pub fn chdir(&mut self, abs: &[u8]) -> Result<(), Errno> {
        let dir = self.open_abs(abs, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        self.cwd = self.guest_path_of(dir.as_raw_fd())?;
        Ok(())
    }

    /// Changes the working directory to an open directory descriptor.
    pub fn fchdir(&mut self, host_fd: RawFd) -> Result<(), Errno> {
        let path = self.guest_path_of(host_fd)?;
        self.chdir(&path)
    }

    /// Opens the parent directory of an absolute guest path and returns it with the
    /// last component; `None` as the name when the path has none (`/`, `.`, `..`).
    pub fn parent_of(&self, abs: &[u8]) -> Result<(OwnedFd, Option<CString>), Errno> {
        let trimmed = trim_trailing_slashes(abs);
        let split = trimmed.iter().rposition(|&b| b == b'/').unwrap_or(0);
        let (parent, name) = (&trimmed[..=split], &trimmed[split + 1..]);
        let dir = self.open_abs(parent, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        let name = match name {
            b"" | b"." | b".." => None,
            name => Some(CString::new(name).map_err(|_| Errno::EINVAL)?),
        };
        Ok((dir, name))
    }
}

/// `RESOLVE_NO_SYMLINKS`: the host device paths below are fixed and have no links.
const RESOLVE_NO_SYMLINKS: u64 = 0x04;

/// The character devices every guest has, as a container's minimal `/dev` does. They
/// hold no host data, so the host's own are lent when the rootfs lacks them.
pub const STANDARD_DEVICES: [&CStr; 5] = [
    c"/dev/null",
    c"/dev/zero",
    c"/dev/full",
    c"/dev/random",
    c"/dev/urandom",
];

/// The host device a guest path names, if it is one of [`STANDARD_DEVICES`] (repeated
/// slashes allowed; `.` and `..` are not interpreted).
fn standard_device(abs: &[u8]) -> Option<&'static CStr> {
    let mut clean = Vec::with_capacity(abs.len());
    for &b in abs {
        if !(b == b'/' && clean.last() == Some(&b'/')) {
            clean.push(b);
        }
    }
    STANDARD_DEVICES
        .into_iter()
        .find(|d| d.to_bytes() == clean.as_slice())
}

fn trim_trailing_slashes(path: &[u8]) -> &[u8] {
    let mut end = path.len();
    while end > 1 && path[end - 1] == b'/' {
        end -= 1;
    }
    &path[..end]
}

/// A guest path as a C string for the host (an empty one stays empty: `ENOENT`).
fn c_path(path: &[u8]) -> Result<CString, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    CString::new(path).map_err(|_| Errno::EINVAL)
}

/// The empty C string, for `*at(fd, "", AT_EMPTY_PATH)` calls.
pub const EMPTY: &CStr = c"";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A rootfs with `/etc/hosts`, `/dir/file`, and escape attempts as symlinks, inside
    /// a parent dir that holds a `secret` the guest must never see.
    pub(crate) fn fixture() -> (tempfile::TempDir, PathBuf) {
        let outer = tempfile::Builder::new()
            .prefix("isolab-syscalls-")
            .tempdir()
            .unwrap();
        std::fs::write(outer.path().join("secret"), "host secret").unwrap();
        let root = outer.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("dir")).unwrap();
        std::fs::write(root.join("etc/hosts"), "guest hosts").unwrap();
        std::fs::write(root.join("dir/file"), "hello").unwrap();
        symlink("/etc/passwd", root.join("abs-passwd")).unwrap();
        symlink("../../../../secret", root.join("dir/up")).unwrap();
        symlink(outer.path().join("secret"), root.join("hostpath")).unwrap();
        (outer, root)
    }

    fn read_all(fd: OwnedFd) -> String {
        std::io::read_to_string(std::fs::File::from(fd)).unwrap()
    }

    #[test]
    fn absolute_symlinks_resolve_inside_the_rootfs() {
        let (_outer, root) = fixture();
        let fs = Rootfs::open(&root).unwrap();
        // /abs-passwd -> /etc/passwd means the rootfs's /etc/passwd, which is absent.
        assert_eq!(
            fs.open_abs(b"/abs-passwd", libc::O_RDONLY, 0).unwrap_err(),
            Errno::ENOENT
        );
        std::fs::write(root.join("etc/passwd"), "guest passwd").unwrap();
        let fd = fs.open_abs(b"/abs-passwd", libc::O_RDONLY, 0).unwrap();
        assert_eq!(read_all(fd), "guest passwd");
        assert!(fs.open_abs(b"/hostpath", libc::O_RDONLY, 0).is_err());
    }

    #[test]
    fn dot_dot_stops_at_the_rootfs() {
        let (_outer, root) = fixture();
        let fs = Rootfs::open(&root).unwrap();
        assert_eq!(
            fs.open_abs(b"/../secret", libc::O_RDONLY, 0).unwrap_err(),
            Errno::ENOENT
        );
        assert_eq!(
            fs.open_abs(b"/dir/up", libc::O_RDONLY, 0).unwrap_err(),
            Errno::ENOENT
        );
        let fd = fs
            .open_abs(b"/../../../etc/hosts", libc::O_RDONLY, 0)
            .unwrap();
        assert_eq!(read_all(fd), "guest hosts");
    }

    #[test]
    fn chdir_and_guest_paths_are_rootfs_relative() {
        let (_outer, root) = fixture();
        let mut fs = Rootfs::open(&root).unwrap();
        fs.chdir(b"/dir/../dir/").unwrap();
        assert_eq!(fs.cwd(), b"/dir");
        fs.chdir(b"/../..").unwrap();
        assert_eq!(fs.cwd(), b"/");
        assert_eq!(fs.chdir(b"/dir/file").unwrap_err(), Errno::ENOTDIR);
        assert_eq!(Rootfs::absolute(b"/dir", b"file"), b"/dir/file");
        assert_eq!(Rootfs::absolute(b"/", b"file"), b"/file");
        assert_eq!(Rootfs::absolute(b"/dir", b"/x"), b"/x");
    }

    #[test]
    fn parent_of_splits_the_last_component() {
        let (_outer, root) = fixture();
        let fs = Rootfs::open(&root).unwrap();
        let (_dir, name) = fs.parent_of(b"/dir/new//").unwrap();
        assert_eq!(name.unwrap().as_bytes(), b"new");
        assert!(fs.parent_of(b"/").unwrap().1.is_none());
        assert!(fs.parent_of(b"/dir/..").unwrap().1.is_none());
    }

    #[test]
    fn standard_devices_are_lent_unless_the_rootfs_has_its_own() {
        let (_outer, root) = fixture();
        let fs = Rootfs::open(&root).unwrap();
        let null = fs.open_abs(b"//dev/null", libc::O_WRONLY, 0).unwrap();
        let meta = std::fs::File::from(null).metadata().unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(
            &meta.file_type()
        ));
        assert_eq!(
            fs.open_abs(b"/dev/sda", libc::O_RDONLY, 0).unwrap_err(),
            Errno::ENOENT
        );
        assert_eq!(
            fs.open_abs(b"/dev/../dev/null", libc::O_RDONLY, 0)
                .unwrap_err(),
            Errno::ENOENT
        );
        std::fs::create_dir(root.join("dev")).unwrap();
        std::fs::write(root.join("dev/null"), "the rootfs's own").unwrap();
        let own = fs.open_abs(b"/dev/null", libc::O_RDONLY, 0).unwrap();
        assert_eq!(read_all(own), "the rootfs's own");
    }

    #[test]
    fn a_missing_or_non_directory_rootfs_is_a_clear_error() {
        let (_outer, root) = fixture();
        let err = Rootfs::open(&root.join("nope")).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
        let err = Rootfs::open(&root.join("dir/file"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Not a directory"), "{err}");
    }
}
