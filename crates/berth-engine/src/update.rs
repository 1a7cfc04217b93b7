//! `update`: change a container's resource limits and restart policy. The
//! record changes for future starts; a running container's cgroup changes
//! at once (through berth-runtime), and its monitor reads the restart
//! policy from its rewritten `monitor.json` when the container next exits.

use berth_monitor::config::MonitorConfig;
use serde_json::json;

use crate::config::RestartPolicy;
use crate::{io_err, spec, Engine, EngineError, Result};

/// The settings `update` can change; `None` keeps the current one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub restart: Option<RestartPolicy>,
}

impl Engine {
    /// Applies `u` to the container `name`.
    pub fn update(&self, name: &str, u: &Update) -> Result<()> {
        let _lock = self.lock(&self.lookup(name)?)?;
        let row = self.get(name)?;
        let mut s = row.settings();
        let h = &mut s.host_config;
        if let Some(m) = u.memory {
            if m > 0 && m < crate::container::MIN_MEMORY {
                return Err(EngineError::State("Minimum memory limit allowed is 6MB".into()));
            }
            h.memory = m;
        }
        if let Some(v) = u.memory_swap {
            h.memory_swap = v;
        }
        if let Some(v) = u.nano_cpus {
            h.nano_cpus = v;
        }
        if let Some(v) = u.cpu_shares {
            h.cpu_shares = v;
        }
        if let Some(v) = &u.cpuset_cpus {
            h.cpuset_cpus = v.clone();
        }
        if let Some(v) = u.pids_limit {
            h.pids_limit = Some(v);
        }
        if let Some(r) = &u.restart {
            if h.auto_remove && r.name != "no" {
                return Err(EngineError::State(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                ));
            }
            h.restart_policy = r.clone();
        }
        let spec_err = |source| EngineError::Spec {
            id: row.id.clone(),
            source,
        };
        let limits = spec::limits(h).map_err(spec_err)?;
        if matches!(row.state.as_str(), "running" | "paused" | "restarting") {
            let resources = serde_json::from_value(limits).map_err(|e| {
                EngineError::State(format!(
                    "container {}: the new limits do not form OCI resources: {e}",
                    row.id
                ))
            })?;
            // Merged over the container's current resources by the runtime.
            berth_runtime::container::update::update(&self.runtime_root(), &row.id, &resources)
                .map_err(Self::runtime_error(&row.id, "updating its cgroup"))?;
            if u.restart.is_some() {
                self.rewrite_restart(&row.id, &h.restart_policy)?;
            }
        }
        let config = json!(s).to_string();
        self.db.set_config(&row.id, &config)?;
        self.db.add_event(&crate::container::event("update", &row, &[]))?;
        Ok(())
    }

    /// Gives the running monitor its new restart policy.
    fn rewrite_restart(&self, id: &str, policy: &RestartPolicy) -> Result<()> {
        let path = self.dir(id).join("monitor.json");
        let bytes = std::fs::read(&path).map_err(io_err("reading", &path))?;
        let mut cfg: MonitorConfig = serde_json::from_slice(&bytes)
            .map_err(|e| io_err("parsing", &path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        cfg.restart = crate::container::monitor_restart(policy);
        berth_monitor::config::write_atomic(&path, &serde_json::to_vec(&cfg).expect("serializable"))
            .map_err(io_err("writing", &path))
    }
}
