//! `ps`: the host's `ps` output filtered to the container's processes.

use anyhow::{bail, Context, Result};
use berth_runtime::Root;

pub fn run(root: &Root, id: &str, format: &str, ps_args: &[String]) -> Result<i32> {
    let state = root.load(id).map_err(super::chain)?;
    let pids = match &state.cgroup {
        Some(cg) => cg.pids().map_err(|e| super::chain(e.into()))?,
        None => vec![state.pid],
    };
    if format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for line in lines {
        if let Some(pid) = line.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()) {
            if pids.contains(&pid) {
                println!("{line}");
            }
        }
    }
    Ok(0)
}
