//! The monitor's input (`monitor.json`, written by the engine) and output
//! (`status.json`, rewritten atomically on every change of state).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything the monitor needs to run one container.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MonitorConfig {
    /// The runtime's container id (the engine's full id).
    pub id: String,
    /// The OCI bundle: config.json whose root is the mounted rootfs.
    pub bundle: PathBuf,
    /// berth-runtime's state root.
    pub runtime_root: PathBuf,
    /// The json-file log; `None` logs nothing (`--log-driver none`).
    pub log_path: Option<PathBuf>,
    /// Rotate when the log reaches this many bytes (0: never).
    pub log_max_size: u64,
    /// Files kept, the live one included (at least 1).
    pub log_max_files: u32,
    /// The process has a terminal: one pty carries stdin and output.
    pub tty: bool,
    /// Keep stdin open for attach clients (`-i`); otherwise /dev/null.
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client closes its
    /// stdin (`run -i` without `-d`).
    pub stdin_once: bool,
    /// The attach socket.
    pub socket: PathBuf,
    /// Where the status document is written.
    pub status_path: PathBuf,
    pub restart: Restart,
    /// Run once the container has exited for good (no restart follows).
    pub exit_command: Vec<String>,
    /// When to run the engine's health probe, if the container has a check.
    #[serde(default)]
    pub health: Option<HealthSchedule>,
}

/// The monitor keeps time for health checks: it runs `command` (which
/// probes and records the result) one at a time, `interval_ms` after the
/// previous probe ended, or `start_interval_ms` during the start period.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HealthSchedule {
    pub command: Vec<String>,
    pub interval_ms: u64,
    pub start_period_ms: u64,
    pub start_interval_ms: u64,
}

impl HealthSchedule {
    /// The wait before the next probe, `since_start` after the container started.
    pub fn next_after(&self, since_start: std::time::Duration) -> std::time::Duration {
        let ms = if since_start.as_millis() < self.start_period_ms as u128 {
            self.start_interval_ms
        } else {
            self.interval_ms
        };
        std::time::Duration::from_millis(ms.max(1))
    }
}

/// Docker's restart policies.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Restart {
    /// `no`, `always`, `unless-stopped` or `on-failure`.
    pub name: String,
    /// For `on-failure`: restarts allowed (0: no limit).
    pub max_retries: u32,
}

impl Restart {
    /// Whether a container that exited with `code` gets restarted, after
    /// `count` restarts so far, unless a user stopped it.
    pub fn applies(&self, code: i32, count: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0 && (self.max_retries == 0 || count < self.max_retries),
            _ => false,
        }
    }
}

/// The container as its monitor sees it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    pub monitor_pid: i32,
    /// `creating` (until the runtime has made the container), `created`, `running`,
    /// `restarting` or `exited`.
    pub state: String,
    /// Host pid of the container's init (0 once exited).
    pub pid: i32,
    /// RFC 3339 times; empty when not yet.
    pub started_at: String,
    pub finished_at: String,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub restart_count: u32,
    /// Why the last (re)start failed.
    pub error: String,
    /// A user stopped the container (`stop`, `kill`): no restart.
    pub stopped_by_user: bool,
}

impl Status {
    /// Reads a status document; `Ok(None)` when there is none.
    pub fn read(path: &Path) -> io::Result<Option<Status>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the document at `path` atomically (temp file, rename).
    pub fn write(&self, path: &Path) -> io::Result<()> {
        write_atomic(path, &serde_json::to_vec(self).map_err(io::Error::other)?)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename, so readers see the old or the new content, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_follow_docker() {
        let p = |name: &str, n| Restart {
            name: name.into(),
            max_retries: n,
        };
        assert!(!p("no", 0).applies(1, 0, false));
        assert!(!p("", 0).applies(1, 0, false));
        assert!(p("always", 0).applies(0, 100, false));
        assert!(!p("always", 0).applies(0, 0, true));
        assert!(p("unless-stopped", 0).applies(0, 0, false));
        assert!(!p("on-failure", 0).applies(0, 0, false));
        assert!(p("on-failure", 0).applies(3, 50, false));
        assert!(p("on-failure", 2).applies(3, 1, false));
        assert!(!p("on-failure", 2).applies(3, 2, false));
    }

    #[test]
    fn status_round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        assert_eq!(Status::read(&path).unwrap(), None);
        let s = Status {
            state: "exited".into(),
            exit_code: 3,
            ..Default::default()
        };
        s.write(&path).unwrap();
        assert_eq!(Status::read(&path).unwrap(), Some(s));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&path, b"{").unwrap();
        assert!(Status::read(&path).unwrap_err().to_string().contains("status.json"));
    }
}
