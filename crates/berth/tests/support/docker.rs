//! Docker 20.10 (Debian's docker.io) beside berth, for the interop and comparison tests: a
//! private dockerd (berth-runc's `engines::Dockerd`) with its default runc runtime and the
//! containerd it starts and manages itself, its data root, exec root, pid file, socket,
//! config and trust key under a temp dir; either `--insecure-registry` for the test registry
//! and only loopback (containers run with `--network none`, and `--pull never` so that no run
//! ever looks for an image elsewhere), or its default networking inside a test's network
//! namespace. Stopped by the pid we started; `shutdown` reports what it left behind.
//!
//! The generic parts (daemons, timeouts, leftovers) are berth-runc's `engines.rs`, which
//! expects `ready`, `cgroup_dirs` and `BERTH` from its parent module: they are here.

#[path = "../../../berth-runc/tests/common/engines.rs"]
pub mod engines;

use std::path::{Path, PathBuf};

use engines::{docker_client, which};

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

/// A private dockerd (`engines::Dockerd`); stopped (SIGTERM to our pid, then SIGKILL) when
/// dropped, and `shutdown` reports what it left behind.
pub type Docker = engines::Dockerd;

impl Docker {
    /// dockerd in `dir` (created) with the containerd it starts itself, trusting `registry`
    /// (`127.0.0.1:PORT`) over plain HTTP, only loopback, containers under cgroup
    /// `/<cgroup_parent>`.
    pub fn with_registry(dir: &Path, cgroup_parent: &str, registry: &str) -> Docker {
        let opts = engines::DockerdOptions {
            args: vec!["--insecure-registry".into(), registry.into()],
            ..Default::default()
        };
        Docker::start_with(dir, cgroup_parent, &opts)
    }

    /// dockerd with its default bridge, iptables rules and forwarding, inside the network
    /// namespace `/run/netns/NETNS` (made by the caller), so none of it reaches the host's.
    pub fn in_netns(dir: &Path, cgroup_parent: &str, netns: &str) -> Docker {
        let opts = engines::DockerdOptions {
            netns: Some(netns),
            ..Default::default()
        };
        Docker::start_with(dir, cgroup_parent, &opts)
    }

    /// `docker image inspect --format FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["image", "inspect", "--format", format, name])
            .trim()
            .to_owned()
    }
}
