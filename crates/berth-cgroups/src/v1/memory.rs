//! v1 memory controller.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use crate::fs::{self, FsError};

/// Errors of memory limits (shared by v1 and v2, same runc wording).
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("unable to set memory limit to {limit} (current usage: {usage}, peak usage: {peak})")]
    BelowUsage {
        limit: i64,
        usage: u64,
        peak: u64,
        #[source]
        source: FsError,
    },
    #[error("invalid memory value: memory+swap limit {swap} should be >= memory limit {limit}")]
    SwapBelowLimit { swap: i64, limit: i64 },
    #[error("unable to set swap limit {swap} without memory limit")]
    SwapWithoutLimit { swap: i64 },
    #[error("invalid memory swappiness value {value}: valid range is 0-100")]
    Swappiness { value: u64 },
    #[error("swap limit {swap} requested but the host has no swap accounting ({file} is absent)")]
    NoSwapAccounting { swap: i64, file: String },
}

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

/// True if any memory setting is requested.
pub fn is_set(m: &LinuxMemory) -> bool {
    m.limit().is_some_and(|v| v != 0)
        || m.reservation().is_some_and(|v| v != 0)
        || m.swap().is_some_and(|v| v != 0)
        || m.kernel_tcp().is_some_and(|v| v != 0)
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
}

fn write_limit(dir: &Path, limit: i64, usage_file: &str, peak_file: &str, file: &str) -> crate::Result<()> {
    fs::write(dir, file, limit).map_err(|source| {
        if source.raw_os_error() == Some(libc::EBUSY) {
            MemoryError::BelowUsage {
                limit,
                usage: fs::read_u64_opt(dir, usage_file).unwrap_or(0),
                peak: fs::read_u64_opt(dir, peak_file).unwrap_or(0),
                source,
            }
            .into()
        } else {
            crate::Error::from(source)
        }
    })
}

fn set_memory_and_swap(dir: &Path, limit: i64, swap: i64) -> crate::Result<()> {
    let mem = |l| write_limit(dir, l, "memory.usage_in_bytes", "memory.max_usage_in_bytes", LIMIT);
    let memsw = |s| {
        write_limit(
            dir,
            s,
            "memory.memsw.usage_in_bytes",
            "memory.memsw.max_usage_in_bytes",
            MEMSW,
        )
    };
    let has_memsw = dir.join(MEMSW).exists();
    if swap != 0 && !has_memsw {
        if swap == -1 {
            // unlimited swap is what we have anyway
            return if limit != 0 { mem(limit) } else { Ok(()) };
        }
        return Err(MemoryError::NoSwapAccounting {
            swap,
            file: MEMSW.into(),
        }
        .into());
    }
    if swap > 0 && limit > 0 && swap < limit {
        return Err(MemoryError::SwapBelowLimit { swap, limit }.into());
    }
    // memsw must always be >= limit: raise memsw first when growing, lower limit first when shrinking.
    let current = fs::read_u64_opt(dir, LIMIT)?;
    let grow = swap == -1 || (limit > 0 && limit as u64 > current) || limit == -1;
    if grow {
        if swap != 0 {
            memsw(swap)?;
        }
        if limit != 0 {
            mem(limit)?;
        }
    } else {
        if limit != 0 {
            mem(limit)?;
        }
        if swap != 0 {
            memsw(swap)?;
        }
    }
    Ok(())
}

pub fn apply(dir: &Path, m: &LinuxMemory) -> crate::Result<()> {
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    // unlimited memory with swap unset means unlimited swap too (runc)
    if limit == -1 && swap == 0 {
        swap = -1;
    }
    set_memory_and_swap(dir, limit, swap)?;
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        fs::write(dir, "memory.soft_limit_in_bytes", r)?;
    }
    if let Some(tcp) = m.kernel_tcp().filter(|v| *v != 0) {
        fs::write_if_exists(dir, "memory.kmem.tcp.limit_in_bytes", tcp)?;
    }
    if m.disable_oom_killer() == Some(true) {
        fs::write(dir, "memory.oom_control", 1)?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(MemoryError::Swappiness { value: s }.into());
        }
        fs::write(dir, "memory.swappiness", s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fixture;
    use oci_spec::runtime::LinuxMemoryBuilder;

    fn dir() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for f in [
            LIMIT,
            MEMSW,
            "memory.soft_limit_in_bytes",
            "memory.kmem.tcp.limit_in_bytes",
            "memory.oom_control",
            "memory.swappiness",
        ] {
            fixture::set(t.path(), f, "0");
        }
        t
    }

    #[test]
    fn all_fields() {
        let t = dir();
        let m = LinuxMemoryBuilder::default()
            .limit(1 << 20)
            .swap(2 << 20)
            .reservation(1 << 19)
            .kernel_tcp(4096)
            .swappiness(10u64)
            .disable_oom_killer(true)
            .build()
            .unwrap();
        apply(t.path(), &m).unwrap();
        assert_eq!(fixture::get(t.path(), LIMIT), "1048576");
        assert_eq!(fixture::get(t.path(), MEMSW), "2097152");
        assert_eq!(fixture::get(t.path(), "memory.soft_limit_in_bytes"), "524288");
        assert_eq!(fixture::get(t.path(), "memory.kmem.tcp.limit_in_bytes"), "4096");
        assert_eq!(fixture::get(t.path(), "memory.swappiness"), "10");
        assert_eq!(fixture::get(t.path(), "memory.oom_control"), "1");
    }

    #[test]
    fn unlimited_and_errors() {
        let t = dir();
        apply(t.path(), &LinuxMemoryBuilder::default().limit(-1).build().unwrap()).unwrap();
        assert_eq!(fixture::get(t.path(), LIMIT), "-1");
        assert_eq!(fixture::get(t.path(), MEMSW), "-1");
        let e = apply(
            t.path(),
            &LinuxMemoryBuilder::default().limit(100).swap(50).build().unwrap(),
        );
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("memory+swap limit 50 should be >= memory limit 100"));
        let e = apply(
            t.path(),
            &LinuxMemoryBuilder::default().swappiness(101u64).build().unwrap(),
        );
        assert!(e.is_err());
        std::fs::remove_file(t.path().join(MEMSW)).unwrap();
        let e = apply(
            t.path(),
            &LinuxMemoryBuilder::default().limit(100).swap(200).build().unwrap(),
        );
        assert!(e.unwrap_err().to_string().contains("swap accounting"));
    }
}
