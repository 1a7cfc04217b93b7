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
