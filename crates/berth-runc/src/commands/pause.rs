use anyhow::Result;
use berth_runtime::Root;

pub fn pause(root: &Root, id: &str) -> Result<i32> {
    berth_runtime::container::pause::pause(root, id).map_err(super::chain)?;
    Ok(0)
}

pub fn resume(root: &Root, id: &str) -> Result<i32> {
    berth_runtime::container::pause::resume(root, id).map_err(super::chain)?;
    Ok(0)
}
