//! create → start → kill → delete, run in both modes, pause/resume, exec,
//! update, events, ps, list — and that nothing is left behind.

mod common;

use common::*;

#[test]
fn run_foreground_gives_output_and_exit_code_like_runc() {
    if !ready() {
        return;
    }
    let b = Bundle::new(&["sh", "-c", "echo hi from $(hostname); exit 3"]);
    b.write();
    let rts = runtimes();
    for rt in &rts {
        let id = id("fg");
        let (code, out, err) = rt.run_fg(&b, &id);
        assert_eq!(code, 3, "{}: {err}", rt.bin);
        assert_eq!(out.trim(), "hi from berth", "{}", rt.bin);
        assert_gone(rt, &id, &b);
    }
}

#[test]
fn create_start_kill_delete_walks_the_states() {
    if !ready() {
        return;
    }
    let b = Bundle::new(&["sleep", "60"]);
    b.write();
    let rt = Runtime::berth();
    let id = id("states");
    let pidfile = b.path().join("pid");
    rt.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["bundle"], b.path().to_str().unwrap());
    let pid: i64 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert_eq!(st["pid"], pid);
    // The init process waits: its command is still the runtime, not sleep.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");
    assert!(!cgroup_dirs(&id).is_empty(), "cgroup made at create");

    rt.ok(&["start", &id]);
    assert_eq!(rt.status(&id), "running");
    let list = rt.ok(&["list"]);
    assert!(
        list.starts_with("ID") && list.contains(&id) && list.contains("running"),
        "{list}"
    );
    let json: serde_json::Value = serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    assert!(json.as_array().unwrap().iter().any(|c| c["id"] == id.as_str()));
    let ps: Vec<i64> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(ps, vec![pid]);

    rt.ok(&["kill", &id, "KILL"]);
    wait_stopped(&rt, &id);
    assert_eq!(rt.status(&id), "stopped");
    assert_eq!(rt.state(&id)["pid"], 0);
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn run_detached_then_force_delete() {
    if !ready() {
        return;
    }
    let b = Bundle::new(&["sh", "-c", "sleep 60 & sleep 60"]);
    b.write();
    let rt = Runtime::berth();
    let id = id("detach");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(rt.status(&id), "running");
    let out = rt.run(&["delete", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not stopped: running"));
    rt.ok(&["delete", "--force", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn pause_resume_freezes_the_cgroup() {
    if !ready() {
        return;
    }
    let b = Bundle::new(&["sleep", "60"]);
    b.write();
    let rt = Runtime::berth();
    let id = id("pause");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    rt.ok(&["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(stat.contains("State:\tD") || stat.contains("State:\tS"), "{stat}");
    let out = rt.run(&["pause", &id]);
    assert!(!out.status.success());
    rt.ok(&["resume", &id]);
    assert_eq!(rt.status(&id), "running");
    let out = rt.run(&["resume", &id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("container not paused"));
    rt.ok(&["delete", "-f", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn exec_runs_in_the_container_with_flags() {
    if !ready() {
        return;
    }
    let b = Bundle::new(&["sleep", "60"]);
    b.write();
    let rt = Runtime::berth();
    let id = id("exec");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = rt.ok(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        &id,
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u):$(id -g) $(hostname)",
    ]);
    assert_eq!(out.trim(), "bar /tmp 1000:1000 berth");
    // Same pid namespace as init: init is pid 1 there.
    let out = rt.ok(&["exec", &id, "cat", "/proc/1/cmdline"]);
    assert!(out.starts_with("sleep"), "{out}");
    let out = rt.run(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let out = rt.run(&["exec", &id, "no-such-binary"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found"));
    // --process FILE and --detach with a pid file.
    let proc_json =
        serde_json::json!({"cwd": "/", "args": ["sleep", "30"], "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
    let pf = b.path().join("process.json");
    std::fs::write(&pf, proc_json.to_string()).unwrap();
    let pidf = b.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "--process",
        pf.to_str().unwrap(),
        "-d",
        "--pid-file",
        pidf.to_str().unwrap(),
        &id,
    ]);
    let epid: i32 = std::fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    let ps: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(ps.contains(&epid), "{ps:?} lacks {epid}");
    // --cap adds a capability for this process only.
    let out = rt.ok(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        &id,
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    let eff = u64::from_str_radix(out.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert!(eff & (1 << 21) != 0, "{out}");
    rt.ok(&["delete", "-f", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn update_events_and_kill_all() {
    if !ready() {
        return;
    }
    let b = Bundle::new(&["sh", "-c", "sleep 60 & sleep 60; echo"]);
    b.write();
    let rt = Runtime::berth();
    let id = id("update");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    rt.ok(&["update", "--pids-limit", "42", "--memory", "64m", &id]);
    let pids_max = cgroup_dirs(&id)
        .into_iter()
        .find(|p| p.starts_with("/sys/fs/cgroup/pids"))
        .unwrap()
        .join("pids.max");
    assert_eq!(std::fs::read_to_string(&pids_max).unwrap().trim(), "42");
    let res = b.path().join("res.json");
    std::fs::write(&res, r#"{"pids":{"limit":77}}"#).unwrap();
    rt.ok(&["update", "-r", res.to_str().unwrap(), &id]);
    assert_eq!(std::fs::read_to_string(&pids_max).unwrap().trim(), "77");
    // sh and its two sleeps, once sh has forked both.
    let stats = || -> serde_json::Value { serde_json::from_str(&rt.ok(&["events", "--stats", &id])).unwrap() };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut ev = stats();
    while ev["data"]["pids"]["current"] != 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        ev = stats();
    }
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["pids"]["current"], 3, "{ev}");
    assert_eq!(ev["data"]["pids"]["limit"], 77);
    rt.ok(&["kill", "--all", &id, "KILL"]);
    wait_stopped(&rt, &id);
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
}
