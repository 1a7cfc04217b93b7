//! Health checks (`--health-cmd` and friends, or the image's HEALTHCHECK).
//!
//! There is no daemon to keep time, so the container's monitor does: it
//! runs the engine's health command (`berth … container healthcheck ID`) at
//! every interval, one probe at a time. That command ([`Engine::healthcheck`])
//! execs the test in the container with its output on a pipe, kills it at
//! the timeout, and folds the result into the container's health document
//! in `berth.db` in one transaction, with a `health_status` event when the
//! status changes. `inspect` shows the document as `State.Health`, and `ps`
//! adds `(healthy)`, `(unhealthy)` or `(health: starting)` to the status.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use serde::{Deserialize, Serialize};
use serde_json::json;

use berth_runtime::state::now_rfc3339;

use crate::config::{Config, HealthConfig};
use crate::{io_err, EngineError, Result, Row};

/// Docker's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RETRIES: u32 = 3;
/// Output kept per probe, as Docker keeps.
const MAX_OUTPUT: usize = 4096;
/// Probes kept in the log.
const MAX_LOG: usize = 5;

/// `State.Health` of `inspect`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<Probe>,
}

/// One probe's result.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    /// The test's exit code; -1 when it timed out or could not run.
    pub exit_code: i32,
    pub output: String,
}

/// A container's health check, with Docker's defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// The command exec'd in the container.
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    /// Between probes during the start period.
    pub start_interval: Duration,
    pub retries: u32,
}

fn duration(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

impl Check {
    /// The check configured for a container; `None` when it has none or
    /// it is disabled (`NONE`, `--no-healthcheck`).
    pub fn of(config: &Config) -> Option<Check> {
        let h: &HealthConfig = config.healthcheck.as_ref()?;
        let command = match h.test.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => rest.to_vec(),
            Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
                vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
            }
            _ => return None,
        };
        let interval = duration(h.interval, DEFAULT_INTERVAL);
        Some(Check {
            command,
            interval,
            timeout: duration(h.timeout, DEFAULT_TIMEOUT),
            start_period: duration(h.start_period, Duration::ZERO),
            start_interval: duration(h.start_interval, interval),
            retries: match h.retries {
                Some(n) if n > 0 => n as u32,
                _ => DEFAULT_RETRIES,
            },
        })
    }
}

impl Health {
    /// Folds a probe in as Docker does: success makes it healthy; a failure
    /// counts only after the start period, and `retries` failures in a row
    /// make it unhealthy. Returns whether the status changed.
    pub fn record(&mut self, probe: Probe, in_start_period: bool, retries: u32) -> bool {
        let before = self.status.clone();
        if probe.exit_code == 0 {
            self.failing_streak = 0;
            self.status = "healthy".into();
        } else if !in_start_period {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = "unhealthy".into();
            }
        }
        self.log.push(probe);
        if self.log.len() > MAX_LOG {
            self.log.remove(0);
        }
        self.status != before
    }
}

/// The `ps` suffix for a running container's health.
pub fn ps_suffix(status: &str) -> &'static str {
    match status {
        "healthy" => " (healthy)",
        "unhealthy" => " (unhealthy)",
        "starting" => " (health: starting)",
        _ => "",
    }
}

impl crate::Engine {
    /// The container's health, if its `config` has a health check.
    pub fn health(&self, row: &Row, config: &Config) -> Result<Option<Health>> {
        if Check::of(config).is_none() {
            return Ok(None);
        }
        let doc = self.db.health(&row.id)?;
        Ok(Some(doc.and_then(|d| serde_json::from_str(&d).ok()).unwrap_or_else(
            || Health {
                status: "starting".into(),
                ..Default::default()
            },
        )))
    }

    /// A (re)started container's health starts over at `starting`; the
    /// log of earlier probes stays.
    pub(crate) fn reset_health(&self, row: &Row, config: &Config) -> Result<()> {
        if Check::of(config).is_none() {
            return Ok(());
        }
        self.db.update_health(&row.id, |old| {
            let mut h: Health = old.and_then(|d| serde_json::from_str(&d).ok()).unwrap_or_default();
            h.status = "starting".into();
            h.failing_streak = 0;
            (json!(h).to_string(), None)
        })?;
        Ok(())
    }

    /// Runs one probe of the container's health check and records it.
    /// `None` when there is nothing to probe (no check, not running, paused).
    pub fn healthcheck(&self, name: &str) -> Result<Option<Probe>> {
        let row = self.get(name)?;
        let s = row.settings();
        let Some(check) = Check::of(&s.config) else {
            return Ok(None);
        };
        if row.state != "running" {
            return Ok(None);
        }
        let probe = self.probe(&row, &check)?;
        let started = berth_image::images::parse_rfc3339_nanos(&row.started_at).unwrap_or(0);
        let since_start = Duration::from_nanos(
            (berth_image::images::parse_rfc3339_nanos(&probe.start).unwrap_or(0) - started).clamp(0, u64::MAX as i128)
                as u64,
        );
        let in_start_period = since_start < check.start_period;
        let result = probe.clone();
        self.db.update_health(&row.id, |old| {
            let mut h: Health = old
                .and_then(|d| serde_json::from_str(&d).ok())
                .unwrap_or_else(|| Health {
                    status: "starting".into(),
                    ..Default::default()
                });
            let changed = h.record(probe, in_start_period, check.retries);
            let event = changed.then(|| crate::container::event(&format!("health_status: {}", h.status), &row, &[]));
            (json!(h).to_string(), event)
        })?;
        Ok(Some(result))
    }

    /// Execs the test with its output on a pipe; kills it at the timeout.
    fn probe(&self, row: &Row, check: &Check) -> Result<Probe> {
        let start = now_rfc3339();
        let opts = crate::ExecOptions {
            cmd: check.command.clone(),
            ..Default::default()
        };
        // No terminal: `opts.tty` is false.
        let process = self.exec_process(row, &opts)?;
        let null: OwnedFd = std::fs::File::open("/dev/null")
            .map_err(io_err("opening", "/dev/null"))?
            .into();
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io_err("creating", "a pipe")(e.into()))?;
        let w = Arc::new(w);
        let stdio = berth_runtime::container::exec::Stdio {
            stdin: Arc::new(null),
            stdout: w.clone(),
            stderr: w,
        };
        let runtime = self.runtime_root();
        let exec_opts = berth_runtime::container::exec::ExecOptions {
            stdio: Some(stdio),
            ..Default::default()
        };
        let execed = match berth_runtime::container::exec::exec(&runtime, &row.id, &process, &exec_opts) {
            Ok(e) => e,
            Err(e) => {
                return Ok(Probe {
                    start,
                    end: now_rfc3339(),
                    exit_code: -1,
                    output: berth_runtime::error::chain(&e),
                })
            }
        };
        // Our copies of the write end went with exec_opts.
        drop(exec_opts);
        let deadline = Instant::now() + check.timeout;
        let mut output = Vec::new();
        let mut pipe = std::fs::File::from(r);
        let mut open = true;
        let mut timed_out = false;
        let code = loop {
            if !open {
                match waitpid(execed.pid, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(_, c)) => break c,
                    Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
                    Ok(_) => {}
                    Err(e) => {
                        return Err(EngineError::State(format!(
                            "health check of container {}: waiting for the probe: {e}",
                            row.id
                        )))
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let _ = kill(execed.pid, Signal::SIGKILL);
                let _ = waitpid(execed.pid, None);
                timed_out = true;
                break -1;
            }
            if open {
                let ms = left.as_millis().min(u16::MAX as u128) as u16;
                let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
                if poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) > 0 {
                    let mut buf = [0u8; 4096];
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => open = false,
                        Ok(n) => {
                            let room = MAX_OUTPUT.saturating_sub(output.len());
                            output.extend_from_slice(&buf[..n.min(room)]);
                        }
                    }
                }
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        let output = if timed_out {
            format!("Health check exceeded timeout ({:?})", check.timeout)
        } else {
            String::from_utf8_lossy(&output).into_owned()
        };
        Ok(Probe {
            start,
            end: now_rfc3339(),
            exit_code: code,
            output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(code: i32) -> Probe {
        Probe {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn checks_take_docker_defaults_and_forms() {
        let mut c = Config::default();
        assert_eq!(Check::of(&c), None);
        c.healthcheck = Some(HealthConfig {
            test: vec!["CMD-SHELL".into(), "test -e /ok".into()],
            ..Default::default()
        });
        let k = Check::of(&c).unwrap();
        assert_eq!(k.command, ["/bin/sh", "-c", "test -e /ok"]);
        assert_eq!(
            (k.interval, k.timeout, k.retries),
            (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, 3)
        );
        assert_eq!(k.start_interval, k.interval);
        c.healthcheck = Some(HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: Some(1_000_000_000),
            retries: Some(2),
            ..Default::default()
        });
        let k = Check::of(&c).unwrap();
        assert_eq!(
            (k.command.as_slice(), k.interval, k.retries),
            (&["true".to_string()][..], Duration::from_secs(1), 2)
        );
        c.healthcheck = Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        });
        assert_eq!(Check::of(&c), None);
    }

    #[test]
    fn streaks_follow_docker() {
        let mut h = Health {
            status: "starting".into(),
            ..Default::default()
        };
        // Failures in the start period do not count.
        assert!(!h.record(probe(1), true, 2));
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        assert!(h.record(probe(0), true, 2));
        assert_eq!(h.status, "healthy");
        assert!(!h.record(probe(1), false, 2));
        assert!(h.record(probe(1), false, 2));
        assert_eq!((h.status.as_str(), h.failing_streak), ("unhealthy", 2));
        for _ in 0..10 {
            h.record(probe(1), false, 2);
        }
        assert_eq!(h.log.len(), MAX_LOG);
        assert!(h.record(probe(0), false, 2));
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 0));
    }
}
