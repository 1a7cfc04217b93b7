//! signal(2), to give a signal back its default action.
#![allow(unsafe_code)]

use std::io;

/// Restores the default action of `signal` (Rust's runtime ignores SIGPIPE,
/// and an ignored signal stays ignored across execve).
pub fn default_action(signal: i32) -> io::Result<()> {
    // SAFETY: installs SIG_DFL, no handler: nothing of ours runs on delivery.
    if unsafe { libc::signal(signal, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
