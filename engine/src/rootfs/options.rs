//! Mount options of config.json (`ro`, `nosuid`, `rbind`, `mode=755`, ...) turned into
//! mount(2) flags, a propagation change and the file-system data string, as runc does.

use nix::mount::MsFlags;

/// A config mount's options, split the way mount(2) wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedOptions {
    /// MS_* flags for the mount call itself.
    pub flags: MsFlags,
    /// A propagation change applied after the mount (MS_PRIVATE, MS_SLAVE, ...).
    pub propagation: MsFlags,
    /// Options the file system interprets (`mode=755,size=65536k`).
    pub data: String,
}

impl Default for ParsedOptions {
    fn default() -> Self {
        ParsedOptions {
            flags: MsFlags::empty(),
            propagation: MsFlags::empty(),
            data: String::new(),
        }
    }
}

impl ParsedOptions {
    /// Whether this is a bind mount (`bind` or `rbind`).
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

fn flag_of(option: &str) -> Option<(bool, MsFlags)> {
    // (clear, flag): `clear` options undo a flag rather than set it.
    Some(match option {
        "ro" => (false, MsFlags::MS_RDONLY),
        "rw" => (true, MsFlags::MS_RDONLY),
        "nosuid" => (false, MsFlags::MS_NOSUID),
        "suid" => (true, MsFlags::MS_NOSUID),
        "nodev" => (false, MsFlags::MS_NODEV),
        "dev" => (true, MsFlags::MS_NODEV),
        "noexec" => (false, MsFlags::MS_NOEXEC),
        "exec" => (true, MsFlags::MS_NOEXEC),
        "sync" => (false, MsFlags::MS_SYNCHRONOUS),
        "async" => (true, MsFlags::MS_SYNCHRONOUS),
        "noatime" => (false, MsFlags::MS_NOATIME),
        "atime" => (true, MsFlags::MS_NOATIME),
        "nodiratime" => (false, MsFlags::MS_NODIRATIME),
        "relatime" => (false, MsFlags::MS_RELATIME),
        "strictatime" => (false, MsFlags::MS_STRICTATIME),
        "bind" => (false, MsFlags::MS_BIND),
        "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
        "defaults" => (false, MsFlags::empty()),
        _ => return None,
    })
}

fn propagation_of(option: &str) -> Option<MsFlags> {
    Some(match option {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Splits a config mount's options.
pub fn parse(options: &[String]) -> ParsedOptions {
    let mut parsed = ParsedOptions::default();
    let mut data = Vec::new();
    for option in options {
        if let Some((clear, flag)) = flag_of(option) {
            parsed.flags.set(flag, !clear);
        } else if let Some(flag) = propagation_of(option) {
            parsed.propagation |= flag;
        } else {
            data.push(option.as_str());
        }
    }
    parsed.data = data.join(",");
    parsed
}

/// The propagation flags for `/` from `linux.rootfsPropagation` (runc's default: rslave).
pub fn root_propagation(value: Option<&str>) -> Option<MsFlags> {
    match value.unwrap_or("") {
        "" => Some(MsFlags::MS_SLAVE | MsFlags::MS_REC),
        other => propagation_of(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splits_flags_data_and_propagation() {
        let p = parse(&strings(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rprivate",
        ]));
        assert_eq!(p.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(p.data, "mode=755,size=65536k");
        assert_eq!(p.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let p = parse(&strings(&["ro", "rw", "rbind"]));
        assert!(!p.flags.contains(MsFlags::MS_RDONLY));
        assert!(p.is_bind() && p.flags.contains(MsFlags::MS_REC));
    }

    #[test]
    fn root_propagation_defaults_to_rslave_and_rejects_unknown() {
        assert_eq!(
            root_propagation(None),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(root_propagation(Some("private")), Some(MsFlags::MS_PRIVATE));
        assert_eq!(root_propagation(Some("sideways")), None);
    }
}
