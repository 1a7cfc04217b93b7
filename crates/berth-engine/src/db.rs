//! The engine's tables in `berth.db` (next to the images'): containers and
//! the event journal. Every change is one transaction; concurrent CLI
//! processes wait on SQLite's lock (WAL, busy timeout).

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

const COMPONENT: &str = "engine";

const SCHEMA_V1: &str = "
CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image TEXT NOT NULL,
    image_name TEXT NOT NULL,
    created TEXT NOT NULL,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    pid INTEGER NOT NULL DEFAULT 0,
    monitor_pid INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL DEFAULT '',
    finished_at TEXT NOT NULL DEFAULT '',
    exit_code INTEGER NOT NULL DEFAULT 0,
    oom_killed INTEGER NOT NULL DEFAULT 0,
    restart_count INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    seq INTEGER NOT NULL
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_nano INTEGER NOT NULL,
    type TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    attributes TEXT NOT NULL
);
";

/// Health check state, one JSON document per container with a health check.
const SCHEMA_V2: &str = "
CREATE TABLE health (
    id TEXT PRIMARY KEY REFERENCES containers(id) ON DELETE CASCADE,
    doc TEXT NOT NULL
);
";

/// Named volumes (`volumes.rs`): one row per volume; `volume_refs` names the containers
/// that use each (a container's rows go with it), `mounted` while its process runs. Volumes
/// that containers of an older berth used are recorded from their settings.
const SCHEMA_V3: &str = "
CREATE TABLE volumes (
    name TEXT PRIMARY KEY,
    driver TEXT NOT NULL,
    created TEXT NOT NULL,
    labels TEXT NOT NULL,
    options TEXT NOT NULL
);
CREATE TABLE volume_refs (
    volume TEXT NOT NULL REFERENCES volumes(name),
    container TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    mounted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (volume, container)
);
CREATE INDEX volume_refs_container ON volume_refs(container);
INSERT OR IGNORE INTO volumes (name, driver, created, labels, options)
    SELECT json_extract(m.value, '$.Source'), 'local', MIN(c.created),
           CASE WHEN json_extract(m.value, '$.Source') LIKE 'anon-%'
                THEN '{\"com.docker.volume.anonymous\":\"\"}' ELSE '{}' END, '{}'
    FROM containers c, json_each(c.config, '$.HostConfig.Mounts') m
    WHERE json_extract(m.value, '$.Type') = 'volume' GROUP BY 1;
INSERT OR IGNORE INTO volume_refs (volume, container)
    SELECT json_extract(m.value, '$.Source'), c.id
    FROM containers c, json_each(c.config, '$.HostConfig.Mounts') m
    WHERE json_extract(m.value, '$.Type') = 'volume';
";

pub use berth_image::images::DbError;

pub type Result<T> = std::result::Result<T, DbError>;

/// One container's record.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_name: String,
    pub created: String,
    /// `{"Config": …, "HostConfig": …}` as JSON.
    pub config: String,
    /// created, running, paused, restarting, exited, dead.
    pub state: String,
    pub pid: i32,
    pub monitor_pid: i32,
    pub started_at: String,
    pub finished_at: String,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub restart_count: u32,
    pub error: String,
}

/// The run-time part of a record, as changed by start, stop and exits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunState {
    pub state: String,
    pub pid: i32,
    pub monitor_pid: i32,
    pub started_at: String,
    pub finished_at: String,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub restart_count: u32,
    pub error: String,
}

impl Row {
    pub fn run_state(&self) -> RunState {
        RunState {
            state: self.state.clone(),
            pid: self.pid,
            monitor_pid: self.monitor_pid,
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            exit_code: self.exit_code,
            oom_killed: self.oom_killed,
            restart_count: self.restart_count,
            error: self.error.clone(),
        }
    }
}

/// An event of the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub time_nano: i64,
    pub kind: String,
    pub action: String,
    pub actor: String,
    /// JSON object of strings.
    pub attributes: String,
}

pub struct Db {
    conn: Connection,
    path: PathBuf,
}

const COLUMNS: &str = "id, name, image, image_name, created, config, state, pid, monitor_pid, started_at, \
                       finished_at, exit_code, oom_killed, restart_count, error";

fn row(r: &rusqlite::Row) -> rusqlite::Result<Row> {
    Ok(Row {
        id: r.get(0)?,
        name: r.get(1)?,
        image: r.get(2)?,
        image_name: r.get(3)?,
        created: r.get(4)?,
        config: r.get(5)?,
        state: r.get(6)?,
        pid: r.get(7)?,
        monitor_pid: r.get(8)?,
        started_at: r.get(9)?,
        finished_at: r.get(10)?,
        exit_code: r.get(11)?,
        oom_killed: r.get(12)?,
        restart_count: r.get(13)?,
        error: r.get(14)?,
    })
}

/// Whether an insert failed on the unique name.
pub fn is_name_conflict(e: &DbError) -> bool {
    matches!(&e.source, rusqlite::Error::SqliteFailure(f, Some(msg))
        if f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains("containers.name"))
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let mut conn = berth_image::images::connect(path)?;
        berth_image::images::migrate(&mut conn, path, COMPONENT, &[SCHEMA_V1, SCHEMA_V2, SCHEMA_V3])?;
        berth_image::images::migrate(
            &mut conn,
            path,
            berth_network::store::COMPONENT,
            berth_network::store::MIGRATIONS,
        )?;
        Ok(Db {
            conn,
            path: path.to_owned(),
        })
    }

    /// The connection, for the volume and network tables (berth_network::store).
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// A write transaction that takes the lock at once (a deferred one can
    /// fail with SQLITE_BUSY on upgrade when another process wrote).
    pub(crate) fn tx(&self) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
    }

    pub(crate) fn err(&self, action: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> DbError {
        let path = self.path.clone();
        let action = action.into();
        move |source| DbError { path, action, source }
    }

    /// Records a new container (and its `create` event).
    pub fn insert(&self, r: &Row, event: &NewEvent) -> Result<()> {
        let tx = self.tx().map_err(self.err("begin insert"))?;
        tx.execute(
            &format!(
                "INSERT INTO containers ({COLUMNS}, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM containers))"
            ),
            params![
                r.id,
                r.name,
                r.image,
                r.image_name,
                r.created,
                r.config,
                r.state,
                r.pid,
                r.monitor_pid,
                r.started_at,
                r.finished_at,
                r.exit_code,
                r.oom_killed,
                r.restart_count,
                r.error
            ],
        )
        .map_err(self.err(format!("insert container {}", r.id)))?;
        insert_event(&tx, event).map_err(self.err("record event"))?;
        tx.commit().map_err(self.err(format!("commit container {}", r.id)))
    }

    pub fn get(&self, id: &str) -> Result<Option<Row>> {
        self.conn
            .query_row(&format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"), [id], row)
            .optional()
            .map_err(self.err(format!("read container {id}")))
    }

    /// Every container, newest first.
    pub fn list(&self) -> Result<Vec<Row>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM containers ORDER BY seq DESC"))
            .map_err(self.err("list containers"))?;
        let rows = stmt.query_map([], row).map_err(self.err("list containers"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.err("list containers"))
    }

    /// The id of the container named `name`, or whose id is or starts with
    /// `name`: names first, then full ids, then prefixes (several: ambiguous).
    pub fn lookup(&self, name: &str) -> Result<Vec<String>> {
        let name = name.strip_prefix('/').unwrap_or(name);
        let by_name: Option<String> = self
            .conn
            .query_row("SELECT id FROM containers WHERE name = ?1 OR id = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err(format!("look up container {name}")))?;
        if let Some(id) = by_name {
            return Ok(vec![id]);
        }
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM containers WHERE id LIKE ?1 ORDER BY id")
            .map_err(self.err("find containers by id prefix"))?;
        let rows = stmt
            .query_map([format!("{}%", name.to_ascii_lowercase())], |r| r.get(0))
            .map_err(self.err("find containers by id prefix"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.err("find containers by id prefix"))
    }

    /// Whether some container's id starts with `prefix`.
    pub fn prefix_taken(&self, prefix: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM containers WHERE substr(id, 1, ?2) = ?1)",
                params![prefix, prefix.len() as i64],
                |r| r.get(0),
            )
            .map_err(self.err("check id prefix"))
    }

    /// Sets the run-time state, and records `event` with it, in one
    /// transaction. Only when the row still has `expect` (the state the
    /// caller saw), so two processes reconciling at once change it once;
    /// returns whether it changed.
    pub fn set_state(&self, id: &str, expect: &RunState, new: &RunState, event: Option<&NewEvent>) -> Result<bool> {
        let tx = self.tx().map_err(self.err(format!("begin update of container {id}")))?;
        let n = tx
            .execute(
                "UPDATE containers SET state = ?2, pid = ?3, monitor_pid = ?4, started_at = ?5, finished_at = ?6,
                 exit_code = ?7, oom_killed = ?8, restart_count = ?9, error = ?10
                 WHERE id = ?1 AND state = ?11 AND pid = ?12 AND started_at = ?13 AND finished_at = ?14
                 AND restart_count = ?15",
                params![
                    id,
                    new.state,
                    new.pid,
                    new.monitor_pid,
                    new.started_at,
                    new.finished_at,
                    new.exit_code,
                    new.oom_killed,
                    new.restart_count,
                    new.error,
                    expect.state,
                    expect.pid,
                    expect.started_at,
                    expect.finished_at,
                    expect.restart_count
                ],
            )
            .map_err(self.err(format!("update container {id}")))?;
        if n == 1 {
            if let Some(e) = event {
                insert_event(&tx, e).map_err(self.err("record event"))?;
            }
        }
        tx.commit()
            .map_err(self.err(format!("commit update of container {id}")))?;
        Ok(n == 1)
    }

    pub fn rename(&self, id: &str, name: &str, event: &NewEvent) -> Result<()> {
        let tx = self.tx().map_err(self.err("begin rename"))?;
        tx.execute("UPDATE containers SET name = ?2 WHERE id = ?1", params![id, name])
            .map_err(self.err(format!("rename container {id}")))?;
        insert_event(&tx, event).map_err(self.err("record event"))?;
        tx.commit()
            .map_err(self.err(format!("commit rename of container {id}")))
    }

    pub fn set_config(&self, id: &str, config: &str) -> Result<()> {
        self.conn
            .execute("UPDATE containers SET config = ?2 WHERE id = ?1", params![id, config])
            .map(drop)
            .map_err(self.err(format!("update config of container {id}")))
    }

    /// Deletes the record; false if it was already gone.
    pub fn delete(&self, id: &str, event: &NewEvent) -> Result<bool> {
        let tx = self.tx().map_err(self.err("begin delete"))?;
        let n = tx
            .execute("DELETE FROM containers WHERE id = ?1", [id])
            .map_err(self.err(format!("delete container {id}")))?;
        if n == 1 {
            insert_event(&tx, event).map_err(self.err("record event"))?;
        }
        tx.commit()
            .map_err(self.err(format!("commit delete of container {id}")))?;
        Ok(n == 1)
    }

    /// The container's health document (JSON), if it has one.
    pub fn health(&self, id: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT doc FROM health WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(self.err(format!("read health of container {id}")))
    }

    /// Replaces the health document with `update(old)` in one transaction,
    /// with the event `update` returns; nothing when the container is gone.
    pub fn update_health(
        &self,
        id: &str,
        update: impl FnOnce(Option<String>) -> (String, Option<NewEvent>),
    ) -> Result<()> {
        let tx = self
            .tx()
            .map_err(self.err(format!("begin health update of container {id}")))?;
        let exists: bool = tx
            .query_row("SELECT EXISTS(SELECT 1 FROM containers WHERE id = ?1)", [id], |r| {
                r.get(0)
            })
            .map_err(self.err(format!("read container {id}")))?;
        if !exists {
            return Ok(());
        }
        let old: Option<String> = tx
            .query_row("SELECT doc FROM health WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(self.err(format!("read health of container {id}")))?;
        let (doc, event) = update(old);
        tx.execute(
            "INSERT INTO health (id, doc) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
            params![id, doc],
        )
        .map_err(self.err(format!("write health of container {id}")))?;
        if let Some(e) = event {
            insert_event(&tx, &e).map_err(self.err("record event"))?;
        }
        tx.commit()
            .map_err(self.err(format!("commit health of container {id}")))
    }

    pub fn add_event(&self, e: &NewEvent) -> Result<()> {
        insert_event(&self.conn, e).map(drop).map_err(self.err("record event"))
    }

    /// Events after `after` (a sequence number), oldest first.
    pub fn events_after(&self, after: i64) -> Result<Vec<Event>> {
        self.events_since(after, i64::MIN)
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: &'static str,
    pub action: String,
    pub actor: String,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Events the journal keeps: older ones go as new ones come. (dockerd keeps its last 256, in
/// memory; `events --since` here reaches further back, and the file stays small: ~2 MB.)
pub const EVENTS_KEPT: i64 = 10_000;
/// The journal is trimmed when an event's sequence number is a multiple of this: one
/// `DELETE` per so many events, so it holds between `EVENTS_KEPT` and that many more.
const EVENTS_TRIM_EVERY: i64 = 256;

pub(crate) fn insert_event(conn: &Connection, e: &NewEvent) -> rusqlite::Result<usize> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i64;
    let n = conn.execute(
        "INSERT INTO events (time_nano, type, action, actor, attributes) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            now,
            e.kind,
            e.action,
            e.actor,
            serde_json::Value::Object(e.attributes.clone()).to_string()
        ],
    )?;
    // Sequence numbers are never reused (AUTOINCREMENT), so a follower's position stays valid.
    let seq = conn.last_insert_rowid();
    if seq % EVENTS_TRIM_EVERY == 0 {
        conn.execute("DELETE FROM events WHERE seq <= ?1", [seq - EVENTS_KEPT])?;
    }
    Ok(n)
}

/// A created container's record, for tests of the engine's tables.
#[cfg(test)]
pub(crate) fn test_row(id: &str, name: &str) -> Row {
    tests::new_row(id, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn new_row(id: &str, name: &str) -> Row {
        Row {
            id: id.into(),
            name: name.into(),
            image: "sha256:1".into(),
            image_name: "busybox".into(),
            created: "t".into(),
            config: "{}".into(),
            state: "created".into(),
            pid: 0,
            monitor_pid: 0,
            started_at: String::new(),
            finished_at: String::new(),
            exit_code: 0,
            oom_killed: false,
            restart_count: 0,
            error: String::new(),
        }
    }

    fn ev(action: &str) -> NewEvent {
        NewEvent {
            kind: "container",
            action: action.into(),
            actor: "x".into(),
            attributes: Default::default(),
        }
    }

    #[test]
    fn names_are_unique_and_lookups_follow_docker() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("berth.db")).unwrap();
        db.insert(&new_row("abc123", "web"), &ev("create")).unwrap();
        db.insert(&new_row("abd456", "db"), &ev("create")).unwrap();
        let e = db.insert(&new_row("fff", "web"), &ev("create")).unwrap_err();
        assert!(is_name_conflict(&e), "{e:?}");
        assert_eq!(db.lookup("web").unwrap(), ["abc123"]);
        assert_eq!(db.lookup("/web").unwrap(), ["abc123"]);
        assert_eq!(db.lookup("abd").unwrap(), ["abd456"]);
        assert_eq!(db.lookup("ab").unwrap().len(), 2);
        assert!(db.lookup("zz").unwrap().is_empty());
        assert!(db.lookup("%").unwrap().is_empty());
        assert!(db.prefix_taken("abc").unwrap() && !db.prefix_taken("abe").unwrap());
        assert_eq!(db.list().unwrap()[0].id, "abd456", "newest first");
        // Reopening keeps the schema.
        drop(db);
        let db = Db::open(&dir.path().join("berth.db")).unwrap();
        assert_eq!(db.list().unwrap().len(), 2);
        assert_eq!(db.events_after(0).unwrap().len(), 2);
    }

    #[test]
    fn the_journal_keeps_the_newest_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("berth.db")).unwrap();
        let total = EVENTS_KEPT + 3 * EVENTS_TRIM_EVERY + 5;
        let tx = db.conn.transaction().unwrap();
        for i in 0..total {
            let mut e = ev("create");
            e.actor = format!("c{i}");
            insert_event(&tx, &e).unwrap();
        }
        tx.commit().unwrap();
        let kept = db.events_after(0).unwrap();
        assert!(
            (EVENTS_KEPT..EVENTS_KEPT + EVENTS_TRIM_EVERY).contains(&(kept.len() as i64)),
            "{} kept",
            kept.len()
        );
        // The newest, in order, ending with the last one recorded.
        assert_eq!(kept.last().unwrap().actor, format!("c{}", total - 1));
        assert!(kept.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
        // Numbers go on from where they were, trimmed or not.
        db.add_event(&ev("destroy")).unwrap();
        assert_eq!(db.events_after(total).unwrap().len(), 1);
    }

    #[test]
    fn state_changes_apply_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("berth.db")).unwrap();
        db.insert(&new_row("a", "n"), &ev("create")).unwrap();
        let old = db.get("a").unwrap().unwrap().run_state();
        let new = RunState {
            state: "exited".into(),
            exit_code: 3,
            finished_at: "t2".into(),
            ..old.clone()
        };
        assert!(db.set_state("a", &old, &new, Some(&ev("die"))).unwrap());
        assert!(!db.set_state("a", &old, &new, Some(&ev("die"))).unwrap());
        assert_eq!(db.get("a").unwrap().unwrap().exit_code, 3);
        let dies = db.events_after(0).unwrap().iter().filter(|e| e.action == "die").count();
        assert_eq!(dies, 1);
        assert!(db.delete("a", &ev("destroy")).unwrap());
        assert!(!db.delete("a", &ev("destroy")).unwrap());
    }
}
