//! Volumes, the event journal, `system df`/`prune`, `version` and `info` end to end, as root:
//! the real `berth` binary (and `berth-monitor` next to it) on a private `--root`/`--runroot`
//! per test, with an image imported here from Debian's busybox-static that declares `VOLUME
//! /data` over a directory with content (for Docker's copy-up). Checked from the outside:
//! exit codes and output, the volumes' directories, /proc/self/mountinfo. After every test
//! no mount is left under its temp dir, no process mentions it, and no container remains.
//!
//! `cargo test -p berth` builds `berth` but not `berth-monitor`: build it too
//! (`cargo build -p berth-monitor`).

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use support::docker::engines::{mounts_under, wait_for, wait_timeout};
use support::env::{is_id, Env};
use support::Background;

const IMG: &str = "vb";
/// What the image has in its volume directory.
const SEED: &str = "from the image\n";

/// busybox with every applet, `/data/seed` and `/data/sub/deep` owned by 1000 (the image's
/// volume), and /etc/passwd.
fn rootfs_tar() -> &'static [u8] {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(|| {
        support::busybox_layer()
            .dir("etc", 0o755, (0, 0))
            .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644, (0, 0))
            .dir("tmp", 0o1777, (0, 0))
            .dir("data", 0o750, (1000, 1000))
            .file("data/seed", SEED.as_bytes(), 0o644, (1000, 1000))
            .dir("data/sub", 0o755, (1000, 1000))
            .file("data/sub/deep", b"deep\n", 0o600, (1000, 1000))
            .dir("other", 0o755, (0, 0))
            .file("other/file", b"other\n", 0o644, (0, 0))
            .finish()
    })
}

/// A private store with the image `vb`, whose `/data` is a `VOLUME` (`support::env`).
fn env(test: &str) -> Option<Env> {
    Env::new(test, IMG, &[r#"CMD ["sh"]"#, "VOLUME /data"], rootfs_tar())
}

impl Env {
    fn volumes(&self) -> BTreeSet<String> {
        self.ok(&["volume", "ls", "-q"]).lines().map(str::to_owned).collect()
    }

    fn mountpoint(&self, name: &str) -> PathBuf {
        self.root.path().join("volumes").join(name).join("_data")
    }

    /// The `Mounts` of container `name`'s inspect document.
    fn mounts(&self, name: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0]["Mounts"].as_array().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------
// Volumes

/// create (named, labelled, random name), ls with filters and formats, inspect's document,
/// data kept across containers, removal refused while a container uses the volume, and
/// Docker's messages and exit codes for what is wrong.
#[test]
fn volume_lifecycle_keeps_data_and_refuses_removal_in_use() {
    let Some(env) = env("volume_lifecycle_keeps_data_and_refuses_removal_in_use") else {
        return;
    };
    assert_eq!(env.ok(&["volume", "create", "--label", "tier=db", "data"]), "data\n");
    // A second create of the name returns the volume.
    assert_eq!(env.ok(&["volume", "create", "data"]), "data\n");
    let random = env.ok(&["volume", "create"]).trim().to_owned();
    assert!(is_id(&random), "{random}");
    let ls = env.ok(&["volume", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["DRIVER", "VOLUME", "NAME"]
    );
    assert_eq!(lines.len(), 3, "{ls}");
    assert!(lines[1..]
        .iter()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["local", "data"]));
    assert_eq!(env.ok(&["volume", "ls", "-q", "--filter", "label=tier=db"]), "data\n");
    assert_eq!(env.ok(&["volume", "ls", "-q", "--filter", "name=dat"]), "data\n");
    assert_eq!(env.ok(&["volume", "ls", "-q", "--filter", "driver=other"]), "");
    assert_eq!(
        env.ok(&[
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Labels}}",
            "-f",
            "label=tier"
        ]),
        "data local tier=db\n"
    );
    let json_line = env.ok(&["volume", "ls", "--format", "json", "-f", "name=data"]);
    let v: Value = serde_json::from_str(json_line.trim()).unwrap();
    assert_eq!(v["Name"], "data");

    let doc: Value = serde_json::from_str(&env.ok(&["volume", "inspect", "data"])).unwrap();
    let d = &doc[0];
    let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "CreatedAt",
            "Driver",
            "Labels",
            "Mountpoint",
            "Name",
            "Options",
            "Scope"
        ]
    );
    assert_eq!(d["Driver"], "local");
    assert_eq!(d["Scope"], "local");
    assert_eq!(d["Labels"]["tier"], "db");
    assert_eq!(d["Options"], serde_json::json!({}));
    assert!(d["CreatedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        d["Mountpoint"].as_str().unwrap(),
        env.mountpoint("data").to_str().unwrap()
    );
    assert!(env.mountpoint("data").is_dir());
    assert_eq!(
        env.ok(&["volume", "inspect", "-f", "{{.Name}}:{{.Driver}}", "data"]),
        "data:local\n"
    );
    let (out, err) = env.expect(&["volume", "inspect", "data", "nosuch"], 1);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().len(),
        1
    );
    assert!(err.contains("get nosuch: no such volume"), "{err}");

    // Data written by one container is there for the next.
    env.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        IMG,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        env.ok(&["run", "--rm", "-v", "data:/d:ro", IMG, "cat", "/d/f"]),
        "kept\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.mountpoint("data").join("f")).unwrap(),
        "kept\n"
    );

    // In use (even by a stopped container): refused with the user named.
    env.ok(&[
        "create",
        "--name",
        "user",
        "--mount",
        "type=volume,src=data,dst=/m",
        IMG,
    ]);
    let id = env.ok(&["inspect", "-f", "{{.Id}}", "user"]).trim().to_owned();
    let (_, err) = env.expect(&["volume", "rm", "data"], 1);
    assert!(
        err.contains(&format!("remove data: volume is in use - [{id}]")),
        "{err}"
    );
    assert!(env.mountpoint("data").join("f").exists());
    env.ok(&["rm", "-v", "user"]);
    // Removing a named volume's user keeps the volume, even with -v.
    assert!(env.volumes().contains("data"));
    assert_eq!(
        env.ok(&["volume", "rm", "data", random.as_str()]),
        format!("data\n{random}\n")
    );
    assert!(!env.mountpoint("data").exists());
    assert!(env.volumes().is_empty());

    let (_, err) = env.expect(&["volume", "rm", "data"], 1);
    assert!(err.contains("get data: no such volume"), "{err}");
    assert_eq!(env.ok(&["volume", "rm", "-f", "data"]), "data\n");
    let (_, err) = env.expect(&["volume", "create", "x"], 1);
    assert!(err.contains("volume name is too short"), "{err}");
    let (_, err) = env.expect(&["run", "--rm", "-v", "a/b:/x", IMG, "true"], 125);
    assert!(
        err.contains("includes invalid characters for a local volume name"),
        "{err}"
    );
    let (_, err) = env.expect(&["volume", "create", "-d", "nfs3", "v2"], 1);
    assert!(err.contains("plugin \"nfs3\" not found"), "{err}");
    let (_, err) = env.expect(&["volume", "create", "-o", "size=1m", "v2"], 1);
    assert!(err.contains("quota"), "{err}");
    let (_, err) = env.expect(&["volume", "create", "-o", "type=tmpfs", "v2"], 1);
    assert!(err.contains("missing required option: \"device\""), "{err}");
    assert!(env.volumes().is_empty(), "nothing made by failed creates");
    env.finish();
}

/// Image VOLUMEs and `-v /path` get anonymous volumes (64 hex digits, labelled), an empty
/// volume is filled from the image (owners and modes kept) unless `nocopy`, a volume with
/// content is left alone, and `rm -v` / `run --rm` remove the anonymous volumes only.
#[test]
fn copy_up_anonymous_volumes_and_rm_v() {
    let Some(env) = env("copy_up_anonymous_volumes_and_rm_v") else {
        return;
    };
    env.ok(&[
        "run",
        "--name",
        "anon",
        "-v",
        "/scratch",
        IMG,
        "sh",
        "-c",
        "echo x > /scratch/f",
    ]);
    let mounts = env.mounts("anon");
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    let mut anon = Vec::new();
    for m in &mounts {
        assert_eq!(m["Type"], "volume");
        assert_eq!(m["Driver"], "local");
        let name = m["Name"].as_str().unwrap().to_owned();
        assert!(is_id(&name), "{m}");
        assert_eq!(m["Source"].as_str().unwrap(), env.mountpoint(&name).to_str().unwrap());
        let labels = env.ok(&["volume", "inspect", "-f", "{{json .Labels}}", &name]);
        assert_eq!(labels.trim(), r#"{"com.docker.volume.anonymous":""}"#);
        anon.push((m["Destination"].as_str().unwrap().to_owned(), name));
    }
    anon.sort();
    let (data_vol, scratch_vol) = (&anon[0].1, &anon[1].1);
    assert_eq!(anon[0].0, "/data");
    // Copy-up: the image's /data with owners and modes.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let data = env.mountpoint(data_vol);
    assert_eq!(std::fs::read_to_string(data.join("seed")).unwrap(), SEED);
    let deep = std::fs::metadata(data.join("sub/deep")).unwrap();
    assert_eq!((deep.uid(), deep.permissions().mode() & 0o7777), (1000, 0o600));
    let top = std::fs::metadata(&data).unwrap();
    assert_eq!((top.uid(), top.permissions().mode() & 0o7777), (1000, 0o750));
    assert_eq!(
        std::fs::read_to_string(env.mountpoint(scratch_vol).join("f")).unwrap(),
        "x\n"
    );

    // A named volume is filled once; what is there later is kept.
    env.ok(&[
        "run",
        "--rm",
        "-v",
        "named:/data",
        IMG,
        "sh",
        "-c",
        "echo mine > /data/seed",
    ]);
    assert_eq!(
        env.ok(&["run", "--rm", "-v", "named:/data", IMG, "cat", "/data/seed"]),
        "mine\n"
    );
    // Onto another path of the image, too; nocopy leaves it empty.
    assert_eq!(
        env.ok(&["run", "--rm", "-v", "other:/other", IMG, "cat", "/other/file"]),
        "other\n"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "-v", "nc:/data:nocopy", IMG, "ls", "-A", "/data"]),
        ""
    );
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=nc2,dst=/data,volume-nocopy",
            IMG,
            "ls",
            "-A",
            "/data"
        ]),
        ""
    );
    let before = env.volumes();
    assert!(before.contains(data_vol.as_str()) && before.contains("named"));
    // `run --rm`: its anonymous volume goes with it.
    env.ok(&["run", "--rm", IMG, "cat", "/data/seed"]);
    assert_eq!(env.volumes(), before);

    // rm -v: the anonymous volumes, not the named one.
    env.ok(&["create", "--name", "mixed", "-v", "named:/n", IMG]);
    let mixed: Vec<String> = env
        .mounts("mixed")
        .iter()
        .map(|m| m["Name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(mixed.len(), 2);
    env.ok(&["rm", "-v", "anon", "mixed"]);
    let after = env.volumes();
    assert!(!after.contains(data_vol.as_str()) && !after.contains(scratch_vol.as_str()));
    assert!(!env.mountpoint(data_vol).exists());
    assert!(mixed.iter().filter(|n| *n != "named").all(|n| !after.contains(n)));
    assert!(after.contains("named") && after.contains("other") && after.contains("nc"));
    // Without -v the anonymous volume stays (dangling).
    env.ok(&["run", "--name", "keep", IMG, "true"]);
    let kept = env.mounts("keep")[0]["Name"].as_str().unwrap().to_owned();
    env.ok(&["rm", "keep"]);
    assert_eq!(
        env.ok(&[
            "volume",
            "ls",
            "-q",
            "-f",
            "dangling=true",
            "-f",
            &format!("name={kept}")
        ]),
        format!("{kept}\n")
    );
    env.finish();
}

/// A volume made with the local driver's options is a tmpfs mounted on its mountpoint while
/// a container uses it: shared by two containers, unmounted when the last one stops.
#[test]
fn tmpfs_volume_is_mounted_while_containers_use_it() {
    let Some(env) = env("tmpfs_volume_is_mounted_while_containers_use_it") else {
        return;
    };
    env.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m,mode=0777",
        "tv",
    ]);
    let doc: Value = serde_json::from_str(&env.ok(&["volume", "inspect", "tv"])).unwrap();
    assert_eq!(doc[0]["Options"]["type"], "tmpfs");
    assert_eq!(doc[0]["Options"]["o"], "size=2m,mode=0777");
    let mp = env.mountpoint("tv");
    let mounted = || mounts_under(&mp).len();
    assert_eq!(mounted(), 0, "not mounted before use");
    env.ok(&["run", "-d", "--name", "ta", "-v", "tv:/data", IMG, "sleep", "600"]);
    env.ok(&["run", "-d", "--name", "tb", "-v", "tv:/data", IMG, "sleep", "600"]);
    assert_eq!(mounted(), 1, "{:?}", mounts_under(&mp));
    // The copy-up happened into the tmpfs, and both containers see each other's writes.
    assert_eq!(env.ok(&["exec", "ta", "cat", "/data/seed"]), SEED);
    env.ok(&["exec", "ta", "sh", "-c", "echo shared > /data/s"]);
    assert_eq!(env.ok(&["exec", "tb", "cat", "/data/s"]), "shared\n");
    let df = env.ok(&["exec", "tb", "df", "-k", "/data"]);
    assert!(
        df.lines().nth(1).unwrap().split_whitespace().nth(1) == Some("2048"),
        "{df}"
    );
    env.ok(&["stop", "-t", "0", "ta"]);
    assert_eq!(mounted(), 1, "still used by b");
    env.ok(&["stop", "-t", "0", "tb"]);
    assert!(
        wait_for(Duration::from_secs(10), || mounted() == 0),
        "{:?}",
        mounts_under(&mp)
    );
    // A tmpfs starts empty again: copied up afresh, the container's file gone.
    assert_eq!(
        env.ok(&["run", "--rm", "-v", "tv:/data", IMG, "sh", "-c", "ls /data"]),
        "seed\nsub\n"
    );
    assert_eq!(mounted(), 0);
    // A bind of a host directory through the same options.
    let host = env.dir().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("h"), "host\n").unwrap();
    let device = format!("device={}", host.display());
    // `volume create` of a bind of `device` with the mount options `o`.
    let bind_volume = |name: &str, device: &str, o: &str| {
        let o = format!("o={o}");
        env.ok(&["volume", "create", "-o", "type=none", "-o", device, "-o", &o, name]);
    };
    bind_volume("bv", &device, "bind");
    assert_eq!(env.ok(&["run", "--rm", "-v", "bv:/b", IMG, "cat", "/b/h"]), "host\n");
    assert_eq!(mounts_under(&env.mountpoint("bv")).len(), 0);
    // Read-only through a remount, with a propagation change of its own: the mount flags
    // of a spec, split as the runtime splits them.
    bind_volume("rbv", &device, "bind,ro,rprivate");
    let touch = env.fails(&["run", "--rm", "-v", "rbv:/b", IMG, "touch", "/b/new"]);
    assert!(touch.contains("Read-only file system"), "{touch}");
    assert!(!host.join("new").exists());
    assert_eq!(mounts_under(&env.mountpoint("rbv")).len(), 0);
    // A mount that fails fails the start, naming the volume, and leaves nothing mounted.
    let missing = format!("device={}", env.dir().join("missing").display());
    bind_volume("gone", &missing, "bind");
    let (_, err) = env.expect(&["run", "--name", "nomount", "-v", "gone:/g", IMG, "true"], 125);
    assert!(err.contains("volume gone: failed to mount local volume"), "{err}");
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the cause once: {err}"
    );
    env.ok(&["rm", "nomount"]);
    assert_eq!(mounts_under(&env.mountpoint("gone")).len(), 0);
    env.ok(&["rm", "ta", "tb"]);
    env.ok(&["volume", "rm", "tv", "bv", "rbv", "gone"]);
    assert!(host.join("h").exists(), "removing a bind volume keeps the host's files");
    env.finish();
}

// ---------------------------------------------------------------------------------------
// Pruning and disk use

fn df_row(df: &str, kind: &str) -> Vec<String> {
    let line = df
        .lines()
        .find(|l| l.starts_with(kind))
        .unwrap_or_else(|| panic!("{kind} in {df}"));
    line[kind.len()..].split_whitespace().map(str::to_owned).collect()
}

/// `system df` counts containers and volumes with their sizes; `volume prune` takes the
/// anonymous unused volumes (all unused with -a, label filters respected); `system prune`
/// takes stopped containers, dangling images and (with --volumes) anonymous volumes, and
/// says what it removed and the space reclaimed.
#[test]
fn disk_use_and_prune() {
    let Some(env) = env("disk_use_and_prune") else {
        return;
    };
    let df = env.ok(&["system", "df"]);
    assert_eq!(df_row(&df, "Containers"), ["0", "0", "0B", "0B"], "{df}");
    assert_eq!(df_row(&df, "Local Volumes"), ["0", "0", "0B", "0B"], "{df}");
    assert_eq!(df_row(&df, "Build Cache"), ["0", "0", "0B", "0B"], "{df}");
    // 1,000,000 bytes in a named volume, 200,000 in a container's layer, 300,000 in an
    // anonymous volume; one container running.
    env.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "big:/big",
        IMG,
        "sh",
        "-c",
        "head -c 1000000 /dev/zero > /big/f && head -c 200000 /dev/zero > /layer && head -c 300000 /dev/zero > /data/a",
    ]);
    env.ok(&[
        "run", "-d", "--name", "up", "--label", "keep=1", "-v", "lab:/l", IMG, "sleep", "600",
    ]);
    let df = env.ok(&["system", "df"]);
    assert_eq!(
        df_row(&df, "Containers"),
        ["2", "1", "200kB", "200kB", "(100%)"],
        "{df}"
    );
    let vols = df_row(&df, "Local Volumes");
    // Active: used by a container, running or not (Docker's RefCount).
    assert_eq!(vols, ["4", "4", "1.3MB", "0B", "(0%)"], "{df}");
    let json_rows: Vec<Value> = env
        .ok(&["system", "df", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(json_rows.len(), 4);
    assert_eq!(json_rows[1]["Type"], "Containers");
    let verbose = env.ok(&["system", "df", "-v"]);
    for want in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "Build cache usage: 0B",
    ] {
        assert!(verbose.contains(want), "{want} in {verbose}");
    }
    let big = verbose.lines().find(|l| l.starts_with("big ")).unwrap();
    assert_eq!(
        big.split_whitespace().collect::<Vec<_>>(),
        ["big", "1", "1MB"],
        "{verbose}"
    );
    let writer = verbose.lines().find(|l| l.ends_with(" writer")).unwrap();
    assert!(writer.contains(" 200kB "), "{writer}");

    // volume prune: nothing while containers hold them; the anonymous one after rm.
    env.ok(&["volume", "create", "--label", "keep=yes", "spare"]);
    env.ok(&["volume", "create", "other"]);
    let out = env.ok(&["volume", "prune", "-f"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    env.ok(&["rm", "writer"]);
    let anon: Vec<String> = env
        .ok(&["volume", "ls", "-q", "--filter", "dangling=true"])
        .lines()
        .filter(|v| is_id(v))
        .map(str::to_owned)
        .collect();
    assert_eq!(anon.len(), 1);
    let out = env.ok(&["volume", "prune", "-f"]);
    assert_eq!(
        out,
        format!("Deleted Volumes:\n{}\n\nTotal reclaimed space: 300kB\n", anon[0])
    );
    // -a with a label filter: unused named volumes but the labelled one.
    let out = env.ok(&["volume", "prune", "-af", "--filter", "label!=keep"]);
    assert_eq!(out, "Deleted Volumes:\nbig\nother\n\nTotal reclaimed space: 1MB\n");
    let named = |env: &Env| -> Vec<String> { env.volumes().into_iter().filter(|v| !is_id(v)).collect() };
    assert_eq!(named(&env), ["lab", "spare"]);
    // Answering no keeps everything.
    let out = env.ok_input(&["volume", "prune", "-a"], "n\n");
    assert_eq!(out, "");
    assert_eq!(
        env.volumes().len(),
        3,
        "lab, spare and the running container's anonymous one"
    );

    // system prune: stopped containers and their anonymous volumes (with --volumes).
    env.ok(&["run", "--name", "stopped", IMG, "true"]);
    let stopped_id = env.ok(&["inspect", "-f", "{{.Id}}", "stopped"]).trim().to_owned();
    let stopped_vol = env.mounts("stopped")[0]["Name"].as_str().unwrap().to_owned();
    let out = env.ok_input(&["system", "prune", "--volumes"], "y\n");
    assert_eq!(
        out,
        // The volume holds the image's 20 bytes, copied up.
        format!("Deleted Containers:\n{stopped_id}\n\nDeleted Volumes:\n{stopped_vol}\n\nTotal reclaimed space: 20B\n")
    );
    assert_eq!(env.ok(&["ps", "-aq"]).lines().count(), 1, "the running one stays");
    // -a: images no container uses go too; the running container keeps its image.
    let out = env.ok(&["system", "prune", "-af"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    env.ok(&["rm", "-f", "up"]);
    let out = env.ok(&["system", "prune", "-af"]);
    assert!(
        out.starts_with("Deleted Images:\nuntagged: vb:latest\ndeleted: sha256:"),
        "{out}"
    );
    assert!(out.ends_with("B\n") && out.contains("Total reclaimed space: "), "{out}");
    assert_eq!(env.ok(&["images", "-q"]), "");
    // Named volumes are never pruned by system prune.
    assert!(env.volumes().contains("spare"));
    env.finish();
}

// ---------------------------------------------------------------------------------------
// Events

fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// The journal shows a container's life in order with Docker's line format; --since and
/// --until bound it; filters and --format apply; and without --until new events arrive live.
#[test]
fn events_show_the_journal_and_follow() {
    let Some(env) = env("events_show_the_journal_and_follow") else {
        return;
    };
    let t0 = rfc3339_now();
    std::thread::sleep(Duration::from_millis(20));
    env.ok(&[
        "run", "--name", "ev", "--label", "app=web", "-v", "vol1:/v", IMG, "true",
    ]);
    let id = env.ok(&["inspect", "-f", "{{.Id}}", "ev"]).trim().to_owned();
    env.ok(&["rm", "ev"]);
    std::thread::sleep(Duration::from_millis(20));
    let t1 = rfc3339_now();
    std::thread::sleep(Duration::from_millis(20));
    env.ok(&["volume", "rm", "vol1"]);

    let out = env.ok(&["events", "--since", &t0, "--until", &t1, "--filter", "container=ev"]);
    let lines: Vec<&str> = out.lines().collect();
    let actions: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1], f[2])
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("container", "create"),
            ("container", "start"),
            ("container", "die"),
            ("container", "destroy")
        ],
        "{out}"
    );
    // `2024-…T…Z container start ID (app=web, image=vb, name=ev)`: nine fraction digits, UTC.
    let start = lines[1];
    let time = start.split(' ').next().unwrap();
    assert!(
        time.len() == 30 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
        "{start}"
    );
    assert!(
        start.ends_with(&format!("container start {id} (app=web, image=vb, name=ev)")),
        "{start}"
    );
    assert!(
        lines[2].ends_with(&format!("container die {id} (app=web, exitCode=0, image=vb, name=ev)")),
        "{out}"
    );
    // The volume: created on first use, mounted while the container ran; its destroy came
    // after --until.
    let vol = env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "type=volume",
        "--filter",
        "volume=vol1",
    ]);
    let vol_lines: Vec<&str> = vol.lines().collect();
    assert_eq!(vol_lines.len(), 3, "{vol}");
    assert!(vol_lines[0].ends_with(" volume create vol1 (driver=local)"), "{vol}");
    assert!(
        vol_lines[1].ends_with(&format!(
            " volume mount vol1 (container={id}, destination=/v, driver=local, propagation=, read/write=true)"
        )),
        "{vol}"
    );
    assert!(
        vol_lines[2].ends_with(&format!(" volume unmount vol1 (container={id}, driver=local)")),
        "{vol}"
    );
    let all = env.ok(&["events", "--since", &t0, "--until", "0s", "--filter", "volume=vol1"]);
    assert!(
        all.lines()
            .last()
            .unwrap()
            .contains("volume destroy vol1 (driver=local)"),
        "{all}"
    );
    // Filters: event, label, image; --format with Go's field names; {{json .}}.
    let starts = env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "-f",
        "event=start",
        "-f",
        "label=app=web",
        "-f",
        "image=vb",
        "--format",
        "{{.Type}}|{{.Status}}|{{.ID}}|{{.Actor.Attributes.name}}",
    ]);
    assert_eq!(starts, format!("container|start|{id}|ev\n"));
    let json = env.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--format",
        "{{json .}}",
        "-f",
        "type=container",
    ]);
    let msgs: Vec<Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(msgs.len(), 4, "{json}");
    assert_eq!(msgs[0]["Action"], "create");
    assert_eq!(msgs[0]["status"], "create");
    assert_eq!(msgs[0]["from"], "vb");
    assert_eq!(msgs[0]["Actor"]["ID"], id.as_str());
    assert!(msgs[0]["timeNano"].as_i64().unwrap() / 1_000_000_000 == msgs[0]["time"].as_i64().unwrap());
    let (_, err) = env.expect(&["events", "--until", "0s", "--filter", "colour=red"], 1);
    assert!(err.contains("invalid filter 'colour'"), "{err}");
    let (_, err) = env.expect(&["events", "--since", "yesterday", "--until", "0s"], 1);
    assert!(err.contains("invalid value for \"since\""), "{err}");
    // --until alone: the journal from its start.
    assert!(env
        .ok(&["events", "--until", "0s"])
        .contains(&format!("container create {id}")));

    // Follow: nothing old without --since; a new event shows up while it runs.
    let mut follow = Background::spawn({
        let mut c = env.root.cmd();
        c.args(["events", "--filter", "type=volume"]);
        c
    });
    // Following once a probe volume's event shows (however long it takes to start).
    let mut probes = Vec::new();
    let following = wait_for(Duration::from_secs(30), || {
        let probe = format!("probe{}", probes.len());
        env.ok(&["volume", "create", &probe]);
        probes.push(probe);
        std::thread::sleep(Duration::from_millis(200));
        follow.stdout().contains("volume create probe")
    });
    assert!(following, "{:?}", follow.stdout());
    env.ok(&["volume", "create", "live"]);
    let mut seen = String::new();
    let found = wait_for(Duration::from_secs(10), || {
        seen = follow.stdout();
        seen.contains("volume create live (driver=local)")
    });
    assert!(found, "{seen:?}");
    assert!(!seen.contains("vol1"), "only new events: {seen}");
    assert_eq!(follow.child.try_wait().unwrap(), None, "still following");
    drop(follow);
    let mut rm = vec!["volume", "rm"];
    rm.extend(probes.iter().map(String::as_str));
    env.ok(&rm);
    // --until in the future: follows until then, then exits by itself.
    let until = format!(
        "{:.3}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            + 5.0
    );
    let mut bounded = env.root.cmd();
    bounded.args(["events", "--until", &until, "--filter", "volume=later"]);
    let mut bounded = Background::spawn(bounded);
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["volume", "create", "later"]);
    let status = wait_timeout(&mut bounded.child, Duration::from_secs(10)).expect("events --until exits");
    assert!(status.success());
    assert!(bounded.stdout().contains("volume create later"), "{}", bounded.stdout());
    env.finish();
}

// ---------------------------------------------------------------------------------------
// version and info

#[test]
fn version_and_info_have_dockers_shape() {
    let Some(env) = env("version_and_info_have_dockers_shape") else {
        return;
    };
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        env.ok(&["version", "--format", "{{.Server.Version}}"]),
        format!("{version}\n")
    );
    let v: Value = serde_json::from_str(&env.ok(&["version", "--format", "{{json .}}"])).unwrap();
    assert_eq!(v["Client"]["Version"], version);
    assert_eq!(v["Client"]["ApiVersion"], v["Server"]["ApiVersion"]);
    assert_eq!(v["Server"]["Os"], "linux");
    assert!(v["Server"]["MinAPIVersion"].is_string() && v["Server"]["KernelVersion"].is_string());
    assert!(v["Server"]["RustVersion"].as_str().unwrap().starts_with("rustc "));
    assert_eq!(v["Server"]["Components"][0]["Name"], "Engine");
    let text = env.ok(&["version"]);
    assert!(
        text.starts_with(&format!("Client:\n Version:           {version}\n")),
        "{text}"
    );
    assert!(
        text.contains("\nServer: berth") && text.contains(" Engine:\n  Version:          "),
        "{text}"
    );

    env.ok(&["run", "-d", "--name", "up", IMG, "sleep", "600"]);
    env.ok(&["create", "--name", "idle", IMG]);
    assert_eq!(
        env.ok(&[
            "info",
            "--format",
            "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{.Images}}"
        ]),
        "2 1 0 1 1\n"
    );
    let i: Value = serde_json::from_str(&env.ok(&["info", "--format", "{{json .}}"])).unwrap();
    assert!(["overlay", "vfs"].contains(&i["Driver"].as_str().unwrap()), "{i}");
    assert!(["1", "2"].contains(&i["CgroupVersion"].as_str().unwrap()), "{i}");
    let layout = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let has_v1 = layout.lines().any(|l| l.contains(" - cgroup "));
    let has_v2 = layout.lines().any(|l| l.contains(" - cgroup2 "));
    let want = match (has_v1, has_v2) {
        (true, true) => "hybrid",
        (true, false) => "legacy",
        _ => "unified",
    };
    assert_eq!(i["CgroupLayout"], want);
    assert_eq!(i["CgroupDriver"], "cgroupfs");
    assert_eq!(i["DockerRootDir"].as_str().unwrap(), env.root.path().to_str().unwrap());
    assert!(i["NCPU"].as_u64().unwrap() >= 1 && i["MemTotal"].as_u64().unwrap() > 0);
    let uname = nix::sys::utsname::uname().unwrap();
    assert_eq!(i["KernelVersion"].as_str().unwrap(), uname.release().to_str().unwrap());
    assert_eq!(i["ClientInfo"]["Version"], version);
    let text = env.ok(&["info"]);
    for want in [
        "Server:\n Containers: 2\n  Running: 1\n  Paused: 0\n  Stopped: 1\n Images: 1\n",
        " Storage Driver: ",
        " Cgroup Driver: cgroupfs\n",
        " Kernel Version: ",
        " Total Memory: ",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    env.finish();
}
