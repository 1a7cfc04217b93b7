//! Snapshot records: one small JSON file per snapshot, `<root>/snapshots/<id>/state.json`,
//! written to a temporary name and renamed. Changes take an exclusive `flock` on `<root>/lock`,
//! so processes sharing a root do not interleave. (SQLite replaces this with the engine.)

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::{Info, Kind, SnapshotError};

const STATE: &str = "state.json";
/// Prefix of a snapshot directory being removed: renamed first, so it vanishes at once.
const REMOVING: &str = "rm-";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub key: String,
    pub parent: Option<String>,
    pub kind: Kind,
    /// Seconds since the epoch.
    pub created: u64,
}

/// The records of one snapshotter root.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
}

/// Held while changing records.
pub(crate) struct Lock(#[allow(dead_code)] Flock<File>);

fn io_err(key: &str, op: &'static str, path: &Path, source: io::Error) -> SnapshotError {
    SnapshotError::Io {
        key: key.to_owned(),
        op,
        path: path.to_owned(),
        source,
    }
}

impl Store {
    pub fn open(root: &Path) -> Result<Store, SnapshotError> {
        let snapshots = root.join("snapshots");
        fs::create_dir_all(&snapshots).map_err(|e| io_err("", "create", &snapshots, e))?;
        // Snapshots hold setuid binaries and device nodes of images: no
        // other host user may walk into them (CVE-2021-41091 class).
        fs::set_permissions(&snapshots, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| io_err("", "restrict permissions of", &snapshots, e))?;
        Ok(Store { root: root.to_owned() })
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(id)
    }

    pub fn lock(&self) -> Result<Lock, SnapshotError> {
        let path = self.root.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err("", "open", &path, e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io_err("", "lock", &path, e.into()))?;
        Ok(Lock(lock))
    }

    /// Every snapshot: (id, record).
    pub fn all(&self) -> Result<Vec<(String, Record)>, SnapshotError> {
        let dir = self.root.join("snapshots");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| io_err("", "list", &dir, e))? {
            let entry = entry.map_err(|e| io_err("", "list", &dir, e))?;
            let id = entry.file_name().to_string_lossy().into_owned();
            if id.starts_with(REMOVING) {
                continue;
            }
            let path = entry.path().join(STATE);
            let text = match fs::read(&path) {
                Ok(text) => text,
                // A snapshot whose creation did not finish: not one.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("", "read", &path, e)),
            };
            let record: Record = serde_json::from_slice(&text).map_err(|source| SnapshotError::State {
                key: id.clone(),
                path: path.clone(),
                source,
            })?;
            out.push((id, record));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub fn find(&self, key: &str) -> Result<(String, Record), SnapshotError> {
        self.all()?
            .into_iter()
            .find(|(_, r)| r.key == key)
            .ok_or_else(|| SnapshotError::NotFound { key: key.to_owned() })
    }

    /// The chain from `key` down: (id, record) of the snapshot itself, its parent, and so on.
    pub fn chain(&self, key: &str) -> Result<Vec<(String, Record)>, SnapshotError> {
        let all = self.all()?;
        let mut chain = Vec::new();
        let mut next = Some(key.to_owned());
        while let Some(key) = next {
            let found = all.iter().find(|(_, r)| r.key == key).cloned();
            let (id, record) = found.ok_or(SnapshotError::NotFound { key })?;
            next = record.parent.clone();
            chain.push((id, record));
        }
        Ok(chain)
    }

    /// Allocates a new snapshot directory, for a key not in use, and returns its id. Call with
    /// the lock held; the record is written by [`Store::write`].
    pub fn create(&self, key: &str) -> Result<String, SnapshotError> {
        let all = self.all()?;
        if all.iter().any(|(_, r)| r.key == key) {
            return Err(SnapshotError::AlreadyExists { key: key.to_owned() });
        }
        let mut n = all
            .iter()
            .filter_map(|(id, _)| id.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        loop {
            let dir = self.dir(&n.to_string());
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(n.to_string()),
                // Left by a creation that did not finish.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(io_err(key, "create", &dir, e)),
            }
        }
    }

    pub fn write(&self, id: &str, record: &Record) -> Result<(), SnapshotError> {
        let dir = self.dir(id);
        let tmp = dir.join(".state.json.tmp");
        let text = serde_json::to_vec_pretty(record).expect("a record serialises");
        let write = || -> io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&text)?;
            // Only a committed snapshot must survive a crash as recorded (layers are
            // adopted by their record); an active one lost with its record is an orphan
            // that `remove_orphans` clears, and its owner prepares it again.
            if record.kind == Kind::Committed {
                file.sync_all()?;
            }
            fs::rename(&tmp, dir.join(STATE))?;
            // The rename itself durable before the next record is written: records of a batch
            // (`commit_many`) reach the disk parent first.
            if record.kind == Kind::Committed {
                File::open(&dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| io_err(&record.key, "write", &dir.join(STATE), e))
    }

    /// Removes what crashed processes left: directories whose creation never wrote a record,
    /// and removals that did not finish. Returns the directories removed.
    pub fn remove_orphans(&self) -> Result<Vec<PathBuf>, SnapshotError> {
        let _lock = self.lock()?;
        let dir = self.root.join("snapshots");
        let mut removed = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| io_err("", "list", &dir, e))? {
            let entry = entry.map_err(|e| io_err("", "list", &dir, e))?;
            let path = entry.path();
            let orphan = entry.file_name().to_string_lossy().starts_with(REMOVING) || !path.join(STATE).exists();
            if orphan {
                fs::remove_dir_all(&path).map_err(|e| io_err("", "remove", &path, e))?;
                removed.push(path);
            }
        }
        Ok(removed)
    }

    /// Removes a snapshot's directory: renamed away first, then deleted.
    pub fn delete(&self, id: &str, key: &str) -> Result<(), SnapshotError> {
        let dir = self.dir(id);
        let gone = self.root.join("snapshots").join(format!("{REMOVING}{id}"));
        // Left by a removal that did not finish.
        let _ = fs::remove_dir_all(&gone);
        fs::rename(&dir, &gone).map_err(|e| io_err(key, "rename", &dir, e))?;
        fs::remove_dir_all(&gone).map_err(|e| io_err(key, "remove", &gone, e))
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Record {
    pub fn info(&self) -> Info {
        Info {
            key: self.key.clone(),
            parent: self.parent.clone(),
            kind: self.kind,
            created: self.created,
        }
    }
}

/// The operations both snapshotters share.
impl Store {
    /// Checks that `parent` can be a parent (exists, committed).
    pub fn check_parent(&self, parent: Option<&str>) -> Result<(), SnapshotError> {
        if let Some(parent) = parent {
            let (_, record) = self.find(parent)?;
            if record.kind != Kind::Committed {
                return Err(SnapshotError::WrongKind {
                    key: parent.to_owned(),
                    kind: record.kind,
                    expected: Kind::Committed,
                });
            }
        }
        Ok(())
    }

    pub fn commit(&self, name: &str, key: &str) -> Result<(), SnapshotError> {
        let (_, record) = self.find(key)?;
        let parent = record.parent.as_deref();
        self.commit_many(&[super::Commit { name, key, parent }], false)?
            .pop()
            .expect("one result per commit")
    }

    /// Commits each of `commits` in order, with one `syncfs` for all of them first: a
    /// snapshot's files reach the disk before the record that says it is complete, so after
    /// a power loss a committed snapshot never has empty files. A commit may name a parent
    /// other than the one its snapshot was prepared on only when `rebase` (the backend's
    /// layers do not depend on their parents'); the parent may be committed earlier in the
    /// same call. Returns one result per commit; `Err` when nothing could be done.
    pub fn commit_many(
        &self,
        commits: &[super::Commit<'_>],
        rebase: bool,
    ) -> Result<Vec<Result<(), SnapshotError>>, SnapshotError> {
        let _lock = self.lock()?;
        let all = self.all()?;
        let mut names: std::collections::HashSet<&str> = all
            .iter()
            .filter(|(_, r)| r.kind == Kind::Committed)
            .map(|(_, r)| r.key.as_str())
            .collect();
        let mut checked = Vec::with_capacity(commits.len());
        for c in commits {
            let check = || -> Result<(String, Record), SnapshotError> {
                let (id, record) = all
                    .iter()
                    .find(|(_, r)| r.key == c.key)
                    .cloned()
                    .ok_or_else(|| SnapshotError::NotFound { key: c.key.to_owned() })?;
                if record.kind != Kind::Active {
                    return Err(SnapshotError::WrongKind {
                        key: c.key.to_owned(),
                        kind: record.kind,
                        expected: Kind::Active,
                    });
                }
                if all.iter().any(|(_, r)| r.key == c.name) || names.contains(c.name) {
                    return Err(SnapshotError::AlreadyExists { key: c.name.to_owned() });
                }
                if record.parent.as_deref() != c.parent {
                    if !rebase {
                        return Err(SnapshotError::CannotRebase {
                            key: c.key.to_owned(),
                            prepared_on: record.parent.clone(),
                        });
                    }
                    if let Some(parent) = c.parent {
                        if !names.contains(parent) {
                            return Err(match all.iter().find(|(_, r)| r.key == parent) {
                                Some((_, r)) => SnapshotError::WrongKind {
                                    key: parent.to_owned(),
                                    kind: r.kind,
                                    expected: Kind::Committed,
                                },
                                None => SnapshotError::NotFound { key: parent.to_owned() },
                            });
                        }
                    }
                }
                Ok((id, record))
            };
            let result = check();
            if result.is_ok() {
                names.insert(c.name);
            }
            checked.push(result);
        }
        if let Some((Ok((id, _)), c)) = checked.iter().zip(commits).find(|(r, _)| r.is_ok()) {
            let dir = self.dir(id);
            let fd = fs::File::open(&dir).map_err(|e| io_err(c.key, "open", &dir, e))?;
            rustix::fs::syncfs(&fd).map_err(|e| io_err(c.key, "sync", &dir, e.into()))?;
        }
        // A record that could not be written takes the commits on it along: no committed
        // snapshot ever names a parent that is not.
        let mut failed: Vec<&str> = Vec::new();
        Ok(checked
            .into_iter()
            .zip(commits)
            .map(|(checked, c)| {
                let (id, mut record) = checked?;
                if let Some(parent) = c.parent.filter(|p| failed.contains(p)) {
                    failed.push(c.name);
                    return Err(SnapshotError::NotFound { key: parent.to_owned() });
                }
                record.key = c.name.to_owned();
                record.parent = c.parent.map(str::to_owned);
                record.kind = Kind::Committed;
                let written = self.write(&id, &record);
                if written.is_err() {
                    failed.push(c.name);
                }
                written
            })
            .collect())
    }

    pub fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let _lock = self.lock()?;
        let all = self.all()?;
        let (id, _) = all
            .iter()
            .find(|(_, r)| r.key == key)
            .ok_or_else(|| SnapshotError::NotFound { key: key.to_owned() })?;
        if let Some((_, child)) = all.iter().find(|(_, r)| r.parent.as_deref() == Some(key)) {
            return Err(SnapshotError::HasChildren {
                key: key.to_owned(),
                child: child.key.clone(),
            });
        }
        self.delete(id, key)
    }

    pub fn walk(&self, f: &mut dyn FnMut(&Info)) -> Result<(), SnapshotError> {
        let mut all = self.all()?;
        all.sort_by_key(|(id, _)| id.parse::<u64>().unwrap_or(u64::MAX));
        for (_, record) in all {
            f(&record.info());
        }
        Ok(())
    }

    pub fn usage(&self, key: &str) -> Result<super::Usage, SnapshotError> {
        let (id, _) = self.find(key)?;
        let fs = self.dir(&id).join("fs");
        let (size, inodes) = super::tree::usage(&fs).map_err(|e| io_err(key, "measure", &fs, e))?;
        Ok(super::Usage { size, inodes })
    }

    /// The `fs` directory of an active snapshot.
    pub fn writable_dir(&self, key: &str) -> Result<PathBuf, SnapshotError> {
        let (id, record) = self.find(key)?;
        if record.kind != Kind::Active {
            return Err(SnapshotError::WrongKind {
                key: key.to_owned(),
                kind: record.kind,
                expected: Kind::Active,
            });
        }
        Ok(self.dir(&id).join("fs"))
    }

    /// Creates the record and directories of a new snapshot; `make` fills its directory (still
    /// invisible: the record is written last). Returns the new id.
    pub fn add(
        &self,
        key: &str,
        parent: Option<&str>,
        kind: Kind,
        make: impl FnOnce(&Path) -> io::Result<()>,
    ) -> Result<String, SnapshotError> {
        let _lock = self.lock()?;
        self.check_parent(parent)?;
        let id = self.create(key)?;
        let dir = self.dir(&id);
        if let Err(e) = make(&dir) {
            let _ = fs::remove_dir_all(&dir);
            return Err(io_err(key, "populate", &dir, e));
        }
        let record = Record {
            key: key.to_owned(),
            parent: parent.map(str::to_owned),
            kind,
            created: now(),
        };
        self.write(&id, &record)?;
        Ok(id)
    }
}
