//! Applying a layer tarball to a directory (a snapshot's writable tree).
//!
//! [`apply`] streams a layer (plain tar, gzip or zstd: detected by its magic bytes, and
//! checked against a declared type) into a directory while hashing the compressed stream (the
//! layer's digest) and the uncompressed one (its diffID), and verifies both against what the
//! manifest and image config promise.
//!
//! Whiteouts are written in the form the snapshotter needs ([`Whiteouts`]): overlayfs markers
//! for an overlay upper directory (a 0/0 character device for a deleted entry, the
//! `overlay.opaque` xattr on an opaque directory), or applied directly for a copied (vfs) tree.
//!
//! A layer is untrusted input. Nothing is ever written outside the target: every parent is
//! resolved inside it, symlinks included, the way Docker and containerd resolve them in the
//! image's root (an absolute symlink starts again at the target; see `fsat`). `..` and absolute
//! names are refused, as are symlinks whose target climbs out of the root lexically (Docker's
//! rule), hardlinks to anything outside it, names and link targets longer than 4096 bytes,
//! device nodes unless [`ApplyOptions::devices`] allows them, and layers past the [`Limits`],
//! which are bounded by default. Each error names the layer and the entry.
//!
//! On error the target holds a partial layer: the caller removes it (the snapshot helper
//! [`crate::snapshot::unpack`] removes the active snapshot).

pub mod changes;
mod fsat;
pub mod pack;
mod stream;
mod unpack;
mod written;

use std::io;

pub use stream::Compression;

pub(crate) use fsat::{list_dir, proc_path};

/// Opens the directory `path` (relative, `""` for `root` itself) beneath `root` as it is, no
/// symlink followed, `..` refused: for reading a tree whose entries a container controls.
pub fn open_beneath(root: impl std::os::fd::AsFd, path: &str) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let path = if path.is_empty() { "." } else { path };
    Ok(rustix::fs::openat2(
        root,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?)
}
pub(crate) use stream::TarMetadataLimit;

/// How whiteout entries (`.wh.<name>`, `.wh..wh..opq`) end up in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// The target is an overlayfs upper/lower directory: write overlay's markers.
    Overlay(OverlayXattrs),
    /// The target is a full copy of the parent (vfs): delete the paths, empty the directories.
    Apply,
    /// Not a layer but a copy (`cp` into a container): `.wh.` names are ordinary files.
    Plain,
}

/// Which xattr namespace overlayfs reads its markers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverlayXattrs {
    /// `trusted.overlay.*`: the default; setting it needs CAP_SYS_ADMIN in the initial user
    /// namespace.
    #[default]
    Trusted,
    /// `user.overlay.*`: for overlay mounted with `userxattr` (inside a user namespace, or on
    /// filesystems where trusted xattrs are not available to us).
    User,
}

impl OverlayXattrs {
    /// The opaque-directory xattr's name.
    pub fn opaque(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.opaque",
            OverlayXattrs::User => "user.overlay.opaque",
        }
    }
}

/// Bounds on what one layer may hold. `None` is unbounded.
///
/// [`Limits::default`] bounds both, so options made with [`ApplyOptions::new`] are safe for
/// untrusted layers; [`Limits::UNBOUNDED`] is for trusted input only. Whatever the limits, one
/// PAX record or GNU long name is at most 1 MiB, and a name or link target at most 4096 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes: the tar stream, and the sum of the entries' declared sizes.
    pub max_bytes: Option<u64>,
    /// Tar entries, whiteouts included, and directories made for missing parents (each costs an
    /// inode and a little memory while the layer is applied).
    pub max_entries: Option<u64>,
}

impl Limits {
    /// The default byte limit: 64 GiB uncompressed, several times the largest layers of
    /// published images (CUDA and ML framework layers reach about 10 GiB). It stops a
    /// decompression bomb well before the disk is full.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 30;
    /// The default entry limit: 1 Mi, ten times the files of a full desktop distribution.
    pub const DEFAULT_MAX_ENTRIES: u64 = 1 << 20;
    /// No limit on bytes or entries.
    pub const UNBOUNDED: Limits = Limits {
        max_bytes: None,
        max_entries: None,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: Some(Self::DEFAULT_MAX_BYTES),
            max_entries: Some(Self::DEFAULT_MAX_ENTRIES),
        }
    }
}

/// What to apply and how.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// How errors name the layer: usually its digest.
    pub layer: String,
    /// The declared compression (from the media type); `Auto` trusts the magic bytes alone.
    pub compression: Compression,
    /// The diffID (`sha256:…` of the uncompressed tar) the image config lists, if known.
    pub expected_diff_id: Option<String>,
    /// The digest (`sha256:…` of the blob as stored) the manifest lists, if known.
    pub expected_digest: Option<String>,
    pub whiteouts: Whiteouts,
    /// Create character and block device nodes (needs root). FIFOs are always allowed.
    pub devices: bool,
    /// Set the entries' owners (needs root, or a user namespace mapping them).
    pub same_owner: bool,
    /// Owners for every entry instead of the archive's (`cp -a`: the container's user).
    pub owner: Option<(u32, u32)>,
    /// Refuse an entry that would replace a directory with a non-directory or the reverse,
    /// rather than replace it (Docker's `NoOverwriteDirNonDir`, which `cp` uses).
    pub no_overwrite_dir_non_dir: bool,
    pub limits: Limits,
}

impl ApplyOptions {
    /// Options for a layer named `layer`, with root's defaults: owners kept and devices allowed
    /// when running as root, no expected digests, the default [`Limits`].
    pub fn new(layer: impl Into<String>, whiteouts: Whiteouts) -> Self {
        let root = nix::unistd::geteuid().is_root();
        ApplyOptions {
            layer: layer.into(),
            compression: Compression::Auto,
            expected_diff_id: None,
            expected_digest: None,
            whiteouts,
            devices: root,
            same_owner: root,
            owner: None,
            no_overwrite_dir_non_dir: false,
            limits: Limits::default(),
        }
    }
}

/// What [`apply`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `sha256:…` of the uncompressed tar.
    pub diff_id: String,
    /// `sha256:…` of the stream as given, when [`ApplyOptions::expected_digest`] asked for
    /// it to be checked (it is not computed otherwise).
    pub digest: Option<String>,
    pub compression: Compression,
    /// Bytes of the uncompressed tar.
    pub size: u64,
    /// Bytes of the stream as given.
    pub compressed_size: u64,
    /// Tar entries read.
    pub entries: u64,
}

/// Why a layer could not be applied. Each names the layer, and the entry where there is one.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {layer}: entry {entry:?}: path escapes the layer root")]
    PathEscapes { layer: String, entry: String },
    #[error("layer {layer}: entry {entry:?}: absolute path")]
    AbsolutePath { layer: String, entry: String },
    #[error("layer {layer}: entry {entry:?}: link target {target:?} escapes the layer root")]
    LinkEscapes {
        layer: String,
        entry: String,
        target: String,
    },
    #[error("layer {layer}: entry {entry:?}: device nodes are not allowed")]
    DeviceNotAllowed { layer: String, entry: String },
    #[error("layer {layer}: entry {entry:?}: unsupported entry type {kind}")]
    UnsupportedType { layer: String, entry: String, kind: String },
    #[error("layer {layer}: entry {entry:?}: invalid entry: {reason}")]
    InvalidEntry {
        layer: String,
        entry: String,
        reason: &'static str,
    },
    #[error("layer {layer}: entry {entry:?}: layer exceeds the limit of {limit} bytes")]
    TooLarge { layer: String, entry: String, limit: u64 },
    #[error("layer {layer}: entry {entry:?}: layer exceeds the limit of {limit} entries")]
    TooManyEntries { layer: String, entry: String, limit: u64 },
    #[error("layer {layer}: entry {entry:?}: truncated: {got} of {expected} bytes")]
    Truncated {
        layer: String,
        entry: String,
        expected: u64,
        got: u64,
    },
    #[error("layer {layer}: entry {entry:?}: bad {compression} stream")]
    Decompress {
        layer: String,
        entry: String,
        compression: Compression,
        source: io::Error,
    },
    #[error("layer {layer}: entry {entry:?}: malformed or truncated tar")]
    Tar {
        layer: String,
        entry: String,
        source: io::Error,
    },
    #[error("layer {layer}: declared {declared} but the stream is {detected}")]
    CompressionMismatch {
        layer: String,
        declared: Compression,
        detected: Compression,
    },
    #[error("layer {layer}: {what} mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        layer: String,
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("layer {layer}: entry {entry:?}: {op}")]
    Io {
        layer: String,
        entry: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("layer {layer}: reading the stream")]
    Read { layer: String, source: io::Error },
}

/// The uncompressed tar inside a layer blob, whatever its compression (detected by the magic
/// bytes, which is returned too). Decompression errors surface as read errors.
pub(crate) fn decompressed<R: io::Read>(source: R) -> io::Result<(Compression, impl io::Read)> {
    let peeked = stream::Peeked::new(source, 4)?;
    let compression = Compression::detect(peeked.peek());
    Ok((
        compression,
        stream::Decoder::new(peeked, compression, stream::SharedFaults::default()),
    ))
}

/// Applies the layer read from `source` to the directory `target`, which must exist.
///
/// Returns the digests and sizes it computed, after checking them against
/// [`ApplyOptions::expected_diff_id`] and [`ApplyOptions::expected_digest`]. On error the
/// target holds part of the layer and must be discarded by the caller.
pub fn apply(source: impl io::Read, target: &std::path::Path, opts: &ApplyOptions) -> Result<Applied, LayerError> {
    unpack::apply(source, target, opts)
}
