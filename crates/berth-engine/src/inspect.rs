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

/// `PublishedPort`s as Docker's `Ports` map: `{"80/tcp": [{"HostIp", "HostPort"}]}`,
/// exposed ports without a binding mapping to null.
pub fn ports_map(exposed: &[String], ports: &[berth_network::store::PublishedPort]) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    for k in exposed {
        map.insert(k.clone(), Value::Null);
    }
    for p in ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let entry = map.entry(key).or_insert_with(|| json!([]));
        if !entry.is_array() {
            *entry = json!([]);
        }
        let list = entry.as_array_mut().expect("an array");
        match p.host_ip {
            None => {
                list.push(json!({"HostIp": "0.0.0.0", "HostPort": p.host_port.to_string()}));
                list.push(json!({"HostIp": "::", "HostPort": p.host_port.to_string()}));
            }
            Some(ip) => list.push(json!({"HostIp": ip.to_string(), "HostPort": p.host_port.to_string()})),
        }
    }
    map
}

impl Engine {
    /// `NetworkSettings` of `inspect`: the running container's endpoints
    /// and published ports (Docker keeps the last ones of a stopped
    /// container; berth releases them at the stop and shows none).
    pub fn network_settings(&self, row: &Row) -> Value {
        let s = row.settings();
        let (endpoints, ports) = self.container_network(&row.id).unwrap_or_default();
        let exposed: Vec<String> = s
            .config
            .exposed_ports
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let mut networks = serde_json::Map::new();
        let mut top = json!({"Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": ""});
        for (net, e) in &endpoints {
            let v4 = net.subnets.iter().find(|x| x.subnet.is_ipv4());
            let v6 = net.subnets.iter().find(|x| !x.subnet.is_ipv4());
            let cfg = s.networking_config.endpoints_config.get(&net.name);
            let doc = json!({
                "IPAMConfig": cfg.and_then(|c| c.ipam_config.clone()),
                "Links": null,
                // On user networks Docker lists the short id too (a name its DNS answers).
                "Aliases": if net.is_predefined() {
                    if e.aliases.is_empty() { Value::Null } else { json!(e.aliases) }
                } else {
                    let mut a = e.aliases.clone();
                    a.push(row.id[..12].to_string());
                    json!(a)
                },
                "MacAddress": e.mac,
                "NetworkID": net.id,
                "EndpointID": e.id,
                "Gateway": v4.map(|x| x.gateway.to_string()).unwrap_or_default(),
                "IPAddress": e.ipv4.map(|a| a.to_string()).unwrap_or_default(),
                "IPPrefixLen": if e.ipv4.is_some() { v4.map_or(0, |x| x.subnet.prefix()) } else { 0 },
                "IPv6Gateway": if e.ipv6.is_some() { v6.map(|x| x.gateway.to_string()).unwrap_or_default() } else { String::new() },
                "GlobalIPv6Address": e.ipv6.map(|a| a.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": if e.ipv6.is_some() { v6.map_or(0, |x| x.subnet.prefix()) } else { 0 },
                "DriverOpts": null,
                "DNSNames": null,
            });
            if net.name == "bridge" {
                for k in [
                    "Gateway",
                    "IPAddress",
                    "IPPrefixLen",
                    "MacAddress",
                    "GlobalIPv6Address",
                    "GlobalIPv6PrefixLen",
                    "IPv6Gateway",
                ] {
                    top[k] = doc[k].clone();
                }
            }
            networks.insert(net.name.clone(), doc);
        }
        if endpoints.is_empty() && matches!(s.host_config.network_mode.as_str(), "host" | "none") {
            networks.insert(
                s.host_config.network_mode.clone(),
                json!({"IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "", "NetworkID": "",
                    "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                    "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DriverOpts": null, "DNSNames": null}),
            );
        }
        let sandbox = if endpoints.is_empty() {
            String::new()
        } else {
            self.netns_path(&row.id).to_string_lossy().into_owned()
        };
        let mut out = json!({
            "Bridge": "",
            "SandboxID": if sandbox.is_empty() { String::new() } else { row.id.clone() },
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports_map(&exposed, &ports),
            "SandboxKey": sandbox,
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": endpoints.iter().find(|(n, _)| n.name == "bridge").map(|(_, e)| e.id.clone()).unwrap_or_default(),
            "Networks": networks,
        });
        if let (Some(o), Some(t)) = (out.as_object_mut(), top.as_object()) {
            for (k, v) in t {
                o.insert(k.clone(), v.clone());
            }
        }
        out
    }

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
            "NetworkSettings": self.network_settings(row),
        });
        if let Ok(Some(h)) = self.health(row, &s.config) {
            doc["State"]["Health"] = json!(h);
        }
        doc
    }
}
