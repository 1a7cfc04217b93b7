//! Published ports: host ports held for a container.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use rusqlite::{params, Connection};

use super::{commit, db, immediate, Result, StoreError};
use crate::ports::{HostPort, PortBinding, Proto};

/// Host ports handed out for `-p 80` and `-P`: Linux's default
/// `ip_local_port_range`, as Docker uses.
pub const EPHEMERAL_PORTS: (u16, u16) = (32768, 60999);

/// A host port held for a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    /// The container's id.
    pub container: String,
    /// None: every host address.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub proto: Proto,
    pub container_port: u16,
}

impl PublishedPort {
    /// `0.0.0.0:8080`, `127.0.0.1:8080`, `[::1]:8080`, as Docker's messages
    /// write the host side.
    pub fn host_addr(&self) -> String {
        host_addr(self.host_ip, self.host_port)
    }
}

fn host_addr(ip: Option<IpAddr>, port: u16) -> String {
    match ip {
        None => format!("0.0.0.0:{port}"),
        Some(ip) => SocketAddr::new(ip, port).to_string(),
    }
}

fn port_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PublishedPort> {
    let conv = |i: usize, e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e)
    };
    let ip: String = r.get(1)?;
    let proto: String = r.get(3)?;
    Ok(PublishedPort {
        container: r.get(0)?,
        host_ip: if ip.is_empty() {
            None
        } else {
            Some(ip.parse().map_err(|e| conv(1, Box::new(e)))?)
        },
        host_port: r.get(2)?,
        proto: proto.parse().map_err(|e| conv(3, Box::new(e)))?,
        container_port: r.get(4)?,
    })
}

/// Every published port, or a container's, in the order they were made.
pub fn published_ports(conn: &Connection, container: Option<&str>) -> Result<Vec<PublishedPort>> {
    let base = "SELECT container, host_ip, host_port, proto, container_port FROM published_ports";
    let action = "list published ports";
    let rows = match container {
        Some(c) => {
            let mut st = conn
                .prepare_cached(&format!("{base} WHERE container = ?1 ORDER BY rowid"))
                .map_err(db(conn, action))?;
            let rows = st.query_map([c], port_row).map_err(db(conn, action))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        }
        None => {
            let mut st = conn
                .prepare_cached(&format!("{base} ORDER BY rowid"))
                .map_err(db(conn, action))?;
            let rows = st.query_map([], port_row).map_err(db(conn, action))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        }
    };
    rows.map_err(db(conn, action))
}

/// Whether two host bindings of one protocol collide: same port, and the
/// same address or either on every address.
fn collides(a: (Option<IpAddr>, u16), b: (Option<IpAddr>, u16)) -> bool {
    a.1 == b.1 && (a.0.is_none() || b.0.is_none() || a.0 == b.0)
}

/// Tries to bind the host port, so a port some host process listens on is
/// refused before traffic to it is taken away by DNAT. SCTP is not probed.
fn probe(ip: Option<IpAddr>, port: u16, proto: Proto) -> io::Result<()> {
    let addr = SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr).map(drop),
        Proto::Udp => UdpSocket::bind(addr).map(drop),
        Proto::Sctp => Ok(()),
    }
}

/// Holds host ports for a container's bindings: the given port (refused if
/// another record holds it or a host socket is bound to it), the first free
/// port of a range, or a free port of [`EPHEMERAL_PORTS`]. Replaces whatever
/// the container held before (a restart after a crash), all in one
/// transaction; on error nothing is held.
pub fn publish_ports(conn: &Connection, container: &str, bindings: &[PortBinding]) -> Result<Vec<PublishedPort>> {
    let what = format!("publishing ports of container {container}");
    let tx = immediate(conn, &what)?;
    tx.execute("DELETE FROM published_ports WHERE container = ?1", [container])
        .map_err(db(&tx, &what))?;
    let mut held = published_ports(&tx, None)?;
    let mut out = Vec::with_capacity(bindings.len());
    // Ephemeral ports are searched from a moving start, so a port just
    // released is not handed out again at once (Docker's allocator goes on
    // from the last port it gave).
    let (lo, hi) = EPHEMERAL_PORTS;
    let span = u32::from(hi - lo) + 1;
    let mut next_any = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % span)
        .unwrap_or(0);
    for b in bindings {
        let free = |held: &[PublishedPort], port: u16| {
            !held
                .iter()
                .any(|h| h.proto == b.proto && collides((h.host_ip, h.host_port), (b.host_ip, port)))
        };
        let port = match b.host_port {
            HostPort::Port(p) => {
                if !free(&held, p) {
                    return Err(StoreError::PortAllocated(host_addr(b.host_ip, p)));
                }
                probe(b.host_ip, p, b.proto).map_err(|source| match source.kind() {
                    io::ErrorKind::AddrInUse => StoreError::PortAllocated(host_addr(b.host_ip, p)),
                    _ => StoreError::Bind {
                        addr: host_addr(b.host_ip, p),
                        source,
                    },
                })?;
                p
            }
            HostPort::Range(start, end) => (start..=end)
                .find(|p| free(&held, *p) && probe(b.host_ip, *p, b.proto).is_ok())
                .ok_or_else(|| StoreError::PortAllocated(format!("{}-{end}", host_addr(b.host_ip, start))))?,
            HostPort::Any => {
                let mut found = None;
                for i in 0..span {
                    let p = lo + ((next_any + i) % span) as u16;
                    if free(&held, p) && probe(b.host_ip, p, b.proto).is_ok() {
                        next_any = (next_any + i + 1) % span;
                        found = Some(p);
                        break;
                    }
                }
                found.ok_or_else(|| StoreError::PortsExhausted(format!("{}/{}", b.container_port, b.proto)))?
            }
        };
        let published = PublishedPort {
            container: container.to_owned(),
            host_ip: b.host_ip,
            host_port: port,
            proto: b.proto,
            container_port: b.container_port,
        };
        tx.execute(
            "INSERT INTO published_ports (container, host_ip, host_port, proto, container_port) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                published.container,
                published.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                published.host_port,
                published.proto.as_str(),
                published.container_port,
            ],
        )
        .map_err(db(&tx, &what))?;
        held.push(published.clone());
        out.push(published);
    }
    commit(tx, &what)?;
    Ok(out)
}

/// Releases a container's published ports (`stop`); returns them.
pub fn unpublish_ports(conn: &Connection, container: &str) -> Result<Vec<PublishedPort>> {
    let what = format!("releasing published ports of container {container}");
    let tx = immediate(conn, &what)?;
    let ports = published_ports(&tx, Some(container))?;
    tx.execute("DELETE FROM published_ports WHERE container = ?1", [container])
        .map_err(db(&tx, &what))?;
    commit(tx, &what)?;
    Ok(ports)
}
