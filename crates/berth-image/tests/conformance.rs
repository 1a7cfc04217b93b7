//! One suite, every snapshotter: three layers imported with prepare/apply/commit, the chain
//! mounted for real and checked from the merged view, then everything removed.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use berth_image::layer::{ApplyOptions, OverlayXattrs, Whiteouts};
use berth_image::snapshot::mount::MountData;
use berth_image::snapshot::{self, Commit, Kind, Overlay, SnapshotError, Snapshotter, Vfs};
use common::{gzip, is_root, mount_all, mounted, sha256, zstd, Layer};

const LONG: &str = "a-directory-with-a-name-well-past-the-hundred-bytes-of-an-old-tar-header/and-a-file-inside-it-that-makes-it-longer";

fn layers() -> [Vec<u8>; 3] {
    let one = Layer::new()
        .dir("etc", 0o755, (0, 0))
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644, (0, 0))
        .dir("bin", 0o755, (0, 0))
        .file("bin/tool", b"#!/bin/sh\n", 0o4755, (1000, 1000))
        .hardlink("bin/tool-link", "bin/tool")
        .dir("data", 0o750, (0, 0))
        .file("data/old-1", b"old", 0o644, (0, 0))
        .dir("data/old-dir", 0o755, (0, 0))
        .file("data/old-dir/old-2", b"old", 0o644, (0, 0))
        .file("gone.txt", b"delete me", 0o644, (0, 0))
        .file_xattrs("tagged", b"x", &[("user.berth", b"kept")])
        .finish();
    let two = Layer::new()
        .whiteout("gone.txt")
        .dir("data", 0o750, (0, 0))
        .opaque("data")
        .file("data/new", b"new", 0o600, (0, 0))
        .symlink("passwd-link", "etc/passwd")
        .symlink("abs-link", "/etc/passwd")
        .finish();
    let three = Layer::new()
        .dir("etc", 0o755, (0, 0))
        .file(
            "etc/passwd",
            b"root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home:/bin/sh\n",
            0o644,
            (0, 0),
        )
        .dir("private", 0o700, (123, 456))
        .file(LONG, b"long", 0o644, (0, 0))
        .device("dev-null", tar::EntryType::Char, 1, 3)
        .finish();
    [one, two, three]
}

/// How [`suite`] imports its layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Import {
    /// Each prepared on the one below, applied and committed before the next (any snapshotter).
    OneByOne,
    /// Each applied on a thread of its own to a snapshot without a parent, then all committed
    /// onto each other in one `commit_many`, as a pull does where the snapshotter rebases.
    AtOnce,
}

fn suite(s: &dyn Snapshotter, label: &str, import: Import) {
    let [one, two, three] = layers();
    let tars = [(&one, one.clone()), (&two, gzip(&two)), (&three, zstd(&three))];
    let opts = |i: usize, tar: &[u8], blob: &[u8]| {
        let mut opts = ApplyOptions::new(format!("layer-{i}"), s.whiteouts());
        opts.expected_diff_id = Some(sha256(tar));
        opts.expected_digest = Some(sha256(blob));
        opts
    };
    let names = ["layer-0", "layer-1", "layer-2"];
    let applied: Vec<_> = match import {
        Import::OneByOne => {
            let mut applied = Vec::new();
            for (i, (tar, blob)) in tars.iter().enumerate() {
                let parent = i.checked_sub(1).map(|p| names[p]);
                let one = snapshot::unpack(
                    s,
                    names[i],
                    &format!("extract-{i}"),
                    parent,
                    &blob[..],
                    &opts(i, tar, blob),
                )
                .unwrap_or_else(|e| panic!("{label}: unpack {}: {e:?}", names[i]));
                assert_eq!(s.stat(names[i]).unwrap().kind, Kind::Committed);
                applied.push(one);
            }
            applied
        }
        Import::AtOnce => {
            let keys = ["extract-0", "extract-1", "extract-2"];
            let applied: Vec<_> = std::thread::scope(|scope| {
                let threads: Vec<_> = tars
                    .iter()
                    .enumerate()
                    .map(|(i, (tar, blob))| {
                        let opts = opts(i, tar, blob);
                        scope.spawn(move || {
                            s.prepare(keys[i], None).unwrap();
                            let dir = s.writable_dir(keys[i]).unwrap();
                            berth_image::layer::apply(&blob[..], &dir, &opts)
                                .unwrap_or_else(|e| panic!("{label}: apply layer {i}: {e:?}"))
                        })
                    })
                    .collect();
                threads.into_iter().map(|t| t.join().unwrap()).collect()
            });
            let commits: Vec<Commit> = (0..3)
                .map(|i| commit(names[i], keys[i], i.checked_sub(1).map(|p| names[p])))
                .collect();
            for (i, result) in s.commit_many(&commits).unwrap().into_iter().enumerate() {
                result.unwrap_or_else(|e| panic!("{label}: commit {}: {e}", names[i]));
                let info = s.stat(names[i]).unwrap();
                assert_eq!(
                    (info.kind, info.parent.as_deref()),
                    (Kind::Committed, commits[i].parent)
                );
            }
            applied
        }
    };
    for (applied, (tar, _)) in applied.iter().zip(&tars) {
        assert_eq!(applied.diff_id, sha256(tar));
        assert_eq!(applied.size, tar.len() as u64);
    }
    let parent = Some(names[2]);
    assert!(s.usage("layer-0").unwrap().inodes >= 10, "{label}: usage");

    // A committed parent cannot be removed; an unknown one is not found.
    assert!(matches!(s.remove("layer-1"), Err(SnapshotError::HasChildren { .. })));
    assert!(matches!(
        s.prepare("x", Some("nope")),
        Err(SnapshotError::NotFound { .. })
    ));

    let mounts = s.view("check", parent).unwrap();
    assert_eq!(s.mounts("check").unwrap(), mounts);
    let container = s.prepare("container", parent).unwrap();
    assert!(
        !container.iter().any(|m| m.read_only()),
        "{label}: active is writable: {container:?}"
    );

    if !is_root() {
        println!("{label}: skipping the mounted checks: not root");
    } else {
        let target = tempfile::tempdir().unwrap();
        mount_all(&mounts, target.path());
        let checked = std::panic::catch_unwind(|| check_merged(target.path()));
        nix::mount::umount2(target.path(), nix::mount::MntFlags::MNT_DETACH).unwrap();
        assert!(!mounted(target.path()), "{label}: still mounted");
        if let Err(panic) = checked {
            std::panic::resume_unwind(panic);
        }

        // The container's writable mount takes writes without touching the layers.
        let target = tempfile::tempdir().unwrap();
        mount_all(&container, target.path());
        fs::write(target.path().join("etc/passwd"), b"changed").unwrap();
        fs::remove_file(target.path().join("bin/tool")).unwrap();
        nix::mount::umount2(target.path(), nix::mount::MntFlags::MNT_DETACH).unwrap();
        assert!(!mounted(target.path()));
    }

    for key in ["container", "check", "layer-2", "layer-1", "layer-0"] {
        s.remove(key).unwrap_or_else(|e| panic!("{label}: remove {key}: {e}"));
    }
    let mut left = Vec::new();
    s.walk(&mut |info| left.push(info.key.clone())).unwrap();
    assert!(left.is_empty(), "{label}: left {left:?}");
}

fn check_merged(root: &Path) {
    let meta = |p: &str| fs::symlink_metadata(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert!(!root.join("gone.txt").exists(), "the whiteout deletes gone.txt");
    let mut data: Vec<_> = fs::read_dir(root.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    data.sort();
    assert_eq!(data, ["new"], "the opaque dir shows only the new content");
    assert_eq!(meta("data").permissions().mode() & 0o7777, 0o750);
    assert_eq!(
        fs::read(root.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home:/bin/sh\n"
    );
    let tool = meta("bin/tool");
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!((tool.uid(), tool.gid()), (1000, 1000));
    assert_eq!(tool.mtime(), 1_600_000_000);
    let link = meta("bin/tool-link");
    assert_eq!((link.ino(), tool.nlink()), (tool.ino(), 2), "hardlink kept");
    assert_eq!(
        fs::read_link(root.join("passwd-link")).unwrap(),
        Path::new("etc/passwd")
    );
    assert_eq!(fs::read_link(root.join("abs-link")).unwrap(), Path::new("/etc/passwd"));
    let private = meta("private");
    assert_eq!(
        (private.uid(), private.gid(), private.mode() & 0o7777),
        (123, 456, 0o700)
    );
    assert_eq!(fs::read(root.join(LONG)).unwrap(), b"long");
    let mut value = [0u8; 16];
    let n = rustix::fs::lgetxattr(root.join("tagged"), "user.berth", &mut value[..]).unwrap();
    assert_eq!(&value[..n], b"kept");
    let dev = meta("dev-null");
    assert_eq!(dev.rdev(), rustix::fs::makedev(1, 3));
}

#[test]
fn vfs() {
    if !is_root() {
        println!("skipping vfs conformance: needs root for owners and devices");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let s = Vfs::new(root.path()).unwrap();
    suite(&s, "vfs", Import::OneByOne);
    assert_eq!(fs::read_dir(root.path().join("snapshots")).unwrap().count(), 0);
}

#[test]
fn overlay() {
    if !is_root() {
        println!("skipping overlay conformance: needs root for whiteouts and trusted xattrs");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    if !Overlay::supported(root.path(), OverlayXattrs::Trusted) {
        println!(
            "skipping overlay conformance: overlayfs does not work under {:?}",
            root.path()
        );
        return;
    }
    let s = Overlay::new(root.path(), OverlayXattrs::Trusted).unwrap();
    assert_eq!(s.whiteouts(), Whiteouts::Overlay(OverlayXattrs::Trusted));
    assert!(s.rebases());
    for import in [Import::OneByOne, Import::AtOnce] {
        suite(&s, &format!("overlay {import:?}"), import);
    }
    assert_eq!(fs::read_dir(root.path().join("snapshots")).unwrap().count(), 0);
}

/// `commit_many`'s rules, on directories alone (no mount, no root): a new parent only where
/// the snapshotter rebases; a parent committed earlier in the same call; a name taken (by
/// another process meanwhile) fails that commit alone; what fails stays active.
/// One commit of `commit_many`.
fn commit<'a>(name: &'a str, key: &'a str, parent: Option<&'a str>) -> Commit<'a> {
    Commit { name, key, parent }
}

fn commit_many_rules(s: &dyn Snapshotter, label: &str) {
    for key in ["a", "b", "c", "d", "e"] {
        s.prepare(key, None).unwrap();
    }
    let results = s
        .commit_many(&[
            commit("base", "a", None),
            commit("top", "b", Some("base")),
            commit("base", "c", None),
            commit("other", "d", Some("e")),
            commit("lost", "e", Some("nope")),
        ])
        .unwrap();
    assert!(results[0].is_ok(), "{label}: {:?}", results[0]);
    if s.rebases() {
        assert!(results[1].is_ok(), "{label}: {:?}", results[1]);
        assert_eq!(s.stat("top").unwrap().parent.as_deref(), Some("base"));
        assert!(
            matches!(&results[3], Err(SnapshotError::WrongKind { key, .. }) if key == "e"),
            "{label}: {:?}",
            results[3]
        );
        assert!(
            matches!(&results[4], Err(SnapshotError::NotFound { key }) if key == "nope"),
            "{label}: {:?}",
            results[4]
        );
    } else {
        let err = results[1].as_ref().unwrap_err();
        assert!(
            matches!(err, SnapshotError::CannotRebase { key, prepared_on: None } if key == "b"),
            "{label}: {err:?}"
        );
        assert!(err.to_string().contains("prepared on no parent"), "{err}");
        assert!(
            matches!(results[3], Err(SnapshotError::CannotRebase { .. })),
            "{label}: {:?}",
            results[3]
        );
        assert_eq!(s.stat("b").unwrap().kind, Kind::Active);
        s.remove("b").unwrap();
    }
    assert!(
        matches!(&results[2], Err(SnapshotError::AlreadyExists { key }) if key == "base"),
        "{label}: {:?}",
        results[2]
    );
    for key in ["c", "d", "e"] {
        assert_eq!(s.stat(key).unwrap().kind, Kind::Active, "{label}: {key}");
        s.remove(key).unwrap();
    }
    // The single-commit form: the parent the snapshot was prepared on.
    s.prepare("f", Some("base")).unwrap();
    s.commit("child", "f").unwrap();
    assert_eq!(s.stat("child").unwrap().parent.as_deref(), Some("base"));
    for key in ["child", "top", "base"] {
        if s.stat(key).is_ok() {
            s.remove(key).unwrap();
        }
    }
    let mut left = Vec::new();
    s.walk(&mut |info| left.push(info.key.clone())).unwrap();
    assert!(left.is_empty(), "{label}: left {left:?}");
}

#[test]
fn commit_many_in_both_forms() {
    let root = tempfile::tempdir().unwrap();
    commit_many_rules(&Vfs::new(&root.path().join("vfs")).unwrap(), "vfs");
    commit_many_rules(
        &Overlay::new(&root.path().join("overlay"), OverlayXattrs::Trusted).unwrap(),
        "overlay",
    );
}

#[test]
fn overlay_mount_options() {
    let root = tempfile::tempdir().unwrap();
    let s = Overlay::new(root.path(), OverlayXattrs::User).unwrap();
    let first = s.prepare("a", None).unwrap();
    assert_eq!(first[0].kind, "bind");
    assert_eq!(first[0].options, ["rbind", "rw"]);
    s.commit("A", "a").unwrap();
    s.prepare("b", Some("A")).unwrap();
    s.commit("B", "b").unwrap();
    let one = s.view("v1", Some("A")).unwrap();
    assert_eq!(
        (one[0].kind.as_str(), one[0].options.clone()),
        ("bind", vec!["rbind".into(), "ro".into()])
    );
    let two = s.view("v2", Some("B")).unwrap();
    let fs_of = |key: &str| s.writable_dir(key);
    assert!(fs_of("v2").is_err(), "a view is not writable");
    let opts = &two[0].options;
    assert_eq!(two[0].kind, "overlay");
    assert!(
        opts.iter()
            .any(|o| o.starts_with("lowerdir=") && o.matches(':').count() == 1),
        "{opts:?}"
    );
    assert!(opts.contains(&"userxattr".to_string()));
    let active = s.prepare("c", Some("B")).unwrap();
    let opts = &active[0].options;
    assert!(opts.iter().any(|o| o.starts_with("upperdir=")) && opts.iter().any(|o| o.starts_with("workdir=")));
    // The nearest parent comes first in lowerdir.
    let lower = opts.iter().find(|o| o.starts_with("lowerdir=")).unwrap();
    let dirs: Vec<&str> = lower["lowerdir=".len()..].split(':').collect();
    assert_eq!(dirs.len(), 2);
    assert!(dirs[0].ends_with("/2/fs") && dirs[1].ends_with("/1/fs"), "{dirs:?}");
    assert!(matches!(s.commit("B", "c"), Err(SnapshotError::AlreadyExists { .. })));
    assert!(matches!(s.commit("D", "v1"), Err(SnapshotError::WrongKind { .. })));
}

/// `.wh.d` then `d/…` in one layer deletes the lower `d` and adds a new one (the OCI layer spec:
/// whiteouts apply to lower layers only). Both forms show only the new content: vfs deletes the
/// lower directory, overlay turns the marker into an opaque directory, whether the layer names
/// the directory (`d/`) or only something inside it (`e/sub/new`).
fn whiteout_then_directory(s: &dyn Snapshotter, label: &str) {
    let lower = Layer::new()
        .dir("d", 0o755, (0, 0))
        .file("d/old", b"old", 0o644, (0, 0))
        .dir("e", 0o755, (0, 0))
        .file("e/old", b"old", 0o644, (0, 0))
        .finish();
    let upper = Layer::new()
        .whiteout("d")
        .dir("d", 0o750, (0, 0))
        .file("d/new", b"new", 0o644, (0, 0))
        .whiteout("e")
        .file("e/sub/new", b"new", 0o644, (0, 0))
        .finish();
    let opts = ApplyOptions::new("whiteout-then-dir", s.whiteouts());
    snapshot::unpack(s, "lower", "k-lower", None, &lower[..], &opts).unwrap();
    snapshot::unpack(s, "upper", "k-upper", Some("lower"), &upper[..], &opts)
        .unwrap_or_else(|e| panic!("{label}: {e:?}"));
    let mounts = s.view("check", Some("upper")).unwrap();
    let target = tempfile::tempdir().unwrap();
    mount_all(&mounts, target.path());
    let names = |dir: &str| {
        let mut v: Vec<_> = fs::read_dir(target.path().join(dir))
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let (d, e) = (names("d"), names("e"));
    let mode = fs::metadata(target.path().join("d")).map(|m| m.mode() & 0o7777);
    nix::mount::umount2(target.path(), nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert!(!mounted(target.path()));
    assert_eq!(d, ["new"], "{label}: d");
    assert_eq!(e, ["sub"], "{label}: e");
    assert_eq!(mode.unwrap(), 0o750, "{label}: the new d's mode");
    for key in ["check", "upper", "lower"] {
        s.remove(key).unwrap();
    }
}

#[test]
fn whiteout_then_directory_in_both_forms() {
    if !is_root() {
        println!("skipping: mounts need root");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    whiteout_then_directory(&Vfs::new(&root.path().join("vfs")).unwrap(), "vfs");
    let overlay_root = root.path().join("overlay");
    if Overlay::supported(&overlay_root, OverlayXattrs::Trusted) {
        whiteout_then_directory(&Overlay::new(&overlay_root, OverlayXattrs::Trusted).unwrap(), "overlay");
    } else {
        println!("skipping overlay: overlayfs does not work under {overlay_root:?}");
    }
}

/// A chain deeper than a page of `lowerdir=` holds (130 layers under a temporary root: each
/// lower is about 45 bytes): the data handed to mount(2) is made relative and stays under a
/// page, and the overlay mounts, showing the bottom and the top layer.
#[test]
fn overlay_chain_past_a_page_of_options() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("overlay");
    let s = Overlay::new(&root, OverlayXattrs::Trusted).unwrap();
    const DEPTH: usize = 130;
    let mut parent: Option<String> = None;
    for i in 0..DEPTH {
        s.prepare(&format!("k{i}"), parent.as_deref()).unwrap();
        let fs_dir = s.writable_dir(&format!("k{i}")).unwrap();
        fs::write(fs_dir.join(format!("layer-{i}")), i.to_string()).unwrap();
        s.commit(&format!("l{i}"), &format!("k{i}")).unwrap();
        parent = Some(format!("l{i}"));
    }
    let views = s.view("view", parent.as_deref()).unwrap();
    let active = s.prepare("active", parent.as_deref()).unwrap();
    for mounts in [&views, &active] {
        let raw = mounts[0].options.join(",");
        assert!(raw.len() > 4096, "the chain is not deep enough: {} bytes", raw.len());
        let data = MountData::of(&mounts[0]).unwrap();
        assert!(data.data.len() < 4096, "{} bytes", data.data.len());
        assert_eq!(data.dir.as_deref(), Some(root.join("snapshots/").as_path()));
    }
    if !is_root() || !Overlay::supported(&root, OverlayXattrs::Trusted) {
        println!("skipping the mount: needs root and overlayfs");
        return;
    }
    let cwd = std::env::current_dir().unwrap();
    for mounts in [&views, &active] {
        let target = tempfile::tempdir().unwrap();
        mount_all(mounts, target.path());
        let bottom = fs::read_to_string(target.path().join("layer-0"));
        let top = fs::read_to_string(target.path().join(format!("layer-{}", DEPTH - 1)));
        let count = fs::read_dir(target.path()).map(|d| d.count());
        nix::mount::umount2(target.path(), nix::mount::MntFlags::MNT_DETACH).unwrap();
        assert!(!mounted(target.path()));
        assert_eq!(bottom.unwrap(), "0");
        assert_eq!(top.unwrap(), (DEPTH - 1).to_string());
        assert_eq!(count.unwrap(), DEPTH);
    }
    assert_eq!(
        std::env::current_dir().unwrap(),
        cwd,
        "the process's working directory stays"
    );
}

/// A record `commit_many` cannot write (here its temporary file's name is taken by a
/// directory) fails that commit and the ones on it: no committed snapshot names a parent that
/// is not committed; both stay active.
#[test]
fn a_record_that_cannot_be_written_takes_its_children_along() {
    let root = tempfile::tempdir().unwrap();
    let s = Overlay::new(&root.path().join("overlay"), OverlayXattrs::Trusted).unwrap();
    for key in ["a", "b", "c"] {
        s.prepare(key, None).unwrap();
    }
    let a_dir = s.writable_dir("a").unwrap().parent().unwrap().to_owned();
    fs::create_dir_all(a_dir.join(".state.json.tmp/blocked")).unwrap();
    let results = s
        .commit_many(&[
            commit("base", "a", None),
            commit("top", "b", Some("base")),
            commit("other", "c", None),
        ])
        .unwrap();
    assert!(matches!(results[0], Err(SnapshotError::Io { .. })), "{:?}", results[0]);
    assert!(
        matches!(&results[1], Err(SnapshotError::NotFound { key }) if key == "base"),
        "{:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "{:?}", results[2]);
    for key in ["a", "b"] {
        assert_eq!(s.stat(key).unwrap().kind, Kind::Active, "{key}");
    }
    assert!(matches!(s.stat("base"), Err(SnapshotError::NotFound { .. })));
}
