//! The content-addressed blob store: every blob under `<root>/content/blobs/sha256/<hex>`, named by
//! the sha256 digest of its bytes.
//!
//! Writes stream into `<root>/content/ingest/<key>/data` while hashing, are verified against the
//! expected digest and size, fsynced, made read-only and renamed into place, and the blob
//! directory is fsynced: a blob is either absent or whole, never half-written, even across a
//! crash. Two writers of the same blob both succeed (the second rename replaces identical bytes).
//! An ingest under a caller-chosen key survives a crash and is resumed from the partial's size
//! (the hash state is rebuilt by re-reading it), the way a registry pull resumes a download; it
//! is committed against the expected digest like containerd's `content.Writer`.

mod digest;
mod ingest;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};

use sha2::{Digest as _, Sha256};

pub use digest::{Digest, DigestError};
pub use ingest::Ingest;

use ingest::Held;

/// Result of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// An error of the content store, naming the blob, ingest or path concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error("blob {digest} not found")]
    NotFound { digest: Digest },
    #[error("blob {digest}: size {size} does not match expected {expected}")]
    SizeMismatch { digest: Digest, size: u64, expected: u64 },
    #[error("blob {expected}: content has digest {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest} is corrupt: content has digest {actual}")]
    Corrupt { digest: Digest, actual: Digest },
    #[error("ingest {ref_key:?} is in use by another writer")]
    Locked { ref_key: String },
    #[error("read content for ingest {ref_key:?}")]
    Read {
        ref_key: String,
        #[source]
        source: io::Error,
    },
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
        move |source| StoreError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// Size of the buffer blobs are streamed through.
const COPY_BUFFER: usize = 128 * 1024;

/// Distinguishes the temporary ingests of one process's anonymous writes.
static ANONYMOUS_WRITES: AtomicU64 = AtomicU64::new(0);

/// A content store rooted at a directory (`--root`), shared by every process using that root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    blobs: PathBuf,
    ingest: PathBuf,
}

impl Store {
    /// Opens the store under `root`, creating `content/blobs/sha256` and `content/ingest`.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_owned();
        let blobs = root.join("content/blobs/sha256");
        let ingest = root.join("content/ingest");
        for dir in [&blobs, &ingest] {
            fs::create_dir_all(dir).map_err(StoreError::io("create directory", dir))?;
        }
        // Image content is for the engine only: no other host user may read
        // private layers or reach into them (CVE-2021-41091 class).
        let content = root.join("content");
        fs::set_permissions(&content, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(StoreError::io("restrict permissions of", &content))?;
        Ok(Store { root, blobs, ingest })
    }

    /// The root the store was opened with.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// Whether the blob `digest` is in the store.
    pub fn has(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens the blob `digest` for reading. The file stays readable even if the blob is deleted
    /// meanwhile.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| self.not_found_or(digest, "open blob", &path, e))
    }

    /// The size in bytes of the blob `digest`.
    pub fn info(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        let meta = fs::metadata(&path).map_err(|e| self.not_found_or(digest, "stat blob", &path, e))?;
        Ok(meta.len())
    }

    /// Reads the blob `digest` back and checks its content against its name; returns its size.
    pub fn verify(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        let mut file = self.open_blob(digest)?;
        let (actual, size) = hash_reader(&mut file).map_err(StoreError::io("read blob", &path))?;
        if actual != *digest {
            return Err(StoreError::Corrupt {
                digest: digest.clone(),
                actual,
            });
        }
        Ok(size)
    }

    /// Removes the blob `digest`. Readers that already opened it keep their file.
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        fs::remove_file(&path).map_err(|e| self.not_found_or(digest, "remove blob", &path, e))
    }

    /// Every blob in the store with its size, sorted by digest. Files whose name is not a sha256
    /// digest are skipped.
    pub fn list(&self) -> Result<Vec<(Digest, u64)>> {
        let entries = fs::read_dir(&self.blobs).map_err(StoreError::io("read directory", &self.blobs))?;
        let mut blobs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(StoreError::io("read directory", &self.blobs))?;
            let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|hex| Digest::parse(&format!("sha256:{hex}")).ok())
            else {
                continue;
            };
            match entry.metadata() {
                Ok(meta) if meta.is_file() => blobs.push((digest, meta.len())),
                Ok(_) => {}
                // Deleted since the directory was read.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("stat blob", &entry.path())(e)),
            }
        }
        blobs.sort();
        Ok(blobs)
    }

    /// Streams `reader` into a new blob and returns its digest and size.
    ///
    /// With `expected`, the content must have that digest and size: the copy stops as soon as it
    /// exceeds the size, and on any mismatch or error nothing is left behind. When the expected
    /// blob is already present, `reader` is not read at all.
    pub fn write_blob(&self, expected: Option<(&Digest, u64)>, mut reader: impl Read) -> Result<(Digest, u64)> {
        if let Some((digest, size)) = expected {
            if self.info(digest).ok() == Some(size) {
                return Ok((digest.clone(), size));
            }
        }
        let key = format!(
            "write-{}-{}",
            std::process::id(),
            ANONYMOUS_WRITES.fetch_add(1, Ordering::Relaxed)
        );
        let mut ingest = self.ingest(&key)?;
        // A key left by a crashed process with the same pid: start over.
        ingest.reset()?;
        match copy_into(&mut ingest, &mut reader, expected) {
            Ok(()) => ingest.commit(expected),
            Err(e) => {
                // The copy's error is the one to report; removal failing leaves only an orphan.
                let _ = ingest.abort();
                Err(e)
            }
        }
    }

    /// Opens (or resumes) the ingest `ref_key`, locked against other writers of the same key in
    /// any process. Its [`Ingest::offset`] says how much a previous writer left; write the rest
    /// and [`Ingest::commit`].
    /// Fails with [`StoreError::Locked`] while another writer holds the key; see
    /// [`Store::ingest_wait`] to wait for it instead.
    pub fn ingest(&self, ref_key: &str) -> Result<Ingest> {
        Ingest::open(self, ref_key, Held::Fail)
    }

    /// [`Store::ingest`], waiting while another writer (in any process) holds the key instead
    /// of failing: the second puller of a blob waits for the first. When it returns, the
    /// previous holder committed, aborted, or left a partial (it crashed or gave up): check
    /// [`Store::has`] for the blob first (and [`Ingest::abort`] this ingest if it is there),
    /// else write from [`Ingest::offset`]. Blocks without a timeout: the holder's process
    /// ending releases the lock.
    pub fn ingest_wait(&self, ref_key: &str) -> Result<Ingest> {
        Ingest::open(self, ref_key, Held::Wait)
    }

    /// Removes every ingest no writer holds (partial downloads of crashed or finished
    /// processes); returns their keys. Ingests in use are left alone.
    pub fn abort_stale_ingests(&self) -> Result<Vec<String>> {
        let entries = fs::read_dir(&self.ingest).map_err(StoreError::io("read directory", &self.ingest))?;
        let mut removed = Vec::new();
        for entry in entries {
            let entry = entry.map_err(StoreError::io("read directory", &self.ingest))?;
            let dir = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            // The key names the directory: a key file that does not (a writer killed while
            // writing it) is as good as none.
            let key = match fs::read_to_string(dir.join("ref")) {
                Ok(key) => Some(key).filter(|k| Digest::of(k.as_bytes()).hex() == name),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(StoreError::io("read", &dir.join("ref"))(e)),
            };
            match key {
                Some(key) => match self.abort_ingest(&key) {
                    // Listed when it went (a writer that took the key meanwhile keeps it).
                    Ok(()) if !dir.exists() => removed.push(key),
                    Ok(()) | Err(StoreError::Locked { .. }) => {}
                    Err(e) => return Err(e),
                },
                // Made by a writer that died before naming it, or being removed right now.
                None => {
                    let unheld = match File::open(dir.join("data")) {
                        Ok(data) => Flock::lock(data, FlockArg::LockExclusiveNonblock).is_ok(),
                        Err(_) => true,
                    };
                    if unheld {
                        match fs::remove_dir_all(&dir) {
                            Ok(()) => removed.push(name),
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => return Err(StoreError::io("remove", &dir)(e)),
                        }
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Removes the ingest `ref_key` and its partial data, if any.
    pub fn abort_ingest(&self, ref_key: &str) -> Result<()> {
        match Ingest::open_existing(self, ref_key)? {
            Some(ingest) => ingest.abort(),
            // No partial, but perhaps the key file of a writer that died between renaming its
            // partial into a blob and removing its bookkeeping.
            None => {
                Ingest::remove_orphan_bookkeeping(self, ref_key);
                Ok(())
            }
        }
    }

    fn not_found_or(&self, digest: &Digest, action: &'static str, path: &Path, e: io::Error) -> StoreError {
        if e.kind() == io::ErrorKind::NotFound {
            StoreError::NotFound { digest: digest.clone() }
        } else {
            StoreError::io(action, path)(e)
        }
    }

    fn ingest_root(&self) -> &Path {
        &self.ingest
    }

    fn blobs_dir(&self) -> &Path {
        &self.blobs
    }
}

/// Copies `reader` into `ingest`, failing as soon as more than the expected size arrived.
fn copy_into(ingest: &mut Ingest, reader: &mut impl Read, expected: Option<(&Digest, u64)>) -> Result<()> {
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(StoreError::Read {
                    ref_key: ingest.ref_key().to_owned(),
                    source,
                })
            }
        };
        ingest
            .write_all(&buf[..n])
            .map_err(StoreError::io("write", ingest.data_path()))?;
        if let Some((digest, size)) = expected {
            if ingest.offset() > size {
                return Err(StoreError::SizeMismatch {
                    digest: digest.clone(),
                    size: ingest.offset(),
                    expected: size,
                });
            }
        }
    }
}

/// The digest and length of everything `reader` yields.
fn hash_reader(reader: &mut impl Read) -> io::Result<(Digest, u64)> {
    let mut hasher = Sha256::new();
    let size = hash_into(reader, &mut hasher)?;
    Ok((Digest::from_sha256(hasher.finalize().into()), size))
}

/// Feeds everything `reader` yields to `hasher`; returns the number of bytes.
fn hash_into(reader: &mut impl Read, hasher: &mut Sha256) -> io::Result<u64> {
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(size),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

#[cfg(test)]
mod tests;
