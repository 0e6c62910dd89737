//! `engine run` flags as runtime-spec fields: memory, CPU and pids limits, the network
//! mode annotation, volumes as bind mounts, and the overlay lower dirs annotation.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, Mount, MountBuilder, Spec,
};

use super::FrontendError;
use crate::image::bundle::ANNOTATION_LOWERDIRS;
use crate::network::{NetworkMode, NETWORK_ANNOTATION};
use crate::volume::Volumes;

/// The CFS period `--cpus` quotas are expressed in.
const CPU_PERIOD_US: u64 = 100_000;

/// Resource limits from `--memory`, `--cpus`, `--pids-limit`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub memory_bytes: Option<i64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

/// One `-v SRC:DST[:ro]`: SRC is an absolute host path or a volume name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeArg {
    pub source: String,
    pub destination: String,
    pub readonly: bool,
}

fn bad(what: &'static str, value: &str, reason: &'static str) -> FrontendError {
    FrontendError::BadOption {
        what,
        value: value.to_string(),
        reason,
    }
}

/// `64m`, `1g`, `512k`, `1048576` (bytes) as bytes.
pub fn parse_memory(text: &str) -> Result<i64, FrontendError> {
    let err = || {
        bad(
            "memory limit",
            text,
            "use a number with an optional b, k, m or g suffix",
        )
    };
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let shift = match unit {
        "" | "b" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        _ => return Err(err()),
    };
    let n: i64 = digits.parse().map_err(|_| err())?;
    n.checked_shl(shift)
        .filter(|v| *v > 0 && v >> shift == n)
        .ok_or_else(err)
}

/// `0.5` CPUs and the like.
pub fn parse_cpus(text: &str) -> Result<f64, FrontendError> {
    match text.parse::<f64>() {
        Ok(v) if (0.01..=1024.0).contains(&v) => Ok(v),
        _ => Err(bad(
            "--cpus",
            text,
            "use a number of CPUs from 0.01, like 0.5 or 2",
        )),
    }
}

pub fn parse_volume(text: &str) -> Result<VolumeArg, FrontendError> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, destination, readonly) = match parts.as_slice() {
        [s, d] => (*s, *d, false),
        [s, d, "ro"] => (*s, *d, true),
        [s, d, "rw"] => (*s, *d, false),
        _ => return Err(bad("volume", text, "use SRC:DST or SRC:DST:ro")),
    };
    if !destination.starts_with('/') {
        return Err(bad(
            "volume",
            text,
            "the destination must be an absolute path",
        ));
    }
    if !source.starts_with('/') && !Volumes::is_name(source) {
        return Err(bad(
            "volume",
            text,
            "the source must be an absolute path or a volume name",
        ));
    }
    Ok(VolumeArg {
        source: source.to_string(),
        destination: destination.to_string(),
        readonly,
    })
}

/// Puts the limits into `linux.resources` (the runtime writes them to the cgroup).
pub fn apply_limits(spec: &mut Spec, limits: Limits) {
    let Some(linux) = spec.linux_mut() else {
        return;
    };
    let mut resources = linux.resources().clone().unwrap_or_default();
    if let Some(bytes) = limits.memory_bytes {
        let memory = LinuxMemoryBuilder::default()
            .limit(bytes)
            .build()
            .expect("set");
        resources.set_memory(Some(memory));
    }
    if let Some(cpus) = limits.cpus {
        let quota = (cpus * CPU_PERIOD_US as f64).round() as i64;
        let cpu = LinuxCpuBuilder::default()
            .quota(quota)
            .period(CPU_PERIOD_US)
            .build()
            .expect("set");
        resources.set_cpu(Some(cpu));
    }
    if let Some(pids) = limits.pids {
        resources.set_pids(Some(
            LinuxPidsBuilder::default()
                .limit(pids)
                .build()
                .expect("set"),
        ));
    }
    linux.set_resources(Some(resources));
}

/// Chooses the network: `host` leaves the host's namespace, the others keep their own.
pub fn apply_network(spec: &mut Spec, mode: NetworkMode) {
    if mode == NetworkMode::Host {
        if let Some(linux) = spec.linux_mut() {
            let mut namespaces = linux.namespaces().clone().unwrap_or_default();
            namespaces.retain(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Network);
            linux.set_namespaces(Some(namespaces));
        }
    }
    let name = match mode {
        NetworkMode::None => "none",
        NetworkMode::Host => "host",
        NetworkMode::Bridge => "bridge",
    };
    annotate(spec, NETWORK_ANNOTATION, name.to_string());
}

/// Names the shared layer dirs (base first as given) for the runtime's overlay.
pub fn apply_lowerdirs(spec: &mut Spec, layers_base_first: &[PathBuf]) {
    let top_first: Vec<String> = layers_base_first
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    annotate(spec, ANNOTATION_LOWERDIRS, top_first.join(":"));
}

fn annotate(spec: &mut Spec, key: &str, value: String) {
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    annotations.insert(key.to_string(), value);
    spec.set_annotations(Some(annotations));
}

/// Adds bind mounts for volumes; `resolved` are their host paths, in the same order.
pub fn apply_volumes(spec: &mut Spec, volumes: &[VolumeArg], resolved: &[PathBuf]) {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.extend(
        volumes
            .iter()
            .zip(resolved)
            .map(|(v, path)| bind_mount(v, path)),
    );
    spec.set_mounts(Some(mounts));
}

fn bind_mount(volume: &VolumeArg, source: &Path) -> Mount {
    let mode = if volume.readonly { "ro" } else { "rw" };
    MountBuilder::default()
        .destination(&volume.destination)
        .typ("bind")
        .source(source)
        .options(vec!["rbind".to_string(), mode.to_string()])
        .build()
        .expect("all fields set")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse() {
        assert_eq!(parse_memory("64m").unwrap(), 64 << 20);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(parse_memory("4096").unwrap(), 4096);
        for bad in ["", "m", "12x", "-5m", "0", "99999999999999g"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpus_and_volumes_parse() {
        assert_eq!(parse_cpus("0.5").unwrap(), 0.5);
        assert!(parse_cpus("0").is_err() && parse_cpus("NaN").is_err() && parse_cpus("x").is_err());
        let v = parse_volume("data:/var/data:ro").unwrap();
        assert_eq!(
            (v.source.as_str(), v.destination.as_str(), v.readonly),
            ("data", "/var/data", true)
        );
        assert!(parse_volume("/host:/c").is_ok());
        for bad in ["nodest", "a:relative", "../x:/c", "a:/c:maybe"] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_network_and_layers_land_in_the_spec() {
        let mut spec = Spec::default();
        let limits = Limits {
            memory_bytes: Some(64 << 20),
            cpus: Some(0.5),
            pids: Some(20),
        };
        apply_limits(&mut spec, limits);
        let resources = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        assert_eq!(resources.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(resources.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(resources.pids().as_ref().unwrap().limit(), 20);
        apply_network(&mut spec, NetworkMode::Host);
        let ns = spec.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(ns
            .iter()
            .all(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Network));
        apply_lowerdirs(
            &mut spec,
            &[PathBuf::from("/l/base"), PathBuf::from("/l/top")],
        );
        assert_eq!(
            spec.annotations().as_ref().unwrap()[ANNOTATION_LOWERDIRS],
            "/l/top:/l/base"
        );
    }
}
