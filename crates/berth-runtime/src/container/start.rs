//! `start`: let a created container's init exec the user's program.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use crate::error::{Error, IoContext, Result};
use crate::hooks;
use crate::state::{Root, State, Status, EXEC_FIFO};

pub fn start(root: &Root, id: &str) -> Result<State> {
    let state = root.load(id)?;
    match state.status(root) {
        Status::Created => {}
        Status::Stopped => return Err(Error::State("cannot start a container that has stopped".into())),
        _ => return Err(Error::State("cannot start an already running container".into())),
    }
    let fifo = root.container_dir(id).join(EXEC_FIFO);
    // init holds the fifo open for reading; with no reader left (init died)
    // a non-blocking open for writing fails with ENXIO.
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(Error::State("cannot start a container that has stopped".into()))
        }
        Err(e) => return Err(Error::path("opening exec fifo", &fifo, e)),
    };
    f.write_all(b"0").at("writing exec fifo", &fifo)?;
    wait_for_exec(&f, &state);
    drop(f);
    let _ = std::fs::remove_file(&fifo);
    if let Some(h) = state.config.hooks().as_ref().and_then(|h| h.poststart().as_ref()) {
        let json = super::hook_state(&state, Status::Running);
        if let Err(e) = hooks::run_all("poststart", h, &json) {
            // The spec: a failing poststart hook is a warning, not a failure.
            eprintln!("berth-runc: warning: {e}");
        }
    }
    Ok(state)
}

/// Wait until init has exec'd the user's program (or died): its end of the
/// fifo is close-on-exec, so our write end then reports POLLERR. This makes
/// poststart hooks run after the process started, as the spec requires.
fn wait_for_exec(f: &std::fs::File, state: &State) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) if state.init_alive() => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
    }
}
