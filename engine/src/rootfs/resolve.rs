//! Resolving a container path inside the rootfs before pivot_root, with symlinks read as
//! the container would read them (an absolute link restarts at the rootfs, `..` stops at
//! it), so an image's `dev -> /etc` cannot point a mount outside its root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::RootfsError;

/// Links followed before giving up, as the kernel's MAXSYMLINKS.
const MAX_LINKS: usize = 40;

fn components(path: &Path) -> impl Iterator<Item = Component<'_>> {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
}

/// `root` joined with `inner`, every symlink on the way resolved inside `root`.
/// Components that do not exist yet are taken as they are (they will be created).
pub fn resolve_in_root(root: &Path, inner: &Path) -> Result<PathBuf, RootfsError> {
    let mut todo: VecDeque<OsString> = components(inner)
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            done.pop();
            continue;
        }
        let candidate: PathBuf = root.join(done.iter().collect::<PathBuf>()).join(&part);
        let Ok(target) = std::fs::read_link(&candidate) else {
            done.push(part);
            continue;
        };
        links += 1;
        if links > MAX_LINKS {
            return Err(RootfsError::BadPath(
                inner.to_path_buf(),
                "has too many levels of symbolic links",
            ));
        }
        if target.is_absolute() {
            done.clear();
        }
        for (i, c) in components(&target).enumerate() {
            todo.insert(i, c.as_os_str().to_owned());
        }
    }
    Ok(root.join(done.iter().collect::<PathBuf>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_resolve_inside_the_root_never_outside() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("real/sub")).unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../../../..", r.join("up")).unwrap();
        symlink("real", r.join("rel")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("/abs/passwd")).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(r, Path::new("/up/x")).unwrap(), r.join("x"));
        assert_eq!(
            resolve_in_root(r, Path::new("/rel/sub/new")).unwrap(),
            r.join("real/sub/new")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/a/../../b")).unwrap(),
            r.join("b")
        );
        assert!(resolve_in_root(r, Path::new("/loop")).is_err());
    }
}
