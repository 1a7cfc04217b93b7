//! v1 pids controller.

use std::path::Path;

use oci_spec::runtime::LinuxPids;

use crate::fs;

/// pids.max value for an OCI limit: 0 or negative means no limit.
pub fn max_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

pub fn apply(dir: &Path, pids: &LinuxPids) -> crate::Result<()> {
    fs::write(dir, "pids.max", max_value(pids.limit()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fixture;
    use oci_spec::runtime::LinuxPidsBuilder;

    #[test]
    fn limits() {
        let t = tempfile::tempdir().unwrap();
        fixture::set(t.path(), "pids.max", "");
        apply(t.path(), &LinuxPidsBuilder::default().limit(42).build().unwrap()).unwrap();
        assert_eq!(fixture::get(t.path(), "pids.max"), "42");
        apply(t.path(), &LinuxPidsBuilder::default().limit(0).build().unwrap()).unwrap();
        assert_eq!(fixture::get(t.path(), "pids.max"), "max");
        apply(t.path(), &LinuxPidsBuilder::default().limit(-1).build().unwrap()).unwrap();
        assert_eq!(fixture::get(t.path(), "pids.max"), "max");
    }
}
