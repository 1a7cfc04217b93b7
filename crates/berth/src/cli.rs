//! The command line, as clap types: Docker's commands and flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A container engine, daemonless, with docker's commands"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Where images, containers and berth.db live (default /var/lib/berth; as a normal user
    /// $XDG_DATA_HOME/berth).
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Runtime state (default /run/berth; as a normal user $XDG_RUNTIME_DIR/berth).
    #[arg(long, global = true, env = "BERTH_RUNROOT", value_name = "DIR")]
    pub runroot: Option<PathBuf>,
    /// Registries reached over plain HTTP besides localhost and 127.0.0.0/8 (repeatable).
    #[arg(long = "insecure-registry", global = true, value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a new container from an image.
    Run(crate::container_args::RunArgs),
    /// Create a new container.
    Create(crate::container_args::CreateArgs),
    /// Start one or more stopped containers.
    Start(crate::container_args::StartArgs),
    /// Stop one or more running containers.
    Stop(crate::container_args::StopArgs),
    /// Restart one or more containers.
    Restart(crate::container_args::StopArgs),
    /// Kill one or more running containers.
    Kill(crate::container_args::KillArgs),
    /// Remove one or more containers.
    Rm(crate::container_args::RmArgs),
    /// List containers.
    Ps(crate::container_args::PsArgs),
    /// Fetch the logs of a container.
    Logs(crate::container_args::LogsArgs),
    /// Execute a command in a running container.
    Exec(crate::container_args::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(crate::container_args::AttachArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(crate::container_args::NamesArgs),
    /// Pause all processes within one or more containers.
    Pause(crate::container_args::NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(crate::container_args::NamesArgs),
    /// Rename a container.
    Rename(crate::container_args::RenameArgs),
    /// Display the running processes of a container.
    Top(crate::container_args::TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(crate::resource_cmds::StatsArgs),
    /// Update configuration of one or more containers.
    Update(crate::resource_cmds::UpdateArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(crate::fs_cmds::CpArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(crate::fs_cmds::DiffArgs),
    /// Export a container's filesystem as a tar archive.
    Export(crate::fs_cmds::ExportArgs),
    /// Create a new image from a container's changes.
    Commit(crate::fs_cmds::CommitArgs),
    /// List port mappings or a specific mapping for the container.
    Port(crate::network_cmds::PortArgs),
    /// Manage networks.
    #[command(subcommand)]
    Network(crate::network_cmds::NetworkCommand),
    /// Manage containers.
    #[command(subcommand)]
    Container(crate::container_args::ContainerCommand),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// List images.
    Images(ImagesArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Show low-level information on images, as JSON.
    Inspect(InspectArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Give an image another name: SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG].
    Tag(TagArgs),
    /// Remove images.
    Rmi(RmiArgs),
    /// Save images to a tar archive (streamed to stdout by default).
    Save(SaveArgs),
    /// Load images from a tar archive or stdin.
    Load(LoadArgs),
    /// Make an image from a root filesystem tarball.
    Import(ImportArgs),
    /// Log in to a registry.
    Login(LoginArgs),
    /// Log out from a registry.
    Logout(LogoutArgs),
    /// Manage berth.
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(crate::volume_cmds::VolumeCommand),
    /// Get real time events from the engine's journal.
    Events(crate::system_cmds::EventsArgs),
    /// Show the berth version information.
    Version(crate::system_cmds::FormatArgs),
    /// Display system-wide information.
    Info(crate::system_cmds::FormatArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    Pull(PullArgs),
    Push(PushArgs),
    Inspect(InspectArgs),
    History(HistoryArgs),
    Tag(TagArgs),
    /// Remove images.
    Rm(RmiArgs),
    /// Remove unused images.
    Prune(PruneArgs),
    Save(SaveArgs),
    Load(LoadArgs),
    Import(ImportArgs),
    /// Write an image's root filesystem, layers merged, as a tar archive.
    Export(ExportArgs),
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk use.
    Df(DfArgs),
    /// Remove unused data: stopped containers, dangling images (and anonymous volumes).
    Prune(crate::system_cmds::SystemPruneArgs),
    /// Get real time events from the engine's journal.
    Events(crate::system_cmds::EventsArgs),
    /// Display system-wide information.
    Info(crate::system_cmds::FormatArgs),
    /// After the host starts: start the containers whose restart policy asks for it (always;
    /// unless-stopped unless a user stopped them) and remove --rm ones; run by a boot unit.
    Boot,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Pick this platform from a multi-platform image (os[/arch[/variant]]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image name.
    #[arg(short, long)]
    pub quiet: bool,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    #[arg(short, long)]
    pub quiet: bool,
    pub name: String,
}

#[derive(Debug, Args, Clone)]
pub struct ImagesArgs {
    /// Show all images (no intermediate images are hidden by berth anyway).
    #[arg(short, long)]
    pub all: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Filter: dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE,
    /// reference=PATTERN.
    #[arg(short, long = "filter")]
    pub filters: Vec<String>,
    /// A Go template, `table …`, or `json`.
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// REPOSITORY[:TAG]
    pub repository: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only `image` objects exist so far.
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human-readable form (default true).
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long)]
    pub format: Option<String>,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove an image with several names, or untag one in use.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all images no container uses, not only dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Don't ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// docker (docker save's manifest.json), oci (an OCI image layout), or both in one
    /// archive (the default, as Docker 25 writes).
    #[arg(long, default_value = "combined")]
    pub format: String,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from a file instead of stdin.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Dockerfile instructions to apply (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME,
    /// WORKDIR, STOPSIGNAL).
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// The history comment.
    #[arg(short, long)]
    pub message: Option<String>,
    #[arg(long)]
    pub platform: Option<String>,
    /// A tarball, or `-` for stdin.
    pub file: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (default: Docker Hub).
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Show details per image, container and volume.
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(long)]
    pub format: Option<String>,
}
