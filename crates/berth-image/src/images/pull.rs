//! `pull`: resolve a reference to one image manifest, download its blobs in parallel (hashed
//! while they stream into the store), and unpack each layer as soon as its blob is in (several
//! at once where the snapshotter allows: [`Images::unpack_and_record`]), reporting progress
//! per layer the way Docker does.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use super::{
    format_err, reference_key, select_from_index, store_err, wanted_platform, ImageError, Images, Resolved, Result,
};
use crate::format::{ImageConfig, Manifest, Platform};
use crate::registry::{Client, Reference, RegistryError};
use crate::store::Digest;

/// Largest manifest or config accepted from a registry.
const MAX_DOCUMENT: u64 = 8 << 20;

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to pick from an index; the host's by default.
    pub platform: Option<Platform>,
    /// Layers downloaded at once (Docker's `max-concurrent-downloads`, 3 by default).
    pub max_concurrent_downloads: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            max_concurrent_downloads: 3,
        }
    }
}

/// Where one layer is, in Docker's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerStatus {
    /// `Pulling fs layer`: to be downloaded.
    Pulling,
    /// `Waiting`: for a download slot.
    Waiting,
    Downloading {
        current: u64,
        total: u64,
    },
    /// `Verifying Checksum`: the last byte arrived.
    Verifying,
    DownloadComplete,
    Extracting {
        current: u64,
        total: u64,
    },
    PullComplete,
    /// The layer was unpacked already.
    AlreadyExists,
}

impl LayerStatus {
    /// Docker's status text.
    pub fn text(&self) -> &'static str {
        match self {
            LayerStatus::Pulling => "Pulling fs layer",
            LayerStatus::Waiting => "Waiting",
            LayerStatus::Downloading { .. } => "Downloading",
            LayerStatus::Verifying => "Verifying Checksum",
            LayerStatus::DownloadComplete => "Download complete",
            LayerStatus::Extracting { .. } => "Extracting",
            LayerStatus::PullComplete => "Pull complete",
            LayerStatus::AlreadyExists => "Already exists",
        }
    }

    /// `(current, total)` bytes for the statuses with a progress bar.
    pub fn progress(&self) -> Option<(u64, u64)> {
        match *self {
            LayerStatus::Downloading { current, total } | LayerStatus::Extracting { current, total } => {
                Some((current, total))
            }
            _ => None,
        }
    }
}

/// Progress of a pull, in the order Docker prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// `<tag>: Pulling from <repository>` (the tag, or the digest for a pull by digest).
    PullingFrom { object: String, repository: String },
    /// A layer's status; `id` is the short (12-digit) digest of its blob.
    Layer { id: String, status: LayerStatus },
    /// `Digest: sha256:…` of what the reference resolved to.
    Digest(Digest),
    /// `Status: …`.
    Status(String),
}

/// What a pull produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The image ID (the config's digest).
    pub id: String,
    /// The digest the reference resolved to (an index's, when it was one).
    pub digest: Digest,
    /// The reference as recorded (`docker.io/library/busybox:latest`).
    pub name: String,
    /// The name already pointed at this image.
    pub up_to_date: bool,
}

/// A download's state, as the unpacking threads see it.
enum Slot {
    Pending,
    Done,
    /// The error, until a waiter takes it.
    Failed(Option<ImageError>),
}

struct Downloads {
    slots: Mutex<Vec<Slot>>,
    /// The slot of each layer: its own, or the first layer's with the same blob (an image
    /// may list one layer twice; its blob is downloaded once).
    slot_of: Vec<usize>,
    changed: Condvar,
}

impl Downloads {
    fn finish(&self, i: usize, result: Result<()>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots[i] = match result {
            Ok(()) => Slot::Done,
            Err(e) => Slot::Failed(Some(e)),
        };
        self.changed.notify_all();
    }

    /// Waits for the blob of layer `layer`, giving up (with an error nobody reports: the
    /// failure that set it is the one) once `stop` is set.
    fn wait(&self, layer: usize, stop: &AtomicBool) -> Result<()> {
        let i = self.slot_of[layer];
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match &mut slots[i] {
                Slot::Done => return Ok(()),
                Slot::Failed(e) => {
                    return Err(e.take().unwrap_or_else(|| ImageError::Invalid {
                        what: format!("layer {layer}"),
                        reason: "its blob's download failed".into(),
                    }))
                }
                Slot::Pending => {
                    if stop.load(Ordering::Relaxed) {
                        return Err(ImageError::Invalid {
                            what: format!("layer {layer}"),
                            reason: "not waited for: another layer failed".into(),
                        });
                    }
                    // The stop flag is not ours to be woken by: look again now and then.
                    slots = self
                        .changed
                        .wait_timeout(slots, std::time::Duration::from_millis(50))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

fn registry_err(reference: &Reference) -> impl FnOnce(RegistryError) -> ImageError + '_ {
    move |source| ImageError::Registry {
        name: reference.to_string(),
        source: Box::new(source),
    }
}

impl Images {
    /// Pulls `reference` from its registry: see the [module](self) documentation. The image is
    /// recorded under the reference's name (tag) and its repository digest.
    pub fn pull(
        &mut self,
        client: &Client,
        reference: &Reference,
        opts: &PullOptions,
        progress: &(dyn Fn(&PullEvent) + Sync),
    ) -> Result<Pulled> {
        let _lock = self.lock_shared()?;
        progress(&PullEvent::PullingFrom {
            object: reference.tag().map(str::to_owned).unwrap_or_else(|| reference.object()),
            repository: super::display_name(&reference.name()),
        });
        let (resolved, top, extra) = self.fetch_manifest(client, reference, opts)?;
        let mut names = vec![(format!("{}@{top}", reference.name()), false)];
        let key = reference_key(reference);
        if reference.digest().is_none() {
            names.push((key.clone(), true));
        }
        let up_to_date = self.db.image_by_name(&key)?.as_deref() == Some(resolved.config_digest.as_str())
            && self.db.image(resolved.config_digest.as_str())?.is_some();
        if !up_to_date {
            self.download_and_unpack(client, reference, &resolved, &extra, names, opts, progress)?;
        }
        progress(&PullEvent::Digest(top.clone()));
        let shown = super::display_name(&key);
        progress(&PullEvent::Status(if up_to_date {
            format!("Image is up to date for {shown}")
        } else {
            format!("Downloaded newer image for {shown}")
        }));
        Ok(Pulled {
            id: resolved.config_digest.to_string(),
            digest: top,
            name: key,
            up_to_date,
        })
    }

    /// Fetches the manifest (through an index when the reference names one) and the config
    /// into the store. Returns them, the digest the reference resolved to, and the index's
    /// digest when there was one.
    fn fetch_manifest(
        &self,
        client: &Client,
        reference: &Reference,
        opts: &PullOptions,
    ) -> Result<(Resolved, Digest, Vec<Digest>)> {
        let fetched = client.get_manifest(reference).map_err(registry_err(reference))?;
        self.store
            .write_blob(Some((&fetched.digest, fetched.bytes.len() as u64)), &fetched.bytes[..])
            .map_err(store_err(format!("manifest {}", fetched.digest)))?;
        let top = fetched.digest.clone();
        let parsed = Manifest::parse(&fetched.bytes, Some(&fetched.media_type))
            .map_err(format_err(format!("manifest {top} of {reference}")))?;
        let (manifest_digest, manifest, extra) = match parsed {
            Manifest::Single(m) => (top.clone(), m, Vec::new()),
            Manifest::Index(index) => {
                let platform = wanted_platform(opts.platform.as_ref());
                let chosen = select_from_index(&index, &top, &platform)?;
                let child = reference.with_digest(chosen.digest.clone());
                let fetched = client.get_manifest(&child).map_err(registry_err(reference))?;
                self.store
                    .write_blob(Some((&fetched.digest, fetched.bytes.len() as u64)), &fetched.bytes[..])
                    .map_err(store_err(format!("manifest {}", fetched.digest)))?;
                match Manifest::parse(&fetched.bytes, Some(&fetched.media_type))
                    .map_err(format_err(format!("manifest {} of {reference}", fetched.digest)))?
                {
                    Manifest::Single(m) => (fetched.digest, m, vec![top.clone()]),
                    Manifest::Index(_) => {
                        return Err(ImageError::Invalid {
                            what: format!("image index {top} of {reference}"),
                            reason: format!("its entry {} is another index", chosen.digest),
                        })
                    }
                }
            }
        };
        let config = &manifest.config;
        if config.size > MAX_DOCUMENT {
            return Err(ImageError::Invalid {
                what: format!("image config {} of {reference}", config.digest),
                reason: format!("{} bytes, more than the {MAX_DOCUMENT} allowed", config.size),
            });
        }
        let config_bytes = match self.store.info(&config.digest) {
            Ok(size) if size == config.size => self.read_blob(&config.digest, "image config")?,
            _ => {
                let bytes = client
                    .get_blob_bytes(reference, &config.digest, MAX_DOCUMENT)
                    .map_err(registry_err(reference))?;
                self.store
                    .write_blob(Some((&config.digest, config.size)), &bytes[..])
                    .map_err(store_err(format!("image config {}", config.digest)))?;
                bytes
            }
        };
        let parsed_config =
            ImageConfig::parse(&config_bytes).map_err(format_err(format!("image config {}", config.digest)))?;
        Ok((
            Resolved {
                manifest_digest,
                config_digest: config.digest.clone(),
                manifest,
                config: parsed_config,
                config_bytes,
            },
            top,
            extra,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn download_and_unpack(
        &mut self,
        client: &Client,
        reference: &Reference,
        resolved: &Resolved,
        extra: &[Digest],
        names: Vec<(String, bool)>,
        opts: &PullOptions,
        progress: &(dyn Fn(&PullEvent) + Sync),
    ) -> Result<()> {
        let layers = resolved.manifest.layers.clone();
        let ids: Vec<String> = layers.iter().map(|l| super::short_id(l.digest.as_str())).collect();
        let report = |i: usize, status: LayerStatus| {
            progress(&PullEvent::Layer {
                id: ids[i].clone(),
                status,
            })
        };
        let mut to_fetch = Vec::new();
        let mut slots = Vec::with_capacity(layers.len());
        let mut slot_of = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            // A blob listed again: the first listing's download, and its progress line.
            if let Some(first) = layers[..i].iter().position(|l| l.digest == layer.digest) {
                slots.push(Slot::Done);
                slot_of.push(first);
                continue;
            }
            slot_of.push(i);
            if self.store.info(&layer.digest).ok() == Some(layer.size) {
                slots.push(Slot::Done);
            } else {
                report(i, LayerStatus::Pulling);
                slots.push(Slot::Pending);
                to_fetch.push(i);
            }
        }
        let workers = opts.max_concurrent_downloads.clamp(1, 16).min(to_fetch.len());
        for &i in to_fetch.iter().skip(workers) {
            report(i, LayerStatus::Waiting);
        }
        let downloads = Downloads {
            slots: Mutex::new(slots),
            slot_of,
            changed: Condvar::new(),
        };
        let next = AtomicUsize::new(0);
        let cancel = AtomicBool::new(false);
        let store = self.store.clone();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    if cancel.load(Ordering::Relaxed) {
                        return;
                    }
                    let Some(&i) = to_fetch.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    let layer = &layers[i];
                    // A concurrent download of the same blob, in any process, is waited for
                    // by the client and its blob used.
                    let result = client
                        .fetch_blob_with_progress(reference, &layer.digest, layer.size, &store, &mut |current| {
                            report(
                                i,
                                LayerStatus::Downloading {
                                    current,
                                    total: layer.size,
                                },
                            );
                            // The unpacking failed: no use going on (a later pull resumes).
                            !cancel.load(Ordering::Relaxed)
                        })
                        .map(drop)
                        .map_err(registry_err(reference));
                    if result.is_ok() {
                        report(i, LayerStatus::Verifying);
                        report(i, LayerStatus::DownloadComplete);
                    }
                    downloads.finish(i, result);
                });
            }
            let result = self.unpack_and_record(resolved, extra, names, &|i, stop| downloads.wait(i, stop), &report);
            if result.is_err() {
                cancel.store(true, Ordering::Relaxed);
            }
            result
        })
    }
}
