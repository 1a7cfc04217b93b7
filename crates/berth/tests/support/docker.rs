//! Docker 20.10 (Debian's docker.io) beside berth, for the image interop tests: a private
//! dockerd with its default runc runtime and the containerd it starts and manages itself (no
//! `--containerd`), its data root, exec root, pid file, socket, config and trust key under a
//! temp dir, `--insecure-registry` for the test registry, and only loopback
//! (`--bridge=none --iptables=false --ip6tables=false --ip-forward=false`; containers run
//! with `--network none`, and `--pull never` so that no run ever looks for an image
//! elsewhere). Stopped by the pid we started; `shutdown` reports what it left behind.
//!
//! The generic parts (daemons, timeouts, leftovers) are berth-runc's `engines.rs`, which
//! expects `ready`, `cgroup_dirs` and `BERTH` from its parent module: they are here.

#[path = "../../../berth-runc/tests/common/engines.rs"]
pub mod engines;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub use engines::{docker_client, mounts_under, processes_of, which, Leftovers, CMD_TIMEOUT};
use engines::{output, remove_cgroup_parent, wait_for, Daemon, HostDirs, HostFiles};

/// For `engines.rs` (its `--add-runtime` and `berth_status`, unused here).
pub const BERTH: &str = super::BERTH;

/// For `engines.rs`: root is enough for what is used here.
pub fn ready() -> bool {
    nix::unistd::geteuid().is_root()
}

/// For `engines.rs`: the cgroup directories named `name` at the top of each hierarchy, where
/// `--cgroup-parent=/<name>` puts them (v1 controllers, the unified or a pure v2 mount).
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let top = Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![top.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(top) {
        hierarchies.extend(rd.flatten().map(|e| e.path()));
    }
    hierarchies
        .into_iter()
        .map(|h| h.join(name))
        .filter(|p| p.is_dir())
        .collect()
}

/// Why the Docker interop tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if let Some(reason) = super::registry::skip_reason() {
        return Some(reason);
    }
    if which("dockerd").is_none() || docker_client().is_none() {
        return Some("dockerd or docker missing (apt-get install docker.io; scripts/deps.sh does)".into());
    }
    if which("skopeo").is_none() {
        return Some("skopeo missing (apt-get install skopeo; scripts/deps.sh does)".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("/bin/busybox missing (apt-get install busybox-static)".into());
    }
    None
}

/// Prints why a test is skipped and returns false when it must be.
pub fn ready_for(test: &str) -> bool {
    match skip_reason() {
        Some(reason) => {
            eprintln!("skipping {test}: {reason}");
            false
        }
        None => true,
    }
}

/// A private dockerd; stopped (SIGTERM to our pid, then SIGKILL) when dropped.
pub struct Docker {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub cgroup_parent: String,
    daemon: Daemon,
    host_dirs: HostDirs,
    host_files: HostFiles,
    down: bool,
}

impl Docker {
    /// Starts dockerd in `dir` (created), trusting `registry` (`127.0.0.1:PORT`) over plain
    /// HTTP, with containers under cgroup `/<cgroup_parent>`.
    pub fn start(dir: &Path, cgroup_parent: &str, registry: &str) -> Docker {
        Docker::start_with(dir, cgroup_parent, registry, None)
    }

    /// Starts dockerd with its default bridge, iptables rules and forwarding, inside the
    /// network namespace `/run/netns/NETNS` (made by the caller), so none of it reaches the
    /// host's.
    pub fn start_in_netns(dir: &Path, cgroup_parent: &str, netns: &str) -> Docker {
        Docker::start_with(dir, cgroup_parent, "127.0.0.1:1", Some(netns))
    }

    fn start_with(dir: &Path, cgroup_parent: &str, registry: &str, netns: Option<&str>) -> Docker {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("docker.sock");
        // Nothing from /etc/docker/daemon.json; the trust key kept here, not in /etc/docker.
        let config = serde_json::json!({ "deprecated-key-path": dir.join("key.json") });
        std::fs::write(dir.join("daemon.json"), config.to_string()).unwrap();
        // Fixed paths: dockerd's plugin dir; the shims' sockets of its containerd.
        let host_dirs = HostDirs::missing(&[
            "/run/docker",
            "/run/docker/plugins",
            "/run/containerd",
            "/run/containerd/s",
        ]);
        let host_files = HostFiles::snapshot(&[
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/net/ipv6/conf/all/forwarding",
            "/etc/docker/key.json",
        ]);
        let mut cmd = match netns {
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
            .args(if netns.is_some() {
                &[][..]
            } else {
                &[
                    "--bridge=none",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--ip-forward=false",
                ][..]
            })
            .arg(format!("--cgroup-parent=/{cgroup_parent}"))
            .arg("--insecure-registry")
            .arg(registry);
        let daemon = Daemon::spawn("dockerd", cmd, dir.join("dockerd.log"));
        let mut d = Docker {
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

    /// The docker client on our socket, its config dir in ours.
    pub fn docker(&self) -> Command {
        let mut c = Command::new(docker_client().unwrap());
        c.env("DOCKER_CONFIG", self.dir.join("client"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()));
        c
    }

    /// `docker ARGS` to completion (CMD_TIMEOUT), whatever the exit.
    pub fn run(&self, args: &[&str]) -> Output {
        output(self.docker().args(args), CMD_TIMEOUT)
    }

    /// `docker ARGS`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let context = if out.status.success() {
            String::new()
        } else {
            self.daemon.log_tail()
        };
        let out = super::succeeded(&format!("docker {args:?}"), out, &context);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker image inspect --format FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["image", "inspect", "--format", format, name])
            .trim()
            .to_owned()
    }

    /// Removes every container, stops dockerd (its containerd and shims go with it), removes
    /// what it made on the host, and reports anything left behind.
    pub fn shutdown(&mut self) -> Leftovers {
        self.down = true;
        if self.daemon.running() {
            if let Ok(out) = engines::try_output(self.docker().args(["ps", "-aq"]), engines::CLEANUP_TIMEOUT) {
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = engines::try_output(self.docker().args(["rm", "-f", id]), engines::CLEANUP_TIMEOUT);
                }
            }
        }
        let killed = self.daemon.stop().is_none();
        // dockerd stops its containerd on the way out; give stragglers a moment.
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

impl Drop for Docker {
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
