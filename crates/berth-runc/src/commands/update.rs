//! `update`: resources from flags or a JSON file (`-r -` reads stdin, as
//! containerd sends them).

use std::io::Read;

use anyhow::{bail, Context, Result};
use berth_runtime::oci_spec::runtime::LinuxResources;
use berth_runtime::Root;
use serde_json::{json, Map, Value};

use crate::cli::UpdateArgs;

pub fn run(root: &Root, a: &UpdateArgs) -> Result<i32> {
    let resources = match &a.resources {
        Some(path) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading resources from stdin")?;
            } else {
                text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            }
            serde_json::from_str::<LinuxResources>(&text)
                .with_context(|| format!("parsing resources from {}", path.display()))?
        }
        None => from_flags(a)?,
    };
    berth_runtime::container::update::update(root, &a.id, &resources).map_err(super::chain)?;
    Ok(0)
}

fn from_flags(a: &UpdateArgs) -> Result<LinuxResources> {
    let mut r = Map::new();
    let mut mem = Map::new();
    if let Some(v) = &a.memory {
        mem.insert("limit".into(), json!(parse_size(v)?));
    }
    if let Some(v) = &a.memory_reservation {
        mem.insert("reservation".into(), json!(parse_size(v)?));
    }
    if let Some(v) = &a.memory_swap {
        mem.insert("swap".into(), json!(parse_size(v)?));
    }
    if a.kernel_memory.is_some() || a.kernel_memory_tcp.is_some() {
        crate::log::warn("kernel memory limits are deprecated and ignored");
    }
    if !mem.is_empty() {
        r.insert("memory".into(), Value::Object(mem));
    }
    let mut cpu = Map::new();
    for (k, v) in [
        ("period", a.cpu_period.map(|v| json!(v))),
        ("quota", a.cpu_quota.map(|v| json!(v))),
        ("shares", a.cpu_share.map(|v| json!(v))),
        ("realtimePeriod", a.cpu_rt_period.map(|v| json!(v))),
        ("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v))),
        ("cpus", a.cpuset_cpus.clone().map(Value::from)),
        ("mems", a.cpuset_mems.clone().map(Value::from)),
    ] {
        if let Some(v) = v {
            cpu.insert(k.into(), v);
        }
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = a.pids_limit {
        r.insert("pids".into(), json!({"limit": p}));
    }
    if let Some(w) = a.blkio_weight {
        r.insert("blockIO".into(), json!({"weight": w}));
    }
    if r.is_empty() {
        bail!("update needs at least one resource flag or --resources");
    }
    Ok(serde_json::from_value(Value::Object(r))?)
}

/// Sizes as Docker's units.RAMInBytes takes them: "512m", "1g", "100k",
/// plain bytes, and -1 for unlimited.
pub fn parse_size(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches('b').trim_end_matches('i');
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| anyhow::anyhow!("invalid size {s:?}"))?;
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        _ => bail!("invalid size {s:?}"),
    };
    Ok((n * mult) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("-1").unwrap(), -1);
        assert!(parse_size("12x").is_err());
    }
}
