//! v1 cpuset: new cgroups start with empty cpus/mems, so copy them down from the parent.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::fs;

/// mkdir -p `path` below `mount_point`, filling each new level's cpuset.cpus/mems from its parent.
pub fn create(mount_point: &Path, path: &Path) -> crate::Result<()> {
    let rel = path.strip_prefix(mount_point).unwrap_or(Path::new(""));
    let mut parent = mount_point.to_path_buf();
    for comp in rel.components() {
        let cur = parent.join(comp);
        // One level at a time: each is filled from the one above before the next is made.
        fs::create_dir(&cur)?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mine = fs::read_opt(&cur, file)?.unwrap_or_default();
            if mine.trim().is_empty() {
                if let Some(theirs) = fs::read_opt(&parent, file)? {
                    if !theirs.trim().is_empty() {
                        fs::write(&cur, file, theirs.trim())?;
                    }
                }
            }
        }
        parent = cur;
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
        let cpu = LinuxCpuBuilder::default().cpus("1").mems("0").build().unwrap();
        apply(&b, &cpu).unwrap();
        assert_eq!(fixture::get(&b, "cpuset.cpus"), "1");
    }
}
