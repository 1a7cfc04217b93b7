//! `cp`, `diff`, `export` and `commit` end to end, as root: the real `berth` binary (and the
//! `berth-monitor` built next to it) on a private `--root`/`--runroot` per test, with a
//! busybox image imported here. Checked from the outside: exit codes, output, the files on
//! the host and in the containers, and that nothing is left mounted under the test's
//! directory when it ends.
//!
//! `cargo test -p berth` builds `berth` but not `berth-monitor`; build it too
//! (`cargo build -p berth-monitor`).

mod support;

use std::path::{Path, PathBuf};

use support::docker::engines::mounts_under;
use support::env::Env;
use support::{text, Root};

const IMG: &str = "bb";

/// busybox with its applets, /etc/passwd (root, app 1000), /tmp, and /data/sub/f and
/// /data/keep to change and delete.
fn rootfs_tar() -> Vec<u8> {
    support::busybox_layer()
        .dir("etc", 0o755, (0, 0))
        .file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
            0o644,
            (0, 0),
        )
        .file("etc/group", b"root:x:0:\napp:x:1000:\n", 0o644, (0, 0))
        .file("etc/motd", b"welcome\n", 0o644, (0, 0))
        .dir("tmp", 0o1777, (0, 0))
        .dir("data", 0o755, (0, 0))
        .dir("data/sub", 0o755, (0, 0))
        .file("data/sub/f", b"old\n", 0o644, (0, 0))
        .file("data/keep", b"keep\n", 0o644, (0, 0))
        .finish()
}

/// A private store with the image `bb` (`support::env`).
fn env(test: &str) -> Option<Env> {
    Env::new(test, IMG, &[r#"CMD ["sh"]"#], &rootfs_tar())
}

impl Env {
    /// A host directory of the test.
    fn host(&self, name: &str) -> PathBuf {
        let p = self.dir().join("host").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }
}

/// The names of a tar's entries, as written.
fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar);
    a.entries().unwrap().map(|e| text(&e.unwrap().path_bytes())).collect()
}

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        // Raw, so that hostile names (`..`) go in as they are.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn cp_copies_both_ways_on_running_and_stopped_containers() {
    let Some(env) = env("cp_copies_both_ways_on_running_and_stopped_containers") else {
        return;
    };
    env.ok(&["run", "-d", "--name", "c1", IMG, "sleep", "1000"]);
    env.ok(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "mkdir -p /tmp/d/sub && echo a > /tmp/d/a && echo b > /tmp/d/sub/b",
    ]);

    // Host to container: a file into a directory, to a new name, a directory to a new name
    // and into an existing directory.
    let file = env.host("file.txt");
    std::fs::write(&file, b"from the host\n").unwrap();
    let dir = env.host("hdir");
    std::fs::create_dir_all(dir.join("inner")).unwrap();
    std::fs::write(dir.join("inner/x"), b"x\n").unwrap();
    let (f, d) = (file.to_str().unwrap(), dir.to_str().unwrap());
    env.ok(&["cp", f, "c1:/tmp/"]);
    env.ok(&["cp", f, "c1:/tmp/renamed"]);
    env.ok(&["cp", d, "c1:/tmp/newdir"]);
    env.ok(&["container", "cp", d, "c1:/tmp/d"]);
    let got = env.ok(&[
        "exec",
        "c1",
        "cat",
        "/tmp/file.txt",
        "/tmp/renamed",
        "/tmp/newdir/inner/x",
        "/tmp/d/hdir/inner/x",
    ]);
    assert_eq!(got, "from the host\nfrom the host\nx\nx\n");
    // A file where a directory is asserted.
    let err = env.fails(&["cp", f, "c1:/tmp/missing/"]);
    assert!(err.contains("no such directory"), "{err}");

    // Container to host: a file, a directory to a new name, a directory's content.
    let out = env.host("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = out.to_str().unwrap();
    env.ok(&["cp", "c1:/etc/motd", o]);
    env.ok(&["cp", "c1:/tmp/d", &format!("{o}/copy")]);
    env.ok(&["cp", "c1:/tmp/d/.", &format!("{o}/content")]);
    assert_eq!(std::fs::read(out.join("motd")).unwrap(), b"welcome\n");
    assert_eq!(std::fs::read(out.join("copy/sub/b")).unwrap(), b"b\n");
    assert_eq!(std::fs::read(out.join("content/a")).unwrap(), b"a\n");
    // The network files are the container's (bound over the rootfs as it sees them).
    env.ok(&["cp", "c1:/etc/hostname", o]);
    let id = env.ok(&["inspect", "-f", "{{.Id}}", "c1"]);
    assert_eq!(
        std::fs::read_to_string(out.join("hostname")).unwrap().trim(),
        &id.trim()[..12]
    );

    // Tar streams: out on stdout, in on stdin.
    let tar = env.ok_bytes(&["cp", "c1:/tmp/d", "-"]);
    let mut names = tar_names(&tar);
    names.sort();
    assert_eq!(
        names,
        [
            "d/",
            "d/a",
            "d/hdir/",
            "d/hdir/inner/",
            "d/hdir/inner/x",
            "d/sub/",
            "d/sub/b"
        ]
    );
    let input = tar_of(&[("streamed/one", b"1\n"), ("two", b"2\n")]);
    let out_ = env.run_input(&["cp", "-", "c1:/tmp"], &input);
    assert!(out_.status.success(), "{}", text(&out_.stderr));
    assert_eq!(
        env.ok(&["exec", "c1", "cat", "/tmp/streamed/one", "/tmp/two"]),
        "1\n2\n"
    );
    let err = text(&env.run_input(&["cp", "-", "c1:/tmp/two"], &input).stderr);
    assert!(err.contains("destination \"c1:/tmp/two\" must be a directory"), "{err}");

    // Docker's errors and exit status.
    let err = env.fails(&["cp", "c1:/nope", o]);
    assert!(err.contains("Could not find the file /nope in container c1"), "{err}");
    let err = env.fails(&["cp", "nosuch:/etc", o]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    let err = env.fails(&["cp", "c1:/a", "c1:/b"]);
    assert!(err.contains("copying between containers is not supported"), "{err}");
    let err = env.fails(&["cp", "a", "b"]);
    assert!(err.contains("must specify at least one container source"), "{err}");

    // Stopped: the rootfs is mounted for the copy only, privately.
    env.ok(&["stop", "-t", "0", "c1"]);
    assert_eq!(mounts_under(env.dir()), Vec::<String>::new());
    env.ok(&["cp", f, "c1:/tmp/while-stopped"]);
    env.ok(&["cp", "c1:/tmp/while-stopped", &format!("{o}/back")]);
    assert_eq!(std::fs::read(out.join("back")).unwrap(), b"from the host\n");
    assert_eq!(mounts_under(env.dir()), Vec::<String>::new());
    // And a created container never started.
    env.ok(&["create", "--name", "c2", IMG]);
    env.ok(&["cp", f, "c2:/etc/"]);
    env.ok(&["start", "c2"]);
    env.ok(&["wait", "c2"]);
    let tar = env.ok_bytes(&["cp", "c2:/etc/file.txt", "-"]);
    assert_eq!(tar_names(&tar), ["file.txt"]);
    env.finish();
}

#[test]
fn cp_follows_volumes_and_respects_read_only() {
    let Some(env) = env("cp_follows_volumes_and_respects_read_only") else {
        return;
    };
    let bind = env.host("bindsrc");
    std::fs::create_dir_all(&bind).unwrap();
    std::fs::write(bind.join("h"), b"bound\n").unwrap();
    let spec = format!("{}:/bind:ro", bind.display());
    env.ok(&["create", "--name", "v1", "-v", "vol1:/vol", "-v", &spec, IMG]);
    let file = env.host("f");
    std::fs::write(&file, b"into the volume\n").unwrap();
    let f = file.to_str().unwrap();
    env.ok(&["cp", f, "v1:/vol/"]);
    let out = env.ok(&["run", "--rm", "-v", "vol1:/v", IMG, "cat", "/v/f"]);
    assert_eq!(out, "into the volume\n");
    let tar = env.ok_bytes(&["cp", "v1:/bind/h", "-"]);
    assert_eq!(tar_names(&tar), ["h"]);
    let err = env.fails(&["cp", f, "v1:/bind/"]);
    assert!(err.contains("mounted volume is marked read-only"), "{err}");
    assert!(!bind.join("f").exists());
    env.ok(&["create", "--name", "ro", "--read-only", IMG]);
    let err = env.fails(&["cp", f, "ro:/tmp/"]);
    assert!(err.contains("container rootfs is marked read-only"), "{err}");
    env.finish();
}

#[test]
fn cp_never_leaves_the_rootfs() {
    let Some(env) = env("cp_never_leaves_the_rootfs") else {
        return;
    };
    // A host directory the container's links name, absolutely and by climbing.
    let sentinel = env.host("sentinel");
    std::fs::create_dir_all(&sentinel).unwrap();
    std::fs::write(sentinel.join("secret"), b"host secret\n").unwrap();
    let s = sentinel.to_str().unwrap().to_owned();
    let climb = format!("../../../../../../../../..{s}");
    let script = format!("ln -s {s} /abs && ln -s {climb} /tmp/rel && ln -s / /tmp/root");
    env.ok(&["run", "--name", "c1", IMG, "sh", "-c", &script]);
    let before = snapshot(&sentinel);

    // Reading through the links finds nothing of the host.
    for path in ["c1:/abs/secret", "c1:/tmp/rel/secret"] {
        let err = env.fails(&["cp", path, "-"]);
        assert!(err.contains("Could not find the file"), "{path}: {err}");
    }
    let tar = env.ok_bytes(&["cp", "c1:/tmp/root/etc/motd", "-"]);
    assert_eq!(tar_names(&tar), ["motd"], "the container's /etc, not the host's");
    // Writing through them lands in the container.
    let file = env.host("payload");
    std::fs::write(&file, b"payload\n").unwrap();
    let f = file.to_str().unwrap();
    // The relative link dangles inside the rootfs: no such directory. The one to / is the
    // container's.
    let err = env.fails(&["cp", f, "c1:/tmp/rel/"]);
    assert!(err.contains("no such directory"), "{err}");
    env.ok(&["cp", f, "c1:/tmp/root/payload-at-root"]);
    let tar = env.ok_bytes(&["cp", "c1:/payload-at-root", "-"]);
    assert_eq!(tar_names(&tar), ["payload-at-root"]);
    // Archives with names or links that climb out are refused.
    let climbing = tar_of(&[("../../../../../../escaped", b"x")]);
    let err = text(&env.run_input(&["cp", "-", "c1:/tmp"], &climbing).stderr);
    assert!(err.contains("escapes"), "{err}");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(0);
    b.append_link(&mut h, "lnk", climb.trim_start_matches('/')).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mode(0o644);
    b.append_data(&mut h, "lnk/pwned", &b"x"[..]).unwrap();
    let linked = b.into_inner().unwrap();
    let out = env.run_input(&["cp", "-", "c1:/tmp"], &linked);
    assert!(!out.status.success(), "a climbing link was accepted");
    assert_eq!(snapshot(&sentinel), before, "the host directory changed");
    assert!(!env.dir().join("escaped").exists());
    env.finish();
}

/// The files under `dir` with their contents.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn diff_lists_what_changed_like_docker() {
    let Some(env) = env("diff_lists_what_changed_like_docker") else {
        return;
    };
    let script = "echo more >> /etc/motd; rm /data/keep; rm -r /data/sub; mkdir -p /opt/app; echo x > /opt/app/bin; echo t > /tmp/t";
    env.ok(&["run", "--name", "c1", IMG, "sh", "-c", script]);
    assert_eq!(
        env.ok(&["diff", "c1"]),
        "C /data\nD /data/keep\nD /data/sub\nC /etc\nC /etc/motd\nA /opt\nA /opt/app\nA /opt/app/bin\nC /tmp\nA /tmp/t\n"
    );
    // A directory deleted and made again hides the old one: overlay makes it opaque.
    env.ok(&[
        "run",
        "--name",
        "c2",
        IMG,
        "sh",
        "-c",
        "rm -r /data && mkdir /data && echo n > /data/new",
    ]);
    let out = env.ok(&["container", "diff", "c2"]);
    assert!(out.contains("A /data/new\n") || out.contains("C /data/new\n"), "{out}");
    // Nothing changed: nothing listed (the mount points the runtime made are not changes).
    env.ok(&["run", "--name", "c3", IMG, "true"]);
    assert_eq!(env.ok(&["diff", "c3"]), "");
    let err = env.fails(&["diff", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    env.finish();
}

#[test]
fn export_and_commit_make_what_runs() {
    let Some(env) = env("export_and_commit_make_what_runs") else {
        return;
    };
    env.ok(&[
        "run",
        "--name",
        "c1",
        "-e",
        "FOO=bar",
        "-w",
        "/data",
        IMG,
        "sh",
        "-c",
        "echo made > /made; rm /data/keep",
    ]);

    // export: the merged filesystem.
    let tar = env.ok_bytes(&["export", "c1"]);
    let names = tar_names(&tar);
    for want in ["bin/busybox", "etc/motd", "made", "data/sub/f"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n == "data/keep"), "a deleted file was exported");
    let file = env.host("c1.tar");
    env.ok(&["container", "export", "-o", file.to_str().unwrap(), "c1"]);
    assert_eq!(tar_names(&std::fs::read(&file).unwrap()), names);

    // commit: the container's changes and settings, with -c applied.
    let id = env.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/made\"]",
        "-m",
        "made it",
        "-a",
        "me",
        "c1",
        "mine:1",
    ]);
    assert!(id.trim().starts_with("sha256:") && id.trim().len() == 71, "{id}");
    assert_eq!(env.ok(&["run", "--rm", "mine:1"]), "made\n");
    assert_eq!(
        env.ok(&["run", "--rm", "mine:1", "sh", "-c", "echo $FOO; pwd; ls /data"]),
        "bar\n/data\nsub\n"
    );
    let cfg = env.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Cmd}} {{.Author}} {{len .RootFS.Layers}}",
        "mine:1",
    ]);
    assert_eq!(cfg.trim(), r#"["cat","/made"] me 2"#);
    let history = env.ok(&["history", "--format", "{{.Comment}}", "mine:1"]);
    assert!(history.starts_with("made it\n"), "{history}");
    // Without changes: an empty layer, recorded as such.
    env.ok(&["run", "--name", "c3", IMG, "true"]);
    env.ok(&["container", "commit", "c3", "same"]);
    let layers = env.ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", "same"]);
    assert_eq!(layers.trim(), "1");

    // A running container, paused meanwhile (the default) and running after.
    env.ok(&["run", "-d", "--name", "r1", IMG, "sleep", "1000"]);
    env.ok(&["exec", "r1", "sh", "-c", "echo live > /live"]);
    env.ok(&["commit", "r1", "live"]);
    assert_eq!(env.ok(&["inspect", "-f", "{{.State.Status}}", "r1"]).trim(), "running");
    assert_eq!(env.ok(&["run", "--rm", "live", "cat", "/live"]), "live\n");
    env.ok(&["commit", "--pause=false", "r1", "live2"]);

    // The committed image holds its layers: removing its parent leaves it whole, and it
    // saves and loads elsewhere.
    env.ok(&["rm", "-f", "c1", "c3", "r1"]);
    env.ok(&["rmi", "live", "live2", "same"]);
    env.ok(&["rmi", IMG]);
    assert_eq!(env.ok(&["run", "--rm", "mine:1"]), "made\n");
    let saved = env.host("mine.tar");
    env.ok(&["save", "-o", saved.to_str().unwrap(), "mine:1"]);
    let other = Root::with_netns();
    let out = other.run(&["load", "-i", saved.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exported = other.run(&["image", "export", "mine:1"]);
    let names = tar_names(&exported.stdout);
    assert!(names.iter().any(|n| n == "made"), "{names:?}");
    assert!(!names.iter().any(|n| n == "data/keep"), "{names:?}");
    env.finish();
}

/// The same filesystem commands against berth and a private dockerd 20.10, on the same
/// rootfs imported into each: `diff` listings and the names in `cp` archives must agree.
#[test]
fn same_listings_as_docker() {
    const TEST: &str = "same_listings_as_docker";
    use support::docker::engines::{docker_client, which};
    if which("dockerd").is_none() || docker_client().is_none() {
        eprintln!("skipping {TEST}: dockerd or docker missing (apt-get install docker.io)");
        return;
    }
    let Some(env) = env(TEST) else { return };
    let tmp = tempfile::Builder::new().prefix("berth-fs-dk-").tempdir().unwrap();
    let cgroup_parent = format!("berth-fs-{}", std::process::id());
    let dir = tmp.path().join("docker");
    let started =
        std::panic::catch_unwind(|| support::docker::Docker::with_registry(&dir, &cgroup_parent, "127.0.0.1:1"));
    let Ok(dk) = started else {
        eprintln!("skipping {TEST}: dockerd could not be started");
        env.finish();
        return;
    };
    let tar = tmp.path().join("rootfs.tar");
    std::fs::write(&tar, rootfs_tar()).unwrap();
    dk.ok(&["import", "-c", r#"CMD ["sh"]"#, tar.to_str().unwrap(), IMG]);

    let scripts = [
        "echo more >> /etc/motd; rm /data/keep; rm -r /data/sub; mkdir -p /opt/app; echo x > /opt/app/bin; echo t > /tmp/t",
        "rm -r /data && mkdir /data && echo n > /data/new",
        "chmod 700 /data/sub; touch /data/sub/f; ln -s /etc/motd /tmp/link",
        "true",
    ];
    for (i, script) in scripts.iter().enumerate() {
        let name = format!("s{i}");
        let run = ["run", "--network", "none", "--name", &name, IMG, "sh", "-c", script];
        dk.ok(&run);
        env.ok(&run);
        // The same lines; Docker's order varies where it compares merged trees (its "naive"
        // diff, on kernels with overlay's redirect_dir), berth's is the walk's.
        let lines = |s: String| {
            let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
            v.sort();
            v
        };
        let (d, b) = (dk.ok(&["diff", &name]), env.ok(&["diff", &name]));
        assert_eq!(lines(b), lines(d), "diff after {script:?}");
    }
    // (Not `/` itself: Docker names its entries `/bin`…, and adds its init layer's files.)
    for path in ["s0:/opt", "s0:/opt/.", "s0:/opt/app/bin", "s0:/etc/motd"] {
        let d = tar_names(&dk.run(&["cp", path, "-"]).stdout);
        let b = tar_names(&env.ok_bytes(&["cp", path, "-"]));
        let clean = |v: Vec<String>| -> Vec<String> {
            let mut v: Vec<String> = v
                .into_iter()
                .map(|n| n.trim_start_matches("./").trim_end_matches('/').to_owned())
                .filter(|n| !n.is_empty() && n != "." && !n.starts_with(".dockerenv"))
                .collect();
            v.sort();
            v
        };
        assert_eq!(clean(b), clean(d), "cp {path} -");
    }
    let _ = dk.run(&["rm", "-f", "s0", "s1", "s2", "s3"]);
    drop(dk);
    env.finish();
}
