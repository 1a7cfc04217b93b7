use std::path::Path;

use anyhow::{bail, Context, Result};

pub fn run(bundle: &Path, rootless: bool) -> Result<i32> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let spec = if rootless {
        berth_runtime::spec::rootless_spec(nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
    } else {
        berth_runtime::spec::default_spec()
    };
    std::fs::write(&path, serde_json::to_string_pretty(&spec)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(0)
}
