//! Harness for the end-to-end tests: busybox bundles built from Debian's
//! busybox-static, a private state root per test, the runtime under test
//! (berth-runc, or runc to check that a test encodes runc's behaviour), and
//! a check that nothing is left behind. `image` builds a busybox image
//! tarball for engines to import; `engines` runs containerd and dockerd
//! with berth-runc as their runtime.
#![allow(dead_code)]

pub mod engines;
pub mod image;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth-runc");

/// Root and busybox are needed; without them the test says so and passes.
pub fn ready() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: end-to-end tests need root");
        return false;
    }
    if busybox().is_none() {
        eprintln!("skipping: busybox (busybox-static) is not installed");
        return false;
    }
    true
}

pub fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// berth-runc, and runc when it is installed: the runtimes a behaviour is checked on.
pub fn runtimes() -> Vec<Runtime> {
    let mut rts = vec![Runtime::berth()];
    if runc_available() {
        rts.push(Runtime::runc());
    }
    rts
}

pub fn runc_available() -> bool {
    Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A busybox root filesystem at `rootfs`: bin/busybox, a symlink per
/// applet, etc/passwd and etc/group (root and user 1000), and the usual
/// empty mount points.
pub fn busybox_rootfs(rootfs: &Path, applets: &[&str]) {
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(busybox().unwrap(), rootfs.join("bin/busybox")).unwrap();
    for a in applets.iter().filter(|a| **a != "busybox") {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
}

/// A bundle in a temp dir: rootfs with busybox and its applets, and a
/// config.json from `berth-runc spec` with terminal off.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new().prefix("berth-e2e-").tempdir().unwrap();
        busybox_rootfs(
            &dir.path().join("rootfs"),
            &[
                "sh", "true", "false", "sleep", "echo", "cat", "ls", "id", "hostname", "mount", "grep", "touch",
                "stat", "readlink", "tty", "env", "pwd", "head", "wc", "mkdir", "ps", "dd", "umask", "test",
            ],
        );
        let mut config: Value = serde_json::from_value(berth_runtime::spec::default_spec()).unwrap();
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = serde_json::json!(args);
        config["root"]["readonly"] = Value::Bool(false);
        Bundle { dir, config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Write config.json (call after editing `config`).
    pub fn write(&self) -> &Self {
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
        self
    }
}

/// One runtime binary with a private state root.
pub struct Runtime {
    pub bin: String,
    pub root: tempfile::TempDir,
}

impl Runtime {
    pub fn berth() -> Runtime {
        Runtime::new(BERTH)
    }

    pub fn runc() -> Runtime {
        Runtime::new("runc")
    }

    fn new(bin: &str) -> Runtime {
        Runtime {
            bin: bin.into(),
            root: tempfile::Builder::new().prefix("berth-e2e-root-").tempdir().unwrap(),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path()).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Run to completion (see `output_via_files`).
    pub fn run(&self, args: &[&str]) -> Output {
        output_via_files(&mut self.cmd(args))
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{} {:?} failed: {}",
            self.bin,
            args,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// `run` in the foreground: (exit code, stdout, stderr).
    pub fn run_fg(&self, bundle: &Bundle, id: &str) -> (i32, String, String) {
        let out = self.run(&["run", "--bundle", bundle.path().to_str().unwrap(), id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Whatever a failed test left: force-delete it.
        if let Ok(rd) = std::fs::read_dir(self.root.path()) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.cmd(&["delete", "--force", &id]).output();
            }
        }
    }
}

/// Run a command to completion with its output in files, not pipes: a
/// created container's init inherits stdio and would hold a pipe open.
pub fn output_via_files(cmd: &mut Command) -> Output {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let status = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// A container id unique to this test process and name.
pub fn id(name: &str) -> String {
    format!("berth-e2e-{}-{name}", std::process::id())
}

/// Every cgroup directory named `id` under /sys/fs/cgroup (any depth ≤ 4).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    fn walk(dir: &Path, id: &str, depth: usize, found: &mut Vec<PathBuf>) {
        if depth == 0 {
            return;
        }
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let p = e.path();
                    if e.file_name().to_string_lossy() == id {
                        found.push(p.clone());
                    }
                    walk(&p, id, depth - 1, found);
                }
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), id, 4, &mut found);
    found
}

/// Assert nothing of container `id` survives: state, cgroups, mounts.
pub fn assert_gone(rt: &Runtime, id: &str, bundle: &Bundle) {
    assert!(!rt.root.path().join(id).exists(), "state dir of {id} left behind");
    let cgs = cgroup_dirs(id);
    assert!(cgs.is_empty(), "cgroups of {id} left behind: {cgs:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let b = bundle.path().to_string_lossy();
    assert!(!mounts.contains(b.as_ref()), "mounts under {b} left behind");
}

/// Wait (up to 20 s) until the container's init has exited.
pub fn wait_stopped(rt: &Runtime, id: &str) {
    // A deadline, not a count of tries: each try runs the runtime, slow on a loaded machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if rt.status(id) == "stopped" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("container {id} did not stop");
}

/// Read a pty master until `needle` shows up or the other side closes.
pub fn read_until(m: &mut std::fs::File, needle: &str) -> String {
    use std::io::Read;
    let mut out = String::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = m.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
        if out.contains(needle) {
            break;
        }
    }
    out
}
