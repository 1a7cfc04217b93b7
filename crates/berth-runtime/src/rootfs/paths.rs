//! Resolving container-controlled paths inside the root filesystem.
//!
//! A mount destination comes from the bundle and the rootfs may hold
//! symlinks placed by the image: resolving `/etc/x` through a link to `/`
//! or `../..` must never land on the host (CVE-2021-30465 class). Every
//! component is resolved here with the rootfs as `/`, links included.

use std::io;
use std::path::{Component, Path, PathBuf};

const MAX_LINKS: usize = 255;

/// Join `path` onto `root` so that the result stays inside `root`, following
/// symlinks as if `root` were the file-system root. Components that do not
/// exist yet are kept as they are.
pub fn secure_join(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        if part == "." || part.is_empty() {
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                push_components(&mut pending, &target);
            }
            _ => resolved.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// Push the components of `path` so that popping yields them in order.
fn push_components(stack: &mut Vec<std::ffi::OsString>, path: &Path) {
    let parts: Vec<_> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn plain_paths_join() {
        let root = tempfile::tempdir().unwrap();
        let p = secure_join(root.path(), Path::new("/a/b/../c")).unwrap();
        assert_eq!(p, root.path().join("a/c"));
    }

    #[test]
    fn dotdot_never_leaves_root() {
        let root = tempfile::tempdir().unwrap();
        let p = secure_join(root.path(), Path::new("/../../../etc/passwd")).unwrap();
        assert_eq!(p, root.path().join("etc/passwd"));
    }

    #[test]
    fn absolute_symlink_resolves_inside_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        symlink("/etc", root.path().join("link")).unwrap();
        symlink("/real", root.path().join("abs")).unwrap();
        assert_eq!(
            secure_join(root.path(), Path::new("/link/x")).unwrap(),
            root.path().join("etc/x")
        );
        assert_eq!(
            secure_join(root.path(), Path::new("/abs/y")).unwrap(),
            root.path().join("real/y")
        );
    }

    #[test]
    fn relative_symlink_escape_is_clamped() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("d")).unwrap();
        symlink("../../../../..", root.path().join("d/up")).unwrap();
        assert_eq!(
            secure_join(root.path(), Path::new("/d/up/etc")).unwrap(),
            root.path().join("etc")
        );
    }

    #[test]
    fn symlink_loop_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        symlink("/b", root.path().join("a")).unwrap();
        symlink("/a", root.path().join("b")).unwrap();
        let err = secure_join(root.path(), Path::new("/a")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }
}
