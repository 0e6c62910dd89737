//! Where the programs are: isolab's own binaries next to `bench` (the way `cargo build`
//! and an install lay them out), overridable by flags or `ISOLAB_*` variables; the
//! guest kernel from `/boot`.

use std::path::{Path, PathBuf};

use crate::cli::ToolArgs;
use crate::models::Tools;

/// Resolves every path, defaulting to the directory of the running `bench`.
pub fn locate(args: &ToolArgs) -> Tools {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    locate_in(args, &dir, Path::new("/boot"))
}

/// As [`locate`], with the binary directory and `/boot` given.
pub fn locate_in(args: &ToolArgs, bin_dir: &Path, boot: &Path) -> Tools {
    let pick =
        |given: &Option<PathBuf>, name: &str| given.clone().unwrap_or_else(|| bin_dir.join(name));
    Tools {
        workload: pick(&args.workload, "workload"),
        engine: pick(&args.engine, "engine"),
        engine_oci: pick(&args.engine_oci, "engine-oci"),
        microvm: pick(&args.microvm, "microvm"),
        kernel: args.kernel.clone().or_else(|| newest_kernel(boot)),
        firecracker: args.firecracker.clone(),
    }
}

/// The `vmlinuz-*` in `boot` with the highest version-sorted name.
fn newest_kernel(boot: &Path) -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir(boot)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort_by_key(|k| version_key(k));
    kernels.pop()
}

/// Numbers in the name compared as numbers (6.10 after 6.9).
fn version_key(p: &Path) -> Vec<u64> {
    p.to_string_lossy()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_next_to_bench_and_newest_kernel() {
        let boot = tempfile::tempdir().unwrap();
        for k in [
            "vmlinuz-6.9.0-1-amd64",
            "vmlinuz-6.10.0-1-amd64",
            "config-7.0",
        ] {
            std::fs::write(boot.path().join(k), "").unwrap();
        }
        let t = locate_in(&ToolArgs::default(), Path::new("/opt/isolab"), boot.path());
        assert_eq!(t.workload, Path::new("/opt/isolab/workload"));
        assert_eq!(t.engine_oci, Path::new("/opt/isolab/engine-oci"));
        assert_eq!(
            t.kernel.unwrap(),
            boot.path().join("vmlinuz-6.10.0-1-amd64")
        );
    }

    #[test]
    fn flags_override() {
        let args = ToolArgs {
            workload: Some("/x/w".into()),
            ..ToolArgs::default()
        };
        let t = locate_in(&args, Path::new("/opt"), Path::new("/nonexistent"));
        assert_eq!(t.workload, Path::new("/x/w"));
        assert_eq!(t.kernel, None);
    }
}
