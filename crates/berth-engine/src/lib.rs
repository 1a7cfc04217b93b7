//! berth-engine: the host's containers. Records live in `berth.db` (WAL,
//! one transaction per change, shared by every CLI process and, later, the
//! API server); each running container has a `berth-monitor` as its parent,
//! which reports exits in `status.json` and runs the engine's exit command
//! so the record catches up at once. Every command first reconciles what
//! it looks at with reality ([`Engine::sync`]): the monitor's report, the
//! monitor's liveness, the runtime's state.
//!
//! ```text
//! <root>/containers/<id>/   config.json (OCI bundle), rootfs/ (overlay, mounted
//!                           while it runs), hostname, hosts, resolv.conf,
//!                           <id>-json.log, monitor.json, status.json
//! <root>/volumes/<name>/_data     a volume's data (its mountpoint)
//! <runroot>/runtime/        berth-runtime's state
//! <runroot>/sockets/<id12>.sock   the monitor's attach socket
//! ```

#![deny(unsafe_code)]

pub mod boot;
pub mod config;
pub mod db;
pub mod events;
pub mod fs;
pub mod health;
pub mod ids;
pub mod inspect;
pub mod logs;
pub mod network;
pub mod spec;
pub mod stats;
pub mod system;
pub mod update;
pub mod user;
pub mod volumes;

mod container;

use std::io;
use std::path::{Path, PathBuf};

use berth_image::images::{ImageError, Images};

pub use config::{Config, HostConfig};
pub use container::{start_code, CreateOptions, ExecOptions, Settings};
pub use db::Row;

/// Everything an engine operation can fail with; each names its object.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("Multiple IDs found with provided prefix: {0}")]
    Ambiguous(String),
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, id: String },
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("container {id}: {source}")]
    Spec {
        id: String,
        #[source]
        source: spec::SpecError,
    },
    #[error(transparent)]
    User(#[from] user::UserError),
    #[error(transparent)]
    Volume(#[from] volumes::VolumeError),
    #[error("container {id}: {op}: {source}")]
    Runtime {
        id: String,
        op: &'static str,
        #[source]
        source: Box<berth_runtime::Error>,
    },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The operation does not fit the container's state; Docker's wording.
    #[error("{0}")]
    State(String),
    /// The container's process could not be started; `code` is Docker's
    /// exit status for it (126 not executable, 127 not found, 125 other).
    #[error("failed to start container {id}: {message}")]
    Start { id: String, message: String, code: i32 },
    #[error("berth-monitor {path}: {message}", path = path.display())]
    Monitor { path: PathBuf, message: String },
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("{op} {object}: {message}")]
    Network {
        op: &'static str,
        object: String,
        message: String,
    },
    /// A path missing in a container's filesystem (`cp`); Docker's wording.
    #[error("Could not find the file {path} in container {container}")]
    FileNotFound { path: String, container: String },
    /// An archive copied into a container was refused or failed.
    #[error("copying into {target}")]
    Copy {
        target: String,
        #[source]
        source: Box<berth_image::layer::LayerError>,
    },
}

pub type Result<T> = std::result::Result<T, EngineError>;

pub(crate) fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> EngineError {
    let path = path.into();
    move |source| EngineError::Io { op, path, source }
}

/// How the engine starts monitors.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// The berth-monitor binary.
    pub monitor: PathBuf,
    /// The berth-dns binary (the embedded DNS server of user networks).
    pub dns: PathBuf,
    /// The command a monitor runs once its container exited for good; the
    /// container id is appended (the CLI passes `berth … container cleanup`).
    pub exit_command: Vec<String>,
    /// The command a monitor runs for each health probe; the container id
    /// is appended (the CLI passes `berth … container healthcheck`).
    pub health_command: Vec<String>,
}

/// The containers (and images) under one root.
pub struct Engine {
    root: PathBuf,
    runroot: PathBuf,
    images: Images,
    db: db::Db,
    opts: EngineOptions,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("root", &self.root)
            .field("runroot", &self.runroot)
            .finish()
    }
}

impl Engine {
    /// Opens the store under `root` (persistent) and `runroot` (state that
    /// lives until reboot), creating what is missing.
    pub fn open(root: &Path, runroot: &Path, opts: EngineOptions) -> Result<Engine> {
        let images = Images::open(root)?;
        let db = db::Db::open(&root.join("berth.db"))?;
        for d in [
            root.join("containers"),
            runroot.join("runtime"),
            runroot.join("sockets"),
        ] {
            std::fs::create_dir_all(&d).map_err(io_err("creating directory", &d))?;
        }
        Ok(Engine {
            root: root.to_owned(),
            runroot: runroot.to_owned(),
            images,
            db,
            opts,
        })
    }

    pub fn images(&self) -> &Images {
        &self.images
    }

    pub fn images_mut(&mut self) -> &mut Images {
        &mut self.images
    }

    pub fn db(&self) -> &db::Db {
        &self.db
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The container directory of `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// The json-file log of `id`.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(format!("{id}-json.log"))
    }

    pub(crate) fn rootfs(&self, id: &str) -> PathBuf {
        self.dir(id).join("rootfs")
    }

    pub(crate) fn socket(&self, id: &str) -> PathBuf {
        self.runroot.join("sockets").join(format!("{}.sock", &id[..12]))
    }

    /// berth-runtime's state root for the containers.
    pub fn runtime_root(&self) -> berth_runtime::Root {
        berth_runtime::Root::new(self.runroot.join("runtime"))
    }

    /// The full id of the container `name` (a name, an id, or a unique id prefix).
    pub fn lookup(&self, name: &str) -> Result<String> {
        let mut ids = self.db.lookup(name)?;
        match ids.len() {
            0 => Err(EngineError::NotFound(name.to_owned())),
            1 => Ok(ids.remove(0)),
            _ => Err(EngineError::Ambiguous(name.to_owned())),
        }
    }

    /// The container's record, reconciled with reality.
    pub fn get(&self, name: &str) -> Result<Row> {
        let id = self.lookup(name)?;
        let row = self
            .db
            .get(&id)?
            .ok_or_else(|| EngineError::NotFound(name.to_owned()))?;
        self.sync(row)
    }

    /// Every container, newest first, reconciled.
    pub fn list(&self) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        for row in self.db.list()? {
            out.push(self.sync(row)?);
        }
        Ok(out)
    }
}
