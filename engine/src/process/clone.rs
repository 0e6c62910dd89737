//! clone(2) straight into new namespaces, fork-style: no helper binary, no self re-exec,
//! which is most of why this runtime starts faster than runc. When the container's cgroup
//! v2 directory is known, clone3(2) with CLONE_INTO_CGROUP makes the child there, saving
//! a migration that costs a whole RCU grace period (~15 ms on some hosts).

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::ProcessError;

/// `struct clone_args` of clone3(2), up to the `cgroup` field (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// CLONE_INTO_CGROUP (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3 into `cgroup`; `None` when the kernel lacks clone3 or CLONE_INTO_CGROUP.
fn raw_clone3(flags: CloneFlags, cgroup: BorrowedFd<'_>) -> Option<libc::c_long> {
    let args = CloneArgs {
        flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: a null stack makes clone3 fork-like: the child runs on a copy-on-write copy of
    // this stack and heap, so no memory is shared. The caller is single-threaded (see
    // `spawn`), so no other thread holds a lock in the child's copy. `args` is a valid
    // clone_args of the size passed and outlives the call; it sets no pointer field.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match (ret, Errno::last()) {
        (-1, Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL) => None,
        _ => Some(ret),
    }
}

fn raw_clone(flags: CloneFlags) -> libc::c_long {
    let raw_flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: clone without CLONE_VM and with a null stack pointer is fork(2) with extra
    // namespace flags (see `raw_clone3`). The null pointer arguments are allowed: no
    // CLONE_*TID or CLONE_SETTLS flag asks the kernel to use them.
    unsafe { libc::syscall(libc::SYS_clone, raw_flags, 0usize, 0usize, 0usize, 0usize) }
}

/// Clones the calling process into the namespaces `flags` (and into the cgroup v2
/// directory `cgroup` when given and supported) and runs `child` there; the child exits
/// with `child`'s return value. Returns the child's pid and whether it was born in `cgroup`.
///
/// The caller must be single-threaded (as `engine-oci` is): the child is a copy of the
/// whole address space with only the calling thread in it.
pub fn spawn(
    flags: CloneFlags,
    cgroup: Option<BorrowedFd<'_>>,
    child: impl FnOnce() -> i32,
) -> Result<(Pid, bool), ProcessError> {
    let (ret, placed) = match cgroup.and_then(|fd| raw_clone3(flags, fd)) {
        Some(ret) => (ret, true),
        None => (raw_clone(flags), false),
    };
    match ret {
        -1 => Err(ProcessError::Clone {
            flags: format!("{flags:?}"),
            errno: Errno::last(),
        }),
        0 => {
            let code = child();
            // SAFETY: _exit ends the child without running the parent's atexit handlers or
            // flushing stdio buffers the parent owns (they would be written twice).
            unsafe { libc::_exit(code) }
        }
        pid => Ok((Pid::from_raw(pid as i32), placed)),
    }
}

/// [`spawn`] without a cgroup.
pub fn clone_into(flags: CloneFlags, child: impl FnOnce() -> i32) -> Result<Pid, ProcessError> {
    spawn(flags, None, child).map(|(pid, _)| pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};

    #[test]
    fn clone_without_namespaces_runs_the_child_and_returns_its_status() {
        let pid = clone_into(CloneFlags::empty(), || 7).unwrap();
        assert_eq!(waitpid(pid, None).unwrap(), WaitStatus::Exited(pid, 7));
    }
}
