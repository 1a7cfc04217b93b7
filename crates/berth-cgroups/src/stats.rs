//! Container statistics in the shape of runc's `events --stats` "data" object.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cgroup::{Cgroup, Target};
use crate::fs;

mod types;
pub use types::*;

/// USER_HZ ticks in cpuacct.stat to nanoseconds.
const NS_PER_TICK: u64 = 1_000_000_000 / 100;

fn keyed(content: Option<String>) -> BTreeMap<String, u64> {
    content
        .map(|c| fs::parse_flat_keyed(&c).into_iter().collect())
        .unwrap_or_default()
}

pub(crate) fn collect(cg: &Cgroup) -> crate::Result<Stats> {
    let mut s = Stats::default();
    match cg.target("cpuacct") {
        Some(Target::V1(d)) => v1_cpuacct(d, &mut s.cpu)?,
        _ => {
            if let Some(Target::V2(d)) = cg.target("cpu").or_else(|| cg.path_for("").map(Target::V2)) {
                v2_cpu(d, &mut s.cpu)?;
            }
        }
    }
    if let Some(Target::V1(d)) = cg.target("cpu") {
        let st = keyed(fs::read_opt(d, "cpu.stat")?);
        s.cpu.throttling = Throttling {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: st.get("throttled_time").copied().unwrap_or(0),
        };
    }
    match cg.target("memory") {
        Some(Target::V1(d)) => s.memory = v1_memory(d)?,
        Some(Target::V2(d)) => s.memory = v2_memory(d)?,
        None => {}
    }
    if let Some(Target::V1(d) | Target::V2(d)) = cg.target("pids") {
        s.pids.current = fs::read_u64_opt(d, "pids.current")?;
        let max = fs::read_u64_opt(d, "pids.max")?;
        s.pids.limit = if max == u64::MAX { 0 } else { max };
    }
    match (cg.target("blkio"), cg.target("io")) {
        (Some(Target::V1(d)), _) => s.blkio = v1_blkio(d)?,
        (_, Some(Target::V2(d))) => s.blkio = v2_io(d)?,
        _ => {}
    }
    match cg.target("hugetlb") {
        Some(Target::V1(d)) => s.hugetlb = hugetlb(d, true)?,
        Some(Target::V2(d)) => s.hugetlb = hugetlb(d, false)?,
        None => {}
    }
    Ok(s)
}

fn v1_cpuacct(d: &Path, cpu: &mut Cpu) -> crate::Result<()> {
    cpu.usage.total = fs::read_u64_opt(d, "cpuacct.usage")?;
    let percpu = |f| -> crate::Result<Vec<u64>> {
        Ok(fs::read_opt(d, f)?
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(fs::parse_u64)
            .collect())
    };
    cpu.usage.percpu = percpu("cpuacct.usage_percpu")?;
    cpu.usage.percpu_kernel = percpu("cpuacct.usage_percpu_sys")?;
    cpu.usage.percpu_user = percpu("cpuacct.usage_percpu_user")?;
    let st = keyed(fs::read_opt(d, "cpuacct.stat")?);
    cpu.usage.user = st.get("user").copied().unwrap_or(0) * NS_PER_TICK;
    cpu.usage.kernel = st.get("system").copied().unwrap_or(0) * NS_PER_TICK;
    Ok(())
}

fn v2_cpu(d: &Path, cpu: &mut Cpu) -> crate::Result<()> {
    let st = keyed(fs::read_opt(d, "cpu.stat")?);
    let g = |k: &str| st.get(k).copied().unwrap_or(0);
    cpu.usage.total = g("usage_usec") * 1000;
    cpu.usage.user = g("user_usec") * 1000;
    cpu.usage.kernel = g("system_usec") * 1000;
    cpu.throttling = Throttling {
        periods: g("nr_periods"),
        throttled_periods: g("nr_throttled"),
        throttled_time: g("throttled_usec") * 1000,
    };
    Ok(())
}

fn v1_entry(d: &Path, prefix: &str) -> crate::Result<MemoryEntry> {
    Ok(MemoryEntry {
        usage: fs::read_u64_opt(d, &format!("{prefix}.usage_in_bytes"))?,
        max: fs::read_u64_opt(d, &format!("{prefix}.max_usage_in_bytes"))?,
        failcnt: fs::read_u64_opt(d, &format!("{prefix}.failcnt"))?,
        limit: (fs::read_u64_opt(d, &format!("{prefix}.limit_in_bytes"))?),
    })
}

fn v1_memory(d: &Path) -> crate::Result<Memory> {
    let raw = keyed(fs::read_opt(d, "memory.stat")?);
    Ok(Memory {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: v1_entry(d, "memory")?,
        swap: v1_entry(d, "memory.memsw")?,
        kernel: v1_entry(d, "memory.kmem")?,
        kernel_tcp: v1_entry(d, "memory.kmem.tcp")?,
        oom_kill: fs::read_keyed(d, "memory.oom_control", "oom_kill")?,
        raw,
    })
}

fn v2_memory(d: &Path) -> crate::Result<Memory> {
    let raw = keyed(fs::read_opt(d, "memory.stat")?);
    let events = keyed(fs::read_opt(d, "memory.events")?);
    let usage = fs::read_u64_opt(d, "memory.current")?;
    let swap_usage = fs::read_u64_opt(d, "memory.swap.current")?;
    let max = fs::read_u64_opt(d, "memory.max")?;
    let swap_max = fs::read_u64_opt(d, "memory.swap.max")?;
    Ok(Memory {
        cache: raw.get("file").copied().unwrap_or(0),
        usage: MemoryEntry {
            limit: max,
            usage,
            max: fs::read_u64_opt(d, "memory.peak")?,
            failcnt: events.get("max").copied().unwrap_or(0),
        },
        // runc reports swap as memory+swap on v2 for compatibility with v1.
        swap: MemoryEntry {
            limit: if swap_max == u64::MAX || max == u64::MAX {
                u64::MAX
            } else {
                swap_max + max
            },
            usage: swap_usage + usage,
            max: 0,
            failcnt: 0,
        },
        kernel: MemoryEntry::default(),
        kernel_tcp: MemoryEntry::default(),
        oom_kill: events.get("oom_kill").copied().unwrap_or(0),
        raw,
    })
}

/// Parse blkio files like "8:0 Read 4096\n8:0 Write 0\nTotal 4096".
pub fn parse_blkio(content: &str) -> Vec<BlkioEntry> {
    content
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, value) = match f.as_slice() {
                [dev, op, value] => (*dev, *op, *value),
                [dev, value] if dev.contains(':') => (*dev, "", *value),
                _ => return None,
            };
            let (maj, min) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

fn v1_blkio(d: &Path) -> crate::Result<Blkio> {
    let read = |names: &[&str]| -> crate::Result<Vec<BlkioEntry>> {
        for n in names {
            if let Some(c) = fs::read_opt(d, n)? {
                let e = parse_blkio(&c);
                if !e.is_empty() {
                    return Ok(e);
                }
            }
        }
        Ok(Vec::new())
    };
    Ok(Blkio {
        io_service_bytes_recursive: read(&[
            "blkio.io_service_bytes_recursive",
            "blkio.bfq.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes_recursive",
        ])?,
        io_serviced_recursive: read(&[
            "blkio.io_serviced_recursive",
            "blkio.bfq.io_serviced_recursive",
            "blkio.throttle.io_serviced_recursive",
        ])?,
        io_queued_recursive: read(&["blkio.io_queued_recursive"])?,
        io_service_time_recursive: read(&["blkio.io_service_time_recursive"])?,
        io_wait_time_recursive: read(&["blkio.io_wait_time_recursive"])?,
        io_merged_recursive: read(&["blkio.io_merged_recursive"])?,
        io_time_recursive: read(&["blkio.time_recursive"])?,
        sectors_recursive: read(&["blkio.sectors_recursive"])?,
    })
}

/// Parse io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0").
pub fn parse_io_stat(content: &str) -> Blkio {
    let mut b = Blkio::default();
    for line in content.lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    b
}

fn v2_io(d: &Path) -> crate::Result<Blkio> {
    Ok(parse_io_stat(&fs::read_opt(d, "io.stat")?.unwrap_or_default()))
}

fn hugetlb(d: &Path, v1: bool) -> crate::Result<BTreeMap<String, Hugetlb>> {
    let mut out = BTreeMap::new();
    let suffix = if v1 { ".limit_in_bytes" } else { ".max" };
    let Ok(rd) = std::fs::read_dir(d) else {
        return Ok(out);
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(size) = name.strip_prefix("hugetlb.").and_then(|n| n.strip_suffix(suffix)) else {
            continue;
        };
        if size.contains('.') {
            continue; // rsvd variants
        }
        let h = if v1 {
            Hugetlb {
                usage: fs::read_u64_opt(d, &format!("hugetlb.{size}.usage_in_bytes"))?,
                max: fs::read_u64_opt(d, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                failcnt: fs::read_u64_opt(d, &format!("hugetlb.{size}.failcnt"))?,
            }
        } else {
            Hugetlb {
                usage: fs::read_u64_opt(d, &format!("hugetlb.{size}.current"))?,
                max: 0,
                failcnt: fs::read_keyed(d, &format!("hugetlb.{size}.events"), "max")?,
            }
        };
        out.insert(size.to_string(), h);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
