use std::io::{Cursor, Read, Write};
use std::sync::{Arc, Barrier};

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;

use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// Everything left under `content/ingest`.
fn ingest_leftovers(store: &Store) -> Vec<PathBuf> {
    fs::read_dir(store.ingest_root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn open_makes_the_layout() {
    let (dir, store) = store();
    assert!(dir.path().join("content/blobs/sha256").is_dir());
    assert!(dir.path().join("content/ingest").is_dir());
    assert_eq!(store.root(), dir.path());
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn round_trip() {
    let (dir, store) = store();
    let bytes = content(300 * 1024);
    let digest = Digest::of(&bytes);
    assert!(!store.has(&digest));
    let written = store
        .write_blob(Some((&digest, bytes.len() as u64)), Cursor::new(&bytes))
        .unwrap();
    assert_eq!(written, (digest.clone(), bytes.len() as u64));
    assert!(store.has(&digest));
    assert_eq!(
        store.blob_path(&digest),
        dir.path().join("content/blobs/sha256").join(digest.hex())
    );
    let mut back = Vec::new();
    store.open_blob(&digest).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, bytes);
    assert_eq!(store.info(&digest).unwrap(), bytes.len() as u64);
    assert_eq!(store.verify(&digest).unwrap(), bytes.len() as u64);
    let mode = fs::metadata(store.blob_path(&digest)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444);
    assert!(ingest_leftovers(&store).is_empty());

    // Without an expectation the digest is computed.
    let other = store.write_blob(None, &b"hello"[..]).unwrap();
    assert_eq!(other, (Digest::of(b"hello"), 5));
    let mut listed = vec![(digest.clone(), bytes.len() as u64), other.clone()];
    listed.sort();
    assert_eq!(store.list().unwrap(), listed);

    store.delete(&digest).unwrap();
    assert!(!store.has(&digest));
    assert!(matches!(store.delete(&digest), Err(StoreError::NotFound { .. })));
    assert_eq!(store.list().unwrap(), vec![other]);
}

#[test]
fn missing_blob_is_not_found_by_name() {
    let (_dir, store) = store();
    let digest = Digest::of(b"absent");
    let err = store.open_blob(&digest).unwrap_err();
    assert_eq!(err.to_string(), format!("blob {digest} not found"));
    assert!(matches!(store.info(&digest), Err(StoreError::NotFound { .. })));
    assert!(matches!(store.verify(&digest), Err(StoreError::NotFound { .. })));
}

#[test]
fn digest_mismatch_leaves_nothing() {
    let (_dir, store) = store();
    let wanted = Digest::of(b"right");
    let err = store.write_blob(Some((&wanted, 5)), &b"wrong"[..]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("blob {wanted}: content has digest {}", Digest::of(b"wrong"))
    );
    assert!(store.list().unwrap().is_empty());
    assert!(ingest_leftovers(&store).is_empty());
}

#[test]
fn size_mismatch_leaves_nothing() {
    let (_dir, store) = store();
    let bytes = b"0123456789";
    let digest = Digest::of(bytes);
    let short = store.write_blob(Some((&digest, 12)), &bytes[..]).unwrap_err();
    assert_eq!(
        short.to_string(),
        format!("blob {digest}: size 10 does not match expected 12")
    );
    // Too long: stopped as soon as it passes the expected size.
    let long = store.write_blob(Some((&digest, 4)), &bytes[..]).unwrap_err();
    assert!(matches!(long, StoreError::SizeMismatch { expected: 4, .. }), "{long}");
    assert!(store.list().unwrap().is_empty());
    assert!(ingest_leftovers(&store).is_empty());
}

/// A reader that fails after yielding some bytes, like a dropped connection.
struct FailingReader(usize);

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        }
        let n = self.0.min(buf.len());
        buf[..n].fill(b'x');
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn reader_error_leaves_nothing() {
    let (_dir, store) = store();
    let err = store.write_blob(None, FailingReader(1000)).unwrap_err();
    assert!(matches!(err, StoreError::Read { .. }), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert!(ingest_leftovers(&store).is_empty());
}

#[test]
fn present_blob_is_not_read_again() {
    let (_dir, store) = store();
    let (digest, size) = store.write_blob(None, &b"data"[..]).unwrap();
    // The reader would fail if it were read.
    assert_eq!(
        store.write_blob(Some((&digest, size)), FailingReader(0)).unwrap(),
        (digest, size)
    );
}

#[test]
fn ingest_resumes_after_a_crash() {
    let (_dir, store) = store();
    let bytes = content(200_000);
    let digest = Digest::of(&bytes);
    let half = bytes.len() / 2;
    {
        let mut ingest = store.ingest("pull docker.io/library/busybox layer 1").unwrap();
        assert_eq!(ingest.offset(), 0);
        ingest.write_all(&bytes[..half]).unwrap();
        ingest.sync().unwrap();
        // Nothing of it is visible as a blob.
        assert!(store.list().unwrap().is_empty());
        // Dropped without commit: the process died.
    }
    assert!(!store.has(&digest));
    let mut ingest = store.ingest("pull docker.io/library/busybox layer 1").unwrap();
    assert_eq!(ingest.offset(), half as u64);
    ingest.write_all(&bytes[ingest.offset() as usize..]).unwrap();
    assert_eq!(
        ingest.commit(Some((&digest, bytes.len() as u64))).unwrap(),
        (digest.clone(), bytes.len() as u64)
    );
    assert_eq!(store.verify(&digest).unwrap(), bytes.len() as u64);
    assert!(ingest_leftovers(&store).is_empty());
    // The key is free again and starts from nothing.
    assert_eq!(
        store.ingest("pull docker.io/library/busybox layer 1").unwrap().offset(),
        0
    );
}

#[test]
fn ingest_key_is_locked_while_held() {
    let (_dir, store) = store();
    let mut held = store.ingest("k").unwrap();
    held.write_all(b"abc").unwrap();
    let err = store.ingest("k").unwrap_err();
    assert_eq!(err.to_string(), "ingest \"k\" is in use by another writer");
    assert!(store.ingest("other key").is_ok());
    drop(held);
    assert_eq!(store.ingest("k").unwrap().offset(), 3);
}

/// Two pullers of one blob: the second waits for the first instead of failing, then finds the
/// blob committed; a holder that gives up leaves its partial to the waiter.
#[test]
fn ingest_wait_waits_for_the_holder() {
    let (_dir, store) = store();
    let bytes = content(64 * 1024);
    let digest = Digest::of(&bytes);
    let (tx, rx) = std::sync::mpsc::channel();
    let first = {
        let (store, bytes, digest) = (store.clone(), bytes.clone(), digest.clone());
        std::thread::spawn(move || {
            let mut ingest = store.ingest("fetch-blob").unwrap();
            ingest.write_all(&bytes[..1000]).unwrap();
            tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            ingest.write_all(&bytes[1000..]).unwrap();
            ingest.commit(Some((&digest, bytes.len() as u64))).unwrap();
        })
    };
    rx.recv().unwrap();
    assert!(matches!(store.ingest("fetch-blob"), Err(StoreError::Locked { .. })));
    let second = store.ingest_wait("fetch-blob").unwrap();
    assert!(store.has(&digest), "ingest_wait returned before the holder committed");
    assert_eq!(second.offset(), 0);
    second.abort().unwrap();
    first.join().unwrap();
    assert!(ingest_leftovers(&store).is_empty());

    // A holder that drops its ingest (a failed download) hands the partial to the waiter.
    let (tx, rx) = std::sync::mpsc::channel();
    let first = {
        let store = store.clone();
        std::thread::spawn(move || {
            let mut ingest = store.ingest("fetch-other").unwrap();
            ingest.write_all(b"abc").unwrap();
            tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
        })
    };
    rx.recv().unwrap();
    let resumed = store.ingest_wait("fetch-other").unwrap();
    assert_eq!(resumed.offset(), 3);
    resumed.abort().unwrap();
    first.join().unwrap();

    // Many pullers at once, each as a pull does it: wait, then fetch unless the blob is there.
    let bytes = Arc::new(content(256 * 1024));
    let digest = Digest::of(&bytes);
    let barrier = Arc::new(Barrier::new(6));
    let pullers: Vec<_> = (0..6)
        .map(|_| {
            let (store, bytes, digest, barrier) = (store.clone(), bytes.clone(), digest.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut ingest = store.ingest_wait("fetch-many").unwrap();
                if store.has(&digest) {
                    return ingest.abort().map(|()| false);
                }
                ingest.reset()?;
                ingest.write_all(&bytes).unwrap();
                ingest.commit(Some((&digest, bytes.len() as u64))).map(|_| true)
            })
        })
        .collect();
    let fetched = pullers
        .into_iter()
        .map(|p| p.join().unwrap().unwrap())
        .filter(|f| *f)
        .count();
    assert_eq!(fetched, 1, "one puller fetches, the others wait and find the blob");
    assert_eq!(store.verify(&digest).unwrap(), bytes.len() as u64);
    assert!(ingest_leftovers(&store).is_empty());
}

#[test]
fn ingest_reset_and_abort() {
    let (_dir, store) = store();
    let mut ingest = store.ingest("k").unwrap();
    ingest.write_all(b"garbage").unwrap();
    ingest.reset().unwrap();
    assert_eq!(ingest.offset(), 0);
    ingest.write_all(b"good").unwrap();
    assert_eq!(ingest.commit(None).unwrap(), (Digest::of(b"good"), 4));

    let mut ingest = store.ingest("k2").unwrap();
    ingest.write_all(b"partial").unwrap();
    drop(ingest);
    store.abort_ingest("k2").unwrap();
    assert!(ingest_leftovers(&store).is_empty());
    store.abort_ingest("never opened").unwrap();
}

#[test]
fn ingest_commit_mismatch_removes_the_partial() {
    let (_dir, store) = store();
    let mut ingest = store.ingest("k").unwrap();
    ingest.write_all(b"wrong").unwrap();
    let wanted = Digest::of(b"right");
    assert!(matches!(
        ingest.commit(Some((&wanted, 5))),
        Err(StoreError::DigestMismatch { .. })
    ));
    assert!(ingest_leftovers(&store).is_empty());
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn concurrent_writers_of_the_same_blob_all_succeed() {
    let (_dir, store) = store();
    let bytes = Arc::new(content(1024 * 1024));
    let digest = Digest::of(&bytes);
    let size = bytes.len() as u64;
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (store, bytes, digest, barrier) = (store.clone(), bytes.clone(), digest.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                // Half with an expectation, half without, so none short-cuts on the other.
                let expected = (i % 2 == 0).then_some((&digest, size));
                store.write_blob(expected, Cursor::new(&bytes[..]))
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap().unwrap(), (digest.clone(), size));
    }
    assert_eq!(store.list().unwrap(), vec![(digest.clone(), size)]);
    assert_eq!(store.verify(&digest).unwrap(), size);
    assert!(ingest_leftovers(&store).is_empty());
}

#[test]
fn verify_detects_a_corrupted_blob() {
    let (_dir, store) = store();
    let (digest, _) = store.write_blob(None, &b"precious bytes"[..]).unwrap();
    let path = store.blob_path(&digest);
    fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
    fs::write(&path, b"precious bytez").unwrap();
    let err = store.verify(&digest).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "blob {digest} is corrupt: content has digest {}",
            Digest::of(b"precious bytez")
        )
    );
}

#[test]
fn list_skips_foreign_files() {
    let (_dir, store) = store();
    fs::write(store.blobs_dir().join("not-a-digest"), b"x").unwrap();
    let (digest, size) = store.write_blob(None, &b"x"[..]).unwrap();
    assert_eq!(store.list().unwrap(), vec![(digest, size)]);
}

#[test]
fn stale_ingests_are_removed_and_held_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut stale = store.ingest("stale").unwrap();
    stale.write_all(b"partial").unwrap();
    drop(stale);
    let mut held = store.ingest("held").unwrap();
    held.write_all(b"in progress").unwrap();
    assert_eq!(store.abort_stale_ingests().unwrap(), ["stale"]);
    assert_eq!(store.ingest("stale").unwrap().offset(), 0);
    assert_eq!(held.offset(), 11);
    drop(held);
    assert_eq!(store.abort_stale_ingests().unwrap().len(), 2);

    // A writer killed after renaming its partial into the blob, before removing its key file.
    let mut done = store.ingest("done").unwrap();
    done.write_all(b"whole").unwrap();
    let key_file = done.data_path().with_file_name("ref");
    let kept = fs::read(&key_file).unwrap();
    done.commit(None).unwrap();
    fs::create_dir(key_file.parent().unwrap()).unwrap();
    fs::write(&key_file, kept).unwrap();
    assert_eq!(store.abort_stale_ingests().unwrap(), ["done"]);
    assert_eq!(fs::read_dir(store.ingest_root()).unwrap().count(), 0);

    // A writer killed while writing its key file: empty, next to its partial.
    let mut cut = store.ingest("cut").unwrap();
    cut.write_all(b"part").unwrap();
    let dir = cut.data_path().parent().unwrap().to_owned();
    drop(cut);
    fs::write(dir.join("ref"), b"").unwrap();
    assert_eq!(
        store.abort_stale_ingests().unwrap(),
        [dir.file_name().unwrap().to_str().unwrap()]
    );
    assert!(!dir.exists());
}
