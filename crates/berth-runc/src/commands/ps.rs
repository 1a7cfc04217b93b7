//! `ps`: the host's `ps` output filtered to the container's processes.

use anyhow::Result;
use berth_runtime::container::ps;
use berth_runtime::Root;

pub fn run(root: &Root, id: &str, format: &str, ps_args: &[String]) -> Result<i32> {
    let pids = ps::pids(root, id).map_err(super::chain)?;
    if format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    for line in ps::table(&pids, ps_args).map_err(super::chain)? {
        println!("{line}");
    }
    Ok(0)
}
