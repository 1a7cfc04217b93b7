//! `images::Images` through its API: names, holders (containers) and garbage collection, on
//! whichever snapshotter the host gives (overlay as root, vfs otherwise).

mod common;

use berth_image::images::{ImageError, Images, ImportOptions, Removed};
use common::Layer;

fn rootfs(marker: &[u8]) -> Vec<u8> {
    Layer::new()
        .dir("etc", 0o755, (0, 0))
        .file("etc/marker", marker, 0o644, (0, 0))
        .finish()
}

fn import(images: &mut Images, marker: &[u8], name: &str) -> String {
    let opts = ImportOptions {
        reference: Some(name.into()),
        ..ImportOptions::default()
    };
    images.import(&rootfs(marker)[..], &opts).unwrap()
}

#[test]
fn an_image_held_by_a_container_is_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut images = Images::open(dir.path()).unwrap();
    let id = import(&mut images, b"a", "app:1");
    images.db().add_ref(&id, "container:c1").unwrap();

    let err = images.remove("app:1", false).unwrap_err();
    assert!(matches!(err, ImageError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("container:c1"), "{err}");
    let err = images.remove(&id, false).unwrap_err();
    assert!(matches!(err, ImageError::InUseForced { .. }), "{err}");

    // Forced: untagged, kept (dangling) while held; prune -a keeps it too.
    let removed = images.remove("app:1", true).unwrap();
    assert_eq!(removed, [Removed::Untagged("app:1".into())]);
    assert!(images.resolve(&id).is_ok());
    images.prune(true).unwrap();
    assert!(images.resolve(&id).is_ok());
    assert_eq!(images.disk_usage().unwrap().active, 1);

    // Released: prune takes it, and every blob and snapshot with it.
    images.db().remove_refs("container:c1").unwrap();
    let (removed, reclaimed) = images.prune(false).unwrap();
    // The image, then the layer it freed, as Docker lists them.
    let layer = images_layer(&removed);
    assert_eq!(removed, [Removed::Deleted(id.clone()), Removed::DeletedLayer(layer)]);
    assert!(reclaimed > 0);
    assert!(images.store().list().unwrap().is_empty());
    let mut snapshots = 0;
    images.snapshotter().walk(&mut |_| snapshots += 1).unwrap();
    assert_eq!(snapshots, 0);
}

#[test]
fn names_move_and_layers_are_shared() {
    let dir = tempfile::tempdir().unwrap();
    let mut images = Images::open(dir.path()).unwrap();
    let a = import(&mut images, b"a", "app:1");
    let b = import(&mut images, b"b", "app:1");
    assert_ne!(a, b);
    // The tag moved: the first image is dangling.
    assert_eq!(images.resolve("app:1").unwrap().id, b);
    let listed = images.list().unwrap();
    let first = listed.iter().find(|s| s.id == a).unwrap();
    assert!(first.repo_tags.is_empty());
    // The same content imported twice is one image and one layer.
    let again = import(&mut images, b"b", "other:2");
    assert_eq!(again, b);
    images.tag("other:2", "docker.io/library/third").unwrap();
    assert_eq!(images.resolve("third:latest").unwrap().id, b);
    assert_eq!(
        images.remove("third", false).unwrap(),
        [Removed::Untagged("third:latest".into())]
    );
    let err = images.resolve("sha256:").unwrap_err();
    assert!(
        matches!(err, ImageError::NotFound { .. } | ImageError::Ambiguous { .. }),
        "{err}"
    );
    let gc = images.gc().unwrap();
    assert!(gc.blobs.is_empty() && gc.snapshots.is_empty(), "{gc:?}");
    let (removed, _) = images.prune(false).unwrap();
    let layer = images_layer(&removed);
    assert_eq!(removed, [Removed::Deleted(a), Removed::DeletedLayer(layer)]);
    // The last name takes the image and its layer along.
    assert_eq!(
        images.remove("app:1", false).unwrap(),
        [Removed::Untagged("app:1".into())]
    );
    let removed = images.remove("other:2", false).unwrap();
    assert!(
        matches!(&removed[..], [Removed::Untagged(_), Removed::Deleted(id), Removed::DeletedLayer(_)] if *id == b),
        "{removed:?}"
    );
}

/// The chain ID of the one layer a removal lists.
fn images_layer(removed: &[Removed]) -> String {
    let layers: Vec<&String> = removed
        .iter()
        .filter_map(|r| match r {
            Removed::DeletedLayer(chain) => Some(chain),
            _ => None,
        })
        .collect();
    assert_eq!(layers.len(), 1, "{removed:?}");
    assert!(layers[0].starts_with("sha256:"), "{removed:?}");
    layers[0].clone()
}

#[test]
fn image_content_is_private_to_the_engine() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut images = Images::open(dir.path()).unwrap();
    import(&mut images, b"a", "app:1");
    let driver = if dir.path().join("overlay").exists() {
        "overlay"
    } else {
        "vfs"
    };
    for sub in ["content".to_owned(), format!("{driver}/snapshots")] {
        let mode = std::fs::metadata(dir.path().join(&sub)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{sub}");
    }
}
