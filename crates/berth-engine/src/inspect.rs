//! `inspect` and `ps` views of a container, in Docker's shapes.

use serde_json::{json, Value};

use crate::{Engine, Row};

/// Docker's zero time, for times not yet set.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn or_zero(s: &str) -> &str {
    if s.is_empty() {
        ZERO_TIME
    } else {
        s
    }
}

/// The status word `ps` filters on: created, restarting, running, paused,
/// exited or dead.
pub fn status_word(row: &Row) -> &str {
    &row.state
}

impl Engine {
    /// `docker inspect` of a container.
    pub fn inspect(&self, row: &Row) -> Value {
        let s = row.settings();
        let mut args: Vec<String> = s.config.entrypoint.clone().unwrap_or_default();
        args.extend(s.config.cmd.clone().unwrap_or_default());
        let path = if args.is_empty() { String::new() } else { args.remove(0) };
        let dir = self.dir(&row.id);
        let mounts: Vec<Value> = s
            .host_config
            .mounts
            .iter()
            .map(|m| {
                let source = if m.kind == "volume" {
                    self.root
                        .join("volumes")
                        .join(&m.source)
                        .join("_data")
                        .to_string_lossy()
                        .into_owned()
                } else {
                    m.source.clone()
                };
                let mut v = json!({
                    "Type": m.kind,
                    "Source": source,
                    "Destination": m.target,
                    "Mode": if m.read_only { "ro" } else { "" },
                    "RW": !m.read_only,
                    "Propagation": m.bind_options.as_ref().map(|b| b.propagation.clone()).unwrap_or_else(|| if m.kind == "bind" { "rprivate".into() } else { String::new() }),
                });
                if m.kind == "volume" {
                    v["Name"] = json!(m.source);
                    v["Driver"] = json!("local");
                }
                v
            })
            .collect();
        let mut config = serde_json::to_value(&s.config).expect("serializable");
        if config["Hostname"] == "" {
            config["Hostname"] = json!(&row.id[..12]);
        }
        let snap = self
            .images
            .snapshotter()
            .writable_dir(&format!("container-{}", row.id))
            .ok();
        let mut doc = json!({
            "Id": row.id,
            "Created": row.created,
            "Path": path,
            "Args": args,
            "State": {
                "Status": row.state,
                "Running": row.is_running(),
                "Paused": row.state == "paused",
                "Restarting": row.state == "restarting",
                "OOMKilled": row.oom_killed,
                "Dead": row.state == "dead",
                "Pid": row.pid,
                "ExitCode": row.exit_code,
                "Error": row.error,
                "StartedAt": or_zero(&row.started_at),
                "FinishedAt": or_zero(&row.finished_at),
            },
            "Image": row.image,
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": if s.host_config.log_config.kind == "none" { String::new() } else { self.log_path(&row.id).to_string_lossy().into_owned() },
            "Name": format!("/{}", row.name),
            "RestartCount": row.restart_count,
            "Driver": "overlay",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": null,
            "HostConfig": s.host_config,
            "GraphDriver": {
                "Name": "overlay",
                "Data": {
                    "MergedDir": self.rootfs(&row.id),
                    "UpperDir": snap,
                },
            },
            "Mounts": mounts,
            "Config": config,
            "NetworkSettings": {
                "Bridge": "",
                "SandboxID": "",
                "HairpinMode": false,
                "Ports": {},
                "SandboxKey": "",
                "Gateway": "",
                "IPAddress": "",
                "IPPrefixLen": 0,
                "MacAddress": "",
                "Networks": {},
            },
        });
        if let Ok(Some(h)) = self.health(row) {
            doc["State"]["Health"] = json!(h);
        }
        doc
    }
}
