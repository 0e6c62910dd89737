//! The host system calls the syscall layer makes on the guest's behalf, as small safe
//! wrappers: all of this module's `unsafe` lives here.
//!
//! Every pointer handed to the host kernel points at a Rust buffer owned by the caller or
//! at guest memory already checked by [`super::user_memory::UserMemory`]; no guest
//! address is ever passed to the host kernel as is.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use syscalls::{syscall, Errno, Sysno};

/// Size of the x86_64 `struct stat` the kernel fills (same for guest and host).
pub const STAT_SIZE: usize = std::mem::size_of::<libc::stat>();
/// Size of `struct statx` as the kernel defines it.
pub const STATX_SIZE: usize = 256;

/// `struct open_how` for `openat2(2)`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Gives whole host pages back to the kernel with `MADV_DONTNEED`; `false` when the range
/// is not page-aligned or the kernel refused, so the caller must zero it by hand.
pub fn discard_pages(ptr: *mut u8, len: usize) -> bool {
    if (ptr as usize) % 4096 != 0 || len % 4096 != 0 {
        return false;
    }
    // SAFETY: `ptr..ptr+len` is private anonymous guest memory owned by the monitor's
    // `GuestMemoryMmap`; MADV_DONTNEED only replaces its pages with zero pages.
    unsafe { libc::madvise(ptr.cast(), len, libc::MADV_DONTNEED) == 0 }
}

/// `openat2(dirfd, path, {flags, mode, resolve})`, always close-on-exec on the host.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u32 as u64,
        mode: u64::from(mode),
        resolve,
    };
    // SAFETY: `path` is NUL-terminated and `how` lives across the call with the size given.
    let fd = unsafe {
        syscall!(
            Sysno::openat2,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>()
        )
    }?;
    // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `readv(2)` into host iovecs that point at checked guest memory.
pub fn readv(fd: RawFd, iov: &[libc::iovec]) -> Result<usize, Errno> {
    // SAFETY: each iovec covers writable guest memory checked by UserMemory.
    unsafe { syscall!(Sysno::readv, fd, iov.as_ptr(), iov.len()) }
}

/// `writev(2)` from host iovecs that point at checked guest memory.
pub fn writev(fd: RawFd, iov: &[libc::iovec]) -> Result<usize, Errno> {
    // SAFETY: each iovec covers readable guest memory checked by UserMemory.
    unsafe { syscall!(Sysno::writev, fd, iov.as_ptr(), iov.len()) }
}

/// `preadv(2)` at `offset`.
pub fn preadv(fd: RawFd, iov: &[libc::iovec], offset: u64) -> Result<usize, Errno> {
    // SAFETY: as for `readv`.
    unsafe { syscall!(Sysno::preadv, fd, iov.as_ptr(), iov.len(), offset, 0) }
}

/// `pwritev(2)` at `offset`.
pub fn pwritev(fd: RawFd, iov: &[libc::iovec], offset: u64) -> Result<usize, Errno> {
    // SAFETY: as for `writev`.
    unsafe { syscall!(Sysno::pwritev, fd, iov.as_ptr(), iov.len(), offset, 0) }
}

/// `fstat(2)`: the raw `struct stat` bytes, which the guest uses unchanged.
pub fn fstat(fd: RawFd) -> Result<[u8; STAT_SIZE], Errno> {
    let mut buf = [0u8; STAT_SIZE];
    // SAFETY: `buf` has room for one `struct stat`.
    unsafe { syscall!(Sysno::fstat, fd, buf.as_mut_ptr()) }?;
    Ok(buf)
}

/// `statx(fd, "", AT_EMPTY_PATH | flags, mask)`: the raw `struct statx` bytes.
pub fn statx(fd: RawFd, flags: i32, mask: u32) -> Result<[u8; STATX_SIZE], Errno> {
    let mut buf = [0u8; STATX_SIZE];
    let flags = flags | libc::AT_EMPTY_PATH;
    // SAFETY: the path is an empty C string and `buf` has room for one `struct statx`.
    unsafe {
        syscall!(
            Sysno::statx,
            fd,
            c"".as_ptr(),
            flags,
            mask,
            buf.as_mut_ptr()
        )
    }?;
    Ok(buf)
}

/// `getdents64(2)` into a host buffer: records in the Linux `linux_dirent64` format.
pub fn getdents64(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is a live, writable host buffer of the given length.
    unsafe { syscall!(Sysno::getdents64, fd, buf.as_mut_ptr(), buf.len()) }
}

/// `readlinkat(fd, "", buf)` on an `O_PATH | O_NOFOLLOW` descriptor of a symlink.
pub fn readlink_fd(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: empty C string path; `buf` is a live, writable host buffer.
    unsafe {
        syscall!(
            Sysno::readlinkat,
            fd,
            c"".as_ptr(),
            buf.as_mut_ptr(),
            buf.len()
        )
    }
}

/// `readlink(2)` of a host path (only used for `/proc/self/fd/N`).
pub fn readlink(path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: NUL-terminated path; `buf` is a live, writable host buffer.
    unsafe { syscall!(Sysno::readlink, path.as_ptr(), buf.as_mut_ptr(), buf.len()) }
}

/// `mkdirat(2)` of one name inside a directory descriptor.
pub fn mkdirat(dir: RawFd, name: &CStr, mode: u32) -> Result<usize, Errno> {
    // SAFETY: NUL-terminated name.
    unsafe { syscall!(Sysno::mkdirat, dir, name.as_ptr(), mode) }
}

/// `unlinkat(2)` of one name inside a directory descriptor.
pub fn unlinkat(dir: RawFd, name: &CStr, flags: i32) -> Result<usize, Errno> {
    // SAFETY: NUL-terminated name.
    unsafe { syscall!(Sysno::unlinkat, dir, name.as_ptr(), flags) }
}

/// `renameat2(2)` between two (directory descriptor, name) pairs.
pub fn renameat2(old: (RawFd, &CStr), new: (RawFd, &CStr), flags: u32) -> Result<usize, Errno> {
    // SAFETY: NUL-terminated names.
    unsafe {
        syscall!(
            Sysno::renameat2,
            old.0,
            old.1.as_ptr(),
            new.0,
            new.1.as_ptr(),
            flags
        )
    }
}

/// `linkat(2)` between two (directory descriptor, name) pairs, never following.
pub fn linkat(old: (RawFd, &CStr), new: (RawFd, &CStr)) -> Result<usize, Errno> {
    // SAFETY: NUL-terminated names.
    unsafe {
        syscall!(
            Sysno::linkat,
            old.0,
            old.1.as_ptr(),
            new.0,
            new.1.as_ptr(),
            0
        )
    }
}

/// `symlinkat(2)`: creates `name` in `dir` pointing at `target` (never followed here).
pub fn symlinkat(target: &CStr, dir: RawFd, name: &CStr) -> Result<usize, Errno> {
    // SAFETY: NUL-terminated strings.
    unsafe { syscall!(Sysno::symlinkat, target.as_ptr(), dir, name.as_ptr()) }
}

/// `faccessat2(fd, "", mode, AT_EMPTY_PATH)`.
pub fn access_fd(fd: RawFd, mode: i32) -> Result<usize, Errno> {
    // SAFETY: empty C string path.
    unsafe {
        syscall!(
            Sysno::faccessat2,
            fd,
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH
        )
    }
}

/// Any host call whose arguments are plain integers (no pointers): `close`-free fd
/// operations such as `lseek`, `fsync`, `ftruncate`, `fcntl(F_GETFL)`, `listen`,
/// `shutdown`, `socket`.
pub fn plain(nr: Sysno, args: [u64; 4]) -> Result<usize, Errno> {
    debug_assert!(!takes_pointer(nr), "{nr} takes a pointer");
    // SAFETY: the callers only pass calls whose arguments are all integers, so the host
    // kernel reads and writes no memory of ours.
    unsafe { syscall!(nr, args[0], args[1], args[2], args[3]) }
}

fn takes_pointer(nr: Sysno) -> bool {
    !matches!(
        nr,
        Sysno::lseek
            | Sysno::fsync
            | Sysno::fdatasync
            | Sysno::ftruncate
            | Sysno::fcntl
            | Sysno::listen
            | Sysno::shutdown
            | Sysno::socket
            | Sysno::fchmod
            | Sysno::fchown
            | Sysno::umask
            | Sysno::flock
            | Sysno::fadvise64
            | Sysno::fallocate
            | Sysno::epoll_create1
            | Sysno::eventfd2
            | Sysno::timerfd_create
            | Sysno::syncfs
    )
}

/// `ioctl(fd, FIONBIO, &on)`.
pub fn set_nonblocking(fd: RawFd, on: bool) -> Result<usize, Errno> {
    let on = i32::from(on);
    // SAFETY: FIONBIO reads one int from the pointer, which lives across the call.
    unsafe { syscall!(Sysno::ioctl, fd, libc::FIONBIO, &on as *const i32) }
}

/// `ioctl(fd, FIONREAD, &n)`: bytes ready to read.
pub fn bytes_readable(fd: RawFd) -> Result<i32, Errno> {
    let mut n: i32 = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which lives across the call.
    unsafe { syscall!(Sysno::ioctl, fd, libc::FIONREAD, &mut n as *mut i32) }?;
    Ok(n)
}

/// `pipe2(2)`: (read end, write end), close-on-exec on the host.
pub fn pipe2(flags: i32) -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors the kernel writes.
    unsafe { syscall!(Sysno::pipe2, fds.as_mut_ptr(), flags | libc::O_CLOEXEC) }?;
    // SAFETY: the kernel just returned these two new descriptors; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `poll(2)` over host descriptors.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize, Errno> {
    // SAFETY: `fds` is a live, writable array of the given length.
    unsafe { syscall!(Sysno::poll, fds.as_mut_ptr(), fds.len(), timeout_ms) }
}

/// `socket(2)`, close-on-exec on the host.
pub fn socket(domain: i32, ty: i32, protocol: i32) -> Result<OwnedFd, Errno> {
    let ty = ty | libc::SOCK_CLOEXEC;
    let fd = plain(
        Sysno::socket,
        [domain as u64, ty as u64, protocol as u64, 0],
    )?;
    // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `connect(2)` or `bind(2)` with a socket address already copied to the host.
pub fn sockaddr_call(nr: Sysno, fd: RawFd, addr: &[u8]) -> Result<usize, Errno> {
    debug_assert!(matches!(nr, Sysno::connect | Sysno::bind));
    // SAFETY: `addr` is a live host buffer of the given length.
    unsafe { syscall!(nr, fd, addr.as_ptr(), addr.len()) }
}

/// `accept4(2)`: the new socket and the peer address bytes.
pub fn accept4(fd: RawFd, flags: i32) -> Result<(OwnedFd, Vec<u8>), Errno> {
    let mut addr = [0u8; 128];
    let mut len: u32 = addr.len() as u32;
    let flags = flags | libc::SOCK_CLOEXEC;
    // SAFETY: `addr` and `len` are live host buffers; len says addr's size.
    let new = unsafe {
        syscall!(
            Sysno::accept4,
            fd,
            addr.as_mut_ptr(),
            &mut len as *mut u32,
            flags
        )
    }?;
    // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
    let new = unsafe { OwnedFd::from_raw_fd(new as RawFd) };
    Ok((new, addr[..(len as usize).min(addr.len())].to_vec()))
}

/// `getsockname(2)` or `getpeername(2)`: the address bytes.
pub fn socket_name(nr: Sysno, fd: RawFd) -> Result<Vec<u8>, Errno> {
    debug_assert!(matches!(nr, Sysno::getsockname | Sysno::getpeername));
    let mut addr = [0u8; 128];
    let mut len: u32 = addr.len() as u32;
    // SAFETY: `addr` and `len` are live host buffers; len says addr's size.
    unsafe { syscall!(nr, fd, addr.as_mut_ptr(), &mut len as *mut u32) }?;
    Ok(addr[..(len as usize).min(addr.len())].to_vec())
}

/// `setsockopt(2)` with an option value already copied to the host.
pub fn setsockopt(fd: RawFd, level: i32, name: i32, value: &[u8]) -> Result<usize, Errno> {
    // SAFETY: `value` is a live host buffer of the given length.
    unsafe {
        syscall!(
            Sysno::setsockopt,
            fd,
            level,
            name,
            value.as_ptr(),
            value.len()
        )
    }
}

/// `getsockopt(2)` into a host buffer: the bytes the kernel wrote.
pub fn getsockopt(fd: RawFd, level: i32, name: i32, max: usize) -> Result<Vec<u8>, Errno> {
    let mut value = vec![0u8; max];
    let mut len: u32 = max as u32;
    // SAFETY: `value` and `len` are live host buffers; len says value's size.
    unsafe {
        syscall!(
            Sysno::getsockopt,
            fd,
            level,
            name,
            value.as_mut_ptr(),
            &mut len as *mut u32
        )
    }?;
    value.truncate(len as usize);
    Ok(value)
}

/// `sendmsg(2)` of guest data (host iovecs over checked guest memory) to an optional
/// address copied to the host.
pub fn sendmsg(fd: RawFd, iov: &[libc::iovec], addr: &[u8], flags: i32) -> Result<usize, Errno> {
    // SAFETY: msghdr is plain data; zero is a valid "no fields" value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = addr.as_ptr() as *mut libc::c_void;
    msg.msg_namelen = addr.len() as u32;
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len();
    // SAFETY: every pointer in `msg` points at a live buffer of the length it gives.
    unsafe { syscall!(Sysno::sendmsg, fd, &msg as *const libc::msghdr, flags) }
}

/// `recvmsg(2)` into guest memory: (bytes, sender address bytes, msg_flags).
pub fn recvmsg(fd: RawFd, iov: &[libc::iovec], flags: i32) -> Result<(usize, Vec<u8>, i32), Errno> {
    let mut addr = [0u8; 128];
    // SAFETY: msghdr is plain data; zero is a valid "no fields" value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = addr.as_mut_ptr().cast();
    msg.msg_namelen = addr.len() as u32;
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len();
    // SAFETY: every pointer in `msg` points at a live buffer of the length it gives.
    let n = unsafe { syscall!(Sysno::recvmsg, fd, &mut msg as *mut libc::msghdr, flags) }?;
    let name_len = (msg.msg_namelen as usize).min(addr.len());
    Ok((n, addr[..name_len].to_vec(), msg.msg_flags))
}

/// `clock_gettime(2)` or `clock_getres(2)`: (seconds, nanoseconds).
pub fn clock(nr: Sysno, clock: i32) -> Result<(i64, i64), Errno> {
    debug_assert!(matches!(nr, Sysno::clock_gettime | Sysno::clock_getres));
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec.
    unsafe { syscall!(nr, clock, &mut ts as *mut libc::timespec) }?;
    Ok((ts.tv_sec, ts.tv_nsec))
}

/// `clock_nanosleep(2)`; on `EINTR` the remaining time comes with the error.
pub fn clock_nanosleep(clock: i32, flags: i32, ts: (i64, i64)) -> Result<(), (Errno, (i64, i64))> {
    let req = libc::timespec {
        tv_sec: ts.0,
        tv_nsec: ts.1,
    };
    let mut rem = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `req` and `rem` are live timespecs.
    let r = unsafe {
        syscall!(
            Sysno::clock_nanosleep,
            clock,
            flags,
            &req as *const libc::timespec,
            &mut rem as *mut libc::timespec
        )
    };
    r.map(drop).map_err(|e| (e, (rem.tv_sec, rem.tv_nsec)))
}

/// `getrandom(2)` into a host buffer.
pub fn getrandom(buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
    // SAFETY: `buf` is a live, writable host buffer of the given length.
    unsafe { syscall!(Sysno::getrandom, buf.as_mut_ptr(), buf.len(), flags) }
}

/// `utimensat(fd, "", times, AT_EMPTY_PATH)`: `None` sets both times to now.
pub fn utimens_fd(fd: RawFd, times: Option<&[libc::timespec; 2]>) -> Result<usize, Errno> {
    let ptr = times.map_or(std::ptr::null(), |t| t.as_ptr());
    // SAFETY: empty C string path; `times` is NULL or two live timespecs.
    unsafe { syscall!(Sysno::utimensat, fd, c"".as_ptr(), ptr, libc::AT_EMPTY_PATH) }
}

/// `fchmodat(AT_FDCWD, "/proc/self/fd/N", mode)`: changes the mode of the file an
/// `O_PATH` descriptor refers to (`fchmod` refuses `O_PATH` descriptors).
pub fn chmod_fd(fd: RawFd, mode: u32) -> Result<usize, Errno> {
    let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).map_err(|_| Errno::EBADF)?;
    // SAFETY: NUL-terminated path naming the monitor's own descriptor.
    unsafe { syscall!(Sysno::fchmodat, libc::AT_FDCWD, path.as_ptr(), mode) }
}

/// `fchownat(fd, "", uid, gid, AT_EMPTY_PATH)`.
pub fn chown_fd(fd: RawFd, uid: u32, gid: u32) -> Result<usize, Errno> {
    // SAFETY: empty C string path.
    unsafe {
        syscall!(
            Sysno::fchownat,
            fd,
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH
        )
    }
}

/// Size of the x86_64 `struct statfs`.
pub const STATFS_SIZE: usize = std::mem::size_of::<libc::statfs>();

/// `fstatfs(2)`: the raw `struct statfs` bytes.
pub fn fstatfs(fd: RawFd) -> Result<[u8; STATFS_SIZE], Errno> {
    let mut buf = [0u8; STATFS_SIZE];
    // SAFETY: `buf` has room for one `struct statfs`.
    unsafe { syscall!(Sysno::fstatfs, fd, buf.as_mut_ptr()) }?;
    Ok(buf)
}

/// Size of the x86_64 `struct rusage`.
pub const RUSAGE_SIZE: usize = std::mem::size_of::<libc::rusage>();

/// `getrusage(2)` of the monitor process: the guest's usage plus the monitor's own.
pub fn getrusage(who: i32) -> Result<[u8; RUSAGE_SIZE], Errno> {
    let mut buf = [0u8; RUSAGE_SIZE];
    // SAFETY: `buf` has room for one `struct rusage`.
    unsafe { syscall!(Sysno::getrusage, who, buf.as_mut_ptr()) }?;
    Ok(buf)
}

/// `sendfile(2)` between two host descriptors, with an optional offset in and out.
pub fn sendfile(
    out: RawFd,
    input: RawFd,
    offset: Option<&mut i64>,
    count: usize,
) -> Result<usize, Errno> {
    let ptr = offset.map_or(std::ptr::null_mut(), |o| o as *mut i64);
    // SAFETY: `ptr` is NULL or a live, writable i64.
    unsafe { syscall!(Sysno::sendfile, out, input, ptr, count) }
}

/// `pause(2)` on the host: returns (with `EINTR`) only when the monitor's thread takes a
/// signal, such as the kick that ends a guest on `--timeout`.
pub fn pause() -> Errno {
    // SAFETY: pause takes no arguments and touches no memory.
    match unsafe { syscall!(Sysno::pause) } {
        Ok(_) => Errno::EINTR,
        Err(e) => e,
    }
}

/// `epoll_create1(2)`, `eventfd2(2)` or `timerfd_create(2)`: a new descriptor from integer arguments,
/// close-on-exec on the host.
pub fn new_fd(nr: Sysno, args: [u64; 2]) -> Result<OwnedFd, Errno> {
    debug_assert!(matches!(
        nr,
        Sysno::epoll_create1 | Sysno::eventfd2 | Sysno::timerfd_create
    ));
    let fd = plain(nr, [args[0], args[1], 0, 0])?;
    // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Size of the x86_64 `struct epoll_event` (packed: u32 events, u64 data).
pub const EPOLL_EVENT_SIZE: usize = 12;

/// `epoll_ctl(2)` with the guest's event bytes (events and opaque data) copied in.
pub fn epoll_ctl(
    epfd: RawFd,
    op: i32,
    fd: RawFd,
    event: &[u8; EPOLL_EVENT_SIZE],
) -> Result<usize, Errno> {
    // SAFETY: `event` is a live host buffer with the kernel's epoll_event layout.
    unsafe { syscall!(Sysno::epoll_ctl, epfd, op, fd, event.as_ptr()) }
}

/// `epoll_wait(2)` into a host buffer of `buf.len() / 12` events; returns the count.
pub fn epoll_wait(epfd: RawFd, buf: &mut [u8], timeout_ms: i32) -> Result<usize, Errno> {
    let max = buf.len() / EPOLL_EVENT_SIZE;
    // SAFETY: `buf` has room for `max` packed epoll_events.
    unsafe { syscall!(Sysno::epoll_wait, epfd, buf.as_mut_ptr(), max, timeout_ms) }
}

/// `timerfd_settime(2)` with the guest's `struct itimerspec` copied in; returns the old.
pub fn timerfd_settime(fd: RawFd, flags: i32, new: &[u8; 32]) -> Result<[u8; 32], Errno> {
    let mut old = [0u8; 32];
    // SAFETY: `new` and `old` are live host buffers of one itimerspec each.
    unsafe {
        syscall!(
            Sysno::timerfd_settime,
            fd,
            flags,
            new.as_ptr(),
            old.as_mut_ptr()
        )
    }?;
    Ok(old)
}

/// `timerfd_gettime(2)`: the current `struct itimerspec`.
pub fn timerfd_gettime(fd: RawFd) -> Result<[u8; 32], Errno> {
    let mut cur = [0u8; 32];
    // SAFETY: `cur` is a live host buffer of one itimerspec.
    unsafe { syscall!(Sysno::timerfd_gettime, fd, cur.as_mut_ptr()) }?;
    Ok(cur)
}
