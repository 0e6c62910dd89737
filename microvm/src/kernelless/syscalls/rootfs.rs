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
        Ok(Self {
            root: root.into(),
            root_path,
            cwd: b"/".to_vec(),
        })
    }

    /// The guest's working directory, as a guest path.
    pub fn cwd(&self) -> &[u8] {
        &self.cwd
    }

    /// Opens a guest path (already absolute) inside the rootfs.
    pub fn open_abs(&self, abs: &[u8], flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
        let path = c_path(abs)?;
        host::openat2(
            self.root.as_fd(),
            &path,
            flags,
            mode,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        )
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
        let outer = tempfile::tempdir().unwrap();
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
