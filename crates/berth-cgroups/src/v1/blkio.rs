//! v1 blkio controller (weights and throttling).

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use crate::fs;

/// True if any block I/O setting is requested.
pub fn is_set(b: &LinuxBlockIo) -> bool {
    let nonempty = |v: &Option<Vec<LinuxThrottleDevice>>| v.as_ref().is_some_and(|v| !v.is_empty());
    b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || nonempty(b.throttle_read_bps_device())
        || nonempty(b.throttle_write_bps_device())
        || nonempty(b.throttle_read_iops_device())
        || nonempty(b.throttle_write_iops_device())
}

/// The throttle lists with their v1 file names.
pub fn throttles(b: &LinuxBlockIo) -> [(&'static str, &Option<Vec<LinuxThrottleDevice>>); 4] {
    [
        ("blkio.throttle.read_bps_device", b.throttle_read_bps_device()),
        ("blkio.throttle.write_bps_device", b.throttle_write_bps_device()),
        ("blkio.throttle.read_iops_device", b.throttle_read_iops_device()),
        ("blkio.throttle.write_iops_device", b.throttle_write_iops_device()),
    ]
}

pub fn apply(dir: &Path, b: &LinuxBlockIo) -> crate::Result<()> {
    // BFQ exposes its own weight files; prefer them when present (as runc does).
    let bfq = dir.join("blkio.bfq.weight").exists();
    let (weight_file, weight_device_file) = if bfq {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        ("blkio.weight", "blkio.weight_device")
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        fs::write(dir, weight_file, w)?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        fs::write(dir, "blkio.leaf_weight", w)?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            fs::write(dir, weight_device_file, format!("{}:{} {}", wd.major(), wd.minor(), w))?;
        }
        if let Some(w) = wd.leaf_weight() {
            fs::write(
                dir,
                "blkio.leaf_weight_device",
                format!("{}:{} {}", wd.major(), wd.minor(), w),
            )?;
        }
    }
    for (file, list) in throttles(b) {
        for t in list.iter().flatten() {
            fs::write(dir, file, format!("{}:{} {}", t.major(), t.minor(), t.rate()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fixture;

    pub fn sample() -> LinuxBlockIo {
        serde_json::from_str(
            r#"{"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn cfq_files() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "blkio.weight",
            "blkio.weight_device",
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_iops_device",
        ] {
            fixture::set(t.path(), f, "");
        }
        let b = sample();
        assert!(is_set(&b));
        apply(t.path(), &b).unwrap();
        assert_eq!(fixture::get(t.path(), "blkio.weight"), "500");
        assert_eq!(fixture::get(t.path(), "blkio.weight_device"), "8:0 300");
        assert_eq!(fixture::get(t.path(), "blkio.throttle.read_bps_device"), "8:0 1048576");
        assert_eq!(fixture::get(t.path(), "blkio.throttle.write_iops_device"), "8:16 100");
    }

    #[test]
    fn bfq_files() {
        let t = tempfile::tempdir().unwrap();
        for f in [
            "blkio.bfq.weight",
            "blkio.bfq.weight_device",
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_iops_device",
        ] {
            fixture::set(t.path(), f, "");
        }
        apply(t.path(), &sample()).unwrap();
        assert_eq!(fixture::get(t.path(), "blkio.bfq.weight"), "500");
        assert_eq!(fixture::get(t.path(), "blkio.bfq.weight_device"), "8:0 300");
    }
}
