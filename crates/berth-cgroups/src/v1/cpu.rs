//! v1 cpu controller (cpu.shares, CFS quota/period/burst, idle, realtime).

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::fs;

/// True if any cpu (not cpuset) setting is requested.
pub fn is_set(c: &LinuxCpu) -> bool {
    c.shares().is_some_and(|v| v != 0)
        || c.quota().is_some_and(|v| v != 0)
        || c.period().is_some_and(|v| v != 0)
        || c.burst().is_some()
        || c.idle().is_some_and(|v| v != 0)
        || c.realtime_runtime().is_some_and(|v| v != 0)
        || c.realtime_period().is_some_and(|v| v != 0)
}

pub fn apply(dir: &Path, c: &LinuxCpu) -> crate::Result<()> {
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        fs::write(dir, "cpu.shares", s)?;
    }
    let period = c.period().filter(|p| *p != 0);
    let quota = c.quota().filter(|q| *q != 0);
    if let Some(p) = period {
        // The period may be refused while the old quota does not fit; retry after the quota.
        if let Err(e) = fs::write(dir, "cpu.cfs_period_us", p) {
            if e.raw_os_error() != Some(libc::EINVAL) || quota.is_none() {
                return Err(e.into());
            }
            fs::write(dir, "cpu.cfs_quota_us", quota.unwrap_or(-1))?;
            fs::write(dir, "cpu.cfs_period_us", p)?;
        }
    }
    if let Some(q) = quota {
        fs::write(dir, "cpu.cfs_quota_us", q)?;
    }
    if let Some(b) = c.burst() {
        fs::write(dir, "cpu.cfs_burst_us", b)?;
    }
    if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
        fs::write(dir, "cpu.rt_period_us", p)?;
    }
    if let Some(r) = c.realtime_runtime().filter(|r| *r != 0) {
        fs::write(dir, "cpu.rt_runtime_us", r)?;
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
    fn all_fields() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "cpu.shares",
            "cpu.cfs_period_us",
            "cpu.cfs_quota_us",
            "cpu.cfs_burst_us",
            "cpu.rt_period_us",
            "cpu.rt_runtime_us",
            "cpu.idle",
        ] {
            fixture::set(t.path(), f, "");
        }
        let c = LinuxCpuBuilder::default()
            .shares(512u64)
            .quota(50000)
            .period(100000u64)
            .burst(1000u64)
            .realtime_period(1000000u64)
            .realtime_runtime(950000)
            .idle(1)
            .build()
            .unwrap();
        assert!(is_set(&c));
        apply(t.path(), &c).unwrap();
        let g = |f| fixture::get(t.path(), f);
        assert_eq!(g("cpu.shares"), "512");
        assert_eq!(g("cpu.cfs_quota_us"), "50000");
        assert_eq!(g("cpu.cfs_period_us"), "100000");
        assert_eq!(g("cpu.cfs_burst_us"), "1000");
        assert_eq!(g("cpu.rt_period_us"), "1000000");
        assert_eq!(g("cpu.rt_runtime_us"), "950000");
        assert_eq!(g("cpu.idle"), "1");
        assert!(!is_set(&LinuxCpuBuilder::default().cpus("0").build().unwrap()));
    }
}
