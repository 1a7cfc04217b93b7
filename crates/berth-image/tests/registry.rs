//! The registry client against a real registry (Debian's `docker-registry` on 127.0.0.1, plain,
//! with htpasswd and with token auth) and against a scripted server for redirects, retries,
//! resumes and pagination.

mod common;
mod registry_support;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_image::format::Manifest;
use berth_image::registry::{
    blob_ingest_key, BlobPush, Challenge, Client, ClientConfig, Credentials, DockerConfig, Ping, PushBlobOptions,
    Reference, RegistryError,
};
use berth_image::store::{Digest, Store};
use common::Layer;
use registry_support::{skip, Auth, FakeServer, Registry, Response};

fn client() -> Client {
    Client::new(ClientConfig {
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..ClientConfig::default()
    })
}

fn reference(registry: &str, rest: &str) -> Reference {
    Reference::parse(&format!("{registry}/{rest}")).unwrap()
}

/// A config and two gzip layers in a store, and manifests of both families naming them.
struct Image {
    store: Store,
    _dir: tempfile::TempDir,
    config: (Digest, u64),
    layers: Vec<(Digest, u64)>,
}

impl Image {
    fn new() -> Image {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let l1 = common::gzip(
            &Layer::new()
                .dir("etc", 0o755, (0, 0))
                .file("etc/a", b"one", 0o644, (0, 0))
                .finish(),
        );
        // Incompressible enough to need several chunks.
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let l2 = common::gzip(&Layer::new().file("big", &noise, 0o644, (0, 0)).finish());
        let layers: Vec<_> = [l1, l2]
            .iter()
            .map(|l| store.write_blob(None, &l[..]).unwrap())
            .collect();
        let config_json = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}","{}"]}},"config":{{}}}}"#,
            Digest::of(b"x"),
            Digest::of(b"y")
        );
        let config = store.write_blob(None, config_json.as_bytes()).unwrap();
        Image {
            store,
            _dir: dir,
            config,
            layers,
        }
    }

    fn manifest(&self, docker: bool) -> (Vec<u8>, &'static str) {
        common::image_manifest(docker, &self.config, &self.layers)
    }

    fn blobs(&self) -> Vec<(Digest, u64)> {
        let mut all = vec![self.config.clone()];
        all.extend(self.layers.iter().cloned());
        all
    }

    fn push(&self, client: &Client, target: &Reference, docker: bool, options: &PushBlobOptions) -> Digest {
        for (digest, _) in self.blobs() {
            client.push_blob(target, &digest, &self.store, options).unwrap();
        }
        let (bytes, mt) = self.manifest(docker);
        client.put_manifest(target, &bytes, mt).unwrap()
    }
}

/// Pulls `reference` into a fresh store and checks every blob against `image`.
fn pull_and_compare(client: &Client, reference: &Reference, image: &Image, docker: bool) -> Digest {
    let fetched = client.get_manifest(reference).unwrap();
    let (bytes, mt) = image.manifest(docker);
    assert_eq!(fetched.bytes, bytes);
    assert_eq!(fetched.media_type, mt);
    assert_eq!(fetched.digest, Digest::of(&bytes));
    let Manifest::Single(manifest) = Manifest::parse(&fetched.bytes, Some(&fetched.media_type)).unwrap() else {
        panic!("not an image manifest");
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut descriptors = vec![manifest.config.clone()];
    descriptors.extend(manifest.layers.iter().cloned());
    for d in &descriptors {
        let fetch = client.fetch_blob(reference, &d.digest, d.size, &store).unwrap();
        assert!(!fetch.present && fetch.resumed_from == 0 && fetch.downloaded == d.size);
        assert_eq!(store.verify(&d.digest).unwrap(), d.size);
        // Twice: already there, nothing downloaded.
        assert!(client.fetch_blob(reference, &d.digest, d.size, &store).unwrap().present);
    }
    let pulled: Vec<_> = store.list().unwrap().into_iter().collect();
    let mut expected = image.blobs();
    expected.sort();
    assert_eq!(pulled, expected);
    fetched.digest
}

#[test]
fn push_and_pull_oci_and_docker_images() {
    if skip("push_and_pull_oci_and_docker_images") {
        return;
    }
    let registry = Registry::start(Auth::None);
    let client = client();
    assert_eq!(client.ping(&registry.addr).unwrap(), Ping::Open);
    let image = Image::new();
    for (docker, repo) in [(false, "test/oci:v1"), (true, "test/docker:v1")] {
        let target = reference(&registry.addr, repo);
        for (digest, _) in image.blobs() {
            assert_eq!(client.blob_exists(&target, &digest).unwrap(), None);
        }
        let pushed = image.push(&client, &target, docker, &PushBlobOptions::default());
        for (digest, size) in image.blobs() {
            assert_eq!(client.blob_exists(&target, &digest).unwrap(), Some(size));
            // Pushing again finds it there.
            assert_eq!(
                client
                    .push_blob(&target, &digest, &image.store, &PushBlobOptions::default())
                    .unwrap(),
                BlobPush::Exists
            );
        }
        // By tag: the digest is recorded.
        let by_tag = pull_and_compare(&client, &target, &image, docker);
        assert_eq!(by_tag, pushed);
        // By digest: verified.
        let by_digest = pull_and_compare(&client, &target.with_digest(pushed.clone()), &image, docker);
        assert_eq!(by_digest, pushed);
        let pinned = Reference::parse(&format!("{}/{}@{pushed}", registry.addr, target.repository())).unwrap();
        assert_eq!(client.get_manifest(&pinned).unwrap().digest, pushed);
        let (head_digest, head_type, head_size) = client.resolve(&target).unwrap().unwrap();
        assert_eq!(head_digest, pushed);
        assert_eq!(head_type, image.manifest(docker).1);
        assert_eq!(head_size, image.manifest(docker).0.len() as u64);
        // Small blobs can be read into memory.
        let config = client.get_blob_bytes(&target, &image.config.0, 1 << 20).unwrap();
        assert_eq!(Digest::of(&config), image.config.0);
    }
    // Unknown tag and blob: not found, named.
    let missing = reference(&registry.addr, "test/oci:nope");
    let err = client.get_manifest(&missing).unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("manifest") && err.to_string().contains(":nope"),
        "{err}"
    );
    let err = client
        .fetch_blob(&missing, &Digest::of(b"absent"), 6, &image.store)
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
}

#[test]
fn tampered_content_and_wrong_digests_are_refused() {
    if skip("tampered_content_and_wrong_digests_are_refused") {
        return;
    }
    let registry = Registry::start(Auth::None);
    let client = client();
    let image = Image::new();
    let target = reference(&registry.addr, "tamper/me:v1");
    let pushed = image.push(&client, &target, false, &PushBlobOptions::default());

    // A digest the registry does not have.
    let other = target.with_digest(Digest::of(b"other"));
    let err = client.get_manifest(&other).unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");

    // Same-length bytes swapped in the registry's storage: the layer...
    let (layer, size) = image.layers[0].clone();
    let path = registry.blob_data(layer.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = client.fetch_blob(&target, &layer, size, &store).unwrap_err();
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(
        text.contains(&format!("blob {layer}")) && text.contains("content has digest"),
        "{text}"
    );
    assert!(!store.has(&layer) && store.list().unwrap().is_empty());
    // ... and the manifest, by digest and by tag.
    let path = registry.blob_data(pushed.hex());
    // Still a valid manifest for the registry, but other bytes.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, [b"{ ", &bytes[1..]].concat()).unwrap();
    let err = client.get_manifest(&target.with_digest(pushed.clone())).unwrap_err();
    assert!(matches!(err, RegistryError::ManifestDigestMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("but the requested digest is {pushed}")),
        "{err}"
    );
    let err = client.get_manifest(&target).unwrap_err();
    assert!(err.to_string().contains("Docker-Content-Digest"), "{err}");
}

#[test]
fn cross_repository_mount_chunked_upload_tags_and_resume() {
    if skip("cross_repository_mount_chunked_upload_tags_and_resume") {
        return;
    }
    let registry = Registry::start(Auth::None);
    let client = client();
    let image = Image::new();
    // Chunked.
    let source = reference(&registry.addr, "src/app:v1");
    let chunked = PushBlobOptions {
        chunk_size: Some(64 * 1024),
        ..PushBlobOptions::default()
    };
    let pushed = image.push(&client, &source, false, &chunked);
    assert_eq!(pull_and_compare(&client, &source, &image, false), pushed);

    // Mounts.
    let target = reference(&registry.addr, "dst/app:v1");
    let (layer, size) = image.layers[1].clone();
    assert!(client.mount_blob(&target, &layer, source.repository()).unwrap());
    assert_eq!(client.blob_exists(&target, &layer).unwrap(), Some(size));
    let mount = PushBlobOptions {
        mount_from: Some(source.repository().to_owned()),
        ..PushBlobOptions::default()
    };
    assert_eq!(
        client
            .push_blob(&target, &image.config.0, &image.store, &mount)
            .unwrap(),
        BlobPush::Mounted
    );
    assert_eq!(
        client.push_blob(&target, &layer, &image.store, &mount).unwrap(),
        BlobPush::Exists
    );
    // From a repository without the blob: declined, then uploaded.
    let elsewhere = PushBlobOptions {
        mount_from: Some("nowhere/x".into()),
        ..PushBlobOptions::default()
    };
    assert!(!client.mount_blob(&target, &image.layers[0].0, "nowhere/x").unwrap());
    assert_eq!(
        client
            .push_blob(&target, &image.layers[0].0, &image.store, &elsewhere)
            .unwrap(),
        BlobPush::Uploaded
    );

    // Tags.
    let (bytes, mt) = image.manifest(false);
    for tag in ["b", "a", "e", "c", "d"] {
        client.put_manifest(&target.with_tag(tag).unwrap(), &bytes, mt).unwrap();
    }
    let mut tags = client.tags(&target, None).unwrap();
    tags.sort();
    assert_eq!(tags, ["a", "b", "c", "d", "e"]);
    let mut paged = client.tags(&target, Some(2)).unwrap();
    paged.sort();
    assert_eq!(paged, tags);
    // Push by digest.
    let by_digest = target.with_digest(Digest::of(&bytes));
    assert_eq!(client.put_manifest(&by_digest, &bytes, mt).unwrap(), Digest::of(&bytes));
    let err = client
        .put_manifest(&target.with_digest(Digest::of(b"x")), &bytes, mt)
        .unwrap_err();
    assert!(matches!(err, RegistryError::ManifestDigestMismatch { .. }), "{err}");

    // Resume: a partial ingest left by an earlier pull is continued with Range.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let full = std::fs::read(image.store.blob_path(&layer)).unwrap();
    let mut ingest = store.ingest(&blob_ingest_key(&layer)).unwrap();
    ingest.write_all(&full[..1000]).unwrap();
    drop(ingest);
    let fetch = client.fetch_blob(&target, &layer, size, &store).unwrap();
    assert_eq!((fetch.resumed_from, fetch.downloaded), (1000, size - 1000));
    assert_eq!(store.verify(&layer).unwrap(), size);
    // A bad partial: the resumed blob does not verify, so it is downloaded again whole.
    store.delete(&layer).unwrap();
    let mut ingest = store.ingest(&blob_ingest_key(&layer)).unwrap();
    ingest.write_all(&vec![0u8; 1000]).unwrap();
    drop(ingest);
    let fetch = client.fetch_blob(&target, &layer, size, &store).unwrap();
    assert_eq!(fetch.resumed_from, 1000);
    assert_eq!(store.verify(&layer).unwrap(), size);
    // Stopped by the caller (a pull whose unpacking failed): what arrived stays, and the next
    // fetch resumes from it. A blob of 1 MB: more than one read's worth (128 KiB).
    let big: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    let (big_blob, big_size) = image.store.write_blob(None, &big[..]).unwrap();
    client
        .push_blob(&target, &big_blob, &image.store, &PushBlobOptions::default())
        .unwrap();
    let err = client
        .fetch_blob_with_progress(&target, &big_blob, big_size, &store, &mut |_| false)
        .unwrap_err();
    let RegistryError::Stopped { at, .. } = err else {
        panic!("{err}")
    };
    assert!(at > 0 && at < big_size, "stopped at {at} of {big_size}");
    let fetch = client.fetch_blob(&target, &big_blob, big_size, &store).unwrap();
    assert_eq!((fetch.resumed_from, fetch.downloaded), (at, big_size - at));
    assert_eq!(store.verify(&big_blob).unwrap(), big_size);
    // Asked to stop once the blob is whole: it is kept.
    store.delete(&big_blob).unwrap();
    let mut calls = 0;
    let fetch = client.fetch_blob_with_progress(&target, &big_blob, big_size, &store, &mut |held| {
        calls += 1;
        held < big_size
    });
    assert!(fetch.is_ok() && calls > 1, "{fetch:?} after {calls} calls");
}

/// A registry with htpasswd authentication: user alice, password "wonder land". `None` when
/// `test` cannot run here.
fn basic_auth_registry(test: &str) -> Option<Registry> {
    if skip(test) {
        return None;
    }
    Some(Registry::start(Auth::Basic {
        user: "alice".into(),
        password: "wonder land".into(),
    }))
}

/// A client reading credentials from the Docker config file at `path`.
fn client_with_docker_config(path: &std::path::Path) -> Client {
    Client::new(ClientConfig {
        docker_config: Some(DockerConfig::load(path).unwrap()),
        ..ClientConfig::default()
    })
}

#[test]
fn basic_auth() {
    let Some(registry) = basic_auth_registry("basic_auth") else {
        return;
    };
    let image = Image::new();
    let target = reference(&registry.addr, "private/app:v1");

    let anonymous = client();
    assert_eq!(anonymous.ping(&registry.addr).unwrap(), Ping::Auth(Challenge::Basic));
    let err = anonymous
        .push_blob(&target, &image.config.0, &image.store, &PushBlobOptions::default())
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("401 Unauthorized") && text.contains(&format!("no credentials for {}", registry.addr)),
        "{text}"
    );
    let err = anonymous.get_manifest(&target).unwrap_err();
    assert!(err.to_string().contains("no credentials"), "{err}");

    let wrong = client();
    wrong.set_credentials(&registry.addr, Some(Credentials::new("alice", "nope")));
    let err = wrong.get_manifest(&target).unwrap_err();
    assert!(
        err.to_string().contains("credentials of user \"alice\" were refused"),
        "{err}"
    );

    // Credentials from a Docker config file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6d29uZGVyIGxhbmQ="}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let client = client_with_docker_config(&path);
    let pushed = image.push(&client, &target, true, &PushBlobOptions::default());
    assert_eq!(pull_and_compare(&client, &target, &image, true), pushed);
    assert_eq!(client.tags(&target, None).unwrap(), ["v1"]);
}

/// base64url without padding.
fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An RS256 JWT the registry accepts: signed by `key`, with `cert` (DER) in `x5c`.
fn sign_token(dir: &std::path::Path, claims: &str) -> String {
    use base64::Engine as _;
    let der = std::fs::read(dir.join("cert.der")).unwrap();
    let header = format!(
        r#"{{"typ":"JWT","alg":"RS256","x5c":["{}"]}}"#,
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    let signing_input = format!("{}.{}", b64url(header.as_bytes()), b64url(claims.as_bytes()));
    let input = dir.join("input");
    std::fs::write(&input, &signing_input).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("key.pem"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    format!("{signing_input}.{}", b64url(&out.stdout))
}

/// A registry with token authentication, its token server (a scripted server granting alice,
/// password `pw`, pull and push on `tok/app`) and the number of tokens it issued. `None` when
/// the test cannot run here.
struct TokenAuth {
    registry: Registry,
    token_server: FakeServer,
    issued: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

fn token_auth(test: &str) -> Option<TokenAuth> {
    if skip(test) {
        return None;
    }
    if std::process::Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipping {test}: no openssl to sign tokens");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=berth-test-token",
        ])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let status = std::process::Command::new("openssl")
        .args(["x509", "-outform", "der", "-in"])
        .arg(dir.path().join("cert.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.der"))
        .status()
        .unwrap();
    assert!(status.success());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = format!(
        r#"{{"iss":"berth-issuer","sub":"alice","aud":"berth-registry","exp":{},"nbf":{},"iat":{},"jti":"1","access":[{{"type":"repository","name":"tok/app","actions":["pull","push"]}}]}}"#,
        now + 3600,
        now - 60,
        now - 60
    );
    let token = sign_token(dir.path(), &claims);
    // The token server: answers `access_token` to alice only.
    let issued = Arc::new(AtomicUsize::new(0));
    let token_server = {
        let issued = issued.clone();
        FakeServer::start(move |req| {
            // "alice:pw"
            if req.header("authorization") != Some("Basic YWxpY2U6cHc=") {
                return Response::new(401).body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"who are you"}]}"#);
            }
            issued.fetch_add(1, Ordering::SeqCst);
            Response::new(200).body(format!(r#"{{"access_token":"{token}","expires_in":300}}"#))
        })
    };
    let registry = Registry::start(Auth::Token {
        realm: format!("http://{}/token", token_server.addr),
        service: "berth-registry".into(),
        issuer: "berth-issuer".into(),
        cert: dir.path().join("cert.pem"),
    });
    Some(TokenAuth {
        registry,
        token_server,
        issued,
        _dir: dir,
    })
}

#[test]
fn bearer_token_auth() {
    let Some(TokenAuth {
        registry,
        token_server,
        issued,
        _dir,
    }) = token_auth("bearer_token_auth")
    else {
        return;
    };
    let target = reference(&registry.addr, "tok/app:v1");
    let image = Image::new();

    let anonymous = client();
    let err = anonymous.get_manifest(&target).unwrap_err();
    assert!(matches!(err, RegistryError::Token { .. }), "{err}");
    assert!(
        err.to_string().contains("who are you") && err.to_string().contains("no credentials"),
        "{err}"
    );

    let client = client();
    match client.ping(&registry.addr).unwrap() {
        Ping::Auth(Challenge::Bearer { realm, service, .. }) => {
            assert_eq!(realm, format!("http://{}/token", token_server.addr));
            assert_eq!(service.as_deref(), Some("berth-registry"));
        }
        other => panic!("{other:?}"),
    }
    client.set_credentials(&registry.addr, Some(Credentials::new("alice", "pw")));
    let pushed = image.push(&client, &target, false, &PushBlobOptions::default());
    assert_eq!(pull_and_compare(&client, &target, &image, false), pushed);
    // One token per scope, cached.
    assert_eq!(issued.load(Ordering::SeqCst), 2, "{:#?}", token_server.requests());
    let targets: Vec<String> = token_server.requests().iter().map(|r| r.target.clone()).collect();
    assert!(
        targets.contains(&"/token?service=berth-registry&scope=repository%3Atok%2Fapp%3Apull%2Cpush".to_owned()),
        "{targets:?}"
    );
    assert!(
        targets.contains(&"/token?service=berth-registry&scope=repository%3Atok%2Fapp%3Apull".to_owned()),
        "{targets:?}"
    );
    // The token does not cover other repositories.
    let err = client
        .get_manifest(&reference(&registry.addr, "tok/other:v1"))
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("the token does not grant repository:tok/other:pull"),
        "{err}"
    );
}

#[test]
fn login_with_basic_auth_then_use_the_stored_credentials() {
    let Some(registry) = basic_auth_registry("login_with_basic_auth_then_use_the_stored_credentials") else {
        return;
    };
    let right = Credentials::new("alice", "wonder land");
    client().login(&registry.addr, &right).unwrap();
    for wrong in [
        Credentials::new("alice", "nope"),
        Credentials::new("bob", "wonder land"),
    ] {
        let err = client().login(&registry.addr, &wrong).unwrap_err();
        assert!(matches!(err, RegistryError::Login { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "login to {}: unauthorized: incorrect username or password",
                registry.addr
            )
        );
    }

    // What `berth login` then does: keep them in Docker's file, where pulls and pushes find them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".docker/config.json");
    DockerConfig::load(&path)
        .unwrap()
        .store_credentials(&registry.addr, &right)
        .unwrap();
    let client = client_with_docker_config(&path);
    let target = reference(&registry.addr, "private/app:v1");
    let image = Image::new();
    let pushed = image.push(&client, &target, false, &PushBlobOptions::default());
    assert_eq!(client.resolve(&target).unwrap().map(|r| r.0), Some(pushed));
    // And `berth logout`.
    assert!(DockerConfig::load(&path)
        .unwrap()
        .erase_credentials(&registry.addr)
        .unwrap());
    let config = DockerConfig::load(&path).unwrap();
    assert_eq!(config.credentials(&registry.addr).unwrap(), None);
}

#[test]
fn login_with_bearer_tokens() {
    let Some(auth) = token_auth("login_with_bearer_tokens") else {
        return;
    };
    let addr = &auth.registry.addr;
    client().login(addr, &Credentials::new("alice", "pw")).unwrap();
    assert_eq!(auth.issued.load(Ordering::SeqCst), 1);
    let err = client().login(addr, &Credentials::new("alice", "nope")).unwrap_err();
    assert!(matches!(err, RegistryError::Login { .. }), "{err:?}");
    // The token server's own explanation.
    assert_eq!(err.to_string(), format!("login to {addr}: unauthorized: who are you"));
    // As Docker asks: no scope, the challenge's service, the account.
    let targets: Vec<String> = auth.token_server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, ["/token?service=berth-registry&account=alice"; 2]);
}

#[test]
fn login_to_an_open_registry() {
    if skip("login_to_an_open_registry") {
        return;
    }
    let registry = Registry::start(Auth::None);
    // Docker accepts any credentials where none are asked for.
    client()
        .login(&registry.addr, &Credentials::new("anyone", "anything"))
        .unwrap();
}

#[test]
fn login_against_a_scripted_registry() {
    // Basic: the registry's explanation of a refusal is kept.
    let basic = FakeServer::start(|req| match req.header("authorization") {
        // "u:p"
        Some("Basic dTpw") => Response::new(200),
        Some(_) => Response::new(401)
            .header("WWW-Authenticate", r#"Basic realm="r""#)
            .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"account locked"}]}"#),
        None => Response::new(401).header("WWW-Authenticate", r#"Basic realm="r""#),
    });
    client().login(&basic.addr, &Credentials::new("u", "p")).unwrap();
    let err = client().login(&basic.addr, &Credentials::new("u", "x")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("login to {}: unauthorized: account locked", basic.addr)
    );

    // Bearer: a token the registry then refuses is no login; neither is a registry that is not
    // one.
    let token_server = FakeServer::start(|_| Response::new(200).body(r#"{"token":"t"}"#));
    let realm = format!("http://{}/token", token_server.addr);
    let bearer = FakeServer::start(move |req| match req.header("authorization") {
        Some("Bearer t") => {
            Response::new(401).body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"token revoked"}]}"#)
        }
        _ => Response::new(401).header("WWW-Authenticate", format!(r#"Bearer realm="{realm}""#)),
    });
    let err = client().login(&bearer.addr, &Credentials::new("u", "p")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("login to {}: unauthorized: token revoked", bearer.addr)
    );
    // No service in the challenge: none asked for.
    assert_eq!(token_server.requests()[0].target, "/token?account=u");
    assert_eq!(token_server.requests()[0].header("authorization"), Some("Basic dTpw"));
    let not_a_registry = FakeServer::start(|_| Response::new(404));
    let err = client()
        .login(&not_a_registry.addr, &Credentials::new("u", "p"))
        .unwrap_err();
    assert!(matches!(err, RegistryError::Status { status: 404, .. }), "{err}");
}

#[test]
fn redirects_retries_and_pagination_against_a_scripted_server() {
    let blob = b"blob stored elsewhere".to_vec();
    let digest = Digest::of(&blob);
    // Blob storage on another host: must not see the registry's credentials.
    let storage = {
        let blob = blob.clone();
        FakeServer::start(move |req| match req.header("range") {
            Some(range) => {
                let start: usize = range
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                Response::new(206)
                    .header(
                        "Content-Range",
                        format!("bytes {start}-{}/{}", blob.len() - 1, blob.len()),
                    )
                    .body(blob[start..].to_vec())
            }
            // The first full download breaks off after 5 bytes.
            None if req.target.contains("cut") => {
                let mut r = Response::new(200).body(blob.clone());
                r.cut_after = Some(5);
                r
            }
            None => Response::new(200).body(blob.clone()),
        })
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = {
        let calls = calls.clone();
        let storage = storage.addr.clone();
        FakeServer::start(move |req| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let path = req.target.as_str();
            if path == "/v2/" {
                return Response::new(401).header("WWW-Authenticate", r#"Basic realm="x""#);
            }
            if req.header("authorization").is_none() {
                return Response::new(401).header("WWW-Authenticate", r#"Basic realm="x""#);
            }
            match path {
                p if p.starts_with("/v2/r/blobs/") => {
                    Response::new(307).header("Location", format!("http://{storage}/data?cut"))
                }
                p if p.starts_with("/v2/s/blobs/") => {
                    // Relative redirect on the same host, then storage.
                    Response::new(302).header("Location", "/elsewhere/blob")
                }
                "/elsewhere/blob" => Response::new(302).header("Location", format!("http://{storage}/data")),
                "/v2/busy/tags/list" if n % 2 == 0 => Response::new(503),
                "/v2/busy/tags/list" => Response::new(429).header("Retry-After", "0"),
                "/v2/r/tags/list?n=2" => Response::new(200)
                    .header("Link", r#"</v2/r/tags/list?n=2&last=b>; rel="next""#)
                    .body(r#"{"name":"r","tags":["a","b"]}"#),
                "/v2/r/tags/list?n=2&last=b" => Response::new(200)
                    .header("Link", r#"</v2/r/tags/list?n=2&last=d>; rel="next""#)
                    .body(r#"{"name":"r","tags":["c","d"]}"#),
                "/v2/r/tags/list?n=2&last=d" => Response::new(200).body(r#"{"name":"r","tags":["e"]}"#),
                "/v2/bad/manifests/v1" => {
                    Response::new(400).body(r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#)
                }
                _ => Response::new(404)
                    .body(r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#),
            }
        })
    };
    let client = client();
    client.set_credentials(&registry.addr, Some(Credentials::new("u", "p")));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    // Redirect to storage; the body breaks off and is resumed with Range from storage.
    let r = reference(&registry.addr, "r:latest");
    let fetch = client.fetch_blob(&r, &digest, blob.len() as u64, &store).unwrap();
    assert_eq!((fetch.resumed_from, fetch.downloaded), (0, blob.len() as u64));
    assert_eq!(store.verify(&digest).unwrap(), blob.len() as u64);
    let storage_requests = storage.requests();
    assert!(storage_requests.len() >= 2, "{storage_requests:#?}");
    assert!(storage_requests.iter().all(|r| r.header("authorization").is_none()));
    assert_eq!(storage_requests[1].header("range"), Some("bytes=5-"));

    // Relative redirects, then storage.
    let s = reference(&registry.addr, "s:latest");
    store.delete(&digest).unwrap();
    client.fetch_blob(&s, &digest, blob.len() as u64, &store).unwrap();
    assert!(store.has(&digest));

    // A blob longer than announced is cut off and nothing is kept.
    store.delete(&digest).unwrap();
    let err = client.fetch_blob(&s, &digest, 4, &store).unwrap_err();
    assert!(format!("{:?}", err).contains("SizeMismatch"), "{err:?}");
    assert!(!store.has(&digest) && store.list().unwrap().is_empty());

    // Pagination with Link.
    let tags = client.tags(&r, Some(2)).unwrap();
    assert_eq!(tags, ["a", "b", "c", "d", "e"]);

    // 503 and 429 are retried; after the retries the status is reported.
    let before = calls.load(Ordering::SeqCst);
    let err = client
        .tags(&reference(&registry.addr, "busy:latest"), None)
        .unwrap_err();
    assert!(matches!(err, RegistryError::Status { status: 503 | 429, .. }), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst) - before, 5, "1 try + 4 retries");
    // 4xx is not retried, and the registry's message is in the error.
    let before = calls.load(Ordering::SeqCst);
    let err = client.get_manifest(&reference(&registry.addr, "bad:v1")).unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst) - before, 1);
    assert!(
        err.to_string().contains("400 MANIFEST_INVALID: manifest invalid"),
        "{err}"
    );
    let err = client
        .tags(&reference(&registry.addr, "unknown:latest"), None)
        .unwrap_err();
    assert!(err.to_string().contains("NAME_UNKNOWN"), "{err}");

    // Connection refused is retried, then reported with the URL.
    let port = registry_support::free_port();
    let err = client.ping(&format!("127.0.0.1:{port}")).unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("GET http://127.0.0.1:{port}/v2/")),
        "{err}"
    );
}
