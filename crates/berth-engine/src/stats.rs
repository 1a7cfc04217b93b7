//! Resource samples of running containers in the shape of the Engine API's
//! `GET /containers/{id}/stats` (cpu, memory, block I/O, pids, networks),
//! from the container's cgroup and, for the network, the `/proc/<pid>/net/dev`
//! of its init (which shows the container's network namespace). The
//! front ends derive percentages from two samples, as Docker's CLI does.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::{Engine, Result, Row};

/// Nanoseconds of CPU time the host has spent, all CPUs together, and the
/// number of CPUs online, from `proc_stat` (the content of `/proc/stat`).
pub fn system_cpu(proc_stat: &str) -> (u64, u32) {
    let ticks_per_sec = 100u64; // USER_HZ is 100 on every Linux ABI
    let mut total = 0u64;
    let mut cpus = 0u32;
    for line in proc_stat.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => total = f.take(8).filter_map(|v| v.parse::<u64>().ok()).sum(),
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total * (1_000_000_000 / ticks_per_sec), cpus.max(1))
}

/// Per-interface counters from a `/proc/<pid>/net/dev` text, loopback left out.
pub fn net_dev(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if v.len() < 16 {
            continue;
        }
        out.insert(
            name.to_owned(),
            json!({
                "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11],
            }),
        );
    }
    out
}

/// The host's memory in bytes (`MemTotal` of `/proc/meminfo`).
pub fn mem_total(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Engine {
    /// One sample of a running container's resource use, in Docker's shape.
    pub fn stats_sample(&self, row: &Row) -> Result<Value> {
        let s = self.stats(row)?;
        let (system, cpus) = system_cpu(&read("/proc/stat"));
        let host_mem = mem_total(&read("/proc/meminfo"));
        let limit = if s.memory.usage.limit == 0 || s.memory.usage.limit >= host_mem {
            host_mem
        } else {
            s.memory.usage.limit
        };
        let blkio: Vec<Value> = s
            .blkio
            .io_service_bytes_recursive
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect();
        let networks = if row.pid > 0 {
            net_dev(&read(format!("/proc/{}/net/dev", row.pid)))
        } else {
            Map::new()
        };
        Ok(json!({
            "id": row.id,
            "name": format!("/{}", row.name),
            "read": berth_runtime::state::now_rfc3339(),
            "pids_stats": {"current": s.pids.current, "limit": s.pids.limit},
            "cpu_stats": {
                "cpu_usage": {
                    "total_usage": s.cpu.usage.total,
                    "usage_in_kernelmode": s.cpu.usage.kernel,
                    "usage_in_usermode": s.cpu.usage.user,
                },
                "system_cpu_usage": system,
                "online_cpus": cpus,
                "throttling_data": {
                    "periods": s.cpu.throttling.periods,
                    "throttled_periods": s.cpu.throttling.throttled_periods,
                    "throttled_time": s.cpu.throttling.throttled_time,
                },
            },
            "memory_stats": {
                "usage": s.memory.usage.usage,
                "limit": limit,
                "stats": s.memory.raw,
            },
            "blkio_stats": {"io_service_bytes_recursive": blkio},
            "networks": networks,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_counters_parse() {
        let stat = "cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 5 0 5 40 0 0 0 0 0 0\ncpu1 5 0 5 40 0 0 0 0 0 0\nintr 1\n";
        assert_eq!(system_cpu(stat), (100 * 10_000_000, 2));
        let dev = "Inter-|   Receive\n face |bytes\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 1500 10 0 0 0 0 0 0 700 5 0 0 0 0 0 0\n";
        let n = net_dev(dev);
        assert_eq!(n.len(), 1);
        assert_eq!(
            (n["eth0"]["rx_bytes"].as_u64(), n["eth0"]["tx_bytes"].as_u64()),
            (Some(1500), Some(700))
        );
        assert_eq!(mem_total("MemTotal:       1024 kB\nMemFree: 1 kB\n"), 1 << 20);
    }
}
