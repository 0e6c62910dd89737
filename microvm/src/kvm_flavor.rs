//! Which KVM implementation backs `/dev/kvm`: hardware VMX, hardware SVM, or PVM (a
//! software, shadow-paging KVM with no hardware virtualization). Every result records
//! it, because the same guest costs very different amounts on each.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The flavor of KVM found on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvmFlavor {
    /// Intel VT-x (`kvm_intel`).
    Vmx,
    /// AMD-V (`kvm_amd`).
    Svm,
    /// Pagetable-based Virtual Machine (`kvm_pvm`): guest CPL0 is emulated.
    Pvm,
    /// No usable `/dev/kvm`.
    None,
}

impl KvmFlavor {
    /// The lowercase name used in results and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            KvmFlavor::Vmx => "vmx",
            KvmFlavor::Svm => "svm",
            KvmFlavor::Pvm => "pvm",
            KvmFlavor::None => "none",
        }
    }

    /// True for hardware-assisted virtualization, where a stock Linux guest boots.
    pub fn is_hardware(self) -> bool {
        matches!(self, KvmFlavor::Vmx | KvmFlavor::Svm)
    }
}

impl fmt::Display for KvmFlavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Detects the flavor on this host.
pub fn detect() -> KvmFlavor {
    detect_in(Path::new("/"))
}

/// Detects the flavor under `root` (a test passes a directory shaped like `/`):
/// the `/dev/kvm` node must exist, and the loaded vendor module names the flavor.
/// PVM is checked first because a PVM host may also have `kvm_amd`/`kvm_intel` loaded
/// without usable hardware support.
pub fn detect_in(root: &Path) -> KvmFlavor {
    if !root.join("dev/kvm").exists() {
        return KvmFlavor::None;
    }
    let module = |name: &str| root.join("sys/module").join(name).exists();
    if module("kvm_pvm") {
        KvmFlavor::Pvm
    } else if module("kvm_intel") {
        KvmFlavor::Vmx
    } else if module("kvm_amd") {
        KvmFlavor::Svm
    } else {
        cpu_flag_flavor(root)
    }
}

/// Falls back to the CPU flags when KVM is built in (no module directory).
fn cpu_flag_flavor(root: &Path) -> KvmFlavor {
    let cpuinfo = std::fs::read_to_string(root.join("proc/cpuinfo")).unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
    if has("vmx") {
        KvmFlavor::Vmx
    } else if has("svm") {
        KvmFlavor::Svm
    } else {
        // /dev/kvm without hardware support and without a known module: only PVM
        // provides that.
        KvmFlavor::Pvm
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fake_root(dev_kvm: bool, modules: &[&str], flags: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if dev_kvm {
            fs::create_dir_all(dir.path().join("dev")).unwrap();
            fs::write(dir.path().join("dev/kvm"), "").unwrap();
        }
        for m in modules {
            fs::create_dir_all(dir.path().join("sys/module").join(m)).unwrap();
        }
        fs::create_dir_all(dir.path().join("proc")).unwrap();
        fs::write(
            dir.path().join("proc/cpuinfo"),
            format!("processor\t: 0\nflags\t\t: fpu {flags} sse2\n"),
        )
        .unwrap();
        dir
    }

    #[test]
    fn each_flavor_is_recognised() {
        let cases = [
            (true, vec!["kvm", "kvm_intel"], "vmx", KvmFlavor::Vmx),
            (true, vec!["kvm", "kvm_amd"], "svm", KvmFlavor::Svm),
            (true, vec!["kvm", "kvm_pvm"], "hypervisor", KvmFlavor::Pvm),
            (
                true,
                vec!["kvm", "kvm_pvm", "kvm_amd"],
                "svm",
                KvmFlavor::Pvm,
            ),
            (true, vec![], "vmx", KvmFlavor::Vmx),
            (true, vec![], "svm", KvmFlavor::Svm),
            (false, vec!["kvm", "kvm_intel"], "vmx", KvmFlavor::None),
        ];
        for (dev, modules, flags, want) in cases {
            let root = fake_root(dev, &modules, flags);
            assert_eq!(detect_in(root.path()), want, "{modules:?} {flags}");
        }
    }

    #[test]
    fn names_are_lowercase_in_json() {
        assert_eq!(serde_json::to_string(&KvmFlavor::Pvm).unwrap(), "\"pvm\"");
        assert!(KvmFlavor::Svm.is_hardware() && !KvmFlavor::Pvm.is_hardware());
    }
}
