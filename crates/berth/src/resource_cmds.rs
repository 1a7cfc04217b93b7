//! `stats` and `update`: containers' resource use and limits.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use berth_engine::update::Update;
use clap::Args;
use serde_json::{json, Value};

use crate::cli::Global;
use crate::container_args::size_opt;
use crate::container_cmds::open;
use crate::units::{bytes_size, human_size};

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// A Go template, `table …`, or `json`.
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub resources: crate::container_args::ResourceArgs,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn update(g: &Global, a: &UpdateArgs) -> Result<i32> {
    let r = &a.resources;
    let u = Update {
        memory: size_opt(&r.memory, "--memory")?,
        memory_swap: size_opt(&r.memory_swap, "--memory-swap")?,
        nano_cpus: r.cpus.map(|c| (c * 1e9) as i64),
        cpu_shares: r.cpu_shares,
        cpuset_cpus: r.cpuset_cpus.clone(),
        pids_limit: r.pids_limit,
        restart: a
            .restart
            .as_deref()
            .map(crate::container_args::restart_flag)
            .transpose()?,
    };
    crate::container_cmds::each(g, &a.containers, |e, name| {
        e.update(name, &u)
            .map_err(|err| format!("Cannot update container {name}: {err}"))
    })
}

fn num(v: &Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

/// One row of `docker stats` from a sample and the one before it, computed
/// as Docker's CLI does.
pub fn stats_row(cur: &Value, pre: Option<&Value>, id: &str, name: &str) -> Value {
    let cpu = match pre {
        Some(pre) => {
            let cpu_delta = num(cur, &["cpu_stats", "cpu_usage", "total_usage"]) as f64
                - num(pre, &["cpu_stats", "cpu_usage", "total_usage"]) as f64;
            let sys_delta = num(cur, &["cpu_stats", "system_cpu_usage"]) as f64
                - num(pre, &["cpu_stats", "system_cpu_usage"]) as f64;
            let cpus = num(cur, &["cpu_stats", "online_cpus"]).max(1) as f64;
            if cpu_delta > 0.0 && sys_delta > 0.0 {
                cpu_delta / sys_delta * cpus * 100.0
            } else {
                0.0
            }
        }
        None => 0.0,
    };
    let mem = &cur["memory_stats"];
    let usage = num(mem, &["usage"]);
    // Docker leaves out the page cache that can be dropped at once.
    let inactive = ["total_inactive_file", "inactive_file"]
        .iter()
        .map(|k| num(mem, &["stats", k]))
        .find(|v| *v > 0 && *v < usage)
        .unwrap_or(0);
    let used = usage - inactive;
    let limit = num(mem, &["limit"]);
    let mem_perc = if limit > 0 {
        used as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0, 0);
    if let Some(nets) = cur["networks"].as_object() {
        for n in nets.values() {
            rx += num(n, &["rx_bytes"]);
            tx += num(n, &["tx_bytes"]);
        }
    }
    let (mut read, mut write) = (0, 0);
    for e in cur["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += num(e, &["value"]),
            Some("write") => write += num(e, &["value"]),
            _ => {}
        }
    }
    json!({
        "Container": id,
        "ID": id,
        "Name": name,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(used), bytes_size(limit)),
        "MemPerc": format!("{mem_perc:.2}%"),
        "NetIO": format!("{} / {}", human_size(rx), human_size(tx)),
        "BlockIO": format!("{} / {}", human_size(read), human_size(write)),
        "PIDs": num(cur, &["pids_stats", "current"]).to_string(),
    })
}

const STATS_HEADERS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

pub fn stats(g: &Global, a: &StatsArgs) -> Result<i32> {
    let e = open(g)?;
    // Named containers must exist.
    let mut named = Vec::new();
    for n in &a.containers {
        named.push(e.lookup(n)?);
    }
    let format = a.format.clone().unwrap_or_else(|| {
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
            .into()
    });
    let tty = std::io::stdout().is_terminal();
    let mut previous: HashMap<String, Value> = HashMap::new();
    let mut first = true;
    loop {
        let rows = if named.is_empty() {
            e.list()?
                .into_iter()
                .filter(|r| a.all || r.is_running())
                .collect::<Vec<_>>()
        } else {
            named
                .iter()
                .map(|id| e.get(id))
                .collect::<berth_engine::Result<Vec<_>>>()?
        };
        let sample = |r: &berth_engine::Row| if r.is_running() { e.stats_sample(r).ok() } else { None };
        if first {
            // A first sample to measure CPU use against.
            for r in &rows {
                if let Some(s) = sample(r) {
                    previous.insert(r.id.clone(), s);
                }
            }
            std::thread::sleep(Duration::from_millis(500));
            first = false;
        }
        let mut out = Vec::new();
        let mut next = HashMap::new();
        for r in &rows {
            let id = if a.no_trunc {
                r.id.clone()
            } else {
                r.id[..12].to_string()
            };
            match sample(r) {
                Some(cur) => {
                    out.push(stats_row(&cur, previous.get(&r.id), &id, &r.name));
                    next.insert(r.id.clone(), cur);
                }
                None => out.push(stats_row(&Value::Null, None, &id, &r.name)),
            }
        }
        previous = next;
        if !a.no_stream && tty {
            // Clear the screen and redraw, as Docker does.
            print!("\x1b[2J\x1b[H");
        }
        crate::output::print_list(&out, &format, STATS_HEADERS)?;
        if a.no_stream {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_compute_like_docker() {
        let pre = json!({"cpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000u64}, "system_cpu_usage": 10_000_000_000u64, "online_cpus": 2}});
        let cur = json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 1_500_000_000u64}, "system_cpu_usage": 12_000_000_000u64, "online_cpus": 2},
            "memory_stats": {"usage": 3 << 20, "limit": 100 << 20, "stats": {"total_inactive_file": 1 << 20}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 700}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 8192}]},
            "pids_stats": {"current": 3},
        });
        let r = stats_row(&cur, Some(&pre), "abc", "web");
        assert_eq!(r["CPUPerc"], "50.00%");
        assert_eq!(r["MemUsage"], "2MiB / 100MiB");
        assert_eq!(r["MemPerc"], "2.00%");
        assert_eq!(r["NetIO"], "1.5kB / 700B");
        assert_eq!(r["BlockIO"], "4.1kB / 8.19kB");
        assert_eq!(r["PIDs"], "3");
        let stopped = stats_row(&Value::Null, None, "abc", "web");
        assert_eq!(
            (stopped["CPUPerc"].as_str(), stopped["MemUsage"].as_str()),
            (Some("0.00%"), Some("0B / 0B"))
        );
    }
}
