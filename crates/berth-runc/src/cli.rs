//! The command-line surface, flag for flag runc's.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "berth-runc",
    version,
    about = "runc-compatible OCI runtime",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Root directory for storage of container state (default: /run/berth-runc,
    /// or $XDG_RUNTIME_DIR/berth-runc when not run as root and it is set)
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Log file path
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Enable debug logging
    #[arg(long)]
    pub debug: bool,
    /// Use the systemd cgroup driver (needs systemd)
    #[arg(long = "systemd-cgroup")]
    pub systemd_cgroup: bool,
    /// Path to criu (accepted for compatibility)
    #[arg(long, hide = true)]
    pub criu: Option<String>,
    /// Rootless mode: true, false or auto (accepted for compatibility)
    #[arg(long, hide = true)]
    pub rootless: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container
    Create(CreateArgs),
    /// Start a created container
    Start { id: String },
    /// Create and run a container
    Run(RunArgs),
    /// Output the state of a container
    State { id: String },
    /// Send a signal to a container's init process
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers
    #[command(alias = "ls")]
    List {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show the processes of a container
    Ps {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        id: String,
        /// Arguments for ps (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Execute a new process inside a container
    Exec(ExecArgs),
    /// Pause all processes of a container
    Pause { id: String },
    /// Resume a paused container
    Resume { id: String },
    /// Show resource usage statistics and OOM events
    Events {
        #[arg(long, default_value = "5s")]
        interval: String,
        #[arg(long)]
        stats: bool,
        id: String,
    },
    /// Update a container's resource limits
    Update(UpdateArgs),
    /// Create a new example config.json
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        rootless: bool,
    },
    /// Show what this runtime supports (OCI features JSON)
    Features,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(short, long = "cap")]
    pub cap: Vec<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Path to a JSON file of resources, or - for stdin
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    pub id: String,
}

impl Command {
    /// runc prefixes some failures with the command that failed.
    pub fn error_prefix(&self) -> &'static str {
        match self {
            Command::Create(_) => "berth-runc create failed: ",
            Command::Run(_) => "berth-runc run failed: ",
            Command::Exec(_) => "exec failed: ",
            _ => "",
        }
    }

    /// runc exits 1 on errors, except exec which exits 255.
    pub fn error_exit_code(&self) -> i32 {
        match self {
            Command::Exec(_) => 255,
            _ => 1,
        }
    }
}

impl Global {
    /// The state root: --root, else runc's defaults for root and rootless.
    pub fn root(&self) -> PathBuf {
        if let Some(r) = &self.root {
            return r.clone();
        }
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from(berth_runtime::DEFAULT_ROOT);
        }
        // Without XDG_RUNTIME_DIR, runc's default too (not a guessable
        // directory under /tmp that another user could create first).
        match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d).join("berth-runc"),
            None => PathBuf::from(berth_runtime::DEFAULT_ROOT),
        }
    }
}
