//! `kill`: signal a container's init, or every process in it.

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::error::{Error, IoContext, Result};
use crate::state::Root;

pub fn kill(root: &Root, id: &str, signal: Signal, all: bool) -> Result<()> {
    let state = super::load_live(root, id)?;
    if all {
        if let Some(cg) = &state.cgroup {
            return cg.kill_all(signal as i32).map_err(Error::from);
        }
    }
    nix::sys::signal::kill(Pid::from_raw(state.pid), signal)
        .op(format!("sending {signal} to container {id} (pid {})", state.pid))
}

/// Parse a signal as runc accepts it: a number, or a name with or without
/// the SIG prefix, in any case.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Invalid(format!("unknown signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>()
        .map_err(|_| Error::Invalid(format!("unknown signal {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
