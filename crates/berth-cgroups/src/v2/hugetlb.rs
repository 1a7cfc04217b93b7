//! v2 hugetlb controller: hugetlb.<size>.max.

use std::path::Path;

use oci_spec::runtime::LinuxHugepageLimit;

use crate::v1::hugetlb::write_limit;

pub fn apply(dir: &Path, limits: &[LinuxHugepageLimit]) -> crate::Result<()> {
    for l in limits {
        let v = if l.limit() < 0 {
            "max".to_string()
        } else {
            l.limit().to_string()
        };
        write_limit(dir, l, "max", v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fixture;

    #[test]
    fn limits() {
        let t = tempfile::tempdir().unwrap();
        fixture::set(t.path(), "hugetlb.2MB.max", "max");
        fixture::set(t.path(), "hugetlb.1GB.max", "max");
        let l: Vec<LinuxHugepageLimit> =
            serde_json::from_str(r#"[{"pageSize": "2MB", "limit": 2097152}, {"pageSize": "1GB", "limit": -1}]"#)
                .unwrap();
        apply(t.path(), &l).unwrap();
        assert_eq!(fixture::get(t.path(), "hugetlb.2MB.max"), "2097152");
        assert_eq!(fixture::get(t.path(), "hugetlb.1GB.max"), "max");
    }
}
