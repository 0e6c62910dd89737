//! The last step of the init: find the program in the container's PATH and execve it.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::unistd::{access, AccessFlags};

use super::plan::ProcessPlan;
use super::ProcessError;

/// Resolves argv[0]: as is when it contains '/', else the first executable in `path_var`.
pub fn find_executable(arg0: &CStr, path_var: &str) -> Result<CString, ProcessError> {
    let name = arg0.to_bytes();
    if name.contains(&b'/') {
        return Ok(arg0.to_owned());
    }
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(std::ffi::OsStr::from_bytes(name));
        if candidate.is_file() && access(&candidate, AccessFlags::X_OK).is_ok() {
            return CString::new(candidate.as_os_str().as_bytes())
                .map_err(|_| ProcessError::Config("executable path contains a NUL byte".into()));
        }
    }
    Err(ProcessError::Init(format!(
        "executable {:?} not found in PATH {path_var}",
        String::from_utf8_lossy(name)
    )))
}

/// Replaces the init with the container's program; returns only on failure.
pub fn exec(plan: &ProcessPlan) -> ProcessError {
    let program = match find_executable(&plan.args[0], &plan.path_var) {
        Ok(p) => p,
        Err(e) => return e,
    };
    // Rust ignores SIGPIPE in its own processes; the container's program expects the default.
    // SAFETY: SIG_DFL installs no handler, so no Rust code can run in signal context.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
    let err = nix::unistd::execve(&program, &plan.args, &plan.env).unwrap_err();
    ProcessError::Init(format!("exec {}: {err}", program.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_program_in_path_and_keeps_a_path_with_slash() {
        let sh = CString::new("sh").unwrap();
        let found = find_executable(&sh, "/nonexistent-isolab:/bin:/usr/bin").unwrap();
        assert!(found.to_bytes().ends_with(b"/sh"));
        let abs = CString::new("./prog").unwrap();
        assert_eq!(find_executable(&abs, "/bin").unwrap(), abs);
        let missing = CString::new("isolab-no-such-program").unwrap();
        assert!(find_executable(&missing, "/bin")
            .unwrap_err()
            .to_string()
            .contains("not found"));
    }
}
