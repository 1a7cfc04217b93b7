//! The container operations: create, start, stop, kill, wait, remove,
//! pause, rename, exec, and the reconciliation every one of them starts with.

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_image::snapshot::SnapshotError;
use berth_monitor::proto::{self, Client};
use berth_monitor::{MonitorConfig, Restart, Status};
use berth_runtime::state::now_rfc3339;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::config::{merge, Config, HostConfig, ImageDefaults, NetworkingConfig};
use crate::db::{is_name_conflict, NewEvent, Row, RunState};
use crate::{ids, io_err, spec, user, volumes, Engine, EngineError, Result};

/// What `create` needs: Docker's create body, and an optional name.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: Option<String>,
    pub config: Config,
    pub host: HostConfig,
    pub networking: NetworkingConfig,
}

/// A process to run in a running container.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub privileged: bool,
}

/// The recorded settings of a container.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Settings {
    pub config: Config,
    pub host_config: HostConfig,
    #[serde(default)]
    pub networking_config: NetworkingConfig,
}

impl Row {
    pub fn settings(&self) -> Settings {
        serde_json::from_str(&self.config).unwrap_or_default()
    }

    /// Whether the container's process is alive (running or paused).
    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "paused")
    }
}

/// Docker's smallest `--memory` (less cannot even start a process).
pub(crate) const MIN_MEMORY: i64 = 6 << 20;

pub(crate) fn snapshot_key(id: &str) -> String {
    format!("container-{id}")
}

pub(crate) fn event(action: &str, row: &Row, extra: &[(&str, Value)]) -> NewEvent {
    // Docker's attributes: the container's labels, then image and name.
    let mut attributes: serde_json::Map<String, Value> = row
        .settings()
        .config
        .labels
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    attributes.insert("image".into(), json!(row.image_name));
    attributes.insert("name".into(), json!(row.name));
    for (k, v) in extra {
        attributes.insert((*k).into(), v.clone());
    }
    NewEvent {
        kind: "container",
        action: action.into(),
        actor: row.id.clone(),
        attributes,
    }
}

/// A network event (`connect`, `disconnect`) naming the container.
pub(crate) fn network_event(action: &str, net: &berth_network::store::Network, container: &str) -> NewEvent {
    let mut attributes = serde_json::Map::new();
    attributes.insert("container".into(), json!(container));
    attributes.insert("name".into(), json!(net.name));
    attributes.insert("type".into(), json!(net.driver));
    NewEvent {
        kind: "network",
        action: action.into(),
        actor: net.id.clone(),
        attributes,
    }
}

/// The monitor's form of a restart policy.
pub(crate) fn monitor_restart(policy: &crate::config::RestartPolicy) -> Restart {
    Restart {
        name: policy.name.clone(),
        max_retries: policy.maximum_retry_count.max(0) as u32,
    }
}

/// The monitor `pid` is alive and serves container `id`.
fn monitor_alive(pid: i32, id: &str) -> bool {
    pid > 0
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.windows(id.len()).any(|w| w == id.as_bytes()))
}

/// How long a command waits for a monitor left by a killed one (creating the container,
/// or exiting after its delete).
const MONITOR_WAIT: Duration = Duration::from_secs(20);

impl Engine {
    /// Waits (at most [`MONITOR_WAIT`]) while the monitor named in container `id`'s
    /// status.json lives and `busy` holds for its status; that status if the monitor still
    /// lives, `None` once there is none.
    fn wait_for_monitor(&self, id: &str, busy: impl Fn(&Status) -> bool) -> Option<Status> {
        let path = self.dir(id).join("status.json");
        let deadline = Instant::now() + MONITOR_WAIT;
        loop {
            let st = Status::read(&path)
                .ok()
                .flatten()
                .filter(|st| monitor_alive(st.monitor_pid, id))?;
            if !busy(&st) || Instant::now() >= deadline {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Whether something is mounted on `path`: it is a mount's root (statx's
/// `MOUNT_ROOT`, which also tells a bind of a directory of the same filesystem);
/// on kernels without that attribute (before 5.8), whether it sits on another
/// device than its parent.
pub(crate) fn is_mountpoint(path: &Path) -> bool {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags, CWD};
    use std::os::unix::fs::MetadataExt;
    match statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS) {
        Ok(st) if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) => {
            st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
        }
        Ok(_) => match (std::fs::metadata(path), path.parent().map(std::fs::metadata)) {
            (Ok(a), Some(Ok(b))) => a.dev() != b.dev(),
            _ => false,
        },
        Err(_) => false,
    }
}

/// Unmounts (lazily) everything stacked on `path`, as far as it goes.
pub(crate) fn unmount_all(path: &Path) {
    while is_mountpoint(path) {
        if nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

/// This host's cgroup layout and the engine's own cgroup, read once for the groups under
/// `/berth` (see `spec.rs`) that a removal or start looks after.
struct HostCgroups {
    layout: berth_cgroups::Layout,
    own: String,
}

impl HostCgroups {
    fn read() -> Option<HostCgroups> {
        Some(HostCgroups {
            layout: berth_cgroups::Layout::detect().ok()?,
            own: std::fs::read_to_string("/proc/self/cgroup").ok()?,
        })
    }

    /// The cgroup at `path` (as a spec's cgroupsPath).
    fn at(&self, path: &str, name: &str) -> Option<berth_cgroups::Cgroup> {
        berth_cgroups::Cgroup::resolve(&self.layout, Some(Path::new(path)), name, &self.own).ok()
    }

    /// The parent of the containers' cgroups, removed from every hierarchy where no
    /// container's group is left in it, so a host without containers keeps no trace of
    /// berth's cgroups.
    fn remove_parent(&self) {
        if let Some(cg) = self.at(spec::CGROUP_PARENT, "berth") {
            cg.remove_if_unused();
        }
    }

    /// Container `id`'s own cgroup where the runtime no longer knows the container (a
    /// monitor killed while the runtime was creating it leaves the group, and perhaps its
    /// init waiting): what runs in it is killed and its directories are removed.
    fn remove_orphan(&self, id: &str) {
        if let Some(cg) = self.at(&format!("{}/{id}", spec::CGROUP_PARENT), id) {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.destroy();
        }
    }
}

/// Docker's exit status for a process that could not start, from the
/// runtime's message.
pub fn start_code(message: &str) -> i32 {
    // Case-insensitive: runc says "no such file or directory", Rust's
    // io::Error "No such file or directory (os error 2)".
    let message = message.to_ascii_lowercase();
    if message.contains("executable file not found") || message.contains("no such file or directory") {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

impl Engine {
    /// Records a new container from an image (which must be present) and
    /// prepares its filesystem. Returns its id.
    pub fn create(&self, opts: &CreateOptions) -> Result<String> {
        let image = self.images.resolve(&opts.config.image)?;
        let defaults = ImageDefaults::from_image_config(&self.images.config_bytes(&image)?)
            .map_err(|e| EngineError::State(format!("image {}: bad config: {e}", opts.config.image)))?;
        let mut config = opts.config.clone();
        merge(&mut config, &defaults);
        let mut host = opts.host.clone();
        if host.network_mode.is_empty() || host.network_mode == "default" {
            host.network_mode = "bridge".into();
        }
        if host.log_config.kind.is_empty() {
            host.log_config.kind = "json-file".into();
        }
        // Fail now, not at start, on settings that cannot work.
        if host.memory > 0 && host.memory < MIN_MEMORY {
            return Err(EngineError::State("Minimum memory limit allowed is 6MB".into()));
        }
        spec::capabilities(&host).map_err(|source| EngineError::Spec {
            id: String::new(),
            source,
        })?;
        spec::security_opts(&host.security_opt).map_err(|source| EngineError::Spec {
            id: String::new(),
            source,
        })?;
        if let Some(name) = &opts.name {
            if !ids::valid_name(name) {
                return Err(EngineError::InvalidName(name.clone()));
            }
        }
        let image_volumes: Vec<String> = config.volumes.iter().flatten().map(|(k, _)| k.clone()).collect();
        volumes::plan_mounts(&image_volumes, &mut host).map_err(io_err("reading", "/dev/urandom"))??;
        let id = loop {
            let id = ids::random_id().map_err(io_err("reading", "/dev/urandom"))?;
            if !self.db.prefix_taken(&id[..12])? {
                break id;
            }
        };
        let settings = Settings {
            config,
            host_config: host,
            networking_config: opts.networking.clone(),
        };
        let mut row = Row {
            id: id.clone(),
            name: String::new(),
            image: image.id.clone(),
            image_name: opts.config.image.clone(),
            created: now_rfc3339(),
            config: serde_json::to_string(&settings).expect("serializable"),
            state: "created".into(),
            pid: 0,
            monitor_pid: 0,
            started_at: String::new(),
            finished_at: String::new(),
            exit_code: 0,
            oom_killed: false,
            restart_count: 0,
            error: String::new(),
        };
        // The record first: whatever a crash leaves after it, `rm` and
        // `start` can finish or undo; nothing exists that the store does not name.
        let mut salt = 0;
        let bits = u64::from_str_radix(&id[..16], 16).unwrap_or(0);
        loop {
            row.name = opts.name.clone().unwrap_or_else(|| ids::random_name(bits, salt));
            match self.db.insert(&row, &event("create", &row, &[])) {
                Ok(()) => break,
                Err(e) if is_name_conflict(&e) => {
                    if let Some(name) = &opts.name {
                        let holder = self.db.lookup(name)?.pop().unwrap_or_default();
                        return Err(EngineError::NameInUse {
                            name: name.clone(),
                            id: holder,
                        });
                    }
                    salt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let made = (|| {
            self.images.db().add_ref(&image.id, &format!("container:{id}"))?;
            self.attach_volumes(&id, &settings.host_config)?;
            self.prepare_files(&row, &settings)?;
            self.ensure_snapshot(&row)?;
            Ok(())
        })();
        if let Err(e) = made {
            let _ = self.remove_parts(&row);
            let _ = self.db.delete(&id, &event("destroy", &row, &[]));
            let _ = self.remove_anonymous_volumes(&settings.host_config);
            return Err(e);
        }
        Ok(id)
    }

    fn prepare_files(&self, row: &Row, s: &Settings) -> Result<()> {
        let dir = self.dir(&row.id);
        std::fs::create_dir_all(dir.join("rootfs")).map_err(io_err("creating directory", &dir))?;
        let hostname = if s.config.hostname.is_empty() {
            row.id[..12].to_string()
        } else {
            s.config.hostname.clone()
        };
        let write = |name: &str, content: String| {
            let p = dir.join(name);
            std::fs::write(&p, content).map_err(io_err("writing", p))
        };
        write("hostname", format!("{hostname}\n"))?;
        self.write_net_files(row, s, &[], None)
    }

    /// `/etc/hosts` (with the container's own addresses under its hostname)
    /// and `/etc/resolv.conf` (the embedded DNS server first on user
    /// networks) of the container.
    fn write_net_files(
        &self,
        row: &Row,
        s: &Settings,
        addrs: &[std::net::IpAddr],
        dns: Option<std::net::IpAddr>,
    ) -> Result<()> {
        let dir = self.dir(&row.id);
        let write = |name: &str, content: String| {
            let p = dir.join(name);
            std::fs::write(&p, content).map_err(io_err("writing", p))
        };
        let hostname = if s.config.hostname.is_empty() {
            row.id[..12].to_string()
        } else {
            s.config.hostname.clone()
        };
        let mut hosts = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        );
        for h in &s.host_config.extra_hosts {
            let (name, ip) = h.split_once(':').ok_or_else(|| EngineError::Spec {
                id: row.id.clone(),
                source: spec::SpecError::Invalid {
                    what: "add-host",
                    value: h.clone(),
                    reason: "expected HOST:IP".into(),
                },
            })?;
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
        for a in addrs {
            hosts.push_str(&format!("{a}\t{hostname}\n"));
        }
        write("hosts", hosts)?;
        let mut resolv = String::new();
        if let Some(d) = dns {
            resolv.push_str(&format!("nameserver {d}\n"));
        }
        resolv.push_str(&resolv_conf(&s.host_config, dns.is_some()));
        write("resolv.conf", resolv)?;
        Ok(())
    }

    /// The container's snapshot, made if a crash left the record without it.
    pub(crate) fn ensure_snapshot(&self, row: &Row) -> Result<Vec<berth_image::snapshot::Mount>> {
        let key = snapshot_key(&row.id);
        let snaps = self.images.snapshotter();
        match snaps.mounts(&key) {
            Ok(m) => Ok(m),
            Err(SnapshotError::NotFound { .. }) => {
                let _lock = self.images.lock_shared()?;
                let image = self.images.db().image(&row.image)?.ok_or_else(|| {
                    EngineError::State(format!("container {}: its image {} is gone", row.id, row.image))
                })?;
                Ok(snaps
                    .prepare(&key, image.top.as_deref())
                    .map_err(berth_image::images::ImageError::from)?)
            }
            Err(e) => Err(berth_image::images::ImageError::from(e).into()),
        }
    }

    fn mount_rootfs(&self, row: &Row) -> Result<PathBuf> {
        let target = self.rootfs(&row.id);
        if is_mountpoint(&target) {
            return Ok(target);
        }
        std::fs::create_dir_all(&target).map_err(io_err("creating directory", &target))?;
        for m in self.ensure_snapshot(row)? {
            m.mount_at(&target)
                .map_err(io_err("mounting the container's rootfs on", &target))?;
        }
        Ok(target)
    }

    /// The container's filesystems let go once its process is gone: the rootfs unmounted,
    /// its volumes released (the last user of a mounted volume unmounts it).
    fn unmount_rootfs(&self, id: &str) {
        unmount_all(&self.rootfs(id));
        let _ = self.release_volumes(id);
    }

    /// Serializes `start` and `cleanup` of container `id`: a flock on its
    /// directory (nothing is created in it, so a concurrent `rm` can empty
    /// it), released with the descriptor, also by a killed process; `None`
    /// when the container has no directory (gone, or not made yet).
    pub(crate) fn lock(&self, id: &str) -> Result<Option<Flock<std::fs::File>>> {
        let path = self.dir(id);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("opening", &path)(e)),
        };
        Flock::lock(file, FlockArg::LockExclusive)
            .map(Some)
            .map_err(|(_, e)| io_err("locking", &path)(e.into()))
    }

    /// Starts a created or exited container: mounts its rootfs, writes its
    /// OCI spec, starts its monitor (which creates it), then lets it run.
    /// With `attach` (the streams to attach, see [`proto`]), the returned
    /// client is connected before the process runs, so no output is missed.
    pub fn start(&self, name: &str, attach: Option<u8>) -> Result<Option<Client>> {
        let _lock = self.lock(&self.lookup(name)?)?;
        let row = self.get(name)?;
        match row.state.as_str() {
            "running" | "restarting" => return Ok(None),
            "paused" => {
                return Err(EngineError::State(
                    "cannot start a paused container, try unpause instead".into(),
                ))
            }
            _ => {}
        }
        let id = row.id.clone();
        let s = row.settings();
        let runtime = self.runtime_root();
        // A `create` killed after recording the container: finish it
        // (resolv.conf is the last file it writes).
        if !self.dir(&id).join("resolv.conf").exists() {
            self.images.db().add_ref(&row.image, &format!("container:{id}"))?;
            self.attach_volumes(&id, &s.host_config)?;
            self.prepare_files(&row, &s)?;
        }
        // A `run`/`start` killed while its monitor was creating the container:
        // that monitor's outcome first (one still creating after the wait is
        // left alone, not replaced under its feet).
        let left = self.wait_for_monitor(&id, |st| st.state == "creating");
        if left.as_ref().is_some_and(|st| st.state == "creating") {
            return Err(EngineError::State(format!(
                "container {id} is still being created by another start"
            )));
        }
        // A `run`/`start` killed after its monitor created the container
        // left that monitor waiting: take it over. (Replacing it would leave
        // it to run its exit command, which unmounts the rootfs, under the
        // new one.)
        let waiting = left
            .filter(|st| {
                st.state == "created"
                    && runtime
                        .load(&id)
                        .is_ok_and(|c| c.status(&runtime) == berth_runtime::Status::Created)
            })
            .map(|st| st.monitor_pid);
        if waiting.is_none() {
            // Left over from a monitor that died before its cleanup.
            let _ = berth_runtime::container::delete::delete(&runtime, &id, true);
            if let Some(host) = HostCgroups::read() {
                host.remove_orphan(&id);
            }
        }
        let rootfs = self.mount_rootfs(&row)?;
        let spec_err = |source| EngineError::Spec { id: id.clone(), source };
        let result = (|| {
            if let Some(pid) = waiting {
                return Ok(pid);
            }
            let passwd = user::read_in_root(&rootfs, "/etc/passwd");
            let group = user::read_in_root(&rootfs, "/etc/group");
            let u = user::resolve(&s.config.user, &passwd, &group, &s.host_config.group_add)?;
            let volume_dirs = self.mount_volumes(&row, &s.host_config, &rootfs)?;
            let dir = self.dir(&id);
            let net = self.network_up(&row, &s)?;
            self.write_net_files(&row, &s, &net.addrs, net.dns)?;
            let spec = spec::generate(&spec::Inputs {
                id: &id,
                config: &s.config,
                host: &s.host_config,
                rootfs: &rootfs,
                dir: &dir,
                user: &u,
                volume_dirs: &volume_dirs,
                netns: net.netns.as_deref(),
            })
            .map_err(spec_err)?;
            let p = dir.join("config.json");
            std::fs::write(&p, serde_json::to_vec(&spec).expect("serializable")).map_err(io_err("writing", &p))?;
            self.spawn_monitor(&row, &s)
        })();
        let monitor_pid = match result {
            Ok(pid) => pid,
            Err(e) => {
                self.unmount_rootfs(&id);
                self.network_down(&id);
                let (message, code) = match &e {
                    EngineError::Start { message, code, .. } => (message.clone(), *code),
                    other => (berth_runtime::error::chain(other), 125),
                };
                let mut new = row.run_state();
                new.error = message;
                new.exit_code = code;
                let _ = self.db.set_state(&id, &row.run_state(), &new, None);
                return Err(e);
            }
        };
        let client = match attach {
            Some(want) => {
                Some(Client::connect(&self.socket(&id), want).map_err(io_err("attaching to", self.socket(&id)))?)
            }
            None => None,
        };
        self.reset_health(&row, &s.config)?;
        // Before the process runs: a quick exit's FinishedAt (the monitor's)
        // must not come before it.
        let started_at = now_rfc3339();
        let state = match berth_runtime::container::start::start(&runtime, &id) {
            Ok(st) => st,
            Err(source) => {
                let _ = berth_runtime::container::delete::delete(&runtime, &id, true);
                self.network_down(&id);
                return Err(EngineError::Runtime {
                    id,
                    op: "starting",
                    source: Box::new(source),
                });
            }
        };
        let new = RunState {
            state: "running".into(),
            pid: state.pid,
            monitor_pid,
            started_at,
            finished_at: if row.finished_at.is_empty() {
                "0001-01-01T00:00:00Z".into()
            } else {
                row.finished_at.clone()
            },
            exit_code: 0,
            oom_killed: false,
            restart_count: 0,
            error: String::new(),
        };
        self.db
            .set_state(&id, &row.run_state(), &new, Some(&event("start", &row, &[])))?;
        Ok(client)
    }

    /// Starts the container's monitor and waits for it to have created the
    /// container. Returns the monitor's pid.
    fn spawn_monitor(&self, row: &Row, s: &Settings) -> Result<i32> {
        let id = &row.id;
        let dir = self.dir(id);
        let opts = &s.host_config.log_config.config;
        let log_path = (s.host_config.log_config.kind != "none").then(|| self.log_path(id));
        let max_size = match opts.get("max-size") {
            Some(v) => {
                spec::parse_size(v).ok_or_else(|| EngineError::State(format!("invalid log-opt max-size {v:?}")))? as u64
            }
            None => 20 << 20,
        };
        let max_files = match opts.get("max-file") {
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| EngineError::State(format!("invalid log-opt max-file {v:?}")))?,
            None => 5,
        };
        let policy = &s.host_config.restart_policy;
        let mut exit_command = self.opts.exit_command.clone();
        exit_command.push(id.clone());
        let cfg = MonitorConfig {
            id: id.clone(),
            bundle: dir.clone(),
            runtime_root: self.runtime_root().dir,
            log_path,
            log_max_size: max_size,
            log_max_files: max_files,
            tty: s.config.tty,
            open_stdin: s.config.open_stdin,
            stdin_once: s.config.stdin_once,
            socket: self.socket(id),
            status_path: dir.join("status.json"),
            restart: monitor_restart(policy),
            exit_command: if exit_command.len() > 1 {
                exit_command
            } else {
                Vec::new()
            },
            health: crate::health::Check::of(&s.config)
                .filter(|_| !self.opts.health_command.is_empty())
                .map(|c| berth_monitor::config::HealthSchedule {
                    command: self.opts.health_command.clone(),
                    interval_ms: c.interval.as_millis() as u64,
                    start_period_ms: c.start_period.as_millis() as u64,
                    start_interval_ms: c.start_interval.as_millis() as u64,
                }),
        };
        let cfg_path = dir.join("monitor.json");
        berth_monitor::config::write_atomic(&cfg_path, &serde_json::to_vec(&cfg).expect("serializable"))
            .map_err(io_err("writing", &cfg_path))?;
        let _ = std::fs::remove_file(dir.join("status.json"));
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io_err("creating pipe", "")(e.into()))?;
        // The write end is inherited by the monitor, which is told its number.
        let monitor = &self.opts.monitor;
        let mut cmd = Command::new(monitor);
        cmd.arg(&cfg_path)
            .arg("--sync-fd")
            .arg(w.as_raw_fd().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        berth_runtime::sys::fds::clear_cloexec(w.as_raw_fd()).map_err(io_err("passing pipe to", monitor))?;
        let spawned = cmd.spawn();
        drop(w);
        let mut child = spawned.map_err(io_err("starting", monitor))?;
        let status = child.wait().map_err(io_err("waiting for", monitor))?;
        let mut line = String::new();
        let _ = BufReader::new(std::fs::File::from(r)).read_line(&mut line);
        let mon_err = |message: String| EngineError::Monitor {
            path: monitor.clone(),
            message,
        };
        if !status.success() && line.is_empty() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(mon_err(format!("{status}: {}", err.trim())));
        }
        let v: Value = serde_json::from_str(&line).map_err(|_| mon_err(format!("unexpected report {line:?}")))?;
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            return Err(EngineError::Start {
                id: id.clone(),
                message: e.to_string(),
                code: start_code(e),
            });
        }
        v.get("monitor")
            .and_then(|m| m.as_i64())
            .map(|m| m as i32)
            .ok_or_else(|| mon_err(format!("unexpected report {line:?}")))
    }

    /// Brings a record in line with reality: the monitor's report, whether
    /// the monitor lives, and the runtime's view of the container.
    pub fn sync(&self, row: Row) -> Result<Row> {
        if matches!(row.state.as_str(), "created" | "exited") {
            return self.sync_stopped(row);
        }
        if !matches!(row.state.as_str(), "running" | "paused" | "restarting") {
            return Ok(row);
        }
        let old = row.run_state();
        let mut new = old.clone();
        let status = Status::read(&self.dir(&row.id).join("status.json")).ok().flatten();
        let alive = monitor_alive(row.monitor_pid, &row.id);
        let mut action = None;
        match status {
            Some(st) if st.monitor_pid == row.monitor_pid && st.state == "exited" => {
                new.state = "exited".into();
                new.pid = 0;
                new.exit_code = st.exit_code;
                new.oom_killed = st.oom_killed;
                new.finished_at = st.finished_at.clone();
                new.restart_count = st.restart_count;
                new.error = st.error.clone();
                action = Some(("die", st.exit_code));
            }
            Some(st) if st.monitor_pid == row.monitor_pid && st.state == "restarting" && alive => {
                new.state = "restarting".into();
                new.pid = 0;
                new.exit_code = st.exit_code;
                new.finished_at = st.finished_at.clone();
                new.restart_count = st.restart_count;
                if row.state != "restarting" {
                    action = Some(("die", st.exit_code));
                }
            }
            // Restarted: a new count, or a record caught while the monitor was
            // between its restart's create (which reports the new count under
            // "restarting") and the start.
            Some(st)
                if st.monitor_pid == row.monitor_pid
                    && st.state == "running"
                    && (st.restart_count != row.restart_count || row.state == "restarting") =>
            {
                new.state = "running".into();
                new.pid = st.pid;
                new.started_at = st.started_at.clone();
                new.restart_count = st.restart_count;
                action = Some((
                    if st.restart_count != row.restart_count {
                        "restart"
                    } else {
                        "start"
                    },
                    0,
                ));
            }
            _ if !alive => {
                // The monitor died without a report (killed): the process
                // may still run, without anyone to record its end.
                let runtime = self.runtime_root();
                let live = runtime
                    .load(&row.id)
                    .map(|s| s.status(&runtime))
                    .is_ok_and(|s| matches!(s, berth_runtime::Status::Running | berth_runtime::Status::Paused));
                if live {
                    new.error = "berth-monitor exited; the container runs without logs or exit status".into();
                } else {
                    new.state = "exited".into();
                    new.pid = 0;
                    new.exit_code = 255;
                    new.finished_at = now_rfc3339();
                    new.error = "berth-monitor exited before the container; its exit status is lost".into();
                    action = Some(("die", 255));
                }
            }
            _ => {}
        }
        if new == old {
            return Ok(row);
        }
        let ev = action.map(|(a, code)| event(a, &row, &[("exitCode", json!(code.to_string()))]));
        self.db.set_state(&row.id, &old, &new, ev.as_ref())?;
        Ok(self.db.get(&row.id)?.unwrap_or(row))
    }

    /// A created or exited record whose `start` (or `run`) was killed after
    /// the runtime started the process but before the record said so: a
    /// monitor newer than the recorded one reports it running (or exited
    /// since). A record whose monitor still holds the created container
    /// stays as it is (`start` takes that monitor over); one whose monitor
    /// failed to create it keeps the error `start` recorded.
    fn sync_stopped(&self, row: Row) -> Result<Row> {
        let Ok(Some(st)) = Status::read(&self.dir(&row.id).join("status.json")) else {
            return Ok(row);
        };
        if st.monitor_pid == row.monitor_pid {
            return Ok(row);
        }
        let runtime = self.runtime_root();
        let live = runtime.load(&row.id).map(|s| s.status(&runtime)).ok();
        let old = row.run_state();
        let mut new = old.clone();
        let action;
        match (st.state.as_str(), live) {
            ("created" | "running", Some(berth_runtime::Status::Running | berth_runtime::Status::Paused)) => {
                new.state = "running".into();
                new.pid = st.pid;
                new.monitor_pid = st.monitor_pid;
                new.started_at = now_rfc3339();
                new.finished_at = "0001-01-01T00:00:00Z".into();
                if !monitor_alive(st.monitor_pid, &row.id) {
                    new.error = "berth-monitor exited; the container runs without logs or exit status".into();
                }
                action = ("start", 0);
            }
            ("exited", _) if st.error.is_empty() && !st.finished_at.is_empty() => {
                new.state = "exited".into();
                new.pid = 0;
                new.monitor_pid = st.monitor_pid;
                new.exit_code = st.exit_code;
                new.oom_killed = st.oom_killed;
                if new.started_at.is_empty() {
                    new.started_at = st.finished_at.clone();
                }
                new.finished_at = st.finished_at.clone();
                new.restart_count = st.restart_count;
                action = ("die", st.exit_code);
            }
            _ => return Ok(row),
        }
        let ev = event(action.0, &row, &[("exitCode", json!(action.1.to_string()))]);
        self.db.set_state(&row.id, &old, &new, Some(&ev))?;
        Ok(self.db.get(&row.id)?.unwrap_or(row))
    }

    /// Waits until the container's process has exited; its exit code.
    /// `timeout` bounds the wait (`None`: no bound); `Ok(None)` when it ran out.
    pub fn wait_exit(&self, id: &str, timeout: Option<Duration>) -> Result<Option<i32>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let row = self.db.get(id)?.ok_or_else(|| EngineError::NotFound(id.into()))?;
            let row = self.sync(row)?;
            if !matches!(row.state.as_str(), "running" | "paused" | "restarting") {
                return Ok(Some(row.exit_code));
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                return Ok(None);
            }
            match Client::connect(&self.socket(id), 0) {
                Ok(mut c) => {
                    if let Some(l) = left {
                        let _ = c.set_read_timeout(Some(l));
                    }
                    let _ = c.wait();
                    // The monitor's report is written before the exit frame.
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// `docker wait`: blocks until the container stops; its exit code.
    pub fn wait(&self, name: &str) -> Result<i32> {
        let id = self.lookup(name)?;
        Ok(self.wait_exit(&id, None)?.unwrap_or(0))
    }

    /// Sends the stop signal, then SIGKILL after `timeout` seconds (the
    /// container's own stop timeout, or 10).
    pub fn stop(&self, name: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
        let row = self.get(name)?;
        let id = row.id.clone();
        if !matches!(row.state.as_str(), "running" | "paused" | "restarting") {
            return Ok(());
        }
        let s = row.settings();
        let _ = proto::notify_stopping(&self.socket(&id));
        let signal = signal.or(s.config.stop_signal.as_deref()).unwrap_or("SIGTERM");
        let timeout = timeout.or(s.config.stop_timeout).unwrap_or(10);
        if row.state != "restarting" {
            self.signal(&row, signal)?;
            if timeout > 0
                && self
                    .wait_exit(&id, Some(Duration::from_secs(timeout as u64)))?
                    .is_some()
            {
                self.cleanup(&id)?;
                return Ok(());
            }
            self.signal(&row, "SIGKILL")?;
        }
        self.wait_exit(&id, Some(Duration::from_secs(30)))?;
        self.cleanup(&id)?;
        let row = self.db.get(&id)?.unwrap_or(row);
        self.db.add_event(&event("stop", &row, &[]))?;
        Ok(())
    }

    /// Sends `signal` (a name or number) to the container's process, as a
    /// foreground `run` forwards the signals it gets; no restart policy change.
    pub fn signal(&self, row: &Row, signal: &str) -> Result<()> {
        let runtime = self.runtime_root();
        let sig = berth_runtime::container::kill::parse_signal(signal).map_err(|source| EngineError::Runtime {
            id: row.id.clone(),
            op: "parsing signal",
            source: Box::new(source),
        })?;
        match berth_runtime::container::kill::kill(&runtime, &row.id, sig, false) {
            Ok(()) => {}
            // Exited meanwhile.
            Err(berth_runtime::Error::NotFound(_)) | Err(berth_runtime::Error::State(_)) => return Ok(()),
            Err(source) => {
                return Err(EngineError::Runtime {
                    id: row.id.clone(),
                    op: "sending a signal",
                    source: Box::new(source),
                })
            }
        }
        if row.state == "paused" && sig == Signal::SIGKILL {
            let _ = berth_runtime::container::pause::resume(&runtime, &row.id);
        }
        Ok(())
    }

    /// `docker kill`: sends `signal` (default SIGKILL); no restart follows.
    pub fn kill(&self, name: &str, signal: &str) -> Result<()> {
        let row = self.get(name)?;
        if !row.is_running() {
            return Err(EngineError::State(format!(
                "Cannot kill container: {name}: Container {} is not running",
                row.id
            )));
        }
        let _ = proto::notify_stopping(&self.socket(&row.id));
        self.signal(&row, signal)?;
        self.db.add_event(&event("kill", &row, &[("signal", json!(signal))]))?;
        Ok(())
    }

    /// After the process exited for good: record it, unmount the rootfs,
    /// and remove the container if it was run with `--rm`. Safe to call
    /// from several processes at once (the monitor's exit command and a
    /// foreground `run`).
    pub fn cleanup(&self, id: &str) -> Result<()> {
        // Not while a start runs: a previous monitor's exit command (a quick
        // `restart`, `wait` then `start`) would unmount the rootfs under it.
        let _lock = self.lock(id)?;
        let Some(row) = self.db.get(id)? else { return Ok(()) };
        let row = self.sync(row)?;
        if matches!(row.state.as_str(), "running" | "paused" | "restarting") {
            return Ok(());
        }
        if row.settings().host_config.auto_remove {
            // `--rm` takes the anonymous volumes along, as Docker's does; the removal
            // unmounts the rootfs and tears the network down itself.
            match self.remove_with_volumes(id, false, true) {
                // The other cleaner (the monitor's exit command, or `run`) was first.
                Err(EngineError::NotFound(_)) => {}
                r => r?,
            }
        } else {
            self.unmount_rootfs(id);
            self.network_down(id);
        }
        Ok(())
    }

    /// `docker rm`: removes a stopped container (or, with `force`, kills it
    /// first) with its snapshot, files, runtime state and record.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        self.remove_with_volumes(name, force, false)
    }

    /// `docker rm [-v]`: [`Engine::remove`], and with `volumes` the container's anonymous
    /// volumes that no other container uses.
    pub fn remove_with_volumes(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        let row = match self.get(name) {
            Ok(r) => r,
            Err(EngineError::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        if matches!(row.state.as_str(), "running" | "paused" | "restarting") {
            if !force {
                return Err(EngineError::State(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    row.name
                )));
            }
            let _ = proto::notify_stopping(&self.socket(&row.id));
            if row.state != "restarting" {
                self.signal(&row, "SIGKILL")?;
            }
            self.wait_exit(&row.id, Some(Duration::from_secs(30)))?;
        }
        self.remove_parts(&row)?;
        self.db.delete(&row.id, &event("destroy", &row, &[]))?;
        if volumes {
            self.remove_anonymous_volumes(&row.settings().host_config)?;
        }
        Ok(())
    }

    /// Everything of a container but its record; what is already gone is fine.
    fn remove_parts(&self, row: &Row) -> Result<()> {
        let id = &row.id;
        let runtime = self.runtime_root();
        // A monitor left by a killed `run`/`start` before the container started: let it
        // finish creating; told of the stop (no restart policy brings the init back), and
        // once the delete has killed the init, let it write its last status before the
        // directory it writes in is removed. (Not its exit: its exit command waits for the
        // container's lock, which `cleanup` holds when it removes a `--rm` container.)
        let left = self.wait_for_monitor(id, |st| st.state == "creating");
        let waiting = left
            .as_ref()
            .is_some_and(|st| matches!(st.state.as_str(), "creating" | "created"));
        // Only a monitor that created its container serves its socket (one still creating
        // after the wait would leave the greeting unanswered).
        if left.is_some_and(|st| st.state == "created") {
            let _ = proto::notify_stopping(&self.socket(id));
        }
        let _ = berth_runtime::container::delete::delete(&runtime, id, true);
        let host = HostCgroups::read();
        if let Some(host) = &host {
            host.remove_orphan(id);
        }
        if waiting {
            self.wait_for_monitor(id, |st| st.state != "exited");
        }
        if let Some(host) = &host {
            host.remove_parent();
        }
        self.unmount_rootfs(id);
        self.network_down(id);
        match self.images.snapshotter().remove(&snapshot_key(id)) {
            Ok(()) | Err(SnapshotError::NotFound { .. }) => {}
            Err(e) => return Err(berth_image::images::ImageError::from(e).into()),
        }
        self.images.db().remove_refs(&format!("container:{id}"))?;
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            // Already gone, or going (another process removing it too).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            r => r.map_err(io_err("removing", &dir))?,
        }
        let _ = std::fs::remove_file(self.socket(id));
        Ok(())
    }

    pub fn pause(&self, name: &str) -> Result<()> {
        self.set_paused(name, true)
    }

    pub fn unpause(&self, name: &str) -> Result<()> {
        self.set_paused(name, false)
    }

    fn set_paused(&self, name: &str, pause: bool) -> Result<()> {
        let row = self.get(name)?;
        let (from, to, action) = if pause {
            ("running", "paused", "pause")
        } else {
            ("paused", "running", "unpause")
        };
        if row.state != from {
            return Err(EngineError::State(if pause {
                format!("Container {} is not running", row.id)
            } else {
                format!("Container {} is not paused", row.id)
            }));
        }
        let runtime = self.runtime_root();
        let r = if pause {
            berth_runtime::container::pause::pause(&runtime, &row.id)
        } else {
            berth_runtime::container::pause::resume(&runtime, &row.id)
        };
        r.map_err(|source| EngineError::Runtime {
            id: row.id.clone(),
            op: action,
            source: Box::new(source),
        })?;
        let mut new = row.run_state();
        new.state = to.into();
        self.db
            .set_state(&row.id, &row.run_state(), &new, Some(&event(action, &row, &[])))?;
        Ok(())
    }

    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        let row = self.get(name)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if !ids::valid_name(new_name) {
            return Err(EngineError::InvalidName(new_name.into()));
        }
        match self.db.rename(
            &row.id,
            new_name,
            &event("rename", &row, &[("oldName", json!(format!("/{}", row.name)))]),
        ) {
            Err(e) if is_name_conflict(&e) => Err(EngineError::NameInUse {
                name: new_name.into(),
                id: self.db.lookup(new_name)?.pop().unwrap_or_default(),
            }),
            r => Ok(r?),
        }
    }

    /// The OCI process to exec in a running container, from its own process
    /// settings and the exec flags.
    pub fn exec_process(&self, row: &Row, opts: &ExecOptions) -> Result<berth_runtime::oci_spec::runtime::Process> {
        if !row.is_running() {
            return Err(EngineError::State(format!("Container {} is not running", row.id)));
        }
        if row.state == "paused" {
            return Err(EngineError::State(format!(
                "Container {} is paused, unpause the container before exec",
                row.id
            )));
        }
        let runtime = self.runtime_root();
        let mut p =
            berth_runtime::container::exec::base_process(&runtime, &row.id).map_err(|source| EngineError::Runtime {
                id: row.id.clone(),
                op: "reading its process",
                source: Box::new(source),
            })?;
        p.set_args(Some(opts.cmd.clone()));
        p.set_terminal(Some(opts.tty));
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &opts.env {
            let key = kv.split('=').next().unwrap_or_default();
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
        if let Some(w) = &opts.workdir {
            p.set_cwd(PathBuf::from(w));
        }
        if let Some(u) = &opts.user {
            let rootfs = self.rootfs(&row.id);
            let passwd = user::read_in_root(&rootfs, "/etc/passwd");
            let group = user::read_in_root(&rootfs, "/etc/group");
            let u = user::resolve(u, &passwd, &group, &[])?;
            let mut pu = p.user().clone();
            pu.set_uid(u.uid);
            pu.set_gid(u.gid);
            pu.set_additional_gids(Some(u.additional_gids));
            p.set_user(pu);
        }
        if opts.privileged {
            let caps: std::collections::HashSet<berth_runtime::oci_spec::runtime::Capability> =
                spec::available_caps().iter().filter_map(|c| c.parse().ok()).collect();
            let mut c = p.capabilities().clone().unwrap_or_default();
            c.set_bounding(Some(caps.clone()));
            c.set_effective(Some(caps.clone()));
            c.set_permitted(Some(caps));
            p.set_capabilities(Some(c));
        }
        Ok(p)
    }

    pub(crate) fn runtime_error<'a>(
        id: &'a str,
        op: &'static str,
    ) -> impl FnOnce(berth_runtime::Error) -> EngineError + 'a {
        move |source| EngineError::Runtime {
            id: id.to_owned(),
            op,
            source: Box::new(source),
        }
    }

    /// Runs `process` in the running container `id`; returns the started
    /// process (the caller waits for it) and, for a terminal, its pty master.
    pub fn exec(
        &self,
        id: &str,
        process: &berth_runtime::oci_spec::runtime::Process,
        detach: bool,
    ) -> Result<berth_runtime::container::exec::Execed> {
        let runtime = self.runtime_root();
        let opts = berth_runtime::container::exec::ExecOptions {
            detach,
            ..Default::default()
        };
        berth_runtime::container::exec::exec(&runtime, id, process, &opts).map_err(Self::runtime_error(id, "exec"))
    }

    /// Processes of a running container (host pids).
    pub fn pids(&self, row: &Row) -> Result<Vec<i32>> {
        if !row.is_running() {
            return Err(EngineError::State(format!("Container {} is not running", row.id)));
        }
        berth_runtime::container::ps::pids(&self.runtime_root(), &row.id)
            .map_err(Self::runtime_error(&row.id, "listing its processes"))
    }

    /// Resource statistics of a running container.
    pub fn stats(&self, row: &Row) -> Result<berth_cgroups::Stats> {
        berth_runtime::container::events::stats(&self.runtime_root(), &row.id)
            .map_err(Self::runtime_error(&row.id, "reading stats"))
    }

    /// Connects to the monitor of a running container.
    pub fn attach(&self, row: &Row, want: u8) -> Result<Client> {
        if !row.is_running() {
            return Err(EngineError::State(
                "You cannot attach to a stopped container, start it first".into(),
            ));
        }
        Client::connect(&self.socket(&row.id), want).map_err(io_err("attaching to", self.socket(&row.id)))
    }
}

/// The host's resolv.conf for a container: nameservers on loopback are of
/// no use in the container's network namespace; `--dns` and
/// `--dns-search` replace the host's. With an `embedded` server (user
/// networks) no nameserver is listed here: as Docker's, that server forwards
/// to `--dns` (or the host's resolvers) itself.
fn resolv_conf(host: &HostConfig, embedded: bool) -> String {
    let base = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = String::new();
    let mut servers = 0;
    for line in base.lines() {
        let t = line.trim();
        if let Some(ns) = t.strip_prefix("nameserver") {
            let ns = ns.trim();
            if embedded || !host.dns.is_empty() || ns.starts_with("127.") || ns == "::1" {
                continue;
            }
            servers += 1;
        } else if (t.starts_with("search") || t.starts_with("domain")) && !host.dns_search.is_empty() {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    for d in host.dns.iter().filter(|_| !embedded) {
        out.push_str(&format!("nameserver {d}\n"));
        servers += 1;
    }
    if !host.dns_search.is_empty() {
        out.push_str(&format!("search {}\n", host.dns_search.join(" ")));
    }
    let _ = servers;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_to_docker_codes() {
        assert_eq!(start_code("exec: \"nope\": executable file not found in $PATH"), 127);
        assert_eq!(start_code("exec: \"/x\": No such file or directory (os error 2)"), 127);
        assert_eq!(start_code("exec: \"/etc/x\": permission denied"), 126);
        assert_eq!(start_code("exec /etc: permission denied"), 126);
        assert_eq!(start_code("mounting /proc: EPERM"), 125);
    }

    #[test]
    fn dns_flags_replace_the_hosts_servers() {
        let h = HostConfig {
            dns: vec!["10.0.0.1".into()],
            dns_search: vec!["example.test".into()],
            ..Default::default()
        };
        let r = resolv_conf(&h, false);
        assert!(r.contains("nameserver 10.0.0.1\n") && r.contains("search example.test\n"));
        assert_eq!(r.matches("nameserver").count(), 1);
        // Behind the embedded server: no nameserver of its own, the search list stays.
        let r = resolv_conf(&h, true);
        assert!(!r.contains("nameserver") && r.contains("search example.test\n"), "{r}");
    }
}
