//! A busybox image built from local files, as one tarball that is both an
//! OCI image layout (for `ctr image import`) and a Docker archive (for
//! `docker load`): nothing is pulled from a registry.

use std::path::Path;
use std::process::Command;

use serde_json::json;

/// The tag `docker load` gives the image.
pub const BUSYBOX_IMAGE: &str = "berth-test/busybox:latest";
/// The same image as containerd names it after `ctr image import`.
pub const BUSYBOX_IMAGE_CTR: &str = "docker.io/berth-test/busybox:latest";

/// Digest and size of a blob written under `blobs/sha256/`.
struct Blob {
    digest: String,
    size: u64,
}

impl Blob {
    fn path(&self) -> String {
        format!("blobs/sha256/{}", self.digest.trim_start_matches("sha256:"))
    }
}

/// Build the busybox image tarball at `dest` from /bin/busybox. The tarball
/// holds:
/// - `blobs/sha256/<hex>`: the layer (an uncompressed tar of the rootfs),
///   the image config and the OCI manifest;
/// - `oci-layout` and `index.json`, whose one manifest is annotated with
///   `io.containerd.image.name` and `org.opencontainers.image.ref.name`;
/// - `manifest.json`, Docker's form: Config, RepoTags, Layers by path.
pub fn busybox_image_tarball(dest: &Path) {
    let work = tempfile::Builder::new().prefix("berth-e2e-image-").tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    let list = Command::new(super::busybox().unwrap()).arg("--list").output().unwrap();
    assert!(list.status.success(), "busybox --list failed");
    let list = String::from_utf8(list.stdout).unwrap();
    let applets: Vec<&str> = list.lines().filter(|a| !a.is_empty()).collect();
    super::busybox_rootfs(&rootfs, &applets);

    let out = work.path().join("image");
    std::fs::create_dir_all(out.join("blobs/sha256")).unwrap();
    let layer_tar = work.path().join("layer.tar");
    tar(&rootfs, &["bin", "dev", "etc", "proc", "sys", "tmp"], &layer_tar);
    let layer = add_blob(&out, &std::fs::read(&layer_tar).unwrap());

    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "WorkingDir": "/"
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "berth-runc tests: busybox from busybox-static"}]
    });
    let config = add_blob(&out, &serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.digest, "size": layer.size}]
    });
    let manifest = add_blob(&out, &serde_json::to_vec(&manifest).unwrap());

    let write =
        |name: &str, v: serde_json::Value| std::fs::write(out.join(name), serde_json::to_vec(&v).unwrap()).unwrap();
    write("oci-layout", json!({"imageLayoutVersion": "1.0.0"}));
    write(
        "index.json",
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest.digest,
                "size": manifest.size,
                "annotations": {
                    "io.containerd.image.name": BUSYBOX_IMAGE_CTR,
                    "org.opencontainers.image.ref.name": "latest"
                }
            }]
        }),
    );
    write(
        "manifest.json",
        json!([{"Config": config.path(), "RepoTags": [BUSYBOX_IMAGE], "Layers": [layer.path()]}]),
    );
    tar(&out, &["oci-layout", "index.json", "manifest.json", "blobs"], dest);
}

/// Store `data` as a blob named by its sha256.
fn add_blob(image: &Path, data: &[u8]) -> Blob {
    let tmp = image.join("blob.tmp");
    std::fs::write(&tmp, data).unwrap();
    let hex = sha256_file(&tmp);
    std::fs::rename(&tmp, image.join("blobs/sha256").join(&hex)).unwrap();
    Blob {
        digest: format!("sha256:{hex}"),
        size: data.len() as u64,
    }
}

/// Hex sha256 of a file, by `sha256sum` (coreutils).
pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum {} failed", path.display());
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text.split_whitespace().next().unwrap().to_string();
    assert_eq!(hex.len(), 64, "sha256sum said {text:?}");
    hex
}

/// A reproducible tar of `names` under `dir`: sorted, owned by root,
/// mtime 0, no "./" prefixes.
fn tar(dir: &Path, names: &[&str], dest: &Path) {
    let status = Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-C",
        ])
        .arg(dir)
        .arg("-cf")
        .arg(dest)
        .args(names)
        .status()
        .unwrap();
    assert!(status.success(), "tar of {} failed", dir.display());
}
