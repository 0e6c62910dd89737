//! Loading a bundle's config.json and refusing what this runtime does not support.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::ContainerError;
use crate::network::{NetworkMode, NETWORK_ANNOTATION};

/// Reads and checks `<bundle>/config.json`; returns the canonical bundle path too.
pub fn load(bundle: &Path) -> Result<(PathBuf, Spec), ContainerError> {
    let canonical = bundle
        .canonicalize()
        .map_err(|e| ContainerError::Bundle(bundle.to_path_buf(), format!("cannot open: {e}")))?;
    let config = canonical.join("config.json");
    let spec = Spec::load(&config)
        .map_err(|e| ContainerError::Bundle(canonical.clone(), format!("config.json: {e}")))?;
    refuse_unsupported(&spec)?;
    Ok((canonical, spec))
}

/// Refuses options that would otherwise be silently ignored.
pub fn refuse_unsupported(spec: &Spec) -> Result<(), ContainerError> {
    let unsupported = |what: &str| Err(ContainerError::Unsupported(what.into()));
    if spec.hooks().as_ref().is_some_and(|h| {
        [
            h.prestart(),
            h.create_runtime(),
            h.create_container(),
            h.start_container(),
            h.poststart(),
            h.poststop(),
        ]
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| !v.is_empty()))
    }) {
        return unsupported("hooks");
    }
    if let Some(linux) = spec.linux() {
        if linux.seccomp().is_some() {
            return unsupported("linux.seccomp");
        }
        if linux.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            return unsupported("linux.devices (only the standard /dev nodes are made)");
        }
        if linux.sysctl().as_ref().is_some_and(|d| !d.is_empty()) {
            return unsupported("linux.sysctl");
        }
    }
    Ok(())
}

/// The network mode: the annotation wins; else `none` with a new network namespace,
/// `host` without one.
pub fn network_mode(spec: &Spec, has_netns: bool) -> Result<NetworkMode, ContainerError> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    match annotations.get(NETWORK_ANNOTATION).map(String::as_str) {
        None => Ok(if has_netns {
            NetworkMode::None
        } else {
            NetworkMode::Host
        }),
        Some("none") if has_netns => Ok(NetworkMode::None),
        Some("bridge") if has_netns => Ok(NetworkMode::Bridge),
        Some("host") if !has_netns => Ok(NetworkMode::Host),
        Some(other) => Err(ContainerError::Unsupported(format!(
            "{NETWORK_ANNOTATION}={other} with{} a network namespace in linux.namespaces",
            if has_netns { "" } else { "out" }
        ))),
    }
}

/// The cgroup path: `linux.cgroupsPath`, or `isolab/<id>`.
pub fn cgroup_path(spec: &Spec, id: &str) -> String {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| format!("isolab/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_mode_follows_namespaces_and_annotation() {
        let mut spec = Spec::default();
        assert_eq!(network_mode(&spec, true).unwrap(), NetworkMode::None);
        assert_eq!(network_mode(&spec, false).unwrap(), NetworkMode::Host);
        let ann = [(NETWORK_ANNOTATION.to_string(), "bridge".to_string())]
            .into_iter()
            .collect();
        spec.set_annotations(Some(ann));
        assert_eq!(network_mode(&spec, true).unwrap(), NetworkMode::Bridge);
        assert!(network_mode(&spec, false).is_err(), "bridge needs a netns");
    }

    #[test]
    fn seccomp_is_refused_not_ignored() {
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap();
        linux.set_seccomp(Some(Default::default()));
        spec.set_linux(Some(linux));
        assert!(refuse_unsupported(&spec)
            .unwrap_err()
            .to_string()
            .contains("seccomp"));
    }

    #[test]
    fn missing_bundle_and_bad_json_are_clear_errors() {
        assert!(load(Path::new("/nonexistent-isolab-bundle"))
            .unwrap_err()
            .to_string()
            .contains("cannot open"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        assert!(load(dir.path())
            .unwrap_err()
            .to_string()
            .contains("config.json"));
    }
}
