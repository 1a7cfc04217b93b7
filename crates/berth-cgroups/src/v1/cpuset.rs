//! v1 cpuset: new cgroups start with empty cpus/mems, so copy them down from the parent.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxCpu;

use crate::fs;

/// mkdir -p `path` below `mount_point`, one level at a time, filling each new level's
/// cpuset.cpus/mems from its parent.
pub fn create(mount_point: &Path, path: &Path) -> crate::Result<()> {
    let rel = path.strip_prefix(mount_point).unwrap_or(Path::new(""));
    let mut levels = vec![mount_point.to_path_buf()];
    for comp in rel.components() {
        let cur = levels.last().expect("the mount point").join(comp);
        fs::create_dir(&cur)?;
        levels.push(cur);
        fill(&levels)?;
    }
    Ok(())
}

/// Fills the last of `levels` (each the parent of the next, from the mount point) where it
/// is empty, from its parent, which is filled first from further up if it is empty too: a
/// parent another process removed and made again may not be filled yet.
fn fill(levels: &[PathBuf]) -> crate::Result<()> {
    let Some((cur, above)) = levels.split_last() else {
        return Ok(());
    };
    // The mount point's values are the kernel's.
    let Some(parent) = above.last() else { return Ok(()) };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let value = |dir: &Path| -> crate::Result<Option<String>> {
            Ok(fs::read_opt(dir, file)?
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()))
        };
        if value(cur)?.is_some() {
            continue;
        }
        let theirs = match value(parent)? {
            Some(v) => Some(v),
            None => {
                fill(above)?;
                value(parent)?
            }
        };
        if let Some(theirs) = theirs {
            fs::write(cur, file, theirs)?;
        }
    }
    Ok(())
}

pub fn apply(dir: &Path, cpu: &LinuxCpu) -> crate::Result<()> {
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        fs::write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        fs::write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fixture;
    use oci_spec::runtime::LinuxCpuBuilder;

    #[test]
    fn copies_parent_and_applies() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fixture::set(root, "cpuset.cpus", "0-3\n");
        fixture::set(root, "cpuset.mems", "0\n");
        // the kernel creates the files empty in a new cgroup
        let a = root.join("a");
        fixture::set(&a, "cpuset.cpus", "\n");
        fixture::set(&a, "cpuset.mems", "\n");
        let b = a.join("b");
        fixture::set(&b, "cpuset.cpus", "\n");
        fixture::set(&b, "cpuset.mems", "\n");
        create(root, &b).unwrap();
        assert_eq!(fixture::get(&a, "cpuset.cpus"), "0-3");
        assert_eq!(fixture::get(&b, "cpuset.mems"), "0");
        // A parent made again (empty) by another process after it was filled: filled again
        // from further up before its child.
        fixture::set(&a, "cpuset.cpus", "\n");
        fixture::set(&b, "cpuset.cpus", "\n");
        fill(&[root.to_path_buf(), a.clone(), b.clone()]).unwrap();
        assert_eq!(fixture::get(&a, "cpuset.cpus"), "0-3");
        assert_eq!(fixture::get(&b, "cpuset.cpus"), "0-3");
        let cpu = LinuxCpuBuilder::default().cpus("1").mems("0").build().unwrap();
        apply(&b, &cpu).unwrap();
        assert_eq!(fixture::get(&b, "cpuset.cpus"), "1");
    }
}
