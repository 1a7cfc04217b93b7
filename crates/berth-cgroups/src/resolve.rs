//! Resolution of the OCI `linux.cgroupsPath` into one directory per hierarchy (cgroupfs driver rules).

use std::path::{Component, Path, PathBuf};

/// Errors of cgroups path resolution.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cgroups path {path:?} is in systemd \"slice:prefix:name\" form, but the systemd cgroup driver is not supported")]
    Systemd { path: String },
    #[error("cgroups path {path:?} escapes the root of the {hierarchy} hierarchy")]
    Escapes { path: String, hierarchy: String },
    #[error("invalid container id {id:?} for a cgroup name")]
    InvalidId { id: String },
}

/// True for "slice:prefix:name" (systemd driver) paths.
pub fn is_systemd_path(path: &str) -> bool {
    !path.starts_with('/') && path.split(':').count() == 3
}

/// Lexically normalize `path` (absolute, "/"-rooted) refusing to climb above "/".
pub fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Some(out)
}

/// The calling process's cgroup in a hierarchy, from /proc/self/cgroup text.
/// `controllers` is the v1 hierarchy's controller list, or empty for the cgroup2 one.
pub fn own_cgroup(self_cgroup: &str, controllers: &[String]) -> PathBuf {
    for line in self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let matches = if controllers.is_empty() {
            ctrls.is_empty()
        } else {
            !ctrls.is_empty() && ctrls.split(',').any(|c| controllers.iter().any(|w| w == c))
        };
        if matches {
            return PathBuf::from(path);
        }
    }
    PathBuf::from("/")
}

/// The cgroup path (relative to the hierarchy's mount point) for one hierarchy.
///
/// `mount_root` is the hierarchy cgroup mounted at the mount point (mountinfo's root field).
pub fn inner_path(
    cgroups_path: &Path,
    self_cgroup: &str,
    controllers: &[String],
    mount_root: &Path,
    hierarchy: &str,
) -> Result<PathBuf, ResolveError> {
    let escapes = || ResolveError::Escapes {
        path: cgroups_path.display().to_string(),
        hierarchy: hierarchy.to_string(),
    };
    let full = if cgroups_path.is_absolute() {
        cgroups_path.to_path_buf()
    } else {
        let own = own_cgroup(self_cgroup, controllers);
        // Our own cgroup as seen below the mount point.
        let own = own
            .strip_prefix(mount_root)
            .map(|p| Path::new("/").join(p))
            .unwrap_or(own);
        own.join(cgroups_path)
    };
    normalize(&full).ok_or_else(escapes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SELF: &str =
        "4:memory:/process_api/abc\n2:cpu,cpuacct:/user.slice\n1:name=systemd:/init.scope\n0::/user.slice/u.scope\n";

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn own() {
        assert_eq!(own_cgroup(SELF, &s(&["memory"])), Path::new("/process_api/abc"));
        assert_eq!(own_cgroup(SELF, &s(&["cpuacct", "cpu"])), Path::new("/user.slice"));
        assert_eq!(own_cgroup(SELF, &s(&["name=systemd"])), Path::new("/init.scope"));
        assert_eq!(own_cgroup(SELF, &[]), Path::new("/user.slice/u.scope"));
        assert_eq!(own_cgroup(SELF, &s(&["pids"])), Path::new("/"));
    }

    #[test]
    fn paths() {
        let mem = s(&["memory"]);
        let r = |p: &str| inner_path(Path::new(p), SELF, &mem, Path::new("/"), "memory");
        assert_eq!(r("/a/b").unwrap(), Path::new("/a/b"));
        assert_eq!(r("/a/../b").unwrap(), Path::new("/b"));
        assert_eq!(r("c").unwrap(), Path::new("/process_api/abc/c"));
        assert_eq!(r("../c").unwrap(), Path::new("/process_api/c"));
        assert!(r("/../x").is_err());
        assert!(r("../../../x").is_err());
        // mount root not "/": our cgroup is seen relative to it
        let r2 = inner_path(Path::new("c"), SELF, &mem, Path::new("/process_api"), "memory").unwrap();
        assert_eq!(r2, Path::new("/abc/c"));
        let e = inner_path(Path::new("../../c"), SELF, &mem, Path::new("/process_api"), "memory");
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("escapes the root of the memory hierarchy"));
    }

    #[test]
    fn systemd() {
        assert!(is_systemd_path("system.slice:berth:abc"));
        assert!(!is_systemd_path("/a:b:c"));
        assert!(!is_systemd_path("a/b"));
    }
}
