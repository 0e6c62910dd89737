//! The few raw system calls std does not offer: `wait4` (exit status plus the CPU time
//! of a child and everything it reaped; not its `ru_maxrss`, which Linux carries over
//! from the forking parent across `exec`) and the child-side setup that puts
//! each instance in its own process group and kills it if the harness dies.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// How a child ended and what it cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reaped {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Terminating signal, when it was killed.
    pub signal: Option<i32>,
    /// User plus system CPU of the child and the descendants it waited for, ms.
    pub cpu_ms: f64,
}

/// Blocks until child `pid` ends, and reaps it.
pub fn wait4(pid: i32) -> io::Result<Reaped> {
    let mut status = 0;
    // SAFETY: all-zero bytes are a valid `rusage` (plain integers and timevals).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid, writable and live for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    Ok(Reaped {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        cpu_ms: ms(usage.ru_utime) + ms(usage.ru_stime),
    })
}

/// Makes `cmd` start in its own process group (so the whole instance can be signalled
/// as one, and a Ctrl-C at the terminal reaches only the harness) and die with SIGKILL
/// if the thread that spawned it goes away, so a killed harness leaves no launcher
/// behind. Not a new session: QEMU's `-nographic` stalls without a controlling
/// terminal's session.
///
/// A harness killed between fork and the child's `prctl` sends no death signal, and
/// on a loaded host the child may not run for milliseconds after the fork: the child
/// then checks that the harness is still its parent and gives up when it is not.
pub fn isolate_child(cmd: &mut Command) {
    let harness = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (setpgid, prctl, getppid), touching no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != harness {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}
