//! v2 cpuset controller.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::fs;

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
    fn cpus_mems() {
        let t = tempfile::tempdir().unwrap();
        fixture::set(t.path(), "cpuset.cpus", "");
        fixture::set(t.path(), "cpuset.mems", "");
        apply(
            t.path(),
            &LinuxCpuBuilder::default().cpus("0-1").mems("0").build().unwrap(),
        )
        .unwrap();
        assert_eq!(fixture::get(t.path(), "cpuset.cpus"), "0-1");
        assert_eq!(fixture::get(t.path(), "cpuset.mems"), "0");
    }
}
