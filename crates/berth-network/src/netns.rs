//! Network namespaces kept as files, and running code inside one.
//!
//! # Design
//!
//! A container's network namespace is made before the container (so the
//! engine can plumb it while the runtime joins it by path) and outlives its
//! processes until the container is removed. It is kept alive the way
//! `ip netns` does: the namespace file of the thread that created it is
//! bind-mounted on an empty file, here `<runroot>/netns/<id>` ([`path`]).
//!
//! Namespaces belong to threads, not processes. Creating one and working
//! inside one both happen on a short-lived thread spawned for the purpose
//! (`unshare(CLONE_NEWNET)` or `setns`), so the caller's thread, and with it
//! every other thread of the engine, never changes namespace. What such a
//! thread opens stays tied to that namespace after the thread is gone: a
//! netlink socket opened in [`NetNs::run`] configures the container's
//! namespace from any thread, and a process spawned from inside the closure
//! inherits the namespace (how `nft` is run inside one).
//!
//! [`create`] also brings `lo` up, as Docker does for every container.
//! [`remove`] detaches the mount (`MNT_DETACH`: a process still inside keeps
//! the namespace alive until it leaves, nothing blocks) and deletes the file;
//! the kernel tears the namespace down, with every link still in it (the
//! container end of a veth takes its host end along), once the last
//! reference goes.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::netlink::{self, Handle, Request};

/// What can go wrong with a namespace file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating network namespace file {path}")]
    CreateFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("creating a network namespace for {path}")]
    Unshare {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("bringing up lo in network namespace {path}")]
    Loopback {
        path: PathBuf,
        #[source]
        source: netlink::Error,
    },
    #[error("bind-mounting network namespace on {path}")]
    Mount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("opening network namespace {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("entering network namespace {path}")]
    Enter {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("unmounting network namespace {path}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("removing network namespace file {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where the namespace of container `id` is kept under `runroot`.
pub fn path(runroot: &Path, id: &str) -> PathBuf {
    runroot.join("netns").join(id)
}

/// Makes a new network namespace with `lo` up and keeps it at `path`
/// (parent directories are created). Fails if `path` exists.
pub fn create(path: &Path) -> Result<(), Error> {
    let file_err = |source| Error::CreateFile {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(file_err)?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(file_err)?;
    let made = std::thread::scope(|s| s.spawn(|| make_and_mount(path)).join())
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    if made.is_err() {
        // Nothing is mounted when the mount failed or was not reached.
        let _ = fs::remove_file(path);
    }
    made
}

/// On a thread of its own: unshare, bring `lo` up, bind-mount the namespace.
fn make_and_mount(path: &Path) -> Result<(), Error> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|source| Error::Unshare {
        path: path.to_owned(),
        source,
    })?;
    Handle::open()
        .and_then(|mut nl| nl.execute(&[Request::set_up("lo")]))
        .map_err(|source| Error::Loopback {
            path: path.to_owned(),
            source,
        })?;
    mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|source| Error::Mount {
        path: path.to_owned(),
        source,
    })
}

/// Unmounts and deletes a namespace file; a missing or unmounted file is fine.
pub fn remove(path: &Path) -> Result<(), Error> {
    let remove_err = |source| Error::Remove {
        path: path.to_owned(),
        source,
    };
    let file = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(remove_err(e)),
    };
    // A mounted namespace shows nsfs's device; a plain file (a create that
    // failed half-way) shows its directory's.
    let dir = path.parent().map(fs::metadata).transpose().map_err(remove_err)?;
    if dir.is_none_or(|d| d.dev() != file.dev()) {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) => {}
            Err(source) => {
                return Err(Error::Unmount {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(remove_err(e)),
        _ => Ok(()),
    }
}

/// Runs `f` on a thread inside the namespace kept at `path`.
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> Result<T, Error> {
    NetNs::open(path)?.run(f)
}

/// An open namespace file: a reference that keeps the namespace alive while
/// open, usable as `IFLA_NET_NS_FD` and to enter it.
#[derive(Debug)]
pub struct NetNs {
    file: File,
    path: PathBuf,
}

impl NetNs {
    pub fn open(path: &Path) -> Result<NetNs, Error> {
        let file = File::open(path).map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(NetNs {
            file,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a new thread that joined this namespace; the caller's
    /// thread stays where it is. A panic in `f` is carried over.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, Error> {
        std::thread::scope(|s| {
            s.spawn(|| {
                // setns checks that the file is a network namespace (EINVAL otherwise).
                setns(&self.file, CloneFlags::CLONE_NEWNET).map_err(|source| Error::Enter {
                    path: self.path.clone(),
                    source,
                })?;
                Ok(f())
            })
            .join()
        })
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_live_under_the_runroot() {
        assert_eq!(
            path(Path::new("/run/berth"), "abc"),
            PathBuf::from("/run/berth/netns/abc")
        );
    }

    #[test]
    fn removing_what_is_not_there_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        remove(&dir.path().join("gone")).unwrap();
        // A plain file left by a create that failed before mounting.
        let half = dir.path().join("half");
        fs::write(&half, "").unwrap();
        remove(&half).unwrap();
        assert!(!half.exists());
    }

    #[test]
    fn a_plain_file_is_not_a_namespace_to_enter() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, "").unwrap();
        let err = run_in(&file, || ()).unwrap_err();
        assert!(matches!(err, Error::Enter { .. }), "{err:?}");
        assert!(run_in(&dir.path().join("missing"), || ()).is_err());
    }

    #[test]
    fn an_existing_path_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("taken");
        fs::write(&file, "keep").unwrap();
        let err = create(&file).unwrap_err();
        assert!(matches!(err, Error::CreateFile { .. }), "{err:?}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "keep");
    }
}
