use anyhow::Result;

pub fn run() -> Result<i32> {
    super::print_json(&berth_runtime::features::features())?;
    Ok(0)
}
