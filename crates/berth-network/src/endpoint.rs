//! A container's attachment to a bridge network: the bridge, a veth pair,
//! `eth0` in the container's namespace with its addresses and routes.
//!
//! # Design
//!
//! Everything here is idempotent, so the engine can call it again after a
//! crash or from two `berth run`s at once:
//!
//! - [`ensure_bridge`] creates the bridge (up, with its MTU and a MAC of its
//!   own, so the kernel does not switch it to a port's MAC as ports come and
//!   go) or finds it, adds whichever gateway addresses it lacks, and sets the
//!   sysctls a bridge network needs. With the bridge in place it costs two
//!   round trips (look up, list addresses) and three sysctl reads.
//! - [`attach`] creates the veth pair in one request: the host end up, with
//!   the MTU and enslaved to the bridge, the peer created directly in the
//!   container's namespace as `eth0` with its MTU and MAC. A handle opened
//!   inside that namespace looks `eth0` up, then brings it up and adds the
//!   addresses and default routes in one datagram (the kernel processes a
//!   datagram's requests in order). A stale host end of the same name (an attach that
//!   never got its detach) is deleted and the pair made again.
//! - [`detach`] deletes the host end, which removes the pair; a pair already
//!   gone (the namespace was torn down first) is fine.
//!
//! Tearing a container down needs no `detach`: [`netns::remove`] alone
//! drops the last reference to the namespace, and the kernel destroys it in
//! the background, deleting `eth0` and with it the host end. That matters
//! for speed: deleting a link synchronously waits for RCU grace periods in
//! the kernel's unregister path, 10–40 ms on our 2-core VM, while the whole
//! setup plus a teardown by namespace removal measures under 1 ms
//! (`tests/plumbing.rs`, `measure_endpoint_setup_and_teardown`). `detach`
//! is for taking a running container off a network (`network disconnect`).
//! Until the kernel has finished (tens of ms) the old `eth0` still holds
//! its address, so an address released this way is best not handed out
//! again at once.
//!
//! The host end is named from the container and network ids
//! ([`host_ifname`]) so `detach` needs nothing but the ids, and the MAC is
//! Docker's `02:42` followed by the IPv4 address ([`mac_for`]) unless one is
//! given. Sysctls are files under a `/proc/sys` root passed in, so the unit
//! tests run on a temporary directory. Note that `/proc/sys/net` shows the
//! namespace of the thread that opens it.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::netlink::{self, Handle, IfAddr, MacAddr, NewLink, Request};
use crate::netns::{self, NetNs};

/// What can go wrong plumbing an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Netlink(#[from] netlink::Error),
    #[error(transparent)]
    Netns(#[from] netns::Error),
    #[error("link {name} exists and is not a bridge")]
    NotABridge { name: String },
    #[error("bridge {name} does not exist")]
    NoBridge { name: String },
    #[error("{ifname} did not appear in network namespace {netns}")]
    NoPeer { ifname: String, netns: PathBuf },
    #[error("setting sysctl {path}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A bridge network's device.
#[derive(Debug, Clone, Copy)]
pub struct Bridge<'a> {
    pub name: &'a str,
    /// The gateway addresses with their subnets' prefix length: IPv4, and
    /// IPv6 when the network has it.
    pub addresses: &'a [IfAddr],
    pub mtu: u32,
}

/// What [`ensure_bridge`] found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ensured {
    pub index: u32,
    /// The bridge was missing (this call, or a concurrent one, made it).
    pub created: bool,
}

/// Creates the bridge, or completes the one there.
pub fn ensure_bridge(nl: &mut Handle, bridge: &Bridge, proc_sys: &Path) -> Result<Ensured, Error> {
    let mut created = false;
    let link = match nl.link(bridge.name)? {
        Some(link) => link,
        None => {
            created = true;
            let mac = bridge.addresses.iter().find_map(|a| match a.addr {
                IpAddr::V4(v4) => Some(mac_for(v4)),
                IpAddr::V6(_) => None,
            });
            let new = NewLink {
                mtu: Some(bridge.mtu),
                mac,
                up: true,
                ..NewLink::named(bridge.name)
            };
            match nl.execute(&[Request::new_bridge(&new)]) {
                // Another berth made it meanwhile.
                Err(e) if e.errno() == Some(Errno::EEXIST) => {}
                r => r?,
            }
            nl.link(bridge.name)?.ok_or_else(|| Error::NoBridge {
                name: bridge.name.to_owned(),
            })?
        }
    };
    if link.kind.as_deref() != Some("bridge") {
        return Err(Error::NotABridge {
            name: bridge.name.to_owned(),
        });
    }
    let mut fixes = Vec::new();
    if link.mtu != bridge.mtu {
        fixes.push(Request::set_mtu(bridge.name, bridge.mtu));
    }
    if !link.up {
        fixes.push(Request::set_up(bridge.name));
    }
    let present = nl.addresses(link.index)?;
    let missing: Vec<&IfAddr> = bridge.addresses.iter().filter(|a| !present.contains(a)).collect();
    fixes.extend(missing.iter().map(|a| Request::add_address(&link, **a)));
    match nl.execute(&fixes) {
        // An address added by a concurrent ensure_bridge.
        Err(e) if e.errno() == Some(Errno::EEXIST) => {}
        r => r?,
    }

    set_sysctl(proc_sys, &["net", "ipv4", "ip_forward"])?;
    // Lets DNAT send host-loopback traffic for published ports to containers.
    set_sysctl(proc_sys, &["net", "ipv4", "conf", bridge.name, "route_localnet"])?;
    if bridge.addresses.iter().any(|a| a.addr.is_ipv6()) {
        set_sysctl(proc_sys, &["net", "ipv6", "conf", "all", "forwarding"])?;
    }
    Ok(Ensured {
        index: link.index,
        created,
    })
}

/// Writes 1 to a sysctl unless it already reads 1.
fn set_sysctl(proc_sys: &Path, key: &[&str]) -> Result<(), Error> {
    let path: PathBuf = key.iter().fold(proc_sys.to_owned(), |p, k| p.join(k));
    if fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    fs::write(&path, "1\n").map_err(|source| Error::Sysctl { path, source })
}

/// Deletes a bridge; one already gone is fine.
pub fn remove_bridge(nl: &mut Handle, name: &str) -> Result<(), Error> {
    delete_link(nl, name)?;
    Ok(())
}

/// A container's endpoint on a bridge network.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    pub bridge: &'a str,
    /// The bridge's index when the caller has it ([`Ensured::index`]); else it is looked up.
    pub bridge_index: Option<u32>,
    /// The container's network namespace file ([`netns::create`]).
    pub netns: &'a Path,
    /// The host end's name ([`host_ifname`]).
    pub host_ifname: &'a str,
    /// The name inside the container, `eth0` for its first network.
    pub ifname: &'a str,
    /// Addresses with the subnet's prefix length (IPv4, and IPv6 when the network has it).
    pub addresses: &'a [IfAddr],
    /// Default routes' gateways (none for an internal network).
    pub gateways: &'a [IpAddr],
    pub mtu: u32,
    /// The container side's MAC; [`mac_for`] its IPv4 address when `None`.
    pub mac: Option<MacAddr>,
}

/// Plumbs an endpoint; returns the MAC of the container's interface.
pub fn attach(nl: &mut Handle, ep: &Endpoint) -> Result<MacAddr, Error> {
    let ns = NetNs::open(ep.netns)?;
    let bridge = match ep.bridge_index {
        Some(index) => index,
        None => nl.link_index(ep.bridge)?.ok_or_else(|| Error::NoBridge {
            name: ep.bridge.to_owned(),
        })?,
    };
    let mac = ep.mac.or_else(|| {
        ep.addresses.iter().find_map(|a| match a.addr {
            IpAddr::V4(v4) => Some(mac_for(v4)),
            IpAddr::V6(_) => None,
        })
    });
    let host = NewLink {
        mtu: Some(ep.mtu),
        master: Some(bridge),
        up: true,
        ..NewLink::named(ep.host_ifname)
    };
    let peer = NewLink {
        mtu: Some(ep.mtu),
        mac,
        netns: Some(ns.as_fd()),
        ..NewLink::named(ep.ifname)
    };
    let veth = [Request::new_veth(&host, &peer)];
    let mut tries = 0;
    loop {
        match nl.execute(&veth) {
            // A stale pair under the host end's name: replace it. The kernel may be tearing
            // it down with its namespace just then (gone by the time we look): try again.
            // (EEXIST all along with no such host end: the name is taken inside the container.)
            Err(e) if e.errno() == Some(Errno::EEXIST) && tries < VETH_TRIES => {
                tries += 1;
                if !delete_link(nl, ep.host_ifname)? {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
            r => break r?,
        }
    }
    configure_inside(&ns, ep).inspect_err(|_| {
        // Leave no half-plumbed pair; the error that matters is the first.
        let _ = delete_link(nl, ep.host_ifname);
    })
}

/// How often a veth whose name exists is tried again (10 ms apart when no stale pair was
/// there to delete).
const VETH_TRIES: u32 = 20;

/// Brings the container's end up and adds its addresses and routes, in one
/// datagram from a handle opened in the container's namespace.
fn configure_inside(ns: &NetNs, ep: &Endpoint) -> Result<MacAddr, Error> {
    let mut inner = ns.run(Handle::open)??;
    let link = inner.link(ep.ifname)?.ok_or_else(|| Error::NoPeer {
        ifname: ep.ifname.to_owned(),
        netns: ep.netns.to_owned(),
    })?;
    let mut requests = vec![Request::set_up(ep.ifname)];
    requests.extend(ep.addresses.iter().map(|a| Request::add_address(&link, *a)));
    requests.extend(
        ep.gateways
            .iter()
            .map(|gw| Request::add_default_route(*gw, Some(&link))),
    );
    inner.execute(&requests)?;
    link.mac.ok_or_else(|| Error::NoPeer {
        ifname: ep.ifname.to_owned(),
        netns: ep.netns.to_owned(),
    })
}

/// Removes an endpoint by deleting its host end; one already gone is fine.
/// This blocks while the kernel unregisters the pair (10–40 ms); when the
/// container's namespace goes too, [`netns::remove`] alone is enough and
/// leaves the work to the kernel's background teardown.
pub fn detach(nl: &mut Handle, host_ifname: &str) -> Result<(), Error> {
    delete_link(nl, host_ifname)?;
    Ok(())
}

/// Deletes a link; `false` when there was none.
fn delete_link(nl: &mut Handle, name: &str) -> Result<bool, netlink::Error> {
    match nl.execute(&[Request::delete_link(name)]) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The host end's name for a container on a network: `vb`, 9 hex digits of
/// the container id and 4 of the network id (15 characters, the kernel's
/// limit), so a container on several networks gets one per network.
pub fn host_ifname(container_id: &str, network_id: &str) -> String {
    let hex = |s: &str, n: usize| -> String { s.chars().filter(char::is_ascii_hexdigit).take(n).collect() };
    format!("vb{}{}", hex(container_id, 9), hex(network_id, 4)).to_ascii_lowercase()
}

/// Docker's MAC for an IPv4 address: `02:42` and the address's 4 bytes.
pub fn mac_for(addr: Ipv4Addr) -> MacAddr {
    let [a, b, c, d] = addr.octets();
    MacAddr([0x02, 0x42, a, b, c, d])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ends_fit_the_kernel_limit_and_differ_per_network() {
        let c = "3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708";
        let a = host_ifname(c, "9b8c7d6e5f4a3b2c");
        assert_eq!(a, "vb3f2a1b4c59b8c");
        assert_eq!(a.len(), 15);
        assert_ne!(a, host_ifname(c, "1234abcd"));
        assert_eq!(host_ifname("ABC", "D-E"), "vbabcde");
    }

    #[test]
    fn macs_follow_docker() {
        assert_eq!(mac_for(Ipv4Addr::new(172, 17, 0, 2)).to_string(), "02:42:ac:11:00:02");
    }

    #[test]
    fn sysctls_are_written_once_under_the_given_root() {
        let root = tempfile::tempdir().unwrap();
        let conf = root.path().join("net/ipv4/conf/br0");
        fs::create_dir_all(&conf).unwrap();
        fs::write(root.path().join("net/ipv4/ip_forward"), "0\n").unwrap();
        set_sysctl(root.path(), &["net", "ipv4", "ip_forward"]).unwrap();
        set_sysctl(root.path(), &["net", "ipv4", "conf", "br0", "route_localnet"]).unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("net/ipv4/ip_forward")).unwrap(),
            "1\n"
        );
        assert_eq!(fs::read_to_string(conf.join("route_localnet")).unwrap(), "1\n");

        // Already 1: left alone (a rewrite would add the newline).
        let fwd = root.path().join("net/ipv4/ip_forward");
        fs::write(&fwd, "1").unwrap();
        set_sysctl(root.path(), &["net", "ipv4", "ip_forward"]).unwrap();
        assert_eq!(fs::read_to_string(&fwd).unwrap(), "1");

        let err = set_sysctl(root.path(), &["net", "ipv6", "conf", "all", "forwarding"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("setting sysctl {}/net/ipv6/conf/all/forwarding", root.path().display())
        );
    }
}
