//! The container commands' flags, as Docker spells them, and their
//! translation into the engine's `Config` and `HostConfig`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_engine::config::{
    BindOptions, DeviceMapping, Driver, EndpointIpam, EndpointSettings, HealthConfig, LogConfig, MountPoint,
    NetworkingConfig, RestartPolicy, TmpfsOptions, Ulimit, VolumeOptions,
};
use berth_engine::spec::parse_size;
use berth_engine::{Config, CreateOptions, HostConfig};
use clap::{ArgAction, Args, Subcommand};

/// `create` and `run` share these.
#[derive(Debug, Args, Clone)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Add additional groups to join.
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set meta data on a container.
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Mount a tmpfs directory (PATH[:OPTIONS]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Bind mount a volume (SRC:DST[:OPTS], NAME:DST[:OPTS] or DST).
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,…).
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security options.
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Add a host device to the container.
    #[arg(long = "device")]
    pub devices: Vec<String>,
    /// Ulimit options (NAME=SOFT[:HARD]).
    #[arg(long = "ulimit")]
    pub ulimits: Vec<String>,
    /// Sysctl options.
    #[arg(long = "sysctl")]
    pub sysctls: Vec<String>,
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Size of /dev/shm.
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Command to run to check health.
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 30s).
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 30s).
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before counting retries towards unstable (ms|s|m|h).
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h).
    #[arg(long = "health-start-interval")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N]).
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Logging driver for the container (json-file or none).
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options (max-size, max-file).
    #[arg(long = "log-opt")]
    pub log_opts: Vec<String>,
    /// Connect a container to a network: bridge (the default), host, none,
    /// container:NAME|ID, or a network made with `network create`.
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33).
    #[arg(long)]
    pub ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33).
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Publish a container's port(s) to the host: [ip:][hostPort:]containerPort[/proto].
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports.
    #[arg(long)]
    pub expose: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// The image.
    pub image: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The resource limits `run`/`create` and `update` share.
#[derive(Debug, Args, Clone)]
pub struct ResourceArgs {
    /// Memory limit.
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 for unlimited swap.
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Proxy received signals to the process.
    #[arg(long = "sig-proxy", default_value = "true", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<i64>,
    /// Signal to send to the container.
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Filter output based on conditions provided.
    #[arg(short = 'f', long = "filter")]
    pub filters: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long = "last", default_value = "-1")]
    pub last: i64,
    /// Show the latest created container (includes all states).
    #[arg(short = 'l', long)]
    pub latest: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" or a number).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp or relative (e.g. 42m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m).
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show extra details (accepted; no extra attributes are logged).
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long = "sig-proxy", default_value = "true", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    pub container: String,
    /// Options for ps (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContainerPruneArgs {
    /// Do not prompt for confirmation (there is no prompt: accepted for compatibility).
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    /// Format output using a custom template.
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes (accepted; sizes are not computed).
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers.
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    Run(RunArgs),
    Create(CreateArgs),
    Start(StartArgs),
    Stop(StopArgs),
    Restart(StopArgs),
    Kill(KillArgs),
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    Logs(LogsArgs),
    Exec(ExecArgs),
    Attach(AttachArgs),
    Wait(NamesArgs),
    Inspect(ContainerInspectArgs),
    Pause(NamesArgs),
    Unpause(NamesArgs),
    Rename(RenameArgs),
    Top(TopArgs),
    Stats(crate::resource_cmds::StatsArgs),
    Update(crate::resource_cmds::UpdateArgs),
    Port(crate::network_cmds::PortArgs),
    /// Remove all stopped containers.
    Prune(ContainerPruneArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(crate::fs_cmds::CpArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(crate::fs_cmds::DiffArgs),
    /// Export a container's filesystem as a tar archive.
    Export(crate::fs_cmds::ExportArgs),
    /// Create a new image from a container's changes.
    Commit(crate::fs_cmds::CommitArgs),
    /// Record a container's exit and apply --rm (run by its monitor).
    #[command(hide = true)]
    Cleanup(CleanupArgs),
    /// Run one health probe and record it (run by the container's monitor).
    #[command(hide = true)]
    Healthcheck(CleanupArgs),
}

fn split_kv(s: &str, what: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("invalid {what} {s:?}: expected KEY=VALUE"),
    }
}

/// `-e KEY` takes KEY's value from our environment (dropped if unset).
fn env_entry(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

/// The variables of `--env-file` files and `-e` flags, in order.
pub fn environment(files: &[PathBuf], flags: &[String]) -> Result<Vec<String>> {
    let mut env = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading env file {}", f.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('=') {
                bail!("env file {} line {}: variable name is empty", f.display(), n + 1);
            }
            env.extend(env_entry(line));
        }
    }
    env.extend(flags.iter().filter_map(|e| env_entry(e)));
    Ok(env)
}

/// A size flag's value (`64m`, `1g`, `-1`), if given.
pub fn size_opt(v: &Option<String>, flag: &str) -> Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            if s == "-1" {
                return Ok(-1);
            }
            parse_size(s).with_context(|| format!("invalid {flag} {s:?}"))
        })
        .transpose()
}

fn size_flag(v: &Option<String>, flag: &str) -> Result<i64> {
    Ok(size_opt(v, flag)?.unwrap_or(0))
}

/// `-v SRC:DST[:OPTS]`, `-v NAME:DST[:OPTS]`, `-v DST`.
pub fn volume_flag(v: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => bail!("invalid volume specification: {v:?}"),
    };
    if !dst.starts_with('/') {
        bail!("invalid volume specification: {v:?}: the container path must be absolute");
    }
    let mut m = MountPoint {
        kind: if src.starts_with('/') { "bind" } else { "volume" }.into(),
        source: src.into(),
        target: dst.into(),
        ..Default::default()
    };
    // No source: an anonymous volume, named by the engine.
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => m.read_only = true,
            "rw" => m.read_only = false,
            "z" | "Z" => {}
            "nocopy" if m.kind == "volume" => {
                m.volume_options.get_or_insert_with(VolumeOptions::default).no_copy = true
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {
                m.bind_options = Some(BindOptions { propagation: o.into() })
            }
            _ => bail!("invalid volume specification: {v:?}: unknown option {o:?}"),
        }
    }
    Ok(m)
}

/// `--mount type=…,source=…,target=…,readonly,…`.
pub fn mount_flag(v: &str) -> Result<MountPoint> {
    let mut m = MountPoint {
        kind: "volume".into(),
        ..Default::default()
    };
    for field in v.split(',') {
        let (k, val) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => m.kind = val.into(),
            "source" | "src" => m.source = val.into(),
            "target" | "destination" | "dst" => m.target = val.into(),
            "readonly" | "ro" => m.read_only = matches!(val, "" | "true" | "1"),
            "bind-propagation" => {
                m.bind_options = Some(BindOptions {
                    propagation: val.into(),
                })
            }
            "tmpfs-size" => {
                m.tmpfs_options.get_or_insert_with(TmpfsOptions::default).size_bytes =
                    parse_size(val).with_context(|| format!("invalid tmpfs-size {val:?}"))?
            }
            "tmpfs-mode" => {
                m.tmpfs_options.get_or_insert_with(TmpfsOptions::default).mode =
                    u32::from_str_radix(val, 8).with_context(|| format!("invalid tmpfs-mode {val:?}"))?
            }
            "volume-nocopy" | "volume-label" | "volume-driver" | "volume-opt" => {
                let o = m.volume_options.get_or_insert_with(VolumeOptions::default);
                match k {
                    "volume-nocopy" => {
                        o.no_copy = match val {
                            "" | "true" | "1" => true,
                            "false" | "0" => false,
                            _ => bail!("invalid value for volume-nocopy: {val:?}"),
                        }
                    }
                    "volume-label" => {
                        let (lk, lv) = val.split_once('=').unwrap_or((val, ""));
                        o.labels.insert(lk.into(), lv.into());
                    }
                    "volume-driver" => o.driver_config.get_or_insert_with(Driver::default).name = val.into(),
                    _ => {
                        let (ok, ov) = split_kv(val, "volume-opt")?;
                        o.driver_config
                            .get_or_insert_with(Driver::default)
                            .options
                            .insert(ok, ov);
                    }
                }
            }
            _ => bail!("invalid field {k:?} in --mount {v:?}"),
        }
    }
    if m.target.is_empty() {
        bail!("invalid --mount {v:?}: target is required");
    }
    // A volume without a source is anonymous: the engine names it.
    if m.kind == "bind" && m.source.is_empty() {
        bail!("invalid --mount {v:?}: source is required");
    }
    if m.kind != "volume" && m.volume_options.is_some() {
        bail!("invalid --mount {v:?}: volume options are for type=volume");
    }
    Ok(m)
}

pub fn restart_flag(s: &str) -> Result<RestartPolicy> {
    let (name, n) = s.split_once(':').unwrap_or((s, ""));
    match name {
        "no" | "always" | "unless-stopped" if n.is_empty() => Ok(RestartPolicy {
            name: name.into(),
            maximum_retry_count: 0,
        }),
        "on-failure" => Ok(RestartPolicy {
            name: name.into(),
            maximum_retry_count: if n.is_empty() {
                0
            } else {
                n.parse()
                    .with_context(|| format!("invalid restart policy {s:?}: bad retry count"))?
            },
        }),
        _ => bail!("invalid restart policy {s:?}: expected no, always, unless-stopped or on-failure[:N]"),
    }
}

impl CreateArgs {
    /// `--health-*` and `--no-healthcheck` as Docker's Healthcheck object.
    fn healthcheck(&self) -> Result<Option<HealthConfig>> {
        let timing = [
            &self.health_interval,
            &self.health_timeout,
            &self.health_start_period,
            &self.health_start_interval,
        ];
        let any = self.health_cmd.is_some() || self.health_retries.is_some() || timing.iter().any(|t| t.is_some());
        if self.no_healthcheck {
            if any {
                bail!("--no-healthcheck conflicts with --health-* options");
            }
            return Ok(Some(HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            }));
        }
        if !any {
            return Ok(None);
        }
        let dur = |v: &Option<String>, flag: &str| -> Result<Option<i64>> {
            v.as_deref()
                .map(|s| {
                    berth_runtime::state::parse_go_duration(s)
                        .map(|d| d.as_nanos() as i64)
                        .with_context(|| {
                            format!("invalid argument {s:?} for \"--{flag}\" flag: expected a duration like 30s")
                        })
                })
                .transpose()
        };
        if self.health_retries.is_some_and(|n| n < 0) {
            bail!("--health-retries cannot be negative");
        }
        Ok(Some(HealthConfig {
            test: self
                .health_cmd
                .as_ref()
                .map(|c| vec!["CMD-SHELL".into(), c.clone()])
                .unwrap_or_default(),
            interval: dur(&self.health_interval, "health-interval")?,
            timeout: dur(&self.health_timeout, "health-timeout")?,
            start_period: dur(&self.health_start_period, "health-start-period")?,
            start_interval: dur(&self.health_start_interval, "health-start-interval")?,
            retries: self.health_retries,
        }))
    }

    /// The engine's create options from the flags.
    pub fn options(&self) -> Result<CreateOptions> {
        let labels = crate::output::key_values(&self.labels);
        let entrypoint = self
            .entrypoint
            .as_ref()
            .map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] });
        let config = Config {
            hostname: self.hostname.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            attach_stdin: self.interactive,
            attach_stdout: true,
            attach_stderr: true,
            tty: self.tty,
            open_stdin: self.interactive,
            stdin_once: self.interactive,
            env: environment(&self.env_file, &self.env)?,
            cmd: (!self.command.is_empty()).then(|| self.command.clone()),
            image: self.image.clone(),
            working_dir: self.workdir.clone().unwrap_or_default(),
            entrypoint,
            labels,
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            healthcheck: self.healthcheck()?,
            ..Default::default()
        };
        let restart = restart_flag(&self.restart)?;
        if self.rm && restart.name != "no" {
            bail!("Conflicting options: --restart and --rm");
        }
        let mut mounts = Vec::new();
        for v in &self.volumes {
            mounts.push(volume_flag(v)?);
        }
        for v in &self.mounts {
            mounts.push(mount_flag(v)?);
        }
        let mut tmpfs = BTreeMap::new();
        for t in &self.tmpfs {
            let (p, o) = t.split_once(':').unwrap_or((t, ""));
            if !p.starts_with('/') {
                bail!("invalid --tmpfs {t:?}: the path must be absolute");
            }
            tmpfs.insert(p.to_string(), o.to_string());
        }
        let mut devices = Vec::new();
        for d in &self.devices {
            let parts: Vec<&str> = d.split(':').collect();
            let (host, cont, perms) = match parts.as_slice() {
                [h] => (*h, *h, "rwm"),
                [h, c] if c.chars().all(|x| "rwm".contains(x)) && !c.starts_with('/') => (*h, *h, *c),
                [h, c] => (*h, *c, "rwm"),
                [h, c, p] => (*h, *c, *p),
                _ => bail!("invalid device {d:?}"),
            };
            devices.push(DeviceMapping {
                path_on_host: host.into(),
                path_in_container: cont.into(),
                cgroup_permissions: perms.into(),
            });
        }
        let mut ulimits = Vec::new();
        for u in &self.ulimits {
            let (name, vals) = split_kv(u, "ulimit")?;
            let (soft, hard) = vals.split_once(':').unwrap_or((&vals, &vals));
            let n = |s: &str| s.parse::<i64>().with_context(|| format!("invalid ulimit {u:?}"));
            ulimits.push(Ulimit {
                name,
                soft: n(soft)?,
                hard: n(hard)?,
            });
        }
        let mut sysctls = BTreeMap::new();
        for s in &self.sysctls {
            let (k, v) = split_kv(s, "sysctl")?;
            sysctls.insert(k, v);
        }
        let mut log_opts = BTreeMap::new();
        for o in &self.log_opts {
            let (k, v) = split_kv(o, "log-opt")?;
            if !["max-size", "max-file", "compress", "labels", "env", "tag"].contains(&k.as_str()) {
                bail!("unknown log opt '{k}' for json-file log driver");
            }
            log_opts.insert(k, v);
        }
        let log_driver = self.log_driver.clone().unwrap_or_else(|| "json-file".into());
        if !["json-file", "none"].contains(&log_driver.as_str()) {
            bail!("logging driver {log_driver:?}: berth has json-file and none");
        }
        let network = self.network.clone().unwrap_or_else(|| "bridge".into());
        let mut port_bindings = BTreeMap::new();
        for p in &self.publish {
            for b in berth_network::ports::parse_publish(p)? {
                port_bindings
                    .entry(b.key())
                    .or_insert_with(Vec::new)
                    .push(berth_engine::config::PortBinding {
                        host_ip: b.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                        host_port: b.host_port.to_string(),
                    });
            }
        }
        let mut networking = NetworkingConfig::default();
        let user_network =
            !["none", "host", "bridge", "default"].contains(&network.as_str()) && !network.starts_with("container:");
        if (!self.network_alias.is_empty() || self.ip.is_some() || self.ip6.is_some()) && !user_network {
            bail!("user specified IP address and network aliases are supported only on user defined networks");
        }
        let own_netns = !(matches!(network.as_str(), "none" | "host") || network.starts_with("container:"));
        if !own_netns && (!port_bindings.is_empty() || self.publish_all) {
            bail!("conflicting options: port publishing and the container type network mode");
        }
        if !matches!(network.as_str(), "none" | "host") && !network.starts_with("container:") {
            networking.endpoints_config.insert(
                if network == "default" {
                    "bridge".into()
                } else {
                    network.clone()
                },
                EndpointSettings {
                    aliases: self.network_alias.clone(),
                    ipam_config: (self.ip.is_some() || self.ip6.is_some()).then(|| EndpointIpam {
                        ipv4_address: self.ip.clone().unwrap_or_default(),
                        ipv6_address: self.ip6.clone().unwrap_or_default(),
                    }),
                    mac_address: self.mac_address.clone().unwrap_or_default(),
                },
            );
        }
        let host = HostConfig {
            auto_remove: self.rm,
            restart_policy: restart,
            log_config: LogConfig {
                kind: log_driver,
                config: log_opts,
            },
            network_mode: if network == "default" { "bridge".into() } else { network },
            port_bindings,
            publish_all_ports: self.publish_all,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            group_add: self.group_add.clone(),
            extra_hosts: self.add_host.clone(),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            privileged: self.privileged,
            readonly_rootfs: self.read_only,
            security_opt: self.security_opt.clone(),
            tmpfs,
            shm_size: size_flag(&self.shm_size, "--shm-size")?,
            sysctls,
            init: self.init.then_some(true),
            memory: size_flag(&self.resources.memory, "--memory")?,
            memory_swap: size_flag(&self.resources.memory_swap, "--memory-swap")?,
            nano_cpus: self.resources.cpus.map_or(0, |c| (c * 1e9) as i64),
            cpu_shares: self.resources.cpu_shares.unwrap_or(0),
            cpuset_cpus: self.resources.cpuset_cpus.clone().unwrap_or_default(),
            pids_limit: self.resources.pids_limit,
            devices,
            ulimits,
            mounts,
            binds: self.volumes.clone(),
        };
        let mut config = config;
        // Published and --expose'd ports are exposed ones, as in Docker.
        let mut exposed: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for e in &self.expose {
            for b in berth_network::ports::publish_all([e.as_str()])? {
                exposed.insert(b.key(), serde_json::json!({}));
            }
        }
        for p in host.port_bindings.keys() {
            exposed.insert(p.clone(), serde_json::json!({}));
        }
        if !exposed.is_empty() {
            config.exposed_ports = Some(exposed);
        }
        Ok(CreateOptions {
            name: self.name.clone(),
            config,
            host,
            networking,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags_parse() {
        let m = volume_flag("/src:/dst:ro,rshared").unwrap();
        assert_eq!(
            (m.kind.as_str(), m.source.as_str(), m.target.as_str(), m.read_only),
            ("bind", "/src", "/dst", true)
        );
        assert_eq!(m.bind_options.unwrap().propagation, "rshared");
        let m = volume_flag("data:/var/lib/data").unwrap();
        assert_eq!((m.kind.as_str(), m.source.as_str()), ("volume", "data"));
        let m = volume_flag("/anon").unwrap();
        assert!(m.kind == "volume" && m.source.is_empty());
        let m = volume_flag("data:/d:nocopy").unwrap();
        assert!(m.volume_options.unwrap().no_copy);
        assert!(volume_flag("rel").is_err());
        assert!(volume_flag("/a:/b:bogus").is_err());
    }

    #[test]
    fn mount_flags_parse() {
        let m = mount_flag("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777").unwrap();
        let t = m.tmpfs_options.unwrap();
        assert_eq!((t.size_bytes, t.mode), (1 << 20, 0o1777));
        let m = mount_flag("type=bind,src=/a,dst=/b,readonly").unwrap();
        assert!(m.read_only && m.source == "/a" && m.target == "/b");
        assert!(mount_flag("type=bind,target=/b").is_err());
        assert!(mount_flag("type=bind,source=/a,colour=red,target=/b").is_err());
        let m = mount_flag("type=volume,src=v,dst=/v,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs").unwrap();
        let o = m.volume_options.unwrap();
        assert!(o.no_copy && o.labels["a"] == "b");
        assert_eq!(o.driver_config.unwrap().options["type"], "tmpfs");
        assert!(mount_flag("type=volume,target=/v").unwrap().source.is_empty());
        assert!(mount_flag("type=tmpfs,target=/t,volume-nocopy").is_err());
    }

    #[test]
    fn restart_policies_parse() {
        assert_eq!(restart_flag("on-failure:3").unwrap().maximum_retry_count, 3);
        assert_eq!(restart_flag("always").unwrap().name, "always");
        assert!(restart_flag("sometimes").is_err());
        assert!(restart_flag("always:3").is_err());
    }

    #[test]
    fn env_files_and_flags_merge_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env");
        std::fs::write(&f, "# comment\nA=1\n\nB=two words\n").unwrap();
        let env = environment(&[f], &["C=3".into(), "BERTH_TEST_SURELY_UNSET_VAR".into()]).unwrap();
        assert_eq!(env, ["A=1", "B=two words", "C=3"]);
    }
}
