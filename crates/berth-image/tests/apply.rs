//! Well-formed layers: what `layer::apply` keeps.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;

use berth_image::layer::{self, ApplyOptions, Whiteouts};
use common::{is_root, Layer};
use tar::EntryType;

#[test]
fn pax_records_override_the_header() {
    let long = format!("{}/file", "d".repeat(200));
    let mut b = tar::Builder::new(Vec::new());
    let records: [(&str, &[u8]); 4] = [
        ("path", long.as_bytes()),
        ("mtime", b"1600000000.25"),
        ("uid", b"3000000"),
        ("gid", b"3000001"),
    ];
    b.append_pax_extensions(records).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o640);
    h.set_size(2);
    b.append_data(&mut h, "short", &b"hi"[..]).unwrap();
    let blob = b.into_inner().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let applied = layer::apply(&blob[..], dir.path(), &ApplyOptions::new("pax", Whiteouts::Apply)).unwrap();
    assert_eq!(applied.entries, 1);
    let meta = fs::metadata(dir.path().join(&long)).unwrap();
    assert_eq!((meta.mtime(), meta.mtime_nsec()), (1_600_000_000, 250_000_000));
    if is_root() {
        assert_eq!((meta.uid(), meta.gid()), (3_000_000, 3_000_001));
    }
}

#[test]
fn later_entries_replace_earlier_ones() {
    let blob = Layer::new()
        .file("x", b"file", 0o644, (0, 0))
        .dir("x", 0o755, (0, 0))
        .file("x/inner", b"i", 0o644, (0, 0))
        .dir("y", 0o755, (0, 0))
        .file("y/kept", b"k", 0o644, (0, 0))
        .dir("y", 0o711, (0, 0))
        .symlink("z", "x")
        .file("z", b"plain", 0o644, (0, 0))
        .dir("./", 0o755, (0, 0))
        .finish();
    let dir = tempfile::tempdir().unwrap();
    layer::apply(&blob[..], dir.path(), &ApplyOptions::new("replace", Whiteouts::Apply)).unwrap();
    assert_eq!(fs::read(dir.path().join("x/inner")).unwrap(), b"i");
    // A directory entry over an existing directory keeps its content and takes the new mode.
    assert_eq!(fs::read(dir.path().join("y/kept")).unwrap(), b"k");
    assert_eq!(fs::metadata(dir.path().join("y")).unwrap().mode() & 0o7777, 0o711);
    // A file over a symlink replaces the link, never writing through it.
    assert_eq!(fs::read(dir.path().join("z")).unwrap(), b"plain");
    assert!(fs::symlink_metadata(dir.path().join("z")).unwrap().is_file());
}

#[test]
fn missing_parents_are_created() {
    let blob = Layer::new().file("a/b/c", b"c", 0o644, (0, 0)).finish();
    let dir = tempfile::tempdir().unwrap();
    layer::apply(&blob[..], dir.path(), &ApplyOptions::new("parents", Whiteouts::Apply)).unwrap();
    assert_eq!(fs::read(dir.path().join("a/b/c")).unwrap(), b"c");
}

/// The OCI layer spec: whiteouts hide what lower layers have; a whiteout
/// of an entry the same layer adds leaves that entry alone.
#[test]
fn a_whiteout_never_removes_what_its_own_layer_adds() {
    let blob = Layer::new()
        .file("keep", b"k", 0o644, (0, 0))
        .dir("d", 0o755, (0, 0))
        .file("d/inner", b"i", 0o644, (0, 0))
        .file(".wh.keep", b"", 0o644, (0, 0))
        .file(".wh.d", b"", 0o644, (0, 0))
        .finish();
    let modes = if is_root() {
        vec![Whiteouts::Apply, Whiteouts::Overlay(layer::OverlayXattrs::Trusted)]
    } else {
        vec![Whiteouts::Apply]
    };
    for whiteouts in modes {
        let dir = tempfile::tempdir().unwrap();
        layer::apply(&blob[..], dir.path(), &ApplyOptions::new("self-whiteout", whiteouts)).unwrap();
        assert_eq!(fs::read(dir.path().join("keep")).unwrap(), b"k", "{whiteouts:?}");
        assert_eq!(fs::read(dir.path().join("d/inner")).unwrap(), b"i", "{whiteouts:?}");
    }
}

/// An opaque directory in the vfs (Apply) form hides every lower entry
/// under it, also inside the subdirectories the layer itself writes to,
/// even when the marker comes after them in the tar.
#[test]
fn opaque_after_entries_hides_lower_content_at_every_depth() {
    let dir = tempfile::tempdir().unwrap();
    // What lower layers left.
    fs::create_dir_all(dir.path().join("d/a")).unwrap();
    fs::write(dir.path().join("d/a/lower"), b"l").unwrap();
    fs::write(dir.path().join("d/lower"), b"l").unwrap();
    let blob = Layer::new()
        .dir("d", 0o755, (0, 0))
        .dir("d/a", 0o755, (0, 0))
        .file("d/a/b", b"b", 0o644, (0, 0))
        .opaque("d")
        .finish();
    layer::apply(
        &blob[..],
        dir.path(),
        &ApplyOptions::new("opaque-late", Whiteouts::Apply),
    )
    .unwrap();
    assert_eq!(fs::read(dir.path().join("d/a/b")).unwrap(), b"b");
    assert!(!dir.path().join("d/a/lower").exists());
    assert!(!dir.path().join("d/lower").exists());
}
