//! `network …` and `port`: Docker's commands, flags, output and messages.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use berth_engine::config::{EndpointIpam, EndpointSettings};
use berth_network::store::{Network, NetworkSpec};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cli::Global;
use crate::container_cmds::open;

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(visible_aliases = ["list"])]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(visible_alias = "remove")]
    Rm(NamesArgs),
    /// Remove all unused networks.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network (bridge).
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet.
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range.
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    pub internal: bool,
    /// Enable IPv6 networking.
    #[arg(long)]
    pub ipv6: bool,
    /// Set metadata on a network.
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options.
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Provide filter values (driver=, id=, name=, label=, type=custom|builtin).
    #[arg(short, long = "filter")]
    pub filters: Vec<String>,
    /// A Go template, `table …`, or `json`.
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display network IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container.
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33).
    #[arg(long)]
    pub ip6: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

fn kv(items: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    if let Some(i) = items.iter().find(|i| i.is_empty() || i.starts_with('=')) {
        bail!("invalid {what} {i:?}: expected KEY=VALUE");
    }
    Ok(crate::output::key_values(items))
}

pub fn dispatch(g: &Global, c: &NetworkCommand) -> Result<i32> {
    match c {
        NetworkCommand::Create(a) => create(g, a),
        NetworkCommand::Ls(a) => ls(g, a),
        NetworkCommand::Inspect(a) => inspect(g, a),
        NetworkCommand::Rm(a) => rm(g, a),
        NetworkCommand::Prune(_) => prune(g),
        NetworkCommand::Connect(a) => connect(g, a),
        NetworkCommand::Disconnect(a) => disconnect(g, a),
    }
}

fn create(g: &Global, a: &CreateArgs) -> Result<i32> {
    if a.driver != "bridge" {
        bail!("plugin \"{}\" not found: berth has the bridge driver", a.driver);
    }
    let subnets = berth_network::ipam::consolidate(&a.subnet, &a.gateway, &a.ip_range)?;
    let spec = NetworkSpec {
        name: a.name.clone(),
        driver: a.driver.clone(),
        subnets,
        internal: a.internal,
        ipv6: a.ipv6,
        labels: kv(&a.label, "label")?,
        options: kv(&a.opt, "option")?,
        ..NetworkSpec::default()
    };
    let e = open(g)?;
    let n = e.network_create(spec)?;
    println!("{}", n.id);
    Ok(0)
}

fn scope_type(n: &Network) -> &'static str {
    if n.is_predefined() {
        "builtin"
    } else {
        "custom"
    }
}

fn matches(n: &Network, filters: &[(String, String)]) -> Result<bool> {
    for (k, v) in filters {
        let ok = match k.as_str() {
            "driver" => n.driver == *v,
            "id" => n.id.starts_with(v.as_str()),
            "name" => n.name.contains(v.as_str()),
            "type" => scope_type(n) == v,
            "label" => berth_engine::volumes::label_matches(&n.labels, v),
            "scope" => v == "local",
            _ => bail!("invalid filter '{k}'"),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn ls(g: &Global, a: &LsArgs) -> Result<i32> {
    let e = open(g)?;
    let filters = crate::output::filter_pairs(&a.filters)?;
    let mut nets = Vec::new();
    for n in e.networks()? {
        if matches(&n, &filters)? {
            nets.push(n);
        }
    }
    // Docker lists by name.
    nets.sort_by(|x, y| x.name.cmp(&y.name));
    let id = |n: &Network| {
        if a.no_trunc {
            n.id.clone()
        } else {
            n.id[..12].to_owned()
        }
    };
    if a.quiet {
        for n in &nets {
            println!("{}", id(n));
        }
        return Ok(0);
    }
    let rows: Vec<Value> = nets
        .iter()
        .map(|n| {
            let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            json!({
                "ID": id(n),
                "Name": n.name,
                "Driver": n.driver,
                "Scope": "local",
                "IPv6": n.ipv6.to_string(),
                "Internal": n.internal.to_string(),
                "Labels": labels.join(","),
                "CreatedAt": n.created,
            })
        })
        .collect();
    let format = a
        .format
        .clone()
        .unwrap_or_else(|| "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".into());
    crate::output::print_list(
        &rows,
        &format,
        &[
            ("ID", "NETWORK ID"),
            ("Name", "NAME"),
            ("Driver", "DRIVER"),
            ("Scope", "SCOPE"),
            ("IPv6", "IPV6"),
            ("Internal", "INTERNAL"),
            ("Labels", "LABELS"),
            ("CreatedAt", "CREATED"),
        ],
    )?;
    Ok(0)
}

/// `network inspect`'s document, in the Engine API's shape.
fn network_doc(e: &berth_engine::Engine, n: &Network) -> Result<Value> {
    let mut containers = serde_json::Map::new();
    for ep in e.network_endpoints(n)? {
        let prefix = |ip: std::net::IpAddr| {
            n.subnets
                .iter()
                .find(|s| s.subnet.contains(ip))
                .map_or(String::new(), |s| format!("{ip}/{}", s.subnet.prefix()))
        };
        containers.insert(
            ep.container.clone(),
            json!({
                "Name": ep.name,
                "EndpointID": ep.id,
                "MacAddress": ep.mac,
                "IPv4Address": ep.ipv4.map(|a| prefix(a.into())).unwrap_or_default(),
                "IPv6Address": ep.ipv6.map(|a| prefix(a.into())).unwrap_or_default(),
            }),
        );
    }
    let config: Vec<Value> = n
        .subnets
        .iter()
        .map(|s| {
            let mut v = json!({"Subnet": s.subnet.to_string()});
            if !s.implicit_gateway {
                v["Gateway"] = json!(s.gateway.to_string());
            }
            if let Some(r) = &s.ip_range {
                v["IPRange"] = json!(r.to_string());
            }
            v
        })
        .collect();
    Ok(json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": n.ipv6,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    }))
}

fn inspect(g: &Global, a: &InspectArgs) -> Result<i32> {
    let e = open(g)?;
    let mut docs = Vec::new();
    let mut missing = false;
    for name in &a.names {
        match e.network(name) {
            Ok(n) => docs.push(network_doc(&e, &n)?),
            Err(err) => {
                eprintln!("Error: {err}");
                missing = true;
            }
        }
    }
    crate::output::print_inspect(&docs, a.format.as_deref())?;
    Ok(if missing { 1 } else { 0 })
}

fn rm(g: &Global, a: &NamesArgs) -> Result<i32> {
    crate::container_cmds::each(g, &a.names, |e, name| e.network_remove(name).map(drop))
}

fn prune(g: &Global) -> Result<i32> {
    let e = open(g)?;
    let gone = e.network_prune()?;
    if !gone.is_empty() {
        println!("Deleted Networks:");
        for n in gone {
            println!("{n}");
        }
    }
    Ok(0)
}

fn connect(g: &Global, a: &ConnectArgs) -> Result<i32> {
    let e = open(g)?;
    let ep = EndpointSettings {
        aliases: a.alias.clone(),
        ipam_config: (a.ip.is_some() || a.ip6.is_some()).then(|| EndpointIpam {
            ipv4_address: a.ip.clone().unwrap_or_default(),
            ipv6_address: a.ip6.clone().unwrap_or_default(),
        }),
        mac_address: String::new(),
    };
    e.network_connect(&a.network, &a.container, &ep)?;
    Ok(0)
}

fn disconnect(g: &Global, a: &DisconnectArgs) -> Result<i32> {
    let e = open(g)?;
    e.network_disconnect(&a.network, &a.container, a.force)?;
    Ok(0)
}

/// `port`: `80/tcp -> 0.0.0.0:8080` per binding, or the host addresses of one port.
pub fn port(g: &Global, a: &PortArgs) -> Result<i32> {
    let e = open(g)?;
    let row = e.get(&a.container)?;
    let (_, ports) = e.container_network(&row.id)?;
    let want = match &a.port {
        None => None,
        Some(p) => {
            let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            let n: u16 = n.parse().with_context(|| format!("invalid port {p:?}"))?;
            Some((n, proto.to_ascii_lowercase()))
        }
    };
    let mut found = false;
    for p in &ports {
        let addrs = match p.host_ip {
            // As the docker 20.10 CLI prints them.
            None => vec![format!("0.0.0.0:{}", p.host_port), format!(":::{}", p.host_port)],
            Some(_) => vec![p.host_addr()],
        };
        match &want {
            Some((n, proto)) => {
                if p.container_port == *n && p.proto.to_string() == *proto {
                    found = true;
                    for a in addrs {
                        println!("{a}");
                    }
                }
            }
            None => {
                found = true;
                for a in addrs {
                    println!("{}/{} -> {a}", p.container_port, p.proto);
                }
            }
        }
    }
    if let (Some(p), false) = (&a.port, found) {
        bail!("No public port '{p}' published for {}", a.container);
    }
    Ok(0)
}
