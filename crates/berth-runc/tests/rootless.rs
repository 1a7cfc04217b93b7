//! Rootless: `berth-runc spec --rootless` bundles run by an unprivileged
//! user (made by the test), in a user namespace, without cgroups, and each
//! thing that needs privilege fails with a message saying so.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

const USER: &str = "berth-rootless";

/// The user's first subordinate id in /etc/subuid (or subgid).
fn sub_start(file: &str) -> u32 {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{USER}:"))).unwrap();
    line.split(':').nth(1).unwrap().parse().unwrap()
}

/// The test user (uid, gid), created on first use with subordinate id
/// ranges in /etc/subuid and /etc/subgid for newuidmap/newgidmap.
fn test_user() -> Option<(u32, u32)> {
    static ONCE: std::sync::Mutex<Option<(u32, u32)>> = std::sync::Mutex::new(None);
    let mut guard = ONCE.lock().unwrap();
    if guard.is_none() {
        let lookup = || {
            let out = Command::new("id").args(["-u", USER]).output().ok()?;
            let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
            let out = Command::new("id").args(["-g", USER]).output().ok()?;
            let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
            Some((uid, gid))
        };
        if lookup().is_none() {
            let ok = Command::new("useradd")
                .args(["--no-create-home", "--shell", "/usr/sbin/nologin", USER])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("skipping: could not create user {USER}");
                return None;
            }
        }
        let ids = lookup()?;
        for file in ["/etc/subuid", "/etc/subgid"] {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            if !text.lines().any(|l| l.starts_with(&format!("{USER}:"))) {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(file)
                    .unwrap();
                writeln!(f, "{USER}:3100000:65536").unwrap();
            }
        }
        *guard = Some(ids);
    }
    *guard
}

fn ready_rootless() -> Option<(u32, u32)> {
    if !ready() {
        return None;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipping: setpriv (util-linux) is not installed");
        return None;
    }
    test_user()
}

/// Run berth-runc as the test user, with a clean environment.
fn as_user(ids: (u32, u32), dir: &Path, args: &[&str]) -> Output {
    output_via_files(
        Command::new("setpriv")
            .args([
                "--reuid",
                &ids.0.to_string(),
                "--regid",
                &ids.1.to_string(),
                "--clear-groups",
                "--",
            ])
            .arg(BERTH)
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null()),
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A bundle (with a config from `spec --rootless` run as the user) and a
/// state root, both owned by the user.
fn user_bundle(ids: (u32, u32), script: &str) -> (Bundle, tempfile::TempDir) {
    let b = Bundle::new(&["true"]);
    let state = tempfile::tempdir().unwrap();
    for p in [b.path(), state.path()] {
        let ok = Command::new("chown")
            .args(["-R", &format!("{}:{}", ids.0, ids.1)])
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    std::fs::remove_file(b.path().join("config.json")).ok();
    let out = as_user(ids, b.path(), &["spec", "--rootless"]);
    assert!(out.status.success(), "spec --rootless: {}", text(&out.stderr));
    let path = b.path().join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["process"]["terminal"] = serde_json::json!(false);
    config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    (b, state)
}

fn edit(b: &Bundle, f: impl FnOnce(&mut serde_json::Value)) {
    let path = b.path().join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut config);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

#[test]
fn rootless_spec_runs_as_an_unprivileged_user() {
    let Some(ids) = ready_rootless() else { return };
    let (b, state) = user_bundle(
        ids,
        "id -u; cat /proc/self/uid_map; hostname; ls /dev/null /dev/pts/ptmx >/dev/null && echo devices; \
         touch /x 2>/dev/null || echo rootfs-readonly",
    );
    let root = state.path().to_str().unwrap();
    let cid = id("rootless");
    let out = as_user(ids, b.path(), &["--root", root, "run", &cid]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "0", "root inside: {stdout}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", &ids.0.to_string(), "1"], "{stdout}");
    assert_eq!(lines[2], "berth", "{stdout}");
    assert_eq!(&lines[3..], ["devices", "rootfs-readonly"], "{stdout}");
    // No cgroup (nothing is delegated here), no state left.
    assert!(cgroup_dirs(&cid).is_empty());
    assert!(std::fs::read_dir(state.path()).unwrap().next().is_none());

    // The lifecycle commands work for the user too.
    let out = as_user(ids, b.path(), &["--root", root, "create", &cid]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = as_user(ids, b.path(), &["--root", root, "state", &cid]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let host_uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        host_uid.contains(&ids.0.to_string()),
        "runs as the user on the host: {host_uid}"
    );
    let out = as_user(ids, b.path(), &["--root", root, "delete", "--force", &cid]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::read_dir(state.path()).unwrap().next().is_none());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(b.path().to_str().unwrap()));
}

#[test]
fn rootless_id_ranges_go_through_newuidmap() {
    let Some(ids) = ready_rootless() else { return };
    if Command::new("newuidmap").output().is_err() {
        eprintln!("skipping: newuidmap (package uidmap) is not installed");
        return;
    }
    let (b, state) = user_bundle(
        ids,
        "cat /proc/self/uid_map /proc/self/gid_map; touch /dev/shm/f && chown 1000:1000 /dev/shm/f && echo chown-ok",
    );
    let (subuid, subgid) = (sub_start("/etc/subuid"), sub_start("/etc/subgid"));
    let range = |host: u32, sub: u32| {
        serde_json::json!([{"containerID": 0, "hostID": host, "size": 1},
                           {"containerID": 1, "hostID": sub, "size": 65536}])
    };
    edit(&b, |c| {
        c["linux"]["uidMappings"] = range(ids.0, subuid);
        c["linux"]["gidMappings"] = range(ids.1, subgid);
        let caps = serde_json::json!(["CAP_CHOWN"]);
        c["process"]["capabilities"] = serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps});
    });
    let root = state.path().to_str().unwrap();
    let cid = id("ranges");
    let out = as_user(ids, b.path(), &["--root", root, "run", &cid]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", &subuid.to_string(), "65536"]));
    assert!(stdout
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", &subgid.to_string(), "65536"]));
    assert!(stdout.contains("chown-ok"), "{stdout}");

    // A range that is not the user's: newuidmap refuses, and we say why.
    edit(&b, |c| {
        c["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": ids.0, "size": 1},
                                                       {"containerID": 1, "hostID": 1, "size": 10}]);
    });
    let out = as_user(ids, b.path(), &["--root", root, "run", &cid]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("newuidmap refused the uid mapping 0:"), "{err}");
    assert!(err.contains("/etc/subuid"), "{err}");
    assert!(std::fs::read_dir(state.path()).unwrap().next().is_none());
}

#[test]
fn rootless_privileged_requests_are_refused_clearly() {
    let Some(ids) = ready_rootless() else { return };
    type Change = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|c| c["linux"]["resources"] = serde_json::json!({"pids": {"limit": 10}})),
            "a pids limit needs a cgroup, and this rootless runtime could not create one",
        ),
        (
            Box::new(|c| c["linux"]["resources"] = serde_json::json!({"memory": {"limit": 10485760}})),
            "a memory limit needs a cgroup",
        ),
        (
            Box::new(|c| c["process"]["user"]["additionalGids"] = serde_json::json!([5])),
            "cannot set additional gids [5]: setgroups is denied in this user namespace",
        ),
    ];
    let (b, state) = user_bundle(ids, "true");
    let root_dir = state.path().to_str().unwrap().to_string();
    let pristine = std::fs::read(b.path().join("config.json")).unwrap();
    for (change, want) in cases {
        std::fs::write(b.path().join("config.json"), &pristine).unwrap();
        edit(&b, |c| change(c));
        let cid = id("refused");
        let out = as_user(ids, b.path(), &["--root", &root_dir, "run", &cid]);
        assert_eq!(out.status.code(), Some(1), "{want}");
        let err = text(&out.stderr);
        assert!(err.contains(want), "want {want:?}, got {err}");
        assert!(
            std::fs::read_dir(state.path()).unwrap().next().is_none(),
            "{want}: state left"
        );
        assert!(cgroup_dirs(&cid).is_empty());
    }
}
