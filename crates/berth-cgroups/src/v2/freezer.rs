//! v2 freezer: cgroup.freeze, with the result read from cgroup.events "frozen".

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fs;
use crate::FreezerState;

/// Errors of the v2 freezer.
#[derive(Debug, thiserror::Error)]
pub enum FreezerError {
    #[error("cgroup {path} did not report frozen {want} in cgroup.events in time")]
    Timeout { path: PathBuf, want: u8 },
}

const TIMEOUT: Duration = Duration::from_secs(10);

fn wait(dir: &Path, want: u64) -> crate::Result<()> {
    let start = Instant::now();
    loop {
        let events = fs::read_opt(dir, "cgroup.events")?;
        // Without cgroup.events (very old kernels) trust the write.
        let Some(events) = events else { return Ok(()) };
        let frozen = fs::parse_flat_keyed(&events)
            .into_iter()
            .find(|(k, _)| k == "frozen")
            .map(|(_, v)| v);
        if frozen.is_none() || frozen == Some(want) {
            return Ok(());
        }
        if start.elapsed() > TIMEOUT {
            return Err(FreezerError::Timeout {
                path: dir.to_path_buf(),
                want: want as u8,
            }
            .into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn freeze(dir: &Path) -> crate::Result<()> {
    fs::write(dir, "cgroup.freeze", 1)?;
    if let Err(e) = wait(dir, 1) {
        let _ = fs::write(dir, "cgroup.freeze", 0);
        return Err(e);
    }
    Ok(())
}

pub fn thaw(dir: &Path) -> crate::Result<()> {
    fs::write(dir, "cgroup.freeze", 0)?;
    wait(dir, 0)
}

pub fn state(dir: &Path) -> crate::Result<FreezerState> {
    let wanted = fs::read_opt(dir, "cgroup.freeze")?.unwrap_or_default();
    if wanted.trim() != "1" {
        return Ok(FreezerState::Thawed);
    }
    if fs::read_keyed(dir, "cgroup.events", "frozen")? == 1 {
        Ok(FreezerState::Frozen)
    } else {
        Ok(FreezerState::Freezing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fixture;

    #[test]
    fn states() {
        let t = tempfile::tempdir().unwrap();
        fixture::set(t.path(), "cgroup.freeze", "0\n");
        fixture::set(t.path(), "cgroup.events", "populated 1\nfrozen 1\n");
        assert_eq!(state(t.path()).unwrap(), FreezerState::Thawed);
        freeze(t.path()).unwrap();
        assert_eq!(fixture::get(t.path(), "cgroup.freeze"), "1");
        assert_eq!(state(t.path()).unwrap(), FreezerState::Frozen);
        fixture::set(t.path(), "cgroup.events", "populated 1\nfrozen 0\n");
        assert_eq!(state(t.path()).unwrap(), FreezerState::Freezing);
        thaw(t.path()).unwrap();
        assert_eq!(state(t.path()).unwrap(), FreezerState::Thawed);
    }
}
