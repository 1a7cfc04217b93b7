//! v2 cpu controller: cpu.weight (from shares), cpu.max, cpu.max.burst, cpu.idle.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::fs;

/// Errors of v2 cpu settings.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    #[error("realtime cpu runtime/period are not supported on cgroup v2")]
    Realtime,
}

/// runc's cpu.shares (2..262144) to cpu.weight (1..10000) conversion; 0 stays 0 (unset).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// The cpu.max line for a quota/period pair, `None` if neither is set.
pub fn max_value(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = quota.filter(|q| *q != 0);
    let period = period.filter(|p| *p != 0);
    if quota.is_none() && period.is_none() {
        return None;
    }
    let mut s = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_string(),
    };
    if let Some(p) = period {
        s.push_str(&format!(" {p}"));
    }
    Some(s)
}

pub fn apply(dir: &Path, c: &LinuxCpu) -> crate::Result<()> {
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        return Err(CpuError::Realtime.into());
    }
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        fs::write(dir, "cpu.weight", shares_to_weight(s))?;
    }
    if let Some(max) = max_value(c.quota(), c.period()) {
        fs::write(dir, "cpu.max", max)?;
    }
    if let Some(b) = c.burst() {
        fs::write(dir, "cpu.max.burst", b)?;
    }
    if let Some(i) = c.idle() {
        fs::write(dir, "cpu.idle", i)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fixture;
    use oci_spec::runtime::LinuxCpuBuilder;

    #[test]
    fn weights() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
    }

    #[test]
    fn files() {
        assert_eq!(max_value(Some(50000), None).as_deref(), Some("50000"));
        assert_eq!(max_value(Some(-1), Some(100000)).as_deref(), Some("max 100000"));
        assert_eq!(max_value(None, None), None);
        let t = tempfile::tempdir().unwrap();
        for f in ["cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle"] {
            fixture::set(t.path(), f, "");
        }
        let c = LinuxCpuBuilder::default()
            .shares(2048u64)
            .quota(20000)
            .period(100000u64)
            .burst(500u64)
            .idle(0)
            .build()
            .unwrap();
        apply(t.path(), &c).unwrap();
        assert_eq!(fixture::get(t.path(), "cpu.weight"), "79");
        assert_eq!(fixture::get(t.path(), "cpu.max"), "20000 100000");
        assert_eq!(fixture::get(t.path(), "cpu.max.burst"), "500");
        assert_eq!(fixture::get(t.path(), "cpu.idle"), "0");
        let rt = LinuxCpuBuilder::default().realtime_runtime(10).build().unwrap();
        assert!(apply(t.path(), &rt).is_err());
    }
}
