//! Named volumes, Docker's `local` driver: a record in `berth.db` (`volumes`) and a
//! directory `<root>/volumes/<name>/_data`, the volume's mountpoint.
//!
//! - **Records**: every change is one `BEGIN IMMEDIATE` transaction with its event
//!   (`volume create`/`destroy`/`mount`/`unmount`). `volume_refs` names the containers that
//!   use a volume (rows go with the container, `ON DELETE CASCADE`): a volume with a
//!   reference cannot be removed, checked in the transaction that deletes it.
//! - **Created on first use**: `create` of a container records the volumes its mounts name
//!   (with the mount's labels and driver options) and its references, in one transaction.
//!   A volume mount without a source, and each image `VOLUME` no mount covers, get an
//!   anonymous volume: 64 hex digits, labelled `com.docker.volume.anonymous`, removed with
//!   the container by `rm -v` and `--rm`, and by `volume prune` without `-a`.
//! - **Mounted while a container runs**: `start` marks the container's references mounted;
//!   a volume with driver options (`type`, `device`, `o`: a tmpfs, a bind of a host
//!   directory, any filesystem mount(2) takes) is mounted on its mountpoint by the first
//!   container that starts with it and unmounted when the last one stops. An empty volume
//!   gets a copy of what the image has at the mount's target (Docker's copy-up; `nocopy`
//!   turns it off), read through a descriptor resolved inside the container's root.
//!   Mounting, unmounting and copy-up of a volume are serialized by a `flock` on its
//!   directory.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use berth_runtime::rootfs::options::{self, MountOptions};
use nix::fcntl::{Flock, FlockArg};
use nix::mount::{MntFlags, MsFlags};
use rusqlite::{params, OptionalExtension};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde_json::{json, Value};

use crate::config::{HostConfig, MountPoint, VolumeOptions};
use crate::container::{is_mountpoint, unmount_all};
use crate::db::{insert_event, Db, DbError, NewEvent, Row};
use crate::spec::clean;
use crate::{ids, Engine};

/// The label that marks an anonymous volume (Docker 23+).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The one driver.
pub const LOCAL: &str = "local";

/// Why a volume operation failed; each names the volume, in Docker's words where Docker
/// has them.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("remove {name}: volume is in use - [{}]", refs.join(", "))]
    InUse { name: String, refs: Vec<String> },
    #[error("create {0}: volume name is too short, names should be at least two alphanumeric characters")]
    NameTooShort(String),
    #[error(
        "create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    InvalidName(String),
    #[error("create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found")]
    NoDriver { name: String, driver: String },
    #[error("create {name}: {reason}")]
    InvalidOption { name: String, reason: String },
    #[error("volume {name}: {op} {}: {source}", path.display())]
    Io {
        name: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("volume {name}: failed to mount local volume: mount {device}:{} (type {kind}): {source}", path.display())]
    Mount {
        name: String,
        device: String,
        kind: String,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("invalid filter {0:?}")]
    Filter(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

type Result<T> = std::result::Result<T, VolumeError>;

fn io_err(name: &str, op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> VolumeError {
    let (name, path) = (name.to_owned(), path.to_owned());
    move |source| VolumeError::Io { name, op, path, source }
}

/// A volume's record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    /// RFC 3339, seconds.
    pub created: String,
    pub labels: BTreeMap<String, String>,
    /// The local driver's options: `type`, `device`, `o`.
    pub options: BTreeMap<String, String>,
}

impl Volume {
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// Whether the volume is a filesystem mounted on its mountpoint while used.
    pub fn is_mounted_kind(&self) -> bool {
        self.options.contains_key("type") || self.options.contains_key("device")
    }
}

/// A volume and the containers that use it.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeUse {
    pub volume: Volume,
    /// Full container ids.
    pub containers: Vec<String>,
}

/// `volume create`'s request.
#[derive(Debug, Clone, Default)]
pub struct VolumeCreate {
    /// None: a random 64-hex-digit name.
    pub name: Option<String>,
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_name(name: &str) -> Result<()> {
    if name.len() == 1 {
        return Err(VolumeError::NameTooShort(name.into()));
    }
    if !ids::valid_name(name) {
        return Err(VolumeError::InvalidName(name.into()));
    }
    Ok(())
}

/// The local driver's options: `type` and `device` together (with `o`, mount(2)'s options),
/// or none.
pub fn check_options(name: &str, driver: &str, options: &BTreeMap<String, String>) -> Result<()> {
    if !driver.is_empty() && driver != LOCAL {
        return Err(VolumeError::NoDriver {
            name: name.into(),
            driver: driver.into(),
        });
    }
    let invalid = |reason: String| VolumeError::InvalidOption {
        name: name.into(),
        reason,
    };
    for k in options.keys() {
        match k.as_str() {
            "type" | "device" | "o" => {}
            "size" => return Err(invalid("quota size requested but no quota support".into())),
            _ => return Err(invalid(format!("invalid option: {k:?}"))),
        }
    }
    if options.is_empty() {
        return Ok(());
    }
    for required in ["device", "type"] {
        if options.get(required).is_none_or(|v| v.is_empty()) {
            return Err(invalid(format!("missing required option: {required:?}")));
        }
    }
    mount_options(options.get("o").map_or("", String::as_str)).map_err(invalid)?;
    Ok(())
}

/// A volume's `o` option split as the runtime splits a spec's mount options (flags, data,
/// propagation); what only a container's own mounts can take is refused, naming the word.
fn mount_options(o: &str) -> std::result::Result<MountOptions, String> {
    let words: Vec<String> = o.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    for word in &words {
        let alone = options::parse(std::slice::from_ref(word));
        let container_only = alone.tmpcopyup || alone.idmap.is_some() || alone.rec_set | alone.rec_clr != 0;
        if container_only || matches!(word.as_str(), "remount" | "move") {
            return Err(format!("mount option {word:?} is not allowed for a volume"));
        }
    }
    Ok(options::parse(&words))
}

fn labels_json(m: &BTreeMap<String, String>) -> String {
    serde_json::to_string(m).expect("serializable")
}

fn volume_row(r: &rusqlite::Row) -> rusqlite::Result<Volume> {
    let map = |s: String| serde_json::from_str(&s).unwrap_or_default();
    Ok(Volume {
        name: r.get(0)?,
        driver: r.get(1)?,
        created: r.get(2)?,
        labels: map(r.get(3)?),
        options: map(r.get(4)?),
    })
}

fn volume_event(action: &str, v: &Volume, extra: &[(&str, String)]) -> NewEvent {
    let mut attributes = serde_json::Map::new();
    attributes.insert("driver".into(), json!(v.driver));
    for (k, val) in extra {
        attributes.insert((*k).into(), json!(val));
    }
    NewEvent {
        kind: "volume",
        action: action.into(),
        actor: v.name.clone(),
        attributes,
    }
}

/// Records `v` unless a volume of its name exists (with its `create` event); whether it was new.
fn insert_volume(conn: &rusqlite::Connection, v: &Volume) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO volumes (name, driver, created, labels, options) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            v.name,
            v.driver,
            v.created,
            labels_json(&v.labels),
            labels_json(&v.options)
        ],
    )?;
    if n == 1 {
        insert_event(conn, &volume_event("create", v, &[]))?;
    }
    Ok(n == 1)
}

const VOLUME_COLUMNS: &str = "name, driver, created, labels, options";

/// The volume queries.
impl Db {
    pub fn volume(&self, name: &str) -> std::result::Result<Option<Volume>, DbError> {
        self.conn()
            .query_row(
                &format!("SELECT {VOLUME_COLUMNS} FROM volumes WHERE name = ?1"),
                [name],
                volume_row,
            )
            .optional()
            .map_err(self.err(format!("read volume {name}")))
    }

    /// Every volume with the containers that use it, by name.
    pub fn volumes(&self) -> std::result::Result<Vec<VolumeUse>, DbError> {
        let err = || self.err("list volumes");
        let mut stmt = self
            .conn()
            .prepare(&format!("SELECT {VOLUME_COLUMNS} FROM volumes ORDER BY name"))
            .map_err(err())?;
        let vols: Vec<Volume> = stmt
            .query_map([], volume_row)
            .map_err(err())?
            .collect::<rusqlite::Result<_>>()
            .map_err(err())?;
        let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut stmt = self
            .conn()
            .prepare("SELECT volume, container FROM volume_refs ORDER BY container")
            .map_err(err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(err())?;
        for row in rows {
            let (v, c) = row.map_err(err())?;
            refs.entry(v).or_default().push(c);
        }
        Ok(vols
            .into_iter()
            .map(|v| VolumeUse {
                containers: refs.remove(&v.name).unwrap_or_default(),
                volume: v,
            })
            .collect())
    }

    /// Records a volume; false if the name is taken (the record stays as it was).
    pub fn insert_volume(&self, v: &Volume) -> std::result::Result<bool, DbError> {
        let tx = self.tx().map_err(self.err("begin volume create"))?;
        let new = insert_volume(&tx, v).map_err(self.err(format!("create volume {}", v.name)))?;
        tx.commit().map_err(self.err(format!("commit volume {}", v.name)))?;
        Ok(new)
    }

    /// Records the volumes container `id` uses (those missing are created) and its
    /// references to them, in one transaction; the volumes it created.
    pub fn attach_volumes(&self, id: &str, vols: &[Volume]) -> std::result::Result<Vec<String>, DbError> {
        let err = || self.err(format!("record volumes of container {id}"));
        let tx = self.tx().map_err(err())?;
        let mut created = Vec::new();
        for v in vols {
            if insert_volume(&tx, v).map_err(err())? {
                created.push(v.name.clone());
            }
            tx.execute(
                "INSERT OR IGNORE INTO volume_refs (volume, container) VALUES (?1, ?2)",
                params![v.name, id],
            )
            .map_err(err())?;
        }
        tx.commit().map_err(err())?;
        Ok(created)
    }

    /// Deletes the volume unless a container uses it: `Ok(Err(ids))` then; `Ok(Ok(None))`
    /// when there is no such volume.
    #[allow(clippy::type_complexity)]
    pub fn delete_volume(
        &self,
        name: &str,
    ) -> std::result::Result<std::result::Result<Option<Volume>, Vec<String>>, DbError> {
        let err = || self.err(format!("remove volume {name}"));
        let tx = self.tx().map_err(err())?;
        let Some(v) = tx
            .query_row(
                &format!("SELECT {VOLUME_COLUMNS} FROM volumes WHERE name = ?1"),
                [name],
                volume_row,
            )
            .optional()
            .map_err(err())?
        else {
            return Ok(Ok(None));
        };
        let refs: Vec<String> = {
            let mut stmt = tx
                .prepare("SELECT container FROM volume_refs WHERE volume = ?1 ORDER BY container")
                .map_err(err())?;
            let rows = stmt.query_map([name], |r| r.get(0)).map_err(err())?;
            rows.collect::<rusqlite::Result<_>>().map_err(err())?
        };
        if !refs.is_empty() {
            return Ok(Err(refs));
        }
        tx.execute("DELETE FROM volumes WHERE name = ?1", [name])
            .map_err(err())?;
        insert_event(&tx, &volume_event("destroy", &v, &[])).map_err(err())?;
        tx.commit().map_err(err())?;
        Ok(Ok(Some(v)))
    }
}

/// The flag `-v`'s `nocopy` and `--mount`'s `volume-nocopy` set.
fn no_copy(m: &MountPoint) -> bool {
    m.volume_options.as_ref().is_some_and(|o| o.no_copy)
}

/// Gives every volume mount without a source an anonymous volume, and adds one for each
/// of the config's volumes (the image's `VOLUME`s and the API's `Config.Volumes`) that no
/// mount covers, as Docker's create does. Checks the named volumes' names and options.
pub fn plan_mounts(config_volumes: &[String], host: &mut HostConfig) -> std::io::Result<Result<()>> {
    let anonymous = || VolumeOptions {
        labels: [(ANONYMOUS_LABEL.to_string(), String::new())].into(),
        ..Default::default()
    };
    for m in host.mounts.iter_mut().filter(|m| m.kind == "volume") {
        if m.source.is_empty() {
            m.source = ids::random_id()?;
            let opts = m.volume_options.get_or_insert_with(VolumeOptions::default);
            opts.labels.insert(ANONYMOUS_LABEL.into(), String::new());
        } else if let Err(e) = check_name(&m.source) {
            return Ok(Err(e));
        }
        if let Some(d) = m.volume_options.as_ref().and_then(|o| o.driver_config.as_ref()) {
            if let Err(e) = check_options(&m.source, &d.name, &d.options) {
                return Ok(Err(e));
            }
        }
    }
    let covered: Vec<String> = host
        .mounts
        .iter()
        .map(|m| clean(&m.target))
        .chain(host.tmpfs.keys().map(|t| clean(t)))
        .collect();
    for target in config_volumes {
        if covered.contains(&clean(target)) {
            continue;
        }
        host.mounts.push(MountPoint {
            kind: "volume".into(),
            source: ids::random_id()?,
            target: target.clone(),
            volume_options: Some(anonymous()),
            ..Default::default()
        });
    }
    Ok(Ok(()))
}

fn now_secs() -> String {
    let t = berth_runtime::state::now_rfc3339();
    // Seconds, as Docker's CreatedAt.
    match t.find('.') {
        Some(i) => format!("{}Z", &t[..i]),
        None => t,
    }
}

/// The volume a mount creates on first use.
fn volume_of_mount(m: &MountPoint) -> Volume {
    let opts = m.volume_options.clone().unwrap_or_default();
    let driver = opts.driver_config.unwrap_or_default();
    Volume {
        name: m.source.clone(),
        driver: LOCAL.into(),
        created: now_secs(),
        labels: opts.labels,
        options: driver.options,
    }
}

/// Whether the directory behind `fd` has no entries.
fn is_empty_dir(fd: &std::os::fd::OwnedFd) -> io::Result<bool> {
    let dup = rustix::fs::openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for entry in rustix::fs::Dir::read_from(&dup)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Engine {
    /// Where volume `name` keeps its data (and is mounted, for one with options).
    pub fn volume_mountpoint(&self, name: &str) -> PathBuf {
        self.root.join("volumes").join(name).join("_data")
    }

    fn volume_dir(&self, name: &str) -> PathBuf {
        self.root.join("volumes").join(name)
    }

    fn make_volume_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.volume_mountpoint(name);
        std::fs::create_dir_all(&dir).map_err(io_err(name, "creating", &dir))?;
        Ok(dir)
    }

    /// `volume create`: records the volume and makes its directory. A name in use returns
    /// the existing volume, as Docker does.
    pub fn volume_create(&self, req: &VolumeCreate) -> Result<Volume> {
        let name = match &req.name {
            Some(n) => {
                check_name(n)?;
                n.clone()
            }
            None => ids::random_id().map_err(io_err("", "reading", Path::new("/dev/urandom")))?,
        };
        let driver = req
            .driver
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| LOCAL.into());
        check_options(&name, &driver, &req.options)?;
        let v = Volume {
            name: name.clone(),
            driver,
            created: now_secs(),
            labels: req.labels.clone(),
            options: req.options.clone(),
        };
        let v = if self.db.insert_volume(&v)? {
            v
        } else {
            self.db
                .volume(&name)?
                .ok_or_else(|| VolumeError::NotFound(name.clone()))?
        };
        self.make_volume_dir(&name)?;
        Ok(v)
    }

    /// The volume `name`.
    pub fn volume(&self, name: &str) -> Result<Volume> {
        self.db.volume(name)?.ok_or_else(|| VolumeError::NotFound(name.into()))
    }

    /// Every volume, with its users.
    pub fn volumes(&self) -> Result<Vec<VolumeUse>> {
        Ok(self.db.volumes()?)
    }

    /// `volume inspect`'s document (the API's Volume object).
    pub fn volume_inspect(&self, v: &Volume) -> Value {
        json!({
            "CreatedAt": v.created,
            "Driver": v.driver,
            "Labels": v.labels,
            "Mountpoint": self.volume_mountpoint(&v.name),
            "Name": v.name,
            "Options": v.options,
            "Scope": "local",
        })
    }

    /// Bytes of content in the volume (file sizes, each hardlinked inode once), as Docker
    /// reports a local volume's size.
    pub fn volume_size(&self, name: &str) -> u64 {
        berth_image::snapshot::content_size(&self.volume_mountpoint(name)).unwrap_or(0)
    }

    /// `volume rm`: removes the volume and its data unless a container uses it.
    pub fn volume_remove(&self, name: &str) -> Result<()> {
        match self.db.delete_volume(name)? {
            Ok(Some(_)) => self.remove_volume_dir(name),
            Ok(None) => Err(VolumeError::NotFound(name.into())),
            Err(refs) => Err(VolumeError::InUse {
                name: name.into(),
                refs,
            }),
        }
    }

    fn remove_volume_dir(&self, name: &str) -> Result<()> {
        let data = self.volume_mountpoint(name);
        // A mount left by a process killed between mounting and recording it.
        unmount_all(&data);
        let dir = self.volume_dir(name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r.map_err(io_err(name, "removing", &dir)),
        }
    }

    /// `volume prune`: removes the volumes no container uses, anonymous ones only unless
    /// `all`, that `keep` does not spare; their names and the bytes freed.
    pub fn volume_prune(&self, all: bool, keep: &dyn Fn(&Volume) -> bool) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for u in self.volumes()? {
            if !u.containers.is_empty() || (!all && !u.volume.is_anonymous()) || keep(&u.volume) {
                continue;
            }
            let size = self.volume_size(&u.volume.name);
            match self.volume_remove(&u.volume.name) {
                Ok(()) => {
                    removed.push(u.volume.name);
                    reclaimed += size;
                }
                // Taken by a container meanwhile, or removed by another process.
                Err(VolumeError::InUse { .. } | VolumeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((removed, reclaimed))
    }

    /// At create: records the volumes the container's mounts name (making those that do
    /// not exist) and its references to them.
    pub(crate) fn attach_volumes(&self, id: &str, host: &HostConfig) -> Result<()> {
        let vols: Vec<Volume> = host
            .mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .map(volume_of_mount)
            .collect();
        if vols.is_empty() {
            return Ok(());
        }
        self.db.attach_volumes(id, &vols)?;
        for v in &vols {
            self.make_volume_dir(&v.name)?;
        }
        Ok(())
    }

    /// `rm -v`, `--rm`: removes the anonymous volumes of a removed container that no other
    /// container uses.
    pub(crate) fn remove_anonymous_volumes(&self, host: &HostConfig) -> Result<()> {
        for m in host.mounts.iter().filter(|m| m.kind == "volume") {
            match self.db.volume(&m.source)? {
                Some(v) if v.is_anonymous() => match self.volume_remove(&v.name) {
                    Ok(()) | Err(VolumeError::InUse { .. } | VolumeError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// Holds volume `name`'s lock (its directory, made if missing) until dropped.
    fn lock_volume(&self, name: &str) -> Result<Flock<std::fs::File>> {
        let dir = self.volume_dir(name);
        std::fs::create_dir_all(&dir).map_err(io_err(name, "creating", &dir))?;
        let file = std::fs::File::open(&dir).map_err(io_err(name, "opening", &dir))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io_err(name, "locking", &dir)(e.into()))
    }

    /// At start, with the container's root filesystem mounted on `rootfs`: each volume's
    /// mount (for a volume with options), the `mount` event, and the copy-up of the
    /// image's content into an empty volume. Returns the volumes' host directories. (The
    /// records and references are made by create, or by start finishing a cut-short create.)
    pub(crate) fn mount_volumes(
        &self,
        row: &Row,
        host: &HostConfig,
        rootfs: &Path,
    ) -> Result<BTreeMap<String, PathBuf>> {
        let mut dirs = BTreeMap::new();
        for m in host.mounts.iter().filter(|m| m.kind == "volume") {
            let name = &m.source;
            let v = self.volume(name)?;
            let data = self.make_volume_dir(name)?;
            let _lock = self.lock_volume(name)?;
            let err = || self.db.err(format!("mount volume {name}"));
            let tx = self.db.tx().map_err(err())?;
            let changed = tx
                .execute(
                    "UPDATE volume_refs SET mounted = 1 WHERE volume = ?1 AND container = ?2 AND mounted = 0",
                    params![name, row.id],
                )
                .map_err(err())?;
            if changed == 1 {
                let rw = (!m.read_only).to_string();
                let prop = m
                    .bind_options
                    .as_ref()
                    .map(|b| b.propagation.clone())
                    .unwrap_or_default();
                let ev = volume_event(
                    "mount",
                    &v,
                    &[
                        ("container", row.id.clone()),
                        ("destination", m.target.clone()),
                        ("propagation", prop),
                        ("read/write", rw),
                    ],
                );
                insert_event(&tx, &ev).map_err(err())?;
            }
            // Recorded as mounted first: a kill just after the mount leaves a record whose
            // release unmounts it (a failed mount is released by the failed start).
            tx.commit().map_err(err())?;
            if v.is_mounted_kind() && !is_mountpoint(&data) {
                self.mount_device(&v, &data)?;
            }
            if !no_copy(m) {
                copy_up(name, rootfs, &m.target, &data)?;
            }
            dirs.insert(name.clone(), data);
        }
        Ok(dirs)
    }

    fn mount_device(&self, v: &Volume, data: &Path) -> Result<()> {
        let kind = v.options.get("type").cloned().unwrap_or_default();
        let device = v.options.get("device").cloned().unwrap_or_default();
        let opts = mount_options(v.options.get("o").map_or("", String::as_str)).map_err(|reason| {
            VolumeError::InvalidOption {
                name: v.name.clone(),
                reason,
            }
        })?;
        let fail = |source| VolumeError::Mount {
            name: v.name.clone(),
            device: device.clone(),
            kind: kind.clone(),
            path: data.to_owned(),
            source,
        };
        let flags = opts.flags;
        let fstype = (!opts.is_bind() && kind != "none").then_some(kind.as_str());
        let data_opt = (!opts.data.is_empty()).then_some(opts.data.as_str());
        nix::mount::mount(Some(device.as_str()), data, fstype, flags, data_opt).map_err(fail)?;
        // A bind mount takes its flags from a remount; propagation changes are calls of their own.
        let remount = (opts.is_bind() && flags.contains(MsFlags::MS_RDONLY)).then_some(flags | MsFlags::MS_REMOUNT);
        for change in remount.into_iter().chain(opts.propagation.iter().copied()) {
            if let Err(e) = nix::mount::mount(None::<&str>, data, None::<&str>, change, None::<&str>) {
                let _ = nix::mount::umount2(data, MntFlags::MNT_DETACH);
                return Err(fail(e));
            }
        }
        Ok(())
    }

    /// When the container's process is gone: its volumes are no longer mounted by it; the
    /// last user of a volume with options unmounts it. Records `unmount` events.
    pub(crate) fn release_volumes(&self, id: &str) -> Result<()> {
        let names: Vec<String> = {
            let err = || self.db.err(format!("read volumes of container {id}"));
            let mut stmt = self
                .db
                .conn()
                .prepare("SELECT volume FROM volume_refs WHERE container = ?1 AND mounted = 1")
                .map_err(err())?;
            let rows = stmt.query_map([id], |r| r.get(0)).map_err(err())?;
            rows.collect::<rusqlite::Result<_>>().map_err(err())?
        };
        for name in names {
            let _lock = self.lock_volume(&name)?;
            let err = || self.db.err(format!("unmount volume {name}"));
            let tx = self.db.tx().map_err(err())?;
            let changed = tx
                .execute(
                    "UPDATE volume_refs SET mounted = 0 WHERE volume = ?1 AND container = ?2 AND mounted = 1",
                    params![name, id],
                )
                .map_err(err())?;
            if changed == 0 {
                continue;
            }
            let users: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM volume_refs WHERE volume = ?1 AND mounted = 1",
                    [&name],
                    |r| r.get(0),
                )
                .map_err(err())?;
            let v = tx
                .query_row(
                    &format!("SELECT {VOLUME_COLUMNS} FROM volumes WHERE name = ?1"),
                    [&name],
                    volume_row,
                )
                .optional()
                .map_err(err())?;
            if let Some(v) = v {
                insert_event(&tx, &volume_event("unmount", &v, &[("container", id.to_owned())])).map_err(err())?;
                let data = self.volume_mountpoint(&name);
                if users == 0 && v.is_mounted_kind() {
                    unmount_all(&data);
                }
            }
            tx.commit().map_err(err())?;
        }
        Ok(())
    }
}

/// Docker's copy-up: when the volume's directory `data` is empty and the image has a
/// directory at `target` (resolved inside `rootfs`, symlinks and `..` kept in it), its
/// content, owners and modes are copied into the volume.
fn copy_up(name: &str, rootfs: &Path, target: &str, data: &Path) -> Result<()> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(name, "opening", rootfs)(e.into()))?;
    let src = match rustix::fs::openat2(
        &root,
        target.trim_start_matches('/'),
        dir_flags,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // Nothing (or no directory) there in the image: nothing to copy.
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(()),
        Err(e) => {
            return Err(io_err(
                name,
                "opening the image's",
                &rootfs.join(target.trim_start_matches('/')),
            )(e.into()))
        }
    };
    let dst = rustix::fs::open(data, dir_flags | OFlags::NOFOLLOW, Mode::empty())
        .map_err(|e| io_err(name, "opening", data)(e.into()))?;
    if !is_empty_dir(&dst).map_err(io_err(name, "reading", data))? {
        return Ok(());
    }
    berth_image::snapshot::copy_tree(&src, &dst).map_err(io_err(name, "copying the image's content into", data))
}

/// `volume ls --filter`s: `dangling`, `name` (substring), `label` (KEY or KEY=VALUE, all
/// must match), `driver`. Values of one key are alternatives; keys must all match.
pub fn filter_matches(u: &VolumeUse, filters: &[(String, String)]) -> Result<bool> {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in filters {
        by_key.entry(k.as_str()).or_default().push(v.as_str());
    }
    for (k, values) in by_key {
        let ok = match k {
            "dangling" => {
                let mut any = false;
                for v in &values {
                    let want = match *v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(VolumeError::Filter(format!("dangling={v}"))),
                    };
                    any |= u.containers.is_empty() == want;
                }
                any
            }
            "name" => values.iter().any(|v| u.volume.name.contains(v)),
            "driver" => values.iter().any(|v| u.volume.driver == *v),
            "label" => values.iter().all(|v| label_matches(&u.volume.labels, v)),
            "label!" => values.iter().all(|v| !label_matches(&u.volume.labels, v)),
            _ => return Err(VolumeError::Filter(k.to_owned())),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `KEY` or `KEY=VALUE` against labels.
pub fn label_matches(labels: &BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_options_follow_the_local_driver() {
        assert!(check_name("data").is_ok() && check_name("a.b_c-1").is_ok());
        assert!(matches!(check_name("a"), Err(VolumeError::NameTooShort(_))));
        let e = check_name("a/b").unwrap_err().to_string();
        assert!(e.starts_with("create a/b: \"a/b\" includes invalid characters"), "{e}");
        let mut o = BTreeMap::new();
        assert!(check_options("v", "local", &o).is_ok());
        o.insert("type".to_string(), "tmpfs".to_string());
        let e = check_options("v", "local", &o).unwrap_err().to_string();
        assert_eq!(e, "create v: missing required option: \"device\"");
        o.insert("device".into(), "tmpfs".into());
        o.insert("o".into(), "size=1m,uid=1000,noexec".into());
        assert!(check_options("v", "", &o).is_ok());
        o.insert("colour".into(), "red".into());
        assert!(check_options("v", "local", &o)
            .unwrap_err()
            .to_string()
            .contains("invalid option: \"colour\""));
        let e = check_options("v", "nfs-plugin", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("plugin \"nfs-plugin\" not found"), "{e}");
    }

    #[test]
    fn mount_options_split_into_flags_data_and_propagation() {
        let o = mount_options("size=1m,ro,nosuid,mode=0755").unwrap();
        assert_eq!(o.flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(o.data, "size=1m,mode=0755");
        let o = mount_options("defaults,bind,ro,rw,rprivate").unwrap();
        assert_eq!((o.flags, o.data.as_str()), (MsFlags::MS_BIND, ""));
        assert_eq!(o.propagation, [MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        for word in ["remount", "move", "tmpcopyup", "idmap", "rro"] {
            let e = mount_options(&format!("size=1m,{word}")).unwrap_err();
            assert_eq!(e, format!("mount option {word:?} is not allowed for a volume"));
        }
    }

    #[test]
    fn anonymous_volumes_for_sourceless_mounts_and_uncovered_image_volumes() {
        let mut host = HostConfig {
            mounts: vec![
                MountPoint {
                    kind: "volume".into(),
                    target: "/anon".into(),
                    ..Default::default()
                },
                MountPoint {
                    kind: "volume".into(),
                    source: "named".into(),
                    target: "/data/".into(),
                    ..Default::default()
                },
            ],
            tmpfs: [("/scratch".to_string(), String::new())].into(),
            ..Default::default()
        };
        let image = ["/data".to_string(), "/scratch".into(), "/cache".into()];
        plan_mounts(&image, &mut host).unwrap().unwrap();
        let targets: Vec<&str> = host.mounts.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(targets, ["/anon", "/data/", "/cache"]);
        for i in [0, 2] {
            let v = volume_of_mount(&host.mounts[i]);
            assert!(v.is_anonymous() && v.name.len() == 64, "{v:?}");
        }
        assert!(!volume_of_mount(&host.mounts[1]).is_anonymous());
        let mut bad = HostConfig {
            mounts: vec![MountPoint {
                kind: "volume".into(),
                source: "x".into(),
                target: "/x".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(matches!(
            plan_mounts(&[], &mut bad).unwrap(),
            Err(VolumeError::NameTooShort(_))
        ));
    }

    #[test]
    fn records_refuse_removal_while_referenced() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("berth.db")).unwrap();
        let v = Volume {
            name: "data".into(),
            driver: LOCAL.into(),
            created: "2024-01-01T00:00:00Z".into(),
            labels: [("a".to_string(), "b".to_string())].into(),
            options: BTreeMap::new(),
        };
        assert!(db.insert_volume(&v).unwrap());
        assert!(!db.insert_volume(&v).unwrap(), "a second create keeps the first");
        assert_eq!(db.volume("data").unwrap().unwrap(), v);
        // A reference needs its container.
        assert!(db.attach_volumes("c1", std::slice::from_ref(&v)).is_err());
        let row = crate::db::test_row("c1", "web");
        let ev = NewEvent {
            kind: "container",
            action: "create".into(),
            actor: "c1".into(),
            attributes: Default::default(),
        };
        db.insert(&row, &ev).unwrap();
        let anon = Volume {
            name: "f".repeat(64),
            labels: [(ANONYMOUS_LABEL.to_string(), String::new())].into(),
            ..v.clone()
        };
        let created = db.attach_volumes("c1", &[v.clone(), anon.clone()]).unwrap();
        assert_eq!(created, std::slice::from_ref(&anon.name));
        assert_eq!(db.delete_volume("data").unwrap(), Err(vec!["c1".to_string()]));
        let all = db.volumes().unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|u| u.containers == ["c1"]));
        assert!(filter_matches(&all[0], &[("label".into(), "a=b".into())]).unwrap());
        assert!(!filter_matches(&all[0], &[("dangling".into(), "true".into())]).unwrap());
        assert!(filter_matches(&all[0], &[("name".into(), "at".into()), ("name".into(), "zz".into())]).unwrap());
        assert!(filter_matches(&all[0], &[("bogus".into(), "1".into())]).is_err());
        // The container's removal drops its references.
        db.delete("c1", &ev).unwrap();
        assert!(db.volumes().unwrap().iter().all(|u| u.containers.is_empty()));
        assert_eq!(db.delete_volume("data").unwrap(), Ok(Some(v)));
        assert_eq!(db.delete_volume("data").unwrap(), Ok(None));
        let kinds: Vec<(String, String)> = db
            .events_after(0)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "volume")
            .map(|e| (e.action, e.actor))
            .collect();
        assert_eq!(
            kinds,
            [
                ("create".to_string(), "data".to_string()),
                ("create".into(), anon.name.clone()),
                ("destroy".into(), "data".into())
            ]
        );
    }

    #[test]
    fn copy_up_fills_only_an_empty_volume() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("srv/app/sub")).unwrap();
        std::fs::write(rootfs.join("srv/app/sub/f"), "from the image").unwrap();
        std::os::unix::fs::symlink("/srv/app", rootfs.join("link")).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        // Through a symlink resolved inside the root.
        copy_up("v", &rootfs, "/link", &data).unwrap();
        assert_eq!(std::fs::read_to_string(data.join("sub/f")).unwrap(), "from the image");
        std::fs::write(rootfs.join("srv/app/sub/f"), "changed").unwrap();
        copy_up("v", &rootfs, "/srv/app", &data).unwrap();
        assert_eq!(std::fs::read_to_string(data.join("sub/f")).unwrap(), "from the image");
        // Missing or not a directory in the image: nothing.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        copy_up("v", &rootfs, "/nothing", &empty).unwrap();
        copy_up("v", &rootfs, "/srv/app/sub/f", &empty).unwrap();
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    }

    #[test]
    fn mount_roots_are_told_apart() {
        assert!(is_mountpoint(Path::new("/")) && is_mountpoint(Path::new("/proc")));
        assert!(!is_mountpoint(Path::new("/proc/self")) && !is_mountpoint(Path::new("/nonexistent")));
    }
}
