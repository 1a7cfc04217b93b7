use anyhow::Result;
use berth_runtime::Root;

pub fn run(root: &Root, id: &str) -> Result<i32> {
    berth_runtime::container::start::start(root, id).map_err(super::chain)?;
    Ok(0)
}
