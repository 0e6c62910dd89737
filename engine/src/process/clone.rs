//! clone(2) straight into new namespaces, fork-style: no helper binary, no self re-exec,
//! which is most of why this runtime starts faster than runc.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::ProcessError;

/// Clones the calling process into the namespaces `flags` and runs `child` there; the
/// child exits with `child`'s return value and never returns. Returns the child's pid.
///
/// The caller must be single-threaded (as `engine-oci` is): the child is a copy of the
/// whole address space with only the calling thread in it.
pub fn clone_into(flags: CloneFlags, child: impl FnOnce() -> i32) -> Result<Pid, ProcessError> {
    let raw_flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: clone without CLONE_VM and with a null stack pointer is fork(2) with extra
    // namespace flags: the child runs on a copy-on-write copy of this stack and heap, so no
    // memory is shared. The engine calls this single-threaded, so no other thread can hold a
    // lock (malloc's included) in the child's copy. The null pointer arguments are allowed:
    // no CLONE_*TID or CLONE_SETTLS flag asks the kernel to use them.
    let ret = unsafe { libc::syscall(libc::SYS_clone, raw_flags, 0usize, 0usize, 0usize, 0usize) };
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
        pid => Ok(Pid::from_raw(pid as i32)),
    }
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
