//! The vfs snapshotter: every snapshot is a full copy of its parent's tree.
//!
//! Slow and space-hungry, but it needs nothing from the filesystem or the kernel beyond a bind
//! mount: the fallback where overlayfs is not available. Layers are applied with
//! [`Whiteouts::Apply`]: deletions happen in the copy.

use std::fs;
use std::path::{Path, PathBuf};

use super::state::Store;
use super::{tree, Commit, DiffSource, Info, Kind, Mount, SnapshotError, Snapshotter, Usage};
use crate::layer::Whiteouts;

/// Copying snapshots under `<root>/snapshots/<id>/fs`.
#[derive(Debug, Clone)]
pub struct Vfs {
    store: Store,
}

impl Vfs {
    pub fn new(root: &Path) -> Result<Vfs, SnapshotError> {
        Ok(Vfs {
            store: Store::open(root)?,
        })
    }

    fn create(&self, key: &str, parent: Option<&str>, kind: Kind) -> Result<Vec<Mount>, SnapshotError> {
        let parent_fs = match parent {
            Some(parent) => Some(self.store.dir(&self.store.find(parent)?.0).join("fs")),
            None => None,
        };
        self.store.add(key, parent, kind, |dir| {
            let fs_dir = dir.join("fs");
            fs::create_dir(&fs_dir)?;
            match &parent_fs {
                Some(from) => tree::copy(from, &fs_dir),
                None => Ok(()),
            }
        })?;
        self.mounts(key)
    }
}

impl Snapshotter for Vfs {
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, Kind::Active)
    }

    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, Kind::View)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        let (id, record) = self.store.find(key)?;
        let rw = if record.kind == Kind::Active { "rw" } else { "ro" };
        Ok(vec![Mount {
            kind: "bind".into(),
            source: self.store.dir(&id).join("fs"),
            options: vec!["rbind".into(), rw.into()],
        }])
    }

    super::records_methods!();

    fn diff_source(&self, key: &str) -> Result<DiffSource, SnapshotError> {
        let (id, record) = self.store.find(key)?;
        if record.kind != Kind::Active {
            return Err(SnapshotError::WrongKind {
                key: key.into(),
                kind: record.kind,
                expected: Kind::Active,
            });
        }
        let parent = match &record.parent {
            Some(parent) => Some(self.store.dir(&self.store.find(parent)?.0).join("fs")),
            None => None,
        };
        Ok(DiffSource::Copy {
            tree: self.store.dir(&id).join("fs"),
            parent,
        })
    }

    fn rebases(&self) -> bool {
        false
    }

    fn whiteouts(&self) -> Whiteouts {
        Whiteouts::Apply
    }

    fn name(&self) -> &'static str {
        "vfs"
    }
}
