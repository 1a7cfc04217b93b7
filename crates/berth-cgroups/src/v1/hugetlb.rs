//! v1 hugetlb controller: hugetlb.<size>.limit_in_bytes.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxHugepageLimit;

use crate::fs;

/// Errors of hugetlb limits (both versions).
#[derive(Debug, thiserror::Error)]
pub enum HugetlbError {
    #[error("hugetlb page size {page_size:?} is not supported by {dir} (valid sizes look like \"2MB\", \"1GB\")")]
    PageSize { page_size: String, dir: PathBuf },
}

/// Check a page size string like "2MB" / "64KB" / "1GB".
pub fn valid_page_size(s: &str) -> bool {
    let num = s.trim_end_matches(['K', 'M', 'G', 'B']);
    !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) && matches!(&s[num.len()..], "KB" | "MB" | "GB")
}

/// Write one limit as `hugetlb.<size>.<suffix>` (and the `.rsvd.` variant if the kernel has it).
pub fn write_limit(dir: &Path, limit: &LinuxHugepageLimit, suffix: &str, value: String) -> crate::Result<()> {
    let size = limit.page_size();
    let file = format!("hugetlb.{size}.{suffix}");
    if !valid_page_size(size) || !dir.join(&file).exists() {
        return Err(HugetlbError::PageSize {
            page_size: size.clone(),
            dir: dir.to_path_buf(),
        }
        .into());
    }
    fs::write(dir, &file, &value)?;
    fs::write_if_exists(dir, &format!("hugetlb.{size}.rsvd.{suffix}"), &value)?;
    Ok(())
}

pub fn apply(dir: &Path, limits: &[LinuxHugepageLimit]) -> crate::Result<()> {
    for l in limits {
        write_limit(dir, l, "limit_in_bytes", l.limit().to_string())?;
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
        fixture::set(t.path(), "hugetlb.2MB.limit_in_bytes", "");
        fixture::set(t.path(), "hugetlb.2MB.rsvd.limit_in_bytes", "");
        let l: Vec<LinuxHugepageLimit> = serde_json::from_str(r#"[{"pageSize": "2MB", "limit": 4194304}]"#).unwrap();
        apply(t.path(), &l).unwrap();
        assert_eq!(fixture::get(t.path(), "hugetlb.2MB.limit_in_bytes"), "4194304");
        assert_eq!(fixture::get(t.path(), "hugetlb.2MB.rsvd.limit_in_bytes"), "4194304");
        let bad: Vec<LinuxHugepageLimit> = serde_json::from_str(r#"[{"pageSize": "1GB", "limit": 1}]"#).unwrap();
        assert!(apply(t.path(), &bad).unwrap_err().to_string().contains("\"1GB\""));
        assert!(valid_page_size("64KB") && !valid_page_size("2M") && !valid_page_size("MB"));
    }
}
