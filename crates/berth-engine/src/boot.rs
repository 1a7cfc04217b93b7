//! After the host starts: what dockerd does for its containers when it starts, done by
//! `berth system boot` (run from a boot unit, `contrib/systemd/berth-boot.service`), since no
//! daemon outlives a reboot here.
//!
//! Every container is reconciled first ([`Engine::sync`]): one that was running when the host
//! went down has no monitor left and no runtime state (the runroot is a tmpfs), so it is
//! recorded as exited with code 255, as Docker records it. Then, oldest first:
//!
//! - its rootfs and network are released ([`Engine::cleanup`]), and a `--rm` container is
//!   removed, as dockerd removes them when it starts;
//! - a container whose restart policy is `always` is started, even one a user had stopped;
//!   `unless-stopped` only if no user stopped it (`stop`, `kill`: the monitor's status says
//!   so); `on-failure` and `no` are not (Docker's documentation: on-failure "doesn't restart
//!   the container if the daemon restarts"). Containers never started (`created`) stay.
//!
//! Running containers are left alone, so running it twice, or without a reboot, is harmless.

use berth_monitor::Status;

use crate::{Engine, Result, Row};

/// What [`Engine::boot`] did with one container.
#[derive(Debug)]
pub enum Booted {
    /// Started again, as its restart policy asks.
    Started(Row),
    /// Removed: it was run with `--rm`.
    Removed(Row),
    /// Its start or removal failed; the others went on.
    Failed(Row, crate::EngineError),
}

impl Engine {
    /// Brings the containers back after a host boot; see the [module](self) documentation.
    /// Returns what it did, container by container.
    pub fn boot(&self) -> Result<Vec<Booted>> {
        let mut out = Vec::new();
        let mut rows = self.db.list()?;
        rows.reverse();
        for row in rows {
            let row = self.sync(row)?;
            if row.state != "exited" {
                continue;
            }
            let s = row.settings();
            if s.host_config.auto_remove {
                match self.cleanup(&row.id) {
                    Ok(()) => out.push(Booted::Removed(row)),
                    Err(e) => out.push(Booted::Failed(row, e)),
                }
                continue;
            }
            let wanted = match s.host_config.restart_policy.name.as_str() {
                "always" => true,
                "unless-stopped" => !self.stopped_by_user(&row.id),
                _ => false,
            };
            let result = self.cleanup(&row.id).and_then(|()| {
                if wanted {
                    self.start(&row.id, None).map(drop)
                } else {
                    Ok(())
                }
            });
            match result {
                Ok(()) if wanted => out.push(Booted::Started(row)),
                Ok(()) => {}
                Err(e) => out.push(Booted::Failed(row, e)),
            }
        }
        Ok(out)
    }

    /// Whether a user stopped the container's last run (`stop`, `kill`), as its monitor
    /// recorded.
    fn stopped_by_user(&self, id: &str) -> bool {
        Status::read(&self.dir(id).join("status.json"))
            .ok()
            .flatten()
            .is_some_and(|s| s.stopped_by_user)
    }
}
