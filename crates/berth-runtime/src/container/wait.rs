//! Waiting in the foreground for a process we forked (`run`, `exec`):
//! forward signals to it, proxy its terminal, and return its exit code as
//! a shell would (128 + signal when killed).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{IoContext, Result};
use crate::sys::tty;

/// Signals we take over while waiting: all that can be caught.
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTRAP,
    ] {
        set.remove(s);
    }
    set
}

/// Block the forwarded signals now, before forking, so none is lost; the
/// child unblocks them before exec.
pub fn block_signals() -> Result<SigSet> {
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded_signals()), Some(&mut old))
        .op("blocking signals")?;
    Ok(old)
}

/// Our stdin in raw mode while we proxy a pty (None when stdin is no
/// terminal); the saved settings come back
/// on drop.
pub struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    pub fn enter() -> Option<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

/// Wait for `child` (our direct child) to exit; forward every signal we get
/// to it; if `console` is a pty master, copy between it and our stdio.
pub fn wait_foreground(child: Pid, console: Option<OwnedFd>) -> Result<i32> {
    let sfd = SignalFd::with_flags(&forwarded_signals(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .op("creating signalfd")?;
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let _raw = console.as_ref().and_then(|_| RawMode::enter());
    if let Some(m) = &console {
        if let Some((rows, cols)) = tty::window_size(stdin.as_raw_fd()) {
            let _ = tty::set_window_size(m.as_raw_fd(), rows, cols);
        }
    }
    let mut stdin_open = console.is_some();
    let mut master_open = console.is_some();
    let mut exit: Option<i32> = None;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Some(code) = exit {
            if !master_open {
                return Ok(code);
            }
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &console {
            if master_open {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            }
            if stdin_open && exit.is_none() {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        // After the child exited, drain what is left on the pty quickly.
        let timeout = if exit.is_some() {
            PollTimeout::from(50u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => {
                master_open = false;
                continue;
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(crate::error::Error::sys("polling", e)),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        let has_master = console.is_some() && master_open;
        drop(fds);
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    if let Some(code) = reap(child) {
                        exit = Some(code);
                    }
                } else if sig == libc::SIGWINCH {
                    if let (Some(m), Some((r, c))) = (&console, tty::window_size(stdin.as_raw_fd())) {
                        let _ = tty::set_window_size(m.as_raw_fd(), r, c);
                    }
                } else if let Ok(s) = Signal::try_from(sig) {
                    let _ = nix::sys::signal::kill(child, s);
                }
            }
        }
        if let Some(m) = &console {
            let mut idx = 1;
            if has_master {
                if ready[idx] {
                    match nix::unistd::read(m, &mut buf) {
                        Ok(0) | Err(_) => master_open = false,
                        Ok(n) => {
                            let _ = stdout.write_all(&buf[..n]);
                            let _ = stdout.flush();
                        }
                    }
                }
                idx += 1;
            }
            if stdin_open && exit.is_none() && ready.get(idx).copied().unwrap_or(false) {
                match std::io::stdin().lock().read(&mut buf) {
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(n) => {
                        let _ = nix::unistd::write(m, &buf[..n]);
                    }
                }
            }
        }
        if exit.is_none() {
            // A SIGCHLD may have been coalesced with an earlier one.
            if let Some(code) = reap(child) {
                exit = Some(code);
            }
        }
    }
}

/// Reap `child` if it exited: its exit code, 128+signal if killed.
pub fn reap(child: Pid) -> Option<i32> {
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Some(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) => return None,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Some(255),
        }
    }
}
