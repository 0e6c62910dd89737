//! From an image to an OCI runtime bundle: the runtime `config.json` an image implies
//! (process = ENTRYPOINT + CMD, env, cwd, user, labels as annotations, runc's default
//! namespaces, mounts, masked and read-only paths) and `engine image unpack`, which
//! writes it next to a flattened `rootfs/` that runc can run.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    LinuxDeviceCgroupBuilder, LinuxResourcesBuilder, Process, Root, Spec, User,
};

use super::store::{Image, ImageStore, StoreError};
use super::unpack::{self, UnpackError};

/// Annotation carrying the image id (manifest digest) a bundle was made from.
pub const ANNOTATION_IMAGE_ID: &str = "org.isolab.image.id";
/// Annotation agreed with the runtime: colon-separated absolute overlay lower dirs, top
/// layer first. When present the runtime mounts overlay(lowerdirs, upper, work) as the
/// rootfs instead of using `root.path`.
pub const ANNOTATION_LOWERDIRS: &str = "org.isolab.rootfs.lowerdirs";
/// The PATH a process gets when the image sets none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What went wrong while making a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("image has no ENTRYPOINT or CMD: give a command to run")]
    NoCommand,
    #[error("bundle directory {0} exists and is not empty")]
    NotEmpty(PathBuf),
    #[error("image user {user:?}: {reason}")]
    User { user: String, reason: String },
    #[error("invalid environment entry {0:?}: expected KEY=VALUE")]
    Env(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("writing {path}: {source}")]
    Spec {
        path: PathBuf,
        source: oci_spec::OciSpecError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
}

/// What a caller changes from the image's defaults, like `engine run` flags do.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces CMD when not empty (ENTRYPOINT stays).
    pub args: Vec<String>,
    /// `KEY=VALUE`, overriding the image's value of KEY.
    pub env: Vec<String>,
    /// The container's hostname; `isolab` when not given.
    pub hostname: Option<String>,
}

/// The runtime spec for running `config` on a rootfs; `etc_dirs` are searched (first
/// hit wins) for `etc/passwd` and `etc/group` when the image names a user.
pub fn runtime_spec(
    config: &ImageConfiguration,
    overrides: &Overrides,
    etc_dirs: &[PathBuf],
) -> Result<Spec, BundleError> {
    let image = config.config().clone().unwrap_or_default();
    let mut args = image.entrypoint().clone().unwrap_or_default();
    match &overrides.args {
        a if !a.is_empty() => args.extend(a.iter().cloned()),
        _ => args.extend(image.cmd().clone().unwrap_or_default()),
    }
    if args.is_empty() {
        return Err(BundleError::NoCommand);
    }
    let mut process = Process::default();
    process.set_args(Some(args));
    process.set_env(Some(merge_env(
        image.env().as_deref().unwrap_or_default(),
        &overrides.env,
    )?));
    process.set_cwd(
        image
            .working_dir()
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or("/".into())
            .into(),
    );
    process.set_user(resolve_user(
        image.user().as_deref().unwrap_or(""),
        etc_dirs,
    )?);

    let mut spec = Spec::default();
    spec.set_process(Some(process));
    spec.set_hostname(Some(
        overrides
            .hostname
            .clone()
            .unwrap_or_else(|| "isolab".into()),
    ));
    let mut root = Root::default();
    root.set_path("rootfs".into());
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    let mut annotations = image.labels().clone().unwrap_or_default();
    annotations.retain(|k, _| !k.starts_with("org.isolab."));
    spec.set_annotations(Some(annotations));
    deny_devices(&mut spec);
    Ok(spec)
}

/// Denies every device in the device cgroup but those the runtime adds, like runc's spec.
fn deny_devices(spec: &mut Spec) {
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .expect("all fields set");
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![deny_all])
        .build()
        .expect("all fields set");
    if let Some(linux) = spec.linux_mut() {
        linux.set_resources(Some(resources));
    }
}

/// The image's env with `extra` applied over it, PATH defaulted.
fn merge_env(image: &[String], extra: &[String]) -> Result<Vec<String>, BundleError> {
    let mut out: Vec<String> = Vec::new();
    for entry in image.iter().chain(extra) {
        let (key, _) = entry
            .split_once('=')
            .ok_or_else(|| BundleError::Env(entry.clone()))?;
        if key.is_empty() {
            return Err(BundleError::Env(entry.clone()));
        }
        out.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
        out.push(entry.clone());
    }
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(0, DEFAULT_PATH.to_string());
    }
    Ok(out)
}

/// `USER` as the image gives it (`uid`, `uid:gid`, `name`, `name:group`) to numeric ids.
fn resolve_user(user: &str, etc_dirs: &[PathBuf]) -> Result<User, BundleError> {
    let mut out = User::default();
    if user.is_empty() {
        return Ok(out);
    }
    let (name, group) = match user.split_once(':') {
        Some((n, g)) => (n, Some(g)),
        None => (user, None),
    };
    let err = |reason: String| BundleError::User {
        user: user.to_string(),
        reason,
    };
    let passwd = lookup(etc_dirs, "etc/passwd", name);
    let uid = name.parse().ok().or(passwd.as_ref().map(|p| p.0));
    out.set_uid(uid.ok_or_else(|| err(format!("no user {name} in the image's /etc/passwd")))?);
    let gid = match group {
        Some(g) => g
            .parse()
            .ok()
            .or(lookup(etc_dirs, "etc/group", g).map(|e| e.0))
            .ok_or_else(|| err(format!("no group {g} in the image's /etc/group")))?,
        None => passwd.map(|p| p.1).unwrap_or(0),
    };
    out.set_gid(gid);
    Ok(out)
}

/// Finds `name` in a passwd or group file: (id, primary gid or id).
fn lookup(etc_dirs: &[PathBuf], file: &str, name: &str) -> Option<(u32, u32)> {
    let text = etc_dirs
        .iter()
        .find_map(|d| fs::read_to_string(d.join(file)).ok())?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() != Some(&name) || fields.len() < 3 {
            return None;
        }
        let id = fields[2].parse().ok()?;
        Some((id, fields.get(3).and_then(|g| g.parse().ok()).unwrap_or(id)))
    })
}

/// Writes `bundle/rootfs` (every layer flattened) and `bundle/config.json` for `image`.
/// On failure nothing the call created is left behind.
pub fn unpack_bundle(store: &ImageStore, image: &Image, bundle: &Path) -> Result<(), BundleError> {
    let created = prepare_bundle_dir(bundle)?;
    let result = write_bundle(store, image, bundle);
    if result.is_err() {
        let _ = if created {
            fs::remove_dir_all(bundle)
        } else {
            clear_dir(bundle)
        };
    }
    result
}

fn write_bundle(store: &ImageStore, image: &Image, bundle: &Path) -> Result<(), BundleError> {
    let rootfs = bundle.join("rootfs");
    fs::create_dir(&rootfs).map_err(io_err("creating", &rootfs))?;
    unpack::flatten_layers(store, image.manifest.layers(), &rootfs)?;
    let mut spec = runtime_spec(&image.config, &Overrides::default(), &[rootfs])?;
    let mut annotations: HashMap<String, String> = spec.annotations().clone().unwrap_or_default();
    annotations.insert(ANNOTATION_IMAGE_ID.into(), image.id.to_string());
    spec.set_annotations(Some(annotations));
    let path = bundle.join("config.json");
    spec.save(&path)
        .map_err(|source| BundleError::Spec { path, source })
}

/// Creates the bundle dir, or accepts an empty one; true when this call created it.
fn prepare_bundle_dir(bundle: &Path) -> Result<bool, BundleError> {
    match fs::read_dir(bundle) {
        Ok(mut entries) => match entries.next() {
            None => Ok(false),
            Some(_) => Err(BundleError::NotEmpty(bundle.to_path_buf())),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(bundle).map_err(io_err("creating", bundle))?;
            Ok(true)
        }
        Err(e) => Err(io_err("reading", bundle)(e)),
    }
}

fn clear_dir(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        match fs::symlink_metadata(&path)?.is_dir() {
            true => fs::remove_dir_all(&path)?,
            false => fs::remove_file(&path)?,
        }
    }
    Ok(())
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BundleError {
    let path = path.to_path_buf();
    move |source| BundleError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layer;
    use oci_spec::image::{ConfigBuilder, ImageConfigurationBuilder};
    use oci_spec::runtime::LinuxNamespaceType;

    fn config(entrypoint: &[&str], cmd: &[&str], user: &str) -> ImageConfiguration {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = ConfigBuilder::default()
            .entrypoint(strings(entrypoint))
            .cmd(strings(cmd))
            .env(vec!["A=1".to_string()])
            .working_dir("/app")
            .user(user)
            .labels(HashMap::from([(
                "org.example".to_string(),
                "x".to_string(),
            )]))
            .build()
            .unwrap();
        ImageConfigurationBuilder::default()
            .config(c)
            .rootfs(layer::rootfs_of(Vec::new()))
            .build()
            .unwrap()
    }

    #[test]
    fn process_is_entrypoint_then_cmd_or_args() {
        let cfg = config(&["/workload"], &["ready"], "");
        let spec = runtime_spec(&cfg, &Overrides::default(), &[]).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["/workload", "ready"]);
        assert_eq!(p.cwd(), Path::new("/app"));
        assert_eq!(p.env().as_ref().unwrap(), &[DEFAULT_PATH, "A=1"]);
        let o = Overrides {
            args: vec!["info".into()],
            env: vec!["A=2".into()],
            hostname: Some("box".into()),
        };
        let spec = runtime_spec(&cfg, &o, &[]).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["/workload", "info"]);
        assert_eq!(p.env().as_ref().unwrap(), &[DEFAULT_PATH, "A=2"]);
        assert_eq!(spec.hostname().as_deref(), Some("box"));
        assert_eq!(spec.annotations().as_ref().unwrap()["org.example"], "x");
    }

    #[test]
    fn spec_isolates_like_runc() {
        let spec = runtime_spec(&config(&["/w"], &[], ""), &Overrides::default(), &[]).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        for want in [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Network,
        ] {
            assert!(ns.contains(&want), "{want:?} missing");
        }
        assert!(linux
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_string()));
        let mounts: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().clone())
            .collect();
        for want in ["/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"] {
            assert!(mounts.contains(&PathBuf::from(want)), "{want} missing");
        }
    }

    #[test]
    fn missing_command_and_bad_env_are_errors() {
        let cfg = config(&[], &[], "");
        assert!(matches!(
            runtime_spec(&cfg, &Overrides::default(), &[]),
            Err(BundleError::NoCommand)
        ));
        let o = Overrides {
            args: vec!["x".into()],
            env: vec!["NOEQUALS".into()],
            hostname: None,
        };
        assert!(matches!(
            runtime_spec(&cfg, &o, &[]),
            Err(BundleError::Env(_))
        ));
    }

    #[test]
    fn named_user_is_looked_up_in_the_image() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        fs::write(d.path().join("etc/group"), "wheel:x:10:\n").unwrap();
        let dirs = [d.path().to_path_buf()];
        let user = resolve_user("app", &dirs).unwrap();
        assert_eq!((user.uid(), user.gid()), (1000, 1001));
        let user = resolve_user("app:wheel", &dirs).unwrap();
        assert_eq!((user.uid(), user.gid()), (1000, 10));
        let user = resolve_user("5:6", &[]).unwrap();
        assert_eq!((user.uid(), user.gid()), (5, 6));
        assert!(matches!(
            resolve_user("nobody", &dirs),
            Err(BundleError::User { .. })
        ));
    }
}
