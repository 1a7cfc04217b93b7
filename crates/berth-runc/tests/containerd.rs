//! berth-runc under containerd 1.6 (Debian's): `ctr run --runc-binary`
//! through containerd-shim-runc-v2, which calls berth-runc with `--root`,
//! `--log <bundle>/log.json --log-format json` and create, start, state,
//! exec, ps, pause, resume, kill and delete. One private containerd serves
//! every scenario; the busybox image is built locally and imported.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::engines::*;
use common::image::*;
use common::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// What `ctr task ls` says of `id` (RUNNING, PAUSED, STOPPED...).
fn task_status(ctd: &Containerd, id: &str) -> String {
    let out = ok(ctd.ctr().args(["task", "ls"]));
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("")
        .to_string()
}

#[test]
fn ctr_runs_berth_runc_through_the_shim() {
    if !ready_containerd() {
        return;
    }
    let t0 = Instant::now();
    let tmp = tempfile::Builder::new().prefix("berth-ctd-").tempdir().unwrap();
    let namespace = format!("berth-e2e-{}-ctd", std::process::id());
    let image = tmp.path().join("busybox.tar");
    busybox_image_tarball(&image);
    let fifos = tmp.path().join("fifo");
    let runc_root = tmp.path().join("runc");
    // berth-runc's --root as the shim passes it: <runc-root>/<namespace>.
    let berth_root = runc_root.join(&namespace);
    let mut ctd = Containerd::start(&tmp.path().join("containerd"), &namespace);
    eprintln!("image built, containerd up: {:?}", t0.elapsed());

    let out = ok(ctd.ctr().args(["image", "import"]).arg(&image));
    assert!(out.contains(BUSYBOX_IMAGE_CTR), "{out}");
    assert!(ok(ctd.ctr().args(["image", "ls", "-q"])).contains(BUSYBOX_IMAGE_CTR));

    // `ctr run` with our runtime, its state and fifos in our temp dir.
    let run = |extra: &[&str], id: &str, args: &[&str]| {
        let mut c = ctd.ctr();
        c.args(["run", "--runc-binary", BERTH])
            .arg("--runc-root")
            .arg(&runc_root)
            .arg("--fifo-dir")
            .arg(&fifos)
            .args(extra)
            .args([BUSYBOX_IMAGE_CTR, id])
            .args(args);
        c
    };

    // Foreground: stdout and stderr reach ctr, the exit code is ctr's.
    let t = Instant::now();
    let id_fg = id("ctr-fg");
    let out = output(
        &mut run(&["--rm"], &id_fg, &["sh", "-c", "echo out; echo err >&2; exit 7"]),
        CMD_TIMEOUT,
    );
    assert_eq!(code(&out), 7, "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err"), "{}", text(&out.stderr));
    eprintln!("ctr run (output, exit code): {:?}", t.elapsed());

    // A failing create: berth-runc's error reaches ctr through log.json.
    let id_bad = id("ctr-bad");
    let out = output(&mut run(&["--rm"], &id_bad, &["/nonexistent"]), CMD_TIMEOUT);
    assert_ne!(code(&out), 0);
    let err = text(&out.stderr);
    assert!(
        err.contains("berth-runc create failed") && err.contains("/nonexistent"),
        "{err}"
    );

    // A terminal: ctr -t on a pty, the container's console from berth-runc.
    let t = Instant::now();
    let id_tty = id("ctr-tty");
    let mut pty = OnPty::spawn(run(&["--rm", "-t"], &id_tty, &["sh"]));
    pty.expect("# ", Duration::from_secs(20));
    pty.send("tty; echo $((6*7))\n");
    pty.expect("/dev/pts/", Duration::from_secs(10));
    pty.expect("42", Duration::from_secs(10));
    pty.send("exit 2\n");
    let status = pty.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "{:?}", pty.seen);
    eprintln!("ctr run -t: {:?}", t.elapsed());

    // Detached: exec, ps, pause, resume, kill (SIGTERM, trapped), delete.
    let t = Instant::now();
    let id_bg = id("ctr-bg");
    ok(&mut run(
        &["-d", "--null-io"],
        &id_bg,
        &["sh", "-c", "trap 'exit 5' TERM; while :; do sleep 0.1; done"],
    ));
    assert_eq!(task_status(&ctd, &id_bg), "RUNNING");
    let berth_state = |id: &str| berth_status(&berth_root, id);
    assert_eq!(berth_state(&id_bg), "running");

    let out = output(
        ctd.ctr()
            .args(["task", "exec", "--exec-id", "probe"])
            .arg("--fifo-dir")
            .arg(&fifos)
            .args([
                &id_bg,
                "sh",
                "-c",
                "echo in-exec; cat /proc/1/cmdline | tr '\\0' ' '; exit 3",
            ]),
        CMD_TIMEOUT,
    );
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    // The exec'd process sees the container's init as pid 1.
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("in-exec\nsh -c trap 'exit 5' TERM"), "{stdout}");

    let ps = ok(ctd.ctr().args(["task", "ps", &id_bg]));
    assert!(ps.lines().count() >= 2, "{ps}");

    ok(ctd.ctr().args(["task", "pause", &id_bg]));
    assert_eq!(task_status(&ctd, &id_bg), "PAUSED");
    assert_eq!(berth_state(&id_bg), "paused");
    ok(ctd.ctr().args(["task", "resume", &id_bg]));
    assert_eq!(task_status(&ctd, &id_bg), "RUNNING");
    assert_eq!(berth_state(&id_bg), "running");

    ok(ctd.ctr().args(["task", "kill", &id_bg]));
    assert!(
        wait_for(Duration::from_secs(10), || task_status(&ctd, &id_bg) == "STOPPED"),
        "task did not stop after SIGTERM"
    );
    let out = output(ctd.ctr().args(["task", "delete", &id_bg]), CMD_TIMEOUT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("non-zero exit code 5"),
        "{}",
        text(&out.stderr)
    );
    ok(ctd.ctr().args(["container", "delete", &id_bg]));
    eprintln!("ctr run -d, exec, ps, pause, resume, kill, delete: {:?}", t.elapsed());

    // kill --all with SIGKILL, with an exec'd process beside init.
    let t = Instant::now();
    let id_all = id("ctr-all");
    ok(&mut run(&["-d", "--null-io"], &id_all, &["sleep", "1000"]));
    ok(ctd
        .ctr()
        .args(["task", "exec", "-d", "--exec-id", "sleeper"])
        .arg("--fifo-dir")
        .arg(&fifos)
        .args([&id_all, "sleep", "1000"]));
    ok(ctd
        .ctr()
        .args(["task", "kill", "--all", "--signal", "SIGKILL", &id_all]));
    assert!(
        wait_for(Duration::from_secs(10), || task_status(&ctd, &id_all) == "STOPPED"),
        "task did not stop after SIGKILL"
    );
    let out = output(ctd.ctr().args(["task", "delete", &id_all]), CMD_TIMEOUT);
    assert!(
        text(&out.stderr).contains("non-zero exit code 137"),
        "{}",
        text(&out.stderr)
    );
    ok(ctd.ctr().args(["container", "delete", &id_all]));
    eprintln!("ctr kill --all: {:?}", t.elapsed());

    // Nothing left: in containerd, in berth-runc's root, in the cgroups.
    assert_eq!(ok(ctd.ctr().args(["containers", "ls", "-q"])), "");
    assert_eq!(ok(ctd.ctr().args(["tasks", "ls", "-q"])), "");
    let states: Vec<_> = std::fs::read_dir(&berth_root)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(states.is_empty(), "berth-runc state left: {states:?}");
    for id in [&id_fg, &id_bad, &id_tty, &id_bg, &id_all] {
        assert!(
            cgroup_dirs(id).is_empty(),
            "cgroups of {id} left: {:?}",
            cgroup_dirs(id)
        );
    }

    let t = Instant::now();
    let left = ctd.shutdown();
    eprintln!("containerd stopped: {:?}", t.elapsed());
    left.assert_clean("containerd");
    assert!(mounts_under(tmp.path()).is_empty());
    assert!(processes_of(tmp.path(), &namespace).is_empty());
    tmp.close().unwrap();
    eprintln!("total: {:?}", t0.elapsed());
}
