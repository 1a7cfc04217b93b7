//! `start`: let a created container's init exec the user's program.

use std::io::Read;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

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
    // Non-blocking open never hangs; init, blocked opening the write end,
    // wakes up and writes one byte.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .at("opening exec fifo", &fifo)?;
    loop {
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(100u16)).op("waiting on exec fifo")?;
        if n > 0 {
            let mut b = [0u8; 1];
            match f.read(&mut b) {
                Ok(1) => break,
                Ok(_) => return Err(Error::State("cannot start a container that has stopped".into())),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Error::path("reading exec fifo", &fifo, e)),
            }
        }
        if !state.init_alive() {
            return Err(Error::State("cannot start a container that has stopped".into()));
        }
        std::thread::sleep(Duration::from_micros(1));
    }
    let _ = std::fs::remove_file(&fifo);
    if let Some(h) = state.config.hooks().as_ref().and_then(|h| h.poststart().as_ref()) {
        let json = super::hook_state(&state, root, Some(Status::Running));
        if let Err(e) = hooks::run_all("poststart", h, &json) {
            // The spec: a failing poststart hook is a warning, not a failure.
            eprintln!("berth-runc: warning: {e}");
        }
    }
    Ok(state)
}

use std::os::unix::fs::OpenOptionsExt;
