//! After the host starts: what dockerd does for its containers when it starts, done by
//! `berth system boot` (run from a boot unit, `contrib/systemd/berth-boot.service`), since no
//! daemon outlives a reboot here.
//!
//! Every container is reconciled first ([`Engine::sync`]): one that was running when the host
//! went down has no monitor left and no runtime state (the runroot is a tmpfs), so it is
//! recorded as exited with code 255, as Docker records it. Then, oldest first:
//!
//! - every stopped container's rootfs and network are released ([`Engine::cleanup`]), and a
//!   `--rm` container is removed, as dockerd removes them when it starts;
//! - then a container whose restart policy is `always` is started, even one a user had stopped;
//!   `unless-stopped` only if no user stopped it (`stop`, `kill`: the monitor's status says
//!   so); `on-failure` and `no` are not (Docker's documentation: on-failure "doesn't restart
//!   the container if the daemon restarts"). Containers never started (`created`) stay.
//!
//! Running containers are left alone, so a second run right after does nothing. Run without a
//! reboot it still starts the `always` containers a user stopped, as a dockerd restart does.

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
    /// Returns what it did, container by container; one container's failure does not stop
    /// the others.
    pub fn boot(&self) -> Result<Vec<Booted>> {
        let mut out = Vec::new();
        let mut rows = self.db.list()?;
        rows.reverse();
        // Every stopped container released first (rootfs, leases, published ports), so none
        // still holds what the ones started next need.
        let mut to_start = Vec::new();
        for row in rows {
            let row = match self.sync(row.clone()) {
                Ok(row) => row,
                Err(e) => {
                    out.push(Booted::Failed(row, e));
                    continue;
                }
            };
            if row.state != "exited" {
                continue;
            }
            let s = row.settings();
            if let Err(e) = self.cleanup(&row.id) {
                out.push(Booted::Failed(row, e));
                continue;
            }
            if s.host_config.auto_remove {
                out.push(Booted::Removed(row));
                continue;
            }
            let wanted = match s.host_config.restart_policy.name.as_str() {
                "always" => true,
                "unless-stopped" => !self.stopped_by_user(&row.id),
                _ => false,
            };
            if wanted {
                to_start.push(row);
            }
        }
        for row in to_start {
            match self.start(&row.id, None) {
                Ok(_) => out.push(Booted::Started(row)),
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
