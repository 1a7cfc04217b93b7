//! The host's images: a content store, a snapshotter and the image tables of `berth.db`, under
//! one root directory (`--root`, `/var/lib/berth` by default), shared by every process using it.
//!
//! An image is recorded only once all its blobs are in the store and all its layers are
//! committed snapshots, in one transaction with its names: a crash before that leaves blobs
//! and snapshots no image references, which [`Images::gc`] removes; never a half image.
//!
//! Processes that add content (pull, load, import) hold `<root>/images.lock` shared; garbage
//! collection holds it exclusive, so it never removes what a concurrent pull has just written
//! but not yet recorded. A killed process drops its lock with its descriptor.

mod commit;
pub mod db;
mod inspect;
mod pull;
mod push;
mod transfer;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use crate::archive::ArchiveError;
use crate::format::{FormatError, ImageConfig, ImageIndex, ImageManifest, Manifest, Platform};
use crate::layer::{ApplyOptions, Compression};
use crate::registry::{Reference, ReferenceError, RegistryError};
use crate::snapshot::{self, Commit, Kind, SnapshotError, Snapshotter};
use crate::store::{Digest, Store, StoreError};

pub use commit::CommitOptions;
pub use db::{connect, migrate, Db, DbError, ImageRow, LayerRow};
pub use inspect::{parse_rfc3339, parse_rfc3339_nanos, HistoryRow, ImageSummary};
pub use pull::{LayerStatus, PullEvent, PullOptions, Pulled};
pub use push::PushEvent;
pub use transfer::{format_rfc3339, ImportOptions};

/// Why an image operation failed; each names the image, name or object concerned.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {name}")]
    NotFound { name: String },
    #[error("image id prefix {prefix:?} is ambiguous: it matches {count} images")]
    Ambiguous { prefix: String, count: usize },
    #[error("conflict: unable to remove repository reference {name:?} (must force) - image {id} is used by {holders}")]
    InUse { name: String, id: String, holders: String },
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")]
    MultipleNames { id: String },
    #[error("conflict: unable to delete {id} (cannot be forced) - image is used by {holders}")]
    InUseForced { id: String, holders: String },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{name}: {source}")]
    Registry {
        name: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("{what}: {source}")]
    Store {
        what: String,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("{what}: {source}")]
    Format {
        what: String,
        #[source]
        source: FormatError,
    },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error(transparent)]
    Archive(Box<ArchiveError>),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, ImageError>;

impl From<ArchiveError> for ImageError {
    fn from(e: ArchiveError) -> Self {
        ImageError::Archive(Box::new(e))
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn store_err(what: impl Into<String>) -> impl FnOnce(StoreError) -> ImageError {
    let what = what.into();
    move |source| ImageError::Store { what, source }
}

fn format_err(what: impl Into<String>) -> impl FnOnce(FormatError) -> ImageError {
    let what = what.into();
    move |source| ImageError::Format { what, source }
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The chain IDs of a layer stack, bottom to top: the first is the first diffID, each next
/// one `sha256(previous + " " + diffID)` (OCI image spec, "Layer ChainID").
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(prev) => Digest::of(format!("{prev} {diff}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// A lock on `<root>/images.lock`: shared for adding content, exclusive for collecting garbage.
#[derive(Debug)]
pub struct StoreLock(#[allow(dead_code)] Flock<File>);

/// What [`Images::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs: Vec<Digest>,
    pub snapshots: Vec<String>,
    pub ingests: Vec<String>,
    /// Layer records (chain IDs) no image uses any more.
    pub layers: Vec<String>,
    /// Bytes of the blobs removed plus the snapshots' own trees.
    pub reclaimed: u64,
}

/// One line of `rmi`'s report, as Docker prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    /// An image (its ID).
    Deleted(String),
    /// A layer the removal freed (its chain ID): Docker prints it as `Deleted:` too.
    DeletedLayer(String),
}

/// Disk use of the images (`system df`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub images: u64,
    /// Images some holder (a container) references.
    pub active: u64,
    /// Bytes of all images' unpacked layers, shared layers counted once.
    pub size: u64,
    /// Bytes of the layers only unreferenced images use.
    pub reclaimable: u64,
}

/// The images under one root. See the [module](self) documentation.
pub struct Images {
    root: PathBuf,
    store: Store,
    snapshots: Box<dyn Snapshotter>,
    db: Db,
}

impl std::fmt::Debug for Images {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Images").field("root", &self.root).finish()
    }
}

/// A manifest read back from the store, with what it says.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
}

impl Images {
    /// Opens the images under `root`, creating what is missing: the content store in
    /// `content/`, snapshots in `overlay/` (or `vfs/` where overlay does not work) and the
    /// tables in `berth.db`.
    pub fn open(root: &Path) -> Result<Images> {
        fs::create_dir_all(root).map_err(io_err("create directory", root))?;
        let store = Store::open(root).map_err(store_err(format!("content store in {}", root.display())))?;
        let snapshots = snapshot::open(root)?;
        let db = Db::open(&root.join("berth.db"))?;
        Ok(Images {
            root: root.to_owned(),
            store,
            snapshots,
            db,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn snapshotter(&self) -> &dyn Snapshotter {
        self.snapshots.as_ref()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    fn lock(&self, arg: FlockArg) -> Result<Option<StoreLock>> {
        let path = self.root.join("images.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        match Flock::lock(file, arg) {
            Ok(lock) => Ok(Some(StoreLock(lock))),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(io_err("lock", &path)(e.into())),
        }
    }

    /// Holds off garbage collection while content is added.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        Ok(self.lock(FlockArg::LockShared)?.expect("blocking lock"))
    }

    /// Waits until no process adds content, and keeps them off.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        Ok(self.lock(FlockArg::LockExclusive)?.expect("blocking lock"))
    }

    /// The image `name` stands for: a full or short image ID (`sha256:` optional), a name
    /// (`busybox`, `busybox:1.36`, `reg:5000/x@sha256:…`), as Docker looks them up: names
    /// first, then ID prefixes.
    pub fn resolve(&self, name: &str) -> Result<ImageRow> {
        let not_found = || ImageError::NotFound { name: name.to_owned() };
        if let Ok(reference) = Reference::parse(name) {
            let key = reference_key(&reference);
            if let Some(id) = self.db.image_by_name(&key)? {
                return self.db.image(&id)?.ok_or_else(not_found);
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            let ids = self.db.images_by_prefix(hex)?;
            return match ids.len() {
                0 => Err(not_found()),
                1 => self.db.image(&ids[0])?.ok_or_else(not_found),
                count => Err(ImageError::Ambiguous {
                    prefix: name.to_owned(),
                    count,
                }),
            };
        }
        Err(not_found())
    }

    /// The image's config blob (the JSON document with its `config` section), as stored.
    pub fn config_bytes(&self, row: &ImageRow) -> Result<Vec<u8>> {
        Ok(self.read_image(row)?.config_bytes)
    }

    /// Reads an image's manifest and config back from the store.
    pub(crate) fn read_image(&self, row: &ImageRow) -> Result<Resolved> {
        let manifest_digest = parse_digest(&row.manifest, "image manifest digest")?;
        let bytes = self.read_blob(&manifest_digest, "image manifest")?;
        let manifest = match Manifest::parse(&bytes, Some(&row.media_type))
            .map_err(format_err(format!("image manifest {manifest_digest}")))?
        {
            Manifest::Single(m) => m,
            Manifest::Index(_) => {
                return Err(ImageError::Invalid {
                    what: format!("image {}", row.id),
                    reason: format!("its manifest {manifest_digest} is an index"),
                })
            }
        };
        self.resolved(manifest_digest, manifest)
    }

    /// An image manifest with its config read back from the store.
    pub(crate) fn resolved(&self, manifest_digest: Digest, manifest: ImageManifest) -> Result<Resolved> {
        let config_digest = manifest.config.digest.clone();
        let config_bytes = self.read_blob(&config_digest, "image config")?;
        let config = ImageConfig::parse(&config_bytes).map_err(format_err(format!("image config {config_digest}")))?;
        Ok(Resolved {
            manifest_digest,
            manifest,
            config_digest,
            config,
            config_bytes,
        })
    }

    pub(crate) fn read_blob(&self, digest: &Digest, what: &str) -> Result<Vec<u8>> {
        let path = self.store.blob_path(digest);
        fs::read(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ImageError::Store {
                    what: format!("{what} {digest}"),
                    source: StoreError::NotFound { digest: digest.clone() },
                }
            } else {
                io_err("read", &path)(e)
            }
        })
    }

    /// Unpacks the layers of an image whose blobs are (or become) present, each into a
    /// committed snapshot named by its chain ID, and records the image with `names`.
    /// `ready(i, stop)` is called before layer `i` is read: it waits for the blob (a pull
    /// downloading in parallel) and fails to stop the import; it should give up waiting once
    /// `stop` is set (another layer failed). `progress(i, status)` reports each layer.
    ///
    /// Where the snapshotter [rebases](Snapshotter::rebases) (overlay), up to one layer per
    /// core is applied at once, each into a snapshot of its own, and they are committed onto
    /// each other at the end with one sync for all; otherwise (vfs: a snapshot starts as a
    /// copy of its parent) one after another.
    pub(crate) fn unpack_and_record(
        &mut self,
        resolved: &Resolved,
        extra_blobs: &[Digest],
        names: Vec<(String, bool)>,
        ready: &Ready<'_>,
        progress: &(dyn Fn(usize, LayerStatus) + Sync),
    ) -> Result<()> {
        let manifest = &resolved.manifest;
        let diff_ids = &resolved.config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::Invalid {
                what: format!("image {}", resolved.config_digest),
                reason: format!(
                    "the manifest lists {} layers but the config {} diffIDs",
                    manifest.layers.len(),
                    diff_ids.len()
                ),
            });
        }
        let diffs: Vec<Digest> = diff_ids
            .iter()
            .map(|d| parse_digest(d.as_str(), "diffID"))
            .collect::<Result<_>>()?;
        let chains = chain_ids(&diffs);
        let mut sizes = Vec::with_capacity(chains.len());
        for (i, chain) in chains.iter().enumerate() {
            let size = self.committed_layer(chain.as_str())?;
            if size.is_some() {
                progress(i, LayerStatus::AlreadyExists);
            }
            sizes.push(size);
        }
        let todo: Vec<usize> = (0..chains.len()).filter(|&i| sizes[i].is_none()).collect();
        let unpack = Unpack {
            store: &self.store,
            snapshots: self.snapshots.as_ref(),
            layers: &manifest.layers,
            diffs: &diffs,
            chains: &chains,
            progress,
        };
        let unpacked = if self.snapshots.rebases() {
            let applied = unpack.apply_parallel(&todo, ready)?;
            unpack.commit(&applied)?
        } else {
            let mut unpacked = Vec::with_capacity(todo.len());
            for &i in &todo {
                ready(i, &AtomicBool::new(false))?;
                let applied = unpack.apply(i, unpack.parent(i), &AtomicBool::new(false))?;
                unpacked.extend(unpack.commit(&[applied])?);
            }
            unpacked
        };
        for (i, size) in unpacked {
            sizes[i] = Some(match size {
                Some(size) => size,
                // Committed by another process meanwhile: theirs is as good.
                None => self.committed_layer(chains[i].as_str())?.unwrap_or(0),
            });
        }
        // The blobs of layers that were unpacked already are part of the image too.
        for i in (0..chains.len()).filter(|i| !todo.contains(i)) {
            ready(i, &AtomicBool::new(false))?;
        }
        let layers: Vec<LayerRow> = chains
            .iter()
            .enumerate()
            .map(|(i, chain)| LayerRow {
                chain: chain.to_string(),
                parent: i.checked_sub(1).map(|p| chains[p].to_string()),
                diff_id: diffs[i].to_string(),
                size: sizes[i].unwrap_or(0),
            })
            .collect();
        let mut blobs: Vec<String> = extra_blobs.iter().map(|d| d.to_string()).collect();
        blobs.push(resolved.manifest_digest.to_string());
        blobs.push(resolved.config_digest.to_string());
        blobs.extend(manifest.layers.iter().map(|l| l.digest.to_string()));
        let size = layers.iter().map(|l| l.size).sum();
        let new = db::NewImage {
            image: ImageRow {
                id: resolved.config_digest.to_string(),
                manifest: resolved.manifest_digest.to_string(),
                media_type: manifest.media_type.clone(),
                created: resolved.config.created.clone(),
                size,
                added: now(),
                top: chains.last().map(|c| c.to_string()),
            },
            layers,
            blobs,
            names,
        };
        self.db.add_image(&new)?;
        Ok(())
    }

    /// Records an image made here (`commit`, `import`): its config and a new manifest over
    /// `layers` (descriptors as JSON; Docker's media types with `docker`, else OCI's) go into
    /// the store, then the layers are unpacked and the image recorded under `reference`.
    /// `what` names the image in errors. Returns the image ID.
    pub(crate) fn record_built(
        &mut self,
        what: &str,
        config_bytes: Vec<u8>,
        layers: serde_json::Value,
        docker: bool,
        reference: Option<&Reference>,
    ) -> Result<String> {
        let config = ImageConfig::parse(&config_bytes).map_err(format_err(format!("{what}'s config")))?;
        let (config_digest, config_size) = self
            .store
            .write_blob(None, &config_bytes[..])
            .map_err(store_err("storing the image config"))?;
        let (manifest_type, config_type) = if docker {
            (
                crate::format::media_type::DOCKER_MANIFEST,
                crate::format::media_type::DOCKER_CONFIG,
            )
        } else {
            (
                crate::format::media_type::OCI_MANIFEST,
                crate::format::media_type::OCI_CONFIG,
            )
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": { "mediaType": config_type, "digest": config_digest, "size": config_size },
            "layers": layers,
        });
        let manifest_bytes = serde_json::to_vec(&manifest).expect("JSON of a value");
        let (manifest_digest, _) = self
            .store
            .write_blob(None, &manifest_bytes[..])
            .map_err(store_err("storing the image manifest"))?;
        let manifest = match Manifest::parse(&manifest_bytes, Some(manifest_type))
            .map_err(format_err(format!("{what}'s manifest")))?
        {
            Manifest::Single(m) => m,
            Manifest::Index(_) => unreachable!("an image manifest was written"),
        };
        let resolved = Resolved {
            manifest_digest,
            manifest,
            config_digest: config_digest.clone(),
            config,
            config_bytes,
        };
        let names = reference.iter().map(|r| (reference_key(r), true)).collect();
        self.unpack_and_record(&resolved, &[], names, &|_, _| Ok(()), &|_, _| {})?;
        Ok(config_digest.to_string())
    }

    /// The size of the committed layer `chain` when both its snapshot and its record exist.
    fn committed_layer(&self, chain: &str) -> Result<Option<u64>> {
        match self.snapshots.stat(chain) {
            Ok(info) if info.kind == Kind::Committed => {}
            Ok(_) | Err(SnapshotError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        if let Some(row) = self.db.layer(chain)? {
            return Ok(Some(row.size));
        }
        // Committed by a process that died before recording its image: the snapshot is whole
        // (commit is the last step of an unpack), only its size is unknown here.
        Ok(Some(self.snapshots.usage(chain)?.size))
    }

    /// Points `target` (a name; `:latest` when no tag is given) at the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let image = self.resolve(source)?;
        let reference = Reference::parse(target)?;
        if reference.digest().is_some() {
            return Err(ImageError::Invalid {
                what: format!("tag {target:?}"),
                reason: "refusing to create a tag with a digest reference".into(),
            });
        }
        self.db.set_tag(&reference_key(&reference), &image.id)?;
        Ok(())
    }

    /// Removes a name, or an image (`docker rmi`): a name that is one of several of its image
    /// is only untagged; the last name, or an ID, removes the image unless a holder (a
    /// container) uses it. `force` removes an image with several names, and untags one in use
    /// (it stays, dangling, until its holders are gone). Garbage is collected if no other
    /// process is adding content (else the next collection takes it).
    pub fn remove(&mut self, name: &str, force: bool) -> Result<Vec<Removed>> {
        let row = self.resolve(name)?;
        let names: Vec<String> = self.db.names_of(&row.id)?.into_iter().map(|(n, _)| n).collect();
        let by_name = Reference::parse(name)
            .ok()
            .map(|r| reference_key(&r))
            .filter(|key| names.contains(key));
        let holders = self.db.refs(&row.id)?;
        let mut removed = Vec::new();
        if let Some(key) = by_name {
            let tags = names.iter().filter(|n| !is_digest_name(n)).count();
            if tags > 1 || (is_digest_name(&key) && names.len() > 1) {
                self.db.remove_name(&key)?;
                removed.push(Removed::Untagged(display_name(&key)));
                // As Docker: the last tag of a repository takes that repository's digests along.
                if !is_digest_name(&key) {
                    let repo = |n: &str| split_name(n).0;
                    let (gone_repo, remaining) = (repo(&key), names.iter().filter(|n| **n != key));
                    let remaining: Vec<&String> = remaining.collect();
                    if !remaining.iter().any(|n| !is_digest_name(n) && repo(n) == gone_repo) {
                        for n in remaining.iter().filter(|n| is_digest_name(n) && repo(n) == gone_repo) {
                            self.db.remove_name(n)?;
                            removed.push(Removed::Untagged(display_name(n)));
                        }
                    }
                }
                return Ok(removed);
            }
            if !holders.is_empty() && !force {
                return Err(ImageError::InUse {
                    name: display_name(&key),
                    id: short_id(&row.id),
                    holders: holders.join(", "),
                });
            }
        } else {
            let tags = names.iter().filter(|n| !is_digest_name(n)).count();
            if tags > 1 && !force {
                return Err(ImageError::MultipleNames { id: short_id(&row.id) });
            }
            if !holders.is_empty() && !force {
                return Err(ImageError::InUseForced {
                    id: short_id(&row.id),
                    holders: holders.join(", "),
                });
            }
        }
        for n in &names {
            self.db.remove_name(n)?;
            removed.push(Removed::Untagged(display_name(n)));
        }
        if holders.is_empty() {
            let chains = self.db.image_layers(&row.id)?;
            self.db.remove_image(&row.id)?;
            removed.push(Removed::Deleted(row.id.clone()));
            if let Some(_lock) = self.lock(FlockArg::LockExclusiveNonblock)? {
                let mut report = self.collect()?;
                removed.extend(freed_layers(&chains, &mut report.layers));
            }
        }
        Ok(removed)
    }

    /// Removes dangling images (no tag), or with `all` every image no holder uses, then
    /// collects garbage. Returns what was removed and the bytes reclaimed.
    pub fn prune(&mut self, all: bool) -> Result<(Vec<Removed>, u64)> {
        let _lock = self.lock_exclusive()?;
        let names = self.db.names()?;
        let refs = self.db.ref_counts()?;
        // Per image: its names and ID, then (once collected) the layers it freed.
        let mut pruned: Vec<(Vec<Removed>, Vec<LayerRow>)> = Vec::new();
        for row in self.db.images()? {
            if refs.contains_key(&row.id) {
                continue;
            }
            let mine: Vec<&String> = names
                .iter()
                .filter(|(_, i, _)| *i == row.id)
                .map(|(n, _, _)| n)
                .collect();
            let tagged = mine.iter().any(|n| !is_digest_name(n));
            if tagged && !all {
                continue;
            }
            let mut removed: Vec<Removed> = mine.iter().map(|n| Removed::Untagged(display_name(n))).collect();
            let chains = self.db.image_layers(&row.id)?;
            self.db.remove_image(&row.id)?;
            removed.push(Removed::Deleted(row.id.clone()));
            pruned.push((removed, chains));
        }
        let mut report = self.collect()?;
        let mut removed = Vec::new();
        for (mut image, chains) in pruned {
            image.extend(freed_layers(&chains, &mut report.layers));
            removed.extend(image);
        }
        Ok((removed, report.reclaimed))
    }

    /// Removes every blob, snapshot, partial download and layer record no image uses, waiting
    /// for processes adding content to finish.
    pub fn gc(&mut self) -> Result<GcReport> {
        let _lock = self.lock_exclusive()?;
        self.collect()
    }

    /// [`Images::gc`] with the exclusive lock held.
    fn collect(&mut self) -> Result<GcReport> {
        let mut report = GcReport::default();
        let kept_blobs = self.db.kept_blobs()?;
        for (digest, size) in self.store.list().map_err(store_err("listing blobs"))? {
            if !kept_blobs.contains(digest.as_str()) {
                match self.store.delete(&digest) {
                    Ok(()) | Err(StoreError::NotFound { .. }) => {}
                    Err(e) => return Err(store_err(format!("removing blob {digest}"))(e)),
                }
                report.reclaimed += size;
                report.blobs.push(digest);
            }
        }
        // Partial downloads: no process adds content now, so none is being written.
        report.ingests = self
            .store
            .abort_stale_ingests()
            .map_err(store_err("removing partial downloads"))?;
        for dir in self.snapshots.remove_orphans()? {
            report.snapshots.push(dir.display().to_string());
        }
        report.layers = self.db.remove_unused_layers()?;
        let kept_chains = self.db.kept_chains()?;
        // Children before parents: walk newest first, and again while something went.
        loop {
            let mut infos = Vec::new();
            self.snapshots.walk(&mut |info| infos.push(info.clone()))?;
            let mut progressed = false;
            for info in infos.iter().rev() {
                let stale = match info.kind {
                    Kind::Committed => !kept_chains.contains(&info.key),
                    // Unpacks of processes that died (none runs while we hold the lock).
                    Kind::Active => info.key.starts_with("extract-"),
                    Kind::View => info.key.starts_with("export-"),
                };
                if !stale {
                    continue;
                }
                let size = self.snapshots.usage(&info.key).map(|u| u.size).unwrap_or(0);
                match self.snapshots.remove(&info.key) {
                    Ok(()) => {
                        report.reclaimed += size;
                        report.snapshots.push(info.key.clone());
                        progressed = true;
                    }
                    // A container's snapshot still sits on it.
                    Err(SnapshotError::HasChildren { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !progressed {
                break;
            }
        }
        Ok(report)
    }

    /// Disk use of the images, as `system df` reports it.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let refs = self.db.ref_counts()?;
        let mut usage = DiskUsage::default();
        let mut all_layers = std::collections::HashMap::new();
        let mut active_chains = std::collections::HashSet::new();
        for row in self.db.images()? {
            usage.images += 1;
            let held = refs.contains_key(&row.id);
            if held {
                usage.active += 1;
            }
            for layer in self.db.image_layers(&row.id)? {
                if held {
                    active_chains.insert(layer.chain.clone());
                }
                all_layers.insert(layer.chain, layer.size);
            }
        }
        usage.size = all_layers.values().sum();
        usage.reclaimable = all_layers
            .iter()
            .filter(|(chain, _)| !active_chains.contains(*chain))
            .map(|(_, size)| size)
            .sum();
        Ok(usage)
    }
}

/// Layers applied at once by a pull or load, where the snapshotter allows it: one per core
/// (at least two, at most eight). Unpacking is mostly inflating and hashing; more threads
/// than cores were slower on two cores (`bench/pull.sh`: 0.75 s with two, 0.82 s with 3–5).
fn unpack_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8)
}

/// What [`Images::unpack_and_record`] calls before reading layer `i`: waits for its blob,
/// giving up once the flag (another layer failed) is set.
pub(crate) type Ready<'a> = dyn Fn(usize, &AtomicBool) -> Result<()> + Sync + 'a;

/// The layers of one image being unpacked: what the threads applying them share.
struct Unpack<'a> {
    store: &'a Store,
    snapshots: &'a dyn Snapshotter,
    layers: &'a [crate::format::Descriptor],
    diffs: &'a [Digest],
    chains: &'a [Digest],
    progress: &'a (dyn Fn(usize, LayerStatus) + Sync),
}

/// A layer applied to an active snapshot, not yet committed.
struct AppliedLayer {
    index: usize,
    key: String,
    /// Bytes of its uncompressed tar.
    size: u64,
}

impl Unpack<'_> {
    /// The chain ID of layer `i`'s parent.
    fn parent(&self, i: usize) -> Option<&str> {
        i.checked_sub(1).map(|p| self.chains[p].as_str())
    }

    /// Applies layer `i`'s blob to a new active snapshot prepared on `parent`. The blob's
    /// digest was checked when it entered the store; the diffID is checked here. The snapshot
    /// is removed if the layer fails, or if `cancel` is set while it is read.
    fn apply(&self, i: usize, parent: Option<&str>, cancel: &AtomicBool) -> Result<AppliedLayer> {
        let descriptor = &self.layers[i];
        let digest = &descriptor.digest;
        let kind = descriptor.layer().map_err(format_err(format!("layer {digest}")))?;
        let file = self
            .store
            .open_blob(digest)
            .map_err(store_err(format!("layer {digest}")))?;
        let mut opts = ApplyOptions::new(digest.to_string(), self.snapshots.whiteouts());
        opts.compression = match kind.compression {
            crate::format::LayerCompression::None => Compression::None,
            crate::format::LayerCompression::Gzip => Compression::Gzip,
            crate::format::LayerCompression::Zstd => Compression::Zstd,
        };
        opts.expected_diff_id = Some(self.diffs[i].to_string());
        // By position too: an image may list one layer twice, and both may be applied at once.
        let key = format!("extract-{}-{i}-{}", std::process::id(), self.diffs[i].hex());
        let reader = ProgressReader {
            inner: io::BufReader::with_capacity(256 * 1024, file),
            done: 0,
            cancel,
            progress: &mut |done| {
                (self.progress)(
                    i,
                    LayerStatus::Extracting {
                        current: done,
                        total: descriptor.size,
                    },
                )
            },
        };
        // A key left by a crashed process that had the same pid.
        let _ = self.snapshots.remove(&key);
        self.snapshots.prepare(&key, parent)?;
        let applied = self.snapshots.writable_dir(&key).and_then(|dir| {
            crate::layer::apply(reader, &dir, &opts).map_err(|e| SnapshotError::Layer {
                key: key.clone(),
                source: Box::new(e),
            })
        });
        match applied {
            Ok(applied) => {
                // Shown as the layer is done, as Docker shows it; the commit that makes it
                // part of the store follows within milliseconds (a pull failing there fails
                // as a whole).
                (self.progress)(i, LayerStatus::PullComplete);
                Ok(AppliedLayer {
                    index: i,
                    key,
                    size: applied.size,
                })
            }
            Err(e) => {
                // The layer's error is the one to report; a failed cleanup leaves a snapshot
                // that garbage collection removes.
                let _ = self.snapshots.remove(&key);
                Err(e.into())
            }
        }
    }

    /// Applies the layers `todo` (indexes, in order) on up to one thread per core, each
    /// into a snapshot without a parent, once `ready` says its blob is there. On the first
    /// failure the others stop and every snapshot made is removed; that failure is returned.
    fn apply_parallel(&self, todo: &[usize], ready: &Ready<'_>) -> Result<Vec<AppliedLayer>> {
        let next = AtomicUsize::new(0);
        let cancel = AtomicBool::new(false);
        let first_error = Mutex::new(None);
        let applied = Mutex::new(Vec::with_capacity(todo.len()));
        std::thread::scope(|scope| {
            for _ in 0..unpack_workers().min(todo.len()) {
                scope.spawn(|| {
                    while !cancel.load(Ordering::Relaxed) {
                        let Some(&i) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            return;
                        };
                        match ready(i, &cancel).and_then(|()| self.apply(i, None, &cancel)) {
                            Ok(layer) => applied.lock().unwrap_or_else(|e| e.into_inner()).push(layer),
                            Err(e) => {
                                let mut first = first_error.lock().unwrap_or_else(|e| e.into_inner());
                                if !cancel.swap(true, Ordering::Relaxed) {
                                    *first = Some(e);
                                }
                            }
                        }
                    }
                });
            }
        });
        let mut applied = applied.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            for layer in &applied {
                let _ = self.snapshots.remove(&layer.key);
            }
            return Err(e);
        }
        applied.sort_by_key(|l| l.index);
        Ok(applied)
    }

    /// Commits applied layers, bottom first, each as its chain ID onto its parent's, with one
    /// sync for all. Returns `(index, Some(size))` per layer, or `None` as size where another
    /// process committed the same layer meanwhile (this one's snapshot is removed).
    fn commit(&self, applied: &[AppliedLayer]) -> Result<Vec<(usize, Option<u64>)>> {
        let commits: Vec<Commit<'_>> = applied
            .iter()
            .map(|l| Commit {
                name: self.chains[l.index].as_str(),
                key: &l.key,
                parent: self.parent(l.index),
            })
            .collect();
        let results = self.snapshots.commit_many(&commits).inspect_err(|_| {
            for layer in applied {
                let _ = self.snapshots.remove(&layer.key);
            }
        })?;
        let mut out = Vec::with_capacity(applied.len());
        let mut failed = None;
        for (layer, result) in applied.iter().zip(results) {
            match result {
                Ok(()) => out.push((layer.index, Some(layer.size))),
                Err(SnapshotError::AlreadyExists { ref key }) if key == self.chains[layer.index].as_str() => {
                    let _ = self.snapshots.remove(&layer.key);
                    out.push((layer.index, None));
                }
                Err(e) => {
                    let _ = self.snapshots.remove(&layer.key);
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }
}

/// The layers of an image's `chains` (bottom first) among those a collection `freed`, top
/// first, as Docker lists them after the image; each is taken out of `freed`, so a layer
/// several pruned images shared is listed once, under the first.
fn freed_layers(chains: &[LayerRow], freed: &mut Vec<String>) -> Vec<Removed> {
    let mut out = Vec::new();
    for l in chains.iter().rev() {
        if let Some(i) = freed.iter().position(|c| *c == l.chain) {
            out.push(Removed::DeletedLayer(freed.swap_remove(i)));
        }
    }
    out
}

/// Counts the bytes read through it.
struct ProgressReader<'a, R> {
    inner: R,
    done: u64,
    /// Fails the read once set.
    cancel: &'a AtomicBool,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: io::Read> io::Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled: another layer failed"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.progress)(self.done);
        Ok(n)
    }
}

fn parse_digest(s: &str, what: &str) -> Result<Digest> {
    Digest::parse(s).map_err(|e| ImageError::Invalid {
        what: format!("{what} {s:?}"),
        reason: e.to_string(),
    })
}

/// The key a reference is recorded under: `registry/repository:tag` or
/// `registry/repository@digest`.
pub fn reference_key(reference: &Reference) -> String {
    match (reference.digest(), reference.tag()) {
        (Some(digest), _) => format!("{}@{digest}", reference.name()),
        (None, tag) => format!("{}:{}", reference.name(), tag.unwrap_or("latest")),
    }
}

fn is_digest_name(name: &str) -> bool {
    name.contains('@')
}

/// A recorded name as Docker shows it: `docker.io/library/` dropped.
pub fn display_name(name: &str) -> String {
    let short = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name);
    short.to_owned()
}

/// `(repository, tag or digest)` of a recorded name, as `docker images` shows them.
pub fn split_name(name: &str) -> (String, String) {
    let shown = display_name(name);
    if let Some((repo, digest)) = shown.split_once('@') {
        return (repo.to_owned(), digest.to_owned());
    }
    match shown.rfind(':') {
        Some(i) if !shown[i..].contains('/') => (shown[..i].to_owned(), shown[i + 1..].to_owned()),
        _ => (shown, "latest".to_owned()),
    }
}

/// The 12-digit ID Docker shows.
pub fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

/// The platform an index entry must match: the one asked for, else the host's.
pub(crate) fn wanted_platform(platform: Option<&Platform>) -> Platform {
    platform.cloned().unwrap_or_else(Platform::host)
}

/// Picks a manifest from an index for `platform`, naming the index when none fits.
pub(crate) fn select_from_index<'a>(
    index: &'a ImageIndex,
    digest: &Digest,
    platform: &Platform,
) -> Result<&'a crate::format::Descriptor> {
    index
        .select(platform)
        .map_err(format_err(format!("image index {digest}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let chains = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chains[0], a);
        assert_eq!(chains[1], Digest::of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn names_display_as_docker_shows_them() {
        assert_eq!(display_name("docker.io/library/busybox:latest"), "busybox:latest");
        assert_eq!(display_name("docker.io/me/app:1"), "me/app:1");
        assert_eq!(display_name("127.0.0.1:5000/x:1"), "127.0.0.1:5000/x:1");
        assert_eq!(
            split_name("127.0.0.1:5000/x:1"),
            ("127.0.0.1:5000/x".to_owned(), "1".to_owned())
        );
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(reference_key(&r), "docker.io/library/busybox:latest");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}
