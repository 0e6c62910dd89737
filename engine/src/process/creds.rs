//! The container process's limits and identity: rlimits, umask, the capability bounding
//! set, no_new_privileges, uid/gid/groups, then the configured capability sets.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

use super::plan::ProcessPlan;
use super::ProcessError;

fn errno(what: &str, e: nix::errno::Errno) -> ProcessError {
    ProcessError::Init(format!("{what}: {e}"))
}

fn cap_set(set: &Option<oci_spec::runtime::Capabilities>) -> Result<CapsHashSet, ProcessError> {
    let mut out = HashSet::new();
    for cap in set.iter().flatten() {
        let name = format!("CAP_{cap}");
        let parsed = Capability::from_str(&name)
            .map_err(|_| ProcessError::Config(format!("unknown capability {name}")))?;
        out.insert(parsed);
    }
    Ok(out)
}

fn set_rlimits(plan: &ProcessPlan) -> Result<(), ProcessError> {
    for &(resource, soft, hard) in &plan.rlimits {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `limit` is a valid rlimit that outlives the call; setrlimit only reads it.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(errno(
                &format!("setrlimit {resource}"),
                nix::errno::Errno::last(),
            ));
        }
    }
    Ok(())
}

fn caps_error(what: &str, e: caps::errors::CapsError) -> ProcessError {
    ProcessError::Init(format!("{what}: {e}"))
}

fn drop_bounding(keep: &CapsHashSet) -> Result<(), ProcessError> {
    for cap in caps::all() {
        if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| caps_error("dropping from the bounding set", e))?;
        }
    }
    Ok(())
}

fn switch_user(plan: &ProcessPlan) -> Result<(), ProcessError> {
    use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
    let groups: Vec<Gid> = plan
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    setgroups(&groups).map_err(|e| errno("setgroups", e))?;
    setgid(Gid::from_raw(plan.gid)).map_err(|e| errno(&format!("setgid {}", plan.gid), e))?;
    setuid(Uid::from_raw(plan.uid)).map_err(|e| errno(&format!("setuid {}", plan.uid), e))
}

fn set_caps(c: &LinuxCapabilities) -> Result<(), ProcessError> {
    // Inheritable first while CAP_SETPCAP is still effective; effective shrinks before
    // permitted (effective must stay within permitted); ambient last (needs both).
    caps::set(None, CapSet::Inheritable, &cap_set(c.inheritable())?)
        .map_err(|e| caps_error("inheritable", e))?;
    caps::set(None, CapSet::Effective, &cap_set(c.effective())?)
        .map_err(|e| caps_error("effective", e))?;
    caps::set(None, CapSet::Permitted, &cap_set(c.permitted())?)
        .map_err(|e| caps_error("permitted", e))?;
    let (inheritable, permitted) = (cap_set(c.inheritable())?, cap_set(c.permitted())?);
    for cap in cap_set(c.ambient())? {
        // The kernel only raises ambient caps that are permitted and inheritable; like runc,
        // skip the others rather than fail the container.
        if inheritable.contains(&cap) && permitted.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap).map_err(|e| caps_error("ambient", e))?;
        } else {
            log::warn!("ambient capability {cap} is not both permitted and inheritable: skipped");
        }
    }
    Ok(())
}

fn keep_caps(on: bool) -> Result<(), ProcessError> {
    nix::sys::prctl::set_keepcaps(on).map_err(|e| errno("PR_SET_KEEPCAPS", e))
}

/// Applies the process's rlimits, umask, no_new_privileges, identity and capabilities.
pub fn apply(plan: &ProcessPlan) -> Result<(), ProcessError> {
    set_rlimits(plan)?;
    if let Some(mask) = plan.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    if let Some(c) = &plan.capabilities {
        drop_bounding(&cap_set(c.bounding())?)?;
    }
    if plan.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(|e| errno("PR_SET_NO_NEW_PRIVS", e))?;
    }
    // Keep the permitted set across setuid to a non-root uid; set_caps raises it again.
    keep_caps(true)?;
    switch_user(plan)?;
    keep_caps(false)?;
    if let Some(c) = &plan.capabilities {
        set_caps(c)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Capability as OciCap;

    #[test]
    fn oci_capability_names_map_to_caps() {
        let set: oci_spec::runtime::Capabilities = [OciCap::NetBindService, OciCap::Chown]
            .into_iter()
            .collect();
        let mapped = cap_set(&Some(set)).unwrap();
        assert!(mapped.contains(&Capability::CAP_NET_BIND_SERVICE));
        assert!(mapped.contains(&Capability::CAP_CHOWN));
        assert_eq!(mapped.len(), 2);
    }
}
