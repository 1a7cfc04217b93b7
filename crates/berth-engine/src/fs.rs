//! A container's filesystem from the outside: `diff`, `export`, `cp` both ways, `commit`.
//!
//! `diff` and `commit` read the container's snapshot directly (its overlay upper directory, or
//! its copied tree and the parent's): nothing is mounted. `cp` and `export` see the merged
//! tree: on a thread of their own that moved to a private mount namespace, the container's
//! rootfs is mounted (or, running, already is) and for `cp` the container's volumes, binds and
//! `/etc/{hosts,hostname,resolv.conf}` are bound over it where the container sees them, as
//! Docker's daemon does for its archive calls; everything vanishes with the thread, whatever
//! happens to the process. The container's lock is held meanwhile, so it is not started (and
//! its rootfs not unmounted by a cleanup) under the copy.
//!
//! Container paths are resolved by the kernel inside the rootfs (openat2 `RESOLVE_IN_ROOT`,
//! through berth-runtime's `InRoot`), so a symlink in the container can never lead a copy to
//! the host's files; archives are read by descriptor ([`berth_image::layer::pack`]) and
//! written by berth-image's layer applier, which refuses entries that would escape.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use berth_image::format::ContainerConfig;
use berth_image::images::CommitOptions;
use berth_image::layer::changes::Change;
use berth_image::layer::pack::{PackOptions, Packer, Select};
use berth_image::layer::{self, ApplyOptions, Whiteouts};
use berth_image::snapshot::{self, Mount};
use berth_runtime::rootfs::paths::InRoot;
use nix::fcntl::Flock;
use rustix::fs::{self as rfs, Mode, OFlags};
use serde_json::json;

use crate::container::{event, is_mountpoint, snapshot_key};
use crate::{io_err, user, Engine, EngineError, Result, Row};

/// What the runtime makes in a rootfs as mount points, which Docker keeps in a separate init
/// layer: neither `diff` nor `commit` shows them.
pub const MOUNT_STUBS: &[&str] = &[
    "/.dockerenv",
    "/dev/console",
    "/dev/mqueue",
    "/dev/pts",
    "/dev/shm",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/mtab",
    "/etc/resolv.conf",
    "/proc",
    "/sys",
];

/// `docker container stat`'s answer for a path in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    /// The base name of the path as asked.
    pub name: String,
    pub size: i64,
    /// `st_mode`.
    pub mode: u32,
    pub mtime: i64,
    /// For a symlink: its target fully resolved inside the container, absolute.
    pub link_target: String,
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }

    pub fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// What `commit` is asked for (the CLI's flags).
#[derive(Debug, Clone, Default)]
pub struct CommitFlags {
    pub reference: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    pub changes: Vec<String>,
    /// Freeze a running container while its layer is written.
    pub pause: bool,
}

/// The writing half of [`pipe`].
pub struct PipeWriter {
    tx: mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

/// The reading half of [`pipe`].
pub struct PipeReader {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

const PIPE_CHUNK: usize = 64 * 1024;

/// A byte stream between two threads, in 64 KiB chunks, at most 16 in flight. Unlike an OS
/// pipe, a writer whose reader is gone gets `BrokenPipe` rather than SIGPIPE.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = mpsc::sync_channel(16);
    (
        PipeWriter {
            tx,
            buf: Vec::with_capacity(PIPE_CHUNK),
        },
        PipeReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        },
    )
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(PIPE_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIPE_CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(PIPE_CHUNK));
        self.tx
            .send(chunk)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Docker's view of a container path: absolute and cleaned, a trailing `/` or `/.` kept
/// (they mean "the directory itself" and "its contents").
pub fn abs_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut clean = format!("/{}", parts.join("/"));
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if base == "." && !path.trim_end_matches('/').is_empty() {
        if !clean.ends_with('/') {
            clean.push('/');
        }
        clean.push('.');
    } else if path.ends_with('/') && !clean.ends_with('/') {
        clean.push('/');
    }
    clean
}

/// `filepath.Split`: everything up to the last `/` (kept), and the rest.
pub fn split_path(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    }
}

/// A bind to make over the container's rootfs for `cp`.
#[derive(Debug, Clone)]
struct Bind {
    dest: String,
    source: PathBuf,
    read_only: bool,
}

/// The container's merged filesystem, ready to be entered on a thread of its own.
struct FsView {
    rootfs: PathBuf,
    /// The snapshot's mounts when the rootfs is not mounted already.
    mounts: Vec<Mount>,
    binds: Vec<Bind>,
    readonly_rootfs: bool,
    _lock: Option<Flock<std::fs::File>>,
}

impl FsView {
    /// Moves the calling thread (one of its own: see [`std::thread::scope`]) to a private
    /// mount namespace with the container's filesystem mounted on `rootfs`.
    fn enter(&self) -> Result<()> {
        use nix::mount::{mount, MsFlags};
        let err = |op: &'static str, path: &Path| {
            let path = path.to_owned();
            move |e: nix::errno::Errno| EngineError::Io {
                op,
                path,
                source: e.into(),
            }
        };
        berth_image::snapshot::private_mount_namespace()
            .map_err(io_err("entering a private mount namespace for", &self.rootfs))?;
        for m in &self.mounts {
            m.mount_at(&self.rootfs)
                .map_err(io_err("mounting the container's rootfs on", &self.rootfs))?;
        }
        if self.binds.is_empty() {
            return Ok(());
        }
        let root = InRoot::open(&self.rootfs).map_err(io_err("opening", &self.rootfs))?;
        for b in &self.binds {
            let dest = Path::new(&b.dest);
            let is_file = !b.source.is_dir();
            root.create(dest, is_file)
                .map_err(io_err("creating the mount point of", &b.source))?;
            let pinned = root
                .pin(dest)
                .map_err(io_err("resolving the mount point of", &b.source))?;
            mount(
                Some(&b.source),
                pinned.path(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(err("binding", &b.source))?;
            if b.read_only {
                let pinned = root
                    .pin(dest)
                    .map_err(io_err("resolving the mount point of", &b.source))?;
                mount(
                    None::<&str>,
                    pinned.path(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    None::<&str>,
                )
                .map_err(err("making read-only", &b.source))?;
            }
        }
        Ok(())
    }

    /// The container path of a descriptor resolved inside the rootfs.
    fn container_path(&self, fd: &impl AsRawFd) -> Result<String> {
        let proc = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let real = std::fs::read_link(&proc).map_err(io_err("reading", &proc))?;
        let rel = real.strip_prefix(&self.rootfs).map_err(|_| {
            EngineError::State(format!(
                "{} resolved outside the container's root {}",
                real.display(),
                self.rootfs.display()
            ))
        })?;
        Ok(format!("/{}", rel.display()))
    }

    /// Whether writing at the container path `path` is refused, with Docker's message.
    fn read_only_at(&self, path: &str) -> Option<&'static str> {
        let under = |dest: &str| path == dest || path.starts_with(&format!("{}/", dest.trim_end_matches('/')));
        match self
            .binds
            .iter()
            .filter(|b| under(&b.dest))
            .max_by_key(|b| b.dest.len())
        {
            Some(b) if b.read_only => Some("mounted volume is marked read-only"),
            Some(_) => None,
            None if self.readonly_rootfs => Some("container rootfs is marked read-only"),
            None => None,
        }
    }
}

/// A container path resolved inside the root.
enum Target {
    /// `name` in the directory `parent` (not followed).
    Entry { parent: OwnedFd, name: OsString },
    /// A directory itself (a path with a trailing `/` or `/.`, or `/`).
    Dir(OwnedFd),
}

fn errno_kind(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR))
}

/// Resolves `abs` (see [`abs_path`]) inside the root: its directory with every symlink
/// followed inside the root, its last component followed only with `follow`.
fn resolve(view: &FsView, root: &InRoot, abs: &str, follow: bool) -> io::Result<(Target, rfs::Stat)> {
    let (dir, base) = split_path(abs);
    if base.is_empty() || base == "." {
        let fd = root.dir(Path::new(dir))?;
        let st = rfs::fstat(&fd)?;
        return Ok((Target::Dir(fd), st));
    }
    if follow {
        let pinned = root.pin(Path::new(abs))?;
        let fd = rfs::open(pinned.path(), OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
        let real = view.container_path(&fd).map_err(|e| io::Error::other(e.to_string()))?;
        if real == "/" {
            let st = rfs::fstat(&fd)?;
            return Ok((Target::Dir(root.dir(Path::new("/"))?), st));
        }
        return resolve(view, root, &real, false);
    }
    let parent = root.dir(Path::new(dir))?;
    let st = rfs::statat(&parent, base, rfs::AtFlags::SYMLINK_NOFOLLOW)?;
    Ok((
        Target::Entry {
            parent,
            name: OsString::from(base),
        },
        st,
    ))
}

/// Writes `target` as a tar named `as_name` (a directory: `as_name/…`).
fn pack(target: &Target, as_name: &str, out: impl Write) -> io::Result<()> {
    let mut packer = Packer::new(out, PackOptions::default());
    match target {
        Target::Entry { parent, name } => packer.append(parent, name, as_name, &mut |_| Select::Include)?,
        Target::Dir(fd) => {
            let dir = rfs::openat(
                fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            packer.append_dir(&dir, as_name, true, &mut |_| Select::Include)?;
        }
    }
    packer.finish()?.flush()
}

/// [`resolve`], a missing path told as Docker tells it.
fn resolved(
    view: &FsView,
    root: &InRoot,
    abs: &str,
    follow: bool,
    container: &str,
    path: &str,
) -> Result<(Target, rfs::Stat)> {
    match resolve(view, root, abs, follow) {
        Ok(r) => Ok(r),
        Err(e) if errno_kind(&e) => Err(EngineError::FileNotFound {
            path: path.to_owned(),
            container: container.to_owned(),
        }),
        Err(e) => Err(io_err("resolving", abs)(e)),
    }
}

fn stat_of(view: &FsView, root: &InRoot, abs: &str, target: &Target, st: &rfs::Stat) -> PathStat {
    let mut link_target = String::new();
    if let (Target::Entry { .. }, true) = (target, st.st_mode & libc::S_IFMT == libc::S_IFLNK) {
        link_target = match root.pin(Path::new(abs)) {
            Ok(p) => rfs::open(p.path(), OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                .ok()
                .and_then(|fd| view.container_path(&fd).ok())
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        if link_target.is_empty() {
            // Dangling: where it points, resolved inside the root as far as it exists.
            link_target = berth_runtime::rootfs::paths::secure_join(&view.rootfs, Path::new(abs))
                .ok()
                .and_then(|p| p.strip_prefix(&view.rootfs).ok().map(|r| format!("/{}", r.display())))
                .unwrap_or_default();
        }
    }
    let name = abs.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    PathStat {
        name: if name.is_empty() { "/".into() } else { name.into() },
        size: st.st_size,
        mode: st.st_mode,
        mtime: st.st_mtime,
        link_target,
    }
}

/// The name a copied path's entries start with (Docker: the base of the path as asked; `.`
/// for `dir/.`, whose content is copied).
fn archive_name(abs: &str) -> String {
    let trimmed = abs.trim_end_matches('/');
    if trimmed.is_empty() {
        return ".".into();
    }
    trimmed.rsplit('/').next().unwrap_or(".").to_owned()
}

fn joined<T>(r: std::thread::Result<Result<T>>) -> Result<T> {
    r.unwrap_or_else(|_| Err(EngineError::State("the container filesystem thread panicked".into())))
}

/// The image-config form of a container's settings.
fn image_config(c: &crate::Config) -> ContainerConfig {
    let keys = |m: &Option<std::collections::BTreeMap<String, serde_json::Value>>| {
        m.iter()
            .flat_map(|m| m.keys())
            .map(|k| (k.clone(), Default::default()))
            .collect()
    };
    ContainerConfig {
        user: (!c.user.is_empty()).then(|| c.user.clone()),
        exposed_ports: keys(&c.exposed_ports),
        env: c.env.clone(),
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        volumes: keys(&c.volumes),
        working_dir: (!c.working_dir.is_empty()).then(|| c.working_dir.clone()),
        labels: c.labels.clone(),
        stop_signal: c.stop_signal.clone(),
        ..Default::default()
    }
}

impl Engine {
    /// `docker diff`: what the container changed in its filesystem.
    pub fn changes(&self, name: &str) -> Result<Vec<Change>> {
        let row = self.get(name)?;
        self.ensure_snapshot(&row)?;
        let snaps = self.images.snapshotter();
        Ok(snapshot::changes(snaps, &snapshot_key(&row.id), MOUNT_STUBS)
            .map_err(berth_image::images::ImageError::from)?)
    }

    /// The container's merged filesystem, ready to enter; with `binds`, its volumes, binds
    /// and network files too.
    fn view(&self, row: &Row, binds: bool) -> Result<FsView> {
        let lock = self.lock(&row.id)?;
        let rootfs = self.rootfs(&row.id);
        std::fs::create_dir_all(&rootfs).map_err(io_err("creating directory", &rootfs))?;
        let mounts = if is_mountpoint(&rootfs) {
            Vec::new()
        } else {
            self.ensure_snapshot(row)?
        };
        let s = row.settings();
        let mut list = Vec::new();
        if binds {
            let user_targets: Vec<String> = s
                .host_config
                .mounts
                .iter()
                .map(|m| abs_path(&m.target).trim_end_matches('/').to_owned())
                .collect();
            for f in ["resolv.conf", "hostname", "hosts"] {
                let dest = format!("/etc/{f}");
                if !user_targets.contains(&dest) {
                    list.push(Bind {
                        dest,
                        source: self.dir(&row.id).join(f),
                        read_only: s.host_config.readonly_rootfs,
                    });
                }
            }
            for m in &s.host_config.mounts {
                let source = match m.kind.as_str() {
                    "bind" => PathBuf::from(&m.source),
                    "volume" => self.volume_mountpoint(&m.source),
                    _ => continue,
                };
                list.push(Bind {
                    dest: abs_path(&m.target).trim_end_matches('/').to_owned(),
                    source,
                    read_only: m.read_only,
                });
            }
            // Parents before what is mounted inside them.
            list.sort_by_key(|b| b.dest.matches('/').count());
        }
        Ok(FsView {
            rootfs,
            mounts,
            binds: list,
            readonly_rootfs: s.host_config.readonly_rootfs,
            _lock: lock,
        })
    }

    /// `docker export`: the container's filesystem (without its volumes) as a tar.
    pub fn export(&self, name: &str, out: impl Write + Send) -> Result<()> {
        let row = self.get(name)?;
        let view = self.view(&row, false)?;
        let result = std::thread::scope(|s| {
            joined(
                s.spawn(|| {
                    view.enter()?;
                    let dir = rfs::open(
                        &view.rootfs,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| io_err("opening", &view.rootfs)(e.into()))?;
                    let mut packer = Packer::new(out, PackOptions::default());
                    packer
                        .append_dir(&dir, "", false, &mut |_| Select::Include)
                        .and_then(|()| packer.finish())
                        .and_then(|mut w| w.flush())
                        .map_err(io_err("archiving the filesystem of container", &row.id))
                })
                .join(),
            )
        });
        result
    }

    /// Stats `path` in the container (`cp`'s first look); with `follow`, a symlink at the end
    /// of the path is followed.
    pub fn stat_path(&self, name: &str, path: &str, follow: bool) -> Result<PathStat> {
        let row = self.get(name)?;
        let view = self.view(&row, true)?;
        let abs = abs_path(path);
        std::thread::scope(|s| {
            joined(
                s.spawn(|| {
                    view.enter()?;
                    let root = InRoot::open(&view.rootfs).map_err(io_err("opening", &view.rootfs))?;
                    let (target, st) = resolved(&view, &root, &abs, follow, name, path)?;
                    Ok(stat_of(&view, &root, &abs, &target, &st))
                })
                .join(),
            )
        })
    }

    /// Writes `path` of the container as a tar to `out` (`cp` from it): entries named
    /// `as_name`, by default the path's base (`.` for `dir/.`, whose content it is), and
    /// `as_name/…` below a directory. With `follow`, a symlink at the end of the path is
    /// followed. Returns the path's stat.
    pub fn archive_path(
        &self,
        name: &str,
        path: &str,
        follow: bool,
        as_name: Option<&str>,
        out: impl Write + Send,
    ) -> Result<PathStat> {
        let row = self.get(name)?;
        let view = self.view(&row, true)?;
        let abs = abs_path(path);
        let as_name = as_name.map(str::to_owned).unwrap_or_else(|| archive_name(&abs));
        std::thread::scope(|s| {
            joined(
                s.spawn(|| {
                    view.enter()?;
                    let root = InRoot::open(&view.rootfs).map_err(io_err("opening", &view.rootfs))?;
                    let (target, st) = resolved(&view, &root, &abs, follow, name, path)?;
                    let stat = stat_of(&view, &root, &abs, &target, &st);
                    pack(&target, &as_name, out).map_err(io_err("archiving", &abs))?;
                    Ok(stat)
                })
                .join(),
            )
        })
    }

    /// Extracts the tar `input` into the directory `path` of the container (`cp` into it),
    /// which must exist (a symlink to a directory is followed). Entries that would escape the
    /// directory, or replace a directory with a non-directory or the reverse, are refused.
    /// With `copy_uid_gid`, everything is owned by the container's user.
    pub fn extract_to_dir(&self, name: &str, path: &str, input: impl Read + Send, copy_uid_gid: bool) -> Result<()> {
        let row = self.get(name)?;
        let view = self.view(&row, true)?;
        let abs = abs_path(path);
        let user_spec = row.settings().config.user;
        std::thread::scope(|s| {
            joined(
                s.spawn(|| {
                    view.enter()?;
                    let root = InRoot::open(&view.rootfs).map_err(io_err("opening", &view.rootfs))?;
                    let not_found = || EngineError::FileNotFound {
                        path: path.to_owned(),
                        container: name.to_owned(),
                    };
                    let fd = match root.pin(Path::new(&abs)) {
                        Ok(p) => rfs::open(p.path(), OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                            .map_err(|e| io_err("opening", &abs)(e.into()))?,
                        Err(e) if errno_kind(&e) => return Err(not_found()),
                        Err(e) => return Err(io_err("resolving", &abs)(e)),
                    };
                    let st = rfs::fstat(&fd).map_err(|e| io_err("stat", &abs)(e.into()))?;
                    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                        return Err(EngineError::State("extraction point is not a directory".into()));
                    }
                    let real = view.container_path(&fd)?;
                    if let Some(why) = view.read_only_at(&real) {
                        return Err(EngineError::State(why.into()));
                    }
                    let target = format!("{}:{path}", name);
                    let mut opts = ApplyOptions::new("archive", Whiteouts::Plain);
                    opts.no_overwrite_dir_non_dir = true;
                    if copy_uid_gid {
                        let passwd = user::read_in_root(&view.rootfs, "/etc/passwd");
                        let group = user::read_in_root(&view.rootfs, "/etc/group");
                        let u = user::resolve(&user_spec, &passwd, &group, &[])?;
                        opts.owner = Some((u.uid, u.gid));
                    }
                    let proc = PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()));
                    layer::apply(input, &proc, &opts).map_err(|e| EngineError::Copy {
                        target,
                        source: Box::new(e),
                    })?;
                    Ok(())
                })
                .join(),
            )
        })
    }

    /// `docker commit`: a new image of the container's image plus its changes, configured
    /// from its settings and `flags.changes`. Returns the image ID.
    pub fn commit(&mut self, name: &str, flags: &CommitFlags) -> Result<String> {
        let row = self.get(name)?;
        let image = self
            .images
            .db()
            .image(&row.image)?
            .ok_or_else(|| EngineError::State(format!("container {}: its image {} is gone", row.id, row.image)))?;
        self.ensure_snapshot(&row)?;
        let s = row.settings();
        let opts = CommitOptions {
            reference: flags.reference.clone(),
            author: flags.author.clone(),
            message: flags.message.clone(),
            changes: flags.changes.clone(),
            config: image_config(&s.config),
            created_by: s.config.cmd.clone().unwrap_or_default().join(" "),
        };
        let pause = flags.pause && row.state == "running";
        if pause {
            self.pause(&row.id)?;
        }
        let key = snapshot_key(&row.id);
        let committed = self.images.commit(
            &image,
            |snaps, w| {
                snapshot::write_diff(snaps, &key, MOUNT_STUBS, w)?;
                Ok(())
            },
            &opts,
        );
        if pause {
            self.unpause(&row.id)?;
        }
        let id = committed?;
        self.db.add_event(&event(
            "commit",
            &row,
            &[("comment", json!(flags.message.clone().unwrap_or_default()))],
        ))?;
        Ok(id)
    }
}

/// The host side of `cp`: where an archive must be extracted and how its entries must be
/// renamed so that copying `src` (a file or directory) to `dst` does what `cp -a` does
/// (Docker's `PrepareArchiveCopy`). `dst`: the destination path as given (a trailing `/` asserts a directory), and what
/// is there. Returns (directory to extract into, the name the archive's entries must start
/// with instead of the source's base name, if another).
pub fn prepare_copy(
    src_is_dir: bool,
    dst: &str,
    dst_exists: bool,
    dst_is_dir: bool,
) -> std::result::Result<(String, Option<String>), &'static str> {
    let (dir, base) = split_path(dst);
    let dir = if dir.is_empty() { "." } else { dir };
    let rename = || Some(base.to_owned());
    if dst_exists && dst_is_dir {
        return Ok((dst.to_owned(), None));
    }
    if dst_exists && src_is_dir {
        return Err("cannot copy directory");
    }
    if dst_exists || src_is_dir {
        return Ok((dir.to_owned(), rename()));
    }
    if dst.ends_with('/') || base == "." {
        return Err("no such directory");
    }
    Ok((dir.to_owned(), rename()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_dockers_trailing_meanings() {
        assert_eq!(abs_path("etc/passwd"), "/etc/passwd");
        assert_eq!(abs_path("/etc/../etc//x/"), "/etc/x/");
        assert_eq!(abs_path("/tmp/dir/."), "/tmp/dir/.");
        assert_eq!(abs_path("/tmp/dir/./"), "/tmp/dir/.");
        assert_eq!(abs_path("."), "/.");
        assert_eq!(abs_path("."), "/.");
        assert_eq!(split_path("/etc/"), ("/etc/", ""));
        assert_eq!(split_path("/etc/."), ("/etc/", "."));
        assert_eq!(archive_name("/etc/"), "etc");
        assert_eq!(archive_name("/etc/."), ".");
        assert_eq!(archive_name("/"), ".");
    }

    #[test]
    fn copies_prepare_like_dockers() {
        // Into an existing directory: as it is.
        assert_eq!(prepare_copy(true, "/x", true, true), Ok(("/x".into(), None)));
        assert_eq!(prepare_copy(false, "/x/", true, true), Ok(("/x/".into(), None)));
        // A directory onto a file.
        assert_eq!(prepare_copy(true, "/x", true, false), Err("cannot copy directory"));
        // A file onto a file, a directory to a new name: renamed.
        assert_eq!(
            prepare_copy(false, "/x/g", true, false),
            Ok(("/x/".into(), Some("g".into())))
        );
        assert_eq!(
            prepare_copy(true, "/x/new", false, false),
            Ok(("/x/".into(), Some("new".into())))
        );
        // A file to a directory that does not exist.
        assert_eq!(prepare_copy(false, "/x/new/", false, false), Err("no such directory"));
        assert_eq!(
            prepare_copy(false, "new", false, false),
            Ok((".".into(), Some("new".into())))
        );
    }

    #[test]
    fn the_pipe_carries_everything_and_reports_a_gone_reader() {
        let (mut w, mut r) = pipe();
        let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let expected = data.clone();
        let t = std::thread::spawn(move || {
            w.write_all(&data).unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        t.join().unwrap();
        assert_eq!(got, expected);
        let (mut w, r) = pipe();
        drop(r);
        let err = w.write_all(&[0; PIPE_CHUNK]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
