//! The overlay snapshotter: each snapshot holds only its own changes; a chain is stacked by
//! overlayfs at mount time.
//!
//! Layout: `<root>/snapshots/<id>/fs` (the layer's tree, an overlay upper or lower directory)
//! and `<root>/snapshots/<id>/work` (overlay's work directory, active snapshots only).
//! Mounts:
//!
//! - active without a parent: a writable bind of its `fs`;
//! - active on a parent: `overlay` with `upperdir=<fs>,workdir=<work>,lowerdir=<parent>:<grandparent>:…`;
//! - view of one snapshot: a read-only bind of its `fs`; of a longer chain: a read-only
//!   `overlay` with `lowerdir=` alone.
//!
//! The options name every layer by absolute path: a long chain passes the page mount(2)
//! takes, and [`Mount::mount_at`] mounts it relative to `<root>/snapshots/`.
//!
//! Whiteouts are written in overlay's form, with the xattr namespace chosen by
//! [`OverlayXattrs`]: `User` adds the `userxattr` mount option.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::state::Store;
use super::{Commit, DiffSource, Info, Kind, Mount, SnapshotError, Snapshotter, Usage};
use crate::layer::{OverlayXattrs, Whiteouts};

/// Overlayfs snapshots under `<root>/snapshots/<id>/{fs,work}`.
#[derive(Debug, Clone)]
pub struct Overlay {
    store: Store,
    xattrs: OverlayXattrs,
}

impl Overlay {
    pub fn new(root: &Path, xattrs: OverlayXattrs) -> Result<Overlay, SnapshotError> {
        // lowerdir=a:b and the option list itself are split on ':' and ','.
        if root
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .any(|b| matches!(b, b',' | b':' | b'\\'))
        {
            return Err(SnapshotError::UnusableRoot { root: root.to_owned() });
        }
        Ok(Overlay {
            store: Store::open(root)?,
            xattrs,
        })
    }

    /// Whether overlay snapshots work under `root`: mounts a small overlay (with the options
    /// these snapshots would use) on a temporary directory there, checks it, and unmounts it.
    /// Needs root (or a user namespace's root with `User` xattrs).
    pub fn supported(root: &Path, xattrs: OverlayXattrs) -> bool {
        let Ok(()) = fs::create_dir_all(root) else { return false };
        remove_dead_probes(root);
        let prefix = format!("{PROBE}{}-", std::process::id());
        let Ok(probe) = tempfile::Builder::new().prefix(&prefix).tempdir_in(root) else {
            return false;
        };
        let dir = |name: &str| probe.path().join(name);
        let made = ["lower", "upper", "work", "merged"]
            .iter()
            .all(|d| fs::create_dir(dir(d)).is_ok())
            && fs::write(dir("lower").join("file"), b"x").is_ok()
            && rustix::fs::setxattr(dir("upper"), xattrs.opaque(), b"y", rustix::fs::XattrFlags::empty()).is_ok();
        if !made {
            return false;
        }
        let mut options = format!(
            "lowerdir={},upperdir={},workdir={}",
            dir("lower").display(),
            dir("upper").display(),
            dir("work").display()
        );
        if xattrs == OverlayXattrs::User {
            options.push_str(",userxattr");
        }
        let merged = dir("merged");
        // In a mount namespace of a thread of its own where it can have one:
        // a process killed before the unmount (every berth command probes)
        // leaves no mount behind; the namespace goes with the thread.
        std::thread::scope(|s| {
            s.spawn(|| {
                let _private = super::private_mount_namespace();
                if mount(
                    Some("overlay"),
                    &merged,
                    Some("overlay"),
                    MsFlags::empty(),
                    Some(options.as_str()),
                )
                .is_err()
                {
                    return false;
                }
                let works = fs::read(merged.join("file")).is_ok_and(|b| b == b"x");
                let unmounted = umount2(&merged, MntFlags::MNT_DETACH).is_ok();
                works && unmounted
            })
            .join()
            .unwrap_or(false)
        })
    }

    fn fs_dir(&self, id: &str) -> PathBuf {
        self.store.dir(id).join("fs")
    }

    fn create(&self, key: &str, parent: Option<&str>, kind: Kind) -> Result<Vec<Mount>, SnapshotError> {
        self.store.add(key, parent, kind, |dir| {
            fs::create_dir(dir.join("fs"))?;
            if kind == Kind::Active {
                fs::create_dir(dir.join("work"))?;
            }
            Ok(())
        })?;
        self.mounts(key)
    }

    fn bind(source: PathBuf, rw: &str) -> Vec<Mount> {
        vec![Mount {
            kind: "bind".into(),
            source,
            options: vec!["rbind".into(), rw.into()],
        }]
    }
}

impl Snapshotter for Overlay {
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, Kind::Active)
    }

    fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>, SnapshotError> {
        self.create(key, parent, Kind::View)
    }

    fn mounts(&self, key: &str) -> Result<Vec<Mount>, SnapshotError> {
        let chain = self.store.chain(key)?;
        let (id, record) = &chain[0];
        let lowers: Vec<String> = chain[1..]
            .iter()
            .map(|(id, _)| self.fs_dir(id).display().to_string())
            .collect();
        let mut options = Vec::new();
        match record.kind {
            Kind::Committed => {
                return Err(SnapshotError::WrongKind {
                    key: key.into(),
                    kind: Kind::Committed,
                    expected: Kind::Active,
                });
            }
            Kind::Active if lowers.is_empty() => return Ok(Self::bind(self.fs_dir(id), "rw")),
            Kind::Active => {
                options.push(format!("workdir={}", self.store.dir(id).join("work").display()));
                options.push(format!("upperdir={}", self.fs_dir(id).display()));
            }
            Kind::View if lowers.is_empty() => return Ok(Self::bind(self.fs_dir(id), "ro")),
            Kind::View if lowers.len() == 1 => return Ok(Self::bind(self.fs_dir(&chain[1].0), "ro")),
            Kind::View => options.push("ro".into()),
        }
        options.push(format!("lowerdir={}", lowers.join(":")));
        if self.xattrs == OverlayXattrs::User {
            options.push("userxattr".into());
        }
        Ok(vec![Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options,
        }])
    }

    super::records_methods!();

    fn diff_source(&self, key: &str) -> Result<DiffSource, SnapshotError> {
        let chain = self.store.chain(key)?;
        let (id, record) = &chain[0];
        if record.kind != Kind::Active {
            return Err(SnapshotError::WrongKind {
                key: key.into(),
                kind: record.kind,
                expected: Kind::Active,
            });
        }
        Ok(DiffSource::Overlay {
            upper: self.fs_dir(id),
            lowers: chain[1..].iter().map(|(id, _)| self.fs_dir(id)).collect(),
            xattrs: self.xattrs,
        })
    }

    fn rebases(&self) -> bool {
        true
    }

    fn whiteouts(&self) -> Whiteouts {
        Whiteouts::Overlay(self.xattrs)
    }

    fn name(&self) -> &'static str {
        "overlay"
    }
}

/// The name prefix of a probe's directory, followed by the prober's pid and a dash.
const PROBE: &str = ".probe-";

/// How old a probe's directory must be before it can be taken for a dead prober's: a probe
/// takes milliseconds, and a prober in another pid namespace looks dead from here.
const PROBE_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the probe directories of processes that no longer run (killed mid-probe; the
/// mount itself went with their namespace) once they are [`PROBE_AGE`] old. Those of
/// running probers stay.
fn remove_dead_probes(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(PROBE))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok());
        let dead = pid.is_some_and(|pid| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH)
        });
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= PROBE_AGE));
        if dead && old {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod root_tests {
    use super::*;

    #[test]
    fn roots_overlay_options_cannot_carry_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["a:b", "a,b"] {
            let err = Overlay::new(&dir.path().join(bad), OverlayXattrs::Trusted)
                .err()
                .unwrap();
            assert!(matches!(err, SnapshotError::UnusableRoot { .. }), "{err}");
        }
        assert!(Overlay::new(&dir.path().join("fine"), OverlayXattrs::Trusted).is_ok());
    }

    #[test]
    fn probes_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ours = format!(".probe-{}-a", std::process::id());
        // Above any pid_max (2^22): no such process.
        let long_ago = std::time::SystemTime::now() - PROBE_AGE * 2;
        for name in [
            ours.as_str(),
            ".probe-99999999-b",
            ".probe-99999999-new",
            ".probe-x",
            "snapshots",
        ] {
            fs::create_dir_all(dir.path().join(name).join("upper")).unwrap();
            if !name.ends_with("new") {
                let d = fs::File::open(dir.path().join(name)).unwrap();
                d.set_modified(long_ago).unwrap();
            }
        }
        remove_dead_probes(dir.path());
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [ours.as_str(), ".probe-99999999-new", ".probe-x", "snapshots"]);
    }
}
