//! seccomp: profiles from config.json loaded into the container's
//! processes, checked from inside (and against runc where it has the same
//! semantics).

mod common;

use common::*;
use serde_json::{json, Value};

/// Docker's default profile (fetched by scripts/deps.sh) in OCI form, for
/// the capabilities `berth-runc spec` gives.
fn docker_default(caps: &[&str]) -> Option<Value> {
    let path = std::env::var("BERTH_DOCKER_SECCOMP_PROFILE")
        .unwrap_or_else(|_| "/var/cache/berth-test/docker-seccomp-default.json".into());
    let Ok(raw) = std::fs::read(&path) else {
        eprintln!("skipping: Docker's default seccomp profile not found at {path} (scripts/deps.sh fetches it)");
        return None;
    };
    let target = berth_seccomp::docker::Target::host(caps.iter().map(|c| c.to_string()).collect()).unwrap();
    let oci = berth_seccomp::docker::convert(&raw, &target).unwrap();
    Some(serde_json::to_value(oci).unwrap())
}

fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn docker_default_profile_runs_a_busybox_shell() {
    if !ready() {
        return;
    }
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let Some(profile) = docker_default(&caps) else { return };
    let cache = tempfile::tempdir().unwrap();
    // Both load points: after no_new_privs (late) and before the identity
    // change (without no_new_privs).
    for nnp in [true, false] {
        let mut b = Bundle::new(&[
            "sh",
            "-c",
            "echo hello; grep Seccomp: /proc/self/status; ls / | wc -l; \
             unshare -m true 2>/dev/null && echo unshare-ok || echo unshare-denied",
        ]);
        b.config["linux"]["seccomp"] = profile.clone();
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.write();
        let rt = Runtime::berth();
        for round in 0..2 {
            let cid = id(&format!("docker-{nnp}-{round}"));
            let out = rt
                .cmd(&["run", "--bundle", b.path().to_str().unwrap(), &cid])
                .env("BERTH_SECCOMP_CACHE", cache.path())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines[0], "hello");
            assert_eq!(status_field(&text, "Seccomp:"), "2", "filter mode: {text}");
            assert_eq!(lines[3], "unshare-denied", "{text}");
            assert_gone(&rt, &cid, &b);
        }
    }
    // The compiled program was cached once, by content.
    let cached: Vec<_> = std::fs::read_dir(cache.path()).unwrap().flatten().collect();
    assert_eq!(cached.len(), 1, "one program per profile: {cached:?}");
}

/// berth's built-in default profile (berth_seccomp::docker::default_seccomp)
/// in a busybox shell, on berth-runc and runc. The container holds
/// CAP_SYS_ADMIN in the last two rounds, so what stops `unshare` and
/// `hostname` in the middle one is the filter alone.
#[test]
fn builtin_default_profile_runs_a_busybox_shell() {
    if !ready() {
        return;
    }
    let base = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let admin: Vec<&str> = base.iter().copied().chain(["CAP_SYS_ADMIN"]).collect();
    // (capabilities held, capabilities the profile is converted for, outcome)
    let rounds = [
        (&base[..], &base[..], "denied"),
        (&admin[..], &base[..], "denied"),
        (&admin[..], &admin[..], "ok"),
    ];
    for (i, (held, converted, want)) in rounds.into_iter().enumerate() {
        let caps = converted.iter().map(|c| c.to_string()).collect();
        let target = berth_seccomp::docker::Target::host(caps).unwrap();
        let profile = berth_seccomp::docker::default_seccomp(&target).unwrap();
        let mut b = Bundle::new(&[
            "sh",
            "-c",
            "echo hello; grep Seccomp: /proc/self/status; ls / | wc -l; \
             unshare -m true 2>/dev/null && echo unshare-ok || echo unshare-denied; \
             hostname berth-seccomp 2>/dev/null && echo hostname-ok || echo hostname-denied",
        ]);
        b.config["linux"]["seccomp"] = serde_json::to_value(profile).unwrap();
        for set in ["bounding", "effective", "permitted"] {
            b.config["process"]["capabilities"][set] = json!(held);
        }
        std::os::unix::fs::symlink("busybox", b.rootfs().join("bin").join("unshare")).unwrap();
        b.write();
        for rt in &runtimes() {
            let cid = id(&format!("builtin-{i}"));
            let (code, out, err) = rt.run_fg(&b, &cid);
            assert_eq!(code, 0, "{} round {i}: {err}", rt.bin);
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines[0], "hello", "{}: {out}", rt.bin);
            assert_eq!(status_field(&out, "Seccomp:"), "2", "{}: {out}", rt.bin);
            let (unshare, hostname) = (format!("unshare-{want}"), format!("hostname-{want}"));
            assert_eq!(lines[3..], [&unshare, &hostname], "{} round {i}: {out}", rt.bin);
            assert_gone(rt, &cid, &b);
        }
    }
}

#[test]
fn rules_actions_and_argument_conditions_like_runc() {
    if !ready() {
        return;
    }
    // Allow by default; kill with SIGUSR1 (arg 1 == 10) fails with EACCES
    // (13), other signals work; chmod fails with EPERM; the `sync` syscall
    // kills the process.
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]},
            {"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"}
        ]
    });
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "kill -USR1 $$ 2>&1 | grep -q 'Permission denied' && echo usr1-denied; \
         kill -0 $$ && echo kill0-ok; mkdir -p /tmp/b && echo mkdir-ok; \
         chmod 600 /tmp/b 2>&1 | grep -q 'Operation not permitted' && echo chmod-denied; \
         sh -c sync; echo sync-exit=$?",
    ]);
    b.config["linux"]["seccomp"] = profile;
    b.config["process"]["noNewPrivileges"] = json!(true);
    for a in ["sync", "chmod", "kill"] {
        std::os::unix::fs::symlink("busybox", b.rootfs().join("bin").join(a)).ok();
    }
    b.write();
    let want = ["usr1-denied", "kill0-ok", "mkdir-ok", "chmod-denied", "sync-exit=159"];
    let rts = runtimes();
    for rt in &rts {
        let cid = id("rules");
        let (code, out, err) = rt.run_fg(&b, &cid);
        assert_eq!(code, 0, "{}: {err}", rt.bin);
        assert_eq!(out.lines().collect::<Vec<_>>(), want, "{}: {err}", rt.bin);
        assert_gone(rt, &cid, &b);
    }
}

#[test]
fn exec_processes_get_the_filter_too() {
    if !ready() {
        return;
    }
    let mut b = Bundle::new(&["sleep", "60"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO"}]
    });
    b.write();
    let rt = Runtime::berth();
    let cid = id("exec-filter");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &cid]);
    let out = rt.ok(&[
        "exec",
        &cid,
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; chmod 600 /tmp 2>/dev/null && echo chmod-ok || echo chmod-denied",
    ]);
    assert_eq!(status_field(&out, "Seccomp:"), "2", "{out}");
    assert!(out.contains("chmod-denied"), "{out}");
    rt.ok(&["delete", "-f", &cid]);
    assert_gone(&rt, &cid, &b);
}

/// SCMP_ACT_NOTIFY: the notify descriptor and the container process state
/// reach the listener at listenerPath; once the listener closes it,
/// notified syscalls fail (ENOSYS) instead of hanging.
#[test]
fn notify_descriptor_goes_to_the_listener() {
    if !ready() {
        return;
    }
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("listener.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "mkdir /tmp/x 2>/dev/null && echo mkdir-ok || echo mkdir-failed",
    ]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "berth-test-metadata",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.write();
    let rt = Runtime::berth();
    let cid = id("notify");
    let accept = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 8192];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let mut fds = Vec::new();
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(v) = c {
                fds.extend(v);
            }
        }
        let n = msg.bytes;
        let state: Value = serde_json::from_slice(&buf[..n]).unwrap();
        let kind = std::fs::read_link(format!("/proc/self/fd/{}", fds[0])).unwrap();
        let _ = nix::unistd::close(fds[0]);
        (state, kind)
    });
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &cid]);
    let (state, kind) = accept.join().unwrap();
    assert_eq!(kind.to_string_lossy(), "anon_inode:seccomp notify");
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "berth-test-metadata");
    assert_eq!(state["state"]["id"], cid.as_str());
    assert_eq!(state["state"]["status"], "creating");
    assert_eq!(state["pid"], rt.state(&cid)["pid"]);
    let out = std::fs::File::create(dir.path().join("out")).unwrap();
    drop(out);
    rt.ok(&["start", &cid]);
    wait_stopped(&rt, &cid);
    rt.ok(&["delete", &cid]);
    assert_gone(&rt, &cid, &b);
}

#[test]
fn bad_profiles_are_refused_with_a_clear_error() {
    if !ready() {
        return;
    }
    let rt = Runtime::berth();
    for (profile, want) in [
        (json!({"defaultAction": "SCMP_ACT_FOO"}), "SCMP_ACT_FOO"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "listenerPath",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent.sock",
                   "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}),
            "is not supported: the runtime needs that system call after loading the filter",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "index 7",
        ),
    ] {
        let mut b = Bundle::new(&["true"]);
        b.config["linux"]["seccomp"] = profile;
        b.write();
        let cid = id("badseccomp");
        let (code, _, err) = rt.run_fg(&b, &cid);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(want), "{want}: {err}");
        assert_gone(&rt, &cid, &b);
    }
}
