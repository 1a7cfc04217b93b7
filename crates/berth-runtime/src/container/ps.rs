//! `ps`: a container's processes, and the host's `ps` output cut down to them.

use crate::error::{Error, Result};
use crate::state::Root;

/// Host pids of every process in the container (its cgroup's, or init alone
/// when it has no cgroup).
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>> {
    let state = root.load(id)?;
    match &state.cgroup {
        Some(cg) => Ok(cg.pids()?),
        None => Ok(vec![state.pid]),
    }
}

/// Runs the host's `ps` with `ps_args` (`-ef` when empty) and keeps its
/// header and the lines whose PID column is one of `pids`.
pub fn table(pids: &[i32], ps_args: &[String]) -> Result<Vec<String>> {
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::sys("running ps", e))?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::Invalid("ps output has no PID column".into()))?;
    let mut kept = vec![header.to_string()];
    kept.extend(
        lines
            .filter(|l| {
                l.split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok())
                    .is_some_and(|p| pids.contains(&p))
            })
            .map(str::to_string),
    );
    Ok(kept)
}
