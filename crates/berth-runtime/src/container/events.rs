//! `events`: resource statistics and OOM notifications of a container.

use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::state::{Root, Status};

/// One event line, as runc prints it.
#[derive(Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub typ: &'a str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<berth_cgroups::Stats>,
}

/// The container's current stats.
pub fn stats(root: &Root, id: &str) -> Result<berth_cgroups::Stats> {
    let state = super::load_live(root, id)?;
    Ok(super::cgroup_of(&state, "read the stats of")?.stats()?)
}

/// Stream events to `emit` until the container stops: stats every
/// `interval`, and an "oom" event each time the OOM killer struck.
pub fn stream(root: &Root, id: &str, interval: Duration, emit: &mut dyn FnMut(&Event) -> bool) -> Result<()> {
    let state = super::load_live(root, id)?;
    let cg = super::cgroup_of(&state, "watch the events of")?;
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    let tick = Duration::from_millis(100).min(interval);
    let mut since = Duration::ZERO;
    while state.status(root) != Status::Stopped {
        let now = cg.oom_kill_count().unwrap_or(ooms);
        if now > ooms {
            ooms = now;
            if !emit(&Event {
                typ: "oom",
                id,
                data: None,
            }) {
                return Ok(());
            }
        }
        if since >= interval {
            since = Duration::ZERO;
            if let Ok(st) = cg.stats() {
                if !emit(&Event {
                    typ: "stats",
                    id,
                    data: Some(st),
                }) {
                    return Ok(());
                }
            }
        }
        std::thread::sleep(tick);
        since += tick;
    }
    Ok(())
}
