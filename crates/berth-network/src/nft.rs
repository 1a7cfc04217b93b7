//! NAT, published ports and isolation in an nftables table of our own.
//!
//! # Design
//!
//! The ruleset is a pure function of the records in `berth.db`
//! ([`Firewall::from_records`], then [`Firewall::script`]), so it can be
//! tested as text and every apply reconciles the kernel with the records,
//! whatever a crash left behind. [`sync`] reads the records and applies the
//! result under SQLite's write lock (so two CLI processes cannot apply in
//! the wrong order), through one `nft -f -` process ([`apply`]): the script
//! declares the table, deletes it and declares it again with its whole
//! content, which nftables runs as one transaction. Traffic never sees a
//! half-made ruleset, and nothing of an earlier generation survives.
//!
//! Everything lives in one `inet` table (`inet berth`), so IPv4 and IPv6
//! share the chains:
//!
//! - `localnet` (filter, `raw`) drops packets arriving on a bridge for
//!   127.0.0.0/8. The bridges need `route_localnet` (below), which would
//!   otherwise let a container that crafts such packets (CAP_NET_RAW is a
//!   default capability) reach services the host binds to 127.0.0.1
//!   (CVE-2020-8558, kube-proxy's).
//! - `prerouting` (nat, `dstnat`) and `output` (nat, -100) send packets for
//!   a local address (`fib daddr type local`: the host's addresses, the
//!   bridges' gateways) to `published`, which DNATs a published port to its
//!   container through four maps: by address, port and protocol for
//!   `-p ip:port:port`, by port and protocol for every address. `output`
//!   covers connections the host itself makes, to `127.0.0.1:8080` too
//!   (not to `::1`: the kernel never routes a loopback IPv6 source off the
//!   host). `prerouting` leaves 127.0.0.0/8 alone: DNAT would carry a packet
//!   for 127.0.0.1 from the network past the kernel's martian check, the
//!   other half of CVE-2020-8558.
//! - `postrouting` (nat, `srcnat`) masquerades: 127.0.0.0/8 sources going
//!   to a bridge (a host connection to `127.0.0.1:port`, now DNATed),
//!   hairpin traffic (a container reaching a published port of a container
//!   on its own bridge through a host address: without it the reply would
//!   go straight back over the bridge and miss the conntrack entry), and
//!   each network's subnet leaving through any other interface (not for
//!   `--internal` networks, nor with `enable_ip_masquerade=false`).
//! - `forward` (filter, `filter`): internal networks' bridges neither send
//!   nor receive forwarded traffic; replies (established, related) and
//!   DNATed connections (published ports, reachable from anywhere the host
//!   is) are accepted; traffic within one bridge is accepted (seen only with
//!   `br_netfilter`); traffic from one berth bridge to another is dropped
//!   (isolation between networks); containers may go out; anything else
//!   routed to a bridge is dropped (containers are not reachable from the
//!   outside except through published ports).
//!
//! # The user's chains
//!
//! `table inet berth-user` is the user's: berth creates it and its two
//! chains when missing and never deletes or flushes them (the script only
//! `add`s them, which leaves existing rules and policies alone):
//!
//! - `prerouting`: filter hook prerouting, priority -110 (`dstnat - 10`),
//!   evaluated before our DNAT, so it sees the host address and port the
//!   client used;
//! - `forward`: filter hook forward, priority -10 (`filter - 10`),
//!   evaluated before our forward chain, like Docker's `DOCKER-USER`: it
//!   sees the container's address and port.
//!
//! In nftables a `drop` in any base chain is final, while `accept` only
//! ends the chain it is in, so a `drop` the user (or the host's own
//! firewall, in any table) puts on a hook wins over everything berth
//! accepts. docs/security.md shows an example.
//!
//! # What the host must provide
//!
//! - `net.ipv4.ip_forward=1` (and `net.ipv6.conf.all.forwarding=1` for
//!   IPv6 networks): containers going out, published ports reached from
//!   other hosts or from containers (hairpin) are forwarded traffic.
//! - `net.ipv4.conf.<bridge>.route_localnet=1` on every bridge: a host
//!   connection to `127.0.0.1:port` is DNATed to a container with its
//!   127.0.0.1 source still in place when it is routed to the bridge
//!   (masqueraded only in postrouting), and its replies are un-NATed back to
//!   127.0.0.1 before routing; without route_localnet the kernel drops both
//!   as martians.
//! - A container reaching its *own* published port through the host needs
//!   hairpin mode on its bridge port (the frame leaves by the port it came
//!   in); other containers of the bridge do not.
//! - `nft` (Debian's `nftables`) and a kernel with nf_tables, nat and fib.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use rusqlite::Connection;

use crate::ipam::Cidr;
use crate::ports::Proto;
use crate::store::{self, Records, StoreError};

/// Our table (`inet berth`), replaced whole on every apply.
pub const TABLE: &str = "berth";

/// The user's table, created when missing and never deleted or flushed.
pub const USER_TABLE: &str = "berth-user";

/// What applying rules can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("running {program} -f -: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("applying nftables table {table}: nft {status}: {stderr}")]
    Failed {
        table: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, NftError>;

/// One network's bridge and what is done for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRules {
    pub bridge: String,
    pub subnets: Vec<Cidr>,
    /// No forwarding off the bridge, no masquerade.
    pub internal: bool,
    /// Masquerade the subnets going out other interfaces.
    pub masquerade: bool,
}

/// A published port: host side to container side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dnat {
    /// None: every local address of `to`'s family.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub proto: Proto,
    pub to: IpAddr,
    pub to_port: u16,
}

/// Everything the ruleset is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Firewall {
    pub bridges: Vec<BridgeRules>,
    pub dnat: Vec<Dnat>,
}

impl Firewall {
    /// The rules the records call for. A published port goes to the
    /// container's first endpoint (in connection order) on a non-internal
    /// bridge network: its IPv4 address for IPv4 host addresses, its IPv6
    /// address for IPv6 ones, both for "every address". Ports of containers
    /// without such an endpoint (host or none network, internal networks,
    /// not connected yet) get no rule, as Docker ignores them.
    pub fn from_records(records: &Records) -> Firewall {
        let bridges = records
            .networks
            .iter()
            .filter_map(|n| {
                Some(BridgeRules {
                    bridge: n.bridge.clone()?,
                    subnets: n.subnets.iter().map(|s| s.subnet).collect(),
                    internal: n.internal,
                    masquerade: n.masquerade(),
                })
            })
            .collect();
        let reachable = |network: &str| {
            records
                .networks
                .iter()
                .any(|n| n.id == network && n.bridge.is_some() && !n.internal)
        };
        let mut dnat = Vec::new();
        for p in &records.ports {
            let Some(ep) = records
                .endpoints
                .iter()
                .find(|e| e.container == p.container && reachable(&e.network))
            else {
                continue;
            };
            let v4 = p.host_ip.is_none_or(|ip| ip.is_ipv4());
            let v6 = p.host_ip.is_none_or(|ip| ip.is_ipv6());
            let targets = [
                ep.ipv4.filter(|_| v4).map(IpAddr::V4),
                ep.ipv6.filter(|_| v6).map(IpAddr::V6),
            ];
            for to in targets.into_iter().flatten() {
                dnat.push(Dnat {
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    proto: p.proto,
                    to,
                    to_port: p.container_port,
                });
            }
        }
        Firewall { bridges, dnat }
    }

    /// The elements of the four port maps (`ports4_addr`, `ports4`,
    /// `ports6_addr`, `ports6`), in that order.
    fn map_elements(&self) -> [Vec<String>; 4] {
        let mut maps: [Vec<String>; 4] = Default::default();
        let mut dnat = self.dnat.clone();
        dnat.sort();
        dnat.dedup();
        for d in &dnat {
            let to = format!("{} . {}", d.to, d.to_port);
            let key = format!("{} . {}", d.proto, d.host_port);
            let v6 = usize::from(d.to.is_ipv6()) * 2;
            match d.host_ip {
                Some(ip) => maps[v6].push(format!("{ip} . {key} : {to}")),
                None => maps[v6 + 1].push(format!("{key} : {to}")),
            }
        }
        maps
    }

    /// A script that only replaces the port maps' elements of an existing
    /// `table inet <table>`: what publishing or unpublishing a container's
    /// ports changes. Much cheaper than [`Firewall::script`], which makes
    /// the kernel unregister and register every base chain's hook.
    pub fn ports_script(&self, table: &str) -> String {
        let mut s = String::new();
        for (name, elements) in MAPS.iter().zip(self.map_elements()) {
            let _ = writeln!(s, "flush map inet {table} {name}");
            if !elements.is_empty() {
                let _ = writeln!(s, "add element inet {table} {name} {{ {} }}", elements.join(", "));
            }
        }
        s
    }

    /// The `nft -f` script that makes `table inet <table>` exactly this
    /// ruleset (and the user's table if it is missing).
    pub fn script(&self, table: &str) -> String {
        let mut s = String::new();
        let w = &mut s;
        // The user's table: `add` is a no-op on what exists (no policy is
        // given, so a policy the user set stays).
        let _ = writeln!(w, "add table inet {USER_TABLE}");
        let _ = writeln!(
            w,
            "add chain inet {USER_TABLE} prerouting {{ type filter hook prerouting priority -110; }}"
        );
        let _ = writeln!(
            w,
            "add chain inet {USER_TABLE} forward {{ type filter hook forward priority -10; }}"
        );
        // Ours: declared (so the delete cannot fail), deleted, made again.
        let _ = writeln!(w, "add table inet {table}");
        let _ = writeln!(w, "delete table inet {table}");
        let _ = writeln!(w, "table inet {table} {{");

        let names: BTreeSet<&str> = self.bridges.iter().map(|b| b.bridge.as_str()).collect();
        let _ = writeln!(w, "\tset bridges {{");
        let _ = writeln!(w, "\t\ttype ifname");
        if !names.is_empty() {
            let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
            let _ = writeln!(w, "\t\telements = {{ {} }}", list.join(", "));
        }
        let _ = writeln!(w, "\t}}");

        let maps = self.map_elements();
        for ((name, ty), elements) in MAPS.iter().zip(MAP_TYPES).zip(&maps) {
            let _ = writeln!(w, "\tmap {name} {{");
            let _ = writeln!(w, "\t\ttype {ty}");
            if !elements.is_empty() {
                let _ = writeln!(w, "\t\telements = {{ {} }}", elements.join(", "));
            }
            let _ = writeln!(w, "\t}}");
        }

        let _ = writeln!(w, "\tchain localnet {{");
        let _ = writeln!(w, "\t\ttype filter hook prerouting priority raw; policy accept;");
        let _ = writeln!(
            w,
            "\t\tiifname @bridges ip daddr 127.0.0.0/8 drop comment \"the host's loopback is its own\""
        );
        let _ = writeln!(w, "\t}}");
        let _ = writeln!(w, "\tchain prerouting {{");
        let _ = writeln!(w, "\t\ttype nat hook prerouting priority dstnat; policy accept;");
        let _ = writeln!(w, "\t\tip daddr != 127.0.0.0/8 fib daddr type local jump published");
        let _ = writeln!(w, "\t\tip6 daddr != ::1 fib daddr type local jump published");
        let _ = writeln!(w, "\t}}");
        let _ = writeln!(w, "\tchain output {{");
        let _ = writeln!(w, "\t\ttype nat hook output priority -100; policy accept;");
        let _ = writeln!(w, "\t\tmeta nfproto ipv4 fib daddr type local jump published");
        let _ = writeln!(w, "\t\tip6 daddr != ::1 fib daddr type local jump published");
        let _ = writeln!(w, "\t}}");
        let _ = writeln!(w, "\tchain published {{");
        let _ = writeln!(w, "\t\tdnat ip to ip daddr . meta l4proto . th dport map @ports4_addr");
        let _ = writeln!(w, "\t\tdnat ip to meta l4proto . th dport map @ports4");
        let _ = writeln!(
            w,
            "\t\tdnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6_addr"
        );
        let _ = writeln!(w, "\t\tdnat ip6 to meta l4proto . th dport map @ports6");
        let _ = writeln!(w, "\t}}");

        let _ = writeln!(w, "\tchain postrouting {{");
        let _ = writeln!(w, "\t\ttype nat hook postrouting priority srcnat; policy accept;");
        let _ = writeln!(
            w,
            "\t\toifname @bridges ip saddr 127.0.0.0/8 masquerade comment \"host to published port via localhost\""
        );
        for b in &self.bridges {
            let br = quote(&b.bridge);
            for net in &b.subnets {
                let fam = family(net);
                let _ = writeln!(
                    w,
                    "\t\toifname {br} {fam} saddr {net} ct status dnat masquerade comment \"hairpin\""
                );
                if b.masquerade && !b.internal {
                    let _ = writeln!(w, "\t\toifname != {br} {fam} saddr {net} masquerade");
                }
            }
        }
        let _ = writeln!(w, "\t}}");

        let _ = writeln!(w, "\tchain forward {{");
        let _ = writeln!(w, "\t\ttype filter hook forward priority filter; policy accept;");
        for b in self.bridges.iter().filter(|b| b.internal) {
            let br = quote(&b.bridge);
            let _ = writeln!(w, "\t\tiifname {br} oifname != {br} drop comment \"internal network\"");
            let _ = writeln!(w, "\t\toifname {br} iifname != {br} drop comment \"internal network\"");
        }
        let _ = writeln!(w, "\t\tct state established,related accept");
        let _ = writeln!(
            w,
            "\t\toifname @bridges ct status dnat accept comment \"published ports\""
        );
        for b in &self.bridges {
            let br = quote(&b.bridge);
            let _ = writeln!(w, "\t\tiifname {br} oifname {br} accept");
        }
        let _ = writeln!(
            w,
            "\t\tiifname @bridges oifname @bridges drop comment \"isolation between networks\""
        );
        let _ = writeln!(w, "\t\tiifname @bridges accept");
        let _ = writeln!(w, "\t\toifname @bridges drop");
        let _ = writeln!(w, "\t}}");
        let _ = writeln!(w, "}}");
        s
    }
}

fn family(net: &Cidr) -> &'static str {
    if net.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

/// An interface name as an nft string (bridge names are checked to hold no
/// quotes or whitespace when recorded; this keeps the script well-formed
/// whatever they hold).
fn quote(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    format!("\"{clean}\"")
}

/// The `nft` binary: on `PATH`, else in /usr/sbin or /sbin (where Debian
/// puts it, and which a non-root `PATH` may lack).
fn program() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("nft"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("nft"))
}

/// Runs `nft -f -` with `script` on its stdin: the script is one nftables
/// transaction, applied whole or not at all. Runs in the calling thread's
/// network namespace. `table` names what is applied, for the error.
pub fn apply(table: &str, script: &str) -> Result<()> {
    let prog = program();
    let spawn_err = |source| NftError::Spawn {
        program: prog.display().to_string(),
        source,
    };
    let mut child = Command::new(&prog)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    // nft reads the whole script before it writes anything, so writing
    // first and then reading stderr cannot deadlock.
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(script.as_bytes()));
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        return Err(NftError::Failed {
            table: table.to_owned(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_owned(),
        });
    }
    if let Some(Err(e)) = written {
        return Err(spawn_err(e));
    }
    Ok(())
}

/// Makes `table inet <table>` match the records: reads them and applies
/// the ruleset while holding `berth.db`'s write lock, so the last apply
/// always reflects the last change. Call after every change to networks,
/// endpoints or published ports, and at engine start (repairs whatever a
/// crash left).
pub fn sync(conn: &Connection, table: &str) -> Result<()> {
    let tx = store::immediate(conn, "applying the firewall")?;
    let records = store::records(&tx)?;
    apply(table, &Firewall::from_records(&records).script(table))?;
    store::commit(tx, "applying the firewall")?;
    Ok(())
}

/// The port maps, in [`Firewall::map_elements`]'s order, and their types.
const MAPS: [&str; 4] = ["ports4_addr", "ports4", "ports6_addr", "ports6"];
const MAP_TYPES: [&str; 4] = [
    "ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service",
    "inet_proto . inet_service : ipv4_addr . inet_service",
    "ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service",
    "inet_proto . inet_service : ipv6_addr . inet_service",
];

/// [`sync`] when only published ports changed: the port maps' elements are
/// replaced in one transaction; if that fails (the table is missing or was
/// changed by hand), the whole table is applied as [`sync`] does.
pub fn sync_ports(conn: &Connection, table: &str) -> Result<()> {
    let tx = store::immediate(conn, "applying the published ports")?;
    let records = store::records(&tx)?;
    let fw = Firewall::from_records(&records);
    if apply(table, &fw.ports_script(table)).is_err() {
        apply(table, &fw.script(table))?;
    }
    store::commit(tx, "applying the published ports")?;
    Ok(())
}

/// Removes `table inet <table>` if it exists (the user's table stays).
pub fn remove_all(table: &str) -> Result<()> {
    apply(table, &format!("add table inet {table}\ndelete table inet {table}\n"))
}

#[cfg(test)]
mod tests;
