//! Filesystem operations relative to a directory descriptor, never leaving it.
//!
//! A layer's entries are untrusted: every parent directory is opened with openat2
//! `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` from the target's descriptor, so neither `..` nor a
//! symlink planted by an earlier entry (absolute, or climbing out) can take a write outside the
//! target; the kernel answers `EXDEV` instead. The final component is never followed: it is
//! created, changed or removed with the `*at` calls on the pinned parent.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};

/// A path inside the target, as validated components (no `.`, `..`, empty or `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RelPath(pub Vec<OsString>);

/// Why a path was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BadPath {
    Absolute,
    DotDot,
}

impl RelPath {
    /// Splits a tar entry name. `./a//b/` is `a/b`; `/a` and any `..` are refused.
    pub fn parse(raw: &[u8]) -> Result<RelPath, BadPath> {
        if raw.first() == Some(&b'/') {
            return Err(BadPath::Absolute);
        }
        let mut parts = Vec::new();
        for part in raw.split(|b| *b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => return Err(BadPath::DotDot),
                _ => parts.push(OsStr::from_bytes(part).to_owned()),
            }
        }
        Ok(RelPath(parts))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn name(&self) -> Option<&OsStr> {
        self.0.last().map(OsString::as_os_str)
    }

    pub fn parent(&self) -> RelPath {
        RelPath(self.0[..self.0.len().saturating_sub(1)].to_vec())
    }

    pub fn join(&self, name: &OsStr) -> RelPath {
        let mut parts = self.0.clone();
        parts.push(name.to_owned());
        RelPath(parts)
    }

    pub fn to_path(&self) -> PathBuf {
        if self.0.is_empty() {
            return PathBuf::from(".");
        }
        self.0.iter().collect()
    }

    /// Every proper ancestor, shortest first, excluding the root.
    pub fn ancestors(&self) -> impl Iterator<Item = RelPath> + '_ {
        (1..self.0.len()).map(|n| RelPath(self.0[..n].to_vec()))
    }
}

/// Whether a symlink at `entry` pointing to `target` stays inside the root when resolved
/// lexically from the entry's directory (Docker's rule; absolute targets are relative to the
/// container's root and always stay inside).
pub(crate) fn symlink_stays_inside(entry: &RelPath, target: &[u8]) -> bool {
    if target.first() == Some(&b'/') {
        return true;
    }
    let mut depth = entry.0.len().saturating_sub(1) as isize;
    for part in target.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS
}

/// Opens the directory `dir` under `root` (an `O_PATH` descriptor), refusing to leave `root`.
pub(crate) fn open_dir(root: impl AsFd, dir: &RelPath) -> io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rfs::openat2(root, dir.to_path(), flags, Mode::empty(), beneath())?)
}

/// Opens the directory `dir` under `root` for reading (listing, fchmod, fsetxattr).
pub(crate) fn open_dir_read(root: impl AsFd, dir: &RelPath) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    Ok(rfs::openat2(root, dir.to_path(), flags, Mode::empty(), beneath())?)
}

/// Opens `dir`, creating missing directories (mode 0755, root-owned until an entry says
/// otherwise) one at a time, each through a descriptor resolved beneath `root`.
pub(crate) fn open_dir_create(root: impl AsFd, dir: &RelPath) -> io::Result<OwnedFd> {
    let root = root.as_fd();
    match open_dir(root, dir) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        other => return other,
    }
    let mut cur = RelPath(Vec::new());
    let mut fd = open_dir(root, &cur)?;
    for part in &dir.0 {
        match rfs::mkdirat(&fd, part.as_os_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::EXIST => {}
            Err(e) => return Err(e.into()),
        }
        cur.0.push(part.clone());
        fd = open_dir(root, &cur)?;
    }
    Ok(fd)
}

/// `lstat` of `name` in `dir`; `None` if it does not exist.
pub(crate) fn lstat_at(dir: impl AsFd, name: &OsStr) -> io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(e) if e == rustix::io::Errno::NOENT => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn is_dir(st: &rfs::Stat) -> bool {
    rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Directory
}

/// Removes `name` in `dir` and, if it is a directory, everything below it, without following
/// any symlink. A missing `name` is not an error.
pub(crate) fn remove_all_at(dir: impl AsFd, name: &OsStr) -> io::Result<()> {
    let dir = dir.as_fd();
    let Some(st) = lstat_at(dir, name)? else { return Ok(()) };
    if is_dir(&st) {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let child = rfs::openat(dir, name, flags, Mode::empty())?;
        empty_dir(&child)?;
        rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        match rfs::unlinkat(dir, name, AtFlags::empty()) {
            Err(e) if e == rustix::io::Errno::NOENT => {}
            other => other?,
        }
    }
    Ok(())
}

/// Removes everything inside the directory open as `dir` (a readable descriptor).
pub(crate) fn empty_dir(dir: &OwnedFd) -> io::Result<()> {
    for name in list_dir(dir)? {
        remove_all_at(dir, &name)?;
    }
    Ok(())
}

/// The names in the directory open as `dir` (a readable descriptor), without `.` and `..`.
pub(crate) fn list_dir(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in rfs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(names)
}

/// The path of `name` in the directory open as `dir`, through the directory's descriptor in
/// /proc, for the calls that have no `*at` form (l*xattr). The last component is not followed
/// by the `l` calls.
pub(crate) fn proc_path(dir: &impl std::os::fd::AsRawFd, name: &OsStr) -> PathBuf {
    Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_cleans_and_refuses() {
        assert_eq!(
            RelPath::parse(b"./a//b/").unwrap().0,
            vec![OsString::from("a"), OsString::from("b")]
        );
        assert!(RelPath::parse(b"./").unwrap().is_root());
        assert_eq!(RelPath::parse(b"/etc/passwd"), Err(BadPath::Absolute));
        assert_eq!(RelPath::parse(b"a/../../etc"), Err(BadPath::DotDot));
    }

    #[test]
    fn symlink_targets() {
        let entry = RelPath::parse(b"a/b/link").unwrap();
        assert!(symlink_stays_inside(&entry, b"/etc/passwd"));
        assert!(symlink_stays_inside(&entry, b"../../x"));
        assert!(!symlink_stays_inside(&entry, b"../../../x"));
        assert!(symlink_stays_inside(&entry, b"c/../../d"));
    }
}
