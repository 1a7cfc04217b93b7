//! Real engines for the interop tests: containerd and dockerd, each on its
//! own root, state dir and socket under a temp dir, with berth-runc as the
//! runtime. They are stopped by the pid we started (SIGTERM, then SIGKILL
//! after a grace period) when dropped, so a failing test cleans up too;
//! `shutdown` does the same and reports what was left behind (mounts,
//! processes, cgroups, host directories) for the test to assert on.
//!
//! Only loopback: ctr gives containers a new network namespace holding
//! just `lo` (no CNI), dockerd runs with `--bridge=none --iptables=false
//! --ip6tables=false --ip-forward=false` and the tests use `--network none`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long an engine gets to exit after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(20);
/// Default limit for one client command (ctr, docker).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit for one clean-up command.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(20);

/// An executable on PATH (or in /usr/sbin, /sbin: dockerd lives there).
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0));
    found
}

/// Root, busybox, containerd, its runc shim and ctr; otherwise say why
/// not and let the test pass.
pub fn ready_containerd() -> bool {
    if !super::ready() {
        return false;
    }
    for cmd in ["containerd", "containerd-shim-runc-v2", "ctr", "sha256sum", "tar"] {
        if which(cmd).is_none() {
            eprintln!("skipping: {cmd} is not installed (apt-get install containerd; scripts/deps.sh does)");
            return false;
        }
    }
    true
}

/// `ready_containerd` plus dockerd and the docker client.
pub fn ready_docker() -> bool {
    if !ready_containerd() {
        return false;
    }
    if which("dockerd").is_none() || docker_client().is_none() {
        eprintln!("skipping: dockerd or docker is not installed (apt-get install docker.io; scripts/deps.sh does)");
        return false;
    }
    true
}

/// The docker client: Debian's, which matches its dockerd, before any
/// other `docker` on PATH.
pub fn docker_client() -> Option<PathBuf> {
    Some(PathBuf::from("/usr/bin/docker"))
        .filter(|p| p.exists())
        .or_else(|| which("docker"))
}

/// Is AppArmor enabled on this host? (dockerd then asks for its
/// docker-default profile, which berth-runc refuses: it cannot apply
/// AppArmor profiles yet.)
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

/// Run a command to completion within `timeout`, output through files (a
/// container started by it may hold inherited pipes open). On timeout the
/// command (our child) is killed and the test fails.
pub fn output(cmd: &mut Command, timeout: Duration) -> Output {
    try_output(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// `output` with `input` (through a file) on the command's stdin instead of /dev/null.
pub fn output_with_input(cmd: &mut Command, input: &[u8], timeout: Duration) -> Output {
    try_output_with_input(cmd, Some(input), timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// `output` that reports failure to run instead of panicking (for
/// clean-up, which may run while a test is already failing).
pub fn try_output(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    try_output_with_input(cmd, None, timeout)
}

/// `try_output` with `input` on stdin (else /dev/null).
pub fn try_output_with_input(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Result<Output, String> {
    let stdin = match input {
        Some(data) => {
            use std::io::{Seek, Write};
            let mut f = tempfile::tempfile().map_err(|e| e.to_string())?;
            f.write_all(data).map_err(|e| e.to_string())?;
            f.rewind().map_err(|e| e.to_string())?;
            Stdio::from(f)
        }
        None => Stdio::null(),
    };
    let out = tempfile::tempfile().map_err(|e| e.to_string())?;
    let err = tempfile::tempfile().map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdin(stdin)
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(err.try_clone().map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("spawning {cmd:?}: {e}"))?;
    let Some(status) = wait_timeout(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{cmd:?} did not finish within {timeout:?}"));
    };
    let read = |mut f: File| {
        use std::io::Seek;
        let mut v = Vec::new();
        let _ = f.seek(std::io::SeekFrom::Start(0));
        let _ = f.read_to_end(&mut v);
        v
    };
    Ok(Output {
        status,
        stdout: read(out),
        stderr: read(err),
    })
}

/// `output` that must succeed; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = output(cmd, CMD_TIMEOUT);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Wait for our child up to `timeout`; None if it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Poll `cond` every 20 ms until it holds; false after `timeout`.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A daemon we started, with its output in a log file. Dropping it stops it.
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Daemon {
        let f = File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Daemon {
            name: name.into(),
            child: Some(child),
            log,
        }
    }

    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The end of the daemon's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(6000);
        let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        format!("--- {} log ({}) ---\n{}", self.name, self.log.display(), &text[start..])
    }

    /// SIGTERM the pid we started, wait up to STOP_GRACE, then SIGKILL.
    /// Returns how long it took; None if it had to be killed.
    pub fn stop(&mut self) -> Option<Duration> {
        let mut child = self.child.take()?;
        let t0 = Instant::now();
        if !matches!(child.try_wait(), Ok(None)) {
            return Some(Duration::ZERO);
        }
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        if wait_timeout(&mut child, STOP_GRACE).is_some() {
            return Some(t0.elapsed());
        }
        eprintln!("{} did not exit {STOP_GRACE:?} after SIGTERM: SIGKILL", self.name);
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Directories engines make at fixed host paths (containerd's shims put
/// their sockets in /run/containerd/s; dockerd makes /run/docker/plugins).
/// Those missing when the test began are removed again afterwards, with
/// rmdir only: never anything someone else put there.
pub struct HostDirs(Vec<PathBuf>);

impl HostDirs {
    /// Remember which of `paths` (parents first) do not exist yet.
    pub fn missing(paths: &[&str]) -> HostDirs {
        HostDirs(paths.iter().map(PathBuf::from).filter(|p| !p.exists()).collect())
    }

    /// rmdir them, children first. Returns what is left in them that no
    /// live process listens on: an engine running beside the test (another
    /// test, the system's) keeps its sockets there, which is no leftover
    /// of ours, while a socket file nobody serves is.
    pub fn remove(&self) -> Vec<PathBuf> {
        for p in self.0.iter().rev() {
            let _ = std::fs::remove_dir(p);
        }
        let live = listening_unix_sockets();
        let mut left = Vec::new();
        for p in &self.0 {
            let Ok(rd) = std::fs::read_dir(p) else { continue };
            for e in rd.flatten() {
                let path = e.path();
                if !self.0.contains(&path) && !live.contains(&path) {
                    left.push(path);
                }
            }
        }
        left
    }
}

/// Paths of the unix sockets bound in our network namespace.
fn listening_unix_sockets() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(7))
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// Mount points at or under `dir`, from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    mounts_in(&std::fs::read_to_string("/proc/self/mountinfo").unwrap(), dir)
}

/// Mount points at or under `dir` in a mount table (`mountinfo`'s text).
pub fn mounts_in(mountinfo: &str, dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mountinfo))
        .filter(|m| m == &dir || m.starts_with(&format!("{dir}/")))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Processes (other than this one) whose command line mentions `dir`, or
/// that sit in a cgroup whose path contains `cgroup`: engines, shims and
/// container processes the test started. As "pid: cmdline".
pub fn processes_of(dir: &Path, cgroup: &str) -> Vec<String> {
    processes_where(dir, |l| {
        l.contains(&format!("/{cgroup}/")) || l.ends_with(&format!("/{cgroup}"))
    })
    .into_iter()
    .map(|(pid, cmdline)| format!("{pid}: {cmdline}"))
    .collect()
}

/// (pid, command line) of the processes other than this one whose command
/// line mentions `dir` or one of whose `/proc/PID/cgroup` lines `in_cgroup`
/// accepts.
pub fn processes_where(dir: &Path, in_cgroup: impl Fn(&str) -> bool) -> Vec<(i32, String)> {
    let dir = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pid as u32 == me {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|v| String::from_utf8_lossy(&v).replace('\0', " "))
            .unwrap_or_default();
        let cgroups = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if cmdline.contains(&dir) || cgroups.lines().any(&in_cgroup) {
            found.push((pid, cmdline.trim().to_owned()));
        }
    }
    found
}

/// rmdir every cgroup directory named `name` (a cgroup parent the test
/// chose, so only its own); those that could not be removed (not empty:
/// something was left in them) are returned with their contents.
pub fn remove_cgroup_parent(name: &str) -> Vec<String> {
    let mut left = Vec::new();
    for dir in super::cgroup_dirs(name) {
        if std::fs::remove_dir(&dir).is_err() {
            let children: Vec<String> = std::fs::read_dir(&dir)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            left.push(format!("{} (children: {children:?})", dir.display()));
        }
    }
    left
}

/// The contents of some host files (None: missing), to see an engine
/// change none of them.
pub struct HostFiles(Vec<(PathBuf, Option<String>)>);

impl HostFiles {
    pub fn snapshot(paths: &[&str]) -> HostFiles {
        HostFiles(
            paths
                .iter()
                .map(|p| (PathBuf::from(p), std::fs::read_to_string(p).ok()))
                .collect(),
        )
    }

    /// Those that changed since the snapshot, as "path: before -> now".
    pub fn changed(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|(p, before)| {
                let now = std::fs::read_to_string(p).ok();
                (&now != before).then(|| format!("{}: {before:?} -> {now:?}", p.display()))
            })
            .collect()
    }
}

/// `berth-runc --root <root> state <id>`'s status: the container really is
/// berth-runc's (runc's state files are not ours to read).
pub fn berth_status(root: &Path, id: &str) -> String {
    let out = ok(Command::new(super::BERTH).arg("--root").arg(root).args(["state", id]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["status"].as_str().unwrap().to_string()
}

/// What an engine left behind after it stopped; empty when clean.
#[derive(Debug, Default)]
pub struct Leftovers {
    pub mounts: Vec<String>,
    pub processes: Vec<String>,
    pub cgroups: Vec<String>,
    pub host_dirs: Vec<PathBuf>,
    /// Host files (sysctls, config) that differ from before the engine.
    pub host_files: Vec<String>,
    /// The engine had to be SIGKILLed.
    pub killed: bool,
}

impl Leftovers {
    pub fn assert_clean(&self, what: &str) {
        assert!(
            self.mounts.is_empty()
                && self.processes.is_empty()
                && self.cgroups.is_empty()
                && self.host_dirs.is_empty()
                && self.host_files.is_empty()
                && !self.killed,
            "{what} left things behind: {self:#?}"
        );
    }
}

/// containerd 1.6 on a private root, state dir, gRPC and ttrpc socket (CRI
/// off), in namespace `namespace`, which is also the cgroup parent of what
/// ctr runs (`/<namespace>/<id>`).
pub struct Containerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub namespace: String,
    daemon: Daemon,
    host_dirs: HostDirs,
    down: bool,
}

impl Containerd {
    pub fn start(dir: &Path, namespace: &str) -> Containerd {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("containerd.sock");
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            sock = socket.display(),
            opt = dir.join("opt").display(),
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        // The shims' sockets go to /run/containerd/s whatever the config says.
        let host_dirs = HostDirs::missing(&["/run/containerd", "/run/containerd/s"]);
        let mut cmd = Command::new(which("containerd").unwrap());
        cmd.arg("--config").arg(dir.join("config.toml"));
        let daemon = Daemon::spawn("containerd", cmd, dir.join("containerd.log"));
        let mut c = Containerd {
            dir: dir.to_path_buf(),
            socket,
            namespace: namespace.into(),
            daemon,
            host_dirs,
            down: false,
        };
        let up = wait_for(Duration::from_secs(30), || {
            assert!(c.daemon.running(), "containerd exited\n{}", c.daemon.log_tail());
            c.socket.exists() && output(c.ctr().arg("version"), CMD_TIMEOUT).status.success()
        });
        assert!(up, "containerd did not answer\n{}", c.daemon.log_tail());
        c
    }

    /// `ctr --address <sock> --namespace <ns>`.
    pub fn ctr(&self) -> Command {
        let mut c = Command::new(which("ctr").unwrap());
        c.arg("--address")
            .arg(&self.socket)
            .arg("--namespace")
            .arg(&self.namespace);
        c
    }

    pub fn log_tail(&self) -> String {
        self.daemon.log_tail()
    }

    /// Best effort: delete every task (killing it) and container of our
    /// namespace, so their shims exit.
    pub fn remove_all(&self) {
        let list = |what: &str| -> Vec<String> {
            try_output(self.ctr().args([what, "ls", "-q"]), CLEANUP_TIMEOUT)
                .map(|out| {
                    String::from_utf8_lossy(&out.stdout)
                        .split_whitespace()
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        // `tasks ls -q` lists tasks by container id.
        for t in list("tasks") {
            let _ = try_output(self.ctr().args(["task", "delete", "--force", &t]), CLEANUP_TIMEOUT);
        }
        for c in list("containers") {
            let _ = try_output(self.ctr().args(["container", "delete", &c]), CLEANUP_TIMEOUT);
        }
    }

    /// Remove what is left in the namespace, stop containerd, clean what it
    /// made on the host, and report anything left behind.
    pub fn shutdown(&mut self) -> Leftovers {
        self.down = true;
        if self.daemon.running() {
            self.remove_all();
        }
        let killed = self.daemon.stop().is_none();
        // Shims exit on their own once their task is gone: give them a moment.
        wait_for(Duration::from_secs(5), || {
            processes_of(&self.dir, &self.namespace).is_empty()
        });
        Leftovers {
            mounts: mounts_under(&self.dir),
            processes: processes_of(&self.dir, &self.namespace),
            cgroups: remove_cgroup_parent(&self.namespace),
            host_dirs: self.host_dirs.remove(),
            host_files: Vec::new(),
            killed,
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if !self.down {
            let left = self.shutdown();
            eprintln!("containerd cleanup after a failure: {left:#?}");
        }
    }
}

/// dockerd 20.10 on a private data root, exec root, pid file and socket,
/// its config and trust key in its directory, with containers under cgroup
/// parent `/<cgroup_parent>`. See [`DockerdOptions`] for the rest.
pub struct Dockerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub cgroup_parent: String,
    daemon: Daemon,
    host_dirs: HostDirs,
    host_files: HostFiles,
    down: bool,
}

/// How a [`Dockerd`] runs.
#[derive(Default)]
pub struct DockerdOptions<'a> {
    /// Our containerd (`--containerd`); else dockerd starts and stops its own.
    pub containerd: Option<&'a Containerd>,
    /// Inside the network namespace `/run/netns/NETNS` (made by the caller),
    /// with dockerd's default bridge, iptables rules and forwarding, none of
    /// which reaches the host's; else without any (`--bridge=none` …).
    pub netns: Option<&'a str>,
    /// More flags (`--add-runtime`, `--insecure-registry`).
    pub args: Vec<String>,
}

impl Dockerd {
    /// With our containerd and berth-runc added as runtime `berth`.
    pub fn start(dir: &Path, containerd: &Containerd, cgroup_parent: &str) -> Dockerd {
        let opts = DockerdOptions {
            containerd: Some(containerd),
            args: vec!["--add-runtime".into(), format!("berth={}", super::BERTH)],
            ..DockerdOptions::default()
        };
        Dockerd::start_with(dir, cgroup_parent, &opts)
    }

    pub fn start_with(dir: &Path, cgroup_parent: &str, opts: &DockerdOptions<'_>) -> Dockerd {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("docker.sock");
        // Its own config file: nothing from /etc/docker/daemon.json, and the
        // trust key (else /etc/docker/key.json) kept in our dir.
        let config = serde_json::json!({"deprecated-key-path": dir.join("key.json")});
        std::fs::write(dir.join("daemon.json"), config.to_string()).unwrap();
        // The plugin socket dir is fixed in dockerd 20.10; so are the shims'
        // socket dir of a containerd it starts itself.
        let mut fixed = vec!["/run/docker", "/run/docker/plugins"];
        if opts.containerd.is_none() {
            fixed.extend(["/run/containerd", "/run/containerd/s"]);
        }
        let host_dirs = HostDirs::missing(&fixed);
        // dockerd turns on IP forwarding unless told not to; the trust key
        // would go to /etc/docker without deprecated-key-path.
        let host_files = HostFiles::snapshot(&[
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/net/ipv6/conf/all/forwarding",
            "/etc/docker/key.json",
        ]);
        let mut cmd = match opts.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}"))
                    .arg("--")
                    .arg(which("dockerd").unwrap());
                c
            }
            None => Command::new(which("dockerd").unwrap()),
        };
        cmd.arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg(format!("--cgroup-parent=/{cgroup_parent}"))
            .args(&opts.args);
        if let Some(containerd) = opts.containerd {
            cmd.arg("--containerd").arg(&containerd.socket);
        }
        if opts.netns.is_none() {
            cmd.args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
            ]);
        }
        let daemon = Daemon::spawn("dockerd", cmd, dir.join("dockerd.log"));
        let mut d = Dockerd {
            dir: dir.to_path_buf(),
            socket,
            cgroup_parent: cgroup_parent.into(),
            daemon,
            host_dirs,
            host_files,
            down: false,
        };
        let up = wait_for(Duration::from_secs(60), || {
            assert!(d.daemon.running(), "dockerd exited\n{}", d.daemon.log_tail());
            d.socket.exists() && output(d.docker().arg("version"), CMD_TIMEOUT).status.success()
        });
        assert!(up, "dockerd did not answer\n{}", d.daemon.log_tail());
        d
    }

    /// `docker ARGS` to completion (CMD_TIMEOUT), whatever the exit.
    pub fn run(&self, args: &[&str]) -> Output {
        output(self.docker().args(args), CMD_TIMEOUT)
    }

    /// `docker ARGS`, which must succeed (dockerd's log in the message if
    /// not); stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({}): {}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.daemon.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The docker client on our socket, with its config dir in ours.
    pub fn docker(&self) -> Command {
        let mut c = Command::new(docker_client().unwrap());
        c.env("DOCKER_CONFIG", self.dir.join("client"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()));
        c
    }

    pub fn log_tail(&self) -> String {
        self.daemon.log_tail()
    }

    /// Where dockerd has the runtime keep container state (its --root).
    pub fn runtime_root(&self) -> PathBuf {
        self.dir.join("exec/runtime-runc/moby")
    }

    /// Best effort: force-remove every container.
    pub fn remove_all(&self) {
        let Ok(out) = try_output(self.docker().args(["ps", "-aq"]), CLEANUP_TIMEOUT) else {
            return;
        };
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = try_output(self.docker().args(["rm", "-f", id]), CLEANUP_TIMEOUT);
        }
    }

    /// Remove all containers, stop dockerd, clean what it made on the
    /// host, and report anything left behind.
    pub fn shutdown(&mut self) -> Leftovers {
        self.down = true;
        if self.daemon.running() {
            self.remove_all();
        }
        let killed = self.daemon.stop().is_none();
        // A containerd dockerd started stops after it; give stragglers a moment.
        wait_for(Duration::from_secs(10), || {
            processes_of(&self.dir, &self.cgroup_parent).is_empty()
        });
        Leftovers {
            mounts: mounts_under(&self.dir),
            processes: processes_of(&self.dir, &self.cgroup_parent),
            cgroups: remove_cgroup_parent(&self.cgroup_parent),
            host_dirs: self.host_dirs.remove(),
            host_files: self.host_files.changed(),
            killed,
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if !self.down {
            let left = self.shutdown();
            eprintln!("dockerd cleanup after a failure: {left:#?}");
            // Only mounts under our own directory, which is about to be removed.
            for m in left.mounts.iter().rev() {
                let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// A command on a fresh pty as its stdin, stdout and stderr: what a user's
/// terminal gives `docker run -it` or `ctr run -t`. Output is read by a
/// thread so waits can time out.
pub struct OnPty {
    child: Child,
    master: File,
    rx: mpsc::Receiver<Vec<u8>>,
    /// Everything read so far (raw: \r\n line ends, escapes).
    pub seen: String,
    /// How much of `seen` earlier `expect`s consumed.
    pos: usize,
}

impl OnPty {
    pub fn spawn(mut cmd: Command) -> OnPty {
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave = File::from(pty.slave);
        cmd.stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        // Our copies of the slave must go, or reads never see the end.
        drop(cmd);
        let master = File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        OnPty {
            child,
            master,
            rx,
            seen: String::new(),
            pos: 0,
        }
    }

    pub fn send(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
    }

    /// Wait until `needle` appears in output not yet consumed; returns that
    /// output up to and including the needle.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.seen[self.pos..].find(needle) {
                let end = self.pos + i + needle.len();
                let got = self.seen[self.pos..end].to_string();
                self.pos = end;
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => panic!("{needle:?} did not show up on the pty; got {:?}", self.seen),
            }
        }
    }

    /// Wait for the command's exit (killing it after `timeout`).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        match wait_timeout(&mut self.child, timeout) {
            Some(s) => {
                while let Ok(b) = self.rx.recv_timeout(Duration::from_millis(100)) {
                    self.seen.push_str(&String::from_utf8_lossy(&b));
                }
                s
            }
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("command on pty did not exit; output {:?}", self.seen);
            }
        }
    }
}

impl Drop for OnPty {
    fn drop(&mut self) {
        // A test that failed half-way: the command is ours to stop.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
