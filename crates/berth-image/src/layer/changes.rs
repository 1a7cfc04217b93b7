//! What a container changed in its filesystem, as `docker diff` lists it.
//!
//! Both backends list what Docker's `ChangesDirs` finds comparing the container's tree with
//! its image's, which is what Docker lists on kernels whose overlay has `redirect_dir` (its
//! overlay2 driver then uses this "naive" diff): an entry the image lacks is added, one whose
//! mode, owners or device differ (for non-directories also size or mtime), or whose
//! `security.capability` differs, is changed, one missing is deleted, and a directory with
//! changes below it is listed as changed before them. Over overlay ([`overlay_changes`]) only
//! the upper directory is walked: a 0/0 character device is a deletion, an opaque directory
//! deletes the lower entries it does not have itself (listed after its own entries), anything
//! else is compared with the first lower layer that has it. Over a copied tree (vfs,
//! [`tree_changes`]) the whole tree is compared with its parent's. Both list in the order of a
//! walk (a directory, then its entries by name, deletions of a directory's entries last);
//! Docker's own order varies with its map iteration.
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
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, FileType, Mode, OFlags};

use super::fsat::{is_dir, list_dir, lstat_at as lstat};
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
    };
    walk.dir(&open_root(upper)?, "/", false, Vec::new())?;
    Ok(walk.changes)
}

struct OverlayWalk<'a> {
    lowers: Vec<OwnedFd>,
    xattrs: OverlayXattrs,
    hidden: Hidden<'a>,
    changes: Vec<Change>,
}

impl OverlayWalk<'_> {
    /// Lists the changes below the upper directory `dir` (at `path`); `listed`: the
    /// directory itself was. A directory with changes below it is listed as changed, before
    /// them, as Docker's `ChangesDirs` lists it.
    /// `trailing`: deletions listed after the directory's own entries (what it hides, when
    /// opaque).
    fn dir(&mut self, dir: &OwnedFd, path: &str, listed: bool, trailing: Vec<Change>) -> io::Result<()> {
        let at_entry = self.changes.len();
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
            let kind = self.kind(&st, dir, &name, sub.is_some(), &child)?;
            if let Some(kind) = kind {
                self.changes.push(Change {
                    kind,
                    path: child.clone(),
                });
            }
            if let Some(sub) = sub {
                let hidden_below = match super::pack::is_opaque(&sub, self.xattrs) {
                    true => self.opaque(&sub, &child)?,
                    false => Vec::new(),
                };
                self.dir(&sub, &child, kind.is_some(), hidden_below)?;
            }
        }
        self.changes.extend(trailing);
        if self.changes.len() > at_entry && !listed && path != "/" {
            self.changes.insert(
                at_entry,
                Change {
                    kind: ChangeKind::Modify,
                    path: path.to_owned(),
                },
            );
        }
        Ok(())
    }

    /// What the upper entry `name` of `dir` (at `path`) is: a deletion (a whiteout), an
    /// addition (no lower layer has it), a change (its stat or capability differs from the
    /// lower one's, Docker's `statDifferent`), or nothing to list (copied up unchanged, or a
    /// directory made for hidden mount points).
    fn kind(
        &self,
        st: &rfs::Stat,
        dir: &OwnedFd,
        name: &OsStr,
        is_directory: bool,
        path: &str,
    ) -> io::Result<Option<ChangeKind>> {
        if FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0 {
            return Ok(Some(ChangeKind::Delete));
        }
        let lower = self.lower_stat(path)?;
        if is_directory && self.hidden.holds_hidden(path) {
            return Ok(None);
        }
        Ok(match lower {
            None => Some(ChangeKind::Add),
            Some((lower, lower_dir, lower_name)) => {
                let caps_differ = capability(&lower_dir, &lower_name) != capability(dir, name);
                (stat_different(&lower, st) || caps_differ).then_some(ChangeKind::Modify)
            }
        })
    }

    /// An opaque directory hides what the lower layers have in it: each entry it does not
    /// have itself is deleted (by name; Docker lists them after the directory's own entries).
    fn opaque(&self, dir: &OwnedFd, path: &str) -> io::Result<Vec<Change>> {
        let mut out = Vec::new();
        let mine = list_dir(dir)?;
        let mut seen: HashSet<std::ffi::OsString> = HashSet::new();
        for lower in &self.lowers {
            let rel = path.trim_start_matches('/');
            let Ok(fd) = super::open_beneath(lower, rel) else {
                continue;
            };
            for name in list_dir(&fd)? {
                if mine.contains(&name) || !seen.insert(name.clone()) {
                    continue;
                }
                let child = join(path, &name);
                let is_whiteout = lstat(&fd, &name)?.is_some_and(|st| {
                    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
                });
                if !is_whiteout && !self.hidden.is_hidden(&child) {
                    out.push(Change {
                        kind: ChangeKind::Delete,
                        path: child,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Ok(out)
    }

    /// `lstat` of `path` in the first lower layer that has it, with the directory holding it
    /// there and its name; its directories taken as they are in that layer (no symlink
    /// followed). A whiteout there means no lower layer has it.
    fn lower_stat(&self, path: &str) -> io::Result<Option<(rfs::Stat, OwnedFd, std::ffi::OsString)>> {
        let rel = path.trim_start_matches('/');
        let (dir, name) = match rel.rfind('/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => ("", rel),
        };
        for lower in &self.lowers {
            let parent = match super::open_beneath(lower, dir) {
                Ok(fd) => fd,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::EXDEV)
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            if let Some(st) = lstat(&parent, OsStr::new(name))? {
                if FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0 {
                    return Ok(None);
                }
                return Ok(Some((st, parent, name.into())));
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
                "C /usr",
                "C /usr/lib",
                "A /usr/lib/new.so",
                "C /var",
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
    fn whiteouts_and_what_opaque_directories_hide_are_deletions_when_root() {
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
        fs::write(lower.join("usr/lib/old.so"), b"o").unwrap();
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
                "C /usr/lib",
                "A /usr/lib/new.so",
                "D /usr/lib/old.so",
                "C /var",
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
