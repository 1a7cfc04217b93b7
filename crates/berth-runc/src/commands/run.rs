//! `run`: create + start, then (in the foreground) wait, forwarding
//! signals and the terminal, and return the container's exit code.

use anyhow::Result;
use berth_runtime::container::{create::create, delete, start::start, wait};
use berth_runtime::Root;
use nix::unistd::Pid;

use crate::cli::RunArgs;

pub fn run(root: &Root, a: &RunArgs) -> Result<i32> {
    if a.detach {
        create(root, &super::create::options(&a.create, false)).map_err(super::chain)?;
        start(root, &a.create.id).map_err(super::chain)?;
        return Ok(0);
    }
    if !a.no_subreaper {
        let _ = berth_runtime::sys::prctl::set_child_subreaper();
    }
    let old_mask = wait::block_signals().map_err(super::chain)?;
    let id = &a.create.id;
    let created = create(root, &super::create::options(&a.create, true)).map_err(super::chain)?;
    let pid = Pid::from_raw(created.state.pid);
    if let Err(e) = start(root, id) {
        let _ = delete::delete(root, id, true);
        return Err(super::chain(e));
    }
    let code = wait::wait_foreground(pid, created.console).map_err(super::chain)?;
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
    if !a.keep {
        delete::delete(root, id, true).map_err(super::chain)?;
    }
    Ok(code)
}
