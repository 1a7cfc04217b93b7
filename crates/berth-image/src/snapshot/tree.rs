//! Walking snapshot trees by descriptor: a faithful copy (vfs) and disk usage.
//!
//! Neither follows a symlink: trees hold layer content, and a layer's symlinks point wherever
//! it likes.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};

use crate::layer::{list_dir, proc_path};

const DIR_READ: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rfs::open(path, DIR_READ, Mode::empty())?)
}

/// Copies the tree under `src` into the existing, empty directory `dst`, keeping owners, modes,
/// times, xattrs, hardlinks, symlinks, devices and fifos.
pub(crate) fn copy(src: &Path, dst: &Path) -> io::Result<()> {
    copy_fds(&open_dir(src)?, &open_dir(dst)?)
}

/// [`copy`] between directories the caller opened (a container's volume copied up from a
/// directory resolved inside its root filesystem); the directory's own owner, mode, times
/// and xattrs are copied too. Nothing is followed: symlinks are copied as symlinks.
pub fn copy_fds(src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    let mut links = HashMap::new();
    copy_dir(src, dst, dst, Path::new(""), &mut links)?;
    let st = rfs::fstat(src)?;
    copy_meta(src, dst, OsStr::new("."), &st)
}

/// The first copy of each multiply-linked inode: (dev, ino) -> its path under the copy's root
/// (a path, not a descriptor: images with thousands of hardlinks must not run out of them).
type Links = HashMap<(u64, u64), std::path::PathBuf>;

fn copy_dir(src: &OwnedFd, dst: &OwnedFd, root: &OwnedFd, rel: &Path, links: &mut Links) -> io::Result<()> {
    for name in list_dir(src)? {
        let st = rfs::statat(src, &name, AtFlags::SYMLINK_NOFOLLOW)?;
        let ft = FileType::from_raw_mode(st.st_mode);
        let key = (st.st_dev, st.st_ino);
        if ft != FileType::Directory && st.st_nlink > 1 {
            if let Some(first) = links.get(&key) {
                // Every component of `first` is a directory this copy made.
                rfs::linkat(root, first, dst, &name, AtFlags::empty())?;
                continue;
            }
        }
        match ft {
            FileType::Directory => {
                rfs::mkdirat(dst, &name, Mode::from_raw_mode(0o700))?;
                let (s, d) = (
                    rfs::openat(src, &name, DIR_READ, Mode::empty())?,
                    rfs::openat(dst, &name, DIR_READ, Mode::empty())?,
                );
                copy_dir(&s, &d, root, &rel.join(&name), links)?;
            }
            FileType::RegularFile => {
                let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let mut from = File::from(rfs::openat(src, &name, flags, Mode::empty())?);
                let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let mut to = File::from(rfs::openat(dst, &name, flags, Mode::from_raw_mode(0o600))?);
                io::copy(&mut from, &mut to)?;
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(src, &name, Vec::new())?;
                rfs::symlinkat(target.as_c_str(), dst, &name)?;
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo | FileType::Socket => {
                rfs::mknodat(dst, &name, ft, Mode::empty(), st.st_rdev)?;
            }
            FileType::Unknown => continue,
        }
        copy_meta(src, dst, &name, &st)?;
        if ft != FileType::Directory && st.st_nlink > 1 {
            links.insert(key, rel.join(&name));
        }
    }
    Ok(())
}

// The stat fields' widths differ between targets.
#[allow(clippy::unnecessary_cast)]
fn copy_meta(src: &OwnedFd, dst: &OwnedFd, name: &OsStr, st: &rfs::Stat) -> io::Result<()> {
    let symlink = FileType::from_raw_mode(st.st_mode) == FileType::Symlink;
    rfs::chownat(
        dst,
        name,
        Some(rfs::Uid::from_raw(st.st_uid)),
        Some(rfs::Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if !symlink {
        // We made `name` just now, as this type: it is not a symlink to follow.
        rfs::chmodat(dst, name, Mode::from_raw_mode(st.st_mode & 0o7777), AtFlags::empty())?;
    }
    let (from, to) = (proc_path(src, name), proc_path(dst, name));
    let size = match rfs::llistxattr_query(&from) {
        Ok(size) => size,
        Err(e) if e == rustix::io::Errno::OPNOTSUPP => 0,
        Err(e) => return Err(e.into()),
    };
    let mut names = vec![0u8; size];
    let n = if size > 0 {
        rfs::llistxattr(&from, &mut names[..])?
    } else {
        0
    };
    for xname in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let xname = OsStr::from_bytes(xname);
        let mut value = vec![0u8; rfs::lgetxattr_query(&from, xname)?];
        let len = if value.is_empty() {
            0
        } else {
            rfs::lgetxattr(&from, xname, &mut value[..])?
        };
        rfs::lsetxattr(&to, xname, &value[..len], XattrFlags::empty())?;
    }
    let ts = |sec: i64, nsec: u64| Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    let times = Timestamps {
        last_access: ts(st.st_atime as i64, st.st_atime_nsec as u64),
        last_modification: ts(st.st_mtime as i64, st.st_mtime_nsec as u64),
    };
    rfs::utimensat(dst, name, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// What a walk of a tree counts.
#[derive(Default)]
struct Totals {
    /// Bytes allocated (blocks), directories included.
    allocated: u64,
    inodes: u64,
    /// Bytes of content: the sizes of everything but directories (`du --apparent-size`
    /// without the directories, Docker's `directory.Size`).
    content: u64,
}

fn walk_tree(root: &Path) -> io::Result<Totals> {
    let fd = open_dir(root)?;
    let st = rfs::fstat(&fd)?;
    let mut seen = std::collections::HashSet::new();
    let mut total = Totals {
        allocated: st.st_blocks as u64 * 512,
        inodes: 1,
        content: 0,
    };
    usage_dir(&fd, &mut seen, &mut total)?;
    Ok(total)
}

/// Disk usage of a tree: bytes allocated and inodes, each hardlinked inode counted once.
pub fn usage(root: &Path) -> io::Result<(u64, u64)> {
    walk_tree(root).map(|t| (t.allocated, t.inodes))
}

/// The bytes of content in a tree: sizes of files, symlinks and the like, each hardlinked
/// inode once, directories not counted (what Docker reports for volumes and containers'
/// writable layers).
pub fn content_size(root: &Path) -> io::Result<u64> {
    walk_tree(root).map(|t| t.content)
}

fn usage_dir(dir: &OwnedFd, seen: &mut std::collections::HashSet<(u64, u64)>, total: &mut Totals) -> io::Result<()> {
    for name in list_dir(dir)? {
        let st = rfs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)?;
        if !seen.insert((st.st_dev, st.st_ino)) {
            continue;
        }
        total.allocated += st.st_blocks as u64 * 512;
        total.inodes += 1;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let child = rfs::openat(dir, &name, DIR_READ, Mode::empty())?;
            usage_dir(&child, seen, total)?;
        } else {
            total.content += st.st_size as u64;
        }
    }
    Ok(())
}
