use anyhow::Result;
use berth_runtime::Root;

pub fn run(root: &Root, id: &str) -> Result<i32> {
    let state = root.load(id).map_err(super::chain)?;
    super::print_json(&state.oci(root))?;
    Ok(0)
}
