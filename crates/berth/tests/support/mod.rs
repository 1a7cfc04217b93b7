//! Shared by the CLI's end-to-end tests: the `berth` binary on a private root, images built
//! here from local files and pushed to a real registry (Debian's docker-registry on 127.0.0.1).
#![allow(dead_code)]

pub mod docker;
pub mod env;
#[path = "../../../berth-image/tests/common/mod.rs"]
pub mod layers;
#[path = "../../../berth-image/tests/registry_support/mod.rs"]
pub mod registry;

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use berth_image::format::media_type;
use berth_image::registry::{Client, ClientConfig, PushBlobOptions, Reference};
use berth_image::store::{Digest, Store};
use layers::Layer;

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// Root and registry needed; otherwise say why not and let the test pass.
pub fn ready(test: &str) -> bool {
    !registry::skip(test)
}

/// Ready to run containers: root, Debian's busybox-static, and `berth-monitor` built next to
/// `berth`; otherwise say why not (or fail, for the missing monitor) and let the test pass.
pub fn containers_ready(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping {test}: not root");
        return false;
    }
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipping {test}: /bin/busybox missing (apt-get install busybox-static)");
        return false;
    }
    let monitor = Path::new(BERTH).with_file_name("berth-monitor");
    assert!(
        monitor.exists(),
        "{} is missing: `cargo build -p berth-monitor` (cargo test -p berth does not build it)",
        monitor.display()
    );
    true
}

/// A layer with /bin/busybox and a symlink for each of its applets, to build images on.
pub fn busybox_layer() -> Layer {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    let mut layer = Layer::new()
        .dir("bin", 0o755, (0, 0))
        .file("bin/busybox", &busybox, 0o755, (0, 0));
    for applet in String::from_utf8(list.stdout).unwrap().split_whitespace() {
        if applet != "busybox" {
            layer = layer.symlink(&format!("bin/{applet}"), "busybox");
        }
    }
    layer
}

/// A child whose stdout goes to a file that can be read while it runs.
pub struct Background {
    pub child: Child,
    out: std::fs::File,
}

impl Background {
    pub fn spawn(mut cmd: Command) -> Background {
        let out = tempfile::tempfile().unwrap();
        let child = cmd
            .stdout(out.try_clone().unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Background { child, out }
    }

    pub fn stdout(&mut self) -> String {
        let mut s = String::new();
        self.out.rewind().unwrap();
        self.out.read_to_string(&mut s).unwrap();
        s
    }

    pub fn wait_for_output(&mut self, needle: &str) {
        let mut seen = String::new();
        let found = docker::engines::wait_for(std::time::Duration::from_secs(20), || {
            seen = self.stdout();
            seen.contains(needle)
        });
        assert!(found, "{needle:?} not in {seen:?}");
    }

    pub fn wait(&mut self) -> std::process::ExitStatus {
        docker::engines::wait_timeout(&mut self.child, std::time::Duration::from_secs(60)).expect("finished")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A private store: `--root` in a temp dir; optionally with a network namespace of its own
/// standing in for the host's, so the bridges and nftables tables berth makes there go away
/// with it and tests running side by side do not share `berth0`.
pub struct Root {
    pub dir: tempfile::TempDir,
    /// The name of the test's "host" network namespace (under /run/netns).
    pub netns: Option<String>,
    /// The test's "host" mount namespace, when it has one: a file bind-mounted in a private
    /// directory of its own, outside `dir` (whose mounts are checked for leftovers).
    pub mntns: Option<(tempfile::TempDir, PathBuf)>,
}

impl Root {
    pub fn new() -> Root {
        Root {
            dir: tempfile::tempdir().unwrap(),
            netns: None,
            mntns: None,
        }
    }

    /// A store whose berth runs in a new network namespace (loopback up), made with `ip
    /// netns add` and deleted when the Root is dropped.
    pub fn with_netns() -> Root {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "berth-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        for args in [
            vec!["netns", "add", &name],
            vec!["-n", &name, "link", "set", "lo", "up"],
        ] {
            let out = Command::new("ip").args(&args).output().expect("ip (iproute2)");
            succeeded(&format!("ip {args:?}"), out, "");
        }
        Root {
            dir: tempfile::tempdir().unwrap(),
            netns: Some(name),
            mntns: None,
        }
    }

    /// [`Root::with_netns`], and a mount namespace of its own standing in for a host with
    /// only cgroup v2: the v1 hierarchies unmounted and the v2 one on /sys/fs/cgroup, where
    /// only the controllers no v1 hierarchy holds can be enabled.
    pub fn with_netns_on_cgroup2_only() -> Root {
        let mut root = Root::with_netns();
        let holder = tempfile::tempdir().unwrap();
        let file = holder.path().join("mnt");
        std::fs::write(&file, "").unwrap();
        let h = holder.path().to_str().unwrap().to_owned();
        // Set first: a failure below leaves its unmounting to drop.
        root.mntns = Some((holder, file.clone()));
        let h = h.as_str();
        let to_file = format!("--mount={}", file.display());
        let cgroup2 = "umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup";
        // The namespace file must sit on a private mount, or binding it would make a loop.
        for (prog, args) in [
            ("mount", vec!["--bind", h, h]),
            ("mount", vec!["--make-private", h]),
            (
                "unshare",
                vec![&to_file, "--propagation", "private", "sh", "-c", cgroup2],
            ),
        ] {
            let out = Command::new(prog).args(&args).output().expect(prog);
            succeeded(&format!("{prog} {args:?}"), out, "");
        }
        root
    }

    /// The file of this Root's network namespace, if it has one.
    pub fn netns_path(&self) -> Option<PathBuf> {
        self.netns.as_ref().map(|n| PathBuf::from("/run/netns").join(n))
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `program` run in the test's "host" namespaces, those it has: its mount namespace and
    /// its network namespace (nsenter enters them and execs `program`, same pid).
    pub fn on_host(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        if self.netns.is_none() && self.mntns.is_none() {
            return Command::new(program);
        }
        let mut c = Command::new("nsenter");
        if let Some((_, file)) = &self.mntns {
            // Entering a mount namespace moves to its root: stay where we are.
            let cwd = std::env::current_dir().unwrap();
            c.arg(format!("--mount={}", file.display()))
                .arg(format!("--wd={}", cwd.display()));
        }
        if let Some(n) = &self.netns {
            c.arg(format!("--net=/run/netns/{n}"));
        }
        c.arg("--").arg(program);
        c
    }

    pub fn cmd(&self) -> Command {
        let mut c = self.on_host(BERTH);
        c.arg("--root")
            .arg(self.path())
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .stdin(Stdio::null());
        c
    }

    /// Mount points at or under `dir` in the test's "host" mount namespace.
    pub fn mounts_under(&self, dir: &Path) -> Vec<String> {
        if self.mntns.is_none() {
            return docker::engines::mounts_under(dir);
        }
        let mut cat = self.on_host("cat");
        cat.arg("/proc/self/mountinfo");
        let out = succeeded("reading the test's mount table", cat.output().unwrap(), "");
        docker::engines::mounts_in(&text(&out.stdout), dir)
    }

    /// Detaches the mount at `path` in the test's "host" mount namespace.
    pub fn unmount(&self, path: &str) {
        let _ = self.on_host("umount").args(["-l", path]).output();
    }

    /// Runs `berth ARGS`; returns the output whatever the exit.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs `berth ARGS`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        String::from_utf8(self.ok_bytes(args)).unwrap()
    }

    /// Runs `berth ARGS`, which must succeed; returns stdout as bytes.
    pub fn ok_bytes(&self, args: &[&str]) -> Vec<u8> {
        succeeded(&format!("berth {args:?}"), self.run(args), "").stdout
    }

    /// Runs `berth ARGS`, which must fail; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "berth {args:?} succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Files under `sub` of the root (recursively), relative, sorted.
    pub fn files(&self, sub: &str) -> Vec<String> {
        let base = self.path().join(sub);
        let mut out = Vec::new();
        walk(&base, &base, &mut out);
        out.sort();
        out
    }

    /// What is left of images in the store: blobs, ingests and snapshot directories.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .files("content/blobs")
            .into_iter()
            .map(|f| format!("blob {f}"))
            .collect();
        left.extend(self.files("content/ingest").into_iter().map(|f| format!("ingest {f}")));
        for driver in ["overlay", "vfs"] {
            let snaps = self.path().join(driver).join("snapshots");
            if let Ok(entries) = std::fs::read_dir(&snaps) {
                left.extend(
                    entries
                        .flatten()
                        .map(|e| format!("{driver} snapshot {}", e.file_name().to_string_lossy())),
                );
            }
        }
        left
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if let Some(n) = &self.netns {
            let _ = Command::new("ip").args(["netns", "delete", n]).output();
        }
        // The namespace goes with its file's mount (no process is left in it).
        if let Some((holder, file)) = &self.mntns {
            let _ = nix::mount::umount2(file, nix::mount::MntFlags::MNT_DETACH);
            let _ = nix::mount::umount2(holder.path(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// The output of `what` (a command, named in the message), which must have succeeded;
/// `context` (a daemon's log, say) goes into the message too.
pub fn succeeded(what: &str, out: Output, context: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}\n{context}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(base, &p, out);
        } else {
            out.push(p.strip_prefix(base).unwrap().display().to_string());
        }
    }
}

/// A root filesystem tarball with busybox, as `berth import` takes it.
pub fn busybox_rootfs_tar() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static");
    Layer::new()
        .dir("bin", 0o755, (0, 0))
        .file("bin/busybox", &busybox, 0o755, (0, 0))
        .symlink("bin/sh", "busybox")
        .symlink("bin/cat", "busybox")
        .symlink("bin/ls", "busybox")
        .dir("etc", 0o755, (0, 0))
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644, (0, 0))
        .finish()
}

/// Incompressible bytes from a seed.
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A multi-layer image made here: busybox, then a layer that deletes a file (whiteout),
/// replaces a directory's content (opaque) and adds files, then `extra` layers of noise.
pub struct Fixture {
    pub store: Store,
    _dir: tempfile::TempDir,
    pub layers: Vec<(Digest, u64)>,
    pub config: (Digest, u64),
    pub architecture: String,
}

impl Fixture {
    pub fn new(architecture: &str, extra: &[usize]) -> Fixture {
        let base = busybox_rootfs_tar();
        let l1 = Layer::new()
            .dir("etc", 0o755, (0, 0))
            .file("etc/gone", b"deleted by layer 2", 0o644, (0, 0))
            .dir("data", 0o755, (0, 0))
            .file("data/old", b"hidden by the opaque dir", 0o644, (0, 0))
            .finish();
        let l2 = Layer::new()
            .whiteout("etc/gone")
            .file("etc/new", b"added by layer 2", 0o644, (0, 0))
            .dir("data", 0o755, (0, 0))
            .opaque("data")
            .file("data/fresh", b"after the opaque marker", 0o644, (0, 0))
            .file("etc/arch", architecture.as_bytes(), 0o644, (0, 0))
            .finish();
        let mut tars = vec![base, l1, l2];
        for (i, size) in extra.iter().enumerate() {
            tars.push(
                Layer::new()
                    .file(&format!("noise{i}"), &noise(*size, i as u32 + 7), 0o644, (0, 0))
                    .finish(),
            );
        }
        Fixture::from_layers(architecture, &tars)
    }

    /// An image of the given layer tarballs (gzipped here).
    pub fn from_layers(architecture: &str, tars: &[Vec<u8>]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for tar in tars {
            diff_ids.push(layers::sha256(tar));
            let gz = layers::gzip(tar);
            layers.push(store.write_blob(None, &gz[..]).unwrap());
        }
        let history: Vec<String> = (0..tars.len())
            .map(|i| {
                format!(
                    r#"{{"created":"2024-01-0{}T00:00:00Z","created_by":"step {i}"}}"#,
                    i + 1
                )
            })
            .collect();
        let config = format!(
            r#"{{"created":"2024-01-05T00:00:00Z","architecture":"{architecture}","os":"linux","config":{{"Cmd":["sh"],"Env":["PATH=/bin"],"Labels":{{"fixture":"yes"}}}},"rootfs":{{"type":"layers","diff_ids":[{}]}},"history":[{}]}}"#,
            diff_ids
                .iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(","),
            history.join(",")
        );
        let config = store.write_blob(None, config.as_bytes()).unwrap();
        Fixture {
            store,
            _dir: dir,
            layers,
            config,
            architecture: architecture.into(),
        }
    }

    /// The image manifest, Docker's media types or OCI's.
    pub fn manifest(&self, docker: bool) -> (Vec<u8>, &'static str) {
        layers::image_manifest(docker, &self.config, &self.layers)
    }

    /// Pushes the blobs and the manifest under `target`; returns the manifest's digest.
    pub fn push(&self, target: &Reference, docker: bool) -> (Digest, usize) {
        let client = client();
        for (digest, _) in self.layers.iter().chain([&self.config]) {
            client
                .push_blob(target, digest, &self.store, &PushBlobOptions::default())
                .unwrap();
        }
        let (bytes, mt) = self.manifest(docker);
        (client.put_manifest(target, &bytes, mt).unwrap(), bytes.len())
    }

    /// The image ID berth must record.
    pub fn id(&self) -> String {
        self.config.0.to_string()
    }

    /// The image as one tarball, layers gzipped as in the registry: an OCI image layout whose
    /// manifest is named `name` (`org.opencontainers.image.ref.name`, what `skopeo copy
    /// oci-archive:FILE:NAME` looks for), or Docker's form (`manifest.json` with `RepoTags:
    /// [name]`, what `docker load` reads).
    pub fn archive(&self, name: &str, form: ArchiveForm) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_mtime(1_600_000_000);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, path, data).unwrap();
        };
        let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
        let mut written = std::collections::HashSet::new();
        for (digest, _) in self.layers.iter().chain([&self.config]) {
            // Once each, as `docker save` writes a layer an image lists twice.
            if written.insert(digest) {
                add(&blob(digest), &std::fs::read(self.store.blob_path(digest)).unwrap());
            }
        }
        match form {
            ArchiveForm::Oci => {
                let (manifest, mt) = self.manifest(false);
                let digest = Digest::of(&manifest);
                add(&blob(&digest), &manifest);
                add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
                let index = format!(
                    r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{mt}","digest":"{digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"{name}"}}}}]}}"#,
                    manifest.len()
                );
                add("index.json", index.as_bytes());
            }
            ArchiveForm::Docker => {
                let layers: Vec<String> = self.layers.iter().map(|(d, _)| format!("\"{}\"", blob(d))).collect();
                let manifest = format!(
                    r#"[{{"Config":"{}","RepoTags":["{name}"],"Layers":[{}]}}]"#,
                    blob(&self.config.0),
                    layers.join(",")
                );
                add("manifest.json", manifest.as_bytes());
            }
        }
        b.into_inner().unwrap()
    }
}

/// The layouts `Fixture::archive` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveForm {
    Oci,
    Docker,
}

/// Checks a root filesystem tar (`berth image export`, `docker export`) holds a [`Fixture`]'s
/// merged layers: busybox, layer 2's file, its whiteout and its opaque directory applied.
/// Returns the entries for further checks.
pub fn assert_fixture_rootfs(tar: &[u8]) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    let entries = tar_entries(tar);
    let names = || entries.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        entries.get("etc/new").cloned().flatten().as_deref(),
        Some(&b"added by layer 2"[..]),
        "{:?}",
        names()
    );
    assert!(!entries.contains_key("etc/gone"), "whiteout not applied: {:?}", names());
    assert!(
        !entries.contains_key("data/old"),
        "opaque directory not applied: {:?}",
        names()
    );
    assert_eq!(
        entries.get("data/fresh").cloned().flatten().as_deref(),
        Some(&b"after the opaque marker"[..])
    );
    assert_eq!(
        entries.get("bin/busybox").cloned().flatten().as_deref(),
        Some(&std::fs::read("/bin/busybox").unwrap()[..])
    );
    entries
}

/// Docker's name for the host's architecture (what a Fixture must say to run here).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Pushes an OCI index of `images` (each already pushed by digest) under `target`.
pub fn push_index(target: &Reference, images: &[(&Fixture, Digest, usize)]) -> Digest {
    let entries: Vec<String> = images
        .iter()
        .map(|(f, d, size)| {
            format!(
                r#"{{"mediaType":"{}","digest":"{d}","size":{size},"platform":{{"os":"linux","architecture":"{}"}}}}"#,
                media_type::OCI_MANIFEST,
                f.architecture
            )
        })
        .collect();
    let json = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}}"#,
        media_type::OCI_INDEX,
        entries.join(",")
    );
    client()
        .put_manifest(target, json.as_bytes(), media_type::OCI_INDEX)
        .unwrap()
}

pub fn client() -> Client {
    Client::new(ClientConfig::default())
}

pub fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

/// The entries of a tar (names without a leading `./`) with their contents for regular files.
pub fn tar_entries(bytes: &[u8]) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    use std::io::Read;
    let mut out = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let name = name.trim_start_matches("./").trim_end_matches('/').to_owned();
        if name.is_empty() || name == "." {
            continue;
        }
        let data = if entry.header().entry_type().is_file() {
            let mut v = Vec::new();
            entry.read_to_end(&mut v).unwrap();
            Some(v)
        } else {
            None
        };
        out.insert(name, data);
    }
    out
}
