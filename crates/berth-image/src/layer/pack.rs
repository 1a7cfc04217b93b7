//! Writing a directory tree as a tar stream, by descriptors: the reverse of [`super::apply`].
//!
//! The tree may belong to a running container, which can swap any entry for a symlink while
//! it is read. So nothing is ever looked up by path: each directory is opened from its parent's
//! descriptor with `O_NOFOLLOW`, each file opened the same way (and `O_NONBLOCK`, so a FIFO
//! swapped in cannot block the walk) and described from `fstat` of what was opened, never from
//! an earlier `lstat`. A symlink is written as a symlink, never followed.
//!
//! Entries come in Docker's order (a directory, then its entries sorted by name), with their
//! mode, owners, mtime, `security.capability` (the one xattr Docker archives), device numbers
//! and hard links kept (a second name of an inode becomes a link to the first); sockets are
//! left out, as Docker leaves them. With [`PackOptions::overlay_whiteouts`] the tree is an
//! overlay upper directory and its markers become the layer format's: a 0/0 character device
//! becomes an empty `.wh.<name>`, an opaque directory gets an empty `.wh..wh..opq`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use tar::{EntryType, Header};

use super::fsat::list_dir;
use super::OverlayXattrs;

/// How [`Packer`] writes a tree.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackOptions {
    /// The tree is an overlay upper directory with markers in this xattr namespace: convert
    /// them to `.wh.` files.
    pub overlay_whiteouts: Option<OverlayXattrs>,
}

/// What [`Packer::append`] decides for a tar name (`etc/hosts`, no leading `/` or `./`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// The entry, and for a directory everything in it.
    Include,
    /// Nothing of it.
    Skip,
    /// A directory's entries, not the directory itself.
    ContentsOnly,
}

/// Writes tar entries of trees read by descriptor. See the [module](self) documentation.
pub struct Packer<W: Write> {
    builder: tar::Builder<W>,
    opts: PackOptions,
    /// The first tar name of each inode with more than one link: (dev, ino) -> name.
    links: HashMap<(u64, u64), String>,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl<W: Write> Packer<W> {
    pub fn new(writer: W, opts: PackOptions) -> Self {
        let mut builder = tar::Builder::new(writer);
        builder.follow_symlinks(false);
        Packer {
            builder,
            opts,
            links: HashMap::new(),
        }
    }

    /// Appends the entry `name` of the directory open as `parent` under the tar name `as_name`,
    /// and everything under it for a directory (named `as_name/…`). `select` is asked for every
    /// tar name first. A name that vanished meanwhile is left out.
    pub fn append(
        &mut self,
        parent: impl AsFd,
        name: &OsStr,
        as_name: &str,
        select: &mut dyn FnMut(&str) -> Select,
    ) -> io::Result<()> {
        let choice = select(as_name);
        if choice == Select::Skip {
            return Ok(());
        }
        let parent = parent.as_fd();
        let st = match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let dir = match rfs::openat(parent, name, DIR_FLAGS, Mode::empty()) {
                    Ok(fd) => fd,
                    // Gone, or swapped for something else since the stat (a running
                    // container): left out, as if it had changed a moment earlier.
                    Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => {
                        return Ok(())
                    }
                    Err(e) => return Err(e.into()),
                };
                self.append_dir(&dir, as_name, choice == Select::Include, select)
            }
            FileType::RegularFile => self.append_file(parent, name, as_name),
            FileType::Symlink => {
                let target = match rfs::readlinkat(parent, name, Vec::new()) {
                    Ok(t) => t,
                    Err(rustix::io::Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let mut h = header(&st, EntryType::Symlink);
                self.builder
                    .append_link(&mut h, as_name, OsStr::from_bytes(target.as_bytes()))
            }
            FileType::CharacterDevice if st.st_rdev == 0 && self.opts.overlay_whiteouts.is_some() => {
                let (dir, base) = split(as_name);
                let mut h = header(&st, EntryType::Regular);
                h.set_mode(0o600);
                self.builder
                    .append_data(&mut h, format!("{dir}.wh.{base}"), io::empty())
            }
            kind @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
                let entry = match kind {
                    FileType::CharacterDevice => EntryType::Char,
                    FileType::BlockDevice => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                if self.hardlink(&st, as_name)? {
                    return Ok(());
                }
                let mut h = header(&st, entry);
                if entry != EntryType::Fifo {
                    h.set_device_major(rfs::major(st.st_rdev))?;
                    h.set_device_minor(rfs::minor(st.st_rdev))?;
                }
                self.builder.append_data(&mut h, as_name, io::empty())
            }
            // Sockets (and anything unknown) have no place in an archive.
            _ => Ok(()),
        }
    }

    /// Appends the directory open as `dir` (a readable descriptor) as `as_name` when
    /// `include_self`, then its entries in name order.
    pub fn append_dir(
        &mut self,
        dir: &OwnedFd,
        as_name: &str,
        include_self: bool,
        select: &mut dyn FnMut(&str) -> Select,
    ) -> io::Result<()> {
        let st = rfs::fstat(dir)?;
        if include_self {
            let mut h = header(&st, EntryType::Directory);
            self.builder
                .append_data(&mut h, format!("{}/", as_name.trim_end_matches('/')), io::empty())?;
            if let Some(x) = self.opts.overlay_whiteouts {
                if is_opaque(dir, x) {
                    let mut h = header(&st, EntryType::Regular);
                    h.set_mode(st.st_mode & 0o777);
                    self.builder
                        .append_data(&mut h, child_name(as_name, ".wh..wh..opq"), io::empty())?;
                }
            }
        }
        let mut names = list_dir(dir)?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child = child_name(as_name, &name.to_string_lossy());
            self.append(dir, &name, &child, select)?;
        }
        Ok(())
    }

    fn append_file(&mut self, parent: impl AsFd, name: &OsStr, as_name: &str) -> io::Result<()> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rfs::openat(parent.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // Gone, or swapped for a symlink or a socket since the stat: left out.
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::LOOP | rustix::io::Errno::NXIO) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let st = rfs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            // Swapped for a FIFO, a device or a directory: left out.
            return Ok(());
        }
        if self.hardlink(&st, as_name)? {
            return Ok(());
        }
        let mut h = header(&st, EntryType::Regular);
        let size = st.st_size as u64;
        h.set_size(size);
        if let Some(cap) = get_xattr(&fd, "security.capability") {
            self.pax(as_name, &[("SCHILY.xattr.security.capability", &cap)])?;
        }
        let reader = Exact {
            inner: File::from(fd),
            left: size,
        };
        self.builder.append_data(&mut h, as_name, reader)
    }

    /// Appends a whiteout for `name` (a tar name): an empty `.wh.<base>` beside it.
    pub fn append_whiteout(&mut self, name: &str) -> io::Result<()> {
        let (dir, base) = split(name);
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0);
        h.set_size(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        h.set_mtime(now);
        self.builder
            .append_data(&mut h, format!("{dir}.wh.{base}"), io::empty())
    }

    /// A later name of an inode already written: a hard link entry. Returns whether it was one.
    fn hardlink(&mut self, st: &rfs::Stat, as_name: &str) -> io::Result<bool> {
        if st.st_nlink <= 1 {
            return Ok(false);
        }
        let key = (st.st_dev, st.st_ino);
        match self.links.get(&key) {
            Some(first) => {
                let first = first.clone();
                let mut h = header(st, EntryType::Link);
                self.builder.append_link(&mut h, as_name, first)?;
                Ok(true)
            }
            None => {
                self.links.insert(key, as_name.to_owned());
                Ok(false)
            }
        }
    }

    /// A PAX extended header for the next entry.
    fn pax(&mut self, as_name: &str, records: &[(&str, &[u8])]) -> io::Result<()> {
        let mut data = Vec::new();
        for (key, value) in records {
            // "<len> <key>=<value>\n", where <len> counts itself.
            let rest = key.len() + value.len() + 3;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        let (_, base) = split(as_name);
        let base: String = base.chars().take(80).collect();
        self.builder
            .append_data(&mut h, format!("PaxHeaders.0/{base}"), &data[..])
    }

    /// Ends the archive; the writer back.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

/// A header for an entry with `st`'s metadata (size 0).
fn header(st: &rfs::Stat, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid.into());
    h.set_gid(st.st_gid.into());
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

fn child_name(dir: &str, name: &str) -> String {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// (`dir/` with its slash, or empty; base name).
fn split(name: &str) -> (&str, &str) {
    let name = name.trim_end_matches('/');
    match name.rfind('/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => ("", name),
    }
}

fn get_xattr(fd: &OwnedFd, name: &str) -> Option<Vec<u8>> {
    let mut value = vec![0u8; 256];
    let n = rfs::fgetxattr(fd, name, &mut value[..]).ok()?;
    value.truncate(n);
    Some(value)
}

/// Whether the directory open as `dir` is an overlay opaque directory.
pub(crate) fn is_opaque(dir: &OwnedFd, xattrs: OverlayXattrs) -> bool {
    get_xattr(dir, xattrs.opaque()).as_deref() == Some(b"y")
}

/// Exactly `left` bytes of `inner`: a file that shrank while read is padded with zeros, one
/// that grew is cut, so the entry matches the size its header announced.
struct Exact {
    inner: File,
    left: u64,
}

impl Read for Exact {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = out.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = loop {
            match self.inner.read(&mut out[..want]) {
                Ok(0) => {
                    out[..want].fill(0);
                    break want;
                }
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn entries(bytes: &[u8]) -> Vec<(String, EntryType, Vec<u8>, Option<String>)> {
        let mut a = tar::Archive::new(bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                let kind = e.header().entry_type();
                let link = e.link_name().unwrap().map(|l| l.display().to_string());
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, kind, data, link)
            })
            .collect()
    }

    fn pack(dir: &std::path::Path, opts: PackOptions, select: &mut dyn FnMut(&str) -> Select) -> Vec<u8> {
        let fd = rfs::open(dir, DIR_FLAGS, Mode::empty()).unwrap();
        let mut p = Packer::new(Vec::new(), opts);
        p.append_dir(&fd, "", false, select).unwrap();
        p.finish().unwrap()
    }

    #[test]
    fn trees_are_written_in_order_with_links_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("b/c")).unwrap();
        std::fs::write(r.join("b/c/f"), b"data").unwrap();
        std::fs::hard_link(r.join("b/c/f"), r.join("a")).unwrap();
        symlink("/etc/passwd", r.join("b/link")).unwrap();
        std::fs::write(r.join("skipme"), b"x").unwrap();
        let tar = pack(r, PackOptions::default(), &mut |n| {
            if n == "skipme" {
                Select::Skip
            } else {
                Select::Include
            }
        });
        let got: Vec<_> = entries(&tar)
            .into_iter()
            .map(|(n, k, data, link)| (n, k, String::from_utf8(data).unwrap(), link))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), EntryType::Regular, "data".into(), None),
                ("b/".into(), EntryType::Directory, "".into(), None),
                ("b/c/".into(), EntryType::Directory, "".into(), None),
                ("b/c/f".into(), EntryType::Link, "".into(), Some("a".into())),
                (
                    "b/link".into(),
                    EntryType::Symlink,
                    "".into(),
                    Some("/etc/passwd".into())
                ),
            ]
        );
    }

    #[test]
    fn a_symlinked_directory_is_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"host").unwrap();
        let r = d.path().join("root");
        std::fs::create_dir(&r).unwrap();
        symlink(&outside, r.join("dir")).unwrap();
        let tar = pack(&r, PackOptions::default(), &mut |_| Select::Include);
        let names: Vec<_> = entries(&tar).into_iter().map(|e| (e.0, e.1)).collect();
        assert_eq!(names, vec![("dir".to_string(), EntryType::Symlink)]);
    }

    #[test]
    fn overlay_markers_become_whiteout_files_when_root() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: mknod and trusted xattrs need root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir(r.join("opq")).unwrap();
        std::fs::write(r.join("opq/new"), b"n").unwrap();
        rfs::setxattr(r.join("opq"), "trusted.overlay.opaque", b"y", rfs::XattrFlags::empty()).unwrap();
        rfs::mknodat(
            rfs::CWD,
            r.join("gone"),
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .unwrap();
        let opts = PackOptions {
            overlay_whiteouts: Some(OverlayXattrs::Trusted),
        };
        let tar = pack(r, opts, &mut |_| Select::Include);
        let names: Vec<_> = entries(&tar).into_iter().map(|e| (e.0, e.1)).collect();
        assert_eq!(
            names,
            vec![
                (".wh.gone".to_string(), EntryType::Regular),
                ("opq/".to_string(), EntryType::Directory),
                ("opq/.wh..wh..opq".to_string(), EntryType::Regular),
                ("opq/new".to_string(), EntryType::Regular),
            ]
        );
    }
}
