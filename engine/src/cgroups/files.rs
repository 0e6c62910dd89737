//! Small file helpers shared by the v1 and v2 code: control-file reads and writes that
//! name the file in their errors, directory creation that remembers what it made, and
//! removal that waits out the kernel's brief `EBUSY` after the last task exits.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::resources::Setting;
use super::CgroupError;

/// Writes `value` to `dir/file`; the file is created only on a plain (test) filesystem.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|source| CgroupError::Io {
        what: format!("writing {value:?} to {}", path.display()),
        source,
    })
}

/// Writes one limit: like [`write`], but a missing file is reported as a controller
/// that is not enabled, which is what it means on a real cgroup filesystem. An optional
/// setting whose file this kernel lacks (swap accounting off) is skipped with a
/// warning instead, as Docker does.
pub(crate) fn write_setting(dir: &Path, s: &Setting) -> Result<(), CgroupError> {
    if s.optional && !dir.join(&s.file).exists() {
        log::warn!(
            "{} is not available on this kernel; {} not set",
            s.file,
            s.value
        );
        return Ok(());
    }
    write(dir, &s.file, &s.value).map_err(|e| match dir.join(&s.file) {
        file if dir.is_dir() && !file.exists() => CgroupError::ControllerUnavailable {
            controller: s.controller.name(),
            file,
        },
        _ => e,
    })
}

/// The trimmed contents of `dir/file`, or `None` when it cannot be read.
pub(crate) fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The value of `key` in a flat-keyed file such as `memory.events` (`oom_kill 1`).
pub(crate) fn keyed_value(dir: &Path, file: &str, key: &str) -> Option<u64> {
    let text = read(dir, file)?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Creates `mount/rel` level by level. `before_mkdir` runs on each existing parent
/// before its child is made (v2 enables controllers there). Pushes the directories it
/// created onto `created`, outermost first. The leaf must not exist yet.
pub(crate) fn make_dirs(
    mount: &Path,
    rel: &Path,
    mut before_mkdir: impl FnMut(&Path) -> Result<(), CgroupError>,
    created: &mut Vec<PathBuf>,
) -> Result<PathBuf, CgroupError> {
    // A parent may vanish under us when the last other container removes it: retry.
    for attempt in 0.. {
        match make_dirs_once(mount, rel, &mut before_mkdir, created) {
            Err(CgroupError::Io { source, .. })
                if source.kind() == ErrorKind::NotFound && attempt < 3 => {}
            other => return other,
        }
    }
    unreachable!("the retry loop returns")
}

fn make_dirs_once(
    mount: &Path,
    rel: &Path,
    before_mkdir: &mut impl FnMut(&Path) -> Result<(), CgroupError>,
    created: &mut Vec<PathBuf>,
) -> Result<PathBuf, CgroupError> {
    let mut dir = mount.to_path_buf();
    let depth = rel.components().count();
    for (i, part) in rel.components().enumerate() {
        before_mkdir(&dir)?;
        let child = dir.join(part);
        match std::fs::create_dir(&child) {
            Ok(()) => created.push(child.clone()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && i + 1 < depth => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(CgroupError::Exists(child))
            }
            Err(source) => {
                let what = format!("creating cgroup {}", child.display());
                return Err(CgroupError::Io { what, source });
            }
        }
        dir = child;
    }
    Ok(dir)
}

/// Removes a cgroup directory, retrying while the kernel still reports it busy.
pub(crate) fn remove_dir(dir: &Path) -> Result<(), CgroupError> {
    for attempt in 0.. {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 200 => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(source) => {
                let what = format!("removing cgroup {}", dir.display());
                return Err(CgroupError::Io { what, source });
            }
        }
    }
    unreachable!("the retry loop returns")
}

/// Removes the now-empty parents of `mount/rel` (not `mount` itself); a parent still
/// used by another container stays. The kernel answers `EBUSY` both for a parent with
/// live children and, briefly, for one whose last child is still going offline, so
/// only a parent without subdirectories is retried.
pub(crate) fn remove_empty_parents(mount: &Path, rel: &Path) {
    let mut parent = rel.parent();
    while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
        let dir = mount.join(p);
        if has_subdirs(&dir) || remove_dir(&dir).is_err() {
            break;
        }
        parent = p.parent();
    }
}

fn has_subdirs(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_dirs_reports_only_what_it_created_and_refuses_an_existing_leaf() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("isolab")).unwrap();
        let mut created = Vec::new();
        let mut visited = Vec::new();
        let leaf = make_dirs(
            tmp.path(),
            Path::new("isolab/c1"),
            |d| {
                visited.push(d.to_path_buf());
                Ok(())
            },
            &mut created,
        )
        .unwrap();
        assert_eq!(leaf, tmp.path().join("isolab/c1"));
        assert_eq!(created, vec![leaf.clone()]);
        assert_eq!(
            visited,
            vec![tmp.path().to_path_buf(), tmp.path().join("isolab")]
        );
        let err = make_dirs(tmp.path(), Path::new("isolab/c1"), |_| Ok(()), &mut created);
        assert!(matches!(err, Err(CgroupError::Exists(_))));
    }

    #[test]
    fn keyed_values_are_parsed_by_key() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("memory.events"),
            "low 0\noom 2\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(
            keyed_value(tmp.path(), "memory.events", "oom_kill"),
            Some(1)
        );
        assert_eq!(keyed_value(tmp.path(), "memory.events", "oom"), Some(2));
        assert_eq!(keyed_value(tmp.path(), "memory.events", "max"), None);
        assert_eq!(keyed_value(tmp.path(), "missing", "oom"), None);
    }

    #[test]
    fn empty_parents_go_and_busy_ones_stay() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("isolab/a")).unwrap();
        std::fs::create_dir_all(tmp.path().join("isolab/b")).unwrap();
        remove_dir(&tmp.path().join("isolab/a")).unwrap();
        remove_empty_parents(tmp.path(), Path::new("isolab/a"));
        assert!(
            tmp.path().join("isolab").exists(),
            "b still uses the parent"
        );
        remove_dir(&tmp.path().join("isolab/b")).unwrap();
        remove_empty_parents(tmp.path(), Path::new("isolab/b"));
        assert!(!tmp.path().join("isolab").exists());
        assert!(tmp.path().exists());
    }
}
