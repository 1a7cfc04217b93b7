//! The entry loop of [`super::apply`].

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::fs::{Gid, Uid};
use tar::EntryType;

use super::fsat::{self, BadPath, RelPath, MAX_PATH};
use super::stream::{Compression, Decoder, Faults, Hashing, Peeked, SharedFaults};
use super::written::Written;
use super::{Applied, ApplyOptions, LayerError, Whiteouts};

const OPAQUE: &[u8] = b".wh..opq";
const AUFS_META: &[u8] = b".wh.";

type TarStream<R> = Hashing<Decoder<Hashing<R>>>;

pub(super) fn apply(source: impl Read, target: &Path, opts: &ApplyOptions) -> Result<Applied, LayerError> {
    let layer = opts.layer.as_str();
    let faults = SharedFaults::default();
    let root = rfs::open(
        target,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(layer, "", "open the target directory", e.into()))?;

    // The stream as given is hashed only to check it: a blob from the content store was
    // verified when it was written.
    let compressed = match opts.expected_digest {
        Some(_) => Hashing::new(source, None, faults.clone()),
        None => Hashing::counting(source, faults.clone()),
    };
    let read_err = |source| LayerError::Read {
        layer: layer.to_owned(),
        source,
    };
    let peeked = Peeked::new(compressed, 4).map_err(read_err)?;
    let detected = Compression::detect(peeked.peek());
    if opts.compression != Compression::Auto && opts.compression != detected {
        return Err(LayerError::CompressionMismatch {
            layer: layer.to_owned(),
            declared: opts.compression,
            detected,
        });
    }
    let decoder = Decoder::new(peeked, detected, faults.clone());
    let mut archive = tar::Archive::new(super::stream::TarMetadataLimit::new(Hashing::new(
        decoder,
        opts.limits.max_bytes,
        faults.clone(),
    )));

    let mut unpacker = Unpacker {
        opts,
        root,
        faults,
        compression: detected,
        written: Written::default(),
        entries: 0,
        made_dirs: 0,
        declared: 0,
        last: String::new(),
        buf: vec![0; 128 * 1024],
    };
    unpacker.run(&mut archive)?;

    // The tar ends before the stream does (zero blocks, padding): hash all of it.
    let mut tar_stream: TarStream<_> = archive.into_inner().into_inner();
    tar_stream.drain().map_err(|e| unpacker.stream_err(e))?;
    let (diff_id, size, decoder) = tar_stream.finish();
    let diff_id = diff_id.expect("the tar stream is hashed");
    let mut compressed = decoder.into_inner();
    compressed.drain().map_err(read_err)?;
    let (digest, compressed_size, _) = compressed.finish();
    unpacker.finish_dirs()?;

    for (what, expected, actual) in [
        ("diffID", &opts.expected_diff_id, Some(&diff_id)),
        ("digest", &opts.expected_digest, digest.as_ref()),
    ] {
        if let (Some(expected), Some(actual)) = (expected, actual) {
            if expected != actual {
                return Err(LayerError::DigestMismatch {
                    layer: layer.to_owned(),
                    what,
                    expected: expected.clone(),
                    actual: actual.clone(),
                });
            }
        }
    }
    Ok(Applied {
        diff_id,
        digest,
        compression: detected,
        size,
        compressed_size,
        entries: unpacker.entries,
    })
}

fn io_err(layer: &str, entry: &str, op: &'static str, source: io::Error) -> LayerError {
    LayerError::Io {
        layer: layer.to_owned(),
        entry: entry.to_owned(),
        op,
        source,
    }
}

/// Ownership, mode, times and xattrs of one entry.
struct Meta {
    uid: Uid,
    gid: Gid,
    mode: Mode,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Unpacker<'a> {
    opts: &'a ApplyOptions,
    root: OwnedFd,
    faults: SharedFaults,
    compression: Compression,
    /// What this layer wrote and whited out, by physical path; directories' modes and mtimes,
    /// set at the end, after their children are written.
    written: Written,
    /// Tar entries read.
    entries: u64,
    /// Directories made for missing parents (they count against the entry limit too).
    made_dirs: u64,
    /// Sum of the entries' declared sizes.
    declared: u64,
    /// The current (or last) entry's name, for errors of the stream.
    last: String,
    buf: Vec<u8>,
}

impl Unpacker<'_> {
    fn layer(&self) -> String {
        self.opts.layer.clone()
    }

    fn err(&self, op: &'static str, source: io::Error) -> LayerError {
        io_err(&self.opts.layer, &self.last, op, source)
    }

    /// An error of the tar reader: a fault below it (decompression, limit), or the tar itself.
    fn stream_err(&self, source: io::Error) -> LayerError {
        let mut faults = self.faults.borrow_mut();
        let Faults { decompress, limit } = &mut *faults;
        let (layer, entry) = (self.layer(), self.last.clone());
        if let Some(limit) = *limit {
            return LayerError::TooLarge { layer, entry, limit };
        }
        if let Some(source) = decompress.take() {
            return LayerError::Decompress {
                layer,
                entry,
                compression: self.compression,
                source,
            };
        }
        LayerError::Tar { layer, entry, source }
    }

    fn run<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<(), LayerError> {
        let entries = archive.entries().map_err(|e| self.stream_err(e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.stream_err(e))?;
            self.last = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            self.entry(&mut entry)?;
        }
        Ok(())
    }

    /// Checks the entries and the directories made so far against the limit.
    fn check_entries(&self) -> Result<(), LayerError> {
        match self.opts.limits.max_entries {
            Some(limit) if self.entries + self.made_dirs > limit => Err(LayerError::TooManyEntries {
                layer: self.layer(),
                entry: self.last.clone(),
                limit,
            }),
            _ => Ok(()),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let (layer, name) = (self.layer(), self.last.clone());
        self.entries += 1;
        self.check_entries()?;
        self.declared = self.declared.saturating_add(entry.size());
        if let Some(limit) = self.opts.limits.max_bytes {
            if self.declared > limit {
                return Err(LayerError::TooLarge {
                    layer,
                    entry: name,
                    limit,
                });
            }
        }
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        if entry.path_bytes().len() > MAX_PATH {
            return Err(self.invalid("name longer than 4096 bytes"));
        }
        let path = match RelPath::parse(&entry.path_bytes()) {
            Ok(path) => path,
            Err(BadPath::Absolute) => return Err(LayerError::AbsolutePath { layer, entry: name }),
            Err(BadPath::DotDot) => return Err(LayerError::PathEscapes { layer, entry: name }),
        };
        let whiteout = path.name().and_then(|n| n.as_bytes().strip_prefix(b".wh."));
        if let (Some(rest), false) = (whiteout, self.opts.whiteouts == Whiteouts::Plain) {
            let rest = rest.to_vec();
            return self.whiteout(&path, &rest);
        }
        if path.is_root() && kind != EntryType::Directory {
            return Err(self.invalid("the root must be a directory"));
        }
        let meta = self.meta(entry)?;
        let physical = match kind {
            EntryType::Directory => self.dir(&path, meta)?,
            EntryType::Regular | EntryType::Continuous => self.file(entry, &path, meta)?,
            EntryType::Symlink => self.symlink(entry, &path, meta)?,
            EntryType::Link => self.hardlink(entry, &path)?,
            EntryType::Char | EntryType::Block | EntryType::Fifo => self.node(entry, &path, kind, meta)?,
            other => {
                // The tar crate's name for the types it knows (`GNUSparse`), else the type byte
                // (its Debug form of an unknown one is an internal variant's).
                let known = format!("{other:?}");
                let kind = if known.starts_with("__") {
                    format!("{:?}", char::from(other.as_byte()))
                } else {
                    known
                };
                return Err(LayerError::UnsupportedType {
                    layer,
                    entry: name,
                    kind,
                });
            }
        };
        // What this layer wrote: its own whiteouts never remove it (they
        // apply to lower layers only), and opaque dirs keep it.
        self.written.add(&physical);
        Ok(())
    }

    fn invalid(&self, reason: &'static str) -> LayerError {
        LayerError::InvalidEntry {
            layer: self.layer(),
            entry: self.last.clone(),
            reason,
        }
    }

    /// An error resolving a directory inside the target.
    fn resolve_err(&self, e: io::Error) -> LayerError {
        match e.raw_os_error() {
            Some(libc::ENAMETOOLONG) => self.invalid("resolves to a path longer than 4096 bytes"),
            _ => self.err("open the parent directory", e),
        }
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Meta, LayerError> {
        let h = entry.header();
        let (mut uid, mut gid) = (h.uid().ok(), h.gid().ok());
        let mode = h.mode().map_err(|_| self.invalid("bad mode field"))?;
        let mut mtime = Timespec {
            tv_sec: h.mtime().unwrap_or(0) as i64,
            tv_nsec: 0,
        };
        let mut xattrs = Vec::new();
        let pax = entry.pax_extensions().map_err(|e| self.stream_err(e))?;
        for ext in pax.into_iter().flatten() {
            let ext = ext.map_err(|_| self.invalid("bad PAX record"))?;
            let (key, value) = (ext.key_bytes(), ext.value_bytes());
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                // A layer must not forge overlayfs's own markers.
                if !name.starts_with(b"trusted.overlay.") && !name.starts_with(b"user.overlay.") {
                    xattrs.push((name.to_vec(), value.to_vec()));
                }
                continue;
            }
            let number = || std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok());
            match key {
                b"uid" => uid = number(),
                b"gid" => gid = number(),
                b"mtime" => {
                    let text = std::str::from_utf8(value).map_err(|_| self.invalid("bad PAX mtime"))?;
                    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
                    mtime.tv_sec = secs.parse().map_err(|_| self.invalid("bad PAX mtime"))?;
                    let digits: String = frac.chars().chain("000000000".chars()).take(9).collect();
                    mtime.tv_nsec = digits.parse().unwrap_or(0);
                }
                _ => {}
            }
        }
        let id = |v: Option<u64>| match v {
            Some(v) if v < u64::from(u32::MAX) => Ok(v as u32),
            _ => Err(self.invalid("bad uid or gid")),
        };
        let (uid, gid) = match self.opts.owner {
            Some(owner) => owner,
            None => (id(uid)?, id(gid)?),
        };
        Ok(Meta {
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
            mode: Mode::from_raw_mode(mode & 0o7777),
            mtime,
            xattrs,
        })
    }

    /// Makes room for a new entry at `name`: removes what is there, unless both are directories.
    fn replace(&self, parent: &OwnedFd, name: &OsStr, keep_dir: bool) -> Result<bool, LayerError> {
        match fsat::lstat_at(parent, name).map_err(|e| self.err("stat", e))? {
            Some(st) if keep_dir && fsat::is_dir(&st) => Ok(true),
            Some(st) if self.opts.no_overwrite_dir_non_dir && fsat::is_dir(&st) => {
                Err(self.invalid("cannot overwrite a directory with a non-directory"))
            }
            Some(_) if self.opts.no_overwrite_dir_non_dir && keep_dir => {
                Err(self.invalid("cannot overwrite a non-directory with a directory"))
            }
            Some(_) => fsat::remove_all_at(parent, name)
                .map(|()| false)
                .map_err(|e| self.err("remove", e)),
            None => Ok(false),
        }
    }

    /// The parent directory of `path`, made where missing, and its physical path.
    fn parent(&mut self, path: &RelPath) -> Result<(OwnedFd, RelPath), LayerError> {
        let dir = path.parent();
        if let Whiteouts::Overlay(xattrs) = self.opts.whiteouts {
            if let Some(marker) = self.written.whiteout_on(&dir) {
                self.whiteout_to_dir(&marker, xattrs.opaque())?;
            }
        }
        let resolved = fsat::resolve_dir(&self.root, &dir, true).map_err(|e| self.resolve_err(e))?;
        self.made_dirs += resolved.created;
        self.check_entries()?;
        Ok((resolved.fd, resolved.path))
    }

    /// In the overlay form, a directory this layer needs where it left a whiteout: the marker
    /// becomes an opaque directory, which hides the lower one as the whiteout did (the vfs form
    /// deleted the lower one and makes a new, empty directory).
    fn whiteout_to_dir(&mut self, marker: &RelPath, opaque: &str) -> Result<(), LayerError> {
        let name = marker.name().unwrap_or_default();
        let parent = fsat::resolve_dir(&self.root, &marker.parent(), false).map_err(|e| self.resolve_err(e))?;
        fsat::remove_all_at(&parent.fd, name).map_err(|e| self.err("remove", e))?;
        rfs::mkdirat(&parent.fd, name, Mode::from_raw_mode(0o755)).map_err(|e| self.err("mkdir", e.into()))?;
        let fd = self.open_child_dir(&parent.fd, name)?;
        rfs::fsetxattr(&fd, opaque, b"y", XattrFlags::empty())
            .map_err(|e| self.err("set the opaque xattr", e.into()))?;
        self.written.add(&parent.path.join(name));
        Ok(())
    }

    /// Opens the directory `name` in `parent` for reading, not following it.
    fn open_child_dir(&self, parent: &OwnedFd, name: &OsStr) -> Result<OwnedFd, LayerError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rfs::openat(parent, name, flags, Mode::empty()).map_err(|e| self.err("open", e.into()))
    }

    fn chown(&self, fd: impl AsFd, meta: &Meta) -> Result<(), LayerError> {
        if self.opts.same_owner || self.opts.owner.is_some() {
            rfs::fchown(fd, Some(meta.uid), Some(meta.gid)).map_err(|e| self.err("chown", e.into()))?;
        }
        Ok(())
    }

    fn set_xattr(&self, result: rustix::io::Result<()>) -> Result<(), LayerError> {
        match result {
            Err(e) if e == rustix::io::Errno::OPNOTSUPP => Ok(()),
            other => other.map_err(|e| self.err("set an xattr", e.into())),
        }
    }

    fn dir(&mut self, path: &RelPath, meta: Meta) -> Result<RelPath, LayerError> {
        let (fd, physical) = if path.is_root() {
            let fd = fsat::open_dir_read(&self.root, path).map_err(|e| self.err("open", e))?;
            (fd, RelPath(Vec::new()))
        } else {
            let (parent, parent_path) = self.parent(path)?;
            let name = path.name().unwrap_or_default();
            let physical = parent_path.join(name);
            // After this layer's whiteout of the same name (`.wh.d`, then `d/`): the lower
            // directory is deleted and this one is new. The vfs form deleted it; overlay's
            // marker is replaced by an opaque directory (a plain one would merge the lower
            // directory's content back in).
            let over_whiteout = self.written.is_whiteout(&physical);
            if !self.replace(&parent, name, true)? {
                rfs::mkdirat(&parent, name, Mode::from_raw_mode(0o700)).map_err(|e| self.err("mkdir", e.into()))?;
            }
            let fd = self.open_child_dir(&parent, name)?;
            if let (true, Whiteouts::Overlay(xattrs)) = (over_whiteout, self.opts.whiteouts) {
                rfs::fsetxattr(&fd, xattrs.opaque(), b"y", XattrFlags::empty())
                    .map_err(|e| self.err("set the opaque xattr", e.into()))?;
            }
            (fd, physical)
        };
        self.chown(&fd, &meta)?;
        for (name, value) in &meta.xattrs {
            self.set_xattr(rfs::fsetxattr(&fd, OsStr::from_bytes(name), value, XattrFlags::empty()))?;
        }
        self.written.add(&physical).dir_meta = Some((meta.mode, meta.mtime));
        Ok(physical)
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &RelPath,
        meta: Meta,
    ) -> Result<RelPath, LayerError> {
        let (parent, parent_path) = self.parent(path)?;
        let name = path.name().unwrap_or_default();
        self.replace(&parent, name, false)?;
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd =
            rfs::openat(&parent, name, flags, Mode::from_raw_mode(0o600)).map_err(|e| self.err("create", e.into()))?;
        let mut file = File::from(fd);
        let expected = entry.size();
        let mut got = 0u64;
        let mut buf = std::mem::take(&mut self.buf);
        let copied = loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(self.stream_err(e)),
            };
            got += n as u64;
            if let Err(e) = file.write_all(&buf[..n]) {
                break Err(self.err("write", e));
            }
        };
        self.buf = buf;
        copied?;
        if got != expected {
            return Err(LayerError::Truncated {
                layer: self.layer(),
                entry: self.last.clone(),
                expected,
                got,
            });
        }
        self.chown(&file, &meta)?;
        // After chown, which clears setuid/setgid.
        rfs::fchmod(&file, meta.mode).map_err(|e| self.err("chmod", e.into()))?;
        for (name, value) in &meta.xattrs {
            self.set_xattr(rfs::fsetxattr(
                &file,
                OsStr::from_bytes(name),
                value,
                XattrFlags::empty(),
            ))?;
        }
        let times = Timestamps {
            last_access: meta.mtime,
            last_modification: meta.mtime,
        };
        rfs::futimens(&file, &times).map_err(|e| self.err("set times", e.into()))?;
        Ok(parent_path.join(name))
    }

    fn link_target<R: Read>(&self, entry: &tar::Entry<'_, R>) -> Result<Vec<u8>, LayerError> {
        match entry.link_name_bytes() {
            Some(target) if target.len() > MAX_PATH => Err(self.invalid("link target longer than 4096 bytes")),
            Some(target) if !target.is_empty() => Ok(target.into_owned()),
            _ => Err(self.invalid("link without a target")),
        }
    }

    fn link_escapes(&self, target: &[u8]) -> LayerError {
        LayerError::LinkEscapes {
            layer: self.layer(),
            entry: self.last.clone(),
            target: String::from_utf8_lossy(target).into_owned(),
        }
    }

    fn symlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        path: &RelPath,
        meta: Meta,
    ) -> Result<RelPath, LayerError> {
        let target = self.link_target(entry)?;
        if !fsat::symlink_stays_inside(path, &target) {
            return Err(self.link_escapes(&target));
        }
        let (parent, parent_path) = self.parent(path)?;
        let name = path.name().unwrap_or_default();
        self.replace(&parent, name, false)?;
        rfs::symlinkat(OsStr::from_bytes(&target), &parent, name).map_err(|e| self.err("symlink", e.into()))?;
        self.node_meta(&parent, name, &meta, true)?;
        Ok(parent_path.join(name))
    }

    fn hardlink<R: Read>(&mut self, entry: &tar::Entry<'_, R>, path: &RelPath) -> Result<RelPath, LayerError> {
        let raw = self.link_target(entry)?;
        let target = RelPath::parse(&raw).map_err(|_| self.link_escapes(&raw))?;
        if target.is_root() || target == *path {
            return Err(self.invalid("hardlink to the root or to itself"));
        }
        // The target's directory resolves inside the root, as the link's own (containerd's
        // hardlinkRootPath); its last component is not followed.
        let target_parent = fsat::resolve_dir(&self.root, &target.parent(), false)
            .map_err(|e| self.err("open the link target's directory", e))?;
        let target_name = target.name().unwrap_or_default();
        // A tar hardlink names an earlier entry of the same layer; a path the layer whited out
        // is none (overlay would make the link a second whiteout, vfs finds nothing).
        if self.written.is_whiteout(&target_parent.path.join(target_name)) {
            return Err(self.invalid("hardlink to a path this layer whites out"));
        }
        let (parent, parent_path) = self.parent(path)?;
        let name = path.name().unwrap_or_default();
        self.replace(&parent, name, false)?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
        rfs::linkat(&target_parent.fd, target_name, &parent, name, AtFlags::empty())
            .map_err(|e| self.err("hardlink", e.into()))?;
        Ok(parent_path.join(name))
    }

    fn node<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        path: &RelPath,
        kind: EntryType,
        meta: Meta,
    ) -> Result<RelPath, LayerError> {
        let h = entry.header();
        let (file_type, dev) = match kind {
            EntryType::Fifo => (FileType::Fifo, 0),
            _ if !self.opts.devices => {
                return Err(LayerError::DeviceNotAllowed {
                    layer: self.layer(),
                    entry: self.last.clone(),
                });
            }
            _ => {
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let ft = if kind == EntryType::Char {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                (ft, rfs::makedev(major, minor))
            }
        };
        let (parent, parent_path) = self.parent(path)?;
        let name = path.name().unwrap_or_default();
        self.replace(&parent, name, false)?;
        rfs::mknodat(&parent, name, file_type, Mode::empty(), dev).map_err(|e| self.err("mknod", e.into()))?;
        self.node_meta(&parent, name, &meta, false)?;
        Ok(parent_path.join(name))
    }

    /// Metadata of an entry that cannot be opened (symlink, device, fifo), by name in `parent`.
    fn node_meta(&self, parent: &OwnedFd, name: &OsStr, meta: &Meta, symlink: bool) -> Result<(), LayerError> {
        if self.opts.same_owner || self.opts.owner.is_some() {
            rfs::chownat(parent, name, Some(meta.uid), Some(meta.gid), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| self.err("chown", e.into()))?;
        }
        if !symlink {
            // The node was just made by us in a pinned parent: it is not a symlink to follow.
            rfs::chmodat(parent, name, meta.mode, AtFlags::empty()).map_err(|e| self.err("chmod", e.into()))?;
        }
        let path = fsat::proc_path(parent, name);
        for (xname, value) in &meta.xattrs {
            self.set_xattr(rfs::lsetxattr(
                &path,
                OsStr::from_bytes(xname),
                value,
                XattrFlags::empty(),
            ))?;
        }
        let times = Timestamps {
            last_access: meta.mtime,
            last_modification: meta.mtime,
        };
        rfs::utimensat(parent, name, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| self.err("set times", e.into()))
    }

    /// An opaque directory in the vfs form: everything under it that this layer did not write
    /// (`written`, its node) goes, at every depth (as overlay hides it).
    fn prune_unwritten(&self, fd: &OwnedFd, written: Option<&Written>) -> Result<(), LayerError> {
        for name in fsat::list_dir(fd).map_err(|e| self.err("list", e))? {
            let Some(child) = written.and_then(|w| w.child(&name)).filter(|c| c.written) else {
                fsat::remove_all_at(fd, &name).map_err(|e| self.err("remove", e))?;
                continue;
            };
            let st = rfs::statat(fd, &name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| self.err("stat", e.into()))?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                let sub = self.open_child_dir(fd, &name)?;
                self.prune_unwritten(&sub, Some(child))?;
            }
        }
        Ok(())
    }

    /// The directory `dir` resolved inside the target without making anything; `None` when
    /// it does not exist.
    fn existing_dir(&self, dir: &RelPath) -> Result<Option<fsat::Resolved>, LayerError> {
        match fsat::resolve_dir(&self.root, dir, false) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            other => other.map(Some).map_err(|e| self.resolve_err(e)),
        }
    }

    fn whiteout(&mut self, path: &RelPath, rest: &[u8]) -> Result<(), LayerError> {
        if rest == OPAQUE {
            return match self.opts.whiteouts {
                Whiteouts::Overlay(xattrs) => {
                    let (dir, _) = self.parent(path)?;
                    let fd = self.open_child_dir(&dir, OsStr::new("."))?;
                    rfs::fsetxattr(&fd, xattrs.opaque(), b"y", XattrFlags::empty())
                        .map_err(|e| self.err("set the opaque xattr", e.into()))
                }
                Whiteouts::Apply | Whiteouts::Plain => {
                    let Some(dir) = self.existing_dir(&path.parent())? else {
                        return Ok(());
                    };
                    let fd = self.open_child_dir(&dir.fd, OsStr::new("."))?;
                    self.prune_unwritten(&fd, self.written.get(&dir.path))
                }
            };
        }
        if rest.starts_with(AUFS_META) {
            return Ok(()); // aufs bookkeeping (.wh..wh.plnk, …): nothing to apply
        }
        if rest.is_empty() || rest == b"." || rest == b".." {
            return Err(self.invalid("bad whiteout name"));
        }
        let name = OsStr::from_bytes(rest);
        let (parent, parent_path) = match self.opts.whiteouts {
            Whiteouts::Overlay(_) => self.parent(path)?,
            Whiteouts::Apply | Whiteouts::Plain => match self.existing_dir(&path.parent())? {
                Some(dir) => (dir.fd, dir.path),
                None => return Ok(()),
            },
        };
        let physical = parent_path.join(name);
        if self.written.is_written(&physical) {
            // The OCI layer spec: a whiteout hides entries of lower layers
            // only, never what the same layer adds.
            return Ok(());
        }
        match self.opts.whiteouts {
            Whiteouts::Overlay(_) => {
                self.replace(&parent, name, false)?;
                rfs::mknodat(
                    &parent,
                    name,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rfs::makedev(0, 0),
                )
                .map_err(|e| self.err("mknod a whiteout", e.into()))?;
            }
            Whiteouts::Apply | Whiteouts::Plain => {
                fsat::remove_all_at(&parent, name).map_err(|e| self.err("remove", e))?
            }
        }
        self.written.add_whiteout(&physical);
        Ok(())
    }

    /// Sets directories' modes and mtimes, now that nothing more is written into them.
    fn finish_dirs(&mut self) -> Result<(), LayerError> {
        let written = std::mem::take(&mut self.written);
        written.each_dir(|path, mode, mtime| {
            self.last = path.to_path().to_string_lossy().into_owned();
            let fd = match fsat::open_dir_read(&self.root, path) {
                Ok(fd) => fd,
                // Replaced or deleted by a later entry.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) => return Ok(()),
                Err(e) => return Err(self.resolve_err(e)),
            };
            rfs::fchmod(&fd, mode).map_err(|e| self.err("chmod", e.into()))?;
            let times = Timestamps {
                last_access: mtime,
                last_modification: mtime,
            };
            rfs::futimens(&fd, &times).map_err(|e| self.err("set times", e.into()))
        })
    }
}
