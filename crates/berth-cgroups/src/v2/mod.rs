//! cgroup v2 controllers: file formats of the unified hierarchy.

pub mod cpu;
pub mod cpuset;
pub mod devices;
pub mod freezer;
pub mod hugetlb;
pub mod io;
pub mod memory;
pub mod pids;

use std::path::Path;

use crate::fs;

/// mkdir -p `path` below `mount_point`, enabling in each ancestor's cgroup.subtree_control every
/// controller it offers (those the kernel refuses, e.g. for the no-internal-process rule, are skipped).
pub fn create(mount_point: &Path, path: &Path) -> crate::Result<()> {
    let rel = path.strip_prefix(mount_point).unwrap_or(Path::new(""));
    let mut parent = mount_point.to_path_buf();
    for comp in rel.components() {
        let above = parent.clone();
        parent.push(comp);
        // One level at a time, its parent's controllers enabled once it exists: the parent
        // can then no longer be removed (and made again without them) under it, and the
        // controllers' files appear in the new level as they are enabled.
        fs::create_dir(&parent)?;
        enable_controllers(&above);
    }
    Ok(())
}

fn enable_controllers(dir: &Path) {
    let Ok(Some(available)) = fs::read_opt(dir, "cgroup.controllers") else {
        return;
    };
    let enabled = fs::read_opt(dir, "cgroup.subtree_control")
        .ok()
        .flatten()
        .unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    for c in available.split_whitespace().filter(|c| !enabled.contains(c)) {
        let _ = fs::write(dir, "cgroup.subtree_control", format!("+{c}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fixture;

    #[test]
    fn create_enables_ancestors() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fixture::set(root, "cgroup.controllers", "cpu memory\n");
        fixture::set(root, "cgroup.subtree_control", "cpu\n");
        create(root, &root.join("a/b")).unwrap();
        assert!(root.join("a/b").is_dir());
        // only the missing one is written (each as one write)
        assert_eq!(fixture::get(root, "cgroup.subtree_control"), "+memory");
    }
}
