//! Images move between berth, Docker 20.10 and skopeo (tier 3, as root): through a real
//! registry on 127.0.0.1 (Debian's docker-registry) and through `save`/`load` archives, with
//! a private dockerd (support::docker) stopped by its pid at the end of each test, which then
//! checks that nothing is left: no process, mount, cgroup or host directory of its making.
//! The images are made here (support::Fixture: busybox, a whiteout, an opaque directory);
//! nothing comes from outside the machine.

mod support;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use support::docker::engines::{mounts_under, processes_of};
use support::docker::Docker;
use support::registry::{Auth, Registry};
use support::{assert_fixture_rootfs, host_arch, reference, ArchiveForm, Fixture, Root};

/// One dockerd at a time: they share fixed host directories (/run/docker, /run/containerd/s)
/// that each removes again only if it made them, and two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// A registry, a dockerd trusting it, and a berth store. Dropped in this order: dockerd
/// first (it unmounts what it mounted in its data root only while that is still there).
struct Interop {
    dk: Docker,
    reg: Registry,
    root: Root,
    tmp: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl Interop {
    fn start(test: &str) -> Option<Interop> {
        if !support::docker::ready_for(test) {
            return None;
        }
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let tmp = tempfile::Builder::new().prefix("berth-dkimg-").tempdir().unwrap();
        let reg = Registry::start(Auth::None);
        let t0 = Instant::now();
        let cgroup_parent = format!("berth-dkimg-{}-{}", std::process::id(), &test[..test.len().min(24)]);
        let dk = Docker::with_registry(&tmp.path().join("docker"), &cgroup_parent, &reg.addr);
        eprintln!("{test}: registry on {}, dockerd up in {:?}", reg.addr, t0.elapsed());
        Some(Interop {
            dk,
            reg,
            root: Root::new(),
            tmp,
            _serial: serial,
        })
    }

    fn path(&self, name: &str) -> String {
        self.tmp.path().join(name).to_str().unwrap().to_owned()
    }

    /// `docker run --rm` of `image` with no network, never pulling; returns stdout.
    fn docker_run(&self, image: &str, cmd: &[&str]) -> String {
        let mut args = vec!["run", "--rm", "--pull", "never", "--network", "none", image];
        args.extend_from_slice(cmd);
        self.dk.ok(&args)
    }

    /// Stops dockerd by its pid and checks that nothing of the test is left: dockerd exited on
    /// SIGTERM, no process (dockerd, its containerd, shims, containers) or mount under the
    /// test's directories, no cgroup, no host directory dockerd made.
    fn finish(mut self) {
        let left = self.dk.shutdown();
        left.assert_clean("dockerd");
        for dir in [self.tmp.path(), self.root.dir.path()] {
            assert_eq!(
                mounts_under(dir),
                Vec::<String>::new(),
                "mounts left under {}",
                dir.display()
            );
            let procs = processes_of(dir, &self.dk.cgroup_parent);
            assert_eq!(procs, Vec::<String>::new(), "processes left of {}", dir.display());
        }
        assert!(
            !Path::new(&self.dk.dir.join("docker.pid")).exists(),
            "dockerd left its pid file"
        );
    }
}

/// The digest in a push's last line (`TAG: digest: sha256:… size: N`, berth's and Docker's).
fn pushed_digest(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.contains(": digest: "))
        .unwrap_or_else(|| panic!("no digest line in {out}"));
    let digest = line
        .split(": digest: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{line}");
    digest.to_owned()
}

fn skopeo(args: &[&str]) -> String {
    let out = support::docker::engines::output(
        std::process::Command::new("skopeo").args(args),
        support::docker::engines::CMD_TIMEOUT,
    );
    let out = support::succeeded(&format!("skopeo {args:?}"), out, "");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// sha256 of a file, as `sha256:HEX`.
fn file_digest(path: &Path) -> String {
    support::layers::sha256(&std::fs::read(path).unwrap())
}

/// (a) An image made here, pulled by berth and pushed by berth to another repository: Docker
/// pulls it (same digest, same image ID) and runs it; skopeo inspects it (same digest and
/// layers) and copies it to an OCI layout whose blobs are the same bytes.
#[test]
fn docker_and_skopeo_pull_what_berth_pushed() {
    let Some(t) = Interop::start("docker_and_skopeo_pull_what_berth_pushed") else {
        return;
    };
    let fixture = Fixture::new(host_arch(), &[200_000]);
    let source = format!("{}/fixture:1", t.reg.addr);
    fixture.push(&reference(&source), true);
    t.root.ok(&["pull", &source]);
    let app = format!("{}/from-berth:1", t.reg.addr);
    t.root.ok(&["tag", &source, &app]);
    let out = t.root.ok(&["push", &app]);
    let digest = pushed_digest(&out);

    // docker pull: the digest berth pushed, the image ID berth has.
    let out = t.dk.ok(&["pull", &app]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert_eq!(t.dk.inspect(&app, "{{.Id}}"), fixture.id());
    assert_eq!(
        t.dk.inspect(&app, "{{json .RepoDigests}}"),
        format!(r#"["{}/from-berth@{digest}"]"#, t.reg.addr)
    );
    assert_eq!(t.dk.inspect(&app, "{{len .RootFS.Layers}}"), "4");
    // docker run: the merged layers as berth pushed them, whiteout and opaque dir included.
    assert_eq!(t.docker_run(&app, &["cat", "/etc/new"]), "added by layer 2");
    assert_eq!(
        t.docker_run(
            &app,
            &[
                "sh",
                "-c",
                "ls /data; test -e /etc/gone || echo gone; busybox wc -c < /noise0"
            ]
        ),
        "fresh\ngone\n200000\n"
    );

    // skopeo inspect: same digest, same layer blobs.
    let v = json(&skopeo(&["inspect", "--tls-verify=false", &format!("docker://{app}")]));
    assert_eq!(v["Digest"], digest.as_str());
    let layers: Vec<String> = fixture.layers.iter().map(|(d, _)| d.to_string()).collect();
    assert_eq!(v["Layers"], serde_json::json!(layers));
    assert_eq!(v["Labels"]["fixture"], "yes");

    // skopeo copy to an OCI layout: Docker's manifest and config become OCI ones (other
    // digests, same layers in the config), the layers stay the same bytes.
    let layout = t.path("oci");
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{app}"),
        &format!("oci:{layout}:app"),
    ]);
    let index = json(&std::fs::read_to_string(format!("{layout}/index.json")).unwrap());
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "app"
    );
    let blob = |d: &str| {
        Path::new(&layout)
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    assert_eq!(file_digest(&blob(manifest_digest)), manifest_digest);
    let manifest = json(&std::fs::read_to_string(blob(manifest_digest)).unwrap());
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    assert_eq!(file_digest(&blob(config_digest)), config_digest);
    let config = json(&std::fs::read_to_string(blob(config_digest)).unwrap());
    let original = json(&std::fs::read_to_string(fixture.store.blob_path(&fixture.config.0)).unwrap());
    assert_eq!(config["rootfs"], original["rootfs"]);
    assert_eq!(config["config"]["Labels"]["fixture"], "yes");
    let copied: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(copied, layers);
    for d in copied {
        assert_eq!(file_digest(&blob(d)), d);
    }
    t.finish();
}

/// (b) Images pushed by Docker (loaded, tagged, pushed: Docker compresses the layers anew)
/// and by skopeo (from an OCI archive, blobs as they are): berth pulls both, records the
/// digests they pushed and the same image ID, and exports the right files.
#[test]
fn berth_pulls_what_docker_and_skopeo_pushed() {
    let Some(t) = Interop::start("berth_pulls_what_docker_and_skopeo_pushed") else {
        return;
    };
    let fixture = Fixture::new(host_arch(), &[150_000]);

    // Docker: load a Docker archive made here, tag, push.
    let archive = t.path("fixture-docker.tar");
    std::fs::write(&archive, fixture.archive("berth-test/fixture:1", ArchiveForm::Docker)).unwrap();
    let out = t.dk.ok(&["load", "-i", &archive]);
    assert!(out.contains("Loaded image: berth-test/fixture:1"), "{out}");
    let by_docker = format!("{}/from-docker:1", t.reg.addr);
    t.dk.ok(&["tag", "berth-test/fixture:1", &by_docker]);
    let docker_digest = pushed_digest(&t.dk.ok(&["push", &by_docker]));
    let manifest = json(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{by_docker}"),
    ]));
    // Docker pushed its own compression of the layers: not the fixture's blobs.
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_ne!(manifest["layers"][0]["digest"], fixture.layers[0].0.as_str());

    let out = t.root.ok(&["pull", &by_docker]);
    assert!(out.contains(&format!("Digest: {docker_digest}")), "{out}");
    let doc = json(&t.root.ok(&["inspect", &by_docker]));
    assert_eq!(doc[0]["Id"], fixture.id());
    assert_eq!(
        doc[0]["RepoDigests"][0],
        format!("{}/from-docker@{docker_digest}", t.reg.addr)
    );
    let files = assert_fixture_rootfs(&t.root.ok_bytes(&["image", "export", &by_docker]));
    assert_eq!(files["noise0"].as_deref(), Some(&support::noise(150_000, 7)[..]));

    // skopeo: an OCI archive made here, copied to the registry as it is.
    let archive = t.path("fixture-oci.tar");
    std::fs::write(&archive, fixture.archive("fixture", ArchiveForm::Oci)).unwrap();
    let by_skopeo = format!("{}/from-skopeo:1", t.reg.addr);
    let digest_file = t.path("skopeo.digest");
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--digestfile",
        &digest_file,
        &format!("oci-archive:{archive}:fixture"),
        &format!("docker://{by_skopeo}"),
    ]);
    let skopeo_digest = std::fs::read_to_string(&digest_file).unwrap();
    let (manifest, _) = fixture.manifest(false);
    assert_eq!(
        skopeo_digest,
        support::layers::sha256(&manifest),
        "skopeo changed the manifest"
    );

    // Into a fresh store, so that every layer is unpacked from skopeo's blobs.
    let fresh = Root::new();
    let out = fresh.ok(&["pull", &by_skopeo]);
    assert!(out.contains(&format!("Digest: {skopeo_digest}")), "{out}");
    for (layer, _) in &fixture.layers {
        assert!(out.contains(&format!("{}: Pull complete", &layer.hex()[..12])), "{out}");
    }
    let doc = json(&fresh.ok(&["inspect", &by_skopeo]));
    assert_eq!(doc[0]["Id"], fixture.id());
    let files = assert_fixture_rootfs(&fresh.ok_bytes(&["image", "export", &by_skopeo]));
    assert_eq!(files["noise0"].as_deref(), Some(&support::noise(150_000, 7)[..]));
    assert_eq!(
        mounts_under(fresh.dir.path()),
        Vec::<String>::new(),
        "berth left mounts"
    );
    t.finish();
}

/// (c) `berth save` in each format into `docker load`, and `docker save` into `berth load`.
/// Docker 20.10's `docker load` reads only Docker's form (`manifest.json`): `--format docker`
/// and `combined` (both forms in one tar) load and run; the OCI layout alone is refused.
/// An image Docker made itself (`docker commit`, with a whiteout in its layer), saved by
/// Docker, loads into berth with Docker's image ID and files.
#[test]
fn save_and_load_between_berth_and_docker() {
    let Some(t) = Interop::start("save_and_load_between_berth_and_docker") else {
        return;
    };
    let fixture = Fixture::new(host_arch(), &[]);
    let name = format!("{}/fixture:1", t.reg.addr);
    fixture.push(&reference(&name), true);
    t.root.ok(&["pull", &name]);

    for format in ["combined", "docker", "oci"] {
        let archive = t.path(&format!("berth-{format}.tar"));
        t.root.ok(&["save", "--format", format, "-o", &archive, &name]);
        let out = t.dk.run(&["load", "-i", &archive]);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        if format == "oci" {
            // Docker 20.10 takes a tar without manifest.json for its legacy layout (one
            // directory per layer, with a `json` file) and fails on the first one.
            assert!(!out.status.success(), "docker load of an OCI layout: {stdout}");
            assert!(stderr.contains("no such file or directory"), "{stderr}");
            assert_eq!(t.dk.ok(&["image", "ls", "-q"]), "", "{format}");
            continue;
        }
        assert!(out.status.success(), "docker load of --format {format}: {stderr}");
        assert!(stdout.contains(&format!("Loaded image: {name}")), "{format}: {stdout}");
        assert_eq!(t.dk.inspect(&name, "{{.Id}}"), fixture.id(), "{format}");
        assert_eq!(
            t.docker_run(&name, &["cat", "/etc/new"]),
            "added by layer 2",
            "{format}"
        );
        assert_eq!(
            t.docker_run(&name, &["sh", "-c", "ls /data; test -e /etc/gone || echo gone"]),
            "fresh\ngone\n",
            "{format}"
        );
        t.dk.ok(&["rmi", &name]);
    }

    // Docker's own image: a container's changes committed (a new file, a deletion: a
    // whiteout in Docker's layer), saved by Docker, loaded by berth.
    let archive = t.path("berth-docker.tar");
    t.dk.ok(&["load", "-i", &archive]);
    t.dk.ok(&[
        "run",
        "--pull",
        "never",
        "--network",
        "none",
        "--name",
        "committer",
        &name,
        "sh",
        "-c",
        "echo made by docker > /etc/committed; busybox rm /data/fresh",
    ]);
    t.dk.ok(&["commit", "-c", "ENV FROM_DOCKER=1", "committer", "committed:1"]);
    t.dk.ok(&["rm", "committer"]);
    let docker_id = t.dk.inspect("committed:1", "{{.Id}}");
    let saved = t.path("docker-save.tar");
    t.dk.ok(&["save", "-o", &saved, "committed:1"]);

    let other = Root::new();
    let out = other.ok(&["load", "-i", &saved]);
    assert!(out.contains("Loaded image: committed:1"), "{out}");
    assert_eq!(other.ok(&["images", "-q", "--no-trunc"]).trim(), docker_id);
    let doc = json(&other.ok(&["inspect", "committed:1"]));
    assert_eq!(doc[0]["Id"], docker_id.as_str());
    assert!(
        doc[0]["Config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("FROM_DOCKER=1")),
        "{doc}"
    );
    assert_eq!(doc[0]["RootFS"]["Layers"].as_array().unwrap().len(), 4);
    let files = support::tar_entries(&other.ok_bytes(&["image", "export", "committed:1"]));
    assert_eq!(files["etc/committed"].as_deref(), Some(&b"made by docker\n"[..]));
    assert!(!files.contains_key("data/fresh"), "{:?}", files.keys());
    assert!(files.contains_key("data"), "{:?}", files.keys());
    assert_eq!(files["etc/new"].as_deref(), Some(&b"added by layer 2"[..]));
    assert!(!files.contains_key("etc/gone") && !files.contains_key("data/old"));
    assert_eq!(
        mounts_under(other.dir.path()),
        Vec::<String>::new(),
        "berth left mounts"
    );
    t.finish();
}

/// (d) The image events of one script, from berth's journal and from dockerd: the same
/// actions in the same order, with the same actor, name and labels (image IDs, which differ
/// between the engines for an import, compared as `<id>`).
#[test]
fn image_events_match_dockers() {
    let Some(t) = Interop::start("image_events_match_dockers") else {
        return;
    };
    let rootfs = t.path("rootfs.tar");
    std::fs::write(&rootfs, support::busybox_rootfs_tar()).unwrap();
    let archive = |engine: &str| t.path(&format!("{engine}-saved.tar"));
    let pushed = format!("{}/events:1", t.reg.addr);
    let script = |engine: &str| -> Vec<Vec<String>> {
        let archive = archive(engine);
        let steps = [
            vec!["import", "-c", "LABEL team=infra", &rootfs, "ev:1"],
            vec!["tag", "ev:1", "ev:2"],
            vec!["tag", "ev:1", &pushed],
            vec!["push", &pushed],
            vec!["save", "-o", &archive, "ev:1"],
            vec!["rmi", "ev:2"],
            vec!["rmi", &pushed],
            vec!["rmi", "ev:1"],
            vec!["load", "-i", &archive],
            vec!["pull", &pushed],
            vec!["rmi", "-f", "ev:1"],
            // By ID (the engine's, from its import): every name goes, its digest too.
            vec!["rmi", "<id>"],
            vec!["image", "prune", "-a", "-f"],
        ];
        steps
            .iter()
            .map(|s| s.iter().map(|a| a.to_string()).collect())
            .collect()
    };
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let mut ids: Vec<String> = Vec::new();
    // What each `rmi` printed, digests made `<sha256>` (the engines' images differ).
    let mut removals: [Vec<String>; 2] = Default::default();
    for (i, engine) in ["berth", "docker"].into_iter().enumerate() {
        for step in script(engine) {
            let id: String = ids.last().cloned().unwrap_or_default();
            let args: Vec<&str> = step
                .iter()
                .map(|a| if a == "<id>" { id.as_str() } else { a.as_str() })
                .collect();
            let out = if i == 0 { t.root.ok(&args) } else { t.dk.ok(&args) };
            if step[0] == "import" {
                ids.push(out.trim().to_owned());
            }
            if step[0] == "rmi" {
                let mut lines: Vec<String> = out.lines().map(hide_sha256).collect();
                lines.sort();
                removals[i].push(lines.join("\n"));
            }
        }
    }
    assert_eq!(removals[0], removals[1], "rmi's output");
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let query = [
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{json .}}",
    ];
    let normal = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| {
                let mut e = json(l);
                // Times differ; the rest must not.
                let obj = e.as_object_mut().unwrap();
                obj.remove("time");
                obj.remove("timeNano");
                // What a prune reclaims is counted differently (blobs and snapshots here).
                if let Some(r) = obj["Actor"]["Attributes"].get_mut("reclaimed") {
                    *r = serde_json::json!("<bytes>");
                }
                let mut s = e.to_string();
                for id in &ids {
                    s = s.replace(id.as_str(), "<id>");
                }
                s
            })
            .collect()
    };
    let berth = normal(&t.root.ok(&query));
    let docker = normal(&t.dk.ok(&query));
    assert!(docker.len() >= 12, "{docker:#?}");
    assert_eq!(berth, docker);
    t.finish();
}

/// `text` with every `sha256:<64 hex>` made `<sha256>`.
fn hide_sha256(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("sha256:") {
        out.push_str(&rest[..i]);
        let hex = &rest[i + 7..];
        let n = hex.bytes().take_while(u8::is_ascii_hexdigit).count();
        if n == 64 {
            out.push_str("<sha256>");
            rest = &hex[64..];
        } else {
            out.push_str("sha256:");
            rest = hex;
        }
    }
    out.push_str(rest);
    out
}
