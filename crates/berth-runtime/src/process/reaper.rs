//! The minimal init of `--init` (annotation [`INIT_ANNOTATION`]): the
//! container's pid 1 forks the user's program and stays behind as its
//! parent, forwarding every signal to it and reaping every zombie of the
//! namespace, then exits with the program's status. It is the runtime's own
//! code, already in memory, so no init binary has to be put into the
//! container; it runs as the container's user, with its capabilities and
//! seccomp filter, and stays non-dumpable.
//!
//! [`INIT_ANNOTATION`]: crate::config::INIT_ANNOTATION

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::sys::clone::{exit_immediately, fork_with_namespaces, Forked};

/// Forks: the child returns (to exec the program); the parent becomes the
/// reaper and never returns.
pub fn fork_program() -> std::io::Result<()> {
    // Block every signal before the fork so none is lost between it and the
    // signalfd; the child unblocks them again.
    let all = SigSet::all();
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&all), Some(&mut old))?;
    match fork_with_namespaces(nix::sched::CloneFlags::empty())? {
        Forked::Child => {
            nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&old), None)?;
            Ok(())
        }
        Forked::Parent(child) => reap(child),
    }
}

fn reap(child: Pid) -> ! {
    let Ok(sfd) = SignalFd::with_flags(&SigSet::all(), SfdFlags::SFD_CLOEXEC) else {
        // Without a signalfd, still reap: wait for the program only.
        loop {
            match waitpid(None, None) {
                Ok(status) => {
                    if let Some(code) = exit_code(child, status) {
                        exit_immediately(code)
                    }
                }
                Err(_) => exit_immediately(1),
            }
        }
    };
    loop {
        let Ok(Some(info)) = sfd.read_signal() else { continue };
        let sig = info.ssi_signo as i32;
        if sig != libc::SIGCHLD {
            if let Ok(s) = Signal::try_from(sig) {
                let _ = kill(child, s);
            }
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(status) => {
                    if let Some(code) = exit_code(child, status) {
                        exit_immediately(code)
                    }
                }
                Err(nix::errno::Errno::ECHILD) => exit_immediately(0),
                Err(_) => break,
            }
        }
    }
}

/// The exit code to end with, once the program itself has exited.
fn exit_code(child: Pid, status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(pid, code) if pid == child => Some(code),
        WaitStatus::Signaled(pid, sig, _) if pid == child => Some(128 + sig as i32),
        _ => None,
    }
}
