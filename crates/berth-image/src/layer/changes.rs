//! What a container changed in its filesystem, as `docker diff` lists it.
//!
//! Over overlay ([`overlay_changes`]) the changes are read from the upper directory alone, as
//! Docker's overlay2 driver reads them: a 0/0 character device or an opaque directory is a
//! deletion, anything else is an addition unless some lower layer has the path, then a
//! change, except a directory whose size, mode and mtime equal the lower one's (it was only
//! copied up for a child). The parent of an addition or a deletion is listed as changed. Over
//! a copied tree (vfs, [`tree_changes`]) the tree is compared with its parent's as Docker's
//! `ChangesDirs` does: mode, owners and device for everything, size and mtime for
//! non-directories, and the `security.capability` xattr; a directory with changes inside is
//! listed as changed. Both list in the order of a walk of the tree (a directory, then its
//! entries by name), as Docker prints them.
//!
//! `hidden` paths are what the engine itself put into the tree (the mount points of
//! `/etc/hosts`, `/proc`, …, which Docker keeps in a separate init layer): they are never
//! listed, and a directory that only exists or changed to hold them (`/etc`, `/dev`) is listed
//! only when something else in it changed.
//!
//! Every directory is read by descriptor, opened from its parent with `O_NOFOLLOW`: a running
//! container swapping a directory for a symlink cannot make the walk list the host's files.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};

use super::fsat::list_dir;
use super::OverlayXattrs;

/// The kind of a change; the order is Docker's (`ChangeModify` = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Modify,
    Add,
    Delete,
}

impl ChangeKind {
    /// Docker's letter: `C`, `A` or `D`.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modify => 'C',
            ChangeKind::Add => 'A',
            ChangeKind::Delete => 'D',
        }
    }

    /// The number Docker's API gives the kind.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// One changed path (absolute, inside the container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path)
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn open_root(dir: &Path) -> io::Result<OwnedFd> {
    Ok(rfs::open(dir, DIR_FLAGS, Mode::empty())?)
}

fn lstat(dir: impl AsFd, name: &OsStr) -> io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn is_dir(st: &rfs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

/// The entries of a directory, by name as Go's `filepath.Walk` sorts them.
fn sorted(dir: &OwnedFd) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names = list_dir(dir)?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

fn join(dir: &str, name: &OsStr) -> String {
    let name = String::from_utf8_lossy(name.as_bytes());
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The hidden paths and the directories above them.
struct Hidden<'a> {
    paths: &'a [&'a str],
}

impl Hidden<'_> {
    fn is_hidden(&self, path: &str) -> bool {
        self.paths.contains(&path)
    }

    /// A directory some hidden path lies under.
    fn holds_hidden(&self, path: &str) -> bool {
        self.paths
            .iter()
            .any(|h| h.len() > path.len() && h.starts_with(path) && h.as_bytes()[path.len()] == b'/')
    }
}

/// Docker's `sameFsTime`: equal, or equal seconds where one side has no nanoseconds.
fn same_time(a: &rfs::Stat, b: &rfs::Stat) -> bool {
    a.st_mtime == b.st_mtime && (a.st_mtime_nsec == b.st_mtime_nsec || a.st_mtime_nsec == 0 || b.st_mtime_nsec == 0)
}

/// The changes an overlay upper directory holds over its lower directories (top first).
pub fn overlay_changes(
    upper: &Path,
    lowers: &[PathBuf],
    xattrs: OverlayXattrs,
    hidden: &[&str],
) -> io::Result<Vec<Change>> {
    let lowers: Vec<OwnedFd> = lowers.iter().map(|l| open_root(l)).collect::<io::Result<_>>()?;
    let mut walk = OverlayWalk {
        lowers,
        xattrs,
        hidden: Hidden { paths: hidden },
        changes: Vec::new(),
        changed_dirs: HashSet::new(),
    };
    walk.dir(&open_root(upper)?, "/")?;
    Ok(walk.changes)
}

struct OverlayWalk<'a> {
    lowers: Vec<OwnedFd>,
    xattrs: OverlayXattrs,
    hidden: Hidden<'a>,
    changes: Vec<Change>,
    changed_dirs: HashSet<String>,
}

impl OverlayWalk<'_> {
    fn dir(&mut self, dir: &OwnedFd, path: &str) -> io::Result<()> {
        for name in sorted(dir)? {
            let child = join(path, &name);
            if self.hidden.is_hidden(&child) {
                continue;
            }
            let Some(st) = lstat(dir, &name)? else { continue };
            let sub = if is_dir(&st) {
                match rfs::openat(dir, &name, DIR_FLAGS, Mode::empty()) {
                    Ok(fd) => Some(fd),
                    Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => continue,
                    Err(e) => return Err(e.into()),
                }
            } else {
                None
            };
            self.entry(&st, sub.as_ref(), &child)?;
            if let Some(sub) = sub {
                self.dir(&sub, &child)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, st: &rfs::Stat, dir: Option<&OwnedFd>, path: &str) -> io::Result<()> {
        let whiteout = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0;
        let opaque = dir.is_some_and(|d| super::pack::is_opaque(d, self.xattrs));
        let kind = if whiteout || opaque {
            ChangeKind::Delete
        } else if dir.is_some() && self.hidden.holds_hidden(path) {
            // Made (or touched) for a hidden mount point: listed only as the parent of
            // another change.
            return Ok(());
        } else {
            match self.lower_stat(path)? {
                None => ChangeKind::Add,
                Some(lower) => {
                    if is_dir(&lower)
                        && is_dir(st)
                        && lower.st_size == st.st_size
                        && lower.st_mode == st.st_mode
                        && same_time(&lower, st)
                    {
                        return Ok(());
                    }
                    ChangeKind::Modify
                }
            }
        };
        if dir.is_some() {
            self.changed_dirs.insert(path.to_owned());
        }
        let parent = parent_of(path);
        let parent_needed = kind != ChangeKind::Modify || self.hidden.holds_hidden(parent);
        if parent_needed && parent != "/" && !self.changed_dirs.contains(parent) {
            self.changes.push(Change {
                kind: ChangeKind::Modify,
                path: parent.to_owned(),
            });
            self.changed_dirs.insert(parent.to_owned());
        }
        self.changes.push(Change {
            kind,
            path: path.to_owned(),
        });
        Ok(())
    }

    /// `lstat` of `path` in the first lower layer that has it; its directories taken as they
    /// are in that layer (no symlink followed).
    fn lower_stat(&self, path: &str) -> io::Result<Option<rfs::Stat>> {
        let rel = path.trim_start_matches('/');
        let (dir, name) = match rel.rfind('/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (".", rel),
        };
        for lower in &self.lowers {
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            let parent = match rfs::openat2(
                lower,
                dir,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                resolve,
            ) {
                Ok(fd) => fd,
                Err(
                    rustix::io::Errno::NOENT
                    | rustix::io::Errno::NOTDIR
                    | rustix::io::Errno::LOOP
                    | rustix::io::Errno::XDEV,
                ) => continue,
                Err(e) => return Err(e.into()),
            };
            if let Some(st) = lstat(&parent, OsStr::new(name))? {
                return Ok(Some(st));
            }
        }
        Ok(None)
    }
}

/// The changes of the tree `new` over `old` (its parent's copy; `None`: an empty tree).
pub fn tree_changes(new: &Path, old: Option<&Path>, hidden: &[&str]) -> io::Result<Vec<Change>> {
    let new = open_root(new)?;
    let old = old.map(open_root).transpose()?;
    let hidden = Hidden { paths: hidden };
    let mut changes = Vec::new();
    compare(&new, old.as_ref(), "/", false, &hidden, &mut changes)?;
    Ok(changes)
}

fn capability(dir: &OwnedFd, name: &OsStr) -> Option<Vec<u8>> {
    let path = super::proc_path(dir, name);
    let mut value = vec![0u8; 256];
    let n = rfs::lgetxattr(&path, "security.capability", &mut value[..]).ok()?;
    value.truncate(n);
    Some(value)
}

/// Docker's `statDifferent`.
fn stat_different(old: &rfs::Stat, new: &rfs::Stat) -> bool {
    old.st_mode != new.st_mode
        || old.st_uid != new.st_uid
        || old.st_gid != new.st_gid
        || old.st_rdev != new.st_rdev
        || (!is_dir(old) && (!same_time(old, new) || old.st_size != new.st_size))
}

/// Docker's `addChanges` for the directory `new` (`old`: the same directory in the old tree,
/// if it is one there); `listed`: the directory itself was listed.
fn compare(
    new: &OwnedFd,
    old: Option<&OwnedFd>,
    path: &str,
    listed: bool,
    hidden: &Hidden<'_>,
    out: &mut Vec<Change>,
) -> io::Result<()> {
    let at_entry = out.len();
    let new_names = sorted(new)?;
    for name in &new_names {
        let child = join(path, name);
        if hidden.is_hidden(&child) {
            continue;
        }
        let Some(st) = lstat(new, name)? else { continue };
        let old_st = match old {
            Some(o) => lstat(o, name)?,
            None => None,
        };
        let holds_hidden = is_dir(&st) && hidden.holds_hidden(&child);
        let mut child_listed = false;
        if !holds_hidden {
            match &old_st {
                None => {
                    out.push(Change {
                        kind: ChangeKind::Add,
                        path: child.clone(),
                    });
                    child_listed = true;
                }
                Some(o) => {
                    let caps_differ = old.is_some_and(|od| capability(od, name) != capability(new, name));
                    if stat_different(o, &st) || caps_differ {
                        out.push(Change {
                            kind: ChangeKind::Modify,
                            path: child.clone(),
                        });
                        child_listed = true;
                    }
                }
            }
        }
        if is_dir(&st) {
            let sub = match rfs::openat(new, name, DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => continue,
                Err(e) => return Err(e.into()),
            };
            let old_sub = match (old, &old_st) {
                (Some(o), Some(ost)) if is_dir(ost) => match rfs::openat(o, name, DIR_FLAGS, Mode::empty()) {
                    Ok(fd) => Some(fd),
                    Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => None,
                    Err(e) => return Err(e.into()),
                },
                _ => None,
            };
            compare(&sub, old_sub.as_ref(), &child, child_listed, hidden, out)?;
        }
    }
    if let Some(old) = old {
        for name in sorted(old)? {
            let child = join(path, &name);
            if !hidden.is_hidden(&child) && !new_names.contains(&name) {
                out.push(Change {
                    kind: ChangeKind::Delete,
                    path: child,
                });
            }
        }
    }
    if out.len() > at_entry && !listed && path != "/" {
        out.insert(
            at_entry,
            Change {
                kind: ChangeKind::Modify,
                path: path.to_owned(),
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn listing(changes: &[Change]) -> Vec<String> {
        changes.iter().map(|c| c.to_string()).collect()
    }

    /// A lower layer and an upper directory made by hand as overlay would leave them.
    fn layers() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let lower = d.path().join("lower");
        let upper = d.path().join("upper");
        for dir in ["bin", "etc", "usr/lib", "var/log"] {
            fs::create_dir_all(lower.join(dir)).unwrap();
        }
        for dir in ["etc", "usr/lib", "var/log"] {
            fs::create_dir_all(upper.join(dir)).unwrap();
        }
        fs::write(lower.join("etc/passwd"), b"root").unwrap();
        fs::write(lower.join("bin/sh"), b"sh").unwrap();
        fs::create_dir_all(lower.join("etc/old")).unwrap();
        // Copied up to hold a change below: same mode and times as the lower ones.
        for dir in ["usr", "usr/lib", "var", "var/log"] {
            let meta = fs::metadata(lower.join(dir)).unwrap();
            fs::set_permissions(upper.join(dir), meta.permissions()).unwrap();
        }
        fs::write(upper.join("etc/passwd"), b"root\nme").unwrap();
        fs::write(upper.join("usr/lib/new.so"), b"x").unwrap();
        fs::write(upper.join("var/log/a"), b"x").unwrap();
        fs::write(upper.join("new"), b"x").unwrap();
        // Engine-made mount points.
        fs::write(upper.join("etc/hostname"), b"").unwrap();
        fs::create_dir_all(upper.join("proc")).unwrap();
        fs::create_dir_all(upper.join("dev/pts")).unwrap();
        // Directory times last: writing into them moved their mtimes.
        for dir in ["usr", "usr/lib", "var", "var/log"] {
            let meta = fs::metadata(lower.join(dir)).unwrap();
            let t = fs::File::open(upper.join(dir)).unwrap();
            t.set_modified(meta.modified().unwrap()).unwrap();
        }
        (d, lower, upper)
    }

    const HIDDEN: &[&str] = &["/etc/hostname", "/proc", "/dev/pts"];

    #[test]
    fn overlay_upper_directories_list_like_docker() {
        let (_d, lower, upper) = layers();
        let changes = overlay_changes(&upper, &[lower], OverlayXattrs::Trusted, HIDDEN).unwrap();
        assert_eq!(
            listing(&changes),
            [
                "C /etc",
                "C /etc/passwd",
                "A /new",
                "C /usr/lib",
                "A /usr/lib/new.so",
                "C /var/log",
                "A /var/log/a",
            ]
        );
    }

    #[test]
    fn hidden_mount_points_alone_are_no_change() {
        let d = tempfile::tempdir().unwrap();
        let lower = d.path().join("lower");
        let upper = d.path().join("upper");
        fs::create_dir_all(lower.join("bin")).unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/hostname"), b"").unwrap();
        fs::create_dir_all(upper.join("dev/pts")).unwrap();
        fs::create_dir_all(upper.join("proc")).unwrap();
        let changes = overlay_changes(&upper, std::slice::from_ref(&lower), OverlayXattrs::Trusted, HIDDEN).unwrap();
        assert_eq!(listing(&changes), Vec::<String>::new());
        // With a real change beside them, the directory is listed as its parent.
        fs::write(upper.join("etc/motd"), b"hi").unwrap();
        let changes = overlay_changes(&upper, &[lower], OverlayXattrs::Trusted, HIDDEN).unwrap();
        assert_eq!(listing(&changes), ["C /etc", "A /etc/motd"]);
    }

    #[test]
    fn whiteouts_and_opaque_directories_are_deletions_when_root() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: mknod and trusted xattrs need root");
            return;
        }
        let (_d, lower, upper) = layers();
        rfs::mknodat(
            rfs::CWD,
            upper.join("etc/old"),
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .unwrap();
        fs::remove_file(upper.join("usr/lib/new.so")).unwrap();
        rfs::setxattr(
            upper.join("usr/lib"),
            "trusted.overlay.opaque",
            b"y",
            rfs::XattrFlags::empty(),
        )
        .unwrap();
        let changes = overlay_changes(&upper, &[lower], OverlayXattrs::Trusted, HIDDEN).unwrap();
        assert_eq!(
            listing(&changes),
            [
                "C /etc",
                "D /etc/old",
                "C /etc/passwd",
                "A /new",
                "C /usr",
                "D /usr/lib",
                "C /var/log",
                "A /var/log/a",
            ]
        );
    }

    #[test]
    fn copied_trees_compare_like_changes_dirs() {
        let d = tempfile::tempdir().unwrap();
        let old = d.path().join("old");
        let new = d.path().join("new");
        for t in [&old, &new] {
            fs::create_dir_all(t.join("etc")).unwrap();
            fs::create_dir_all(t.join("tmp/sub")).unwrap();
            fs::write(t.join("etc/passwd"), b"root").unwrap();
            fs::write(t.join("tmp/sub/gone"), b"x").unwrap();
        }
        let same = fs::metadata(old.join("etc/passwd")).unwrap().modified().unwrap();
        fs::File::options()
            .write(true)
            .open(new.join("etc/passwd"))
            .unwrap()
            .set_modified(same)
            .unwrap();
        fs::remove_file(new.join("tmp/sub/gone")).unwrap();
        fs::create_dir_all(new.join("opt/app")).unwrap();
        fs::write(new.join("opt/app/bin"), b"x").unwrap();
        fs::write(new.join("etc/hostname"), b"").unwrap();
        let changes = tree_changes(&new, Some(&old), HIDDEN).unwrap();
        assert_eq!(
            listing(&changes),
            [
                "A /opt",
                "A /opt/app",
                "A /opt/app/bin",
                "C /tmp",
                "C /tmp/sub",
                "D /tmp/sub/gone"
            ]
        );
        let all = tree_changes(&old, None, &[]).unwrap();
        assert_eq!(
            listing(&all),
            ["A /etc", "A /etc/passwd", "A /tmp", "A /tmp/sub", "A /tmp/sub/gone"]
        );
    }

    #[test]
    fn a_symlinked_directory_is_not_walked() {
        let d = tempfile::tempdir().unwrap();
        let lower = d.path().join("lower");
        let upper = d.path().join("upper");
        fs::create_dir_all(&lower).unwrap();
        fs::create_dir_all(&upper).unwrap();
        std::os::unix::fs::symlink("/etc", upper.join("link")).unwrap();
        let changes = overlay_changes(&upper, &[lower], OverlayXattrs::Trusted, &[]).unwrap();
        assert_eq!(listing(&changes), ["A /link"]);
    }
}
