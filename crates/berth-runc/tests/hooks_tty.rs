//! Hooks in order with the state on stdin; the console socket protocol.

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;

use common::*;

#[test]
fn all_hooks_run_in_order_with_state() {
    if !ready() {
        return;
    }
    let b = Bundle::new(&["true"]);
    let log = b.path().join("hooks.log");
    let mut b = b;
    let hook = |name: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo \"{name} $s\" >> {}", log.display())]});
    // createContainer and startContainer run in the container: use its shell and a bind-mounted log dir.
    let inner = |name: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo \"{name} $s\" >> /hooklog/hooks.log")]});
    b.config["hooks"] = serde_json::json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "startContainer": [inner("startContainer")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    });
    let src = b.path().to_path_buf();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"destination": "/hooklog", "type": "bind", "source": src, "options": ["rbind"]}));
    b.write();
    let rt = Runtime::berth();
    let id = id("hooks");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    rt.ok(&["start", &id]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    rt.ok(&["delete", "-f", &id]);
    let text = std::fs::read_to_string(&log).unwrap();
    let names: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        vec![
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{text}"
    );
    for line in text.lines() {
        let json: serde_json::Value = serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
        assert_eq!(json["id"], id.as_str());
        assert_eq!(json["bundle"], b.path().to_str().unwrap());
    }
    assert_gone(&rt, &id, &b);
}

#[test]
fn failing_prestart_hook_fails_create_and_cleans_up() {
    if !ready() {
        return;
    }
    let mut b = Bundle::new(&["true"]);
    b.config["hooks"] =
        serde_json::json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 2"]}]});
    b.write();
    let rt = Runtime::berth();
    let id = id("badhook");
    let out = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("prestart hook /bin/sh exited with exit status: 2: nope"),
        "{err}"
    );
    assert_gone(&rt, &id, &b);
}

#[test]
fn console_socket_receives_a_working_pty() {
    if !ready() {
        return;
    }
    let mut b = Bundle::new(&["sh"]);
    b.config["process"]["terminal"] = serde_json::json!(true);
    b.config["process"]["consoleSize"] = serde_json::json!({"height": 30, "width": 100});
    b.write();
    let sock_path = b.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let rt = Runtime::berth();
    let id = id("tty");
    let mut child = rt
        .cmd(&[
            "create",
            "--bundle",
            b.path().to_str().unwrap(),
            "--console-socket",
            sock_path.to_str().unwrap(),
            &id,
        ])
        .spawn()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    let master = berth_runtime::tty::recv_fd(conn.as_raw_fd()).unwrap();
    assert!(child.wait().unwrap().success());
    rt.ok(&["start", &id]);
    let mut m = std::fs::File::from(master);
    m.write_all(b"tty; stty size; echo $((6*7)); exit\n").unwrap();
    let out = read_until(&mut m, "42\r\n");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("30 100"), "{out}");
    assert!(out.contains("42"), "{out}");
    wait_stopped(&rt, &id);
    rt.ok(&["delete", &id]);
    assert_gone(&rt, &id, &b);
}

#[test]
fn terminal_without_console_socket_is_refused_when_detached() {
    if !ready() {
        return;
    }
    let mut b = Bundle::new(&["sh"]);
    b.config["process"]["terminal"] = serde_json::json!(true);
    b.write();
    let rt = Runtime::berth();
    let id = id("nosock");
    let out = rt.run(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("console socket"));
    assert_gone(&rt, &id, &b);
}

#[test]
fn spec_and_features_are_valid_json() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::berth();
    rt.ok(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["process"]["terminal"], true);
    let out = rt.run(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    assert!(!out.status.success(), "spec refuses to overwrite");
    let rl = tempfile::tempdir().unwrap();
    rt.ok(&["spec", "--rootless", "--bundle", rl.path().to_str().unwrap()]);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rl.path().join("config.json")).unwrap()).unwrap();
    assert!(spec["linux"]["uidMappings"].is_array());
    let f: serde_json::Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    assert!(f["linux"]["namespaces"].as_array().unwrap().iter().any(|n| n == "time"));
    assert_eq!(f["linux"]["cgroup"]["v1"], true);
}

#[test]
fn exec_tty_gets_its_own_pty_over_the_console_socket() {
    if !ready() {
        return;
    }
    let b = Bundle::new(&["sleep", "60"]);
    b.write();
    let rt = Runtime::berth();
    let id = id("exectty");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let sock_path = b.path().join("exec.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let mut child = rt
        .cmd(&[
            "exec",
            "-t",
            "-d",
            "--console-socket",
            sock_path.to_str().unwrap(),
            &id,
            "sh",
            "-c",
            "tty; read x; echo got-$x",
        ])
        .spawn()
        .unwrap();
    let (conn, _) = listener.accept().unwrap();
    let master = berth_runtime::tty::recv_fd(conn.as_raw_fd()).unwrap();
    assert!(child.wait().unwrap().success());
    let mut m = std::fs::File::from(master);
    m.write_all(b"ping\n").unwrap();
    let out = read_until(&mut m, "got-ping");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("got-ping"), "{out}");
    rt.ok(&["delete", "-f", &id]);
    assert_gone(&rt, &id, &b);
}
