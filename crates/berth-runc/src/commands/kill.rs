use anyhow::Result;
use berth_runtime::container::kill::{kill, parse_signal};
use berth_runtime::Root;

pub fn run(root: &Root, id: &str, signal: &str, all: bool) -> Result<i32> {
    let sig = parse_signal(signal).map_err(super::chain)?;
    kill(root, id, sig, all).map_err(super::chain)?;
    Ok(0)
}
