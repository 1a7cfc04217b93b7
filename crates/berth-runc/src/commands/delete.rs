use anyhow::Result;
use berth_runtime::Root;

pub fn run(root: &Root, id: &str, force: bool) -> Result<i32> {
    berth_runtime::container::delete::delete(root, id, force).map_err(super::chain)?;
    Ok(0)
}
