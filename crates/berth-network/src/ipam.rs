//! IP address management: subnets, gateways and the addresses handed to
//! containers. Pure arithmetic; [`crate::store`] keeps the results in
//! `berth.db` and runs every decision inside one transaction.
//!
//! - A [`Cidr`] is a network written `addr/prefix`, IPv4 or IPv6, with its
//!   host bits clear (`10.1.2.3/16` is refused, naming `10.1.0.0/16`, as
//!   Docker 25 does). Addresses are handled as `u128` so both families share
//!   one code path.
//! - A [`Subnet`] is one subnet of a network as `docker network inspect`
//!   shows it: the subnet, its gateway (by default the first host address,
//!   `10.89.0.1` in `10.89.0.0/24`) and an optional `--ip-range`, a smaller
//!   CIDR inside the subnet that container addresses come from.
//! - [`Subnet::allocate`] picks the lowest free address of the range,
//!   skipping the subnet's network address, its gateway and (IPv4) its
//!   broadcast address; [`Subnet::check_request`] validates an address asked
//!   for with `--ip`.
//! - [`consolidate`] pairs `--subnet`, `--gateway` and `--ip-range` flags the
//!   way the docker CLI does (each gateway and range goes to the subnet that
//!   contains it), with the CLI's messages.
//! - [`next_free`] takes a subnet for a network created without `--subnet`
//!   from a list of [`Pool`]s: the first `/24` (by default) that overlaps no
//!   network already recorded, like Podman's `10.89.0.0/24`, `10.89.1.0/24`, …

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// What is wrong with a subnet, a range, a gateway or an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    #[error("invalid subnet {given}: it should be {canonical}")]
    HostBitsSet { given: String, canonical: Cidr },
    #[error("invalid IP address: {0}")]
    InvalidAddress(String),
    #[error("every ip-range or gateway must have a corresponding subnet")]
    MissingSubnet,
    #[error("multiple overlapping subnet configuration is not supported")]
    OverlappingRequest,
    #[error("no matching subnet for range {0}")]
    NoSubnetForRange(Cidr),
    #[error("no matching subnet for gateway {0}")]
    NoSubnetForGateway(IpAddr),
    #[error("cannot configure multiple ranges ({0}, {1}) on the same subnet ({2})")]
    MultipleRanges(Cidr, Cidr, Cidr),
    #[error("cannot configure multiple gateways ({0}, {1}) for the same subnet ({2})")]
    MultipleGateways(IpAddr, IpAddr, Cidr),
    #[error("subnet {0} is too small: it has no address for a container besides its gateway")]
    TooSmall(Cidr),
    #[error("invalid gateway {gateway}: it is the network or broadcast address of {subnet}")]
    ReservedGateway { gateway: IpAddr, subnet: Cidr },
    #[error("invalid address {0}: it is the network, gateway or broadcast address of its subnet")]
    ReservedAddress(IpAddr),
    #[error("Invalid address {0}: It does not belong to any of this network's subnets")]
    NotInSubnet(IpAddr),
    #[error("Address already in use")]
    InUse(IpAddr),
    #[error(
        "could not find an available, non-overlapping IPv{0} address pool among the defaults to assign to the network"
    )]
    PoolsExhausted(u8),
    #[error("Pool overlaps with other one on this address space")]
    Overlap(Cidr),
}

pub type Result<T> = std::result::Result<T, IpamError>;

/// An address as a number: IPv4 in the low 32 bits.
fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

/// A network in CIDR notation, host bits clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `addr/prefix`; refused when the prefix is too long for the family or
    /// `addr` has host bits set.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr> {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > bits {
            return Err(IpamError::InvalidCidr(format!("{addr}/{prefix}")));
        }
        let c = Cidr::truncate(addr, prefix);
        if c.addr != addr {
            return Err(IpamError::HostBitsSet {
                given: format!("{addr}/{prefix}"),
                canonical: c,
            });
        }
        Ok(c)
    }

    /// The network of `addr/prefix`, host bits cleared (`prefix` is clamped
    /// to the family's width).
    pub fn truncate(addr: IpAddr, prefix: u8) -> Cidr {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.min(bits);
        let host = bits - prefix;
        let v = to_u128(addr);
        let net = if host >= 128 { 0 } else { (v >> host) << host };
        Cidr {
            addr: from_u128(net, addr.is_ipv4()),
            prefix,
        }
    }

    pub const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Cidr {
        Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    fn bits(&self) -> u8 {
        if self.is_ipv4() {
            32
        } else {
            128
        }
    }

    fn host_bits(&self) -> u8 {
        self.bits() - self.prefix
    }

    /// First and last address as numbers.
    fn bounds(&self) -> (u128, u128) {
        let first = to_u128(self.addr);
        let host = self.host_bits();
        let span = if host >= 128 { u128::MAX } else { (1u128 << host) - 1 };
        (first, first + span)
    }

    /// The last address (IPv4: the broadcast address).
    pub fn last(&self) -> IpAddr {
        from_u128(self.bounds().1, self.is_ipv4())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        if ip.is_ipv4() != self.is_ipv4() {
            return false;
        }
        let (first, last) = self.bounds();
        (first..=last).contains(&to_u128(ip))
    }

    /// Whether `other` lies wholly inside this network.
    pub fn contains_cidr(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// Whether the two networks share an address (one contains the other).
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains_cidr(other) || other.contains_cidr(self)
    }

    /// The `n`th address of the network (0 is the network address), if it
    /// is inside.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let (first, last) = self.bounds();
        first
            .checked_add(n)
            .filter(|v| *v <= last)
            .map(|v| from_u128(v, self.is_ipv4()))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = IpamError;

    fn from_str(s: &str) -> Result<Cidr> {
        let invalid = || IpamError::InvalidCidr(s.to_owned());
        let (addr, prefix) = s.split_once('/').ok_or_else(invalid)?;
        let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
            return Err(invalid());
        }
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        Cidr::new(addr, prefix).map_err(|e| match e {
            IpamError::HostBitsSet { canonical, .. } => IpamError::HostBitsSet {
                given: s.to_owned(),
                canonical,
            },
            _ => invalid(),
        })
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses an address given on the command line (`--gateway`, `--ip`).
pub fn parse_addr(s: &str) -> Result<IpAddr> {
    s.parse().map_err(|_| IpamError::InvalidAddress(s.to_owned()))
}

/// One subnet of a network, as recorded and as `docker network inspect`
/// shows it under `IPAM.Config`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subnet {
    #[serde(rename = "Subnet")]
    pub subnet: Cidr,
    #[serde(rename = "Gateway")]
    pub gateway: IpAddr,
    #[serde(rename = "IPRange", default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Cidr>,
    /// The user gave the subnet but not its gateway, which was chosen here:
    /// Docker's `network inspect` then shows no `Gateway` in `IPAM.Config`.
    #[serde(rename = "ImplicitGateway", default, skip_serializing_if = "std::ops::Not::not")]
    pub implicit_gateway: bool,
}

impl Subnet {
    /// A subnet with its gateway (default: the first host address) and
    /// optional allocation range, checked: the gateway and range lie inside,
    /// the gateway is not the network or broadcast address, and there is
    /// room for at least one container.
    pub fn new(subnet: Cidr, gateway: Option<IpAddr>, ip_range: Option<Cidr>) -> Result<Subnet> {
        let (first, last) = subnet.bounds();
        let v4 = subnet.is_ipv4();
        // IPv4 loses the network and broadcast addresses, IPv6 only the
        // network (subnet-router anycast) address; then one for the gateway.
        let reserved: u128 = if v4 { 2 } else { 1 };
        if last - first < reserved + 1 {
            return Err(IpamError::TooSmall(subnet));
        }
        let gateway = match gateway {
            Some(g) => {
                if !subnet.contains(g) {
                    return Err(IpamError::NoSubnetForGateway(g));
                }
                let g_n = to_u128(g);
                if g_n == first || (v4 && g_n == last) {
                    return Err(IpamError::ReservedGateway { gateway: g, subnet });
                }
                g
            }
            None => from_u128(first + 1, v4),
        };
        if let Some(r) = ip_range {
            if !subnet.contains_cidr(&r) {
                return Err(IpamError::NoSubnetForRange(r));
            }
        }
        Ok(Subnet {
            subnet,
            gateway,
            ip_range,
            implicit_gateway: false,
        })
    }

    /// Whether `ip` can never be a container's: the network address, the
    /// gateway or (IPv4) the broadcast address.
    pub fn is_reserved(&self, ip: IpAddr) -> bool {
        let (first, last) = self.subnet.bounds();
        let v = to_u128(ip);
        v == first || ip == self.gateway || (self.subnet.is_ipv4() && v == last)
    }

    /// Where container addresses come from: the range, else the subnet.
    pub fn pool(&self) -> Cidr {
        self.ip_range.unwrap_or(self.subnet)
    }

    /// The lowest address of the pool that is neither reserved nor in
    /// `used` (addresses of other families and other subnets are ignored).
    pub fn allocate(&self, used: &[IpAddr]) -> Option<IpAddr> {
        let v4 = self.subnet.is_ipv4();
        let mut taken: Vec<u128> = used
            .iter()
            .filter(|ip| self.subnet.contains(**ip))
            .map(|ip| to_u128(*ip))
            .collect();
        taken.sort_unstable();
        let (first, last) = self.pool().bounds();
        let mut candidate = first;
        let mut i = taken.partition_point(|t| *t < first);
        loop {
            while taken.get(i).is_some_and(|t| *t < candidate) {
                i += 1;
            }
            let ip = from_u128(candidate, v4);
            if taken.get(i) != Some(&candidate) && !self.is_reserved(ip) {
                return Some(ip);
            }
            if candidate == last {
                return None;
            }
            candidate += 1;
        }
    }

    /// Checks an address asked for with `--ip`: inside the subnet, not
    /// reserved, not in `used`. (Docker accepts an address outside the
    /// `--ip-range` as long as it is in the subnet; so does this.)
    pub fn check_request(&self, ip: IpAddr, used: &[IpAddr]) -> Result<()> {
        if !self.subnet.contains(ip) {
            return Err(IpamError::NotInSubnet(ip));
        }
        if self.is_reserved(ip) {
            return Err(IpamError::ReservedAddress(ip));
        }
        if used.contains(&ip) {
            return Err(IpamError::InUse(ip));
        }
        Ok(())
    }
}

/// A subnet asked for with `docker network create --subnet`, with its
/// `--gateway` and `--ip-range` if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetRequest {
    pub subnet: Cidr,
    pub gateway: Option<IpAddr>,
    pub ip_range: Option<Cidr>,
}

impl SubnetRequest {
    pub fn resolve(&self) -> Result<Subnet> {
        let mut s = Subnet::new(self.subnet, self.gateway, self.ip_range)?;
        s.implicit_gateway = self.gateway.is_none();
        Ok(s)
    }
}

/// Pairs the `--subnet`, `--gateway` and `--ip-range` flags as the docker
/// CLI does: subnets must not overlap each other, and every gateway and
/// range belongs to the one subnet containing it (one of each per subnet).
pub fn consolidate(subnets: &[String], gateways: &[String], ranges: &[String]) -> Result<Vec<SubnetRequest>> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err(IpamError::MissingSubnet);
    }
    let mut out: Vec<SubnetRequest> = Vec::with_capacity(subnets.len());
    for s in subnets {
        let subnet: Cidr = s.parse()?;
        if out.iter().any(|o| o.subnet.overlaps(&subnet)) {
            return Err(IpamError::OverlappingRequest);
        }
        out.push(SubnetRequest {
            subnet,
            gateway: None,
            ip_range: None,
        });
    }
    for r in ranges {
        let range: Cidr = r.parse()?;
        let s = out
            .iter_mut()
            .find(|o| o.subnet.contains(range.addr()))
            .ok_or(IpamError::NoSubnetForRange(range))?;
        if let Some(prev) = s.ip_range {
            return Err(IpamError::MultipleRanges(range, prev, s.subnet));
        }
        s.ip_range = Some(range);
    }
    for g in gateways {
        let gateway = parse_addr(g)?;
        let s = out
            .iter_mut()
            .find(|o| o.subnet.contains(gateway))
            .ok_or(IpamError::NoSubnetForGateway(gateway))?;
        if let Some(prev) = s.gateway {
            return Err(IpamError::MultipleGateways(gateway, prev, s.subnet));
        }
        s.gateway = Some(gateway);
    }
    Ok(out)
}

/// A block that networks without `--subnet` get their subnet from: the
/// consecutive subnets of prefix `size` inside `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub base: Cidr,
    pub size: u8,
}

/// Podman's defaults: `/24`s from 10.89.0.0 to 10.255.255.0 (the default
/// `bridge` network has 10.88.0.0/16).
pub const DEFAULT_POOLS: &[Pool] = &[
    Pool {
        base: Cidr::v4(10, 89, 0, 0, 16),
        size: 24,
    },
    Pool {
        base: Cidr::v4(10, 90, 0, 0, 15),
        size: 24,
    },
    Pool {
        base: Cidr::v4(10, 92, 0, 0, 14),
        size: 24,
    },
    Pool {
        base: Cidr::v4(10, 96, 0, 0, 11),
        size: 24,
    },
    Pool {
        base: Cidr::v4(10, 128, 0, 0, 9),
        size: 24,
    },
];

/// IPv6 subnets for `--ipv6` networks without an IPv6 `--subnet`: `/64`s of
/// the unique-local `fd89::/48` (the IPv6 echo of 10.89).
pub const DEFAULT_POOLS_V6: &[Pool] = &[Pool {
    base: Cidr {
        addr: IpAddr::V6(Ipv6Addr::new(0xfd89, 0, 0, 0, 0, 0, 0, 0)),
        prefix: 48,
    },
    size: 64,
}];

/// The first subnet of the pools, in order, that overlaps none of `taken`.
/// Subnets overlapping a taken network are stepped over in one jump, so the
/// cost grows with `taken`, not with the pools' size.
pub fn next_free(pools: &[Pool], taken: &[Cidr]) -> Option<Cidr> {
    for pool in pools {
        if pool.size < pool.base.prefix() || pool.size > pool.base.bits() {
            continue;
        }
        let v4 = pool.base.is_ipv4();
        let (first, last) = pool.base.bounds();
        let host = pool.base.bits() - pool.size;
        let step: u128 = if host >= 128 { 0 } else { 1u128 << host };
        let mut at = first;
        loop {
            let candidate = Cidr::truncate(from_u128(at, v4), pool.size);
            let Some(t) = taken.iter().find(|t| t.overlaps(&candidate)) else {
                return Some(candidate);
            };
            // Skip to the first subnet past the end of `t` (or of the
            // candidate, when `t` is smaller and inside it).
            let end = t.bounds().1.max(candidate.bounds().1);
            match end.checked_add(1).filter(|next| *next <= last && step != 0) {
                Some(next) => match next.div_ceil(step).checked_mul(step) {
                    Some(n) if n <= last => at = n,
                    _ => break,
                },
                None => break,
            }
        }
    }
    None
}

/// Refuses `subnet` when it overlaps one of `taken`.
pub fn check_overlap(subnet: &Cidr, taken: &[Cidr]) -> Result<()> {
    match taken.iter().find(|t| t.overlaps(subnet)) {
        Some(_) => Err(IpamError::Overlap(*subnet)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_print_in_both_families() {
        assert_eq!(c("10.89.0.0/24").to_string(), "10.89.0.0/24");
        assert_eq!(c("fd00:1::/64").to_string(), "fd00:1::/64");
        assert_eq!(c("0.0.0.0/0").last(), ip("255.255.255.255"));
        assert_eq!(c("::/0").last(), ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        assert_eq!(c("10.0.0.7/32").last(), ip("10.0.0.7"));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "::/129",
        ] {
            assert_eq!(bad.parse::<Cidr>(), Err(IpamError::InvalidCidr(bad.into())), "{bad}");
        }
        let e = "10.1.2.3/16".parse::<Cidr>().unwrap_err();
        assert_eq!(e.to_string(), "invalid subnet 10.1.2.3/16: it should be 10.1.0.0/16");
        let e = "fd00::1/64".parse::<Cidr>().unwrap_err();
        assert_eq!(e.to_string(), "invalid subnet fd00::1/64: it should be fd00::/64");
        assert_eq!(serde_json::to_string(&c("10.1.0.0/16")).unwrap(), "\"10.1.0.0/16\"");
        assert_eq!(
            serde_json::from_str::<Cidr>("\"10.1.0.0/16\"").unwrap(),
            c("10.1.0.0/16")
        );
    }

    #[test]
    fn containment_and_overlap() {
        let n = c("10.88.0.0/16");
        assert!(n.contains(ip("10.88.255.255")));
        assert!(!n.contains(ip("10.89.0.0")));
        assert!(!n.contains(ip("::ffff:10.88.0.1")));
        assert!(n.overlaps(&c("10.88.4.0/24")));
        assert!(c("10.88.4.0/24").overlaps(&n));
        assert!(c("10.0.0.0/8").overlaps(&n));
        assert!(!n.overlaps(&c("10.89.0.0/24")));
        assert!(!c("fd00::/64").overlaps(&c("fd00:0:0:1::/64")));
        assert!(!c("0.0.0.0/0").overlaps(&c("::/0")));
        assert_eq!(c("10.0.0.0/30").nth(3), Some(ip("10.0.0.3")));
        assert_eq!(c("10.0.0.0/30").nth(4), None);
    }

    #[test]
    fn gateway_defaults_to_the_first_host_and_is_checked() {
        let s = Subnet::new(c("10.89.0.0/24"), None, None).unwrap();
        assert_eq!(s.gateway, ip("10.89.0.1"));
        let s = Subnet::new(c("fd00::/64"), None, None).unwrap();
        assert_eq!(s.gateway, ip("fd00::1"));
        let s = Subnet::new(c("10.89.0.0/24"), Some(ip("10.89.0.254")), None).unwrap();
        assert_eq!(s.gateway, ip("10.89.0.254"));
        // Asked for by the user: whether the gateway was theirs is kept (inspect shows it
        // only then), and round-trips through the record; older records read as theirs.
        let req = |gateway| SubnetRequest {
            subnet: c("10.89.0.0/24"),
            gateway,
            ip_range: None,
        };
        let implicit = req(None).resolve().unwrap();
        assert!(implicit.implicit_gateway && !req(Some(ip("10.89.0.9"))).resolve().unwrap().implicit_gateway);
        let json = serde_json::to_string(&implicit).unwrap();
        assert_eq!(serde_json::from_str::<Subnet>(&json).unwrap(), implicit);
        let old: Subnet = serde_json::from_str(r#"{"Subnet":"10.89.0.0/24","Gateway":"10.89.0.1"}"#).unwrap();
        assert!(!old.implicit_gateway);
        assert_eq!(
            Subnet::new(c("10.89.0.0/24"), Some(ip("10.90.0.1")), None),
            Err(IpamError::NoSubnetForGateway(ip("10.90.0.1")))
        );
        for g in ["10.89.0.0", "10.89.0.255"] {
            assert!(matches!(
                Subnet::new(c("10.89.0.0/24"), Some(ip(g)), None),
                Err(IpamError::ReservedGateway { .. })
            ));
        }
        assert_eq!(
            Subnet::new(c("10.89.0.0/24"), None, Some(c("10.89.1.0/28"))),
            Err(IpamError::NoSubnetForRange(c("10.89.1.0/28")))
        );
        assert_eq!(
            Subnet::new(c("10.0.0.0/31"), None, None),
            Err(IpamError::TooSmall(c("10.0.0.0/31")))
        );
        assert!(Subnet::new(c("10.0.0.0/30"), None, None).is_ok());
        assert!(Subnet::new(c("fd00::/127"), None, None).is_err());
        assert!(Subnet::new(c("fd00::/126"), None, None).is_ok());
        let json = serde_json::to_string(&Subnet::new(c("10.89.0.0/24"), None, Some(c("10.89.0.128/25"))).unwrap());
        assert_eq!(
            json.unwrap(),
            r#"{"Subnet":"10.89.0.0/24","Gateway":"10.89.0.1","IPRange":"10.89.0.128/25"}"#
        );
        let json = serde_json::to_string(&Subnet::new(c("10.89.0.0/24"), None, None).unwrap());
        assert_eq!(json.unwrap(), r#"{"Subnet":"10.89.0.0/24","Gateway":"10.89.0.1"}"#);
    }

    #[test]
    fn allocation_takes_the_lowest_free_address() {
        let s = Subnet::new(c("10.89.0.0/24"), None, None).unwrap();
        assert_eq!(s.allocate(&[]), Some(ip("10.89.0.2")));
        assert_eq!(s.allocate(&[ip("10.89.0.2")]), Some(ip("10.89.0.3")));
        // A released address is handed out again before higher ones.
        assert_eq!(
            s.allocate(&[ip("10.89.0.3"), ip("10.89.0.2"), ip("10.89.0.5")]),
            Some(ip("10.89.0.4"))
        );
        assert_eq!(
            s.allocate(&[ip("10.89.0.2"), ip("10.89.0.2"), ip("10.89.0.3")]),
            Some(ip("10.89.0.4"))
        );
        // Other subnets' and families' addresses do not count.
        assert_eq!(s.allocate(&[ip("10.88.0.2"), ip("fd00::2")]), Some(ip("10.89.0.2")));
        // Gateway elsewhere: .1 is free.
        let s = Subnet::new(c("10.89.0.0/24"), Some(ip("10.89.0.254")), None).unwrap();
        assert_eq!(s.allocate(&[]), Some(ip("10.89.0.1")));
        // Full: everything but network, gateway and broadcast is used.
        let s = Subnet::new(c("10.0.0.0/29"), None, None).unwrap();
        let used: Vec<IpAddr> = (2..7).map(|i| ip(&format!("10.0.0.{i}"))).collect();
        assert_eq!(s.allocate(&used), None);
        assert_eq!(s.allocate(&used[1..]), Some(ip("10.0.0.2")));
        // IPv6 has no broadcast address: the last one is handed out.
        let s = Subnet::new(c("fd00::/126"), None, None).unwrap();
        assert_eq!(s.allocate(&[ip("fd00::2")]), Some(ip("fd00::3")));
        assert_eq!(s.allocate(&[ip("fd00::2"), ip("fd00::3")]), None);
    }

    #[test]
    fn allocation_stays_in_the_ip_range() {
        let s = Subnet::new(c("10.89.0.0/24"), None, Some(c("10.89.0.128/30"))).unwrap();
        assert_eq!(s.allocate(&[]), Some(ip("10.89.0.128")));
        let used = [ip("10.89.0.128"), ip("10.89.0.129"), ip("10.89.0.130")];
        assert_eq!(s.allocate(&used), Some(ip("10.89.0.131")));
        assert_eq!(s.allocate(&[used[0], used[1], used[2], ip("10.89.0.131")]), None);
        // A range starting at the subnet skips network and gateway.
        let s = Subnet::new(c("10.89.0.0/24"), None, Some(c("10.89.0.0/28"))).unwrap();
        assert_eq!(s.allocate(&[]), Some(ip("10.89.0.2")));
        // A range at the end skips the broadcast address.
        let s = Subnet::new(c("10.89.0.0/24"), None, Some(c("10.89.0.254/31"))).unwrap();
        assert_eq!(s.allocate(&[]), Some(ip("10.89.0.254")));
        assert_eq!(s.allocate(&[ip("10.89.0.254")]), None);
    }

    #[test]
    fn requested_addresses_are_validated() {
        let s = Subnet::new(c("10.89.0.0/24"), None, Some(c("10.89.0.128/25"))).unwrap();
        assert_eq!(s.check_request(ip("10.89.0.7"), &[]), Ok(()));
        assert_eq!(
            s.check_request(ip("10.90.0.7"), &[]).unwrap_err().to_string(),
            "Invalid address 10.90.0.7: It does not belong to any of this network's subnets"
        );
        assert_eq!(
            s.check_request(ip("10.89.0.7"), &[ip("10.89.0.7")])
                .unwrap_err()
                .to_string(),
            "Address already in use"
        );
        for r in ["10.89.0.0", "10.89.0.1", "10.89.0.255"] {
            assert_eq!(s.check_request(ip(r), &[]), Err(IpamError::ReservedAddress(ip(r))));
        }
    }

    #[test]
    fn flags_are_consolidated_like_the_docker_cli() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = consolidate(
            &v(&["10.1.0.0/16", "fd00::/64"]),
            &v(&["fd00::fe", "10.1.0.254"]),
            &v(&["10.1.2.0/24"]),
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                SubnetRequest {
                    subnet: c("10.1.0.0/16"),
                    gateway: Some(ip("10.1.0.254")),
                    ip_range: Some(c("10.1.2.0/24"))
                },
                SubnetRequest {
                    subnet: c("fd00::/64"),
                    gateway: Some(ip("fd00::fe")),
                    ip_range: None
                },
            ]
        );
        let err = |s: &[&str], g: &[&str], r: &[&str]| consolidate(&v(s), &v(g), &v(r)).unwrap_err().to_string();
        assert_eq!(
            err(&[], &["10.0.0.1"], &[]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            err(&["10.0.0.0/8", "10.1.0.0/16"], &[], &[]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            err(&["10.0.0.0/8"], &["11.0.0.1"], &[]),
            "no matching subnet for gateway 11.0.0.1"
        );
        assert_eq!(
            err(&["10.0.0.0/8"], &[], &["11.0.0.0/24"]),
            "no matching subnet for range 11.0.0.0/24"
        );
        assert_eq!(
            err(&["10.0.0.0/8", "11.0.0.0/8"], &["10.0.0.1", "10.0.0.2"], &[]),
            "cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet (10.0.0.0/8)"
        );
        assert_eq!(
            err(&["10.0.0.0/8", "11.0.0.0/8"], &[], &["10.1.0.0/16", "10.2.0.0/16"]),
            "cannot configure multiple ranges (10.2.0.0/16, 10.1.0.0/16) on the same subnet (10.0.0.0/8)"
        );
        assert_eq!(err(&["10.0.0.0/8"], &["nope"], &[]), "invalid IP address: nope");
    }

    #[test]
    fn pools_hand_out_the_next_free_subnet() {
        assert_eq!(next_free(DEFAULT_POOLS, &[]), Some(c("10.89.0.0/24")));
        let taken = [c("10.88.0.0/16"), c("10.89.0.0/24"), c("10.89.2.0/24")];
        assert_eq!(next_free(DEFAULT_POOLS, &taken), Some(c("10.89.1.0/24")));
        let taken = [c("10.89.0.0/24"), c("10.89.1.0/24")];
        assert_eq!(next_free(DEFAULT_POOLS, &taken), Some(c("10.89.2.0/24")));
        // A small user subnet inside a candidate makes it unavailable.
        assert_eq!(next_free(DEFAULT_POOLS, &[c("10.89.0.64/26")]), Some(c("10.89.1.0/24")));
        // A big one steps over its whole span, into the next pool.
        assert_eq!(next_free(DEFAULT_POOLS, &[c("10.89.0.0/16")]), Some(c("10.90.0.0/24")));
        assert_eq!(next_free(DEFAULT_POOLS, &[c("10.0.0.0/8")]), None);
        assert_eq!(next_free(DEFAULT_POOLS_V6, &[]), Some(c("fd89::/64")));
        assert_eq!(
            next_free(DEFAULT_POOLS_V6, &[c("fd89::/64")]),
            Some(c("fd89:0:0:1::/64"))
        );
        // Every /24 of a small pool taken one by one.
        let pools = [Pool {
            base: c("192.168.0.0/23"),
            size: 24,
        }];
        assert_eq!(next_free(&pools, &[c("192.168.0.0/24")]), Some(c("192.168.1.0/24")));
        assert_eq!(next_free(&pools, &[c("192.168.0.0/24"), c("192.168.1.0/24")]), None);
        assert_eq!(
            IpamError::PoolsExhausted(4).to_string(),
            "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
        );
    }

    #[test]
    fn overlap_is_refused_with_dockers_message() {
        let taken = [c("10.88.0.0/16")];
        assert_eq!(check_overlap(&c("10.89.0.0/24"), &taken), Ok(()));
        assert_eq!(
            check_overlap(&c("10.88.1.0/24"), &taken).unwrap_err().to_string(),
            "Pool overlaps with other one on this address space"
        );
    }
}
