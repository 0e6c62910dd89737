//! The container process's recipe, resolved from config.json in the engine before the
//! clone: C strings, numeric ids and limits, so the child only makes syscalls.

use std::ffi::CString;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxCapabilities, LinuxNamespaceType, Spec};

use super::ProcessError;
use crate::rootfs::RootfsPlan;

/// One rlimit: (resource, soft, hard).
pub type Rlimit = (libc::__rlimit_resource_t, u64, u64);

/// The process part of config.json, resolved.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    /// argv; argv[0] is looked up in PATH inside the container when it has no '/'.
    pub args: Vec<CString>,
    /// envp.
    pub env: Vec<CString>,
    /// The PATH used for the lookup.
    pub path_var: String,
    /// Working directory inside the container.
    pub cwd: PathBuf,
    /// uid, gid and supplementary gids.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary gids.
    pub additional_gids: Vec<u32>,
    /// umask, if set.
    pub umask: Option<u32>,
    /// Capabilities; `None` leaves the init's as they are (runc does the same).
    pub capabilities: Option<LinuxCapabilities>,
    /// PR_SET_NO_NEW_PRIVS.
    pub no_new_privileges: bool,
    /// rlimits.
    pub rlimits: Vec<Rlimit>,
}

/// Everything the init needs.
#[derive(Debug, Clone)]
pub struct InitPlan {
    /// Namespaces made by the clone (all but cgroup, which the init unshares once the
    /// engine has put it into its cgroup, so the namespace is rooted there).
    pub clone_flags: CloneFlags,
    /// Unshare a cgroup namespace after joining the cgroup.
    pub cgroup_ns: bool,
    /// Hostname to set (needs a UTS namespace).
    pub hostname: Option<String>,
    /// Bring the loopback of the init's own network namespace up (network mode `none`).
    pub loopback_up: bool,
    /// The file system.
    pub rootfs: RootfsPlan,
    /// The process.
    pub process: ProcessPlan,
}

fn cstrings(items: &[String], what: &str) -> Result<Vec<CString>, ProcessError> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_str())
                .map_err(|_| ProcessError::Config(format!("{what} {s:?} contains a NUL byte")))
        })
        .collect()
}

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

fn rlimits(process: &oci_spec::runtime::Process) -> Result<Vec<Rlimit>, ProcessError> {
    let mut out = Vec::new();
    for limit in process.rlimits().clone().unwrap_or_default() {
        let name = limit.typ().to_string();
        let resource = rlimit_resource(&name)
            .ok_or_else(|| ProcessError::Config(format!("unknown rlimit {name}")))?;
        out.push((resource, limit.soft(), limit.hard()));
    }
    Ok(out)
}

/// The clone flags for the config's namespaces; joining an existing one (a `path`) is refused.
pub fn namespace_flags(spec: &Spec) -> Result<(CloneFlags, bool), ProcessError> {
    let mut flags = CloneFlags::empty();
    let mut cgroup = false;
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in namespaces {
        if ns.path().is_some() {
            return Err(ProcessError::Config(format!(
                "joining an existing {} namespace (path) is not supported",
                ns.typ()
            )));
        }
        match ns.typ() {
            LinuxNamespaceType::Cgroup => cgroup = true,
            LinuxNamespaceType::Time => {
                return Err(ProcessError::Config(
                    "time namespaces are not supported".into(),
                ))
            }
            other => flags |= CloneFlags::from_bits_retain(other as libc::c_int),
        }
    }
    Ok((flags, cgroup))
}

/// Resolves `spec.process`.
pub fn process_plan(spec: &Spec) -> Result<ProcessPlan, ProcessError> {
    let process = spec
        .process()
        .clone()
        .ok_or_else(|| ProcessError::Config("config.json has no process".into()))?;
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(ProcessError::Config("process.args is empty".into()));
    }
    if process.terminal() == Some(true) {
        return Err(ProcessError::Config(
            "process.terminal=true is not supported (no console support)".into(),
        ));
    }
    let env = process.env().clone().unwrap_or_default();
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .to_string();
    if !process.cwd().is_absolute() {
        return Err(ProcessError::Config(format!(
            "process.cwd {:?} must be absolute",
            process.cwd()
        )));
    }
    let user = process.user();
    Ok(ProcessPlan {
        args: cstrings(&args, "argument")?,
        env: cstrings(&env, "environment variable")?,
        path_var,
        cwd: process.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        capabilities: process.capabilities().clone(),
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        rlimits: rlimits(&process)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_namespaces_map_to_clone_flags() {
        let (flags, cgroup) = namespace_flags(&Spec::default()).unwrap();
        assert!(flags.contains(
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET
        ));
        assert!(
            !flags.contains(CloneFlags::CLONE_NEWCGROUP),
            "cgroup ns is unshared later"
        );
        let _ = cgroup;
    }

    #[test]
    fn terminal_and_empty_args_are_refused() {
        let mut spec = Spec::default();
        let mut p = spec.process().clone().unwrap();
        p.set_terminal(Some(true));
        spec.set_process(Some(p.clone()));
        assert!(process_plan(&spec)
            .unwrap_err()
            .to_string()
            .contains("terminal"));
        p.set_terminal(Some(false));
        p.set_args(Some(vec![]));
        spec.set_process(Some(p));
        assert!(process_plan(&spec)
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }

    #[test]
    fn rlimit_names_map_to_resources() {
        assert_eq!(rlimit_resource("RLIMIT_NOFILE"), Some(libc::RLIMIT_NOFILE));
        assert_eq!(rlimit_resource("RLIMIT_BOGUS"), None);
    }
}
