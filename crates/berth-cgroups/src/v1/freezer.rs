//! v1 freezer: freezer.state THAWED / FREEZING / FROZEN.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fs;
use crate::FreezerState;

/// Errors of the v1 freezer.
#[derive(Debug, thiserror::Error)]
pub enum FreezerError {
    #[error("cgroup {path} did not reach FROZEN in time")]
    Timeout { path: PathBuf },
    #[error("unknown freezer state {state:?} in {path}")]
    Unknown { path: PathBuf, state: String },
}

const TIMEOUT: Duration = Duration::from_secs(10);

pub fn state(dir: &Path) -> crate::Result<FreezerState> {
    let s = fs::read(dir, "freezer.state")?;
    match s.trim() {
        "THAWED" => Ok(FreezerState::Thawed),
        "FREEZING" => Ok(FreezerState::Freezing),
        "FROZEN" => Ok(FreezerState::Frozen),
        other => Err(FreezerError::Unknown {
            path: dir.join("freezer.state"),
            state: other.to_string(),
        }
        .into()),
    }
}

/// Write FROZEN and wait until the state reads FROZEN (re-writing it now and then, as runc does,
/// since a freeze can get stuck in FREEZING while processes fork).
pub fn freeze(dir: &Path) -> crate::Result<()> {
    let start = Instant::now();
    let mut i = 0u32;
    loop {
        if i % 25 == 0 {
            fs::write(dir, "freezer.state", "FROZEN")?;
        }
        if state(dir)? == FreezerState::Frozen {
            return Ok(());
        }
        if start.elapsed() > TIMEOUT {
            // Do not leave the container half frozen.
            let _ = fs::write(dir, "freezer.state", "THAWED");
            return Err(FreezerError::Timeout {
                path: dir.to_path_buf(),
            }
            .into());
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn thaw(dir: &Path) -> crate::Result<()> {
    fs::write(dir, "freezer.state", "THAWED")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fixture;

    #[test]
    fn fixture_freeze() {
        let t = tempfile::tempdir().unwrap();
        fixture::set(t.path(), "freezer.state", "THAWED\n");
        assert_eq!(state(t.path()).unwrap(), FreezerState::Thawed);
        freeze(t.path()).unwrap();
        assert_eq!(fixture::get(t.path(), "freezer.state"), "FROZEN");
        thaw(t.path()).unwrap();
        assert_eq!(state(t.path()).unwrap(), FreezerState::Thawed);
        fixture::set(t.path(), "freezer.state", "FREEZING\n");
        assert_eq!(state(t.path()).unwrap(), FreezerState::Freezing);
        fixture::set(t.path(), "freezer.state", "bogus");
        assert!(state(t.path()).is_err());
    }
}
