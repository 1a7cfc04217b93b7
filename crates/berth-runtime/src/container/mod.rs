//! Operations on containers, one file per verb.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod kill;
pub mod pause;
pub mod ps;
pub mod start;
pub mod update;
pub mod wait;

use crate::error::{Error, Result};
use crate::state::{Root, State, Status};

/// Load a container and check it is in one of `allowed`; otherwise fail
/// with `msg` (runc's wording).
pub(crate) fn load_in(root: &Root, id: &str, allowed: &[Status], msg: &str) -> Result<(State, Status)> {
    let state = root.load(id)?;
    let status = state.status(root);
    if allowed.contains(&status) {
        Ok((state, status))
    } else {
        Err(Error::State(msg.to_string()))
    }
}

/// [`load_in`] for a container whose processes exist (created, running or paused), failing
/// with runc's "container not running" otherwise.
pub(crate) fn load_live(root: &Root, id: &str) -> Result<State> {
    load_in(
        root,
        id,
        &[Status::Created, Status::Running, Status::Paused],
        "container not running",
    )
    .map(|(state, _)| state)
}

/// The container's cgroup, or the error saying `action` needs one (rootless without a
/// delegated cgroup has none).
pub(crate) fn cgroup_of<'a>(state: &'a State, action: &str) -> Result<&'a berth_cgroups::Cgroup> {
    state
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::State(format!("cannot {action} a container without a cgroup")))
}

/// The state JSON handed to hooks, with the status the caller already
/// knows (no look-up of the live system: this runs on the create path).
pub(crate) fn hook_state(state: &State, status: Status) -> Vec<u8> {
    serde_json::to_vec(&oci_state(state, status)).unwrap_or_default()
}

/// The OCI state document of `state` with the given status.
pub(crate) fn oci_state(state: &State, status: Status) -> crate::state::OciState {
    crate::state::OciState {
        oci_version: state.config.version().clone(),
        id: state.id.clone(),
        pid: state.pid,
        status,
        bundle: state.bundle.clone(),
        rootfs: state.rootfs.clone(),
        created: state.created.clone(),
        owner: String::new(),
        annotations: state.config.annotations().clone().unwrap_or_default(),
    }
}
