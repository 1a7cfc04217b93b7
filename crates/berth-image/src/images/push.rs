//! `push`: upload an image's blobs (skipping those the repository has, mounting those another
//! repository of the same registry has) and then its manifest under the reference's tag.

use super::{ImageError, Images, Result};
use crate::registry::{BlobPush, Client, PushBlobOptions, Reference};
use crate::store::Digest;

/// Progress of a push, as Docker prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// `The push refers to repository [<repository>]`.
    Repository(String),
    /// A blob's status (`Preparing`, `Pushing`, `Pushed`, `Layer already exists`,
    /// `Mounted from <repository>`); `id` is its short digest.
    Blob { id: String, status: String },
    /// `<tag>: digest: <digest> size: <size>`.
    Pushed { tag: String, digest: Digest, size: usize },
}

impl Images {
    /// Pushes the image recorded as `reference` (a tag, or failing that the image `source`
    /// names) to the reference's registry and repository. Returns the manifest's digest.
    pub fn push(
        &self,
        client: &Client,
        reference: &Reference,
        source: Option<&str>,
        chunk_size: Option<u64>,
        progress: &dyn Fn(&PushEvent),
    ) -> Result<Digest> {
        let row = match source {
            Some(name) => self.resolve(name)?,
            None => self.resolve(&reference.to_string())?,
        };
        let resolved = self.read_image(&row)?;
        progress(&PushEvent::Repository(super::display_name(&reference.name())));
        // A repository of the same registry holding the image: blobs can be mounted from it.
        let mount_from = self
            .db
            .names_of(&row.id)?
            .into_iter()
            .filter_map(|(name, _)| Reference::parse(&name).ok())
            .find(|r| r.registry() == reference.registry() && r.repository() != reference.repository())
            .map(|r| r.repository().to_owned());
        let mut blobs: Vec<&Digest> = resolved.manifest.layers.iter().map(|l| &l.digest).collect();
        blobs.push(&resolved.manifest.config.digest);
        for digest in &blobs {
            progress(&PushEvent::Blob {
                id: super::short_id(digest.as_str()),
                status: "Preparing".into(),
            });
        }
        for digest in blobs {
            let id = super::short_id(digest.as_str());
            if !self.store.has(digest) {
                return Err(ImageError::Invalid {
                    what: format!("image {}", row.id),
                    reason: format!("blob {digest} is not in the store (non-distributable layers are not pushed)"),
                });
            }
            progress(&PushEvent::Blob {
                id: id.clone(),
                status: "Pushing".into(),
            });
            let options = PushBlobOptions {
                mount_from: mount_from.clone(),
                chunk_size,
            };
            let status = match client
                .push_blob(reference, digest, &self.store, &options)
                .map_err(|source| ImageError::Registry {
                    name: reference.to_string(),
                    source: Box::new(source),
                })? {
                BlobPush::Exists => "Layer already exists".to_owned(),
                BlobPush::Mounted => format!("Mounted from {}", mount_from.as_deref().unwrap_or("")),
                BlobPush::Uploaded => "Pushed".to_owned(),
            };
            progress(&PushEvent::Blob { id, status });
        }
        let bytes = self.read_blob(&resolved.manifest_digest, "image manifest")?;
        let digest = client
            .put_manifest(reference, &bytes, &resolved.manifest.media_type)
            .map_err(|source| ImageError::Registry {
                name: reference.to_string(),
                source: Box::new(source),
            })?;
        // As Docker: the repository digest is recorded (`RepoDigests`, `images --digests`).
        self.db
            .set_name(&format!("{}@{digest}", reference.name()), &row.id, false)?;
        progress(&PushEvent::Pushed {
            tag: reference.tag().map(str::to_owned).unwrap_or_else(|| reference.object()),
            digest: digest.clone(),
            size: bytes.len(),
        });
        Ok(digest)
    }
}
