//! A resumable, locked write of one blob: `<root>/content/ingest/<sha256 of key>/{ref,data}`.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest as _, Sha256};

use super::{hash_into, Digest, Result, Store, StoreError};

/// How often opening an ingest without waiting is retried when another writer renamed or
/// removed the partial between our open and our lock.
const OPEN_ATTEMPTS: usize = 4;

/// Whether opening an ingest held by another writer fails or waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    Fail,
    Wait,
}

/// A blob being written under a caller-chosen key (for a pull, typically the repository and
/// digest). Only one writer holds a key at a time, across processes (an exclusive `flock` on the
/// partial). Dropping it without committing keeps the partial for a later [`Store::ingest`] of
/// the same key to resume; [`Ingest::abort`] removes it.
#[derive(Debug)]
pub struct Ingest {
    store: Store,
    ref_key: String,
    dir: PathBuf,
    data: PathBuf,
    file: Flock<File>,
    hasher: Sha256,
    offset: u64,
}

impl Ingest {
    /// Opens or resumes the ingest `ref_key`, rehashing what a previous writer left. When
    /// another writer holds it, fails with [`StoreError::Locked`] or waits for it, by `held`.
    pub(super) fn open(store: &Store, ref_key: &str, held: Held) -> Result<Ingest> {
        let dir = store.ingest_root().join(Digest::of(ref_key.as_bytes()).hex());
        let data = dir.join("data");
        let mut attempts = 0;
        // Waiting, a retry happens only after a holder committed or aborted: every one ends.
        while held == Held::Wait || attempts < OPEN_ATTEMPTS {
            attempts += 1;
            match fs::create_dir_all(&dir) {
                Ok(()) => {}
                // The previous holder removed the directory between mkdir and its check.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io("create directory", &dir)(e)),
            }
            let file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(&data)
            {
                Ok(file) => file,
                // The previous holder committed or aborted and removed the directory just now.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("open ingest", &data)(e)),
            };
            let file = lock(file, held).map_err(|errno| match errno {
                Errno::EWOULDBLOCK => StoreError::Locked {
                    ref_key: ref_key.to_owned(),
                },
                errno => StoreError::io("lock ingest", &data)(errno.into()),
            })?;
            // The holder we waited for may have renamed the partial into a blob or removed it
            // before we locked: then our descriptor is not the partial any more.
            if !same_file(&file, &data)? {
                continue;
            }
            // Written only when missing or wrong: a resumed ingest (or a prune looking at it)
            // does not reopen the window in which a kill leaves the key file empty.
            let key_file = dir.join("ref");
            if fs::read(&key_file).ok().as_deref() != Some(ref_key.as_bytes()) {
                fs::write(&key_file, ref_key).map_err(StoreError::io("write", &key_file))?;
            }
            let mut hasher = Sha256::new();
            let offset = hash_into(&mut &*file, &mut hasher).map_err(StoreError::io("read ingest", &data))?;
            return Ok(Ingest {
                store: store.clone(),
                ref_key: ref_key.to_owned(),
                dir,
                data,
                file,
                hasher,
                offset,
            });
        }
        Err(StoreError::Locked {
            ref_key: ref_key.to_owned(),
        })
    }

    /// Opens the ingest `ref_key` if it exists.
    pub(super) fn open_existing(store: &Store, ref_key: &str) -> Result<Option<Ingest>> {
        let data = store
            .ingest_root()
            .join(Digest::of(ref_key.as_bytes()).hex())
            .join("data");
        if !data.exists() {
            return Ok(None);
        }
        Ingest::open(store, ref_key, Held::Fail).map(Some)
    }

    /// The key this ingest was opened with.
    pub fn ref_key(&self) -> &str {
        &self.ref_key
    }

    /// How many bytes are written so far: where a resumed download continues.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub(super) fn data_path(&self) -> &Path {
        &self.data
    }

    /// Throws away what was written and starts over at offset 0.
    pub fn reset(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .map_err(StoreError::io("truncate ingest", &self.data))?;
        (&*self.file)
            .seek(SeekFrom::Start(0))
            .map_err(StoreError::io("seek ingest", &self.data))?;
        self.hasher = Sha256::new();
        self.offset = 0;
        Ok(())
    }

    /// Flushes the partial to disk, so a resume after a power loss keeps it.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(StoreError::io("sync ingest", &self.data))
    }

    /// Verifies the content against `expected` (digest and size) if given, then makes it the blob
    /// of its digest: fsync, read-only, rename, fsync of the blob directory. Returns the digest
    /// and size. On a mismatch the partial can never become the expected blob, so it is removed.
    pub fn commit(self, expected: Option<(&Digest, u64)>) -> Result<(Digest, u64)> {
        let digest = Digest::from_sha256(self.hasher.clone().finalize().into());
        let size = self.offset;
        if let Some((want, want_size)) = expected {
            let mismatch = if size != want_size {
                Some(StoreError::SizeMismatch {
                    digest: want.clone(),
                    size,
                    expected: want_size,
                })
            } else if digest != *want {
                Some(StoreError::DigestMismatch {
                    expected: want.clone(),
                    actual: digest.clone(),
                })
            } else {
                None
            };
            if let Some(err) = mismatch {
                // The mismatch is what the caller needs; a failed removal leaves only an orphan.
                let _ = self.abort();
                return Err(err);
            }
        }
        self.file
            .sync_all()
            .map_err(StoreError::io("sync ingest", &self.data))?;
        let blob = self.store.blob_path(&digest);
        // Atomic: a concurrent writer of the same blob replaces identical bytes, and a reader
        // sees either no blob or the whole of one.
        fs::rename(&self.data, &blob).map_err(StoreError::io("rename ingest to", &blob))?;
        // Read-only once it is the blob (a partial left read-only by a kill before the rename
        // could not be resumed by a writer without root). A guard only: the blob is whole
        // and in place whether or not it takes.
        let _ = self.file.set_permissions(Permissions::from_mode(0o444));
        let blobs = self.store.blobs_dir();
        File::open(blobs)
            .and_then(|dir| dir.sync_all())
            .map_err(StoreError::io("sync directory", blobs))?;
        // The blob is committed; what is left is the ingest's bookkeeping, an orphan at worst.
        remove_bookkeeping(&self.dir);
        Ok((digest, size))
    }

    /// Removes the partial and the ingest's directory.
    pub fn abort(self) -> Result<()> {
        // Only our own partial: a writer that took the key after us has its own `data`.
        if same_file(&self.file, &self.data).unwrap_or(false) {
            match fs::remove_file(&self.data) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(StoreError::io("remove ingest", &self.data)(e))
                }
                _ => {}
            }
        }
        remove_bookkeeping(&self.dir);
        Ok(())
    }

    /// Removes the key file and directory of the ingest `ref_key` when it holds no partial.
    /// A writer opening the key meanwhile is unharmed: its `data` keeps the directory (rmdir
    /// fails), or its open finds the directory gone and retries, and it rewrites the key file.
    pub(super) fn remove_orphan_bookkeeping(store: &Store, ref_key: &str) {
        let dir = store.ingest_root().join(Digest::of(ref_key.as_bytes()).hex());
        if !dir.join("data").exists() {
            remove_bookkeeping(&dir);
        }
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (&*self.file).write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Removes an ingest directory's key file and the directory, unless a new writer of the same key
/// has put its partial there meanwhile (then rmdir fails, harmlessly).
fn remove_bookkeeping(dir: &Path) {
    let _ = fs::remove_file(dir.join("ref"));
    let _ = fs::remove_dir(dir);
}

/// Takes the exclusive lock on `file`: at once or `EWOULDBLOCK` (`Held::Fail`), or waiting for
/// the holder (`Held::Wait`, through signals).
fn lock(mut file: File, held: Held) -> std::result::Result<Flock<File>, Errno> {
    let arg = match held {
        Held::Fail => FlockArg::LockExclusiveNonblock,
        Held::Wait => FlockArg::LockExclusive,
    };
    loop {
        match Flock::lock(file, arg) {
            Ok(locked) => return Ok(locked),
            Err((back, Errno::EINTR)) => file = back,
            Err((_, errno)) => return Err(errno),
        }
    }
}

/// Whether `path` still names the open `file`.
fn same_file(file: &File, path: &Path) -> Result<bool> {
    let open = file.metadata().map_err(StoreError::io("stat ingest", path))?;
    match fs::metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io("stat ingest", path)(e)),
    }
}
