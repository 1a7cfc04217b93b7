//! `delete`: remove a stopped (or, with force, any) container and
//! everything the runtime made for it.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::hooks;
use crate::state::{Root, State, Status};

pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let state = match root.load(id) {
        Ok(s) => s,
        Err(Error::NotFound(_)) => {
            // A create that died before writing its state leaves a bare dir.
            let dir = root.container_dir(id);
            if dir.is_dir() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return if force {
                Ok(())
            } else {
                Err(Error::NotFound(id.to_string()))
            };
        }
        Err(e) => return Err(e),
    };
    match state.status(root) {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&state)?,
        s @ (Status::Running | Status::Paused | Status::Creating) => {
            if !force {
                return Err(Error::State(format!(
                    "cannot delete container {id} that is not stopped: {s}"
                )));
            }
            kill_and_wait(&state)?;
        }
    }
    destroy(root, &state)
}

/// SIGKILL everything in the container and wait until init is gone.
fn kill_and_wait(state: &State) -> Result<()> {
    match &state.cgroup {
        Some(cg) => {
            cg.kill_all(libc::SIGKILL)?;
            if matches!(cg.freezer_state(), Ok(berth_cgroups::FreezerState::Frozen)) {
                let _ = cg.thaw();
            }
        }
        None => {
            let _ = nix::sys::signal::kill(Pid::from_raw(state.pid), Signal::SIGKILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut nap = Duration::from_micros(20);
    while state.init_alive() {
        if Instant::now() > deadline {
            return Err(Error::State(format!(
                "container {} init (pid {}) did not die after SIGKILL",
                state.id, state.pid
            )));
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(5));
    }
    Ok(())
}

/// Remove the cgroup and state, then run poststop hooks.
pub fn destroy(root: &Root, state: &State) -> Result<()> {
    if let Some(cg) = &state.cgroup {
        // Processes that outlived init (no pid namespace) die with it.
        if cg.pids().map(|p| !p.is_empty()).unwrap_or(false) {
            cg.kill_all(libc::SIGKILL)?;
        }
        destroy_cgroup(cg)?;
    }
    let dir = root.container_dir(&state.id);
    std::fs::remove_dir_all(&dir).map_err(|e| Error::path("removing state directory", &dir, e))?;
    if let Some(h) = state.config.hooks().as_ref().and_then(|h| h.poststop().as_ref()) {
        if let Err(e) = hooks::run_all("poststop", h, &super::hook_state(state, Status::Stopped)) {
            eprintln!("berth-runc: warning: {e}");
        }
    }
    Ok(())
}

fn destroy_cgroup(cg: &berth_cgroups::Cgroup) -> Result<()> {
    // Killed tasks leave their cgroup asynchronously: retry briefly.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match cg.destroy() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}
