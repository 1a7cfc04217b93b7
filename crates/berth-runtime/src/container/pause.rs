//! `pause` / `resume`: freeze and thaw the container's cgroup.

use crate::error::{Error, Result};
use crate::state::{Root, Status};

pub fn pause(root: &Root, id: &str) -> Result<()> {
    let (state, _) = super::load_in(root, id, &[Status::Running, Status::Created], "container not running")?;
    let cg = state
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::State("cannot pause a container without a cgroup".into()))?;
    Ok(cg.freeze()?)
}

pub fn resume(root: &Root, id: &str) -> Result<()> {
    let (state, _) = super::load_in(root, id, &[Status::Paused], "container not paused")?;
    let cg = state
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::State("cannot resume a container without a cgroup".into()))?;
    Ok(cg.thaw()?)
}
