//! The registry client: one [`Client`] for every registry, with its credentials, challenges and
//! tokens cached per registry and scope.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::http::{self, Method, StatusCode};
use ureq::{Agent, Body, SendBody};

use super::auth::{self, Challenge, Credentials, DockerConfig, TokenReply};
use super::reference::{api_host, Reference};
use super::RegistryError;
use crate::store::{Digest, Store, StoreError};

/// Largest manifest accepted (containerd's limit).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest token reply or error body read.
const MAX_SMALL_BODY: u64 = 1024 * 1024;
/// Redirects followed per request.
const MAX_REDIRECTS: usize = 10;
/// Size of the buffer blobs are streamed through.
const COPY_BUFFER: usize = 128 * 1024;

/// The `Accept` header of manifest requests: every manifest and index type berth reads.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

type Result<T> = std::result::Result<T, RegistryError>;

/// How a [`Client`] behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries reached over plain HTTP (`host` or `host:port`), besides `localhost`,
    /// `127.0.0.0/8` and `::1`, which always are.
    pub insecure_registries: Vec<String>,
    /// Docker's `config.json` to read credentials from; `None`: no file.
    pub docker_config: Option<DockerConfig>,
    /// Attempts after the first on connection errors, 5xx and 429.
    pub retries: u32,
    /// The first back-off delay; it doubles with every retry (up to [`ClientConfig::max_backoff`]).
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Connect timeout, and the longest wait for a read or a write.
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            insecure_registries: Vec::new(),
            docker_config: None,
            retries: 4,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(120),
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl ClientConfig {
    /// The defaults, with credentials from Docker's usual `config.json` (see
    /// [`DockerConfig::default_path`]).
    pub fn from_environment() -> Result<ClientConfig> {
        let docker_config = match DockerConfig::default_path() {
            Some(path) => Some(DockerConfig::load(&path)?),
            None => None,
        };
        Ok(ClientConfig {
            docker_config,
            ..ClientConfig::default()
        })
    }
}

/// What [`Client::ping`] learned about a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ping {
    /// `/v2/` answered 200: no authentication.
    Open,
    /// `/v2/` asked for authentication.
    Auth(Challenge),
}

/// A manifest as the registry served it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The bytes served, whose digest is [`FetchedManifest::digest`].
    pub bytes: Vec<u8>,
    /// The `Content-Type` served (parameters removed); may be empty or a generic type.
    pub media_type: String,
    /// The sha256 of `bytes`, checked against the reference's digest and the registry's
    /// `Docker-Content-Digest`.
    pub digest: Digest,
}

/// What [`Client::fetch_blob`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobFetch {
    pub size: u64,
    /// The blob was in the store already: nothing was downloaded.
    pub present: bool,
    /// Where the download started: the partial ingest's offset when resumed, else 0.
    pub resumed_from: u64,
    /// Bytes received from the registry.
    pub downloaded: u64,
}

/// How [`Client::push_blob`] uploads.
#[derive(Debug, Clone, Default)]
pub struct PushBlobOptions {
    /// Try a cross-repository mount from this repository (same registry) first.
    pub mount_from: Option<String>,
    /// Upload in `PATCH` chunks of this size instead of one `PUT`.
    pub chunk_size: Option<u64>,
}

/// What [`Client::push_blob`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The repository had it already.
    Exists,
    /// Mounted from another repository, nothing uploaded.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// The access a request needs, which is the scope of its token.
#[derive(Debug, Clone, Copy)]
enum Access<'a> {
    Pull,
    Push,
    /// Push to the repository, pull from another one (a mount).
    PushFrom(&'a str),
}

/// One request: everything but the body, which is made again for every attempt.
struct Req<'a> {
    method: Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    registry: &'a str,
    repository: Option<&'a str>,
    access: Access<'a>,
    /// Whether the request is retried on connection errors, 5xx and 429 (not for uploads, whose
    /// session may have taken part of the body).
    retry: bool,
    /// A token request: its credentials go to the realm's own host.
    to_realm: bool,
}

/// A response with the URL it came from (after redirects): relative `Location`s resolve
/// against it.
struct Resp {
    inner: http::Response<Body>,
    url: String,
}

impl Resp {
    fn status(&self) -> StatusCode {
        self.inner.status()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers().get(name).and_then(|v| v.to_str().ok())
    }
}

struct CachedToken {
    token: String,
    expires: Instant,
}

/// A Distribution API v2 client.
pub struct Client {
    agent: Agent,
    config: ClientConfig,
    /// Explicit credentials per registry ([`Client::set_credentials`]), ahead of Docker's file.
    credentials: Mutex<HashMap<String, Option<Credentials>>>,
    /// The challenge each registry answered with.
    challenges: Mutex<HashMap<String, Challenge>>,
    /// Bearer tokens per (registry, scopes).
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Client {
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(config.user_agent.as_str())
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_read(Some(config.io_timeout))
            .timeout_per_write(Some(config.io_timeout))
            .build()
            .new_agent();
        Client {
            agent,
            config,
            credentials: Mutex::new(HashMap::new()),
            challenges: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Uses `credentials` for `registry` (as in references) instead of Docker's configuration;
    /// `None` forces anonymous access.
    pub fn set_credentials(&self, registry: &str, credentials: Option<Credentials>) {
        lock(&self.credentials).insert(registry.to_owned(), credentials);
        lock(&self.tokens).retain(|(r, _), _| r != registry);
    }

    /// `https`, or `http` for loopback hosts and registries listed as insecure.
    pub fn scheme(&self, registry: &str) -> &'static str {
        let host = api_host(registry);
        let bare = host_without_port(host);
        let loopback =
            bare == "localhost" || bare == "::1" || bare.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
        let listed = self
            .config
            .insecure_registries
            .iter()
            .any(|r| r == registry || r == host || r == bare);
        if loopback || listed {
            "http"
        } else {
            "https"
        }
    }

    /// The base URL of `registry`'s API, `scheme://host/v2/`.
    pub fn base_url(&self, registry: &str) -> String {
        format!("{}://{}/v2/", self.scheme(registry), api_host(registry))
    }

    /// `<base>/<repository>/<path><object>`, e.g. `…/v2/library/busybox/manifests/latest`.
    fn repo_url(&self, reference: &Reference, path: &str, object: impl std::fmt::Display) -> String {
        format!(
            "{}{}/{path}{object}",
            self.base_url(reference.registry()),
            reference.repository()
        )
    }

    /// `GET /v2/`: whether the registry speaks the API and how it authenticates. The challenge
    /// is remembered, so later requests authenticate up front.
    pub fn ping(&self, registry: &str) -> Result<Ping> {
        let req = self.base_req(registry);
        let resp = self.send_with_retries(&req, &mut no_body)?;
        match resp.status().as_u16() {
            200 => Ok(Ping::Open),
            401 => {
                let challenge = self.remember_challenge(registry, &resp)?;
                Ok(Ping::Auth(challenge))
            }
            _ => Err(status_error(&req, resp)),
        }
    }

    /// Checks `credentials` against `registry` as `docker login` does, without keeping them
    /// (store them with [`DockerConfig::store_credentials`], use them with
    /// [`Client::set_credentials`]). `GET /v2/`: a registry that answers 200 asks for no
    /// authentication and any credentials do; under a Basic challenge `/v2/` must answer 200 to
    /// them; under a Bearer challenge the realm must grant a token to them (no scope, the
    /// challenge's `service`, `account=<username>`), which `/v2/` must then accept. A refusal
    /// is [`RegistryError::Login`] with the registry's explanation, or "incorrect username or
    /// password".
    pub fn login(&self, registry: &str, credentials: &Credentials) -> Result<()> {
        let req = self.base_req(registry);
        let resp = self.send_with_retries(&req, &mut no_body)?;
        let authorization = match resp.status().as_u16() {
            200 => return Ok(()),
            401 => match self.remember_challenge(registry, &resp)? {
                Challenge::Basic => credentials.basic_header(),
                Challenge::Bearer { realm, service, .. } => {
                    let account = Some(credentials.username.as_str()).filter(|u| !u.is_empty());
                    let resp =
                        self.request_token(registry, &realm, service.as_deref(), &[], account, Some(credentials))?;
                    if resp.status() == StatusCode::UNAUTHORIZED {
                        return Err(login_refused(registry, resp));
                    }
                    let (token, _) = token_reply(&realm, resp, Some(credentials))?;
                    format!("Bearer {token}")
                }
            },
            _ => return Err(status_error(&req, resp)),
        };
        let resp = self.send_with_retries_auth(&req, Some(&authorization), &mut no_body)?;
        match resp.status().as_u16() {
            200 => Ok(()),
            401 => Err(login_refused(registry, resp)),
            _ => Err(status_error(&req, resp)),
        }
    }

    /// Fetches the manifest or index `reference` names (its digest if it has one, else its tag).
    ///
    /// The bytes' sha256 must match the reference's digest and, when the registry sends one, its
    /// `Docker-Content-Digest`; the result's digest is what a pull by tag records.
    pub fn get_manifest(&self, reference: &Reference) -> Result<FetchedManifest> {
        let url = self.repo_url(reference, "manifests/", reference.object());
        let req = self
            .req(Method::GET, url, reference, Access::Pull, true)
            .header("Accept", MANIFEST_ACCEPT);
        let mut resp = self.execute(&req, &mut no_body)?;
        if resp.status() != StatusCode::OK {
            return Err(self.error_for(&req, resp, format!("manifest {reference}")));
        }
        let media_type = resp
            .header("Content-Type")
            .map(|t| t.split(';').next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        let header_digest = resp.header("Docker-Content-Digest").map(str::to_owned);
        if resp
            .header("Content-Length")
            .and_then(|l| l.parse::<u64>().ok())
            .is_some_and(|l| l > MAX_MANIFEST_BYTES)
        {
            return Err(RegistryError::ManifestTooLarge {
                reference: reference.to_string(),
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let bytes = read_limited(&mut resp, MAX_MANIFEST_BYTES).map_err(|e| match e {
            LimitedRead::TooLarge => RegistryError::ManifestTooLarge {
                reference: reference.to_string(),
                limit: MAX_MANIFEST_BYTES,
            },
            LimitedRead::Io(source) => transport(&req, source),
        })?;
        let digest = Digest::of(&bytes);
        check_reference_digest(reference, &digest, "the requested digest")?;
        if let Some(header) = header_digest.filter(|h| h.starts_with("sha256:")) {
            if header != digest.as_str() {
                return Err(RegistryError::ManifestDigestMismatch {
                    reference: reference.to_string(),
                    expected: header,
                    actual: digest,
                    against: "the registry's Docker-Content-Digest",
                });
            }
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// `HEAD` of the manifest: its digest (the registry's `Docker-Content-Digest`), media type
    /// and size, without its body. `None` when the registry sends no digest.
    pub fn resolve(&self, reference: &Reference) -> Result<Option<(Digest, String, u64)>> {
        let url = self.repo_url(reference, "manifests/", reference.object());
        let req = self
            .req(Method::HEAD, url, reference, Access::Pull, true)
            .header("Accept", MANIFEST_ACCEPT);
        let resp = self.execute(&req, &mut no_body)?;
        if resp.status() != StatusCode::OK {
            return Err(self.error_for(&req, resp, format!("manifest {reference}")));
        }
        let digest = resp.header("Docker-Content-Digest").and_then(|d| Digest::parse(d).ok());
        let media_type = resp
            .header("Content-Type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let size = resp.header("Content-Length").and_then(|l| l.parse().ok()).unwrap_or(0);
        Ok(digest.map(|d| (d, media_type, size)))
    }

    /// Streams the blob `digest` of `size` bytes from `reference`'s repository into `store`,
    /// verified against both. Redirects (to blob storage) are followed; a partial download left
    /// by an earlier attempt or process is resumed with `Range` when the server supports it,
    /// and an interrupted transfer is resumed the same way, with back-off.
    pub fn fetch_blob(&self, reference: &Reference, digest: &Digest, size: u64, store: &Store) -> Result<BlobFetch> {
        self.fetch_blob_with_progress(reference, digest, size, store, &mut |_| true)
    }

    /// [`Client::fetch_blob`], calling `progress` with the bytes held so far (resumed part
    /// included) as they arrive. When it returns false the download stops with
    /// [`RegistryError::Stopped`], what arrived kept for a later fetch to resume.
    pub fn fetch_blob_with_progress(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        store: &Store,
        progress: &mut dyn FnMut(u64) -> bool,
    ) -> Result<BlobFetch> {
        let present = BlobFetch {
            size,
            present: true,
            resumed_from: 0,
            downloaded: 0,
        };
        if store.info(digest).ok() == Some(size) {
            return Ok(present);
        }
        let blob_err = |source: StoreError| RegistryError::Blob {
            repository: reference.name(),
            digest: digest.clone(),
            source,
        };
        let key = blob_ingest_key(digest);
        // Another process fetching the same blob: wait for it, then use its blob if it made one.
        let mut ingest = store.ingest_wait(&key).map_err(blob_err)?;
        if store.info(digest).ok() == Some(size) {
            ingest.abort().map_err(blob_err)?;
            return Ok(present);
        }
        if ingest.offset() > size {
            ingest.reset().map_err(blob_err)?;
        }
        let resumed_from = ingest.offset();
        let mut downloaded = 0u64;
        let mut restarted = false;
        let mut interruptions = 0u32;
        let mut use_range = true;
        let url = self.repo_url(reference, "blobs/", digest);
        loop {
            while ingest.offset() < size {
                let offset = ingest.offset();
                let mut req = self.req(Method::GET, url.clone(), reference, Access::Pull, true);
                if offset > 0 && use_range {
                    req = req.header("Range", format!("bytes={offset}-"));
                }
                let mut resp = self.execute(&req, &mut no_body)?;
                match resp.status().as_u16() {
                    200 => {
                        if offset > 0 {
                            ingest.reset().map_err(blob_err)?;
                        }
                    }
                    206 if offset > 0 && use_range => {
                        let start = resp
                            .header("Content-Range")
                            .and_then(|r| r.strip_prefix("bytes "))
                            .and_then(|r| r.split('-').next())
                            .and_then(|s| s.parse::<u64>().ok());
                        if start != Some(offset) {
                            // A range we did not ask for: start over without ranges.
                            use_range = false;
                            ingest.reset().map_err(blob_err)?;
                            continue;
                        }
                    }
                    416 => {
                        use_range = false;
                        ingest.reset().map_err(blob_err)?;
                        continue;
                    }
                    _ => return Err(self.error_for(&req, resp, format!("blob {digest}"))),
                }
                let mut reader = resp.inner.body_mut().as_reader();
                match copy_to_ingest(&mut reader, &mut ingest, size, progress) {
                    Ok(n) => downloaded += n,
                    Err(CopyError::TooLong(n)) => {
                        let _ = ingest.abort();
                        return Err(RegistryError::Blob {
                            repository: reference.name(),
                            digest: digest.clone(),
                            source: StoreError::SizeMismatch {
                                digest: digest.clone(),
                                size: n,
                                expected: size,
                            },
                        });
                    }
                    Err(CopyError::Write(source)) => return Err(blob_err(source)),
                    Err(CopyError::Stopped) => {
                        return Err(RegistryError::Stopped {
                            digest: digest.clone(),
                            at: ingest.offset(),
                        })
                    }
                    Err(CopyError::Read(n, source)) => {
                        downloaded += n;
                        interruptions += 1;
                        if interruptions > self.config.retries {
                            return Err(transport(&req, source));
                        }
                        std::thread::sleep(self.backoff(interruptions - 1));
                        continue;
                    }
                }
                if ingest.offset() < size {
                    // The server ended the body early: resume.
                    interruptions += 1;
                    if interruptions > self.config.retries {
                        return Err(RegistryError::Protocol {
                            url: req.url.clone(),
                            reason: format!("blob body ended at {} of {size} bytes", ingest.offset()),
                        });
                    }
                    std::thread::sleep(self.backoff(interruptions - 1));
                }
            }
            match ingest.commit(Some((digest, size))) {
                Ok(_) => {
                    return Ok(BlobFetch {
                        size,
                        present: false,
                        resumed_from,
                        downloaded,
                    })
                }
                // A resumed partial may have been bad: one fresh download.
                Err(StoreError::DigestMismatch { .. }) if resumed_from > 0 && !restarted => {
                    restarted = true;
                    ingest = store.ingest_wait(&key).map_err(blob_err)?;
                    if store.info(digest).ok() == Some(size) {
                        ingest.abort().map_err(blob_err)?;
                        return Ok(present);
                    }
                    ingest.reset().map_err(blob_err)?;
                }
                Err(source) => return Err(blob_err(source)),
            }
        }
    }

    /// Reads a (small) blob into memory, verified against `digest`: configs and the like.
    pub fn get_blob_bytes(&self, reference: &Reference, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let url = self.repo_url(reference, "blobs/", digest);
        let req = self.req(Method::GET, url, reference, Access::Pull, true);
        let mut resp = self.execute(&req, &mut no_body)?;
        if resp.status() != StatusCode::OK {
            return Err(self.error_for(&req, resp, format!("blob {digest}")));
        }
        let bytes = read_limited(&mut resp, limit).map_err(|e| match e {
            LimitedRead::TooLarge => RegistryError::Protocol {
                url: req.url.clone(),
                reason: format!("blob is larger than {limit} bytes"),
            },
            LimitedRead::Io(source) => transport(&req, source),
        })?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(RegistryError::Blob {
                repository: reference.name(),
                digest: digest.clone(),
                source: StoreError::DigestMismatch {
                    expected: digest.clone(),
                    actual,
                },
            });
        }
        Ok(bytes)
    }

    /// `HEAD` of a blob: its size when the repository has it.
    pub fn blob_exists(&self, reference: &Reference, digest: &Digest) -> Result<Option<u64>> {
        let url = self.repo_url(reference, "blobs/", digest);
        let req = self.req(Method::HEAD, url, reference, Access::Push, true);
        let resp = self.execute(&req, &mut no_body)?;
        match resp.status().as_u16() {
            200 => Ok(Some(
                resp.header("Content-Length").and_then(|l| l.parse().ok()).unwrap_or(0),
            )),
            404 => Ok(None),
            _ => Err(self.error_for(&req, resp, format!("blob {digest}"))),
        }
    }

    /// Mounts the blob `digest` from repository `from` of the same registry into `reference`'s
    /// repository. `false` when the registry declined (the upload session it opened instead is
    /// cancelled).
    pub fn mount_blob(&self, reference: &Reference, digest: &Digest, from: &str) -> Result<bool> {
        match self.start_upload(reference, Some((digest, from)))? {
            None => Ok(true),
            Some(location) => {
                self.cancel_upload(reference, &location);
                Ok(false)
            }
        }
    }

    /// Pushes the blob `digest` from `store` to `reference`'s repository: nothing when the
    /// repository has it, a mount when `options.mount_from` is given and the registry agrees,
    /// else an upload (monolithic, or chunked with `options.chunk_size`). A failed upload is
    /// started again from the beginning, with back-off.
    pub fn push_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        store: &Store,
        options: &PushBlobOptions,
    ) -> Result<BlobPush> {
        let size = store.info(digest)?;
        if self.blob_exists(reference, digest)? == Some(size) {
            return Ok(BlobPush::Exists);
        }
        let mount = options.mount_from.as_deref().map(|from| (digest, from));
        let mut attempt = 0;
        loop {
            let location = match self.start_upload(reference, mount)? {
                None => return Ok(BlobPush::Mounted),
                Some(location) => location,
            };
            let result = match options.chunk_size {
                Some(chunk) => self.upload_chunked(reference, &location, digest, size, store, chunk.max(1)),
                None => self.upload_monolithic(reference, &location, digest, size, store),
            };
            match result {
                Ok(()) => return Ok(BlobPush::Uploaded),
                Err(e) if e.is_retryable() && attempt < self.config.retries => {
                    self.cancel_upload(reference, &location);
                    std::thread::sleep(self.backoff(attempt));
                    attempt += 1;
                }
                Err(e) => {
                    self.cancel_upload(reference, &location);
                    return Err(e);
                }
            }
        }
    }

    /// `PUT` a manifest (or index) of `media_type` under `reference`'s tag, or its digest when
    /// it has one (which must be the bytes' digest). Returns the digest.
    pub fn put_manifest(&self, reference: &Reference, bytes: &[u8], media_type: &str) -> Result<Digest> {
        let digest = Digest::of(bytes);
        check_reference_digest(reference, &digest, "the reference to push to")?;
        let object = reference.tag().map(str::to_owned).unwrap_or_else(|| digest.to_string());
        let url = self.repo_url(reference, "manifests/", object);
        let req = self
            .req(Method::PUT, url, reference, Access::Push, true)
            .header("Content-Type", media_type.to_owned())
            .header("Content-Length", bytes.len().to_string());
        let resp = self.execute(&req, &mut || {
            Ok(SendBody::from_owned_reader(io::Cursor::new(bytes.to_vec())))
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.error_for(&req, resp, format!("manifest {reference}")));
        }
        if let Some(header) = resp
            .header("Docker-Content-Digest")
            .filter(|h| h.starts_with("sha256:"))
        {
            if header != digest.as_str() {
                return Err(RegistryError::ManifestDigestMismatch {
                    reference: reference.to_string(),
                    expected: digest.to_string(),
                    actual: Digest::parse(header).unwrap_or_else(|_| digest.clone()),
                    against: "the manifest pushed (the registry stored other bytes)",
                });
            }
        }
        Ok(digest)
    }

    /// Every tag of `reference`'s repository, following `Link` pagination; `page_size` asks
    /// for pages of that many (`n=`).
    pub fn tags(&self, reference: &Reference, page_size: Option<usize>) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let base = self.base_url(reference.registry());
        let mut url = format!("{base}{}/tags/list", reference.repository());
        if let Some(n) = page_size {
            url.push_str(&format!("?n={n}"));
        }
        let mut tags = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            if !seen.insert(url.clone()) {
                return Err(RegistryError::Protocol {
                    url,
                    reason: "tag list pagination loops".into(),
                });
            }
            let req = self.req(Method::GET, url.clone(), reference, Access::Pull, true);
            let mut resp = self.execute(&req, &mut no_body)?;
            if resp.status() != StatusCode::OK {
                return Err(self.error_for(&req, resp, format!("tags of {}", reference.name())));
            }
            let next = resp
                .header("Link")
                .and_then(parse_next_link)
                .map(|l| resolve_url(&resp.url, &l));
            let body = read_limited(&mut resp, 16 * MAX_SMALL_BODY).map_err(|e| match e {
                LimitedRead::TooLarge => RegistryError::Protocol {
                    url: req.url.clone(),
                    reason: "tag list too large".into(),
                },
                LimitedRead::Io(source) => transport(&req, source),
            })?;
            let list: TagList = serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                url: req.url.clone(),
                reason: format!("invalid tag list: {e}"),
            })?;
            tags.extend(list.tags.unwrap_or_default());
            match next {
                Some(next) => url = next,
                None => return Ok(tags),
            }
        }
    }

    // --- uploads ---

    /// `POST /blobs/uploads/` (with `?mount=&from=` for a mount): the upload session's URL, or
    /// `None` when the blob was mounted.
    fn start_upload(&self, reference: &Reference, mount: Option<(&Digest, &str)>) -> Result<Option<String>> {
        let mut url = self.repo_url(reference, "blobs/uploads/", "");
        let access = match mount {
            Some((digest, from)) => {
                url.push_str(&format!("?mount={}&from={}", digest, query_escape(from)));
                Access::PushFrom(from)
            }
            None => Access::Push,
        };
        let req = self
            .req(Method::POST, url, reference, access, true)
            .header("Content-Length", "0");
        let resp = self.execute(&req, &mut || Ok(SendBody::none()))?;
        match resp.status().as_u16() {
            201 if mount.is_some() => Ok(None),
            202 => Ok(Some(self.location(&req, &resp)?)),
            _ => Err(self.error_for(&req, resp, "blob upload".into())),
        }
    }

    fn upload_monolithic(
        &self,
        reference: &Reference,
        location: &str,
        digest: &Digest,
        size: u64,
        store: &Store,
    ) -> Result<()> {
        let url = with_query(location, &format!("digest={digest}"));
        let req = self
            .req(Method::PUT, url, reference, Access::Push, false)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", size.to_string());
        let resp = self.execute(&req, &mut || {
            let file = store.open_blob(digest)?;
            Ok(SendBody::from_owned_reader(file.take(size)))
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.error_for(&req, resp, format!("blob {digest} upload")));
        }
        Ok(())
    }

    fn upload_chunked(
        &self,
        reference: &Reference,
        location: &str,
        digest: &Digest,
        size: u64,
        store: &Store,
        chunk: u64,
    ) -> Result<()> {
        let mut location = location.to_owned();
        let mut offset = 0u64;
        while offset < size {
            let len = chunk.min(size - offset);
            let req = self
                .req(Method::PATCH, location.clone(), reference, Access::Push, false)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{}-{}", offset, offset + len - 1))
                .header("Content-Length", len.to_string());
            let resp = self.execute(&req, &mut || {
                use std::io::{Seek, SeekFrom};
                let mut file = store.open_blob(digest)?;
                file.seek(SeekFrom::Start(offset)).map_err(|e| StoreError::Read {
                    ref_key: digest.to_string(),
                    source: e,
                })?;
                Ok(SendBody::from_owned_reader(file.take(len)))
            })?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(self.error_for(&req, resp, format!("blob {digest} chunk at {offset}")));
            }
            location = self.location(&req, &resp)?;
            offset += len;
        }
        let url = with_query(&location, &format!("digest={digest}"));
        let req = self
            .req(Method::PUT, url, reference, Access::Push, false)
            .header("Content-Length", "0");
        let resp = self.execute(&req, &mut || Ok(SendBody::none()))?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.error_for(&req, resp, format!("blob {digest} upload")));
        }
        Ok(())
    }

    /// Best effort: a session left open expires on the registry anyway.
    fn cancel_upload(&self, reference: &Reference, location: &str) {
        let req = self.req(Method::DELETE, location.to_owned(), reference, Access::Push, false);
        let _ = self.execute(&req, &mut no_body);
    }

    fn location(&self, req: &Req, resp: &Resp) -> Result<String> {
        match resp.header("Location") {
            Some(location) if !location.is_empty() => Ok(resolve_url(&resp.url, location)),
            _ => Err(RegistryError::Protocol {
                url: req.url.clone(),
                reason: format!("{} reply has no Location", resp.status()),
            }),
        }
    }

    // --- requests, authentication, retries ---

    /// `GET /v2/` of `registry`.
    fn base_req<'a>(&self, registry: &'a str) -> Req<'a> {
        get_req(self.base_url(registry), registry)
    }

    fn req<'a>(
        &self,
        method: Method,
        url: String,
        reference: &'a Reference,
        access: Access<'a>,
        retry: bool,
    ) -> Req<'a> {
        Req {
            method,
            url,
            headers: Vec::new(),
            registry: reference.registry(),
            repository: Some(reference.repository()),
            access,
            retry,
            to_realm: false,
        }
    }

    /// Sends `req` with authentication: a known challenge is answered up front; a 401 is
    /// answered once (challenge learned, or the token refreshed), then reported.
    fn execute(&self, req: &Req, body: &mut dyn FnMut() -> Result<SendBody<'static>>) -> Result<Resp> {
        let mut answered = false;
        loop {
            let authorization = self.authorization(req)?;
            let resp = self.send_with_retries_auth(req, authorization.as_deref(), body)?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if answered {
                return Err(self.unauthorized(req, resp, authorization.is_some()));
            }
            answered = true;
            let had = lock(&self.challenges).get(req.registry).cloned();
            let challenge = self.remember_challenge(req.registry, &resp)?;
            if had.as_ref() == Some(&challenge) && authorization.is_none() {
                // Nothing new to answer with (no credentials).
                return Err(self.unauthorized(req, resp, false));
            }
            // A rejected token: drop it and fetch a new one.
            lock(&self.tokens).remove(&(req.registry.to_owned(), scopes(req).join(" ")));
        }
    }

    fn remember_challenge(&self, registry: &str, resp: &Resp) -> Result<Challenge> {
        // Only the registry itself says how to authenticate to it: a 401
        // from a host a redirect led to (blob storage) is not its challenge.
        if origin(&resp.url) != origin(&self.base_url(registry)) {
            return Err(RegistryError::Unauthorized {
                registry: registry.to_owned(),
                reason: format!("401 from {}, which is not the registry", origin(&resp.url)),
            });
        }
        let header = resp
            .inner
            .headers()
            .get_all("WWW-Authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        let challenge = auth::select_challenge(&auth::parse_www_authenticate(&header)).ok_or_else(|| {
            RegistryError::Unauthorized {
                registry: registry.to_owned(),
                reason: format!("no supported authentication scheme in WWW-Authenticate {header:?}"),
            }
        })?;
        lock(&self.challenges).insert(registry.to_owned(), challenge.clone());
        Ok(challenge)
    }

    fn unauthorized(&self, req: &Req, resp: Resp, sent: bool) -> RegistryError {
        let insufficient = resp
            .inner
            .headers()
            .get_all("WWW-Authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("insufficient_scope"));
        let message = error_message(resp);
        let who = match self.credentials_for(req.registry) {
            _ if insufficient => format!("the token does not grant {}", scopes(req).join(" ")),
            Ok(Some(c)) => format!("the credentials of user {:?} were refused", c.username),
            Ok(None) if !sent => format!("no credentials for {} (log in first)", req.registry),
            Ok(None) => "anonymous access was refused".to_owned(),
            Err(e) => e.to_string(),
        };
        let repository = req.repository.map(|r| format!(" for {r}")).unwrap_or_default();
        RegistryError::Unauthorized {
            registry: req.registry.to_owned(),
            reason: format!(
                "{} {}{repository}: 401 Unauthorized: {who}{}",
                req.method,
                req.url,
                suffix(&message)
            ),
        }
    }

    /// The `Authorization` header for `req` under the registry's known challenge.
    fn authorization(&self, req: &Req) -> Result<Option<String>> {
        let challenge = lock(&self.challenges).get(req.registry).cloned();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials_for(req.registry)?.map(|c| c.basic_header())),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = self.token(req, &realm, service.as_deref())?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(explicit) = lock(&self.credentials).get(registry) {
            return Ok(explicit.clone());
        }
        match &self.config.docker_config {
            Some(config) => config.credentials(registry),
            None => Ok(None),
        }
    }

    /// A bearer token for `req`'s scopes, cached until it expires.
    fn token(&self, req: &Req, realm: &str, service: Option<&str>) -> Result<String> {
        let scopes = scopes(req);
        let key = (req.registry.to_owned(), scopes.join(" "));
        if let Some(cached) = lock(&self.tokens).get(&key) {
            if cached.expires > Instant::now() {
                return Ok(cached.token.clone());
            }
        }
        let credentials = self.credentials_for(req.registry)?;
        let resp = self.request_token(req.registry, realm, service, &scopes, None, credentials.as_ref())?;
        let (token, lifetime) = token_reply(realm, resp, credentials.as_ref())?;
        // Refreshed a little before the server's expiry.
        let expires = Instant::now() + lifetime.mul_f32(0.9);
        lock(&self.tokens).insert(
            key,
            CachedToken {
                token: token.clone(),
                expires,
            },
        );
        Ok(token)
    }

    /// `GET <realm>?service=&scope=…&account=`, with `credentials` as Basic authentication:
    /// the token server's reply, whatever its status.
    fn request_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        account: Option<&str>,
        credentials: Option<&Credentials>,
    ) -> Result<Resp> {
        let mut query = Vec::new();
        if let Some(service) = service {
            query.push(format!("service={}", query_escape(service)));
        }
        for scope in scopes {
            query.push(format!("scope={}", query_escape(scope)));
        }
        if let Some(account) = account {
            query.push(format!("account={}", query_escape(account)));
        }
        // The registry's credentials go to its token realm only over TLS,
        // unless the registry itself is plain http.
        if realm.starts_with("http://") && self.scheme(registry) == "https" {
            return Err(RegistryError::Token {
                realm: realm.to_owned(),
                reason: "the token realm is plain http while the registry is https: refusing to send credentials there"
                    .into(),
            });
        }
        let token_req = Req {
            to_realm: true,
            ..get_req(with_query(realm, &query.join("&")), registry)
        };
        self.send_with_retries_auth(
            &token_req,
            credentials.map(|c| c.basic_header()).as_deref(),
            &mut no_body,
        )
    }

    fn send_with_retries(&self, req: &Req, body: &mut dyn FnMut() -> Result<SendBody<'static>>) -> Result<Resp> {
        self.send_with_retries_auth(req, None, body)
    }

    /// Sends `req`, following redirects, retrying connection errors, 5xx and 429 with back-off
    /// when the request allows it.
    fn send_with_retries_auth(
        &self,
        req: &Req,
        authorization: Option<&str>,
        body: &mut dyn FnMut() -> Result<SendBody<'static>>,
    ) -> Result<Resp> {
        let mut attempt = 0;
        loop {
            let result = self.send_following_redirects(req, authorization, body);
            let retryable = match &result {
                Ok(resp) => {
                    let status = resp.status();
                    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
                }
                Err(e) => e.is_retryable(),
            };
            if !retryable || !req.retry || attempt >= self.config.retries {
                return result;
            }
            let mut delay = self.backoff(attempt);
            if let Ok(resp) = &result {
                if let Some(after) = resp.header("Retry-After").and_then(|s| s.trim().parse::<u64>().ok()) {
                    delay = delay.max(Duration::from_secs(after).min(self.config.max_backoff));
                }
            }
            std::thread::sleep(delay);
            attempt += 1;
        }
    }

    fn send_following_redirects(
        &self,
        req: &Req,
        authorization: Option<&str>,
        body: &mut dyn FnMut() -> Result<SendBody<'static>>,
    ) -> Result<Resp> {
        let mut url = req.url.clone();
        let mut method = req.method.clone();
        // The registry's own scheme and host, not those of `req.url`: upload
        // locations and `Link` pages come from the registry and may point
        // elsewhere (blob storage), and an https registry's credentials never
        // travel over plain http.
        let registry_origin = if req.to_realm {
            origin(&req.url).to_owned()
        } else {
            origin(&self.base_url(req.registry)).to_owned()
        };
        for _ in 0..=MAX_REDIRECTS {
            let mut builder = http::Request::builder().method(method.clone()).uri(url.as_str());
            for (name, value) in &req.headers {
                builder = builder.header(*name, value.as_str());
            }
            // Credentials never follow a redirect to another host (blob storage has its own,
            // in the URL).
            if let Some(authorization) = authorization.filter(|_| origin(&url) == registry_origin) {
                builder = builder.header("Authorization", authorization);
            }
            let request = builder.body(body()?).map_err(|e| RegistryError::Protocol {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            let resp = self.agent.run(request).map_err(|source| RegistryError::Transport {
                method: method.to_string(),
                url: url.clone(),
                source: Box::new(source),
            })?;
            let status = resp.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                if let Some(location) = resp.headers().get("Location").and_then(|v| v.to_str().ok()) {
                    url = resolve_url(&url, location);
                    if status == StatusCode::SEE_OTHER {
                        method = Method::GET;
                    }
                    continue;
                }
            }
            return Ok(Resp { inner: resp, url });
        }
        Err(RegistryError::Protocol {
            url: req.url.clone(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        self.config.backoff.saturating_mul(factor).min(self.config.max_backoff)
    }

    /// The error for an unexpected status: `NotFound` for 404, else the status with the
    /// registry's error message.
    fn error_for(&self, req: &Req, resp: Resp, what: String) -> RegistryError {
        let status = resp.status();
        let message = error_message(resp);
        if status == StatusCode::NOT_FOUND {
            return RegistryError::NotFound {
                what,
                message: message.unwrap_or_else(|| "404 Not Found".into()),
            };
        }
        status_error_with(req, status, message)
    }
}

impl<'a> Req<'a> {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Req<'a> {
        self.headers.push((name, value.into()));
        self
    }
}

/// The store ingest key a blob download writes under ([`Client::fetch_blob`]); a partial left
/// under it is resumed.
pub fn blob_ingest_key(digest: &Digest) -> String {
    format!("fetch-{digest}")
}

/// A `GET` of `url` outside any repository, retried.
fn get_req(url: String, registry: &str) -> Req<'_> {
    Req {
        method: Method::GET,
        url,
        headers: Vec::new(),
        registry,
        repository: None,
        access: Access::Pull,
        retry: true,
        to_realm: false,
    }
}

/// The token scopes of `req`.
fn scopes(req: &Req) -> Vec<String> {
    let Some(repository) = req.repository else {
        return Vec::new();
    };
    match req.access {
        Access::Pull => vec![format!("repository:{repository}:pull")],
        Access::Push => vec![format!("repository:{repository}:pull,push")],
        Access::PushFrom(from) => vec![
            format!("repository:{repository}:pull,push"),
            format!("repository:{from}:pull"),
        ],
    }
}

fn no_body() -> Result<SendBody<'static>> {
    Ok(SendBody::none())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn transport(req: &Req, source: io::Error) -> RegistryError {
    RegistryError::Transport {
        method: req.method.to_string(),
        url: req.url.clone(),
        source: Box::new(source),
    }
}

fn status_error(req: &Req, resp: Resp) -> RegistryError {
    let status = resp.status();
    status_error_with(req, status, error_message(resp))
}

fn status_error_with(req: &Req, status: StatusCode, message: Option<String>) -> RegistryError {
    RegistryError::Status {
        method: req.method.to_string(),
        url: req.url.clone(),
        status: status.as_u16(),
        message: message.unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
    }
}

fn suffix(message: &Option<String>) -> String {
    message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()
}

/// A token server's reply: the token and its lifetime, or [`RegistryError::Token`] with the
/// server's explanation when it refused.
fn token_reply(realm: &str, mut resp: Resp, credentials: Option<&Credentials>) -> Result<(String, Duration)> {
    let token_err = |reason: String| RegistryError::Token {
        realm: realm.to_owned(),
        reason,
    };
    if resp.status() != StatusCode::OK {
        let status = resp.status();
        let message = error_message(resp);
        let who = match credentials {
            Some(c) => format!(" (user {:?})", c.username),
            None => " (no credentials)".to_owned(),
        };
        return Err(token_err(format!("{status}{who}{}", suffix(&message))));
    }
    let body =
        read_limited(&mut resp, MAX_SMALL_BODY).map_err(|_| token_err("reply unreadable or too large".into()))?;
    let reply: TokenReply = serde_json::from_slice(&body).map_err(|e| token_err(format!("invalid reply: {e}")))?;
    let lifetime = Duration::from_secs(reply.expires_in.unwrap_or(60).max(60));
    let token = reply
        .token()
        .ok_or_else(|| token_err("reply has neither `token` nor `access_token`".into()))?;
    Ok((token, lifetime))
}

/// A 401 to a login: "unauthorized: " and the registry's or token server's messages, or, when
/// it gives none but the spec's generic "authentication required", what Docker says.
fn login_refused(registry: &str, resp: Resp) -> RegistryError {
    let body = error_body(resp);
    let messages: Vec<&str> = body
        .entries
        .iter()
        .map(|(_, message)| message.as_str())
        .filter(|m| !m.is_empty() && *m != "authentication required")
        .collect();
    let reason = if messages.is_empty() {
        "incorrect username or password".to_owned()
    } else {
        messages.join("; ")
    };
    RegistryError::Login {
        registry: registry.to_owned(),
        reason: format!("unauthorized: {reason}"),
    }
}

/// An error body: its (code, message) entries and its text.
struct ErrorBody {
    entries: Vec<(String, String)>,
    text: String,
}

/// Reads an error body: the Distribution API's `{"errors":[{"code","message"}]}`, or a token
/// server's `{"details"}` (Docker Hub's).
fn error_body(mut resp: Resp) -> ErrorBody {
    #[derive(Default, serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
        #[serde(default)]
        details: String,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let body = read_limited(&mut resp, 64 * 1024).unwrap_or_default();
    let parsed: Errors = serde_json::from_slice(&body).unwrap_or_default();
    let mut entries: Vec<(String, String)> = parsed.errors.into_iter().map(|e| (e.code, e.message)).collect();
    if entries.is_empty() && !parsed.details.is_empty() {
        entries.push((String::new(), parsed.details));
    }
    ErrorBody {
        entries,
        text: String::from_utf8_lossy(&body).trim().to_owned(),
    }
}

/// The registry's explanation from an error body ([`error_body`]), or the body's text.
fn error_message(resp: Resp) -> Option<String> {
    let body = error_body(resp);
    if !body.entries.is_empty() {
        let text: Vec<String> = body
            .entries
            .into_iter()
            .map(|(code, message)| match (code.is_empty(), message.is_empty()) {
                (false, false) => format!("{code}: {message}"),
                (false, true) => code,
                _ => message,
            })
            .collect();
        return Some(text.join("; "));
    }
    (!body.text.is_empty()).then(|| body.text.chars().take(300).collect())
}

enum LimitedRead {
    TooLarge,
    Io(io::Error),
}

fn read_limited(resp: &mut Resp, limit: u64) -> std::result::Result<Vec<u8>, LimitedRead> {
    let mut bytes = Vec::new();
    let reader = resp.inner.body_mut().as_reader();
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(LimitedRead::Io)?;
    if bytes.len() as u64 > limit {
        return Err(LimitedRead::TooLarge);
    }
    Ok(bytes)
}

enum CopyError {
    /// More than the expected size arrived (total so far).
    TooLong(u64),
    Write(StoreError),
    /// The connection failed after this many bytes.
    Read(u64, io::Error),
    /// The caller asked to stop.
    Stopped,
}

/// Copies the body into `ingest`, refusing more than `size` bytes in total; returns the bytes
/// copied.
fn copy_to_ingest(
    reader: &mut impl Read,
    ingest: &mut crate::store::Ingest,
    size: u64,
    progress: &mut dyn FnMut(u64) -> bool,
) -> std::result::Result<u64, CopyError> {
    use std::io::Write;
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut copied = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(copied, e)),
        };
        if ingest.offset() + n as u64 > size {
            return Err(CopyError::TooLong(ingest.offset() + n as u64));
        }
        ingest.write_all(&buf[..n]).map_err(|source| {
            CopyError::Write(StoreError::Read {
                ref_key: ingest.ref_key().to_owned(),
                source,
            })
        })?;
        copied += n as u64;
        // Asked to stop with the blob whole: nothing to stop.
        if !progress(ingest.offset()) && ingest.offset() < size {
            return Err(CopyError::Stopped);
        }
    }
}

/// `host[:port]` of an absolute URL.
/// A reference by digest names exactly these bytes.
fn check_reference_digest(reference: &Reference, digest: &Digest, against: &'static str) -> Result<()> {
    match reference.digest() {
        Some(expected) if expected != digest => Err(RegistryError::ManifestDigestMismatch {
            reference: reference.to_string(),
            expected: expected.to_string(),
            actual: digest.clone(),
            against,
        }),
        _ => Ok(()),
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    &url[..end]
}

fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Resolves `location` against `base` (absolute, host-relative, or path-relative).
pub(crate) fn resolve_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let host = authority(base);
    if let Some(stripped) = location.strip_prefix("//") {
        return format!("{scheme}://{stripped}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{host}{location}");
    }
    let path = rest[host.len()..].split(['?', '#']).next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{scheme}://{host}{dir}{location}")
}

fn with_query(url: &str, query: &str) -> String {
    if query.is_empty() {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `rel="next"` target of a `Link` header.
fn parse_next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let client = Client::new(ClientConfig {
            insecure_registries: vec!["reg.lan:5000".into(), "other.lan".into()],
            ..ClientConfig::default()
        });
        for (registry, scheme) in [
            ("localhost", "http"),
            ("localhost:5000", "http"),
            ("127.0.0.1:5000", "http"),
            ("127.1.2.3", "http"),
            ("[::1]:5000", "http"),
            ("reg.lan:5000", "http"),
            ("reg.lan", "https"),
            ("other.lan:443", "http"),
            ("docker.io", "https"),
            ("128.0.0.1:5000", "https"),
            ("localhost.example.com", "https"),
        ] {
            assert_eq!(client.scheme(registry), scheme, "{registry}");
        }
        assert_eq!(client.base_url("docker.io"), "https://registry-1.docker.io/v2/");
        assert_eq!(client.base_url("localhost:5000"), "http://localhost:5000/v2/");
    }

    #[test]
    fn urls_and_links() {
        assert_eq!(
            resolve_url("http://h:1/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u?x=1"),
            "http://h:1/v2/a/blobs/uploads/u?x=1"
        );
        assert_eq!(resolve_url("http://h:1/v2/a/b?q", "https://s3/x"), "https://s3/x");
        assert_eq!(resolve_url("http://h:1/v2/a/b?q", "c"), "http://h:1/v2/a/c");
        assert_eq!(resolve_url("https://h/v2/", "//cdn/x"), "https://cdn/x");
        assert_eq!(
            with_query("http://h/u?_state=x", "digest=d"),
            "http://h/u?_state=x&digest=d"
        );
        assert_eq!(with_query("http://h/u", "digest=d"), "http://h/u?digest=d");
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(
            parse_next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#),
            Some("/v2/a/tags/list?n=2&last=b".into())
        );
        assert_eq!(parse_next_link(r#"<http://x/y>; rel="prev""#), None);
        assert_eq!(authority("http://[::1]:5000/v2/"), "[::1]:5000");
        assert_eq!(host_without_port("[::1]:5000"), "::1");
        assert_eq!(host_without_port("h:5000"), "h");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let client = Client::new(ClientConfig {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
            ..ClientConfig::default()
        });
        let delays: Vec<u128> = (0..5).map(|a| client.backoff(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 700, 700]);
        assert_eq!(client.backoff(100), Duration::from_millis(700));
    }
}
