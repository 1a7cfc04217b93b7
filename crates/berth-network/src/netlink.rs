//! A small rtnetlink client: links, addresses and routes over one
//! `NETLINK_ROUTE` socket, so no `ip` process is ever spawned.
//!
//! # Design
//!
//! A [`Handle`] is one netlink socket. The kernel acts on the network
//! namespace the socket was *created* in, whichever thread uses it later: a
//! handle for a container's namespace is opened on a thread that joined it
//! ([`crate::netns::NetNs::run`]) and then used from anywhere. The socket is
//! unbound (the kernel picks a port id on first send) and blocking; rtnetlink
//! requests complete synchronously, so no timeouts are needed.
//!
//! Every change is a [`Request`] built as plain bytes (`message`) and sent
//! with `NLM_F_ACK`. [`Handle::execute`] sends a slice of requests in **one**
//! datagram (the kernel works through the messages of a datagram in order,
//! acknowledging each) and then collects one acknowledgement per request, so
//! setting up a container's addresses and routes costs one round trip. A
//! failure is reported for the first request that failed, as
//! [`Error::Request`] naming the operation and the object
//! (`adding veth vb1a2b3c4d5e6f: EEXIST: File exists`); the errno stays
//! reachable through [`Error::errno`] so callers can tolerate `EEXIST` or
//! `ENODEV` where that is the idempotent outcome.
//!
//! Creation takes everything at once: [`NewLink`] carries the MTU, MAC,
//! master and the up flag, and a veth's peer can be created directly in
//! another namespace under its final name (`IFLA_NET_NS_FD` in the peer's
//! attributes), so no rename and no move is needed (only bringing the peer
//! up must wait until the pair exists). Links are modified by
//! name (the kernel looks a link up by `IFLA_IFNAME` when the index is 0),
//! which saves a lookup; only addresses need the index, taken from a
//! [`Link`].
//!
//! IPv6 addresses are added with `IFA_F_NODAD`: duplicate address detection
//! would keep them tentative (unusable) for about a second, and on a bridge
//! whose addresses IPAM hands out there is nothing to detect.

mod message;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::str::FromStr;

use nix::errno::Errno;
use rustix::net::{netlink::SocketAddrNetlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

pub use message::Malformed;
use message::*;

/// Receive buffer: one datagram of a dump is at most 32 KiB.
const RECV_BUF: usize = 64 * 1024;

/// What can go wrong talking rtnetlink.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opening a netlink socket")]
    Open(#[source] io::Error),
    #[error("sending netlink request for {op} {object}")]
    Send {
        op: &'static str,
        object: String,
        #[source]
        source: io::Error,
    },
    #[error("receiving netlink reply for {op} {object}")]
    Receive {
        op: &'static str,
        object: String,
        #[source]
        source: io::Error,
    },
    #[error("{op} {object}")]
    Request {
        op: &'static str,
        object: String,
        #[source]
        errno: Errno,
    },
    #[error("malformed netlink reply to {op} {object}: {detail}")]
    Malformed {
        op: &'static str,
        object: String,
        detail: Malformed,
    },
}

impl Error {
    /// The errno the kernel answered a request with.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Request { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// An address on an interface with its prefix length (`172.17.0.2/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl IfAddr {
    pub fn new(addr: impl Into<IpAddr>, prefix_len: u8) -> Self {
        IfAddr {
            addr: addr.into(),
            prefix_len,
        }
    }

    /// The subnet's broadcast address (IPv4 with room for one).
    fn broadcast(&self) -> Option<Ipv4Addr> {
        match self.addr {
            IpAddr::V4(a) if self.prefix_len < 31 => Some(Ipv4Addr::from(u32::from(a) | (u32::MAX >> self.prefix_len))),
            _ => None,
        }
    }
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// Parse failure of an [`IfAddr`] or a [`MacAddr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}")]
pub struct ParseError {
    what: &'static str,
    value: String,
}

impl FromStr for IfAddr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let err = || ParseError {
            what: "address/prefix",
            value: s.to_owned(),
        };
        let (addr, len) = s.split_once('/').ok_or_else(err)?;
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let prefix_len: u8 = len.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(err());
        }
        Ok(IfAddr { addr, prefix_len })
    }
}

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let err = || ParseError {
            what: "MAC address",
            value: s.to_owned(),
        };
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.len() != 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "bridge", "veth", ...; `None` for physical devices and `lo`.
    pub kind: Option<String>,
    pub mtu: u32,
    pub mac: Option<MacAddr>,
    /// Index of the bridge this link is a port of.
    pub master: Option<u32>,
    pub up: bool,
}

/// A link to create: what [`Request::new_bridge`] and [`Request::new_veth`] set at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewLink<'a> {
    pub name: &'a str,
    pub mtu: Option<u32>,
    pub mac: Option<MacAddr>,
    /// Bridge to enslave the link to (index). Not applied to a veth's peer
    /// (the kernel has no such attribute for it).
    pub master: Option<u32>,
    /// Bring the link up at creation. A veth's peer cannot be: the kernel
    /// opens it before the pair is joined and refuses with ENOTCONN; bring
    /// it up afterwards with [`Request::set_up`].
    pub up: bool,
    /// Namespace to create the link in, instead of the socket's.
    pub netns: Option<BorrowedFd<'a>>,
}

impl<'a> NewLink<'a> {
    pub fn named(name: &'a str) -> Self {
        NewLink {
            name,
            ..NewLink::default()
        }
    }

    fn encode(&self, m: &mut MessageBuilder, with_master: bool) {
        m.attr_str(IFLA_IFNAME, self.name);
        if let Some(mtu) = self.mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        if let Some(mac) = self.mac {
            m.attr(IFLA_ADDRESS, &mac.0);
        }
        if let (Some(master), true) = (self.master, with_master) {
            m.attr_u32(IFLA_MASTER, master);
        }
        if let Some(fd) = self.netns {
            m.attr_u32(IFLA_NET_NS_FD, fd.as_raw_fd() as u32);
        }
    }

    fn flags(&self) -> u32 {
        if self.up {
            IFF_UP
        } else {
            0
        }
    }
}

/// One change, as bytes ready to send, with what it does to which object
/// for the error message.
#[derive(Debug)]
pub struct Request {
    bytes: Vec<u8>,
    op: &'static str,
    object: String,
}

const CHANGE: u16 = NLM_F_REQUEST | NLM_F_ACK;
const CREATE: u16 = CHANGE | NLM_F_CREATE | NLM_F_EXCL;

impl Request {
    /// A bridge (`ip link add NAME type bridge`).
    pub fn new_bridge(link: &NewLink) -> Request {
        let mut m = MessageBuilder::new(RTM_NEWLINK, CREATE, &ifinfomsg(0, link.flags(), link.flags()));
        link.encode(&mut m, true);
        let info = m.begin_nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end_nest(info);
        Request {
            bytes: m.finish(),
            op: "adding bridge",
            object: link.name.to_owned(),
        }
    }

    /// A veth pair; `peer.netns` creates the peer directly in that namespace.
    pub fn new_veth(host: &NewLink, peer: &NewLink) -> Request {
        let mut m = MessageBuilder::new(RTM_NEWLINK, CREATE, &ifinfomsg(0, host.flags(), host.flags()));
        host.encode(&mut m, true);
        let info = m.begin_nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        let data = m.begin_nest(IFLA_INFO_DATA);
        let p = m.begin_nest(VETH_INFO_PEER);
        m.raw(&ifinfomsg(0, peer.flags(), peer.flags()));
        peer.encode(&mut m, false);
        m.end_nest(p);
        m.end_nest(data);
        m.end_nest(info);
        Request {
            bytes: m.finish(),
            op: "adding veth",
            object: format!("{} (peer {})", host.name, peer.name),
        }
    }

    fn set_link(name: &str, op: &'static str, flags: u32, change: u32, f: impl FnOnce(&mut MessageBuilder)) -> Request {
        let mut m = MessageBuilder::new(RTM_SETLINK, CHANGE, &ifinfomsg(0, flags, change));
        m.attr_str(IFLA_IFNAME, name);
        f(&mut m);
        Request {
            bytes: m.finish(),
            op,
            object: name.to_owned(),
        }
    }

    pub fn set_up(name: &str) -> Request {
        Self::set_link(name, "bringing up", IFF_UP, IFF_UP, |_| {})
    }

    pub fn set_mtu(name: &str, mtu: u32) -> Request {
        Self::set_link(name, "setting the MTU of", 0, 0, |m| {
            m.attr_u32(IFLA_MTU, mtu);
        })
    }

    /// Deletes a link; deleting either end of a veth pair removes both.
    pub fn delete_link(name: &str) -> Request {
        let mut m = MessageBuilder::new(RTM_DELLINK, CHANGE, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        Request {
            bytes: m.finish(),
            op: "deleting link",
            object: name.to_owned(),
        }
    }

    /// Adds an address (`ip addr add ADDR/LEN [brd +] dev LINK`); IPv6
    /// addresses skip duplicate address detection.
    pub fn add_address(link: &Link, addr: IfAddr) -> Request {
        let (family, nodad) = match addr.addr {
            IpAddr::V4(_) => (AF_INET, 0),
            IpAddr::V6(_) => (AF_INET6, IFA_F_NODAD),
        };
        let header = ifaddrmsg(family, addr.prefix_len, nodad as u8, link.index);
        let mut m = MessageBuilder::new(RTM_NEWADDR, CREATE, &header);
        let bytes = ip_bytes(&addr.addr);
        m.attr(IFA_LOCAL, &bytes).attr(IFA_ADDRESS, &bytes);
        if let Some(brd) = addr.broadcast() {
            m.attr(IFA_BROADCAST, &brd.octets());
        }
        if nodad != 0 {
            m.attr_u32(IFA_FLAGS, nodad);
        }
        Request {
            bytes: m.finish(),
            op: "adding address",
            object: format!("{addr} to {}", link.name),
        }
    }

    /// Adds the default route via `gateway` (`ip route add default via GW [dev LINK]`).
    pub fn add_default_route(gateway: IpAddr, link: Option<&Link>) -> Request {
        let family = if gateway.is_ipv4() { AF_INET } else { AF_INET6 };
        let mut m = MessageBuilder::new(RTM_NEWROUTE, CREATE, &rtmsg(family, 0));
        m.attr(RTA_GATEWAY, &ip_bytes(&gateway));
        let mut object = format!("via {gateway}");
        if let Some(link) = link {
            m.attr_u32(RTA_OIF, link.index);
            object = format!("via {gateway} dev {}", link.name);
        }
        Request {
            bytes: m.finish(),
            op: "adding default route",
            object,
        }
    }
}

fn ip_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// One `NETLINK_ROUTE` socket, acting on the namespace it was opened in.
#[derive(Debug)]
pub struct Handle {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Handle {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Handle, Error> {
        let fd = rustix::net::socket_with(AddressFamily::NETLINK, SocketType::RAW, SocketFlags::CLOEXEC, None)
            .map_err(|e| Error::Open(e.into()))?;
        Ok(Handle {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Sends `requests` in one datagram and waits for every acknowledgement;
    /// the first failure (in request order) is the error. The kernel carries
    /// on after a failed request, so later ones may have taken effect.
    pub fn execute(&mut self, requests: &[Request]) -> Result<(), Error> {
        let Some(first) = requests.first() else { return Ok(()) };
        let base = self.seq.wrapping_add(1);
        let mut datagram = Vec::with_capacity(requests.iter().map(|r| r.bytes.len()).sum());
        for (i, r) in requests.iter().enumerate() {
            let start = datagram.len();
            datagram.extend_from_slice(&r.bytes);
            set_seq(&mut datagram[start..], base.wrapping_add(i as u32));
        }
        self.seq = base.wrapping_add(requests.len() as u32 - 1);
        self.send(&datagram, first)?;

        let mut acked = vec![false; requests.len()];
        let mut pending = requests.len();
        let mut failed: Option<(usize, Errno)> = None;
        while pending > 0 {
            let len = self.recv(first)?;
            for msg in messages(&self.buf[..len]) {
                let (header, payload) = msg.map_err(|d| malformed(first, d))?;
                let i = header.seq.wrapping_sub(base) as usize;
                if header.ty != NLMSG_ERROR || i >= requests.len() || acked[i] {
                    continue;
                }
                acked[i] = true;
                pending -= 1;
                let code = error_code(payload).map_err(|d| malformed(&requests[i], d))?;
                if code != 0 && failed.is_none_or(|(j, _)| i < j) {
                    failed = Some((i, Errno::from_raw(-code)));
                }
            }
        }
        match failed {
            None => Ok(()),
            Some((i, errno)) => {
                let r = &requests[i];
                Err(Error::Request {
                    op: r.op,
                    object: r.object.clone(),
                    errno,
                })
            }
        }
    }

    /// Looks a link up by name; `None` when there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>, Error> {
        let mut m = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST, &ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name)
            .attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        let req = Request {
            bytes: m.finish(),
            op: "looking up link",
            object: name.to_owned(),
        };
        let mut link = None;
        let res = self.query(&req, |payload| {
            link = Some(parse_link(payload)?);
            Ok(())
        });
        match res {
            Ok(()) => Ok(link),
            Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of the link called `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, Error> {
        Ok(self.link(name)?.map(|l| l.index))
    }

    /// The addresses on the link with index `index` (IPv4 and IPv6, link-local included).
    pub fn addresses(&mut self, index: u32) -> Result<Vec<IfAddr>, Error> {
        let m = MessageBuilder::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &ifaddrmsg(AF_UNSPEC, 0, 0, 0));
        let req = Request {
            bytes: m.finish(),
            op: "listing addresses of link",
            object: format!("#{index}"),
        };
        let mut out = Vec::new();
        self.query(&req, |payload| {
            if let Some((link, addr)) = parse_address(payload)? {
                if link == index {
                    out.push(addr);
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Sends a query (a get or a dump) and hands each reply's payload to `f`.
    /// A dump the kernel marks as interrupted by a change is started over.
    fn query(&mut self, req: &Request, mut f: impl FnMut(&[u8]) -> Result<(), Malformed>) -> Result<(), Error> {
        let dump = u16_at(&req.bytes, 6) & NLM_F_DUMP == NLM_F_DUMP;
        'again: loop {
            self.seq = self.seq.wrapping_add(1);
            let seq = self.seq;
            let mut bytes = req.bytes.clone();
            set_seq(&mut bytes, seq);
            self.send(&bytes, req)?;
            let mut replies: Vec<Vec<u8>> = Vec::new();
            loop {
                let len = self.recv(req)?;
                for msg in messages(&self.buf[..len]) {
                    let (header, payload) = msg.map_err(|d| malformed(req, d))?;
                    if header.seq != seq {
                        continue;
                    }
                    match header.ty {
                        NLMSG_ERROR => {
                            let code = error_code(payload).map_err(|d| malformed(req, d))?;
                            if code != 0 {
                                return Err(Error::Request {
                                    op: req.op,
                                    object: req.object.clone(),
                                    errno: Errno::from_raw(-code),
                                });
                            }
                        }
                        NLMSG_DONE if header.flags & NLM_F_DUMP_INTR != 0 => continue 'again,
                        NLMSG_DONE => {}
                        _ => {
                            replies.push(payload.to_vec());
                            if header.flags & NLM_F_MULTI != 0 {
                                continue;
                            }
                        }
                    }
                    if !dump || header.ty == NLMSG_DONE || header.ty == NLMSG_ERROR {
                        for r in &replies {
                            f(r).map_err(|d| malformed(req, d))?;
                        }
                        return Ok(());
                    }
                }
            }
        }
    }

    fn send(&self, bytes: &[u8], req: &Request) -> Result<(), Error> {
        let kernel = SocketAddrNetlink::new(0, 0);
        loop {
            match rustix::net::sendto(&self.fd, bytes, SendFlags::empty(), &kernel) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(Error::Send {
                        op: req.op,
                        object: req.object.clone(),
                        source: e.into(),
                    })
                }
            }
        }
    }

    /// Receives one datagram into `self.buf`; returns its length.
    fn recv(&mut self, req: &Request) -> Result<usize, Error> {
        loop {
            match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::TRUNC) {
                Ok((_, len)) if len > self.buf.len() => {
                    return Err(malformed(
                        req,
                        Malformed("netlink reply larger than the receive buffer"),
                    ))
                }
                Ok((_, len)) => return Ok(len),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(Error::Receive {
                        op: req.op,
                        object: req.object.clone(),
                        source: e.into(),
                    })
                }
            }
        }
    }
}

fn malformed(req: &Request, detail: Malformed) -> Error {
    Error::Malformed {
        op: req.op,
        object: req.object.clone(),
        detail,
    }
}

/// An `RTM_NEWLINK` payload: `ifinfomsg` then attributes.
fn parse_link(payload: &[u8]) -> Result<Link, Malformed> {
    if payload.len() < 16 {
        return Err(Malformed("link message cut short"));
    }
    let index = u32_at(payload, 4);
    let flags = u32_at(payload, 8);
    let mut link = Link {
        index,
        name: String::new(),
        kind: None,
        mtu: 0,
        mac: None,
        master: None,
        up: flags & IFF_UP != 0,
    };
    for attr in attrs(&payload[16..]) {
        let (ty, value) = attr?;
        match ty {
            IFLA_IFNAME => link.name = str_attr(value),
            IFLA_MTU if value.len() >= 4 => link.mtu = u32_at(value, 0),
            IFLA_MASTER if value.len() >= 4 => link.master = Some(u32_at(value, 0)),
            IFLA_ADDRESS if value.len() == 6 => link.mac = Some(MacAddr(value.try_into().expect("6 bytes"))),
            IFLA_LINKINFO => {
                for info in attrs(value) {
                    let (ty, value) = info?;
                    if ty == IFLA_INFO_KIND {
                        link.kind = Some(str_attr(value));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(link)
}

/// An `RTM_NEWADDR` payload: the link's index and the address (`IFA_LOCAL`
/// where present, the local address on point-to-point links, else `IFA_ADDRESS`).
fn parse_address(payload: &[u8]) -> Result<Option<(u32, IfAddr)>, Malformed> {
    if payload.len() < 8 {
        return Err(Malformed("address message cut short"));
    }
    let (family, prefix_len, index) = (payload[0], payload[1], u32_at(payload, 4));
    let mut local = None;
    let mut address = None;
    for attr in attrs(&payload[8..]) {
        let (ty, value) = attr?;
        let ip = match (family, value.len()) {
            (AF_INET, 4) => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(value).expect("4 bytes"))),
            (AF_INET6, 16) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(value).expect("16 bytes"))),
            _ => continue,
        };
        match ty {
            IFA_LOCAL => local = Some(ip),
            IFA_ADDRESS => address = Some(ip),
            _ => {}
        }
    }
    Ok(local.or(address).map(|addr| (index, IfAddr { addr, prefix_len })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs_of(req: &Request, family_header: usize) -> Vec<(u16, Vec<u8>)> {
        let (_, payload) = messages(&req.bytes).next().unwrap().unwrap();
        attrs(&payload[family_header..])
            .map(|a| a.map(|(t, v)| (t, v.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn addresses_and_macs_print_and_parse_like_ip() {
        let a: IfAddr = "172.17.0.2/16".parse().unwrap();
        assert_eq!(a, IfAddr::new(Ipv4Addr::new(172, 17, 0, 2), 16));
        assert_eq!(a.to_string(), "172.17.0.2/16");
        assert_eq!(a.broadcast(), Some(Ipv4Addr::new(172, 17, 255, 255)));
        assert_eq!("10.0.0.1/31".parse::<IfAddr>().unwrap().broadcast(), None);
        assert_eq!("fd00::1/64".parse::<IfAddr>().unwrap().to_string(), "fd00::1/64");
        for bad in ["172.17.0.2", "172.17.0.2/33", "fd00::1/129", "x/8", "1.2.3.4/-1"] {
            assert!(bad.parse::<IfAddr>().is_err(), "{bad}");
        }
        let m: MacAddr = "02:42:AC:11:00:02".parse().unwrap();
        assert_eq!(m, MacAddr([2, 0x42, 0xac, 0x11, 0, 2]));
        assert_eq!(m.to_string(), "02:42:ac:11:00:02");
        for bad in [
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "2:42:ac:11:00:02",
            "02:42:ac:11:00:zz",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_ipv6_address_skips_dad_and_an_ipv4_one_gets_a_broadcast() {
        let link = Link {
            index: 7,
            name: "eth0".into(),
            kind: None,
            mtu: 1500,
            mac: None,
            master: None,
            up: true,
        };
        let v6 = Request::add_address(&link, "fd00::2/64".parse().unwrap());
        let (header, payload) = messages(&v6.bytes).next().unwrap().unwrap();
        assert_eq!(header.ty, RTM_NEWADDR);
        assert_eq!(header.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        assert_eq!(&payload[..4], &[AF_INET6, 64, IFA_F_NODAD as u8, 0]);
        assert_eq!(u32_at(payload, 4), 7);
        let a = attrs_of(&v6, 8);
        assert!(a.contains(&(IFA_FLAGS, IFA_F_NODAD.to_ne_bytes().to_vec())));
        assert!(a.contains(&(IFA_LOCAL, "fd00::2".parse::<Ipv6Addr>().unwrap().octets().to_vec())));
        assert_eq!(v6.to_string_for_test(), "adding address fd00::2/64 to eth0");

        let v4 = Request::add_address(&link, "172.17.0.2/16".parse().unwrap());
        let a = attrs_of(&v4, 8);
        assert!(a.contains(&(IFA_LOCAL, vec![172, 17, 0, 2])));
        assert!(a.contains(&(IFA_BROADCAST, vec![172, 17, 255, 255])));
        assert!(!a.iter().any(|(t, _)| *t == IFA_FLAGS));

        // What the kernel sends back parses to the same address.
        let (_, payload) = messages(&v4.bytes).next().unwrap().unwrap();
        assert_eq!(
            parse_address(payload).unwrap(),
            Some((7, "172.17.0.2/16".parse().unwrap()))
        );
    }

    #[test]
    fn a_veth_peer_is_created_in_the_given_namespace_without_a_master() {
        let ns = std::fs::File::open("/").unwrap();
        use std::os::fd::AsFd;
        let host = NewLink {
            mtu: Some(1400),
            master: Some(3),
            up: true,
            ..NewLink::named("vb0123456789ab")
        };
        let peer = NewLink {
            mtu: Some(1400),
            mac: Some(MacAddr([2, 0x42, 10, 0, 0, 2])),
            master: Some(3),
            netns: Some(ns.as_fd()),
            ..NewLink::named("eth0")
        };
        let req = Request::new_veth(&host, &peer);
        let (header, payload) = messages(&req.bytes).next().unwrap().unwrap();
        assert_eq!(header.ty, RTM_NEWLINK);
        assert_eq!(u32_at(payload, 8), IFF_UP, "the host end comes up at creation");
        let top = attrs_of(&req, 16);
        assert!(top.contains(&(IFLA_MASTER, 3u32.to_ne_bytes().to_vec())));
        let info = &top.iter().find(|(t, _)| *t == IFLA_LINKINFO).unwrap().1;
        let info: Vec<_> = attrs(info).collect::<Result<_, _>>().unwrap();
        assert_eq!(str_attr(info[0].1), "veth");
        let data: Vec<_> = attrs(info[1].1).collect::<Result<_, _>>().unwrap();
        let peer_msg = data[0].1;
        assert_eq!(u32_at(peer_msg, 8), 0);
        let peer_attrs: Vec<_> = attrs(&peer_msg[16..]).collect::<Result<_, _>>().unwrap();
        let types: Vec<u16> = peer_attrs.iter().map(|(t, _)| *t).collect();
        assert_eq!(types, vec![IFLA_IFNAME, IFLA_MTU, IFLA_ADDRESS, IFLA_NET_NS_FD]);
        assert_eq!(peer_attrs[3].1, (ns.as_raw_fd() as u32).to_ne_bytes());
        assert_eq!(req.to_string_for_test(), "adding veth vb0123456789ab (peer eth0)");
    }

    #[test]
    fn a_default_route_names_its_gateway_and_device() {
        let link = Link {
            index: 2,
            name: "eth0".into(),
            kind: None,
            mtu: 1500,
            mac: None,
            master: None,
            up: true,
        };
        let req = Request::add_default_route("fd00::1".parse().unwrap(), Some(&link));
        let (_, payload) = messages(&req.bytes).next().unwrap().unwrap();
        assert_eq!(&payload[..12], &rtmsg(AF_INET6, 0));
        let a = attrs_of(&req, 12);
        assert_eq!(
            a[0],
            (RTA_GATEWAY, "fd00::1".parse::<Ipv6Addr>().unwrap().octets().to_vec())
        );
        assert_eq!(a[1], (RTA_OIF, 2u32.to_ne_bytes().to_vec()));
        assert_eq!(req.to_string_for_test(), "adding default route via fd00::1 dev eth0");
    }

    #[test]
    fn a_link_reply_parses_name_kind_master_and_flags() {
        let mut m = MessageBuilder::new(RTM_NEWLINK, 0, &ifinfomsg(5, IFF_UP | 0x1000, 0));
        m.attr_str(IFLA_IFNAME, "br0")
            .attr_u32(IFLA_MTU, 9000)
            .attr(IFLA_ADDRESS, &[2, 0x42, 1, 2, 3, 4]);
        m.attr_u32(IFLA_MASTER, 9);
        let info = m.begin_nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end_nest(info);
        let bytes = m.finish();
        let (_, payload) = messages(&bytes).next().unwrap().unwrap();
        let link = parse_link(payload).unwrap();
        assert_eq!(
            link,
            Link {
                index: 5,
                name: "br0".into(),
                kind: Some("bridge".into()),
                mtu: 9000,
                mac: Some(MacAddr([2, 0x42, 1, 2, 3, 4])),
                master: Some(9),
                up: true,
            }
        );
    }

    #[test]
    fn errors_name_the_operation_and_the_object() {
        let e = Error::Request {
            op: "adding veth",
            object: "vb0123456789ab (peer eth0)".into(),
            errno: Errno::EEXIST,
        };
        assert_eq!(e.to_string(), "adding veth vb0123456789ab (peer eth0)");
        assert_eq!(
            std::error::Error::source(&e).unwrap().to_string(),
            "EEXIST: File exists"
        );
        assert_eq!(e.errno(), Some(Errno::EEXIST));
    }

    impl Request {
        fn to_string_for_test(&self) -> String {
            format!("{} {}", self.op, self.object)
        }
    }
}
