//! v2 memory controller: memory.max, memory.swap.max (swap only, not memory+swap), memory.low.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use crate::fs;
use crate::v1::memory::MemoryError;

/// Convert the OCI memory+swap limit to a memory.swap.max value (runc's rules); 0 means leave alone,
/// -1 means "max".
pub fn swap_value(swap: i64, limit: i64) -> Result<i64, MemoryError> {
    if limit == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if limit == 0 || limit == -1 {
        return Err(MemoryError::SwapWithoutLimit { swap });
    }
    if swap < limit {
        return Err(MemoryError::SwapBelowLimit { swap, limit });
    }
    Ok(swap - limit)
}

fn max_str(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

pub fn apply(dir: &Path, m: &LinuxMemory) -> crate::Result<()> {
    let limit = m.limit().unwrap_or(0);
    let swap = swap_value(m.swap().unwrap_or(0), limit)?;
    // memory+swap equal to memory means "no swap": write 0 (runc does the same)
    let disable_swap = swap == 0 && m.swap().is_some_and(|s| s > 0);
    if swap != 0 || disable_swap {
        let written = fs::write_if_exists(dir, "memory.swap.max", max_str(swap))?;
        if !written && swap != -1 {
            return Err(MemoryError::NoSwapAccounting {
                swap: m.swap().unwrap_or(0),
                file: "memory.swap.max".into(),
            }
            .into());
        }
    }
    if limit != 0 {
        fs::write(dir, "memory.max", max_str(limit)).map_err(|source| {
            if source.raw_os_error() == Some(libc::EBUSY) {
                MemoryError::BelowUsage {
                    limit,
                    usage: fs::read_u64_opt(dir, "memory.current").unwrap_or(0),
                    peak: fs::read_u64_opt(dir, "memory.peak").unwrap_or(0),
                    source,
                }
                .into()
            } else {
                crate::Error::from(source)
            }
        })?;
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        fs::write(dir, "memory.low", max_str(r))?;
    }
    // swappiness, kernel/kernelTCP and disableOOMKiller have no v2 file; runc ignores them too.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fixture;
    use oci_spec::runtime::LinuxMemoryBuilder;

    #[test]
    fn conversion() {
        assert_eq!(swap_value(0, -1).unwrap(), -1);
        assert_eq!(swap_value(-1, 100).unwrap(), -1);
        assert_eq!(swap_value(0, 100).unwrap(), 0);
        assert_eq!(swap_value(300, 100).unwrap(), 200);
        assert!(swap_value(50, 100).is_err());
        assert!(swap_value(50, 0).is_err());
    }

    #[test]
    fn files() {
        let t = tempfile::tempdir().unwrap();
        for f in ["memory.max", "memory.swap.max", "memory.low"] {
            fixture::set(t.path(), f, "max");
        }
        let m = LinuxMemoryBuilder::default()
            .limit(1 << 20)
            .swap(3 << 20)
            .reservation(4096)
            .build()
            .unwrap();
        apply(t.path(), &m).unwrap();
        assert_eq!(fixture::get(t.path(), "memory.max"), "1048576");
        assert_eq!(fixture::get(t.path(), "memory.swap.max"), "2097152");
        assert_eq!(fixture::get(t.path(), "memory.low"), "4096");
        apply(t.path(), &LinuxMemoryBuilder::default().limit(-1).build().unwrap()).unwrap();
        assert_eq!(fixture::get(t.path(), "memory.max"), "max");
        assert_eq!(fixture::get(t.path(), "memory.swap.max"), "max");
        std::fs::remove_file(t.path().join("memory.swap.max")).unwrap();
        let e = apply(t.path(), &m).unwrap_err();
        assert!(e.to_string().contains("memory.swap.max is absent"), "{e}");
    }
}
