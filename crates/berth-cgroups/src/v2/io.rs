//! v2 io controller: io.weight / io.bfq.weight and io.max.

use std::path::Path;

use oci_spec::runtime::LinuxBlockIo;

use crate::fs;

/// runc's blkio weight (10..1000) to io.weight (1..10000) conversion; 0 stays 0.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

pub fn apply(dir: &Path, b: &LinuxBlockIo) -> crate::Result<()> {
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if bfq {
            // io.bfq.weight uses the blkio range directly
            fs::write(dir, "io.bfq.weight", w)?;
        } else {
            fs::write(dir, "io.weight", blkio_to_io_weight(w))?;
        }
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            if bfq {
                fs::write(dir, "io.bfq.weight", format!("{}:{} {}", wd.major(), wd.minor(), w))?;
            } else {
                let v = blkio_to_io_weight(w);
                fs::write(dir, "io.weight", format!("{}:{} {}", wd.major(), wd.minor(), v))?;
            }
        }
    }
    let lists = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in lists {
        for t in list.iter().flatten() {
            let rate = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            fs::write(dir, "io.max", format!("{}:{} {key}={rate}", t.major(), t.minor()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fixture;

    #[test]
    fn files() {
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10000);
        assert_eq!(blkio_to_io_weight(500), 4950);
        let b: LinuxBlockIo =
            serde_json::from_str(r#"{"weight": 500, "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}]}"#)
                .unwrap();
        let t = tempfile::tempdir().unwrap();
        fixture::set(t.path(), "io.weight", "");
        fixture::set(t.path(), "io.max", "");
        apply(t.path(), &b).unwrap();
        assert_eq!(fixture::get(t.path(), "io.weight"), "4950");
        assert_eq!(fixture::get(t.path(), "io.max"), "8:0 wbps=max");
        fixture::set(t.path(), "io.bfq.weight", "");
        apply(t.path(), &b).unwrap();
        assert_eq!(fixture::get(t.path(), "io.bfq.weight"), "500");
    }
}
