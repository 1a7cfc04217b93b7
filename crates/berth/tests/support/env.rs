//! The harness of the container tests (`containers.rs`, `fs_cmds.rs`, `volumes_system.rs`): a
//! private store in a network namespace of its own with one image imported from local files;
//! `berth` run with a timeout and its output through files (a container it starts may hold
//! inherited pipes open); and at the end every container removed and nothing of any left: no
//! mount under the test's directory, no process mentioning it or in a container's cgroup, no
//! cgroup, veth, runtime state, socket, container directory or snapshot.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::docker::engines::{output_with_input, processes_where, wait_for};
use super::{succeeded, text, Root};

/// How long one `berth` command may take.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// The exit code (-1 for a signal).
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// A 64-digit lower-case hex id.
pub fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The cgroup directories of container `id` that exist, on every hierarchy (v1
/// controllers, the hybrid's unified mount, or a pure v2 mount).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    super::docker::cgroup_dirs(&format!("berth/{id}"))
}

/// Processes other than us whose command line mentions `dir` (monitors, the CLI, DNS
/// servers) or which sit in the cgroup of one of `ids`, as "pid: cmdline [state]".
pub fn processes_of(dir: &Path, ids: &BTreeSet<String>) -> Vec<String> {
    let ours = |l: &str| ids.iter().any(|id| l.ends_with(&format!("/berth/{id}")));
    processes_where(dir, ours)
        .into_iter()
        .map(|(pid, cmdline)| format!("{pid}: {cmdline} [{}]", proc_state(pid)))
        .collect()
}

/// State letter and parent of a process (`/proc/PID/stat`); `('?', 0)` when gone.
pub fn proc_stat(pid: i32) -> (char, i32) {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ('?', 0);
    };
    // pid (comm) S ppid …: comm may hold spaces and parentheses.
    let rest = &s[s.rfind(')').map_or(0, |i| i + 2)..];
    let mut f = rest.split_whitespace();
    let state = f.next().and_then(|x| x.chars().next()).unwrap_or('?');
    let ppid = f.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    (state, ppid)
}

pub fn proc_state(pid: i32) -> char {
    proc_stat(pid).0
}

/// A private store with one image; `finish` checks that nothing is left.
pub struct Env {
    pub root: Root,
    /// Snapshot directories after the import: the image's.
    pub baseline: Vec<String>,
    done: bool,
}

impl Env {
    /// A store in a network namespace of its own, with `rootfs` (a tar) imported as `image`
    /// with the `--change`s given; `None` (the test passes, saying why) where containers
    /// cannot run.
    pub fn new(test: &str, image: &str, changes: &[&str], rootfs: &[u8]) -> Option<Env> {
        Env::in_root(test, Root::with_netns, image, changes, rootfs)
    }

    /// [`Env::new`] on a stand-in for a host with only cgroup v2
    /// ([`Root::with_netns_on_cgroup2_only`]).
    pub fn on_cgroup2_only(test: &str, image: &str, changes: &[&str], rootfs: &[u8]) -> Option<Env> {
        Env::in_root(test, Root::with_netns_on_cgroup2_only, image, changes, rootfs)
    }

    fn in_root(test: &str, root: fn() -> Root, image: &str, changes: &[&str], rootfs: &[u8]) -> Option<Env> {
        if !super::containers_ready(test) {
            return None;
        }
        let mut env = Env {
            root: root(),
            baseline: Vec::new(),
            done: false,
        };
        let mut args = vec!["import"];
        for c in changes {
            args.extend(["-c", c]);
        }
        args.extend(["-", image]);
        let out = succeeded("berth import", env.run_input(&args, rootfs), "");
        assert!(text(&out.stdout).starts_with("sha256:"), "{}", text(&out.stdout));
        env.baseline = env.snapshots();
        Some(env)
    }

    pub fn dir(&self) -> &Path {
        self.root.dir.path()
    }

    pub fn runroot(&self) -> PathBuf {
        self.dir().join("run")
    }

    /// `berth --root … --runroot …`, stdin /dev/null.
    pub fn berth(&self) -> Command {
        self.root.cmd()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_input(args, b"")
    }

    /// `berth ARGS` with `input` on stdin.
    pub fn run_input(&self, args: &[&str], input: &[u8]) -> Output {
        output_with_input(self.berth().args(args), input, CMD_TIMEOUT)
    }

    /// `berth ARGS`, which must succeed; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        text(&self.ok_bytes(args))
    }

    pub fn ok_bytes(&self, args: &[&str]) -> Vec<u8> {
        succeeded(&format!("berth {args:?}"), self.run(args), "").stdout
    }

    /// `berth ARGS` with `input` on stdin, which must succeed; stdout.
    pub fn ok_input(&self, args: &[&str], input: &str) -> String {
        let out = self.run_input(args, input.as_bytes());
        text(&succeeded(&format!("berth {args:?}"), out, "").stdout)
    }

    /// `berth ARGS`, which must exit with `want`; (stdout, stderr).
    pub fn expect(&self, args: &[&str], want: i32) -> (String, String) {
        let out = self.run(args);
        assert_eq!(
            code(&out),
            want,
            "berth {args:?}: stdout {:?} stderr {:?}",
            text(&out.stdout),
            text(&out.stderr)
        );
        (text(&out.stdout), text(&out.stderr))
    }

    /// `berth ARGS`, which must fail with exit status 1; stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        self.expect(args, 1).1
    }

    /// `inspect --format FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "--format", format, name]).trim().to_owned()
    }

    /// The inspect document of one container.
    pub fn doc(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
        v[0].clone()
    }

    pub fn id(&self, name: &str) -> String {
        self.inspect(name, "{{.Id}}")
    }

    pub fn pid(&self, name: &str) -> i32 {
        self.inspect(name, "{{.State.Pid}}").parse().unwrap()
    }

    /// `run -d ARGS`: the new container's id.
    pub fn detach(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        let id = self.ok(&all).trim().to_owned();
        assert!(is_id(&id), "run -d printed {id:?}");
        id
    }

    /// Every container id this store ever had: the actors of its event journal.
    pub fn all_ids(&self) -> BTreeSet<String> {
        let db = berth_engine::db::Db::open(&self.root.path().join("berth.db")).unwrap();
        db.events_after(0)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "container")
            .map(|e| e.actor)
            .collect()
    }

    /// Snapshot directories of the store (image layers and containers' snapshots).
    pub fn snapshots(&self) -> Vec<String> {
        let mut out = Vec::new();
        for driver in ["overlay", "vfs"] {
            if let Ok(rd) = std::fs::read_dir(self.root.path().join(driver).join("snapshots")) {
                out.extend(
                    rd.flatten()
                        .map(|e| format!("{driver}/{}", e.file_name().to_string_lossy())),
                );
            }
        }
        out.sort();
        out
    }

    /// What is left of containers: mounts under our dir, processes mentioning our dir or in
    /// a cgroup of one of our containers, cgroups, veths, runtime state, sockets, container
    /// directories and snapshots other than the image's.
    pub fn leftovers(&self, ids: &BTreeSet<String>) -> Vec<String> {
        let mut left: Vec<String> = self
            .root
            .mounts_under(self.dir())
            .into_iter()
            .map(|m| format!("mount {m}"))
            .collect();
        left.extend(
            processes_of(self.dir(), ids)
                .into_iter()
                .map(|p| format!("process {p}")),
        );
        for id in ids {
            left.extend(cgroup_dirs(id).into_iter().map(|d| format!("cgroup {}", d.display())));
        }
        // Containers' veths (the bridges of networks stay, as docker0 does).
        left.extend(
            self.host_links()
                .into_iter()
                .filter(|l| l.starts_with("vb"))
                .map(|l| format!("link {l}")),
        );
        for dir in [
            self.runroot().join("runtime"),
            self.runroot().join("sockets"),
            self.runroot().join("netns"),
            self.root.path().join("containers"),
        ] {
            if let Ok(rd) = std::fs::read_dir(&dir) {
                left.extend(rd.flatten().map(|e| format!("file {}", e.path().display())));
            }
        }
        left.extend(
            self.snapshots()
                .into_iter()
                .filter(|s| !self.baseline.contains(s))
                .map(|s| format!("snapshot {s}")),
        );
        left
    }

    /// Runs `cmd` in the test's "host" namespaces.
    pub fn on_host(&self, cmd: &[&str]) -> Output {
        assert!(self.root.netns.is_some(), "a test network namespace");
        super::docker::engines::output(self.root.on_host(cmd[0]).args(&cmd[1..]), CMD_TIMEOUT)
    }

    /// Links of the test's "host" network namespace.
    pub fn host_links(&self) -> Vec<String> {
        text(&self.on_host(&["ip", "-br", "link"]).stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .collect()
    }

    /// SIGKILL to every process of the store (monitors, DNS servers, containers), then its
    /// mounts and the containers' cgroups removed, as far as possible.
    pub fn kill_unmount_uncgroup(&self, all: &BTreeSet<String>) {
        for p in processes_of(self.dir(), all) {
            if let Some(pid) = p.split(':').next().and_then(|p| p.parse().ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            }
        }
        for m in self.root.mounts_under(self.dir()).iter().rev() {
            self.root.unmount(m);
        }
        for id in all {
            for d in cgroup_dirs(id) {
                let _ = std::fs::remove_dir(d);
            }
        }
    }

    /// Removes what the test left (`rm -f`, which must work) and the images it made
    /// (`image prune -a`), then checks that nothing of any container remains.
    pub fn finish(mut self) {
        let ids: Vec<String> = self
            .ok(&["ps", "-aq", "--no-trunc"])
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            self.ok(&args);
        }
        assert_eq!(self.ok(&["ps", "-aq"]), "");
        self.ok(&["image", "prune", "-a", "-f"]);
        let all = self.all_ids();
        // A monitor exits just after the container's exit is recorded; zombies left to the
        // host's init take it a moment to reap.
        let mut left = Vec::new();
        wait_for(Duration::from_secs(10), || {
            left = self.leftovers(&all);
            left.is_empty()
        });
        assert!(left.is_empty(), "left behind: {left:#?}");
        // Only now: a failed check leaves the clean-up to drop.
        self.done = true;
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // A failed test: remove what it made, as far as possible.
        let all = self.all_ids();
        for id in &all {
            let _ = super::docker::engines::try_output(self.berth().args(["rm", "-f", id]), CMD_TIMEOUT);
        }
        self.kill_unmount_uncgroup(&all);
    }
}
