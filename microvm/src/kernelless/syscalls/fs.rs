//! File and directory calls: `open*`, the `stat` family, `getdents64`, `mkdir`,
//! `unlink`, `rename`, `symlink`, `readlink`, `access`, `getcwd`, `chdir`. Every path is
//! resolved inside the rootfs by [`Rootfs`](super::rootfs::Rootfs).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use syscalls::Errno;

use super::host;
use super::rootfs::Rootfs;
use super::user_memory::UserMemory;
use super::{SysResult, SyscallHandler};

/// `creat(path, mode)` is `open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)`.
pub const CREAT_FLAGS: u64 = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64;
/// `AT_SYMLINK_NOFOLLOW`, for `lstat`.
pub const NOFOLLOW: u64 = libc::AT_SYMLINK_NOFOLLOW as u64;

/// The `open` flags passed to the host (`openat2` refuses unknown bits, `open` ignores
/// them, so the guest's are masked to these first).
const OPEN_FLAGS: i32 = libc::O_ACCMODE
    | libc::O_CREAT
    | libc::O_EXCL
    | libc::O_NOCTTY
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DSYNC
    | libc::O_SYNC
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_CLOEXEC
    | libc::O_PATH
    | libc::O_TMPFILE
    | libc::O_NOATIME
    | libc::O_DIRECT
    | libc::O_LARGEFILE;

/// Most bytes one `getdents64` call returns (a shorter answer is always allowed).
const DENTS_MAX: u64 = 64 << 10;

/// The file a `*at` call acts on: the dirfd itself (`AT_EMPTY_PATH`) or a path opened.
enum Target {
    Borrowed(RawFd),
    Opened(OwnedFd),
}

impl Target {
    fn raw(&self) -> RawFd {
        match self {
            Target::Borrowed(fd) => *fd,
            Target::Opened(fd) => fd.as_raw_fd(),
        }
    }
}

/// The guest's `int dirfd` argument (only the low 32 bits count).
fn dirfd_of(arg: u64) -> i32 {
    arg as u32 as i32
}

impl SyscallHandler {
    /// The absolute guest path of `path` relative to a guest `dirfd` (or the cwd).
    fn abs_path(&self, dirfd: u64, path: &[u8]) -> Result<Vec<u8>, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.first() == Some(&b'/') {
            return Ok(path.to_vec());
        }
        if dirfd_of(dirfd) == libc::AT_FDCWD {
            return Ok(Rootfs::absolute(self.rootfs.cwd(), path));
        }
        let host = self.fds.host_fd(u64::from(dirfd_of(dirfd) as u32))?;
        let base = self.rootfs.guest_path_of(host)?;
        Ok(Rootfs::absolute(&base, path))
    }

    /// Reads a guest path argument and makes it absolute.
    fn guest_path(&self, um: &UserMemory<'_>, dirfd: u64, path: u64) -> Result<Vec<u8>, Errno> {
        let path = um.read_path(path)?;
        self.abs_path(dirfd, &path)
    }

    /// Where a call that creates an entry at a guest path puts it: the parent
    /// directory and the new name. The root has no name of its own and already exists.
    fn new_entry(
        &self,
        um: &UserMemory<'_>,
        dirfd: u64,
        path: u64,
    ) -> Result<(OwnedFd, CString), Errno> {
        let abs = self.guest_path(um, dirfd, path)?;
        let (dir, name) = self.rootfs.parent_of(&abs)?;
        Ok((dir, name.ok_or(Errno::EEXIST)?))
    }

    /// Resolves the target of a `*at` call with `AT_EMPTY_PATH` and
    /// `AT_SYMLINK_NOFOLLOW` semantics, as an `O_PATH` descriptor.
    fn target(
        &self,
        um: &UserMemory<'_>,
        dirfd: u64,
        path: u64,
        at_flags: u64,
    ) -> Result<Target, Errno> {
        let path = um.read_path(path)?;
        let empty_path = path.is_empty() && at_flags & libc::AT_EMPTY_PATH as u64 != 0;
        let abs = match (empty_path, dirfd_of(dirfd)) {
            (true, libc::AT_FDCWD) => self.rootfs.cwd().to_vec(),
            (true, fd) => return Ok(Target::Borrowed(self.fds.host_fd(u64::from(fd as u32))?)),
            (false, _) => self.abs_path(dirfd, &path)?,
        };
        let mut flags = libc::O_PATH;
        if at_flags & NOFOLLOW != 0 {
            flags |= libc::O_NOFOLLOW;
        }
        self.rootfs.open_abs(&abs, flags, 0).map(Target::Opened)
    }

    /// `openat(2)` (and `open`, `creat`).
    pub(super) fn openat(
        &mut self,
        um: &UserMemory<'_>,
        dirfd: u64,
        path: u64,
        flags: u64,
        mode: u64,
    ) -> SysResult {
        let abs = self.guest_path(um, dirfd, path)?;
        let flags = flags as i32 & OPEN_FLAGS;
        let creates = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
        let mode = if creates { mode as u32 & 0o7777 } else { 0 };
        let fd = self.rootfs.open_abs(&abs, flags, mode)?;
        self.fds
            .insert(fd, flags & libc::O_CLOEXEC != 0)
            .map(u64::from)
    }

    /// `fstat(2)`: the host's `struct stat`, which has the guest's layout.
    pub(super) fn fstat(&mut self, um: &UserMemory<'_>, fd: u64, buf: u64) -> SysResult {
        let host = self.fds.host_fd(fd)?;
        um.check(buf, host::STAT_SIZE)?;
        um.write(buf, &host::fstat(host)?).map(|()| 0)
    }

    /// `newfstatat(2)` (and `stat`, `lstat`).
    pub(super) fn fstatat(
        &mut self,
        um: &UserMemory<'_>,
        dirfd: u64,
        path: u64,
        buf: u64,
        flags: u64,
    ) -> SysResult {
        let allowed =
            (libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH | libc::AT_NO_AUTOMOUNT) as u64;
        if flags & !allowed != 0 {
            return Err(Errno::EINVAL);
        }
        um.check(buf, host::STAT_SIZE)?;
        let target = self.target(um, dirfd, path, flags)?;
        um.write(buf, &host::fstat(target.raw())?).map(|()| 0)
    }

    /// `statx(2)`.
    pub(super) fn statx(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let (dirfd, path, flags, mask, buf) = (a[0], a[1], a[2], a[3] as u32, a[4]);
        um.check(buf, host::STATX_SIZE)?;
        let target = self.target(um, dirfd, path, flags)?;
        let sync = flags as i32 & libc::AT_STATX_SYNC_TYPE;
        um.write(buf, &host::statx(target.raw(), sync, mask)?)
            .map(|()| 0)
    }

    /// `getdents64(2)`: the host's `linux_dirent64` records, copied as they are.
    pub(super) fn getdents64(
        &mut self,
        um: &UserMemory<'_>,
        fd: u64,
        dirp: u64,
        count: u64,
    ) -> SysResult {
        let host = self.fds.host_fd(fd)?;
        let count = count.min(u64::from(u32::MAX));
        um.check(dirp, count as usize)?;
        let mut buf = vec![0u8; count.min(DENTS_MAX) as usize];
        let n = host::getdents64(host, &mut buf)?;
        um.write(dirp, &buf[..n]).map(|()| n as u64)
    }

    /// `mkdirat(2)` (and `mkdir`).
    pub(super) fn mkdirat(
        &mut self,
        um: &UserMemory<'_>,
        dirfd: u64,
        path: u64,
        mode: u64,
    ) -> SysResult {
        let (dir, name) = self.new_entry(um, dirfd, path)?;
        host::mkdirat(dir.as_raw_fd(), &name, mode as u32 & 0o7777).map(|_| 0)
    }

    /// `unlinkat(2)` (and `unlink`, `rmdir`).
    pub(super) fn unlinkat(
        &mut self,
        um: &UserMemory<'_>,
        dirfd: u64,
        path: u64,
        flags: u64,
    ) -> SysResult {
        let rmdir = libc::AT_REMOVEDIR as u64;
        if flags & !rmdir != 0 {
            return Err(Errno::EINVAL);
        }
        let abs = self.guest_path(um, dirfd, path)?;
        let (dir, name) = self.rootfs.parent_of(&abs)?;
        let no_name = if flags & rmdir != 0 {
            Errno::EBUSY
        } else {
            Errno::EISDIR
        };
        let name = name.ok_or(no_name)?;
        host::unlinkat(dir.as_raw_fd(), &name, flags as i32).map(|_| 0)
    }

    /// `renameat2(2)` (and `rename`, `renameat`); `paths` is old dirfd, old path, new
    /// dirfd, new path.
    pub(super) fn renameat2(
        &mut self,
        um: &UserMemory<'_>,
        paths: [u64; 4],
        flags: u64,
    ) -> SysResult {
        let allowed = (libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) as u64;
        if flags & !allowed != 0 {
            return Err(Errno::EINVAL);
        }
        let old = self.guest_path(um, paths[0], paths[1])?;
        let new = self.guest_path(um, paths[2], paths[3])?;
        let (old_dir, old_name) = self.rootfs.parent_of(&old)?;
        let (new_dir, new_name) = self.rootfs.parent_of(&new)?;
        let (old_name, new_name) = (old_name.ok_or(Errno::EBUSY)?, new_name.ok_or(Errno::EBUSY)?);
        host::renameat2(
            (old_dir.as_raw_fd(), &old_name),
            (new_dir.as_raw_fd(), &new_name),
            flags as u32,
        )
        .map(|_| 0)
    }

    /// `linkat(2)` (and `link`): a hard link; the old name is never followed
    /// (`AT_SYMLINK_FOLLOW` is refused), so both ends stay inside the rootfs.
    pub(super) fn linkat(&mut self, um: &UserMemory<'_>, paths: [u64; 4], flags: u64) -> SysResult {
        if flags != 0 {
            return Err(Errno::EINVAL);
        }
        let old = self.guest_path(um, paths[0], paths[1])?;
        let new = self.guest_path(um, paths[2], paths[3])?;
        let (old_dir, old_name) = self.rootfs.parent_of(&old)?;
        let (new_dir, new_name) = self.rootfs.parent_of(&new)?;
        let old_name = old_name.ok_or(Errno::EPERM)?;
        let new_name = new_name.ok_or(Errno::EEXIST)?;
        host::linkat(
            (old_dir.as_raw_fd(), &old_name),
            (new_dir.as_raw_fd(), &new_name),
        )
        .map(|_| 0)
    }

    /// `symlinkat(2)` (and `symlink`). The target is stored as given: it is only ever
    /// resolved later, inside the rootfs.
    pub(super) fn symlinkat(
        &mut self,
        um: &UserMemory<'_>,
        target: u64,
        dirfd: u64,
        path: u64,
    ) -> SysResult {
        let target = CString::new(um.read_path(target)?).map_err(|_| Errno::EINVAL)?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        let (dir, name) = self.new_entry(um, dirfd, path)?;
        host::symlinkat(&target, dir.as_raw_fd(), &name).map(|_| 0)
    }

    /// `readlinkat(2)` (and `readlink`).
    pub(super) fn readlinkat(
        &mut self,
        um: &UserMemory<'_>,
        dirfd: u64,
        path: u64,
        buf: u64,
        size: u64,
    ) -> SysResult {
        if size as i32 <= 0 {
            return Err(Errno::EINVAL);
        }
        let size = size as u32 as usize;
        um.check(buf, size)?;
        let target = self.target(um, dirfd, path, NOFOLLOW | libc::AT_EMPTY_PATH as u64)?;
        let mut link = vec![0u8; 4096];
        let n = host::readlink_fd(target.raw(), &mut link).map_err(|e| {
            if e == Errno::ENOENT {
                Errno::EINVAL
            } else {
                e
            }
        })?;
        let n = n.min(size);
        um.write(buf, &link[..n]).map(|()| n as u64)
    }

    /// `faccessat2(2)` (and `access`, `faccessat`).
    pub(super) fn faccessat(
        &mut self,
        um: &UserMemory<'_>,
        dirfd: u64,
        path: u64,
        mode: u64,
        flags: u64,
    ) -> SysResult {
        let allowed = (libc::AT_EACCESS | libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) as u64;
        if mode & !7 != 0 || flags & !allowed != 0 {
            return Err(Errno::EINVAL);
        }
        let target = self.target(um, dirfd, path, flags)?;
        host::access_fd(target.raw(), mode as i32).map(|_| 0)
    }

    /// `utimensat(2)`: a NULL path means the file `dirfd` itself (`futimens`).
    pub(super) fn utimensat(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let (dirfd, path, times, flags) = (a[0], a[1], a[2], a[3]);
        let allowed = (libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) as u64;
        if flags & !allowed != 0 {
            return Err(Errno::EINVAL);
        }
        let times = if times == 0 {
            None
        } else {
            let raw = um.read_vec(times, 32)?;
            let word =
                |i: usize| i64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            Some([
                libc::timespec {
                    tv_sec: word(0),
                    tv_nsec: word(1),
                },
                libc::timespec {
                    tv_sec: word(2),
                    tv_nsec: word(3),
                },
            ])
        };
        let target = if path == 0 {
            Target::Borrowed(self.fds.host_fd(u64::from(dirfd_of(dirfd) as u32))?)
        } else {
            self.target(um, dirfd, path, flags)?
        };
        host::utimens_fd(target.raw(), times.as_ref()).map(|_| 0)
    }

    /// `fchmodat(2)` (and `chmod`).
    pub(super) fn fchmodat(
        &mut self,
        um: &UserMemory<'_>,
        dirfd: u64,
        path: u64,
        mode: u64,
    ) -> SysResult {
        let target = self.target(um, dirfd, path, 0)?;
        host::chmod_fd(target.raw(), mode as u32 & 0o7777).map(|_| 0)
    }

    /// `fchownat(2)` (and `chown`, `lchown`).
    pub(super) fn fchownat(&mut self, um: &UserMemory<'_>, a: [u64; 6]) -> SysResult {
        let allowed = (libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) as u64;
        if a[4] & !allowed != 0 {
            return Err(Errno::EINVAL);
        }
        let target = self.target(um, a[0], a[1], a[4])?;
        host::chown_fd(target.raw(), a[2] as u32, a[3] as u32).map(|_| 0)
    }

    /// `truncate(2)`.
    pub(super) fn truncate(&mut self, um: &UserMemory<'_>, path: u64, len: u64) -> SysResult {
        let abs = self.guest_path(um, libc::AT_FDCWD as u64, path)?;
        let file = self.rootfs.open_abs(&abs, libc::O_WRONLY, 0)?;
        host::plain(
            syscalls::Sysno::ftruncate,
            [file.as_raw_fd() as u64, len, 0, 0],
        )
        .map(|_| 0)
    }

    /// `statfs(2)`, or `fstatfs(2)` when `path` is `None`.
    pub(super) fn statfs(
        &mut self,
        um: &UserMemory<'_>,
        fd_or_path: (u64, Option<u64>),
        buf: u64,
    ) -> SysResult {
        um.check(buf, host::STATFS_SIZE)?;
        let target = match fd_or_path {
            (fd, None) => Target::Borrowed(self.fds.host_fd(fd)?),
            (_, Some(path)) => self.target(um, libc::AT_FDCWD as u64, path, 0)?,
        };
        um.write(buf, &host::fstatfs(target.raw())?).map(|()| 0)
    }

    /// `getcwd(2)`: the guest path, NUL-terminated; returns its length with the NUL.
    pub(super) fn getcwd(&mut self, um: &UserMemory<'_>, buf: u64, size: u64) -> SysResult {
        let mut cwd = self.rootfs.cwd().to_vec();
        cwd.push(0);
        if (size as usize) < cwd.len() {
            return Err(Errno::ERANGE);
        }
        um.write(buf, &cwd).map(|()| cwd.len() as u64)
    }

    /// `chdir(2)`.
    pub(super) fn chdir(&mut self, um: &UserMemory<'_>, path: u64) -> SysResult {
        let abs = self.guest_path(um, libc::AT_FDCWD as u64, path)?;
        self.rootfs.chdir(&abs).map(|()| 0)
    }

    /// `fchdir(2)`.
    pub(super) fn fchdir(&mut self, fd: u64) -> SysResult {
        let host = self.fds.host_fd(fd)?;
        self.rootfs.fchdir(host).map(|()| 0)
    }
}

#[cfg(test)]
mod tests {
    use crate::kernelless::syscalls::tests::{err, Guest, SCRATCH};
    use syscalls::{Errno, Sysno};

    const PATH: u64 = SCRATCH + 0x10000;
    const PATH2: u64 = SCRATCH + 0x11000;

    fn open(g: &mut Guest, path: &str, flags: i32) -> i64 {
        g.put_str(PATH, path);
        g.call(Sysno::open, &[PATH, flags as u64, 0o644])
    }

    fn read_fd(g: &mut Guest, fd: i64) -> Vec<u8> {
        let n = g.call(Sysno::read, &[fd as u64, SCRATCH, 4096]);
        g.um().read_vec(SCRATCH, n as usize).unwrap()
    }

    #[test]
    fn path_escapes_never_reach_host_files() {
        let mut g = Guest::new();
        for escape in [
            "/../secret",
            "../../secret",
            "/dir/up",
            "/hostpath",
            "/abs-passwd",
            "/../../etc/passwd",
        ] {
            assert_eq!(
                open(&mut g, escape, libc::O_RDONLY),
                err(Errno::ENOENT),
                "{escape}"
            );
        }
        // The same tricks through a dirfd, through stat, and through chdir.
        let dir = open(&mut g, "/dir", libc::O_RDONLY | libc::O_DIRECTORY) as u64;
        g.put_str(PATH, "../../../secret");
        assert_eq!(g.call(Sysno::openat, &[dir, PATH, 0]), err(Errno::ENOENT));
        assert_eq!(g.call(Sysno::stat, &[PATH, SCRATCH]), err(Errno::ENOENT));
        g.put_str(PATH, "../../..");
        assert_eq!(g.call(Sysno::chdir, &[PATH]), 0);
        assert_eq!(g.call(Sysno::getcwd, &[SCRATCH, 64]), 2);
        assert_eq!(g.um().read_vec(SCRATCH, 2).unwrap(), b"/\0");
        // A symlink the guest makes to a host path still resolves inside the rootfs.
        let host_secret = g.root.parent().unwrap().join("secret");
        g.put_str(PATH, host_secret.to_str().unwrap());
        g.put_str(PATH2, "/mylink");
        assert_eq!(g.call(Sysno::symlink, &[PATH, PATH2]), 0);
        assert_eq!(open(&mut g, "/mylink", libc::O_RDONLY), err(Errno::ENOENT));
    }

    #[test]
    fn relative_paths_follow_cwd_and_dirfds() {
        let mut g = Guest::new();
        g.put_str(PATH, "dir");
        assert_eq!(g.call(Sysno::chdir, &[PATH]), 0);
        let fd = open(&mut g, "file", libc::O_RDONLY);
        assert_eq!(read_fd(&mut g, fd), b"hello");
        let etc = open(&mut g, "../etc", libc::O_RDONLY | libc::O_DIRECTORY) as u64;
        g.put_str(PATH, "hosts");
        let hosts = g.call(Sysno::openat, &[etc, PATH, 0]);
        assert_eq!(read_fd(&mut g, hosts), b"guest hosts");
        assert_eq!(g.call(Sysno::fchdir, &[etc]), 0);
        assert_eq!(g.call(Sysno::getcwd, &[SCRATCH, 64]), 5);
        assert_eq!(g.um().read_vec(SCRATCH, 5).unwrap(), b"/etc\0");
        assert_eq!(g.call(Sysno::getcwd, &[SCRATCH, 3]), err(Errno::ERANGE));
        let file = open(&mut g, "/dir/file", 0) as u64;
        g.put_str(PATH2, "hosts");
        assert_eq!(
            g.call(Sysno::openat, &[file, PATH2, 0]),
            err(Errno::ENOTDIR)
        );
        assert_eq!(g.call(Sysno::openat, &[1, PATH2, 0]), err(Errno::ENOTDIR));
    }

    #[test]
    fn fstat_fills_the_x86_64_struct_stat() {
        let mut g = Guest::new();
        let fd = open(&mut g, "/dir/file", 0) as u64;
        assert_eq!(g.call(Sysno::fstat, &[fd, SCRATCH]), 0);
        let st = g.um().read_vec(SCRATCH, 144).unwrap();
        let mode = u32::from_le_bytes(st[24..28].try_into().unwrap());
        let size = i64::from_le_bytes(st[48..56].try_into().unwrap());
        let blksize = i64::from_le_bytes(st[56..64].try_into().unwrap());
        assert_eq!(mode & libc::S_IFMT, libc::S_IFREG);
        assert_eq!(size, 5);
        assert!(blksize > 0);
        assert_eq!(g.call(Sysno::fstat, &[fd, 0x100]), err(Errno::EFAULT));
        // newfstatat(fd, "", AT_EMPTY_PATH) is how glibc implements fstat.
        g.put_str(PATH, "");
        let empty = libc::AT_EMPTY_PATH as u64;
        assert_eq!(
            g.call(Sysno::newfstatat, &[fd, PATH, SCRATCH + 0x1000, empty]),
            0
        );
        assert_eq!(g.um().read_vec(SCRATCH + 0x1000, 144).unwrap(), st);
        assert_eq!(
            g.call(Sysno::newfstatat, &[fd, PATH, SCRATCH, 0]),
            err(Errno::ENOENT)
        );
    }

    #[test]
    fn stat_follows_symlinks_and_lstat_does_not() {
        let mut g = Guest::new();
        std::os::unix::fs::symlink("/dir/file", g.root.join("link")).unwrap();
        g.put_str(PATH, "/link");
        assert_eq!(g.call(Sysno::stat, &[PATH, SCRATCH]), 0);
        let mode = g.um().read_u32(SCRATCH + 24).unwrap();
        assert_eq!(mode & libc::S_IFMT, libc::S_IFREG);
        assert_eq!(g.call(Sysno::lstat, &[PATH, SCRATCH]), 0);
        let mode = g.um().read_u32(SCRATCH + 24).unwrap();
        assert_eq!(mode & libc::S_IFMT, libc::S_IFLNK);
        let mask = libc::STATX_SIZE as u64;
        assert_eq!(
            g.call(
                Sysno::statx,
                &[libc::AT_FDCWD as u64, PATH, 0, mask, SCRATCH]
            ),
            0
        );
        assert_eq!(g.um().read_u64(SCRATCH + 40).unwrap(), 5, "stx_size");
        assert_eq!(g.call(Sysno::readlink, &[PATH, SCRATCH, 64]), 9);
        assert_eq!(g.um().read_vec(SCRATCH, 9).unwrap(), b"/dir/file");
        assert_eq!(g.call(Sysno::readlink, &[PATH, SCRATCH, 4]), 4, "truncated");
        g.put_str(PATH, "/dir/file");
        assert_eq!(
            g.call(Sysno::readlink, &[PATH, SCRATCH, 64]),
            err(Errno::EINVAL)
        );
    }

    #[test]
    fn getdents64_lists_the_directory_in_linux_dirent64_records() {
        let mut g = Guest::new();
        let dir = open(&mut g, "/dir", libc::O_RDONLY | libc::O_DIRECTORY) as u64;
        let n = g.call(Sysno::getdents64, &[dir, SCRATCH, 4096]) as usize;
        let buf = g.um().read_vec(SCRATCH, n).unwrap();
        let mut names = Vec::new();
        let mut off = 0;
        while off < n {
            let reclen = u16::from_le_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let ty = buf[off + 18];
            let name: Vec<u8> = buf[off + 19..off + reclen]
                .iter()
                .copied()
                .take_while(|&b| b != 0)
                .collect();
            names.push((String::from_utf8(name).unwrap(), ty));
            assert_eq!(reclen % 8, 0, "records are 8-byte aligned");
            off += reclen;
        }
        names.sort();
        let expect = [
            (".", libc::DT_DIR),
            ("..", libc::DT_DIR),
            ("file", libc::DT_REG),
            ("up", libc::DT_LNK),
        ];
        let expect: Vec<(String, u8)> = expect.iter().map(|(n, t)| (n.to_string(), *t)).collect();
        assert_eq!(names, expect);
        assert_eq!(
            g.call(Sysno::getdents64, &[dir, SCRATCH, 4096]),
            0,
            "end of directory"
        );
        let file = open(&mut g, "/dir/file", 0) as u64;
        assert_eq!(
            g.call(Sysno::getdents64, &[file, SCRATCH, 4096]),
            err(Errno::ENOTDIR)
        );
        assert_eq!(
            g.call(Sysno::getdents64, &[dir, 0x10, 4096]),
            err(Errno::EFAULT)
        );
    }

    #[test]
    fn mkdir_rename_unlink_and_access_work_inside_the_rootfs() {
        let mut g = Guest::new();
        g.put_str(PATH, "/newdir");
        assert_eq!(g.call(Sysno::mkdir, &[PATH, 0o755]), 0);
        assert!(g.root.join("newdir").is_dir());
        assert_eq!(g.call(Sysno::mkdir, &[PATH, 0o755]), err(Errno::EEXIST));
        g.put_str(PATH, "/dir/file");
        g.put_str(PATH2, "/newdir/moved");
        assert_eq!(g.call(Sysno::rename, &[PATH, PATH2]), 0);
        assert_eq!(
            std::fs::read(g.root.join("newdir/moved")).unwrap(),
            b"hello"
        );
        assert_eq!(g.call(Sysno::access, &[PATH2, libc::R_OK as u64]), 0);
        assert_eq!(
            g.call(Sysno::access, &[PATH, libc::F_OK as u64]),
            err(Errno::ENOENT)
        );
        assert_eq!(g.call(Sysno::unlink, &[PATH2]), 0);
        g.put_str(PATH, "/newdir");
        assert_eq!(g.call(Sysno::unlink, &[PATH]), err(Errno::EISDIR));
        assert_eq!(g.call(Sysno::rmdir, &[PATH]), 0);
        g.put_str(PATH, "/");
        assert_eq!(g.call(Sysno::rmdir, &[PATH]), err(Errno::EBUSY));
        // Creating through a symlink that points outside lands inside the rootfs.
        g.put_str(PATH, "/hostpath");
        assert!(open(&mut g, "/hostpath", libc::O_WRONLY | libc::O_CREAT) < 0);
        assert_eq!(
            std::fs::read_to_string(g.root.parent().unwrap().join("secret")).unwrap(),
            "host secret"
        );
    }

    #[test]
    fn touch_chmod_chown_truncate_and_statfs_act_on_rootfs_files() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mut g = Guest::new();
        let file = g.root.join("dir/file");
        g.put_str(PATH, "/dir/file");
        g.um().write_u64(SCRATCH, 1_000_000).unwrap();
        g.um().write_u64(SCRATCH + 8, 0).unwrap();
        g.um().write_u64(SCRATCH + 16, 2_000_000).unwrap();
        g.um().write_u64(SCRATCH + 24, 0).unwrap();
        let cwd = libc::AT_FDCWD as u64;
        assert_eq!(g.call(Sysno::utimensat, &[cwd, PATH, SCRATCH, 0]), 0);
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!((meta.atime(), meta.mtime()), (1_000_000, 2_000_000));
        // A NULL path is futimens on the fd; NULL times is "now".
        let fd = open(&mut g, "/dir/file", libc::O_RDWR) as u64;
        assert_eq!(g.call(Sysno::utimensat, &[fd, 0, 0, 0]), 0);
        assert!(std::fs::metadata(&file).unwrap().mtime() > 2_000_000);
        g.put_str(PATH, "/dir/file");
        assert_eq!(g.call(Sysno::chmod, &[PATH, 0o600]), 0);
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(g.call(Sysno::chown, &[PATH, 0, 0]), 0);
        assert_eq!(g.call(Sysno::truncate, &[PATH, 2]), 0);
        assert_eq!(std::fs::read(&file).unwrap(), b"he");
        assert_eq!(g.call(Sysno::statfs, &[PATH, SCRATCH]), 0);
        assert_ne!(g.um().read_u64(SCRATCH).unwrap(), 0, "f_type");
        assert_eq!(g.call(Sysno::fstatfs, &[fd, SCRATCH]), 0);
        // chmod through an escaping symlink changes nothing outside.
        g.put_str(PATH, "/hostpath");
        assert_eq!(g.call(Sysno::chmod, &[PATH, 0o777]), err(Errno::ENOENT));
        let secret = g.root.parent().unwrap().join("secret");
        assert_ne!(
            std::fs::metadata(secret).unwrap().permissions().mode() & 0o777,
            0o777
        );
    }

    #[test]
    fn hard_links_and_flock_work_inside_the_rootfs() {
        let mut g = Guest::new();
        g.put_str(PATH, "/dir/file");
        g.put_str(PATH2, "/hard");
        assert_eq!(g.call(Sysno::link, &[PATH, PATH2]), 0);
        assert_eq!(std::fs::read(g.root.join("hard")).unwrap(), b"hello");
        assert_eq!(g.call(Sysno::link, &[PATH, PATH2]), err(Errno::EEXIST));
        // Linking a symlink links the symlink itself, never what it points at.
        g.put_str(PATH, "/hostpath");
        g.put_str(PATH2, "/hard2");
        assert_eq!(g.call(Sysno::link, &[PATH, PATH2]), 0);
        assert!(std::fs::symlink_metadata(g.root.join("hard2"))
            .unwrap()
            .is_symlink());
        let follow = libc::AT_SYMLINK_FOLLOW as u64;
        let cwd = libc::AT_FDCWD as u64;
        assert_eq!(
            g.call(Sysno::linkat, &[cwd, PATH, cwd, PATH2, follow]),
            err(Errno::EINVAL)
        );
        let fd = open(&mut g, "/dir/file", 0) as u64;
        assert_eq!(g.call(Sysno::flock, &[fd, libc::LOCK_EX as u64]), 0);
        assert_eq!(g.call(Sysno::flock, &[fd, libc::LOCK_UN as u64]), 0);
    }

    #[test]
    fn sendfile_copies_between_fds_and_updates_the_offset() {
        let mut g = Guest::new();
        let src = open(&mut g, "/dir/file", 0) as u64;
        let dst = open(&mut g, "/copy", libc::O_WRONLY | libc::O_CREAT) as u64;
        g.um().write_u64(SCRATCH, 1).unwrap();
        assert_eq!(g.call(Sysno::sendfile, &[dst, src, SCRATCH, 100]), 4);
        assert_eq!(g.um().read_u64(SCRATCH).unwrap(), 5);
        assert_eq!(std::fs::read(g.root.join("copy")).unwrap(), b"ello");
        assert_eq!(
            g.call(Sysno::sendfile, &[dst, src, 0, 100]),
            5,
            "own offset untouched"
        );
        assert_eq!(
            g.call(Sysno::sendfile, &[dst, src, 0x10, 100]),
            err(Errno::EFAULT)
        );
    }

    #[test]
    fn bad_path_pointers_fault_and_long_paths_are_refused() {
        let mut g = Guest::new();
        assert_eq!(g.call(Sysno::open, &[0, 0]), err(Errno::EFAULT));
        assert_eq!(g.call(Sysno::open, &[16 << 20, 0]), err(Errno::EFAULT));
        assert_eq!(g.call(Sysno::mkdir, &[0x800, 0]), err(Errno::EFAULT));
        g.um().write(PATH, &[b'a'; 5000]).unwrap();
        assert_eq!(g.call(Sysno::open, &[PATH, 0]), err(Errno::ENAMETOOLONG));
        assert_eq!(open(&mut g, "", 0), err(Errno::ENOENT));
    }
}
