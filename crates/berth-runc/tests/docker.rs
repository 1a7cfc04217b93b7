//! berth-runc under dockerd 20.10 (Debian's docker.io): `dockerd
//! --add-runtime berth=<berth-runc>` on a private data root, exec root and
//! socket, over a private containerd, and `docker run --runtime berth`
//! with output, exit codes, `-it`, exec, --memory, --pids-limit, update,
//! pause, stop and OOM. One dockerd serves every scenario; the busybox
//! image is built locally and loaded.

mod common;

use std::process::{Command, Output};
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

/// `docker run` with berth-runc, no network and the options every
/// scenario shares; `opts` go before the image, `args` after it.
fn docker_run(dk: &Dockerd, opts: &[&str], args: &[&str]) -> Command {
    let mut c = dk.docker();
    c.args(["run", "--runtime", "berth", "--network", "none"])
        .args(opts)
        .arg(BUSYBOX_IMAGE)
        .args(args);
    c
}

fn inspect(dk: &Dockerd, name: &str, format: &str) -> String {
    ok(dk.docker().args(["inspect", "--format", format, name]))
        .trim()
        .to_string()
}

/// `docker exec <name> sh -c <script>`: (exit code, stdout, stderr).
fn exec_sh(dk: &Dockerd, name: &str, script: &str) -> (i32, String, String) {
    let out = output(dk.docker().args(["exec", name, "sh", "-c", script]), CMD_TIMEOUT);
    (code(&out), text(&out.stdout), text(&out.stderr))
}

/// The container's memory and pids limits as it sees them (cgroup v1
/// hierarchies, or the unified one).
const LIMITS: &str = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
                      cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max";

#[test]
fn dockerd_runs_berth_runc_through_containerd() {
    if !ready_docker() {
        return;
    }
    if apparmor_enabled() {
        // dockerd would ask for its docker-default profile.
        eprintln!("skipping: AppArmor is enabled on this host and berth-runc cannot apply AppArmor profiles yet");
        return;
    }
    let t0 = Instant::now();
    let tmp = tempfile::Builder::new().prefix("berth-dk-").tempdir().unwrap();
    let pid = std::process::id();
    let image = tmp.path().join("busybox.tar");
    busybox_image_tarball(&image);
    let mut ctd = Containerd::start(&tmp.path().join("containerd"), &format!("berth-e2e-{pid}-dkctd"));
    let cgroup_parent = format!("berth-e2e-{pid}-docker");
    let mut dk = Dockerd::start(&tmp.path().join("docker"), &ctd, &cgroup_parent);
    eprintln!("image built, containerd and dockerd up: {:?}", t0.elapsed());

    let out = ok(dk.docker().arg("load").arg("-i").arg(&image));
    assert!(out.contains(&format!("Loaded image: {BUSYBOX_IMAGE}")), "{out}");

    // --rm, output and exit codes.
    let t = Instant::now();
    let out = output(&mut docker_run(&dk, &["--rm"], &["echo", "hi"]), CMD_TIMEOUT);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), dk.log_tail());
    assert_eq!(text(&out.stdout), "hi\n");
    let out = output(
        &mut docker_run(&dk, &["--rm"], &["sh", "-c", "echo out; echo err >&2; exit 7"]),
        CMD_TIMEOUT,
    );
    assert_eq!(code(&out), 7, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err"), "{}", text(&out.stderr));
    eprintln!("docker run --rm (output, exit codes): {:?}", t.elapsed());

    // -it: the docker client on a pty, the container on berth-runc's.
    let t = Instant::now();
    let mut pty = OnPty::spawn(docker_run(&dk, &["--rm", "-it"], &["sh"]));
    pty.expect("# ", Duration::from_secs(20));
    pty.send("tty; echo $((6*7))\n");
    pty.expect("/dev/pts/", Duration::from_secs(10));
    pty.expect("42", Duration::from_secs(10));
    pty.send("exit 3\n");
    let status = pty.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(3), "{:?}", pty.seen);
    eprintln!("docker run -it: {:?}", t.elapsed());

    // A long-running container with limits: exec, update, pause, stop.
    let t = Instant::now();
    let name = format!("berth-e2e-{pid}-long");
    let id = ok(&mut docker_run(
        &dk,
        &["-d", "--name", &name, "--memory", "64m", "--pids-limit", "20"],
        &["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"],
    ))
    .trim()
    .to_string();
    assert_eq!(inspect(&dk, &name, "{{.HostConfig.Runtime}}"), "berth");
    // It really is berth-runc's container (it reads only its own state).
    assert_eq!(berth_status(&dk.runtime_root(), &id), "running");
    // What dockerd asked for: no AppArmor profile (AppArmor is off here),
    // its default seccomp profile, loaded in the container (filter mode 2),
    // and its usual sysctls under a read-only /proc/sys.
    let bundle = ctd.dir.join("state/io.containerd.runtime.v2.task/moby").join(&id);
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let profile = spec["process"]["apparmorProfile"].as_str().unwrap_or("");
    assert_eq!(profile, "", "dockerd asked for an AppArmor profile");
    assert_eq!(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    let (c, out, err) = exec_sh(
        &dk,
        &name,
        "grep Seccomp: /proc/self/status; grep Seccomp: /proc/1/status",
    );
    assert_eq!(c, 0, "{err}");
    assert_eq!(out.matches("\t2").count(), 2, "{out}");
    assert!(spec["linux"]["sysctl"]["net.ipv4.ping_group_range"].is_string());
    assert!(spec["linux"]["readonlyPaths"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("/proc/sys")));

    let (c, out, err) = exec_sh(&dk, &name, "echo in-exec; cat /proc/1/cmdline | tr '\\0' ' '; exit 4");
    assert_eq!(c, 4, "{err}");
    assert!(out.starts_with("in-exec\nsh -c trap 'exit 0' TERM"), "{out}");
    let out = ok(dk.docker().args(["exec", "-t", &name, "tty"]));
    assert!(out.starts_with("/dev/pts/"), "{out:?}");

    let (c, out, err) = exec_sh(&dk, &name, LIMITS);
    assert_eq!(c, 0, "{err}");
    assert_eq!(out, format!("{}\n20\n", 64 << 20));
    // The pids limit holds: 30 more processes cannot all start.
    let (_, _, err) = exec_sh(
        &dk,
        &name,
        "i=0; while [ $i -lt 30 ]; do sleep 1 & i=$((i+1)); done; wait",
    );
    assert!(err.contains("can't fork"), "{err}");

    ok(dk
        .docker()
        .args(["update", "--memory", "128m", "--memory-swap", "256m", &name]));
    let (_, out, _) = exec_sh(&dk, &name, LIMITS);
    assert_eq!(out, format!("{}\n20\n", 128 << 20));

    ok(dk.docker().args(["pause", &name]));
    assert_eq!(inspect(&dk, &name, "{{.State.Status}}"), "paused");
    assert_eq!(berth_status(&dk.runtime_root(), &id), "paused");
    ok(dk.docker().args(["unpause", &name]));
    assert_eq!(inspect(&dk, &name, "{{.State.Status}}"), "running");
    let top = ok(dk.docker().args(["top", &name]));
    assert!(top.contains("trap"), "{top}");

    let stop = Instant::now();
    ok(dk.docker().args(["stop", &name]));
    assert!(
        stop.elapsed() < Duration::from_secs(9),
        "SIGTERM was not delivered: stop took {:?}",
        stop.elapsed()
    );
    assert_eq!(inspect(&dk, &name, "{{.State.ExitCode}}"), "0");
    ok(dk.docker().args(["rm", &name]));
    assert!(cgroup_dirs(&id).is_empty(), "cgroups of {id} left");
    eprintln!(
        "docker run -d, exec, limits, update, pause, top, stop: {:?}",
        t.elapsed()
    );

    // stop of a process that ignores SIGTERM: SIGKILL after the timeout.
    let t = Instant::now();
    let name = format!("berth-e2e-{pid}-stubborn");
    let id = ok(&mut docker_run(&dk, &["-d", "--name", &name], &["sleep", "1000"]))
        .trim()
        .to_string();
    ok(dk.docker().args(["stop", "-t", "1", &name]));
    assert_eq!(inspect(&dk, &name, "{{.State.ExitCode}}"), "137");
    ok(dk.docker().args(["rm", &name]));
    assert!(cgroup_dirs(&id).is_empty(), "cgroups of {id} left");
    eprintln!("docker stop -t 1 (SIGKILL): {:?}", t.elapsed());

    // The memory limit holds: the shell is OOM-killed and docker knows.
    let t = Instant::now();
    let name = format!("berth-e2e-{pid}-oom");
    let out = output(
        &mut docker_run(
            &dk,
            &["--name", &name, "--memory", "32m"],
            &[
                "sh",
                "-c",
                "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
            ],
        ),
        CMD_TIMEOUT,
    );
    assert_eq!(code(&out), 137, "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(inspect(&dk, &name, "{{.State.OOMKilled}}"), "true");
    ok(dk.docker().args(["rm", &name]));
    eprintln!("docker run --memory (OOM): {:?}", t.elapsed());

    // Nothing left in dockerd or in berth-runc's root.
    assert_eq!(ok(dk.docker().args(["ps", "-aq"])), "");
    let states: Vec<_> = std::fs::read_dir(dk.runtime_root())
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(states.is_empty(), "berth-runc state left: {states:?}");

    let t = Instant::now();
    let left = dk.shutdown();
    eprintln!("dockerd stopped: {:?}", t.elapsed());
    left.assert_clean("dockerd");
    let left = ctd.shutdown();
    left.assert_clean("containerd");
    assert!(mounts_under(tmp.path()).is_empty());
    assert!(processes_of(tmp.path(), &cgroup_parent).is_empty());
    tmp.close().unwrap();
    eprintln!("total: {:?}", t0.elapsed());
}
