//! The processes the runtime forks: the container's init (`init`) and a
//! process exec'd into a running container (`tenant`), the channel they talk
//! to the runtime over, and the set-up steps they share.

pub mod channel;
pub mod init;
pub mod reaper;
pub mod setup;
pub mod tenant;

use std::convert::Infallible;

use crate::error::Result;
use crate::sys::clone::exit_immediately;
use channel::{Channel, Message};

/// Until execve this process is the runtime binary: nothing in the
/// container may open /proc/<us>/exe, /proc/<us>/fd or /proc/<us>/mem
/// (CVE-2019-5736). Called first thing under a root runtime, and once the
/// id maps are written under an unprivileged one (which cannot write those
/// of a non-dumpable process); execve of the container's program makes the
/// process dumpable again.
pub(crate) fn make_non_dumpable() -> Result<()> {
    crate::sys::prctl::set_dumpable(false)
        .map_err(|e| crate::Error::sys("making the container process non-dumpable", e))
}

/// Run a child's set-up; on failure, report the error chain to the runtime
/// and exit. Never returns.
pub(crate) fn child_main(channel: &Channel, body: impl FnOnce() -> Result<Infallible>) -> ! {
    let err = match body() {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let text = err.chain();
    if channel.send(&Message::Error(text.clone())).is_err() {
        // The runtime is gone (the container was already started): the
        // container's stderr is the only place left to say it.
        eprintln!("berth-runc: {text}");
    }
    exit_immediately(1)
}
