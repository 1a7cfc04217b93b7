//! Endpoints: a container's attachment to a network, holding its address
//! leases.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rusqlite::{params, Connection, OptionalExtension};

use super::{
    commit, db, find_network, immediate, path, published_ports, to_json, Network, PublishedPort, Result, StoreError,
};
use crate::ipam::{IpamError, Subnet};

/// A container's attachment to a network, with its leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// 64 hex digits (`EndpointID`).
    pub id: String,
    /// The network's id.
    pub network: String,
    /// The container's id.
    pub container: String,
    /// The container's name when it was connected.
    pub name: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    /// `02:42:0a:59:00:02`.
    pub mac: String,
    pub aliases: Vec<String>,
}

/// What `run --network`/`network connect` asks for.
#[derive(Debug, Clone, Default)]
pub struct EndpointSpec {
    /// 64 hex digits, made by the caller.
    pub id: String,
    pub container: String,
    pub name: String,
    /// `--ip`: this address or an error; else the lowest free one.
    pub ipv4: Option<Ipv4Addr>,
    /// `--ip6`.
    pub ipv6: Option<Ipv6Addr>,
    /// `--mac-address`; else one made from the address (`02:42` and the
    /// IPv4 address's four bytes, as Docker did).
    pub mac: Option<String>,
    pub aliases: Vec<String>,
}

const ENDPOINT_COLUMNS: &str = "id, network, container, name, ipv4, ipv6, mac, aliases";

fn endpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Endpoint, String)> {
    let ip = |i: usize| -> rusqlite::Result<Option<IpAddr>> {
        let s: Option<String> = r.get(i)?;
        s.map(|s| {
            s.parse()
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
        })
        .transpose()
    };
    let v4 = match ip(4)? {
        Some(IpAddr::V4(a)) => Some(a),
        _ => None,
    };
    let v6 = match ip(5)? {
        Some(IpAddr::V6(a)) => Some(a),
        _ => None,
    };
    Ok((
        Endpoint {
            id: r.get(0)?,
            network: r.get(1)?,
            container: r.get(2)?,
            name: r.get(3)?,
            ipv4: v4,
            ipv6: v6,
            mac: r.get(6)?,
            aliases: Vec::new(),
        },
        r.get(7)?,
    ))
}

fn query_endpoints(conn: &Connection, filter: &str, args: &[&str], action: &str) -> Result<Vec<Endpoint>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints {filter} ORDER BY rowid");
    let mut st = conn.prepare_cached(&sql).map_err(db(conn, action))?;
    let rows = st
        .query_map(rusqlite::params_from_iter(args), endpoint_row)
        .map_err(db(conn, action))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db(conn, action))?;
    rows.into_iter()
        .map(|(mut e, aliases)| {
            e.aliases = serde_json::from_str(&aliases).map_err(|source| StoreError::Corrupt {
                path: path(conn),
                id: e.network.clone(),
                field: "endpoint aliases",
                source,
            })?;
            Ok(e)
        })
        .collect()
}

/// Every endpoint, or a network's (by id), in the order they were made.
pub fn list_endpoints(conn: &Connection, network: Option<&str>) -> Result<Vec<Endpoint>> {
    match network {
        Some(n) => query_endpoints(conn, "WHERE network = ?1", &[n], "list endpoints"),
        None => query_endpoints(conn, "", &[], "list endpoints"),
    }
}

/// A container's endpoints, in the order it was connected.
pub fn container_endpoints(conn: &Connection, container: &str) -> Result<Vec<Endpoint>> {
    let action = format!("list endpoints of container {container}");
    query_endpoints(conn, "WHERE container = ?1", &[container], &action)
}

/// Docker's old rule: `02:42` and the IPv4 address; without one, the last
/// bytes of the IPv6 address, or the first of the container id. Locally
/// administered, unicast.
fn make_mac(ipv4: Option<Ipv4Addr>, ipv6: Option<Ipv6Addr>, container: &str) -> String {
    let tail: [u8; 4] = match (ipv4, ipv6) {
        (Some(a), _) => a.octets(),
        (None, Some(a)) => {
            let o = a.octets();
            [o[12], o[13], o[14], o[15]]
        }
        (None, None) => {
            let mut t = [0u8; 4];
            for (i, pair) in container.as_bytes().chunks(2).take(4).enumerate() {
                t[i] = std::str::from_utf8(pair)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .unwrap_or(0);
            }
            t
        }
    };
    let [a, b, c, d] = tail;
    crate::netlink::MacAddr([0x02, 0x42, a, b, c, d]).to_string()
}

/// Connects a container to the network `network` names, leasing its
/// addresses: one IPv4 address (and one IPv6 address on an IPv6 network),
/// the requested one or the lowest free one of the first subnet of the
/// family with room. Returns the network with the new endpoint.
pub fn connect(conn: &Connection, network: &str, spec: &EndpointSpec) -> Result<(Network, Endpoint)> {
    let what = format!("connecting container {} to network {network}", spec.container);
    let tx = immediate(conn, &what)?;
    let net = find_network(&tx, network)?;
    let connected = tx
        .query_row(
            "SELECT 1 FROM endpoints WHERE network = ?1 AND container = ?2",
            [&net.id, &spec.container],
            |_| Ok(()),
        )
        .optional()
        .map_err(db(&tx, &what))?
        .is_some();
    if connected {
        return Err(StoreError::AlreadyConnected {
            container: if spec.name.is_empty() {
                spec.container.clone()
            } else {
                spec.name.clone()
            },
            network: net.name,
        });
    }
    if (spec.ipv4.is_some() || spec.ipv6.is_some()) && net.name == "bridge" {
        return Err(StoreError::AddressOnDefaultNetwork);
    }
    let used: Vec<IpAddr> = list_endpoints(&tx, Some(&net.id))?
        .iter()
        .flat_map(|e| e.ipv4.map(IpAddr::V4).into_iter().chain(e.ipv6.map(IpAddr::V6)))
        .collect();
    let lease = |v4: bool, requested: Option<IpAddr>| -> Result<Option<IpAddr>> {
        let family: Vec<&Subnet> = net.subnets.iter().filter(|s| s.subnet.is_ipv4() == v4).collect();
        if let Some(ip) = requested {
            let s = family
                .iter()
                .find(|s| s.subnet.contains(ip))
                .ok_or(IpamError::NotInSubnet(ip))?;
            s.check_request(ip, &used)?;
            return Ok(Some(ip));
        }
        if family.is_empty() {
            return Ok(None);
        }
        match family.iter().find_map(|s| s.allocate(&used)) {
            Some(ip) => Ok(Some(ip)),
            None => Err(StoreError::AddressesExhausted {
                version: if v4 { 4 } else { 6 },
                name: net.name.clone(),
                id: net.id.clone(),
            }),
        }
    };
    let ipv4 = match lease(true, spec.ipv4.map(IpAddr::V4))? {
        Some(IpAddr::V4(a)) => Some(a),
        _ => None,
    };
    let ipv6 = match lease(false, spec.ipv6.map(IpAddr::V6))? {
        Some(IpAddr::V6(a)) => Some(a),
        _ => None,
    };
    let endpoint = Endpoint {
        id: spec.id.clone(),
        network: net.id.clone(),
        container: spec.container.clone(),
        name: spec.name.clone(),
        ipv4,
        ipv6,
        mac: match &spec.mac {
            Some(m) => m.to_ascii_lowercase(),
            None => make_mac(ipv4, ipv6, &spec.container),
        },
        aliases: spec.aliases.clone(),
    };
    tx.execute(
        &format!("INSERT INTO endpoints ({ENDPOINT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            endpoint.id,
            endpoint.network,
            endpoint.container,
            endpoint.name,
            endpoint.ipv4.map(|a| a.to_string()),
            endpoint.ipv6.map(|a| a.to_string()),
            endpoint.mac,
            to_json(&endpoint.aliases),
        ],
    )
    .map_err(db(&tx, &what))?;
    commit(tx, &what)?;
    Ok((net, endpoint))
}

/// Disconnects a container from the network `network` names, releasing its
/// addresses. Returns the network with the removed endpoint.
pub fn disconnect(conn: &Connection, network: &str, container: &str) -> Result<(Network, Endpoint)> {
    let what = format!("disconnecting container {container} from network {network}");
    let tx = immediate(conn, &what)?;
    let net = find_network(&tx, network)?;
    let found = query_endpoints(
        &tx,
        "WHERE network = ?1 AND container = ?2",
        &[&net.id, container],
        &what,
    )?;
    let Some(endpoint) = found.into_iter().next() else {
        return Err(StoreError::NotConnected {
            container: container.to_owned(),
            network: net.name,
        });
    };
    tx.execute(
        "DELETE FROM endpoints WHERE network = ?1 AND container = ?2",
        [&net.id, container],
    )
    .map_err(db(&tx, &what))?;
    commit(tx, &what)?;
    Ok((net, endpoint))
}

/// Releases everything a container holds, its endpoints (with their
/// leases) and its published ports, in one transaction (`rm`). Returns
/// what was released.
pub fn release_container(conn: &Connection, container: &str) -> Result<(Vec<Endpoint>, Vec<PublishedPort>)> {
    let what = format!("releasing the network resources of container {container}");
    let tx = immediate(conn, &what)?;
    let endpoints = container_endpoints(&tx, container)?;
    let ports = published_ports(&tx, Some(container))?;
    tx.execute("DELETE FROM endpoints WHERE container = ?1", [container])
        .map_err(db(&tx, &what))?;
    tx.execute("DELETE FROM published_ports WHERE container = ?1", [container])
        .map_err(db(&tx, &what))?;
    commit(tx, &what)?;
    Ok((endpoints, ports))
}
