//! The network tables of `berth.db`: networks, endpoints (a container's
//! attachment to a network, holding its address leases) and published
//! ports (host ports held for a container).
//!
//! The engine owns the connection (opened with `berth_image::images::connect`)
//! and migrates these tables with [`COMPONENT`] and [`MIGRATIONS`]; every
//! function here takes that `&Connection`. Each change is one `IMMEDIATE`
//! transaction: whatever it decides (the name is free, the subnet overlaps no
//! other network, the address or port is not held) is decided and recorded
//! under SQLite's write lock, so concurrent CLI processes never hand out the
//! same subnet, address or port, and a crash keeps every lease that was
//! handed out or none of a half-made change. The kernel state (bridges,
//! veths, nftables) is derived from these records: records first, then the
//! kernel, so a crash in between is repaired by applying the records again
//! ([`crate::nft::sync`]).
//!
//! Messages are Docker's where Docker has one (`network with name X already
//! exists`, `Pool overlaps with other one on this address space`,
//! `Bind for 0.0.0.0:8080 failed: port is already allocated`, …).

use std::collections::BTreeMap;
use std::io;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::ipam::{self, Cidr, IpamError, Pool, Subnet, SubnetRequest};

mod endpoints;
mod published;

pub use endpoints::{
    connect, container_endpoints, disconnect, list_endpoints, release_container, Endpoint, EndpointSpec,
};
pub use published::{publish_ports, published_ports, unpublish_ports, PublishedPort, EPHEMERAL_PORTS};

/// This component's name in `schema_versions`.
pub const COMPONENT: &str = "network";

/// Schema steps: `MIGRATIONS[v]` takes the tables from version `v` to `v + 1`.
pub const MIGRATIONS: &[&str] = &[SCHEMA_V1];

const SCHEMA_V1: &str = "
CREATE TABLE networks (
    id TEXT PRIMARY KEY,          -- 64 hex digits
    name TEXT NOT NULL UNIQUE,
    driver TEXT NOT NULL,         -- bridge, host or null
    bridge TEXT UNIQUE,           -- the Linux bridge (NULL for host and null)
    subnets TEXT NOT NULL,        -- JSON: [{\"Subnet\", \"Gateway\", \"IPRange\"}]
    internal INTEGER NOT NULL,
    ipv6 INTEGER NOT NULL,
    labels TEXT NOT NULL,         -- JSON object
    options TEXT NOT NULL,        -- JSON object: driver options
    created TEXT NOT NULL         -- RFC 3339
);
CREATE TABLE endpoints (
    id TEXT NOT NULL UNIQUE,      -- 64 hex digits
    network TEXT NOT NULL REFERENCES networks(id),
    container TEXT NOT NULL,      -- container id
    name TEXT NOT NULL,           -- the container's name when it was connected
    ipv4 TEXT,
    ipv6 TEXT,
    mac TEXT NOT NULL,
    aliases TEXT NOT NULL,        -- JSON array
    PRIMARY KEY (network, container),
    UNIQUE (network, ipv4),
    UNIQUE (network, ipv6)
);
CREATE INDEX endpoints_container ON endpoints(container);
CREATE TABLE published_ports (
    container TEXT NOT NULL,      -- container id
    host_ip TEXT NOT NULL,        -- '' for every address
    host_port INTEGER NOT NULL,
    proto TEXT NOT NULL,          -- tcp, udp or sctp
    container_port INTEGER NOT NULL,
    PRIMARY KEY (host_ip, host_port, proto)
);
CREATE INDEX published_ports_container ON published_ports(container);
";

/// The predefined networks, which cannot be removed.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// The Linux bridge of the default `bridge` network.
pub const DEFAULT_BRIDGE: &str = "berth0";

/// The subnet of the default `bridge` network unless configured.
pub const DEFAULT_BRIDGE_SUBNET: Cidr = Cidr::v4(10, 88, 0, 0, 16);

/// Driver option naming the Linux bridge (Docker's).
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
/// Driver option turning outbound masquerade off when `"false"` (Docker's).
pub const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";

/// Everything the network tables can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {action}")]
    Db {
        path: String,
        action: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: network {id}: corrupt {field}")]
    Corrupt {
        path: String,
        id: String,
        field: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network {0} is ambiguous ({1} matches found based on ID prefix)")]
    Ambiguous(String, usize),
    #[error("network with name {0} already exists")]
    NameExists(String),
    #[error("plugin \"{0}\" not found")]
    UnknownDriver(String),
    #[error("only one instance of \"{0}\" network is allowed")]
    OnlyOne(String),
    #[error("invalid bridge name {0:?}: at most 15 bytes, no '/', ':' or whitespace")]
    InvalidBridgeName(String),
    #[error("bridge name {bridge} is already used by network {network}")]
    BridgeInUse { bridge: String, network: String },
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    ActiveEndpoints { name: String, id: String },
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("user specified IP address is supported on user defined networks only")]
    AddressOnDefaultNetwork,
    #[error("no available IPv{version} addresses on this network's address pools: {name} ({id})")]
    AddressesExhausted { version: u8, name: String, id: String },
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error("Bind for {0} failed: port is already allocated")]
    PortAllocated(String),
    #[error("Bind for {addr} failed: {source}")]
    Bind {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("no free host port for {0}")]
    PortsExhausted(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn path(conn: &Connection) -> String {
    conn.path().unwrap_or("berth.db").to_owned()
}

pub(crate) fn db(conn: &Connection, action: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let path = path(conn);
    let action = action.into();
    move |source| StoreError::Db { path, action, source }
}

/// A write transaction taken at once, so what it reads stays true until it
/// commits (concurrent writers wait on the busy timeout).
pub(crate) fn immediate<'c>(conn: &'c Connection, what: &str) -> Result<Transaction<'c>> {
    Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(db(conn, format!("begin {what}")))
}

pub(crate) fn commit(tx: Transaction<'_>, what: &str) -> Result<()> {
    let err = db(&tx, format!("commit {what}"));
    tx.commit().map_err(err)
}

/// A network as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// The Linux bridge (bridge driver only).
    pub bridge: Option<String>,
    /// IPv4 subnets first; IPv6 ones when `ipv6`.
    pub subnets: Vec<Subnet>,
    /// No way out: containers reach each other and the host only.
    pub internal: bool,
    pub ipv6: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
}

impl Network {
    pub fn is_predefined(&self) -> bool {
        PREDEFINED.contains(&self.name.as_str())
    }

    /// Whether containers' traffic leaving the bridge is masqueraded (not on
    /// internal networks, nor where the masquerade option is `false`).
    pub fn masquerade(&self) -> bool {
        !self.internal && self.options.get(OPT_MASQUERADE).is_none_or(|v| v != "false")
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkSpec {
    /// 64 hex digits, made by the caller.
    pub id: String,
    pub name: String,
    /// `bridge` (the default when empty); `host` and `null` only for the
    /// predefined networks.
    pub driver: String,
    /// `--subnet` with its `--gateway` and `--ip-range` ([`ipam::consolidate`]);
    /// a bridge network without an IPv4 one gets the next free pool subnet,
    /// and with `ipv6` but no IPv6 one the next free IPv6 pool subnet.
    pub subnets: Vec<SubnetRequest>,
    pub internal: bool,
    /// Turned on by an IPv6 `--subnet` too.
    pub ipv6: bool,
    pub labels: BTreeMap<String, String>,
    /// `-o`: `com.docker.network.bridge.name` names the bridge (else
    /// `br-` and the id's first 12 digits, like Docker's).
    pub options: BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
}

/// Where subnets come from for networks created without `--subnet`.
#[derive(Debug, Clone, Copy)]
pub struct Pools<'a> {
    pub v4: &'a [Pool],
    pub v6: &'a [Pool],
    /// Networks the host already reaches (its routes, from netlink), which
    /// pool subnets must not overlap (an explicit `--subnet` may, as with
    /// Docker).
    pub avoid: &'a [Cidr],
}

impl Pools<'static> {
    pub const DEFAULT: Pools<'static> = Pools {
        v4: ipam::DEFAULT_POOLS,
        v6: ipam::DEFAULT_POOLS_V6,
        avoid: &[],
    };
}

const NETWORK_COLUMNS: &str = "id, name, driver, bridge, subnets, internal, ipv6, labels, options, created";

/// A row as read, its JSON columns still text.
struct RawNetwork {
    id: String,
    name: String,
    driver: String,
    bridge: Option<String>,
    subnets: String,
    internal: bool,
    ipv6: bool,
    labels: String,
    options: String,
    created: String,
}

fn raw_network(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawNetwork> {
    Ok(RawNetwork {
        id: r.get(0)?,
        name: r.get(1)?,
        driver: r.get(2)?,
        bridge: r.get(3)?,
        subnets: r.get(4)?,
        internal: r.get(5)?,
        ipv6: r.get(6)?,
        labels: r.get(7)?,
        options: r.get(8)?,
        created: r.get(9)?,
    })
}

impl RawNetwork {
    fn parse(self, conn: &Connection) -> Result<Network> {
        let corrupt = |field: &'static str, id: &str| {
            let path = path(conn);
            let id = id.to_owned();
            move |source| StoreError::Corrupt {
                path,
                id,
                field,
                source,
            }
        };
        Ok(Network {
            subnets: serde_json::from_str(&self.subnets).map_err(corrupt("subnets", &self.id))?,
            labels: serde_json::from_str(&self.labels).map_err(corrupt("labels", &self.id))?,
            options: serde_json::from_str(&self.options).map_err(corrupt("options", &self.id))?,
            id: self.id,
            name: self.name,
            driver: self.driver,
            bridge: self.bridge,
            internal: self.internal,
            ipv6: self.ipv6,
            created: self.created,
        })
    }
}

/// Every network, by name.
pub fn list_networks(conn: &Connection) -> Result<Vec<Network>> {
    let raws = {
        let mut st = conn
            .prepare_cached(&format!("SELECT {NETWORK_COLUMNS} FROM networks ORDER BY name"))
            .map_err(db(conn, "list networks"))?;
        let rows = st.query_map([], raw_network).map_err(db(conn, "list networks"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db(conn, "list networks"))?
    };
    raws.into_iter().map(|r| r.parse(conn)).collect()
}

/// The network `term` names, as Docker looks it up: full id, then name,
/// then a unique id prefix.
pub fn find_network(conn: &Connection, term: &str) -> Result<Network> {
    let action = || format!("look up network {term}");
    let one = |sql: &str| -> Result<Option<RawNetwork>> {
        conn.query_row(
            &format!("SELECT {NETWORK_COLUMNS} FROM networks WHERE {sql}"),
            [term],
            raw_network,
        )
        .optional()
        .map_err(db(conn, action()))
    };
    if let Some(raw) = one("id = ?1")? {
        return raw.parse(conn);
    }
    if let Some(raw) = one("name = ?1")? {
        return raw.parse(conn);
    }
    if !term.is_empty() && term.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {NETWORK_COLUMNS} FROM networks WHERE substr(id, 1, length(?1)) = lower(?1) LIMIT 2"
            ))
            .map_err(db(conn, action()))?;
        let mut found = st
            .query_map([term], raw_network)
            .map_err(db(conn, action()))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db(conn, action()))?;
        if found.len() > 1 {
            let n: usize = conn
                .query_row(
                    "SELECT count(*) FROM networks WHERE substr(id, 1, length(?1)) = lower(?1)",
                    [term],
                    |r| r.get(0),
                )
                .map_err(db(conn, action()))?;
            return Err(StoreError::Ambiguous(term.to_owned(), n));
        }
        if let Some(raw) = found.pop() {
            return raw.parse(conn);
        }
    }
    Err(StoreError::NotFound(term.to_owned()))
}

fn valid_bridge_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control())
}

/// Records a new bridge network (`host` and `null` have one instance each,
/// made by [`ensure_predefined`]). Inside one transaction: the name is free, the
/// bridge name is free, every given subnet overlaps no recorded one, and a
/// network without an IPv4 subnet gets the next free one from `pools`.
pub fn create_network(conn: &Connection, spec: &NetworkSpec, pools: Pools<'_>) -> Result<Network> {
    let driver = if spec.driver.is_empty() {
        "bridge"
    } else {
        spec.driver.as_str()
    };
    match driver {
        "bridge" => {}
        "host" | "null" => return Err(StoreError::OnlyOne(driver.to_owned())),
        _ => return Err(StoreError::UnknownDriver(driver.to_owned())),
    }
    let what = format!("creating network {}", spec.name);
    let tx = immediate(conn, &what)?;
    let network = insert_network(&tx, spec, driver, pools)?;
    commit(tx, &what)?;
    Ok(network)
}

fn insert_network(tx: &Transaction<'_>, spec: &NetworkSpec, driver: &str, pools: Pools<'_>) -> Result<Network> {
    let exists: bool = tx
        .query_row("SELECT 1 FROM networks WHERE name = ?1", [&spec.name], |_| Ok(()))
        .optional()
        .map_err(db(tx, format!("look up network {}", spec.name)))?
        .is_some();
    if exists {
        return Err(StoreError::NameExists(spec.name.clone()));
    }
    let others = list_networks(tx)?;
    let mut subnets = Vec::new();
    let mut bridge_name = None;
    let mut ipv6 = spec.ipv6;
    if driver == "bridge" {
        let name = match spec.options.get(OPT_BRIDGE_NAME) {
            Some(b) => b.to_owned(),
            None => format!("br-{}", spec.id.chars().take(12).collect::<String>()),
        };
        if !valid_bridge_name(&name) {
            return Err(StoreError::InvalidBridgeName(name));
        }
        if let Some(o) = others.iter().find(|o| o.bridge.as_deref() == Some(name.as_str())) {
            return Err(StoreError::BridgeInUse {
                bridge: name,
                network: o.name.clone(),
            });
        }
        bridge_name = Some(name);
        let mut taken: Vec<Cidr> = others.iter().flat_map(|o| o.subnets.iter().map(|s| s.subnet)).collect();
        for req in &spec.subnets {
            ipam::check_overlap(&req.subnet, &taken)?;
            let s = req.resolve()?;
            taken.push(s.subnet);
            ipv6 |= !s.subnet.is_ipv4();
            subnets.push(s);
        }
        // Pool subnets also stay clear of the host's own networks.
        taken.extend_from_slice(pools.avoid);
        if !subnets.iter().any(|s| s.subnet.is_ipv4()) {
            let free = ipam::next_free(pools.v4, &taken).ok_or(IpamError::PoolsExhausted(4))?;
            taken.push(free);
            subnets.push(Subnet::new(free, None, None)?);
        }
        if ipv6 && !subnets.iter().any(|s| !s.subnet.is_ipv4()) {
            let free = ipam::next_free(pools.v6, &taken).ok_or(IpamError::PoolsExhausted(6))?;
            subnets.push(Subnet::new(free, None, None)?);
        }
        subnets.sort_by_key(|s| !s.subnet.is_ipv4());
    }
    let network = Network {
        id: spec.id.clone(),
        name: spec.name.clone(),
        driver: driver.to_owned(),
        bridge: bridge_name,
        subnets,
        internal: spec.internal,
        ipv6: ipv6 && driver == "bridge",
        labels: spec.labels.clone(),
        options: spec.options.clone(),
        created: spec.created.clone(),
    };
    tx.execute(
        &format!("INSERT INTO networks ({NETWORK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
        params![
            network.id,
            network.name,
            network.driver,
            network.bridge,
            to_json(&network.subnets),
            network.internal,
            network.ipv6,
            to_json(&network.labels),
            to_json(&network.options),
            network.created,
        ],
    )
    .map_err(db(tx, format!("record network {}", network.name)))?;
    Ok(network)
}

/// A JSON column's text (maps of strings, lists of strings and subnets
/// always serialise).
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

/// Records the predefined networks that are missing: `bridge` (driver
/// bridge on [`DEFAULT_BRIDGE`] with `subnet`), `host` and `none`. Existing
/// ones are left as they are. `new_id` makes each missing one's id.
pub fn ensure_predefined(
    conn: &Connection,
    subnet: Cidr,
    created: &str,
    new_id: &mut dyn FnMut() -> String,
) -> Result<()> {
    let have: usize = conn
        .query_row(
            "SELECT count(*) FROM networks WHERE name IN ('bridge', 'host', 'none')",
            [],
            |r| r.get(0),
        )
        .map_err(db(conn, "look up the predefined networks"))?;
    if have == PREDEFINED.len() {
        return Ok(());
    }
    let what = "creating the predefined networks";
    let tx = immediate(conn, what)?;
    for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
        let exists = tx
            .query_row("SELECT 1 FROM networks WHERE name = ?1", [name], |_| Ok(()))
            .optional()
            .map_err(db(&tx, format!("look up network {name}")))?
            .is_some();
        if exists {
            continue;
        }
        let mut spec = NetworkSpec {
            id: new_id(),
            name: name.to_owned(),
            driver: driver.to_owned(),
            created: created.to_owned(),
            ..NetworkSpec::default()
        };
        if name == "bridge" {
            // Its gateway shows in `network inspect`, as docker0's does.
            let gateway = Subnet::new(subnet, None, None).ok().map(|s| s.gateway);
            spec.subnets = vec![SubnetRequest {
                subnet,
                gateway,
                ip_range: None,
            }];
            spec.options = [
                ("com.docker.network.bridge.default_bridge", "true"),
                ("com.docker.network.bridge.enable_icc", "true"),
                (OPT_MASQUERADE, "true"),
                (OPT_BRIDGE_NAME, DEFAULT_BRIDGE),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        }
        insert_network(&tx, &spec, driver, Pools::DEFAULT)?;
    }
    commit(tx, what)
}

/// Removes the network `term` names, refusing the predefined ones and
/// networks that still have endpoints.
pub fn remove_network(conn: &Connection, term: &str) -> Result<Network> {
    let what = format!("removing network {term}");
    let tx = immediate(conn, &what)?;
    let network = find_network(&tx, term)?;
    if network.is_predefined() {
        return Err(StoreError::Predefined(network.name));
    }
    let active: usize = tx
        .query_row(
            "SELECT count(*) FROM endpoints WHERE network = ?1",
            [&network.id],
            |r| r.get(0),
        )
        .map_err(db(&tx, &what))?;
    if active > 0 {
        return Err(StoreError::ActiveEndpoints {
            name: network.name,
            id: network.id,
        });
    }
    tx.execute("DELETE FROM networks WHERE id = ?1", [&network.id])
        .map_err(db(&tx, &what))?;
    commit(tx, &what)?;
    Ok(network)
}

/// Everything the firewall is made from, read in one go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    pub networks: Vec<Network>,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<PublishedPort>,
}

/// Reads every network, endpoint and published port (call inside a
/// transaction for one consistent view).
pub fn records(conn: &Connection) -> Result<Records> {
    Ok(Records {
        networks: list_networks(conn)?,
        endpoints: list_endpoints(conn, None)?,
        ports: published_ports(conn, None)?,
    })
}
#[cfg(test)]
mod tests;
