//! The image tables of `berth.db` (SQLite, WAL): images, their names, blobs and layer chains,
//! and the references that hold an image (containers).
//!
//! Other components keep their own tables in the same file; each migrates its own schema,
//! recorded in `schema_versions`. Every change is one transaction.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// This component's name in `schema_versions`.
const COMPONENT: &str = "images";
/// The schema this code writes (version 1).
const SCHEMA_V1: &str = "
CREATE TABLE images (
    id TEXT PRIMARY KEY,          -- the config's digest
    manifest TEXT NOT NULL,       -- the image manifest's digest, in the content store
    media_type TEXT NOT NULL,     -- the manifest's media type
    created TEXT,                 -- the config's `created`, as written
    size INTEGER NOT NULL,        -- bytes of the unpacked layers
    added INTEGER NOT NULL,       -- when it entered this store, seconds since the epoch
    top TEXT                      -- chain ID of the top layer (NULL: no layers)
);
CREATE TABLE image_names (
    name TEXT PRIMARY KEY,        -- `registry/repository:tag` or `registry/repository@digest`
    image TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('tag', 'digest'))
);
CREATE INDEX image_names_image ON image_names(image);
CREATE TABLE image_blobs (
    image TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    PRIMARY KEY (image, digest)
);
CREATE INDEX image_blobs_digest ON image_blobs(digest);
CREATE TABLE layers (
    chain TEXT PRIMARY KEY,       -- chain ID, also the committed snapshot's name
    parent TEXT,
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL         -- bytes the layer adds, unpacked
);
CREATE TABLE image_layers (
    image TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    chain TEXT NOT NULL,
    PRIMARY KEY (image, position)
);
CREATE INDEX image_layers_chain ON image_layers(chain);
CREATE TABLE image_refs (
    image TEXT NOT NULL REFERENCES images(id),
    holder TEXT NOT NULL,         -- e.g. `container:<id>`
    PRIMARY KEY (image, holder)
);
";

/// A failed database operation, naming the database file and what was being done.
#[derive(Debug, thiserror::Error)]
#[error("image database {}: {action}", path.display())]
pub struct DbError {
    pub path: PathBuf,
    pub action: String,
    #[source]
    pub source: rusqlite::Error,
}

pub type Result<T> = std::result::Result<T, DbError>;

/// One image's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    pub id: String,
    pub manifest: String,
    pub media_type: String,
    pub created: Option<String>,
    pub size: u64,
    pub added: u64,
    pub top: Option<String>,
}

/// A layer of a chain, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRow {
    pub chain: String,
    pub parent: Option<String>,
    pub diff_id: String,
    pub size: u64,
}

/// Everything recorded for a new image, written in one transaction by [`Db::add_image`].
#[derive(Debug, Clone)]
pub struct NewImage {
    pub image: ImageRow,
    /// Bottom to top.
    pub layers: Vec<LayerRow>,
    /// Every blob the image needs kept: manifest(s), config, layers.
    pub blobs: Vec<String>,
    /// Names to point at the image: (name, is a tag).
    pub names: Vec<(String, bool)>,
}

/// A connection to `berth.db`.
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

fn row_image(row: &rusqlite::Row<'_>) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        id: row.get(0)?,
        manifest: row.get(1)?,
        media_type: row.get(2)?,
        created: row.get(3)?,
        size: row.get::<_, i64>(4)? as u64,
        added: row.get::<_, i64>(5)? as u64,
        top: row.get(6)?,
    })
}

const IMAGE_COLUMNS: &str = "id, manifest, media_type, created, size, added, top";

/// A connection to `berth.db` as every component of berth uses it: WAL, `synchronous=NORMAL`,
/// foreign keys on, and a busy timeout so concurrent CLI processes wait for each other rather
/// than fail.
pub fn connect(path: &Path) -> Result<Connection> {
    let err = |action: &str| {
        let path = path.to_owned();
        let action = action.to_owned();
        move |source| DbError { path, action, source }
    };
    let conn = Connection::open(path).map_err(err("open"))?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(err("set busy timeout"))?;
    // WAL is a property of the file: set once, by the first process. Setting
    // it takes an exclusive lock, and SQLite answers SQLITE_BUSY at once
    // (without its busy handler) while another connection holds one, as the
    // first commands on a new store do when several start together: retry.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mode: rusqlite::Result<String> = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0));
        if mode.as_deref().is_ok_and(|m| m.eq_ignore_ascii_case("wal")) {
            break;
        }
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => break,
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(err("enable WAL")(e)),
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err("set synchronous"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(err("enable foreign keys"))?;
    Ok(conn)
}

/// Brings `component`'s tables to version `steps.len()`: `steps[v]` takes them from version
/// `v` to `v + 1`. The version is read first, so an up-to-date database (every command after
/// the first) costs one read and no write lock; a migration runs in one transaction that
/// checks the version again.
pub fn migrate(conn: &mut Connection, path: &Path, component: &str, steps: &[&str]) -> Result<()> {
    let err = |action: String| {
        let path = path.to_owned();
        move |source| DbError { path, action, source }
    };
    let target = steps.len() as i64;
    let read = |conn: &Connection| -> rusqlite::Result<i64> {
        conn.query_row(
            "SELECT version FROM schema_versions WHERE component = ?1",
            [component],
            |r| r.get(0),
        )
        .optional()
        .map(|v| v.unwrap_or(0))
    };
    if read(conn).is_ok_and(|v| v == target) {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err("begin migration".into()))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    )
    .map_err(err("create schema_versions".into()))?;
    let version = read(&tx).map_err(err("read schema version".into()))?;
    if version > target {
        return Err(DbError {
            path: path.to_owned(),
            action: format!("{component} schema version {version} is newer than this berth's ({target})"),
            source: rusqlite::Error::InvalidQuery,
        });
    }
    for (v, step) in steps.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(step)
            .map_err(err(format!("migrate {component} tables to version {}", v + 1)))?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO schema_versions (component, version) VALUES (?1, ?2)",
        params![component, target],
    )
    .map_err(err("record schema version".into()))?;
    tx.commit().map_err(err("commit migration".into()))
}

impl Db {
    /// Opens (creating) the database at `path`, in WAL mode, and brings the image tables to
    /// this version.
    pub fn open(path: &Path) -> Result<Db> {
        let mut conn = connect(path)?;
        migrate(&mut conn, path, COMPONENT, &[SCHEMA_V1])?;
        Ok(Db {
            conn,
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, action: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> DbError + '_ {
        let action = action.into();
        move |source| DbError {
            path: self.path.clone(),
            action,
            source,
        }
    }

    /// Records a new image with its layers, blobs and names in one transaction. An image
    /// already present keeps its row; its names and blobs are merged. A name that pointed at
    /// another image now points at this one.
    pub fn add_image(&mut self, new: &NewImage) -> Result<()> {
        let path = self.path.clone();
        let err = move |action: String| {
            let path = path.clone();
            move |source| DbError { path, action, source }
        };
        let id = &new.image.id;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err(format!("begin recording image {id}")))?;
        let i = &new.image;
        tx.execute(
            "INSERT OR IGNORE INTO images (id, manifest, media_type, created, size, added, top)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                i.id,
                i.manifest,
                i.media_type,
                i.created,
                i.size as i64,
                i.added as i64,
                i.top
            ],
        )
        .map_err(err(format!("insert image {id}")))?;
        for l in &new.layers {
            tx.execute(
                "INSERT OR IGNORE INTO layers (chain, parent, diff_id, size) VALUES (?1, ?2, ?3, ?4)",
                params![l.chain, l.parent, l.diff_id, l.size as i64],
            )
            .map_err(err(format!("insert layer {}", l.chain)))?;
        }
        tx.execute("DELETE FROM image_layers WHERE image = ?1", [id])
            .map_err(err(format!("replace layers of image {id}")))?;
        for (pos, l) in new.layers.iter().enumerate() {
            tx.execute(
                "INSERT INTO image_layers (image, position, chain) VALUES (?1, ?2, ?3)",
                params![id, pos as i64, l.chain],
            )
            .map_err(err(format!("insert layer {} of image {id}", l.chain)))?;
        }
        for blob in &new.blobs {
            tx.execute(
                "INSERT OR IGNORE INTO image_blobs (image, digest) VALUES (?1, ?2)",
                params![id, blob],
            )
            .map_err(err(format!("insert blob {blob} of image {id}")))?;
        }
        for (name, tag) in &new.names {
            tx.execute(
                "INSERT OR REPLACE INTO image_names (name, image, kind) VALUES (?1, ?2, ?3)",
                params![name, id, if *tag { "tag" } else { "digest" }],
            )
            .map_err(err(format!("name image {id} {name}")))?;
        }
        tx.commit().map_err(err(format!("commit image {id}")))
    }

    /// The image `id`, if recorded.
    pub fn image(&self, id: &str) -> Result<Option<ImageRow>> {
        self.conn
            .query_row(
                &format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = ?1"),
                [id],
                row_image,
            )
            .optional()
            .map_err(self.err(format!("read image {id}")))
    }

    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<ImageRow>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {IMAGE_COLUMNS} FROM images ORDER BY added DESC, id"))
            .map_err(self.err("list images"))?;
        let rows = stmt.query_map([], row_image).map_err(self.err("list images"))?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err("list images"))
    }

    /// Ids of the images whose id starts with `prefix` (a hex prefix, without `sha256:`).
    pub fn images_by_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let pattern = format!("sha256:{}%", prefix.replace(['%', '_'], ""));
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM images WHERE id LIKE ?1 ORDER BY id")
            .map_err(self.err("find images by id prefix"))?;
        let rows = stmt
            .query_map([pattern], |r| r.get(0))
            .map_err(self.err("find images by id prefix"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.err("find images by id prefix"))
    }

    /// The image a name points at.
    pub fn image_by_name(&self, name: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT image FROM image_names WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(self.err(format!("look up name {name}")))
    }

    /// All names: (name, image, is a tag), sorted by name.
    pub fn names(&self) -> Result<Vec<(String, String, bool)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, image, kind = 'tag' FROM image_names ORDER BY name")
            .map_err(self.err("list names"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(self.err("list names"))?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err("list names"))
    }

    /// The names of one image: (name, is a tag), sorted by name.
    pub fn names_of(&self, image: &str) -> Result<Vec<(String, bool)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, kind = 'tag' FROM image_names WHERE image = ?1 ORDER BY name")
            .map_err(self.err(format!("list names of image {image}")))?;
        let rows = stmt
            .query_map([image], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err(format!("list names of image {image}")))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.err(format!("list names of image {image}")))
    }

    /// Points `name` (a tag) at `image`.
    pub fn set_tag(&self, name: &str, image: &str) -> Result<()> {
        self.set_name(name, image, true)
    }

    /// Points `name` at `image`: a tag, or (`tag` false) a repository digest
    /// (`registry/repository@sha256:…`).
    pub fn set_name(&self, name: &str, image: &str, tag: bool) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO image_names (name, image, kind) VALUES (?1, ?2, ?3)",
                params![name, image, if tag { "tag" } else { "digest" }],
            )
            .map(drop)
            .map_err(self.err(format!("name image {image} {name}")))
    }

    /// Removes the name; returns whether it existed.
    pub fn remove_name(&self, name: &str) -> Result<bool> {
        self.conn
            .execute("DELETE FROM image_names WHERE name = ?1", [name])
            .map(|n| n > 0)
            .map_err(self.err(format!("remove name {name}")))
    }

    /// Removes the image's row, names, blob and layer references in one transaction (the blobs
    /// and snapshots themselves go in the next garbage collection). Fails while a holder
    /// references it.
    pub fn remove_image(&mut self, id: &str) -> Result<()> {
        let path = self.path.clone();
        let err = move |action: String| {
            let path = path.clone();
            move |source| DbError { path, action, source }
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err(format!("begin removing image {id}")))?;
        tx.execute("DELETE FROM images WHERE id = ?1", [id])
            .map_err(err(format!("remove image {id}")))?;
        tx.commit().map_err(err(format!("commit removal of image {id}")))
    }

    /// The layers of an image, bottom to top.
    pub fn image_layers(&self, id: &str) -> Result<Vec<LayerRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT l.chain, l.parent, l.diff_id, l.size FROM image_layers il
                 JOIN layers l ON l.chain = il.chain WHERE il.image = ?1 ORDER BY il.position",
            )
            .map_err(self.err(format!("read layers of image {id}")))?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(LayerRow {
                    chain: r.get(0)?,
                    parent: r.get(1)?,
                    diff_id: r.get(2)?,
                    size: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(self.err(format!("read layers of image {id}")))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.err(format!("read layers of image {id}")))
    }

    /// The blobs an image keeps.
    pub fn image_blobs(&self, id: &str) -> Result<Vec<String>> {
        self.strings("SELECT digest FROM image_blobs WHERE image = ?1 ORDER BY digest", [id])
    }

    /// Every blob some image keeps.
    pub fn kept_blobs(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .strings("SELECT DISTINCT digest FROM image_blobs", [])?
            .into_iter()
            .collect())
    }

    /// Every chain ID some image uses.
    pub fn kept_chains(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .strings("SELECT DISTINCT chain FROM image_layers", [])?
            .into_iter()
            .collect())
    }

    /// Drops layer rows no image uses; returns their chain IDs.
    pub fn remove_unused_layers(&self) -> Result<Vec<String>> {
        let unused = self.strings(
            "SELECT chain FROM layers WHERE chain NOT IN (SELECT chain FROM image_layers)",
            [],
        )?;
        self.conn
            .execute(
                "DELETE FROM layers WHERE chain NOT IN (SELECT chain FROM image_layers)",
                [],
            )
            .map_err(self.err("remove unused layers"))?;
        Ok(unused)
    }

    /// The layer `chain`, if recorded.
    pub fn layer(&self, chain: &str) -> Result<Option<LayerRow>> {
        self.conn
            .query_row(
                "SELECT chain, parent, diff_id, size FROM layers WHERE chain = ?1",
                [chain],
                |r| {
                    Ok(LayerRow {
                        chain: r.get(0)?,
                        parent: r.get(1)?,
                        diff_id: r.get(2)?,
                        size: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .optional()
            .map_err(self.err(format!("read layer {chain}")))
    }

    /// Records that `holder` uses `image` (a container, say): the image cannot be removed
    /// without force while held.
    pub fn add_ref(&self, image: &str, holder: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO image_refs (image, holder) VALUES (?1, ?2)",
                params![image, holder],
            )
            .map(drop)
            .map_err(self.err(format!("reference image {image} from {holder}")))
    }

    /// Drops `holder`'s references.
    pub fn remove_refs(&self, holder: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM image_refs WHERE holder = ?1", [holder])
            .map(drop)
            .map_err(self.err(format!("drop references of {holder}")))
    }

    /// Who holds the image.
    pub fn refs(&self, image: &str) -> Result<Vec<String>> {
        self.strings(
            "SELECT holder FROM image_refs WHERE image = ?1 ORDER BY holder",
            [image],
        )
    }

    /// Every image a holder references, with the number of holders.
    pub fn ref_counts(&self) -> Result<std::collections::HashMap<String, u64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT image, COUNT(*) FROM image_refs GROUP BY image")
            .map_err(self.err("count image references"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .map_err(self.err("count image references"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.err("count image references"))
    }

    fn strings(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(sql).map_err(self.err(sql.to_owned()))?;
        let rows = stmt.query_map(p, |r| r.get(0)).map_err(self.err(sql.to_owned()))?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err(sql.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, chains: &[&str]) -> NewImage {
        let mut parent = None;
        let layers = chains
            .iter()
            .map(|c| {
                let l = LayerRow {
                    chain: c.to_string(),
                    parent: parent.clone(),
                    diff_id: format!("diff-{c}"),
                    size: 10,
                };
                parent = Some(c.to_string());
                l
            })
            .collect();
        NewImage {
            image: ImageRow {
                id: id.into(),
                manifest: format!("m-{id}"),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                created: None,
                size: 10 * chains.len() as u64,
                added: 1,
                top: chains.last().map(|c| c.to_string()),
            },
            layers,
            blobs: vec![format!("m-{id}"), id.into()],
            names: vec![(format!("docker.io/library/{id}:latest"), true)],
        }
    }

    #[test]
    fn records_names_layers_and_blobs_and_removes_them_together() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("berth.db")).unwrap();
        db.add_image(&image("sha256:aa", &["c1", "c2"])).unwrap();
        db.add_image(&image("sha256:bb", &["c1", "c3"])).unwrap();
        assert_eq!(db.images().unwrap().len(), 2);
        assert_eq!(
            db.image_by_name("docker.io/library/sha256:aa:latest")
                .unwrap()
                .as_deref(),
            Some("sha256:aa")
        );
        let layers: Vec<_> = db
            .image_layers("sha256:bb")
            .unwrap()
            .into_iter()
            .map(|l| l.chain)
            .collect();
        assert_eq!(layers, ["c1", "c3"]);
        assert_eq!(db.images_by_prefix("a").unwrap(), ["sha256:aa"]);
        db.remove_image("sha256:aa").unwrap();
        assert!(db.image("sha256:aa").unwrap().is_none());
        assert_eq!(db.names().unwrap().len(), 1);
        let kept = db.kept_chains().unwrap();
        assert!(kept.contains("c1") && kept.contains("c3") && !kept.contains("c2"));
        assert_eq!(db.remove_unused_layers().unwrap(), ["c2"]);
        assert!(!db.kept_blobs().unwrap().contains("m-sha256:aa"));
    }

    #[test]
    fn a_tag_moves_to_the_newer_image_and_reopen_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        {
            let mut db = Db::open(&path).unwrap();
            let mut a = image("sha256:aa", &["c1"]);
            a.names = vec![("r/x:latest".into(), true)];
            db.add_image(&a).unwrap();
            let mut b = image("sha256:bb", &["c2"]);
            b.names = vec![("r/x:latest".into(), true)];
            db.add_image(&b).unwrap();
            db.add_ref("sha256:bb", "container:1").unwrap();
        }
        let db = Db::open(&path).unwrap();
        assert_eq!(db.image_by_name("r/x:latest").unwrap().as_deref(), Some("sha256:bb"));
        assert_eq!(db.refs("sha256:bb").unwrap(), ["container:1"]);
        assert_eq!(db.ref_counts().unwrap().get("sha256:bb"), Some(&1));
    }

    #[test]
    fn a_referenced_image_cannot_be_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("berth.db")).unwrap();
        db.add_image(&image("sha256:aa", &["c1"])).unwrap();
        db.add_ref("sha256:aa", "container:1").unwrap();
        let err = db.remove_image("sha256:aa").unwrap_err();
        assert!(err.to_string().contains("remove image sha256:aa"), "{err}");
        db.remove_refs("container:1").unwrap();
        db.remove_image("sha256:aa").unwrap();
    }

    #[test]
    fn a_newer_schema_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        drop(Db::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE schema_versions SET version = 99 WHERE component = 'images'", [])
            .unwrap();
        let err = Db::open(&path).unwrap_err();
        assert!(err.to_string().contains("version 99 is newer"), "{err}");
    }
}
