//! `commit`: a new image made of another image plus one layer (a container's changes), as
//! Docker's `commit` makes it: the parent's config with the container's settings and the
//! `--change` instructions, one more diffID and history entry, the parent's manifest with one
//! more layer (gzip, in the parent's media type family).
//!
//! The layer is spooled through an unlinked file in the store's root while its diffID is
//! computed, then compressed into the content store; the image is recorded as a pull or a load
//! records one ([`Images::unpack_and_record`]): the new layer is unpacked into its own
//! committed snapshot, the parent's are shared, and the new image holds every layer it uses,
//! so removing the parent image later leaves it whole.

use std::io::{self, Seek, Write};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::transfer::{apply_change, format_rfc3339};
use super::{io_err, store_err, ImageError, ImageRow, Images, Result};
use crate::format::{media_type, ContainerConfig, Descriptor};
use crate::registry::Reference;
use crate::snapshot::Snapshotter;
use crate::store::Digest;

/// How [`Images::commit`] makes its image.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The name to give it (`repo[:tag]`); none leaves it dangling.
    pub reference: Option<String>,
    /// `--author`.
    pub author: Option<String>,
    /// `--message`: the history comment.
    pub message: Option<String>,
    /// Dockerfile instructions applied to `config` (`--change`).
    pub changes: Vec<String>,
    /// The container's settings the image starts from.
    pub config: ContainerConfig,
    /// The history's `created_by` (Docker: the container's command).
    pub created_by: String,
}

/// The diffID of a tar without entries (two zero blocks): Docker records no layer for it.
fn empty_tar_diff_id() -> Digest {
    Digest::of(&[0u8; 1024])
}

/// Hashes what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Images {
    /// Makes an image of `parent` plus the layer `write_layer` writes (an uncompressed layer
    /// tar, `.wh.` whiteouts; it is given the snapshotter, see [`crate::snapshot::write_diff`]),
    /// configured from `opts`. Returns the image ID.
    pub fn commit(
        &mut self,
        parent: &ImageRow,
        write_layer: impl FnOnce(&dyn Snapshotter, &mut dyn Write) -> Result<()>,
        opts: &CommitOptions,
    ) -> Result<String> {
        let reference = opts.reference.as_deref().map(Reference::parse).transpose()?;
        if reference.as_ref().is_some_and(|r| r.digest().is_some()) {
            return Err(ImageError::Invalid {
                what: format!("reference {:?}", opts.reference.as_deref().unwrap_or_default()),
                reason: "refusing to create a tag with a digest reference".into(),
            });
        }
        let mut config = opts.config.clone();
        for change in &opts.changes {
            apply_change(&mut config, change)?;
        }
        let _lock = self.lock_shared()?;
        let parent_image = self.read_image(parent)?;

        // The layer, spooled and hashed.
        let spool = tempfile::tempfile_in(&self.root).map_err(io_err("create a temporary file in", &self.root))?;
        let mut hashing = Hashing {
            inner: io::BufWriter::new(spool),
            hash: Sha256::new(),
        };
        write_layer(self.snapshots.as_ref(), &mut hashing)?;
        let diff_id = Digest::from_sha256(hashing.hash.finalize().into());
        let mut spool = hashing
            .inner
            .into_inner()
            .map_err(|e| io_err("write the layer to a temporary file in", &self.root)(e.into_error()))?;
        let empty = diff_id == empty_tar_diff_id();
        let docker = parent_image.manifest.is_docker();
        let mut layers: Vec<Descriptor> = parent_image.manifest.layers.clone();
        if !empty {
            spool
                .rewind()
                .map_err(io_err("read the layer from a temporary file in", &self.root))?;
            let gz = flate2::read::GzEncoder::new(io::BufReader::new(spool), flate2::Compression::fast());
            let (digest, size) = self
                .store
                .write_blob(None, gz)
                .map_err(store_err("storing the layer"))?;
            layers.push(Descriptor {
                media_type: if docker {
                    media_type::DOCKER_LAYER_GZIP
                } else {
                    media_type::OCI_LAYER_GZIP
                }
                .into(),
                digest,
                size,
                urls: Vec::new(),
                annotations: Default::default(),
                platform: None,
                artifact_type: None,
                data: None,
            });
        }

        // The config: the parent's, with this image's settings, layer and history.
        let now = format_rfc3339(super::now() as i64);
        let mut doc: Value = serde_json::from_slice(&parent_image.config_bytes).map_err(|e| ImageError::Invalid {
            what: format!("image config {}", parent_image.config_digest),
            reason: e.to_string(),
        })?;
        let obj = doc.as_object_mut().ok_or_else(|| ImageError::Invalid {
            what: format!("image config {}", parent_image.config_digest),
            reason: "not a JSON object".into(),
        })?;
        for stale in ["container", "container_config", "docker_version", "author"] {
            obj.remove(stale);
        }
        obj.insert("created".into(), json!(now));
        if let Some(author) = opts.author.as_deref().filter(|a| !a.is_empty()) {
            obj.insert("author".into(), json!(author));
        }
        obj.insert(
            "config".into(),
            serde_json::to_value(&config).expect("JSON of a config"),
        );
        let mut diff_ids = parent_image.config.rootfs.diff_ids.clone();
        if !empty {
            diff_ids.push(diff_id);
        }
        obj.insert("rootfs".into(), json!({ "type": "layers", "diff_ids": diff_ids }));
        let mut history = serde_json::to_value(&parent_image.config.history).expect("JSON of a history");
        let mut entry = json!({ "created": now, "created_by": opts.created_by });
        if let Some(author) = opts.author.as_deref().filter(|a| !a.is_empty()) {
            entry["author"] = json!(author);
        }
        if let Some(message) = opts.message.as_deref().filter(|m| !m.is_empty()) {
            entry["comment"] = json!(message);
        }
        if empty {
            entry["empty_layer"] = json!(true);
        }
        history.as_array_mut().expect("a list").push(entry);
        obj.insert("history".into(), history);
        let config_bytes = serde_json::to_vec(&doc).expect("JSON of a value");
        self.record_built(
            "the committed image",
            config_bytes,
            json!(layers),
            docker,
            reference.as_ref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_tar_is_recognised() {
        let tar = tar::Builder::new(Vec::new()).into_inner().unwrap();
        assert_eq!(Digest::of(&tar), empty_tar_diff_id());
        assert_eq!(
            empty_tar_diff_id().to_string(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
    }
}
