//! A Distribution API v2 (OCI distribution) client: pull and push manifests and blobs.
//!
//! - [`Reference`] parses image references the way Docker does (`busybox` is
//!   `docker.io/library/busybox:latest`).
//! - [`Client`] talks to any number of registries: HTTPS, or HTTP for loopback and registries
//!   listed as insecure; anonymous, Basic and Bearer token authentication (the challenge of a
//!   401 is remembered per registry, tokens are cached per scope), credentials from Docker's
//!   `config.json` and its credential helpers; redirects (blob storage) without credentials to
//!   other hosts; retries with exponential back-off on connection errors, 5xx and 429.
//! - Login: [`Client::login`] checks credentials as `docker login` does;
//!   [`DockerConfig::store_credentials`] and [`DockerConfig::erase_credentials`] keep and forget
//!   them as `docker login` and `docker logout` do (credential helpers, else `config.json`).
//! - Pull: manifests verified against the requested digest and `Docker-Content-Digest`, blobs
//!   streamed into [`crate::store::Store`] through a resumable ingest (`Range` from the partial's
//!   offset) and verified. Push: existence check, monolithic or chunked uploads,
//!   cross-repository mounts, manifest `PUT`; tag listing with `Link` pagination.

pub mod auth;
mod client;
mod reference;

use std::path::PathBuf;

pub use auth::{Challenge, Credentials, DockerConfig};
pub use client::{
    blob_ingest_key, BlobFetch, BlobPush, Client, ClientConfig, FetchedManifest, Ping, PushBlobOptions,
    MANIFEST_ACCEPT, MAX_MANIFEST_BYTES,
};
pub use reference::{api_host, Reference, ReferenceError, DEFAULT_TAG, DOCKER_HUB, DOCKER_HUB_API};

use crate::store::{Digest, StoreError};

/// An error of the registry client, naming the request, reference or blob concerned.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{method} {url}: {source}")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{method} {url}: {status} {message}")]
    Status {
        method: String,
        url: String,
        status: u16,
        message: String,
    },
    #[error("{what} not found: {message}")]
    NotFound { what: String, message: String },
    #[error("registry {registry}: authentication failed: {reason}")]
    Unauthorized { registry: String, reason: String },
    #[error("login to {registry}: {reason}")]
    Login { registry: String, reason: String },
    #[error("token from {realm}: {reason}")]
    Token { realm: String, reason: String },
    #[error("manifest {reference}: content has digest {actual}, but {against} is {expected}")]
    ManifestDigestMismatch {
        reference: String,
        expected: String,
        actual: Digest,
        against: &'static str,
    },
    #[error("manifest {reference} is larger than {limit} bytes")]
    ManifestTooLarge { reference: String, limit: u64 },
    #[error("{url}: {reason}")]
    Protocol { url: String, reason: String },
    #[error("blob {digest}: download stopped at {at} bytes (kept for a resumed fetch)")]
    Stopped { digest: Digest, at: u64 },
    #[error("blob {digest} of {repository}")]
    Blob {
        repository: String,
        digest: Digest,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("credentials for {registry}: {reason}")]
    Credentials { registry: String, reason: String },
    #[error("docker config {}: {reason}", path.display())]
    DockerConfig { path: PathBuf, reason: String },
}

impl RegistryError {
    /// Whether trying again may help: connection errors and server-side failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
