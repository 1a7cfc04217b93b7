//! The container commands end to end, as root: the real `berth` binary (and the
//! `berth-monitor` built next to it) on a private `--root`/`--runroot` per test, with an
//! image imported here from Debian's busybox-static (every applet linked). Everything is
//! checked from the outside: exit codes and output of the CLI, /proc, the host's cgroup
//! files, /proc/self/mountinfo, and what is left on disk. After every test nothing of it may
//! remain: no mount under its temp dir, no process mentioning the dir (monitors) or in one of
//! its containers' cgroups, no cgroup `berth/<id>`, no runtime state, socket, container
//! directory or container snapshot.
//!
//! `cargo test -p berth` builds `berth` but not `berth-monitor`; build it too
//! (`cargo build -p berth-monitor`, or test the workspace).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::docker::engines::{mounts_under, output_with_input, wait_for, OnPty};
use support::env::{cgroup_dirs, code, is_id, proc_stat, proc_state, processes_of, Env, CMD_TIMEOUT};
use support::{text, Background, Root};

/// The image every test runs.
const IMG: &str = "bb";
const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n\
app:x:1000:1000:app:/home/app:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &[u8] = b"root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n";

/// A root filesystem: busybox with every applet linked in /bin, users `app` (1000, also
/// in group `extra` 2000) and `nobody`, a file that is not executable (/etc/noexec), /tmp.
fn rootfs_tar() -> &'static [u8] {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(|| {
        support::busybox_layer()
            .dir("etc", 0o755, (0, 0))
            .file("etc/passwd", PASSWD, 0o644, (0, 0))
            .file("etc/group", GROUP, 0o644, (0, 0))
            .file("etc/noexec", b"#!/bin/sh\necho ran\n", 0o644, (0, 0))
            .dir("tmp", 0o1777, (0, 0))
            .dir("root", 0o700, (0, 0))
            .dir("home", 0o755, (0, 0))
            .dir("home/app", 0o755, (1000, 1000))
            .dir("mnt", 0o755, (0, 0))
            .finish()
    })
}

/// A private store with the image `bb` (`support::env`).
fn env(test: &str) -> Option<Env> {
    Env::new(test, IMG, &[r#"CMD ["sh"]"#], rootfs_tar())
}

impl Env {
    /// What a power cut takes from the store, the disk (the root) aside: every process, mount
    /// and cgroup of it, the network namespaces (and with them the veths), the bridges and
    /// the nftables table of the test's "host" namespace, and the runroot (a tmpfs).
    fn power_off(&self) {
        let all = self.all_ids();
        let gone = wait_for(Duration::from_secs(10), || {
            self.kill_unmount_uncgroup(&all);
            processes_of(self.dir(), &all).is_empty()
                && mounts_under(self.dir()).is_empty()
                && all.iter().all(|id| cgroup_dirs(id).is_empty())
        });
        assert!(gone, "still there: {:#?}", self.leftovers(&all));
        for link in self.host_links() {
            if link == "berth0" || link.starts_with("br-") {
                support::succeeded("ip link del", self.on_host(&["ip", "link", "del", &link]), "");
            }
        }
        support::succeeded(
            "nft delete table",
            self.on_host(&["nft", "delete", "table", "inet", "berth"]),
            "",
        );
        std::fs::remove_dir_all(self.runroot()).unwrap();
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A file of container `id`'s cgroup: the v1 controller's `v1` file, else the v2 `v2` file.
fn cgroup_file(id: &str, controller: &str, v1: &str, v2: &str) -> String {
    let candidates = [
        PathBuf::from(format!("/sys/fs/cgroup/{controller}/berth/{id}/{v1}")),
        PathBuf::from(format!("/sys/fs/cgroup/berth/{id}/{v2}")),
    ];
    for p in &candidates {
        if let Ok(s) = std::fs::read_to_string(p) {
            return s.trim().to_owned();
        }
    }
    panic!("none of {candidates:?} exists");
}

/// The live (not zombie) processes in container `id`'s pids cgroup.
fn cgroup_procs(id: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for d in cgroup_dirs(id) {
        if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out.sort();
    out.dedup();
    out.retain(|p| proc_state(*p) != 'Z' && proc_state(*p) != '?');
    out
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Zombies whose parent is one of `parents`.
fn zombies_of(parents: &[i32]) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() {
            let (state, ppid) = proc_stat(pid);
            if state == 'Z' && parents.contains(&ppid) {
                out.push(pid);
            }
        }
    }
    out
}

/// Our capability bounding set (`CapBnd` of /proc/self/status).
fn our_bounding_set() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    u64::from_str_radix(line["CapBnd:".len()..].trim(), 16).unwrap()
}

/// `CapEff` from a container's `grep CapEff /proc/self/status`.
fn cap_eff(out: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("CapEff:"))
        .unwrap_or_else(|| panic!("{out}"));
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).unwrap()
}

/// Docker's default capabilities as a mask: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID
/// SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
const DOCKER_DEFAULT_CAPS: u64 = 0xa80425fb;

/// An RFC 3339 time with nine fraction digits and a Z, as `logs -t` prints.
fn is_nano_time(t: &str) -> bool {
    let b = t.as_bytes();
    t.len() == 30 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && b[29] == b'Z'
}

// ---------------------------------------------------------------------------------------
// 1. run in the foreground

/// Exit codes (the container's, 125, 126, 127), stdout and stderr kept apart, and `--rm`
/// leaving nothing behind.
#[test]
fn run_propagates_exit_codes_and_keeps_streams_apart() {
    let Some(env) = env("run_propagates_exit_codes_and_keeps_streams_apart") else {
        return;
    };
    let (out, err) = env.expect(&["run", IMG, "sh", "-c", "echo out; echo err >&2; exit 3"], 3);
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    env.expect(&["run", "--rm", IMG, "true"], 0);
    env.expect(&["run", "--rm", IMG, "false"], 1);
    // Killed by a signal: 128 + the signal (pid 1 cannot be killed from inside, so under --init).
    env.expect(&["run", "--rm", "--init", IMG, "sh", "-c", "kill -9 $$"], 137);

    // 127: not found (in $PATH, or by path); 126: not executable (a plain file, a directory).
    let (_, err) = env.expect(&["run", "--rm", IMG, "no-such-command"], 127);
    assert!(err.contains("executable file not found"), "{err}");
    env.expect(&["run", "--rm", IMG, "/no/such/file"], 127);
    let (out, err) = env.expect(&["run", "--rm", IMG, "/etc/noexec"], 126);
    assert_eq!(out, "", "the file must not run");
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
    env.expect(&["run", "--rm", IMG, "/etc"], 126);

    // 125: the engine refuses (bad values, conflicting flags, unknown flags, no such image).
    for args in [
        &["run", "--rm", "--memory", "lots", IMG, "true"][..],
        &["run", "--rm", "--restart", "always", IMG, "true"],
        &["run", "--rm", "--restart", "sometimes", IMG, "true"],
        &["run", "--rm", "--cap-add", "NOT_A_CAP", IMG, "true"],
        &["run", "--rm", "--no-such-flag", IMG, "true"],
        &["run", "--rm", "127.0.0.1:1/no/such:image", "true"],
    ] {
        let (_, err) = env.expect(args, 125);
        assert!(err.starts_with("Error") || err.contains("error"), "{args:?}: {err}");
    }

    // --rm: the record, its directory, cgroups, runtime state and mounts are gone once run
    // returns (those of the failed runs above too).
    let before: Vec<String> = env
        .ok(&["ps", "-aq", "--no-trunc"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(before.len(), 1, "only the container run without --rm: {before:?}");
    let (out, _) = env.expect(&["run", "--rm", IMG, "sh", "-c", "echo bye; exit 4"], 4);
    assert_eq!(out, "bye\n");
    let after: Vec<String> = env
        .ok(&["ps", "-aq", "--no-trunc"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(after, before);
    let dirs: Vec<String> = std::fs::read_dir(env.root.path().join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs, before, "container directories");
    assert_eq!(mounts_under(env.dir()), Vec::<String>::new());
    let gone: Vec<String> = env.all_ids().into_iter().filter(|id| !before.contains(id)).collect();
    // Seven --rm runs above and this one; the refused ones made nothing.
    assert_eq!(gone.len(), 8, "{gone:?}");
    for id in &gone {
        assert_eq!(cgroup_dirs(id), Vec::<PathBuf>::new());
        assert!(!env.runroot().join("runtime").join(id).exists(), "{id}");
    }
    env.finish();
}

/// Flags that shape the process: -e, --env-file, -w, -u (name, uid:gid), --hostname,
/// --entrypoint, -l, and -i with stdin piped.
#[test]
fn run_applies_process_flags() {
    let Some(env) = env("run_applies_process_flags") else {
        return;
    };
    let env_file = env.dir().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=1\nBOTH=file\n\nSPACED=two words\n").unwrap();
    let out = env.ok(&[
        "run",
        "--rm",
        "--env-file",
        env_file.to_str().unwrap(),
        "-e",
        "BOTH=flag",
        "--env",
        "EMPTY=",
        IMG,
        "sh",
        "-c",
        "echo \"$FROM_FILE|$BOTH|$SPACED|${EMPTY-unset}|$HOME|$PATH\"",
    ]);
    assert_eq!(
        out,
        "1|flag|two words||/root|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );

    assert_eq!(
        env.ok(&["run", "--rm", "-w", "/tmp/new/dir", IMG, "pwd"]),
        "/tmp/new/dir\n"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "-u", "app", IMG, "sh", "-c", "id; echo $HOME"]),
        "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\n/home/app\n"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "-u", "1000:2000", IMG, "id"]),
        "uid=1000(app) gid=2000(extra) groups=2000(extra)\n"
    );
    assert_eq!(env.ok(&["run", "--rm", "-u", "4242", IMG, "id", "-u"]), "4242\n");
    let (_, err) = env.expect(&["run", "--rm", "-u", "nosuchuser", IMG, "true"], 125);
    assert!(err.contains("nosuchuser"), "{err}");

    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "--hostname",
            "berth-host",
            IMG,
            "sh",
            "-c",
            "hostname; cat /etc/hostname; echo $HOSTNAME"
        ]),
        "berth-host\nberth-host\nberth-host\n"
    );
    // Without --hostname: the short id.
    let out = env.ok(&["run", "--name", "named", IMG, "hostname"]);
    assert_eq!(out.trim(), &env.id("named")[..12]);

    // --entrypoint replaces the image's, and the command becomes its arguments.
    assert_eq!(env.ok(&["run", "--rm", "--entrypoint", "echo", IMG, "a", "b"]), "a b\n");
    let doc = env.doc("named");
    assert_eq!(doc["Config"]["Cmd"], serde_json::json!(["hostname"]));

    env.ok(&[
        "run", "--name", "labelled", "-l", "tier=web", "--label", "flag", IMG, "true",
    ]);
    assert_eq!(env.inspect("labelled", "{{.Config.Labels.tier}}"), "web");
    let labels = env.doc("labelled")["Config"]["Labels"].clone();
    assert_eq!(labels, serde_json::json!({"tier": "web", "flag": ""}));

    // -i: piped stdin reaches the container, and its end ends `cat`.
    let out = env.run_input(&["run", "--rm", "-i", IMG, "cat"], b"hi\nthere\n");
    assert_eq!((code(&out), text(&out.stdout)), (0, "hi\nthere\n".into()));
    let out = env.run_input(&["run", "--rm", "-i", IMG, "wc", "-c"], &vec![b'x'; 300_000]);
    assert_eq!(text(&out.stdout).trim(), "300000");
    // Without -i the container's stdin is empty.
    let out = env.run_input(&["run", "--rm", IMG, "cat"], b"not for it\n");
    assert_eq!((code(&out), text(&out.stdout)), (0, String::new()));
    env.finish();
}

/// --read-only, --tmpfs, -v bind ro/rw, a named volume kept between containers.
#[test]
fn run_mounts_what_it_is_asked_to() {
    let Some(env) = env("run_mounts_what_it_is_asked_to") else {
        return;
    };
    let (_, err) = env.expect(&["run", "--rm", "--read-only", IMG, "touch", "/file"], 1);
    assert!(err.contains("Read-only file system"), "{err}");
    // /etc/hosts and friends are read-only too; a --tmpfs is writable.
    let out = env.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch:size=1m",
        IMG,
        "sh",
        "-c",
        "touch /scratch/f && echo wrote; echo x >> /etc/hosts || echo refused; grep ' /scratch ' /proc/mounts",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["wrote", "refused"], "{out}");
    assert!(
        lines[2].starts_with("tmpfs /scratch tmpfs rw,nosuid,nodev,noexec") && lines[2].contains("size=1024k"),
        "{out}"
    );

    let host = env.dir().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from the host\n").unwrap();
    let bind = format!("{}:/h", host.display());
    let bind_ro = format!("{bind}:ro");
    let (out, err) = env.expect(
        &[
            "run",
            "--rm",
            "-v",
            &bind_ro,
            IMG,
            "sh",
            "-c",
            "cat /h/in; echo x > /h/out",
        ],
        1,
    );
    assert_eq!(out, "from the host\n");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!host.join("out").exists());
    env.ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        IMG,
        "sh",
        "-c",
        "echo from the container > /h/out",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from the container\n"
    );

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
    env.ok(&[
        "run",
        "--name",
        "withvol",
        "--mount",
        "type=volume,source=data,target=/m",
        IMG,
        "true",
    ]);
    let mounts = env.doc("withvol")["Mounts"].clone();
    assert_eq!(mounts[0]["Type"], "volume");
    assert_eq!(mounts[0]["Name"], "data");
    assert_eq!(mounts[0]["Destination"], "/m");
    let source = mounts[0]["Source"].as_str().unwrap().to_owned();
    assert_eq!(std::fs::read_to_string(Path::new(&source).join("f")).unwrap(), "kept\n");
    // Nothing of the binds is left mounted on the host.
    assert_eq!(mounts_under(env.dir()), Vec::<String>::new());
    env.finish();
}

/// --cap-drop/--cap-add in CapEff, --privileged, and seccomp: the default profile refuses
/// what `seccomp=unconfined` lets through.
#[test]
fn run_applies_capabilities_and_seccomp() {
    let Some(env) = env("run_applies_capabilities_and_seccomp") else {
        return;
    };
    let caps = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[IMG, "grep", "CapEff", "/proc/self/status"]);
        cap_eff(&env.ok(&all))
    };
    assert_eq!(caps(&[]), DOCKER_DEFAULT_CAPS);
    assert_eq!(caps(&["--cap-drop", "chown"]), DOCKER_DEFAULT_CAPS & !1);
    assert_eq!(
        caps(&["--cap-drop", "CAP_CHOWN", "--cap-add", "sys_admin"]),
        (DOCKER_DEFAULT_CAPS & !1) | (1 << 21)
    );
    assert_eq!(caps(&["--cap-drop", "ALL", "--cap-add", "KILL"]), 1 << 5);
    // The capabilities really are gone: root without CAP_CHOWN cannot chown.
    let (_, err) = env.expect(
        &[
            "run",
            "--rm",
            "--cap-drop",
            "ALL",
            "-u",
            "0",
            IMG,
            "sh",
            "-c",
            "chown 1000 /tmp",
        ],
        1,
    );
    assert!(err.contains("Operation not permitted"), "{err}");

    // --privileged: every capability the engine itself has, devices and a writable /sys.
    let out = env.ok(&[
        "run",
        "--rm",
        "--privileged",
        IMG,
        "sh",
        "-c",
        "grep CapEff /proc/self/status; mount -t tmpfs none /mnt && echo mounted; grep ' /sys ' /proc/mounts",
    ]);
    assert_eq!(cap_eff(&out), our_bounding_set(), "{out}");
    assert!(out.contains("mounted\n") && out.contains("sysfs rw,"), "{out}");
    let out = env.run(&["run", "--rm", IMG, "mount", "-t", "tmpfs", "none", "/mnt"]);
    assert_ne!(code(&out), 0);
    assert!(text(&out.stderr).contains("permission denied"), "{out:?}");

    // A user namespace needs no capability, but Docker's default profile refuses it.
    let (_, err) = env.expect(&["run", "--rm", IMG, "unshare", "-U", "true"], 1);
    assert!(err.contains("Operation not permitted"), "{err}");
    env.expect(
        &[
            "run",
            "--rm",
            "--security-opt",
            "seccomp=unconfined",
            IMG,
            "unshare",
            "-U",
            "true",
        ],
        0,
    );
    let out = env.ok(&["run", "--rm", IMG, "grep", "Seccomp:", "/proc/self/status"]);
    assert_eq!(out.split_whitespace().nth(1), Some("2"), "filter mode: {out}");
    let out = env.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        IMG,
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ]);
    assert_eq!(out.split_whitespace().nth(1), Some("0"), "{out}");
    let out = env.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        IMG,
        "grep",
        "NoNewPrivs:",
        "/proc/self/status",
    ]);
    assert_eq!(out.split_whitespace().nth(1), Some("1"), "{out}");
    env.expect(&["run", "--rm", "--security-opt", "bogus=1", IMG, "true"], 125);
    env.finish();
}

/// --memory and --pids-limit in the container's cgroup (read on the host and inside).
#[test]
fn run_sets_memory_and_pids_limits() {
    let Some(env) = env("run_sets_memory_and_pids_limits") else {
        return;
    };
    let id = env.detach(&[
        "--name",
        "limited",
        "--memory",
        "64m",
        "--pids-limit",
        "7",
        IMG,
        "sleep",
        "60",
    ]);
    assert_eq!(
        cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max"),
        (64 << 20).to_string()
    );
    assert_eq!(cgroup_file(&id, "pids", "pids.max", "pids.max"), "7");
    assert_eq!(cgroup_procs(&id), vec![env.pid("limited")]);
    let doc = env.doc("limited");
    assert_eq!(doc["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(doc["HostConfig"]["PidsLimit"], 7);
    // The container sees its own limits in its cgroup namespace.
    let inside = env.ok(&[
        "exec",
        "limited",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
    ]);
    assert_eq!(inside.trim(), "7");
    // The limit holds: the sixth process cannot be forked.
    let (_, err) = env.expect(
        &[
            "run",
            "--rm",
            "--pids-limit",
            "5",
            IMG,
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6; do sleep 1 & done; wait",
        ],
        2,
    );
    assert!(err.contains("can't fork"), "{err}");
    // Past the memory limit: the kernel's OOM killer, reported as Docker reports it.
    let hog = "head -c 100m /dev/zero | tail -n 1 >/dev/null";
    env.expect(&["run", "--name", "oom", "--memory", "8m", IMG, "sh", "-c", hog], 137);
    assert_eq!(
        env.inspect("oom", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "true 137"
    );
    assert_eq!(env.inspect("limited", "{{.State.OOMKilled}}"), "false");
    let before = env.ok(&["ps", "-aq"]);
    env.expect(&["run", "--memory", "-5m", IMG, "true"], 125);
    let (_, err) = env.expect(&["run", "--memory", "1m", IMG, "true"], 125);
    assert!(err.contains("Minimum memory limit allowed is 6MB"), "{err}");
    assert_eq!(env.ok(&["ps", "-aq"]), before, "refused before anything was made");
    env.finish();
}

/// --init: pid 1 reaps orphans and forwards signals (a plain `sleep` as pid 1 does
/// neither); a foreground `run` forwards the signals it gets.
#[test]
fn init_reaps_orphans_and_signals_are_forwarded() {
    let Some(env) = env("init_reaps_orphans_and_signals_are_forwarded") else {
        return;
    };
    // An orphan that exits at once: reparented to the container's pid 1.
    let script = "(sleep 0.1 &); exec sleep 60";
    let plain = env.detach(&["--name", "plain", IMG, "sh", "-c", script]);
    let init = env.detach(&["--name", "init", "--init", IMG, "sh", "-c", script]);
    let zombies = |id: &str| zombies_of(&cgroup_procs(id));
    assert!(
        wait_for(Duration::from_secs(10), || zombies(&plain).len() == 1),
        "sleep as pid 1 leaves the orphan a zombie"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(zombies(&init), Vec::<i32>::new(), "--init reaps it");
    // pid 1 of --init is not the command: the command is its child.
    let init_pid = env.pid("init");
    let procs = cgroup_procs(&init);
    assert!(
        procs.iter().any(|p| comm(*p) == "sleep" && proc_stat(*p).1 == init_pid),
        "{procs:?}"
    );

    // SIGTERM: `sleep` as pid 1 has no handler, so the kernel drops it; --init passes it on.
    env.ok(&["kill", "-s", "TERM", "init"]);
    env.ok(&["kill", "--signal", "SIGTERM", "plain"]);
    assert_eq!(env.ok(&["wait", "init"]), "143\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.inspect("plain", "{{.State.Status}}"), "running");
    env.ok(&["rm", "-f", "plain", "init"]);

    // A foreground run passes SIGTERM to the container (--sig-proxy, the default).
    let mut cmd = env.berth();
    cmd.args([
        "run",
        "--rm",
        IMG,
        "sh",
        "-c",
        "trap 'echo got TERM; exit 9' TERM; echo ready; while :; do sleep 0.05; done",
    ]);
    let mut fg = Background::spawn(cmd);
    fg.wait_for_output("ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(fg.child.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(fg.wait().code(), Some(9));
    assert_eq!(fg.stdout(), "ready\ngot TERM\n");
    env.finish();
}

/// --stop-signal, --restart on-failure:N and --log-opt max-size/max-file.
#[test]
fn stop_signal_restart_policy_and_log_rotation() {
    let Some(env) = env("stop_signal_restart_policy_and_log_rotation") else {
        return;
    };
    env.detach(&[
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        IMG,
        "sh",
        "-c",
        "trap 'echo got USR1; exit 9' USR1; echo ready; while :; do sleep 0.05; done",
    ]);
    assert!(wait_for(Duration::from_secs(10), || env.ok(&["logs", "usr1"]) == "ready\n"));
    // Exit code 9, not 137: the trap ran, before the stop timeout's SIGKILL.
    assert_eq!(env.ok(&["stop", "usr1"]), "usr1\n");
    assert_eq!(
        env.inspect("usr1", "{{.State.ExitCode}} {{.Config.StopSignal}}"),
        "9 USR1"
    );
    assert_eq!(env.ok(&["logs", "usr1"]), "ready\ngot USR1\n");

    // The stop timeout: SIGTERM ignored by pid 1, SIGKILL after -t seconds.
    env.detach(&["--name", "stubborn", IMG, "sleep", "60"]);
    let t = Instant::now();
    env.ok(&["stop", "-t", "1", "stubborn"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(8),
        "{took:?}"
    );
    assert_eq!(env.inspect("stubborn", "{{.State.ExitCode}}"), "137");

    // on-failure:2: two restarts, then it stays exited with the last code.
    env.detach(&[
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        IMG,
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    assert_eq!(env.ok(&["wait", "flaky"]), "3\n");
    assert!(wait_for(Duration::from_secs(10), || env
        .inspect("flaky", "{{.State.Status}}")
        == "exited"));
    assert_eq!(
        env.inspect(
            "flaky",
            "{{.RestartCount}} {{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "2 3 on-failure 2"
    );
    assert_eq!(env.ok(&["logs", "flaky"]), "run\nrun\nrun\n");
    // on-failure does not restart a success.
    env.detach(&["--name", "fine", "--restart", "on-failure", IMG, "true"]);
    assert_eq!(env.ok(&["wait", "fine"]), "0\n");
    assert_eq!(env.inspect("fine", "{{.RestartCount}}"), "0");

    // Rotation at 1 KiB with 2 files: the oldest lines are gone, the rest is in order.
    let loop_200 = "i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo line$i; done";
    let out = env.ok(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        IMG,
        "sh",
        "-c",
        loop_200,
    ]);
    assert_eq!(out.lines().count(), 200, "attached output is whole");
    let logs = env.ok(&["logs", "chatty"]);
    let numbers: Vec<u32> = logs
        .lines()
        .map(|l| l.strip_prefix("line").unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers.last(), Some(&200));
    assert!(numbers.len() > 5 && numbers.len() < 60, "{} lines kept", numbers.len());
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    let id = env.id("chatty");
    let log = env
        .root
        .path()
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    assert_eq!(env.inspect("chatty", "{{.LogPath}}"), log.to_str().unwrap());
    let rotated = PathBuf::from(format!("{}.1", log.display()));
    assert!(log.exists() && rotated.exists());
    assert!(!Path::new(&format!("{}.2", log.display())).exists());
    for f in [&log, &rotated] {
        assert!(std::fs::metadata(f).unwrap().len() <= 1024, "{}", f.display());
    }
    let first: Value = serde_json::from_str(std::fs::read_to_string(&log).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["stream"], "stdout");
    assert!(first["log"].as_str().unwrap().starts_with("line"));
    let (_, err) = env.expect(&["run", "--rm", "--log-opt", "max-size=lots", IMG, "true"], 125);
    assert!(err.contains("max-size"), "{err}");
    env.finish();
}

// ---------------------------------------------------------------------------------------
// 2. detached containers and the commands that manage them

/// run -d, ps, top, pause/unpause, rename, stop, start, restart, kill, wait, rm, rm -f.
#[test]
fn detached_container_lifecycle() {
    let Some(env) = env("detached_container_lifecycle") else {
        return;
    };
    let id = env.detach(&["--name", "d1", IMG, "sleep", "60"]);
    let pid = env.pid("d1");
    assert_eq!(comm(pid), "sleep");
    assert_eq!(cgroup_procs(&id), vec![pid]);
    // The container's rootfs is mounted while it runs.
    let rootfs = env.root.path().join("containers").join(&id).join("rootfs");
    assert!(mounts_under(env.dir()).contains(&rootfs.display().to_string()));

    let ps = env.ok(&["ps"]);
    let lines: Vec<&str> = ps.lines().collect();
    assert_eq!(lines.len(), 2, "{ps}");
    let header: Vec<&str> = lines[0].split("   ").map(str::trim).filter(|s| !s.is_empty()).collect();
    assert_eq!(
        header,
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );
    let row = lines[1];
    assert!(row.starts_with(&format!("{}   {IMG}  ", &id[..12])), "{ps}");
    assert!(row.contains("\"sleep 60\""), "{ps}");
    let status_col = lines[0].find("STATUS").unwrap();
    assert!(row[status_col..].starts_with("Up "), "{ps}");
    assert!(row.ends_with("   d1"), "{ps}");

    let top = env.ok(&["top", "d1"]);
    let header = top.lines().next().unwrap();
    assert!(header.contains("PID") && header.contains("CMD"), "{top}");
    let pid_col = header.split_whitespace().position(|h| h == "PID").unwrap();
    let pids: Vec<i32> = top
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(pid_col).unwrap().parse().unwrap())
        .collect();
    assert_eq!(pids, [pid], "{top}");
    assert!(top.contains("sleep 60"), "{top}");

    assert_eq!(env.ok(&["pause", "d1"]), "d1\n");
    assert_eq!(
        env.inspect("d1", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}"),
        "paused true true"
    );
    let frozen = std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/berth/{id}/freezer.state"))
        .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup/berth/{id}/cgroup.freeze")))
        .unwrap();
    assert!(matches!(frozen.trim(), "FROZEN" | "1"), "{frozen}");
    assert_ne!(proc_state(pid), '?', "a frozen task still exists");
    assert!(env
        .ok(&["ps", "--format", "{{.Status}}"])
        .trim_end()
        .ends_with("(Paused)"));
    let (_, err) = env.expect(&["exec", "d1", "true"], 1);
    assert!(err.contains("paused"), "{err}");
    env.expect(&["pause", "d1"], 1);
    assert_eq!(env.ok(&["unpause", "d1"]), "d1\n");
    assert_eq!(env.inspect("d1", "{{.State.Status}}"), "running");
    env.expect(&["unpause", "d1"], 1);

    env.ok(&["rename", "d1", "d2"]);
    let (_, err) = env.expect(&["inspect", "d1"], 1);
    assert!(err.contains("No such"), "{err}");
    assert_eq!(env.inspect("d2", "{{.Name}} {{.Id}}"), format!("/d2 {id}"));
    assert_eq!(env.ok(&["ps", "--format", "{{.Names}}"]), "d2\n");
    // Names are unique: a second d2 is refused, and so is a rename onto it.
    env.detach(&["--name", "other", IMG, "sleep", "60"]);
    let (_, err) = env.expect(&["run", "-d", "--name", "d2", IMG, "true"], 125);
    assert!(err.contains("is already in use"), "{err}");
    env.expect(&["rename", "other", "d2"], 1);
    env.ok(&["rm", "-f", "other"]);

    // stop: SIGTERM is ignored by `sleep` as pid 1, SIGKILL after the timeout.
    assert_eq!(env.ok(&["stop", "-t", "1", "d2"]), "d2\n");
    assert_eq!(
        env.inspect(
            "d2",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}} {{.State.Pid}}"
        ),
        "exited 137 false 0"
    );
    assert_eq!(proc_state(pid), '?', "the process is gone");
    assert!(cgroup_dirs(&id).is_empty(), "cgroups removed on exit");
    assert!(
        !mounts_under(env.dir()).contains(&rootfs.display().to_string()),
        "rootfs unmounted"
    );
    assert_eq!(env.ok(&["ps", "-q"]), "");
    // Stopping a stopped container is fine; killing one is not.
    assert_eq!(env.ok(&["stop", "d2"]), "d2\n");
    let (_, err) = env.expect(&["kill", "d2"], 1);
    assert!(err.contains("is not running"), "{err}");

    let started = env.inspect("d2", "{{.State.StartedAt}}");
    assert_eq!(env.ok(&["start", "d2"]), "d2\n");
    let pid2 = env.pid("d2");
    assert!(pid2 != pid && comm(pid2) == "sleep");
    assert_ne!(env.inspect("d2", "{{.State.StartedAt}}"), started);
    // Restarts in a row: each start races the previous monitor's exit command.
    let mut last = pid2;
    for _ in 0..5 {
        assert_eq!(env.ok(&["restart", "-t", "0", "d2"]), "d2\n");
        let now = env.pid("d2");
        assert!(now != last && comm(now) == "sleep" && proc_state(last) == '?');
        assert_eq!(env.inspect("d2", "{{.State.Status}}"), "running");
        assert!(mounts_under(env.dir()).contains(&rootfs.display().to_string()));
        last = now;
    }

    // kill: SIGKILL by default; wait prints the code.
    assert_eq!(env.ok(&["kill", "d2"]), "d2\n");
    assert_eq!(env.ok(&["wait", "d2"]), "137\n");
    env.ok(&["start", "d2"]);
    let (_, err) = env.expect(&["rm", "d2"], 1);
    assert!(err.contains("container is running"), "{err}");
    let last = env.pid("d2");
    assert_eq!(env.ok(&["rm", "-f", "d2"]), "d2\n");
    assert_eq!(proc_state(last), '?');
    assert_eq!(env.ok(&["ps", "-aq"]), "");
    assert!(!env.root.path().join("containers").join(&id).exists());
    let (_, err) = env.expect(&["rm", "d2"], 1);
    assert!(err.contains("No such container: d2"), "{err}");
    env.ok(&["rm", "-f", "d2"]);

    // wait blocks until the exit; several at once, each code on its line.
    let t = Instant::now();
    env.detach(&["--name", "w1", IMG, "sh", "-c", "sleep 0.5; exit 5"]);
    env.detach(&["--name", "w2", IMG, "sh", "-c", "exit 6"]);
    assert_eq!(env.ok(&["wait", "w1", "w2"]), "5\n6\n");
    assert!(t.elapsed() >= Duration::from_millis(500), "{:?}", t.elapsed());
    // Prefixes of ids work like names.
    let w2 = env.id("w2");
    assert_eq!(env.ok(&["wait", &w2[..8]]), "6\n");
    // create + start -a.
    let created = env.ok(&[
        "create",
        "--name",
        "c1",
        IMG,
        "sh",
        "-c",
        "echo created-then-started; exit 2",
    ]);
    assert!(is_id(created.trim()), "{created}");
    assert_eq!(env.inspect("c1", "{{.State.Status}}"), "created");
    let (out, _) = env.expect(&["start", "-a", "c1"], 2);
    assert_eq!(out, "created-then-started\n");
    // start -a -i: our stdin reaches a container created with -i.
    env.ok(&[
        "create",
        "-i",
        "--name",
        "c2",
        IMG,
        "sh",
        "-c",
        "read line; echo got $line",
    ]);
    let out = env.run_input(&["start", "-a", "-i", "c2"], b"hello\n");
    assert_eq!((code(&out), text(&out.stdout)), (0, "got hello\n".to_string()));
    env.finish();
}

/// logs: -f follows until the exit, --tail, --since, -t; stdout and stderr apart.
#[test]
fn logs_follow_tail_since_and_timestamps() {
    let Some(env) = env("logs_follow_tail_since_and_timestamps") else {
        return;
    };
    // Timed from before the run: the container lives at least its second from then.
    let t = Instant::now();
    env.detach(&[
        "--name",
        "lg",
        IMG,
        "sh",
        "-c",
        "echo one; echo two >&2; sleep 1; echo three",
    ]);
    let out = env.run(&["logs", "-f", "lg"]);
    assert!(
        t.elapsed() >= Duration::from_millis(1000),
        "logs -f returned after {:?}",
        t.elapsed()
    );
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        ("one\nthree\n".into(), "two\n".into())
    );
    assert_eq!(env.inspect("lg", "{{.State.Status}}"), "exited");

    let out = env.run(&["logs", "--tail", "1", "lg"]);
    assert_eq!(
        (text(&out.stdout), text(&out.stderr)),
        ("three\n".into(), String::new())
    );
    assert_eq!(env.ok(&["logs", "-n", "0", "lg"]), "");
    let stamped = env.ok(&["logs", "-t", "lg"]);
    let lines: Vec<(&str, &str)> = stamped.lines().map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(lines.iter().map(|l| l.1).collect::<Vec<_>>(), ["one", "three"]);
    for (time, _) in &lines {
        assert!(is_nano_time(time), "{stamped}");
    }
    assert!(lines[0].0 < lines[1].0);
    // --since the time of the last line: only that line; a time after it: nothing.
    assert_eq!(env.ok(&["logs", "--since", lines[1].0, "lg"]), "three\n");
    assert_eq!(env.ok(&["logs", "--since", "2999-01-01T00:00:00Z", "lg"]), "");
    let out = env.run(&["logs", "--since", "1h", "lg"]);
    assert_eq!(text(&out.stdout), "one\nthree\n");
    assert_eq!(env.ok(&["logs", "--until", lines[0].0, "lg"]), "one\n");
    env.expect(&["logs", "--since", "yesterday-ish", "lg"], 1);

    // -f on a running container: what exists, then what comes, until it stops.
    env.detach(&[
        "--name",
        "lg2",
        IMG,
        "sh",
        "-c",
        "echo first; sleep 0.5; echo second; sleep 60",
    ]);
    let mut cmd = env.berth();
    cmd.args(["logs", "-f", "lg2"]);
    let mut follow = Background::spawn(cmd);
    follow.wait_for_output("second\n");
    assert_eq!(follow.stdout(), "first\nsecond\n");
    assert!(follow.child.try_wait().unwrap().is_none(), "still following");
    env.ok(&["stop", "-t", "0", "lg2"]);
    assert!(follow.wait().success());
    let (_, err) = env.expect(&["logs", "nosuch"], 1);
    assert!(err.contains("No such container"), "{err}");
    env.finish();
}

/// exec: exit codes, -e, -w, -u, -d, -i, and refusals.
#[test]
fn exec_runs_in_the_container() {
    let Some(env) = env("exec_runs_in_the_container") else {
        return;
    };
    env.detach(&["--name", "ex", "-e", "FROM_RUN=1", "-w", "/tmp", IMG, "sleep", "60"]);
    env.expect(&["exec", "ex", "sh", "-c", "exit 4"], 4);
    // The container's environment and cwd, then the flags over them.
    assert_eq!(env.ok(&["exec", "ex", "sh", "-c", "echo $FROM_RUN; pwd"]), "1\n/tmp\n");
    assert_eq!(
        env.ok(&[
            "exec",
            "-e",
            "FOO=bar",
            "-e",
            "FROM_RUN=2",
            "ex",
            "sh",
            "-c",
            "echo $FOO $FROM_RUN"
        ]),
        "bar 2\n"
    );
    assert_eq!(env.ok(&["exec", "-w", "/etc", "ex", "pwd"]), "/etc\n");
    assert_eq!(env.ok(&["exec", "-u", "app", "ex", "id", "-un"]), "app\n");
    assert_eq!(
        env.ok(&["exec", "-u", "1000:2000", "ex", "id"]),
        "uid=1000(app) gid=2000(extra) groups=2000(extra)\n"
    );
    // Same namespaces: the container's pid 1 and hostname.
    let id = env.id("ex");
    assert_eq!(env.ok(&["exec", "ex", "cat", "/proc/1/comm"]), "sleep\n");
    assert_eq!(env.ok(&["exec", "ex", "hostname"]).trim(), &id[..12]);
    // -d returns while its process waits (for a file made only afterwards); the process
    // goes on, in the container's cgroup.
    let waits = "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo done > /tmp/flag";
    assert_eq!(env.ok(&["exec", "-d", "ex", "sh", "-c", waits]), "");
    let procs = cgroup_procs(&id);
    assert!(procs.iter().any(|p| comm(*p) == "sh"), "{procs:?}");
    env.ok(&["exec", "ex", "touch", "/tmp/go"]);
    assert!(wait_for(Duration::from_secs(10), || {
        env.run(&["exec", "ex", "cat", "/tmp/flag"]).stdout == b"done\n"
    }));
    // -i: stdin reaches the process.
    let out = env.run_input(&["exec", "-i", "ex", "cat"], b"piped\n");
    assert_eq!((code(&out), text(&out.stdout)), (0, "piped\n".into()));
    let out = env.run_input(&["exec", "ex", "cat"], b"not for it\n");
    assert_eq!(text(&out.stdout), "");
    // Docker's 126 for any exec that cannot start.
    let out = env.run(&["exec", "ex", "no-such-command"]);
    assert_eq!(code(&out), 126, "{out:?}");
    assert!(text(&out.stderr).contains("executable file not found"), "{out:?}");
    // No exec left behind in the container.
    let pid = env.pid("ex");
    let mut procs = Vec::new();
    let alone = wait_for(Duration::from_secs(5), || {
        procs = cgroup_procs(&id);
        procs == [pid]
    });
    assert!(alone, "{procs:?}");
    env.ok(&["stop", "-t", "0", "ex"]);
    let (_, err) = env.expect(&["exec", "ex", "true"], 1);
    assert!(err.contains("is not running"), "{err}");
    env.finish();
}

/// inspect's JSON shape and --format; ps's filters, -q, --no-trunc, --format and status
/// texts; container prune.
#[test]
fn inspect_ps_and_prune_show_what_docker_shows() {
    let Some(env) = env("inspect_ps_and_prune_show_what_docker_shows") else {
        return;
    };
    env.expect(&["run", "--name", "i1", "-l", "app=web", IMG, "sh", "-c", "exit 3"], 3);
    let i2 = env.detach(&[
        "--name",
        "i2",
        "-l",
        "app=db",
        "--restart",
        "always",
        IMG,
        "sleep",
        "60",
    ]);
    let i3 = env.ok(&["create", "--name", "i3", IMG, "true"]).trim().to_owned();

    let d = env.doc("i1");
    assert!(is_id(d["Id"].as_str().unwrap()));
    assert_eq!(d["Name"], "/i1");
    assert_eq!(d["Path"], "sh");
    assert_eq!(d["Args"], serde_json::json!(["-c", "exit 3"]));
    assert_eq!(d["State"]["Status"], "exited");
    assert_eq!(d["State"]["ExitCode"], 3);
    assert_eq!(d["State"]["Running"], false);
    assert_eq!(d["State"]["Pid"], 0);
    for t in ["StartedAt", "FinishedAt"] {
        let v = d["State"][t].as_str().unwrap();
        assert!(v.starts_with("20") && v.ends_with('Z'), "{t}: {v}");
    }
    assert!(d["State"]["FinishedAt"].as_str() >= d["State"]["StartedAt"].as_str());
    assert_eq!(d["Config"]["Cmd"], serde_json::json!(["sh", "-c", "exit 3"]));
    assert_eq!(d["Config"]["Image"], IMG);
    assert_eq!(d["Config"]["Labels"]["app"], "web");
    assert!(d["Image"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(d["HostConfig"]["RestartPolicy"]["Name"], "no");
    assert_eq!(d["HostConfig"]["LogConfig"]["Type"], "json-file");
    assert_eq!(d["RestartCount"], 0);
    let d2 = env.doc("i2");
    assert_eq!(d2["State"]["Running"], true);
    assert_eq!(d2["State"]["Pid"].as_i64().unwrap() as i32, env.pid(&i2));
    assert_eq!(d2["HostConfig"]["RestartPolicy"]["Name"], "always");
    assert_eq!(env.doc(&i3)["State"]["Status"], "created");

    assert_eq!(
        env.ok(&["inspect", "--format", "{{.State.Status}}", "i1", "i2", "i3"]),
        "exited\nrunning\ncreated\n"
    );
    assert_eq!(env.ok(&["container", "inspect", "-f", "{{.Name}}", &i2[..10]]), "/i2\n");
    assert_eq!(
        env.ok(&["inspect", "-f", "{{json .Config.Labels}}", "i1"]),
        "{\"app\":\"web\"}\n"
    );
    let (out, err) = env.expect(&["inspect", "-f", "{{.Name}}", "i1", "nosuch"], 1);
    assert_eq!(out, "/i1\n");
    assert!(err.contains("No such object: nosuch"), "{err}");

    // ps: running only by default; -a for all, newest first.
    assert_eq!(env.ok(&["ps", "-q"]), format!("{}\n", &i2[..12]));
    assert_eq!(env.ok(&["ps", "-q", "--no-trunc"]), format!("{i2}\n"));
    assert_eq!(env.ok(&["ps", "-a", "--format", "{{.Names}}"]), "i3\ni2\ni1\n");
    let names = |filters: &[&str]| {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in filters {
            args.extend_from_slice(&["--filter", f]);
        }
        env.ok(&args).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(names(&["status=exited"]), ["i1"]);
    assert_eq!(names(&["status=running"]), ["i2"]);
    assert_eq!(names(&["status=created"]), ["i3"]);
    assert_eq!(names(&["exited=3"]), ["i1"]);
    assert_eq!(names(&["exited=0"]), Vec::<String>::new());
    assert_eq!(names(&["name=i2"]), ["i2"]);
    assert_eq!(names(&["label=app=db"]), ["i2"]);
    assert_eq!(names(&["label=app"]), ["i2", "i1"]);
    assert_eq!(names(&["label=app", "status=exited"]), ["i1"]);
    assert_eq!(names(&[&format!("id={}", &i3[..6])]), ["i3"]);
    // A status filter implies -a.
    assert_eq!(
        env.ok(&["ps", "--filter", "status=exited", "--format", "{{.Names}}"]),
        "i1\n"
    );
    env.expect(&["ps", "--filter", "colour=red"], 1);

    let rows = env.ok(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}|{{.Status}}|{{.State}}|{{.Command}}|{{.Image}}",
    ]);
    let rows: BTreeMap<&str, Vec<&str>> = rows
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f[0], f[1..].to_vec())
        })
        .collect();
    let exited = rows["i1"][0];
    assert!(
        exited.starts_with("Exited (3) ") && exited.ends_with(" ago"),
        "{exited}"
    );
    assert!(rows["i2"][0].starts_with("Up "), "{:?}", rows["i2"]);
    assert_eq!(rows["i3"][..2], ["Created", "created"]);
    assert_eq!(rows["i2"][1..], ["running", "\"sleep 60\"", IMG]);
    let table = env.ok(&["ps", "-a", "--no-trunc"]);
    assert!(table.lines().any(|l| l.starts_with(&i2)), "{table}");

    // prune: the stopped ones go, the running one stays.
    let out = env.ok(&["container", "prune", "-f"]);
    let i1 = env.run(&["inspect", "-f", "{{.Id}}", "i1"]);
    assert_eq!(code(&i1), 1);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert!(out.contains(&format!("\n{i3}\n")), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(env.ok(&["ps", "-a", "--format", "{{.Names}}"]), "i2\n");
    env.finish();
}

// ---------------------------------------------------------------------------------------
// 3. -it through a real terminal

/// `run -it` on a pty: typed commands run, the exit code comes back; ctrl-p ctrl-q
/// detaches and leaves the container running; attach takes it up again.
#[test]
fn interactive_terminal_and_detach_keys() {
    let Some(env) = env("interactive_terminal_and_detach_keys") else {
        return;
    };
    let t = Duration::from_secs(20);
    let mut cmd = env.berth();
    cmd.args(["run", "-it", "--rm", IMG, "sh"]);
    let mut pty = OnPty::spawn(cmd);
    pty.expect("# ", t);
    pty.send("tty; echo $((6*7)); echo $TERM\r");
    pty.expect("/dev/pts/0", t);
    pty.expect("42", t);
    pty.expect("xterm", t);
    pty.send("exit 5\r");
    assert_eq!(pty.wait(t).code(), Some(5), "{}", pty.seen);
    assert_eq!(env.ok(&["ps", "-aq"]), "");

    let mut cmd = env.berth();
    cmd.args(["run", "-it", "--name", "tt", IMG, "sh"]);
    let mut pty = OnPty::spawn(cmd);
    pty.expect("# ", t);
    pty.send("echo before; sleep 0.1\r");
    pty.expect("before", t);
    pty.send("\x10\x11");
    assert_eq!(pty.wait(t).code(), Some(0), "{}", pty.seen);
    assert_eq!(env.inspect("tt", "{{.State.Status}}"), "running");
    assert_eq!(
        env.ok(&["logs", "tt"]).matches("before").count(),
        2,
        "echoed and printed"
    );

    let mut cmd = env.berth();
    cmd.args(["attach", "tt"]);
    let mut pty = OnPty::spawn(cmd);
    pty.send("echo $((100+23))\r");
    pty.expect("123", t);
    pty.send("exit 6\r");
    assert_eq!(pty.wait(t).code(), Some(6), "{}", pty.seen);
    assert_eq!(env.inspect("tt", "{{.State.Status}} {{.State.ExitCode}}"), "exited 6");
    env.finish();
}

// ---------------------------------------------------------------------------------------
// 4. Many CLI processes at once

/// 50 `run -d` by 50 processes at once: 50 records, each once, distinct names, all
/// running; then 50 `rm -f` at once leave nothing.
#[test]
fn fifty_concurrent_runs_are_each_recorded_once() {
    let Some(env) = env("fifty_concurrent_runs_are_each_recorded_once") else {
        return;
    };
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| s.spawn(|| env.run(&["run", "-d", IMG, "sleep", "60"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ids = BTreeSet::new();
    for out in &outs {
        assert_eq!(code(out), 0, "{}", text(&out.stderr));
        let id = text(&out.stdout).trim().to_owned();
        assert!(is_id(&id), "{id}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 50);
    let listed = env.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}"]);
    let rows: Vec<Vec<&str>> = listed.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(rows.len(), 50, "{listed}");
    let listed_ids: BTreeSet<String> = rows.iter().map(|r| r[0].to_owned()).collect();
    assert_eq!(listed_ids, ids);
    let names: BTreeSet<&str> = rows.iter().map(|r| r[1]).collect();
    assert_eq!(names.len(), 50, "names are distinct: {listed}");
    assert!(rows.iter().all(|r| r[2] == "running"), "{listed}");
    for id in &ids {
        let procs = cgroup_procs(id);
        assert!(procs.len() == 1 && comm(procs[0]) == "sleep", "{id}: {procs:?}");
    }
    assert_eq!(env.all_ids(), ids, "one create event each");

    let ids: Vec<&String> = ids.iter().collect();
    std::thread::scope(|s| {
        for chunk in ids.chunks(1) {
            let env = &env;
            s.spawn(move || {
                let mut args = vec!["rm", "-f"];
                args.extend(chunk.iter().map(|s| s.as_str()));
                env.ok(&args);
            });
        }
    });
    assert_eq!(env.ok(&["ps", "-aq"]), "");
    env.finish();
}

// ---------------------------------------------------------------------------------------
// 5. Killed CLIs and monitors

/// Checks every record against reality: running ⇒ its pid is the `sleep` in its cgroup;
/// exited ⇒ no process in its cgroup; created ⇒ its command is not running.
fn assert_consistent(env: &Env) {
    // What a killed CLI left settles (its monitor still creating, say): checked until it holds.
    let mut found = Vec::new();
    let consistent = wait_for(Duration::from_secs(20), || {
        found = inconsistencies(env);
        found.is_empty()
    });
    assert!(consistent, "{found:#?}");
}

/// Where records and processes disagree: a running record's pid is its `sleep`, alone in
/// its cgroup; an exited one has no process; a created one runs no `sleep` and has no pid.
fn inconsistencies(env: &Env) -> Vec<String> {
    let listed = env.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}"]);
    let mut found = Vec::new();
    for line in listed.lines() {
        let (id, state) = line.split_once(' ').unwrap();
        let pid = env.pid(id);
        let procs = cgroup_procs(id);
        let ok = match state {
            "running" => pid > 0 && comm(pid) == "sleep" && procs == [pid],
            "exited" => procs.is_empty(),
            "created" => pid == 0 && procs.iter().all(|p| comm(*p) != "sleep"),
            _ => false,
        };
        if !ok {
            found.push(format!("{id} {state}: pid {pid} ({:?}), cgroup {procs:?}", comm(pid)));
        }
    }
    found
}

/// The berth-monitor of container `id`: the process running berth-monitor on its config
/// that is not the container's (not yet exec'd) init.
fn monitor_of(env: &Env, id: &str) -> i32 {
    let config = env.root.path().join("containers").join(id).join("monitor.json");
    let config = config.to_string_lossy().into_owned();
    let mut found: Vec<i32> = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&config) {
                found.push(pid);
            }
        }
    }
    // Its own children (a created container's init) have it as parent.
    let monitors: Vec<i32> = found
        .iter()
        .copied()
        .filter(|p| !found.contains(&proc_stat(*p).1))
        .collect();
    assert_eq!(monitors.len(), 1, "monitors of {id}: {found:?}");
    monitors[0]
}

/// kill -9 of `run -d` at several points, and of monitors of running containers: the store
/// stays consistent with reality, every container can be started or removed, nothing is
/// left.
#[test]
fn killed_cli_and_monitor_leave_a_consistent_store() {
    let Some(env) = env("killed_cli_and_monitor_leave_a_consistent_store") else {
        return;
    };
    // Kill points spread over what one whole `run -d` takes here and now.
    let t = Instant::now();
    env.detach(&["--name", "whole", IMG, "sleep", "60"]);
    let whole = t.elapsed();
    for k in 0..12u32 {
        let mut cmd = env.berth();
        cmd.args(["run", "-d", IMG, "sleep", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(whole * k / 12);
        let _ = child.kill();
        let _ = child.wait();
    }
    // Monitors left by the killed CLIs settle (assert_consistent waits for it).
    assert_consistent(&env);
    // Whatever a killed run left can be started.
    let states = env.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}"]);
    eprintln!("after the killed runs:\n{states}");
    for line in states.lines() {
        let (id, state) = line.split_once(' ').unwrap();
        if state == "created" {
            env.ok(&["start", id]);
            assert_eq!(env.inspect(id, "{{.State.Status}}"), "running");
        }
    }
    assert_consistent(&env);

    // Monitors killed: one container keeps running, one ends meanwhile.
    let keeps = env.detach(&["--name", "keeps", IMG, "sleep", "60"]);
    // Long enough to outlast the look-up of its monitor on a slow machine.
    let ends = env.detach(&["--name", "ends", IMG, "sleep", "5"]);
    for id in [&keeps, &ends] {
        let m = monitor_of(&env, id);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(m), nix::sys::signal::SIGKILL).unwrap();
    }
    assert_eq!(env.inspect("keeps", "{{.State.Status}}"), "running");
    assert!(env.inspect("keeps", "{{.State.Error}}").contains("monitor"));
    assert_consistent(&env);
    assert!(wait_for(Duration::from_secs(10), || env
        .inspect("ends", "{{.State.Status}}")
        == "exited"));
    assert_eq!(
        env.inspect("ends", "{{.State.ExitCode}}"),
        "255",
        "its code was lost with its monitor"
    );
    assert_consistent(&env);
    // Without its monitor, `stop` still ends it.
    env.ok(&["stop", "-t", "1", "keeps"]);
    assert_eq!(env.inspect("keeps", "{{.State.Status}}"), "exited");
    assert_consistent(&env);
    // rm -f removes everything; a killed create's half-made snapshot is the garbage
    // collector's (image prune), as for images.
    let ids = env.ok(&["ps", "-aq"]);
    let mut args = vec!["rm", "-f"];
    args.extend(ids.split_whitespace());
    env.ok(&args);
    env.ok(&["image", "prune", "-f"]);
    env.finish();
}

/// A monitor still creating its container when its CLI was killed (a stand-in here: a
/// process naming the container, its status "creating", gone a second later): `start` and
/// `rm -f` wait for its outcome before they take the container over or apart.
#[test]
fn a_monitor_still_creating_is_waited_for() {
    let Some(env) = env("a_monitor_still_creating_is_waited_for") else {
        return;
    };
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    for cmd in ["start", "rm"] {
        let id = env.ok(&["create", IMG, "sleep", "60"]).trim().to_owned();
        let dir = env.root.path().join("containers").join(&id);
        let done = env.dir().join(format!("{cmd}-done"));
        // `exit` last: a shell execs its last command, whose command line would not name
        // the container before the mark is made.
        let script = format!("sleep 1; touch {}; exit 0", done.display());
        let mut stand_in = Command::new("sh").args(["-c", &script, &id]).spawn().unwrap();
        let status = serde_json::json!({
            "monitor_pid": stand_in.id(),
            "state": "creating",
            "pid": 0,
            "started_at": "",
            "finished_at": "",
            "exit_code": 0,
            "oom_killed": false,
            "restart_count": 0,
            "error": "",
            "stopped_by_user": false,
        });
        std::fs::write(dir.join("status.json"), status.to_string()).unwrap();
        if cmd == "start" {
            env.ok(&["start", &id]);
            // Its own monitor was set up only once the stand-in had gone.
            assert!(done.exists(), "start went on while the monitor was creating");
            assert!(mtime(&done) <= mtime(&dir.join("monitor.json")));
            assert_eq!(env.inspect(&id, "{{.State.Status}}"), "running");
        } else {
            env.ok(&["rm", "-f", &id]);
            assert!(done.exists(), "rm -f returned before the monitor was gone");
        }
        stand_in.wait().unwrap();
    }
    env.finish();
}

/// A cgroup the runtime no longer knows (its monitor killed while the runtime was creating
/// the container, the init left waiting in it; a stand-in here: a process put in
/// `berth/<id>` by hand): `start` kills what is in it before creating the container anew,
/// and `rm -f` kills it and removes the group.
#[test]
fn an_orphan_cgroup_is_taken_down_by_start_and_rm() {
    use std::os::unix::process::ExitStatusExt;
    let Some(env) = env("an_orphan_cgroup_is_taken_down_by_start_and_rm") else {
        return;
    };
    // A v1 pids hierarchy, else the v2 one.
    let top = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("cgroup.procs").exists())
        .unwrap();
    for cmd in ["start", "rm"] {
        let id = env.ok(&["create", IMG, "sleep", "60"]).trim().to_owned();
        let group = top.join("berth").join(&id);
        let mut stray = Command::new("sleep").arg("60").spawn().unwrap();
        // Again if a parallel test's `rm` removes the shared, empty `berth` meanwhile.
        let placed = wait_for(Duration::from_secs(10), || {
            std::fs::create_dir_all(&group).is_ok()
                && std::fs::write(group.join("cgroup.procs"), stray.id().to_string()).is_ok()
        });
        assert!(placed, "putting {} in {}", stray.id(), group.display());
        if cmd == "start" {
            env.ok(&["start", &id]);
            let pid: i32 = env.inspect(&id, "{{.State.Pid}}").parse().unwrap();
            assert_eq!(cgroup_procs(&id), [pid]);
        } else {
            env.ok(&["rm", "-f", &id]);
            assert_eq!(cgroup_dirs(&id), Vec::<PathBuf>::new());
        }
        assert_eq!(
            stray.wait().unwrap().signal(),
            Some(9),
            "{cmd} killed the stray process"
        );
    }
    env.finish();
}

/// A host reboot, simulated (processes, mounts, cgroups, network namespaces, bridges, nft
/// table and runroot gone; the root kept), then `system boot`, as a boot unit runs it: the
/// containers come back as dockerd brings its own back when it starts.
#[test]
fn system_boot_brings_back_what_restart_policies_ask_for() {
    let Some(env) = env("system_boot_brings_back_what_restart_policies_ask_for") else {
        return;
    };
    env.ok(&["network", "create", "bootnet"]);
    let serve = ["httpd", "-f", "-p", "80", "-h", "/etc"];
    let mut args = vec![
        "--name",
        "always",
        "--restart",
        "always",
        "--network",
        "bootnet",
        "-p",
        "8080:80",
        IMG,
    ];
    args.extend(serve);
    env.detach(&args);
    for (name, policy) in [
        ("always-stopped", "always"),
        ("unless", "unless-stopped"),
        ("unless-stopped", "unless-stopped"),
        ("on-failure", "on-failure"),
        ("plain", "no"),
    ] {
        env.detach(&[
            "--name",
            name,
            "--restart",
            policy,
            "--network",
            "bootnet",
            IMG,
            "sleep",
            "600",
        ]);
    }
    env.detach(&["--name", "removed", "--rm", IMG, "sleep", "600"]);
    env.ok(&["stop", "-t", "0", "always-stopped", "unless-stopped"]);
    env.ok(&["create", "--name", "never-started", "--restart", "always", IMG, "true"]);

    env.power_off();
    // Before the boot: the containers that were running are known to have ended.
    assert_eq!(
        env.inspect("always", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 255"
    );

    let out = env.ok(&["system", "boot"]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "removed removed",
            "started always",
            "started always-stopped",
            "started unless"
        ],
        "{out}"
    );
    let state = |name: &str| env.inspect(name, "{{.State.Status}} {{.State.ExitCode}}");
    for name in ["always", "always-stopped", "unless"] {
        assert_eq!(state(name), "running 0", "{name}");
    }
    assert_eq!(state("unless-stopped"), "exited 137");
    assert_eq!(state("on-failure"), "exited 255");
    assert_eq!(state("plain"), "exited 255");
    assert_eq!(state("never-started"), "created 0");
    let (_, err) = env.expect(&["inspect", "removed"], 1);
    assert!(err.contains("No such"), "{err}");
    // Networking came back: the bridge, the name server and the published port (once the
    // restarted httpd listens).
    let reach = || code(&env.run(&["exec", "unless", "nc", "-w", "1", "always", "80"])) == 0;
    assert!(
        wait_for(Duration::from_secs(10), reach),
        "unless cannot reach always:80"
    );
    let short = env.id("always")[..12].to_owned();
    let mut got = String::new();
    let served = wait_for(Duration::from_secs(10), || {
        got = text(
            &env.on_host(&["busybox", "wget", "-qO-", "http://127.0.0.1:8080/hostname"])
                .stdout,
        );
        got.trim() == short
    });
    assert!(served, "the published port gave {got:?}");
    // Again: nothing to do.
    assert_eq!(env.ok(&["system", "boot"]), "");
    assert_eq!(state("always"), "running 0");
    env.finish();
}

// ---------------------------------------------------------------------------------------
// 6. The same script against Docker

/// One dockerd at a time per test binary.
static DOCKER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Why the Docker comparison cannot run, if it cannot.
fn docker_skip_reason() -> Option<String> {
    use support::docker::engines::{docker_client, which};
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    if which("dockerd").is_none() || docker_client().is_none() {
        return Some("dockerd or docker missing (apt-get install docker.io; scripts/deps.sh does)".into());
    }
    None
}

/// A private dockerd 20.10 for a comparison test, in `dir`, with the test image imported; in
/// the network namespace `netns` with its bridge and iptables, or without a bridge. `None`
/// (said on stderr) when it cannot start.
fn comparison_docker(
    test: &str,
    dir: &Path,
    cgroup_parent: &str,
    netns: Option<&str>,
) -> Option<support::docker::Docker> {
    let data = dir.join("docker");
    let started = std::panic::catch_unwind(|| match netns {
        Some(ns) => support::docker::Docker::in_netns(&data, cgroup_parent, ns),
        None => support::docker::Docker::with_registry(&data, cgroup_parent, "127.0.0.1:1"),
    });
    let dk = match started {
        Ok(d) => d,
        Err(e) => {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            eprintln!("skipping {test}: dockerd could not be started: {why}");
            return None;
        }
    };
    let tar = dir.join("rootfs.tar");
    std::fs::write(&tar, rootfs_tar()).unwrap();
    dk.ok(&["import", "-c", r#"CMD ["sh"]"#, tar.to_str().unwrap(), IMG]);
    Some(dk)
}

/// Exit code, stdout and stderr of a command, for comparisons.
fn outcome(out: Output) -> (i32, String, String) {
    (code(&out), text(&out.stdout), text(&out.stderr))
}

/// The same commands against berth and a private dockerd 20.10 (runc), on the same
/// busybox rootfs imported into each: outputs compared where Docker's are not
/// host-specific (ids, times).
#[test]
fn same_script_as_docker() {
    const TEST: &str = "same_script_as_docker";
    if let Some(reason) = docker_skip_reason() {
        eprintln!("skipping {TEST}: {reason}");
        return;
    }
    let Some(env) = env(TEST) else { return };
    let _serial = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::Builder::new().prefix("berth-e2e-dk-").tempdir().unwrap();
    let Some(mut dk) = comparison_docker(TEST, tmp.path(), &format!("berth-e2e-{}", std::process::id()), None) else {
        env.finish();
        return;
    };
    let docker = |args: &[&str]| outcome(dk.run(args));
    let berth = |args: &[&str]| outcome(env.run(args));
    // Same exit code and stdout; stderr too where `err` says so.
    let same = |args: &[&str], err: bool| {
        let d = docker(args);
        let b = berth(args);
        assert_eq!((b.0, &b.1), (d.0, &d.1), "{args:?}: berth {b:?} docker {d:?}");
        if err {
            assert_eq!(b.2, d.2, "{args:?} stderr");
        }
        b
    };
    let n = ["--network", "none"];
    let run = |rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["run"].iter().chain(&n).map(|s| s.to_string()).collect();
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };

    let r = same(
        &strs(&run(&[
            "--name",
            "c1",
            IMG,
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ])),
        true,
    );
    assert_eq!(r.0, 3);
    same(&strs(&run(&["--rm", IMG, "echo", "hello", "world"])), true);
    same(&["inspect", "-f", "{{.State.ExitCode}}", "c1"], true);
    same(
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.Name}} {{.Config.Cmd}} {{.Path}} {{.Args}} {{.RestartCount}}",
            "c1",
        ],
        true,
    );
    same(&["logs", "c1"], true);
    same(
        &strs(&run(&["--name", "t1", IMG, "sh", "-c", "echo a; echo b; echo c"])),
        true,
    );
    same(&["logs", "--tail", "2", "t1"], true);
    same(&["logs", "--tail", "0", "t1"], true);
    let ps_c1 = ["ps", "-a", "--filter", "name=c1", "--format", "{{.Names}} {{.Status}}"];
    let (_, d, _) = docker(&ps_c1);
    let (_, b, _) = berth(&ps_c1);
    assert!(
        d.starts_with("c1 Exited (3) ") && b.starts_with("c1 Exited (3) "),
        "docker {d:?} berth {b:?}"
    );
    same(
        &[
            "ps",
            "-a",
            "--no-trunc",
            "--format",
            "{{.Command}} {{.State}} {{.Image}}",
        ],
        true,
    );
    same(&["ps", "-a", "--filter", "exited=3", "--format", "{{.Names}}"], true);

    // The environment: the same variables (HOSTNAME's value is the id).
    let env_of = |(c, out, _): (i32, String, String)| {
        let mut keys: Vec<String> = out
            .lines()
            .map(|l| {
                if l.starts_with("HOSTNAME=") {
                    "HOSTNAME=…".into()
                } else {
                    l.to_owned()
                }
            })
            .collect();
        keys.sort();
        (c, keys)
    };
    let args = run(&["--rm", "-e", "FOO=bar", "-e", "EMPTY=", "-w", "/tmp", IMG, "env"]);
    assert_eq!(env_of(berth(&strs(&args))), env_of(docker(&strs(&args))));
    let args = run(&["--rm", "-u", "app", IMG, "sh", "-c", "id; pwd; echo $HOME"]);
    same(&strs(&args), true);
    for user in [
        &["-u", "1000:2000"][..],
        &["-u", "4242"],
        &["--group-add", "extra"],
        &[],
    ] {
        let mut rest = vec!["--rm"];
        rest.extend_from_slice(user);
        rest.extend_from_slice(&[IMG, "id"]);
        same(&strs(&run(&rest)), true);
    }
    let args = run(&[
        "--rm",
        "--hostname",
        "hh",
        IMG,
        "sh",
        "-c",
        "hostname; cat /etc/hostname",
    ]);
    same(&strs(&args), true);
    let args = run(&[
        "--rm",
        IMG,
        "grep",
        "-E",
        "^(CapEff|CapBnd|NoNewPrivs|Seccomp):",
        "/proc/self/status",
    ]);
    same(&strs(&args), true);
    let args = run(&[
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_ADMIN",
        IMG,
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    same(&strs(&args), true);
    let args = run(&["--rm", IMG, "unshare", "-U", "true"]);
    same(&strs(&args), false);
    let args = run(&[
        "--rm",
        "--read-only",
        "--tmpfs",
        "/t",
        IMG,
        "sh",
        "-c",
        "touch /t/x && echo ok; touch /x",
    ]);
    same(&strs(&args), true);
    let args = run(&["--rm", "-i", IMG, "cat"]);
    let bo = env.run_input(&strs(&args), b"through stdin\n");
    let dout = output_with_input(dk.docker().args(&args), b"through stdin\n", CMD_TIMEOUT);
    assert_eq!((code(&bo), text(&bo.stdout)), (code(&dout), text(&dout.stdout)));

    // 126 and 127.
    for cmd in [
        &["no-such-command"][..],
        &["/no/such/file"],
        &["/etc/noexec"],
        &["/etc"],
    ] {
        let mut rest = vec!["--rm", IMG];
        rest.extend_from_slice(cmd);
        same(&strs(&run(&rest)), false);
    }
    same(&strs(&run(&["--rm", "--no-such-flag", IMG, "true"])), false);
    let args = run(&[
        "--name",
        "oom",
        "-m",
        "8m",
        IMG,
        "sh",
        "-c",
        "head -c 100m /dev/zero | tail -n 1",
    ]);
    same(&strs(&args), false);
    same(
        &["inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom"],
        true,
    );
    same(&["rm", "oom"], true);
    let args = run(&["--rm", "-m", "1k", IMG, "true"]);
    let (b, d) = (berth(&strs(&args)), docker(&strs(&args)));
    assert_eq!(b.0, d.0, "berth {b:?} docker {d:?}");
    let why = "Minimum memory limit allowed is 6MB";
    assert!(b.2.contains(why) && d.2.contains(why), "berth {b:?} docker {d:?}");

    // wait, exec, kill, stop; `run -d` prints ids, which differ.
    let both_detached = |rest: &[&str]| {
        let args = run(rest);
        for out in [docker(&strs(&args)), berth(&strs(&args))] {
            assert_eq!(out.0, 0, "{args:?}: {out:?}");
            assert!(is_id(out.1.trim()), "{args:?}: {out:?}");
        }
    };
    both_detached(&["-d", "--name", "wt", IMG, "sh", "-c", "sleep 0.3; exit 7"]);
    same(&["wait", "wt"], true);
    same(
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}",
            "wt",
        ],
        true,
    );
    both_detached(&["-d", "--name", "sl", IMG, "sleep", "60"]);
    same(&["exec", "sl", "sh", "-c", "exit 4"], true);
    same(
        &[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/etc",
            "-u",
            "app",
            "sl",
            "sh",
            "-c",
            "echo $X; pwd; id",
        ],
        true,
    );
    same(&["exec", "sl", "cat", "/proc/1/cmdline"], true);
    // Docker 20.10 prints exec's failure on stdout: the codes only.
    for args in [&["exec", "sl", "no-such-command"][..], &["exec", "sl", "/etc/noexec"]] {
        assert_eq!(berth(args).0, docker(args).0, "{args:?}");
    }
    // The columns (their widths follow the rows).
    let header = |out: (i32, String, String)| -> Vec<String> {
        let first = out.1.lines().next().unwrap_or_default().to_owned();
        first
            .split("   ")
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect()
    };
    assert_eq!(header(berth(&["ps"])), header(docker(&["ps"])));
    assert_eq!(
        header(berth(&["ps", "-a", "--no-trunc"])),
        header(docker(&["ps", "-a", "--no-trunc"]))
    );
    same(&["ps", "--format", "{{.Names}} {{.Command}} {{.State}}"], true);
    same(&["pause", "sl"], true);
    same(&["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "sl"], true);
    same(&["unpause", "sl"], true);
    same(&["kill", "-s", "TERM", "sl"], true);
    same(&["inspect", "-f", "{{.State.Status}}", "sl"], true);
    same(&["stop", "-t", "1", "sl"], true);
    same(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "sl"], true);
    same(&["start", "sl"], true);
    same(&["kill", "sl"], true);
    same(&["wait", "sl"], true);
    same(&["rename", "sl", "s2"], true);
    same(
        &["ps", "-a", "--filter", "name=s2", "--format", "{{.Names}} {{.State}}"],
        true,
    );
    same(&["rm", "c1", "t1", "wt", "s2"], true);
    same(&["ps", "-a", "--format", "{{.Names}}"], true);
    let (bc, _, be) = berth(&["rm", "nosuch"]);
    let (dc, _, de) = docker(&["rm", "nosuch"]);
    assert_eq!(bc, dc);
    assert!(
        be.contains("No such container: nosuch") && de.contains("No such container: nosuch"),
        "{be} / {de}"
    );

    let left = dk.shutdown();
    left.assert_clean("dockerd");
    env.finish();
}

/// Health checks: the monitor runs the probe at each interval; failures make the container
/// unhealthy after --health-retries, success healthy again, a probe past its timeout is
/// killed and counted; ps, inspect and the event journal show it as Docker does.
#[test]
fn health_checks_run_on_their_interval() {
    let Some(env) = env("health_checks_run_on_their_interval") else {
        return;
    };
    env.detach(&[
        "--name",
        "checked",
        "--health-cmd",
        "test -e /tmp/ok && echo fine",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        IMG,
        "sleep",
        "60",
    ]);
    // Starting, unless two probes failed already (a slow machine between run and inspect).
    let first = env.inspect("checked", "{{.State.Health.Status}}");
    assert!(matches!(first.as_str(), "starting" | "unhealthy"), "{first}");
    let status = |want: &str| {
        wait_for(Duration::from_secs(10), || {
            env.inspect("checked", "{{.State.Health.Status}}") == want
        })
    };
    assert!(
        status("unhealthy"),
        "{}",
        env.inspect("checked", "{{json .State.Health}}")
    );
    assert!(env.ok(&["ps", "--format", "{{.Status}}"]).contains("(unhealthy)"));
    env.ok(&["exec", "checked", "touch", "/tmp/ok"]);
    assert!(status("healthy"));
    let h: Value = serde_json::from_str(&env.inspect("checked", "{{json .State.Health}}")).unwrap();
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().unwrap();
    assert!(log.len() <= 5 && log.len() >= 3, "{h}");
    assert_eq!(log.last().unwrap()["Output"], "fine\n");
    // The last five: failures, then passes (how many of each depends on the machine's pace).
    let codes: Vec<i64> = log.iter().map(|e| e["ExitCode"].as_i64().unwrap()).collect();
    assert!(
        codes.windows(2).all(|w| w[0] >= w[1]) && codes.iter().all(|c| matches!(c, 0 | 1)),
        "{h}"
    );
    assert!(env.ok(&["ps", "--format", "{{.Status}}"]).contains("(healthy)"));
    let db = berth_engine::db::Db::open(&env.root.path().join("berth.db")).unwrap();
    let actions: Vec<String> = db
        .events_after(0)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("health_status"))
        .collect();
    assert_eq!(actions[..2], ["health_status: unhealthy", "health_status: healthy"]);
    // A probe that outlives its timeout is killed and reported as Docker reports it.
    env.detach(&[
        "--name",
        "slow",
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "200ms",
        "--health-retries",
        "1",
        IMG,
        "sleep",
        "60",
    ]);
    assert!(wait_for(Duration::from_secs(10), || {
        env.inspect("slow", "{{.State.Health.Status}}") == "unhealthy"
    }));
    let h: Value = serde_json::from_str(&env.inspect("slow", "{{json .State.Health}}")).unwrap();
    assert_eq!(h["Log"][0]["ExitCode"], -1);
    assert_eq!(h["Log"][0]["Output"], "Health check exceeded timeout (200ms)");
    // No probe process outlives it.
    let probes = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                    c.windows(11).any(|w| w == b"healthcheck")
                        && c.windows(env.dir().as_os_str().len())
                            .any(|w| w == env.dir().as_os_str().as_encoded_bytes())
                })
            })
            .count()
    };
    // --no-healthcheck and no flags: no Health at all.
    env.detach(&["--name", "plain", IMG, "sleep", "60"]);
    assert_eq!(env.doc("plain")["State"].get("Health"), None);
    env.expect(&["run", "--no-healthcheck", "--health-cmd", "true", IMG, "true"], 125);
    env.expect(&["run", "--health-interval", "soon", IMG, "true"], 125);
    env.ok(&["rm", "-f", "checked", "slow", "plain"]);
    assert!(wait_for(Duration::from_secs(10), || probes() == 0));
    env.finish();
}

/// On a host with only cgroup v2 (a stand-in: the test's own mount namespace with the v2
/// hierarchy on /sys/fs/cgroup, holding the controllers no v1 hierarchy has): `info` says so,
/// a container gets a v2 cgroup with its namespace, exec joins it, pause and unpause go
/// through `cgroup.freeze`, `top` and `stats` read it, a limit on a controller the host lacks
/// is refused by name (or applied where the host has it), and `rm` removes the cgroup.
#[test]
fn containers_run_on_a_cgroup2_only_host() {
    // The test looks at the containers' groups from outside its namespace: through the
    // host's own cgroup2 mount.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    if !mountinfo.lines().any(|l| l.contains(" - cgroup2 ")) {
        eprintln!("skipping containers_run_on_a_cgroup2_only_host: the host has no cgroup2 mount");
        return;
    }
    let Some(env) = Env::on_cgroup2_only(
        "containers_run_on_a_cgroup2_only_host",
        IMG,
        &[r#"CMD ["sh"]"#],
        rootfs_tar(),
    ) else {
        return;
    };
    let info = env.ok(&["info"]);
    assert!(info.contains(" Cgroup Version: 2\n"), "{info}");
    let id = env.detach(&["--name", "v2", IMG, "sleep", "60"]);
    let dirs = cgroup_dirs(&id);
    assert_eq!(dirs.len(), 1, "one v2 cgroup: {dirs:?}");
    let cgroup = &dirs[0];
    let pid: i32 = env.inspect("v2", "{{.State.Pid}}").parse().unwrap();
    assert_eq!(cgroup_procs(&id), [pid]);
    // The container sees its own cgroup as the root of a cgroup2 mount.
    let inside = env.ok(&[
        "exec",
        "v2",
        "sh",
        "-c",
        "cat /proc/self/cgroup; cat /proc/self/mountinfo",
    ]);
    assert!(inside.lines().any(|l| l == "0::/"), "{inside}");
    assert!(
        inside.contains(" /sys/fs/cgroup ") && inside.contains(" - cgroup2 "),
        "{inside}"
    );

    env.ok(&["pause", "v2"]);
    let freeze = || std::fs::read_to_string(cgroup.join("cgroup.freeze")).unwrap();
    assert_eq!(freeze(), "1\n");
    assert!(env
        .ok(&["ps", "--format", "{{.Status}}"])
        .trim_end()
        .ends_with("(Paused)"));
    env.ok(&["unpause", "v2"]);
    assert_eq!(freeze(), "0\n");
    assert!(env.ok(&["top", "v2"]).contains("sleep 60"));
    let stats = env.ok(&["stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", "v2"]);
    assert!(stats.starts_with("v2 "), "{stats}");

    // Controllers the host's v2 hierarchy offers (here those of no v1 hierarchy).
    let parent = cgroup.parent().unwrap().parent().unwrap();
    let offered = std::fs::read_to_string(parent.join("cgroup.controllers")).unwrap();
    let args = [
        "run",
        "--rm",
        "--memory",
        "64m",
        IMG,
        "cat",
        "/sys/fs/cgroup/memory.max",
    ];
    if offered.split_whitespace().any(|c| c == "memory") {
        assert_eq!(env.ok(&args), "67108864\n");
    } else {
        let (_, err) = env.expect(&args, 125);
        assert!(
            err.contains("the memory cgroup controller is not available on this host"),
            "{err}"
        );
    }
    env.ok(&["rm", "-f", "v2"]);
    assert_eq!(cgroup_dirs(&id), Vec::<PathBuf>::new());
    env.finish();
}

/// stats shows each container's cgroup use in Docker's columns; update changes limits of
/// a running container in its cgroup and its record, and the restart policy its monitor
/// applies.
#[test]
fn stats_and_update() {
    let Some(env) = env("stats_and_update") else {
        return;
    };
    let busy = env.detach(&["--name", "busy", "-m", "64m", IMG, "sh", "-c", "while :; do :; done"]);
    env.detach(&["--name", "idle", IMG, "sleep", "60"]);
    let out = env.ok(&["stats", "--no-stream"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for h in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(lines[0].contains(h), "{out}");
    }
    let row = |name: &str| -> Value {
        let out = env.ok(&["stats", "--no-stream", "--format", "{{json .}}", name]);
        serde_json::from_str(out.trim()).unwrap()
    };
    let b = row("busy");
    assert_eq!(b["ID"], &busy[..12]);
    let cpu: f64 = b["CPUPerc"].as_str().unwrap().trim_end_matches('%').parse().unwrap();
    // Well above idle, whatever else this machine runs meanwhile.
    assert!(cpu > 5.0, "a spinning shell uses a CPU: {b}");
    assert!(b["MemUsage"].as_str().unwrap().ends_with(" / 64MiB"), "{b}");
    assert_eq!(b["PIDs"], "1");
    let i = row("idle");
    let cpu: f64 = i["CPUPerc"].as_str().unwrap().trim_end_matches('%').parse().unwrap();
    assert!(cpu < 5.0, "{i}");
    // update: the cgroup and the record change while it runs.
    assert_eq!(
        env.ok(&[
            "update",
            "--cpus",
            "0.5",
            "--pids-limit",
            "9",
            "-m",
            "32m",
            "--memory-swap",
            "64m",
            "busy"
        ])
        .trim(),
        "busy"
    );
    assert_eq!(cgroup_file(&busy, "pids", "pids.max", "pids.max"), "9");
    assert_eq!(
        cgroup_file(&busy, "memory", "memory.limit_in_bytes", "memory.max"),
        (32 << 20).to_string()
    );
    assert_eq!(
        env.inspect(
            "busy",
            "{{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.Memory}}"
        ),
        format!("500000000 9 {}", 32 << 20)
    );
    let cpu: f64 = row("busy")["CPUPerc"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(cpu < 70.0, "throttled to half a CPU: {cpu}");
    let (_, err) = env.expect(&["update", "-m", "1m", "busy"], 1);
    assert!(err.contains("Minimum memory limit allowed is 6MB"), "{err}");
    env.expect(&["update", "--cpus", "1", "nosuch"], 1);
    // update --restart: the running monitor restarts the container when it dies.
    env.ok(&["update", "--restart", "always", "idle"]);
    assert_eq!(env.inspect("idle", "{{.HostConfig.RestartPolicy.Name}}"), "always");
    let pid = env.pid("idle");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let mut seen = String::new();
    let restarted = wait_for(Duration::from_secs(20), || {
        seen = env.inspect(
            "idle",
            "{{.RestartCount}} {{.State.Running}} {{.State.Status}} {{.State.Error}}",
        );
        seen.starts_with("1 true")
    });
    let status = std::fs::read_to_string(
        env.root
            .path()
            .join("containers")
            .join(env.id("idle"))
            .join("status.json"),
    );
    assert!(restarted, "{seen}; monitor's status: {status:?}");
    assert_ne!(env.pid("idle"), pid);
    // Live: the table is drawn again about every second until interrupted.
    let mut cmd = env.berth();
    cmd.args(["stats", "--format", "{{.Name}} {{.PIDs}}", "busy"]);
    let t = Instant::now();
    let mut live = Background::spawn(cmd);
    let redrawn = wait_for(Duration::from_secs(20), || live.stdout().matches("busy 1").count() >= 2);
    assert!(redrawn, "{}", live.stdout());
    let _ = live.child.kill();
    let _ = live.child.wait();
    let (draws, secs) = (live.stdout().matches("busy 1").count() as u64, t.elapsed().as_secs());
    assert!(draws <= secs + 2, "{draws} draws in {secs} s: {}", live.stdout());
    // A stopped container shows zeros with -a.
    env.ok(&["stop", "-t", "0", "busy"]);
    let out = env.ok(&[
        "stats",
        "--no-stream",
        "-a",
        "--format",
        "{{.Name}} {{.CPUPerc}} {{.MemUsage}}",
    ]);
    assert!(out.contains("busy 0.00% 0B / 0B"), "{out}");
    env.finish();
}

/// Networking end to end, in the test's own "host" network namespace: user networks with
/// name resolution, published ports from the host and between containers, isolation between
/// networks, an internal network without a way out, live connect and disconnect, and nothing
/// left once containers and networks are removed.
#[test]
fn networks_resolve_publish_and_isolate() {
    let Some(env) = env("networks_resolve_publish_and_isolate") else {
        return;
    };
    // "The outside world": an address on a link of the host with a web server on it.
    let ns = env.root.netns.clone().unwrap();
    for args in [
        // A veth pair with both ends here (no dummy driver needed).
        vec![
            "-n", &ns, "link", "add", "outside0", "type", "veth", "peer", "name", "outside1",
        ],
        vec!["-n", &ns, "addr", "add", "198.51.100.1/24", "dev", "outside0"],
        vec!["-n", &ns, "link", "set", "outside0", "up"],
        vec!["-n", &ns, "link", "set", "outside1", "up"],
    ] {
        let out = Command::new("ip").args(&args).output().unwrap();
        support::succeeded(&format!("ip {args:?}"), out, "");
    }
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "outside\n").unwrap();
    // Ended when dropped, even when the test fails.
    let _outside = Background::spawn({
        let mut c = env.root.on_host("busybox");
        c.args(["httpd", "-f", "-p", "198.51.100.1:8000", "-h"]).arg(www.path());
        c
    });
    // `nc` connects (0) or not (1) within a second.
    let reach = |args: &[&str], ip: &str, port: &str| -> bool {
        let mut all = args.to_vec();
        all.extend(["nc", "-w", "1", ip, port]);
        code(&env.run(&all)) == 0
    };

    env.ok(&["network", "create", "--subnet", "10.91.0.0/24", "front"]);
    env.ok(&["network", "create", "back"]);
    env.ok(&["network", "create", "--internal", "sealed"]);
    let (_, err) = env.expect(&["network", "create", "--subnet", "10.91.0.128/25", "clash"], 1);
    assert!(err.contains("Pool overlaps"), "{err}");
    let web = env.detach(&[
        "--name",
        "web",
        "--network",
        "front",
        "--network-alias",
        "www",
        "-p",
        "8080:80",
        IMG,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let web_ip = env.inspect("web", "{{.NetworkSettings.Networks.front.IPAddress}}");
    assert!(web_ip.starts_with("10.91.0."), "{web_ip}");
    assert_eq!(
        env.inspect("web", "{{.NetworkSettings.Networks.front.Gateway}}"),
        "10.91.0.1"
    );
    assert_eq!(
        env.inspect("web", "{{json .NetworkSettings.Networks.front.Aliases}}"),
        format!(r#"["www","{}"]"#, &web[..12])
    );
    // By name, alias and id prefix, from another container of the network.
    for name in ["web", "www", &web[..12]] {
        let got = env.ok(&[
            "run",
            "--rm",
            "--network",
            "front",
            IMG,
            "wget",
            "-qO-",
            &format!("http://{name}/hostname"),
        ]);
        assert_eq!(got.trim(), &web[..12], "{name}");
    }
    // `--dns` on a user network: resolv.conf names the network's server alone, which forwards
    // the container's other names to that resolver, as Docker's embedded server does. The
    // resolver: another berth-dns on the "outside" address, knowing one name.
    let resolver = tempfile::tempdir().unwrap();
    let resolver_cfg = resolver.path().join("dns.json");
    std::fs::write(
        &resolver_cfg,
        r#"{"listen": ["198.51.100.1:53"], "records": [{"name": "private.corp", "addresses": ["198.51.100.77"]}]}"#,
    )
    .unwrap();
    let pid_file = resolver.path().join("dns.pid");
    let _resolver = Background::spawn({
        let mut c = env.root.on_host(Path::new(support::BERTH).with_file_name("berth-dns"));
        c.arg("--config").arg(&resolver_cfg).arg("--pid-file").arg(&pid_file);
        c
    });
    assert!(
        wait_for(Duration::from_secs(10), || pid_file.exists()),
        "the resolver did not start"
    );
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "--dns",
        "198.51.100.1",
        IMG,
        "sh",
        "-c",
        "grep nameserver /etc/resolv.conf; nslookup private.corp",
    ]);
    let servers: Vec<&str> = out.lines().filter(|l| l.starts_with("nameserver")).collect();
    assert_eq!(servers, ["nameserver 10.91.0.1"], "{out}");
    assert!(out.contains("198.51.100.77"), "{out}");
    // `--dns` naming the network's own server: its default, not a loop or an error.
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        "--dns",
        "10.91.0.1",
        IMG,
        "nslookup",
        "web",
    ]);
    assert!(out.contains(&web_ip), "{out}");
    // The published port from the host, at 127.0.0.1 and at the host's own address.
    let got = env.on_host(&["busybox", "wget", "-qO-", "http://127.0.0.1:8080/hostname"]);
    assert_eq!(text(&got.stdout).trim(), &web[..12], "{}", text(&got.stderr));
    let got = env.on_host(&["busybox", "wget", "-qO-", "http://198.51.100.1:8080/hostname"]);
    assert_eq!(text(&got.stdout).trim(), &web[..12], "{}", text(&got.stderr));
    // Hairpin: a container of the same network through the host's address.
    assert!(reach(
        &["run", "--rm", "--network", "front", IMG],
        "198.51.100.1",
        "8080"
    ));
    assert_eq!(env.ok(&["port", "web"]), "80/tcp -> 0.0.0.0:8080\n80/tcp -> :::8080\n");
    let ps = env.ok(&["ps", "--format", "{{.Ports}} {{.Networks}}"]);
    assert_eq!(ps.trim(), "0.0.0.0:8080->80/tcp, :::8080->80/tcp front");
    // A port already held is refused.
    let (_, err) = env.expect(&["run", "--rm", "-p", "8080:80", IMG, "true"], 125);
    assert!(err.contains("port is already allocated"), "{err}");
    // Another network cannot reach the container; the default bridge has a way out, an
    // internal network none.
    assert!(!reach(&["run", "--rm", "--network", "back", IMG], &web_ip, "80"));
    assert!(!reach(&["run", "--rm", IMG], &web_ip, "80"));
    let got = env.ok(&["run", "--rm", IMG, "wget", "-qO-", "http://198.51.100.1:8000/"]);
    assert_eq!(got, "outside\n");
    assert!(!reach(
        &["run", "--rm", "--network", "sealed", IMG],
        "198.51.100.1",
        "8000"
    ));
    // Connect and disconnect change reachability while the container runs.
    env.detach(&["--name", "probe", "--network", "back", IMG, "sleep", "60"]);
    assert!(!reach(&["exec", "probe"], &web_ip, "80"));
    env.ok(&["network", "connect", "front", "probe"]);
    let got = env.ok(&["exec", "probe", "wget", "-qO-", "http://web/hostname"]);
    assert_eq!(got.trim(), &web[..12]);
    assert_eq!(
        env.inspect("probe", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"),
        "back front"
    );
    env.ok(&["network", "disconnect", "front", "probe"]);
    assert!(!reach(&["exec", "probe"], &web_ip, "80"));
    let (_, err) = env.expect(&["network", "rm", "front"], 1);
    assert!(err.contains("has active endpoints"), "{err}");
    // An IPv6 network; -P with --expose and port ranges.
    env.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.95.0.0/24",
        "--subnet",
        "fd95::/64",
        "six",
    ]);
    let web6 = env.detach(&[
        "--name",
        "web6",
        "--network",
        "six",
        IMG,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let a6 = env.inspect("web6", "{{.NetworkSettings.Networks.six.GlobalIPv6Address}}");
    assert!(a6.starts_with("fd95::"), "{a6}");
    let got = env.ok(&[
        "run",
        "--rm",
        "--network",
        "six",
        IMG,
        "wget",
        "-qO-",
        &format!("http://[{a6}]/hostname"),
    ]);
    assert_eq!(got.trim(), &web6[..12]);
    env.detach(&[
        "--name",
        "pub",
        "-P",
        "--expose",
        "80",
        "--expose",
        "7000-7001/udp",
        "-p",
        "9000-9001:80-81",
        IMG,
        "sleep",
        "60",
    ]);
    let ports = env.ok(&["port", "pub"]);
    for want in [
        "80/tcp -> 0.0.0.0:9000",
        "81/tcp -> 0.0.0.0:9001",
        "7000/udp -> 0.0.0.0:",
        "7001/udp -> 0.0.0.0:",
    ] {
        assert!(ports.contains(want), "{want}: {ports}");
    }
    assert_eq!(ports.lines().count(), 8, "{ports}");
    // Removing it all leaves the default bridge only.
    env.ok(&["rm", "-f", "web", "probe", "web6", "pub"]);
    env.ok(&["network", "rm", "front", "back", "sealed", "six"]);
    env.ok(&["network", "create", "spare"]);
    assert_eq!(env.ok(&["network", "prune", "-f"]), "Deleted Networks:\nspare\n");
    assert_eq!(
        env.ok(&["network", "ls", "--format", "{{.Name}}"]),
        "bridge\nhost\nnone\n"
    );
    let links = env.host_links();
    assert!(
        links
            .iter()
            .all(|l| ["lo", "berth0", "outside0", "outside1"].contains(&l.as_str())),
        "{links:?}"
    );
    let rules = text(&env.on_host(&["nft", "list", "table", "inet", "berth"]).stdout);
    assert!(!rules.contains("10.91.") && !rules.contains("8080"), "{rules}");
    env.finish();
}

/// The networking scenario against a private dockerd 20.10 with its bridge and iptables,
/// each engine in a network namespace of its own: outputs compared where Docker's are not
/// host-specific.
#[test]
fn networks_same_as_docker() {
    const TEST: &str = "networks_same_as_docker";
    if let Some(reason) = docker_skip_reason() {
        eprintln!("skipping {TEST}: {reason}");
        return;
    }
    let Some(env) = env(TEST) else { return };
    let _serial = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::Builder::new().prefix("berth-e2e-dkn-").tempdir().unwrap();
    // Docker's own "host": a second test namespace (its iptables policies would cut
    // berth's forwarding off in a shared one).
    let dk_host = Root::with_netns();
    let dk_ns = dk_host.netns.clone().unwrap();
    let cgroup_parent = format!("berth-e2e-n-{}", std::process::id());
    let Some(mut dk) = comparison_docker(TEST, tmp.path(), &cgroup_parent, Some(&dk_ns)) else {
        env.finish();
        return;
    };
    let docker = |args: &[&str]| outcome(dk.run(args));
    let berth = |args: &[&str]| outcome(env.run(args));
    // Same exit code, and same stdout unless `out` is false.
    let same = |args: &[&str], out: bool| {
        let d = docker(args);
        let b = berth(args);
        assert_eq!(b.0, d.0, "{args:?}: berth {b:?} docker {d:?}");
        if out {
            assert_eq!(b.1, d.1, "{args:?}: berth {b:?} docker {d:?}");
        }
        (b, d)
    };
    let on_host = |ns: &str, cmd: &[&str]| -> String {
        let out = support::docker::engines::output(
            Command::new("nsenter").arg(format!("--net=/run/netns/{ns}")).args(cmd),
            CMD_TIMEOUT,
        );
        text(&out.stdout)
    };
    let berth_ns = env.root.netns.clone().unwrap();

    same(&["network", "create", "--subnet", "10.93.0.0/24", "front"], false);
    same(
        &["network", "create", "--subnet", "10.94.0.0/24", "--internal", "sealed"],
        false,
    );
    same(&["network", "create", "--subnet", "10.93.0.128/25", "clash"], false);
    same(&["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"], true);
    same(
        &[
            "network",
            "inspect",
            "-f",
            // Docker 20.10 leaves Gateway out of IPAM.Config when only --subnet was given.
            "{{json .IPAM.Config}} {{.Internal}} {{.Driver}}",
            "front",
            "sealed",
        ],
        true,
    );
    let web = [
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "--network-alias",
        "www",
        "-p",
        "8080:80",
        IMG,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ];
    same(&web, false);
    same(
        &["inspect", "-f", "{{.NetworkSettings.Networks.front.IPAddress}} {{.NetworkSettings.Networks.front.Gateway}} {{.NetworkSettings.Networks.front.IPPrefixLen}} {{.NetworkSettings.Networks.front.MacAddress}}", "web"],
        true,
    );
    same(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"], true);
    same(&["port", "web"], true);
    same(&["port", "web", "80/tcp"], true);
    same(&["ps", "--format", "{{.Names}} {{.Ports}}"], true);
    // By name and alias: each engine's web answers with its own hostname.
    for name in ["web", "www"] {
        let args = [
            "run",
            "--rm",
            "--network",
            "front",
            IMG,
            "wget",
            "-qO-",
            &format!("http://{name}/hostname"),
        ];
        let (b, d) = same(&args, false);
        assert_eq!(
            b.1.trim(),
            berth(&["inspect", "-f", "{{.Config.Hostname}}", "web"]).1.trim()
        );
        assert_eq!(
            d.1.trim(),
            docker(&["inspect", "-f", "{{.Config.Hostname}}", "web"]).1.trim()
        );
    }
    // The published port from each one's host.
    let b = on_host(
        &berth_ns,
        &["busybox", "wget", "-qO-", "http://127.0.0.1:8080/hostname"],
    );
    let d = on_host(&dk_ns, &["busybox", "wget", "-qO-", "http://127.0.0.1:8080/hostname"]);
    assert_eq!(
        b.trim(),
        berth(&["inspect", "-f", "{{.Config.Hostname}}", "web"]).1.trim()
    );
    assert_eq!(
        d.trim(),
        docker(&["inspect", "-f", "{{.Config.Hostname}}", "web"]).1.trim()
    );
    // Isolation, the internal network, a port already held.
    same(
        &[
            "run",
            "--rm",
            "--network",
            "sealed",
            IMG,
            "nc",
            "-w",
            "1",
            "10.93.0.2",
            "80",
        ],
        true,
    );
    same(&["run", "--rm", IMG, "nc", "-w", "1", "10.93.0.2", "80"], true);
    same(&["run", "--rm", "-p", "8080:80", IMG, "true"], true);
    // Live connect and disconnect.
    same(&["run", "-d", "--name", "probe", IMG, "sleep", "60"], false);
    same(&["exec", "probe", "nc", "-w", "1", "10.93.0.2", "80"], true);
    same(&["network", "connect", "--ip", "10.93.0.50", "front", "probe"], true);
    same(&["exec", "probe", "wget", "-qO-", "http://10.93.0.2/hostname"], false);
    same(
        &[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.front.IPAddress}}",
            "probe",
        ],
        true,
    );
    same(&["network", "disconnect", "front", "probe"], true);
    same(&["exec", "probe", "nc", "-w", "1", "10.93.0.2", "80"], true);
    same(&["network", "rm", "front"], false);
    same(&["rm", "-f", "web", "probe"], true);
    same(&["network", "rm", "front", "sealed"], true);
    same(&["network", "ls", "--format", "{{.Name}}"], true);
    dk.shutdown();
    drop(dk_host);
    env.finish();
}

/// Flags the other tests leave out, each checked from inside the container or in its cgroup:
/// --device, --ulimit, --sysctl, --cpu-shares, --cpuset-cpus, --shm-size, --stop-timeout,
/// --dns-search, --add-host, --restart unless-stopped.
#[test]
fn remaining_run_flags_apply() {
    let Some(env) = env("remaining_run_flags_apply") else {
        return;
    };
    let script = "ls -l /dev/mynull | cut -c1; echo x > /dev/mynull && echo wrote; ulimit -n; ulimit -Hn; \
                  cat /proc/sys/net/ipv4/ip_forward; grep ' /dev/shm ' /proc/mounts; grep search /etc/resolv.conf; \
                  grep db /etc/hosts";
    let out = env.ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull",
        "--ulimit",
        "nofile=512:1024",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--shm-size",
        "8m",
        "--dns-search",
        "example.test",
        "--add-host",
        "db:10.1.2.3",
        IMG,
        "sh",
        "-c",
        script,
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "c", "a character device: {out}");
    assert_eq!(&lines[1..5], ["wrote", "512", "1024", "1"], "{out}");
    assert!(lines[5].contains("size=8192k"), "{out}");
    assert_eq!(lines[6], "search example.test", "{out}");
    assert_eq!(lines[7], "10.1.2.3\tdb", "{out}");
    // CPU weight and CPU set in the container's cgroup.
    let id = env.detach(&["--cpu-shares", "512", "--cpuset-cpus", "0", IMG, "sleep", "60"]);
    // (cgroup v2 has cpu.weight instead: 512 shares are weight 20.)
    let weight = cgroup_file(&id, "cpu", "cpu.shares", "cpu.weight");
    assert!(weight == "512" || weight == "20", "{weight}");
    assert_eq!(cgroup_file(&id, "cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
    env.ok(&["rm", "-f", &id]);
    // --stop-timeout: a process ignoring SIGTERM is killed after 1 s, not Docker's 10.
    env.detach(&[
        "--name",
        "stubborn",
        "--stop-timeout",
        "1",
        IMG,
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 1; done",
    ]);
    let t = Instant::now();
    env.ok(&["stop", "stubborn"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(9),
        "{took:?}"
    );
    assert_eq!(env.inspect("stubborn", "{{.State.ExitCode}}"), "137");
    // unless-stopped: the monitor restarts a killed process, not a stopped one.
    env.detach(&["--name", "keep", "--restart", "unless-stopped", IMG, "sleep", "60"]);
    let pid = env.pid("keep");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    assert!(wait_for(Duration::from_secs(10), || {
        env.inspect("keep", "{{.RestartCount}} {{.State.Running}}") == "1 true"
    }));
    env.ok(&["stop", "-t", "0", "keep"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.inspect("keep", "{{.State.Running}} {{.RestartCount}}"), "false 1");
    env.finish();
}
