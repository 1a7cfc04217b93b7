//! `-u USER[:GROUP]` resolved against the container's own /etc/passwd and
//! /etc/group, as Docker does. The files are opened inside the rootfs
//! (openat2 `RESOLVE_IN_ROOT`), so a symlink in the image cannot point the
//! look-up at the host's files.

use std::io::Read;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Who the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The home directory from passwd (for HOME), when known.
    pub home: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("invalid user {0:?}")]
    Invalid(String),
}

/// A file of the rootfs, read inside it; empty when missing or unreadable.
pub fn read_in_root(rootfs: &Path, path: &str) -> String {
    let Ok(root) = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return String::new();
    };
    let Ok(fd) = rustix::fs::openat2(
        &root,
        path.trim_start_matches('/'),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) else {
        return String::new();
    };
    let mut s = String::new();
    // At most 4 MiB: a passwd file, not a disk image.
    let _ = std::fs::File::from(fd).take(4 << 20).read_to_string(&mut s);
    s
}

/// Resolves `spec` (`name`, `uid`, `name:group`, `uid:gid`, …) with the
/// given passwd and group file contents, adding the user's supplementary
/// groups and `group_add` (names or gids).
pub fn resolve(spec: &str, passwd: &str, group: &str, group_add: &[String]) -> Result<User, UserError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // No user: uid 0, looked up like any uid (HOME=/root from passwd, as Docker).
    let u = if u.is_empty() { "0" } else { u };
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let (uid, mut gid, name, home) = if let Ok(uid) = u.parse::<u32>() {
        match users.iter().find(|f| f[2].parse() == Ok(uid)) {
            Some(f) => (
                uid,
                f[3].parse().unwrap_or(0),
                Some(f[0].to_string()),
                f.get(5).map(|s| s.to_string()),
            ),
            None => (uid, 0, None, None),
        }
    } else {
        let f = users
            .iter()
            .find(|f| f[0] == u)
            .ok_or_else(|| UserError::NoUser(u.into()))?;
        let uid = f[2].parse().map_err(|_| UserError::Invalid(spec.into()))?;
        (
            uid,
            f[3].parse().unwrap_or(0),
            Some(u.to_string()),
            f.get(5).map(|s| s.to_string()),
        )
    };
    let find_group = |g: &str| -> Result<u32, UserError> {
        if let Ok(n) = g.parse::<u32>() {
            return Ok(n);
        }
        groups
            .iter()
            .find(|f| f[0] == g)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| UserError::NoGroup(g.into()))
    };
    if let Some(g) = g {
        if g.is_empty() {
            return Err(UserError::Invalid(spec.into()));
        }
        gid = find_group(g)?;
    }
    // Docker puts the primary group first among the supplementary ones.
    let mut additional = vec![gid];
    if let (Some(name), None) = (&name, g) {
        for f in &groups {
            if f.get(3).is_some_and(|m| m.split(',').any(|m| m == name)) {
                if let Ok(n) = f[2].parse::<u32>() {
                    if n != gid && !additional.contains(&n) {
                        additional.push(n);
                    }
                }
            }
        }
    }
    for g in group_add {
        let n = find_group(g)?;
        if !additional.contains(&n) {
            additional.push(n);
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids: additional,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\nbob:x:1000:\nstaff:x:50:bob,www\naudio:x:29:bob\n";

    #[test]
    fn names_and_numbers_resolve() {
        let u = resolve("bob", PASSWD, GROUP, &[]).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 1000, vec![1000, 50, 29])
        );
        assert_eq!(u.home.as_deref(), Some("/home/bob"));
        let u = resolve("33", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid), (33, 33));
        let u = resolve("4242:4343", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.clone()), (4242, 4343, vec![4343]));
        let u = resolve("bob:www", PASSWD, GROUP, &["audio".into(), "7".into()]).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.clone()), (1000, 33, vec![33, 29, 7]));
        let u = resolve("", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_deref()), (0, 0, Some("/root")));
        assert_eq!(resolve("", "", "", &[]).unwrap().home, None);
    }

    #[test]
    fn unknown_names_fail_as_docker_says() {
        assert_eq!(
            resolve("nobody", PASSWD, GROUP, &[]).unwrap_err().to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert!(matches!(
            resolve("bob:nogroup", PASSWD, GROUP, &[]),
            Err(UserError::NoGroup(_))
        ));
        assert!(matches!(
            resolve("bob", PASSWD, GROUP, &["x".into()]),
            Err(UserError::NoGroup(_))
        ));
    }

    #[test]
    fn files_are_read_inside_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host-secret");
        std::fs::write(&host, "secret").unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink(&host, root.join("etc/passwd")).unwrap();
        std::fs::write(root.join("etc/group"), GROUP).unwrap();
        assert_eq!(read_in_root(&root, "/etc/passwd"), "");
        assert_eq!(read_in_root(&root, "/etc/group"), GROUP);
    }
}
