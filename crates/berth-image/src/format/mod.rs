//! Image formats: OCI image manifests, indexes and configs, and Docker's v2 schema 2 manifests
//! and manifest lists, which have the same shape and differ in media types.
//!
//! Parsing never normalizes what is kept: a manifest's digest is the digest of the bytes the
//! registry served, so callers store those bytes and use the parsed value only to read them.

mod config;
mod manifest;
pub mod media_type;
mod platform;

use serde::{Deserialize, Deserializer};

pub use config::{ContainerConfig, EmptyObject, HealthConfig, History, ImageConfig, RootFs};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest};
pub use media_type::{LayerCompression, LayerMediaType};
pub use platform::{Platform, PlatformMatcher};

/// An error reading an image document, naming the document and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("invalid {what}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} has no `{field}`")]
    MissingField { what: &'static str, field: &'static str },
    #[error("{what} has schemaVersion {found}; only 2 is supported")]
    SchemaVersion { what: &'static str, found: String },
    #[error("manifest media type {media_type:?} is Docker schema 1, which is not supported")]
    Schema1 { media_type: String },
    #[error("unknown manifest media type {media_type:?}")]
    UnknownMediaType { media_type: String },
    #[error("manifest says its media type is {embedded:?} but was served as {declared:?}")]
    MediaTypeMismatch { declared: String, embedded: String },
    /// A document that reads as both a manifest and an index could be verified as one and used
    /// as the other (CVE-2021-41190).
    #[error("{media_type} document has a `{field}` field, which makes it ambiguous (CVE-2021-41190)")]
    Ambiguous { media_type: String, field: &'static str },
    #[error(
        "cannot tell what kind of manifest this is: no mediaType, and neither `manifests` nor `config` and `layers`"
    )]
    UnknownKind,
    #[error("unknown layer media type {media_type:?}")]
    UnknownLayerMediaType { media_type: String },
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform { input: String, reason: &'static str },
    #[error(
        "no manifest for platform {wanted} in the index; it has {}",
        list_platforms(available)
    )]
    NoMatchingPlatform { wanted: String, available: Vec<String> },
    #[error("image config has rootfs type {found:?}; only \"layers\" is supported")]
    RootfsType { found: String },
}

fn list_platforms(platforms: &[String]) -> String {
    if platforms.is_empty() {
        return "no platform-specific manifests".to_owned();
    }
    platforms.join(", ")
}

/// Deserializes `null` as the type's default: Docker writes `"Env": null` and the like.
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
