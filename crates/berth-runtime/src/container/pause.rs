//! `pause` / `resume`: freeze and thaw the container's cgroup.

use crate::error::Result;
use crate::state::{Root, Status};

pub fn pause(root: &Root, id: &str) -> Result<()> {
    let (state, _) = super::load_in(root, id, &[Status::Running, Status::Created], "container not running")?;
    Ok(super::cgroup_of(&state, "pause")?.freeze()?)
}

pub fn resume(root: &Root, id: &str) -> Result<()> {
    let (state, _) = super::load_in(root, id, &[Status::Paused], "container not paused")?;
    Ok(super::cgroup_of(&state, "resume")?.thaw()?)
}
