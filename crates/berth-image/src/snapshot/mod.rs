//! Snapshotters: layered filesystem trees for images and containers, described as mounts.
//!
//! A snapshotter never mounts anything: it keeps directories and returns the [`Mount`]s a
//! caller makes (the runtime, a test). The life of an image and a container:
//!
//! 1. **Import** a layer: [`Snapshotter::prepare`] an *active* snapshot on the previous layer's
//!    committed snapshot (no parent for the first), apply the layer tarball into its
//!    [`Snapshotter::writable_dir`] with the snapshotter's [`Snapshotter::whiteouts`] (see
//!    [`unpack`], which does both and removes the snapshot if the layer fails), then
//!    [`Snapshotter::commit`] it under a name (conventionally the chain ID).
//! 2. **Stack**: each committed snapshot is the parent of the next layer's; the last one
//!    stands for the whole image.
//! 3. **Run**: `prepare` an active snapshot on the image's top snapshot and mount what it
//!    returns as the container's rootfs ([`Snapshotter::view`] for a read-only one). When the
//!    container is gone, [`Snapshotter::remove`] it.
//!
//! Committed snapshots are read-only and cannot be removed while they have children.
//!
//! [`Overlay`] stacks directories with overlayfs; [`Vfs`] copies the parent's tree into each
//! new snapshot and works on any filesystem. [`open`] picks overlay where it works.
//! [`Mount::mount_at`] makes the mounts, long overlay chains included ([`mount`]).

pub mod mount;
mod overlay;
mod state;
mod tree;
mod vfs;

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::layer::changes::{Change, ChangeKind};
use crate::layer::{self, Applied, ApplyOptions, LayerError, OverlayXattrs, Whiteouts};

pub use overlay::Overlay;
pub use tree::{content_size, copy_fds as copy_tree};
pub use vfs::Vfs;

/// A mount to make, as data: `mount -t <kind> -o <options> <source> <target>`.
///
/// As with mount(8), `ro`, `rw` and `rbind` in `options` are flags (`MS_RDONLY`,
/// `MS_BIND | MS_REC`; a read-only bind needs a remount); the rest is the filesystem's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// The filesystem type: `overlay` or `bind`.
    pub kind: String,
    pub source: PathBuf,
    pub options: Vec<String>,
}

impl Mount {
    /// Whether the mount is read-only.
    pub fn read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }

    /// Makes the mount on `target`, in the caller's mount namespace: the one place where a
    /// snapshot's mounts become real (the snapshotters themselves never mount). An overlay whose
    /// options pass the page mount(2) takes (a long chain) is mounted relative to the directory
    /// of its layers ([`mount`]).
    pub fn mount_at(&self, target: &Path) -> io::Result<()> {
        Ok(mount::mount(self, target)?)
    }
}

/// The state of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Writable, from `prepare`; becomes committed by `commit`.
    Active,
    /// Read-only, from `view`; cannot be committed.
    View,
    /// Read-only and immutable; can be a parent.
    Committed,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Active => "active",
            Kind::View => "a view",
            Kind::Committed => "committed",
        })
    }
}

/// What a snapshotter knows about a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// The key (active or view) or name (committed).
    pub key: String,
    pub parent: Option<String>,
    pub kind: Kind,
    /// Seconds since the epoch.
    pub created: u64,
}

/// Disk use of one snapshot's own tree (for overlay, what it adds over its parents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Bytes allocated.
    pub size: u64,
    pub inodes: u64,
}

/// Why a snapshot operation failed; each names the snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {key:?}: not found")]
    NotFound { key: String },
    #[error("snapshot {key:?}: already exists")]
    AlreadyExists { key: String },
    #[error("snapshot {key:?}: is {kind}, not {expected}")]
    WrongKind { key: String, kind: Kind, expected: Kind },
    #[error("snapshot {key:?}: prepared on {}, and this snapshotter cannot commit it onto another parent", match prepared_on { Some(p) => format!("{p:?}"), None => "no parent".to_owned() })]
    CannotRebase { key: String, prepared_on: Option<String> },
    #[error("snapshot {key:?}: in use as the parent of {child:?}")]
    HasChildren { key: String, child: String },
    #[error("snapshot {key:?}: {op} {path:?}")]
    Io {
        key: String,
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("snapshot {key:?}: bad state file {path:?}")]
    State {
        key: String,
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("snapshot {key:?}: applying a layer")]
    Layer { key: String, source: Box<LayerError> },
    #[error("overlay snapshots under {root:?}: the path contains ',', ':' or '\\', which overlay's mount options cannot carry")]
    UnusableRoot { root: PathBuf },
}

/// The `Snapshotter` methods that only read or change the records, the same
/// for every backend (each has its records in a `store: state::Store`).
macro_rules! records_methods {
    () => {
        fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
            self.store.commit(name, key)
        }

        fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<Result<(), SnapshotError>>, SnapshotError> {
            self.store.commit_many(commits, self.rebases())
        }

        fn remove(&self, key: &str) -> Result<(), SnapshotError> {
            self.store.remove(key)
        }

        fn stat(&self, key: &str) -> Result<Info, SnapshotError> {
            Ok(self.store.find(key)?.1.info())
        }

        fn usage(&self, key: &str) -> Result<Usage, SnapshotError> {
            self.store.usage(key)
        }

        fn walk(&self, f: &mut dyn FnMut(&Info)) -> Result<(), SnapshotError> {
            self.store.walk(f)
        }

        fn writable_dir(&self, key: &str) -> Result<PathBuf, SnapshotError> {
            self.store.writable_dir(key)
        }

        fn remove_orphans(&self) -> Result<Vec<PathBuf>, SnapshotError> {
            self.store.remove_orphans()
        }
    };
}
use records_methods;

/// One commit of [`Snapshotter::commit_many`]: the active snapshot `key` becomes the committed
/// snapshot `name` on `parent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit<'a> {
    pub name: &'a str,
    pub key: &'a str,
    pub parent: Option<&'a str>,
}

/// Layered trees, returned as mounts. See the module documentation for the flow.
///
/// Shared between threads: a pull applies several layers at once.
pub trait Snapshotter: Send + Sync {
    /// Creates an active (writable) snapshot `key` on the committed snapshot `parent`, and
    /// returns the mounts that make it.
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError>;

    /// Creates a read-only view `key` of the committed snapshot `parent`.
    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError>;

    /// The mounts of an active snapshot or view, again.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError>;

    /// Turns the active snapshot `key` into the committed snapshot `name`.
    fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError>;

    /// Commits several active snapshots in order, with one sync of their files for all (as
    /// [`Snapshotter::commit`] makes for one). Each commit's `parent` must be the one its
    /// snapshot was prepared on, unless the snapshotter [`rebases`](Snapshotter::rebases); it
    /// may be a name committed earlier in the same call. Returns one result per commit (a
    /// commit whose name exists meanwhile fails with [`SnapshotError::AlreadyExists`] and the
    /// rest go on); `Err` when none could be made.
    fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<Result<(), SnapshotError>>, SnapshotError>;

    /// Whether a layer applied to a snapshot prepared without a parent can be committed onto
    /// one ([`Snapshotter::commit_many`]): true where a snapshot holds only its own layer's
    /// changes (overlay), so the layers of an image can be applied at once; false where it
    /// starts as a copy of its parent (vfs).
    fn rebases(&self) -> bool;

    /// Removes a snapshot and its directories. A committed one must have no children.
    fn remove(&self, key: &str) -> Result<(), SnapshotError>;

    fn stat(&self, key: &str) -> Result<Info, SnapshotError>;

    /// Disk use of the snapshot's own directory.
    fn usage(&self, key: &str) -> Result<Usage, SnapshotError>;

    /// Calls `f` with every snapshot, in creation order.
    fn walk(&self, f: &mut dyn FnMut(&Info)) -> Result<(), SnapshotError>;

    /// The directory an active snapshot's changes go to: where a layer is applied.
    fn writable_dir(&self, key: &str) -> Result<PathBuf, SnapshotError>;

    /// Removes directories that crashed processes left without a record (a creation or a
    /// removal cut short); call it where no snapshot is being made (garbage collection).
    fn remove_orphans(&self) -> Result<Vec<PathBuf>, SnapshotError>;

    /// Where the changes of the active snapshot `key` over its parent can be read.
    fn diff_source(&self, key: &str) -> Result<DiffSource, SnapshotError>;

    /// How a layer applied to [`Snapshotter::writable_dir`] must write its whiteouts.
    fn whiteouts(&self) -> Whiteouts;

    /// The storage driver's name, as `info` and `inspect` show it: `overlay` or `vfs`.
    fn name(&self) -> &'static str;
}

/// Where an active snapshot's changes are, by backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffSource {
    /// An overlay upper directory over its lower directories (top first).
    Overlay {
        upper: PathBuf,
        lowers: Vec<PathBuf>,
        xattrs: OverlayXattrs,
    },
    /// A full copy of the tree, and of its parent's (vfs).
    Copy { tree: PathBuf, parent: Option<PathBuf> },
}

/// What the active snapshot `key` changed over its parent, as `docker diff` lists it;
/// `hidden` paths (mount points the engine made) are left out (see [`layer::changes`]).
pub fn changes(snapshotter: &dyn Snapshotter, key: &str, hidden: &[&str]) -> Result<Vec<Change>, SnapshotError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| SnapshotError::Io {
            key: key.to_owned(),
            op: "reading the changes in",
            path,
            source,
        }
    };
    match snapshotter.diff_source(key)? {
        DiffSource::Overlay { upper, lowers, xattrs } => {
            layer::changes::overlay_changes(&upper, &lowers, xattrs, hidden).map_err(io_err(&upper))
        }
        DiffSource::Copy { tree, parent } => {
            layer::changes::tree_changes(&tree, parent.as_deref(), hidden).map_err(io_err(&tree))
        }
    }
}

/// Writes what the active snapshot `key` changed over its parent as a layer tar (whiteouts as
/// `.wh.` files), as Docker's `commit` makes its layer; `hidden` paths are left out, and so
/// are directories that only hold them. Returns the writer.
pub fn write_diff<W: io::Write>(
    snapshotter: &dyn Snapshotter,
    key: &str,
    hidden: &[&str],
    writer: W,
) -> Result<W, SnapshotError> {
    use layer::pack::{PackOptions, Packer, Select};
    let changed = changes(snapshotter, key, hidden)?;
    let source = snapshotter.diff_source(key)?;
    let root = match &source {
        DiffSource::Overlay { upper, .. } => upper.clone(),
        DiffSource::Copy { tree, .. } => tree.clone(),
    };
    let io_err = |source| SnapshotError::Io {
        key: key.to_owned(),
        op: "archiving the changes in",
        path: root.clone(),
        source,
    };
    let open = |p: &Path| {
        rustix::fs::open(
            p,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(io::Error::from)
    };
    let dir = open(&root).map_err(io_err)?;
    match source {
        DiffSource::Overlay { xattrs, .. } => {
            let listed: std::collections::HashSet<&str> = changed.iter().map(|c| c.path.as_str()).collect();
            let holds_hidden = |p: &str| {
                hidden
                    .iter()
                    .any(|h| h.len() > p.len() && h.starts_with(p) && h.as_bytes()[p.len()] == b'/')
            };
            let mut packer = Packer::new(
                writer,
                PackOptions {
                    overlay_whiteouts: Some(xattrs),
                },
            );
            packer
                .append_dir(&dir, "", false, &mut |name| {
                    let path = format!("/{}", name.trim_end_matches('/'));
                    if hidden.contains(&path.as_str()) {
                        Select::Skip
                    } else if holds_hidden(&path) && !listed.contains(path.as_str()) {
                        Select::ContentsOnly
                    } else {
                        Select::Include
                    }
                })
                .map_err(io_err)?;
            packer.finish().map_err(io_err)
        }
        DiffSource::Copy { .. } => {
            let mut packer = Packer::new(writer, PackOptions::default());
            for change in &changed {
                let rel = change.path.trim_start_matches('/');
                if change.kind == ChangeKind::Delete {
                    packer.append_whiteout(rel).map_err(io_err)?;
                    continue;
                }
                let (parent, name) = match rel.rfind('/') {
                    Some(i) => (&rel[..i], &rel[i + 1..]),
                    None => ("", rel),
                };
                let parent_fd = match layer::open_beneath(&dir, parent) {
                    Ok(fd) => fd,
                    // Changed since it was listed.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) => continue,
                    Err(e) => return Err(io_err(e)),
                };
                packer
                    .append(&parent_fd, std::ffi::OsStr::new(name), rel, &mut |n| {
                        if n == rel {
                            Select::Include
                        } else {
                            Select::Skip
                        }
                    })
                    .map_err(io_err)?;
            }
            packer.finish().map_err(io_err)
        }
    }
}

/// Moves the calling thread into a mount namespace of its own whose mounts
/// do not propagate back (`unshare(CLONE_NEWNS | CLONE_FS)`, then `/`
/// recursively private): what it mounts there goes away with the thread,
/// even if the process is killed before it unmounts.
pub fn private_mount_namespace() -> io::Result<()> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("unsharing the mount namespace: {e}")))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("making mounts private: {e}")))
}

/// Imports one layer: prepares `key` on `parent`, applies the layer read from `source`, and
/// commits it as `name`. If the layer fails, the partial snapshot is removed.
///
/// `opts.whiteouts` is set from the snapshotter.
pub fn unpack(
    snapshotter: &dyn Snapshotter,
    name: &str,
    key: &str,
    parent: Option<&str>,
    source: impl io::Read,
    opts: &ApplyOptions,
) -> Result<Applied, SnapshotError> {
    snapshotter.prepare(key, parent)?;
    let applied = (|| {
        let dir = snapshotter.writable_dir(key)?;
        let opts = ApplyOptions {
            whiteouts: snapshotter.whiteouts(),
            ..opts.clone()
        };
        let applied = layer::apply(source, &dir, &opts).map_err(|e| SnapshotError::Layer {
            key: key.to_owned(),
            source: Box::new(e),
        })?;
        snapshotter.commit(name, key)?;
        Ok(applied)
    })();
    if applied.is_err() {
        // The layer's error is the one to report; a failed cleanup leaves a snapshot that
        // `walk` shows and `remove` retries.
        let _ = snapshotter.remove(key);
    }
    applied
}

/// The snapshotter to use under `root`: overlay (in `<root>/overlay`) where it works, vfs
/// (in `<root>/vfs`) otherwise.
///
/// The probe mounts a test overlay; its success is remembered in `<root>/overlay/.supported`,
/// so later opens (every CLI command) skip it.
pub fn open(root: &Path) -> Result<Box<dyn Snapshotter>, SnapshotError> {
    let overlay_root = root.join("overlay");
    let marker = overlay_root.join(".supported");
    if marker.exists() || Overlay::supported(&overlay_root, layer::OverlayXattrs::Trusted) {
        if !marker.exists() {
            let _ = std::fs::write(&marker, b"trusted\n");
        }
        return Ok(Box::new(Overlay::new(&overlay_root, layer::OverlayXattrs::Trusted)?));
    }
    Ok(Box::new(Vfs::new(&root.join("vfs"))?))
}
