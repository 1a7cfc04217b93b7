//! The local names of a network, built from the configuration, and what a question about
//! them gets: the addresses of a container (by name, alias, id prefix, bare or under one of
//! the network's domains), the name of an address (PTR), or "not ours" (forward it).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::config::{Config, Entry};
use crate::wire::{rcode, rtype, Name, Question, RData, Record, CLASS_IN};

/// The QCLASS that matches every class.
const CLASS_ANY: u16 = 255;

/// What a question gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Answered here, authoritatively: NOERROR with the records (none: the name exists
    /// without records of that type), or NXDOMAIN.
    Local { rcode: u16, answers: Vec<Record> },
    /// Not a local name: ask the upstream resolvers.
    Forward,
}

/// The lookup tables of a server: its network's names, and for clients with a
/// view ([`crate::config::View`]) those names plus the view's.
#[derive(Debug, Default)]
pub struct Views {
    base: Names,
    /// Each view's names (`None`: no records of its own, the base's), and its own upstream
    /// resolvers (empty: the server's).
    views: Vec<(Option<Names>, Vec<SocketAddr>)>,
    by_client: HashMap<IpAddr, usize>,
}

impl Views {
    pub fn new(config: &Config) -> Views {
        let mut out = Views {
            base: Names::new(config),
            ..Views::default()
        };
        for v in &config.views {
            // A view that only forwards elsewhere (a container's `--dns`) shares the base's
            // names: no copy of the network's table per such container.
            let names =
                (!v.records.is_empty()).then(|| Names::from_records(config, config.records.iter().chain(&v.records)));
            out.views.push((names, v.upstream.clone()));
            for ip in &v.clients {
                out.by_client.insert(*ip, out.views.len() - 1);
            }
        }
        out
    }

    /// The names the client at `ip` sees.
    pub fn for_client(&self, ip: Option<IpAddr>) -> &Names {
        match ip.and_then(|ip| self.by_client.get(&canonical(ip))) {
            Some(&i) => self.views[i].0.as_ref().unwrap_or(&self.base),
            None => &self.base,
        }
    }

    /// The resolvers of the client at `ip` when its view has its own.
    pub fn upstream_for_client(&self, ip: Option<IpAddr>) -> Option<&[SocketAddr]> {
        let i = *self.by_client.get(&canonical(ip?))?;
        let ups = &self.views[i].1;
        (!ups.is_empty()).then_some(ups.as_slice())
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The lookup tables.
#[derive(Debug, Default)]
pub struct Names {
    /// Names and aliases, lower case, to addresses (several containers may share an alias).
    by_name: HashMap<String, Vec<IpAddr>>,
    /// Full ids, lower case, with their addresses.
    ids: Vec<(String, Vec<IpAddr>)>,
    /// Each address's PTR target.
    reverse: HashMap<IpAddr, Name>,
    domains: Vec<Name>,
    ttl: u32,
}

impl Names {
    /// The tables for a checked configuration ([`Config::check`]).
    pub fn new(config: &Config) -> Names {
        Names::from_records(config, config.records.iter())
    }

    /// The tables of `records` with the rest of `config` (domains, TTL).
    fn from_records<'a>(config: &Config, records: impl Iterator<Item = &'a Entry>) -> Names {
        let domains: Vec<Name> = config
            .domains
            .iter()
            .filter_map(|d| Name::from_dotted(d).ok())
            .collect();
        let mut names = Names {
            domains,
            ttl: config.ttl,
            ..Names::default()
        };
        for e in records {
            for n in std::iter::once(&e.name).chain(&e.aliases) {
                let key = n.trim_end_matches('.').to_ascii_lowercase();
                let addrs = names.by_name.entry(key).or_default();
                for a in &e.addresses {
                    if !addrs.contains(a) {
                        addrs.push(*a);
                    }
                }
            }
            if let Some(id) = &e.id {
                names.ids.push((id.to_ascii_lowercase(), e.addresses.clone()));
            }
            let target = match config.domains.first() {
                Some(d) => format!("{}.{}", e.name.trim_end_matches('.'), d),
                None => e.name.clone(),
            };
            if let Ok(target) = Name::from_dotted(&target) {
                for a in &e.addresses {
                    names.reverse.entry(*a).or_insert_with(|| target.clone());
                }
            }
        }
        names
    }

    /// The answer to `q`. `turn` rotates a name's addresses so that clients taking the first
    /// one spread over the containers sharing it.
    pub fn lookup(&self, q: &Question, turn: usize) -> Lookup {
        if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
            return Lookup::Forward;
        }
        if let Some(addr) = reverse_address(&q.name) {
            return match self.reverse.get(&addr) {
                Some(target) => {
                    let answers = match q.qtype {
                        rtype::PTR | rtype::ANY => vec![self.record(&q.name, RData::Ptr(target.clone()))],
                        _ => vec![],
                    };
                    Lookup::Local {
                        rcode: rcode::NOERROR,
                        answers,
                    }
                }
                None => Lookup::Forward,
            };
        }
        match self.addresses(&q.name) {
            Some(addrs) => {
                let mut answers: Vec<Record> = addrs
                    .iter()
                    .filter_map(|a| match (a, q.qtype) {
                        (IpAddr::V4(v4), rtype::A | rtype::ANY) => Some(RData::A(*v4)),
                        (IpAddr::V6(v6), rtype::AAAA | rtype::ANY) => Some(RData::Aaaa(*v6)),
                        _ => None,
                    })
                    .map(|data| self.record(&q.name, data))
                    .collect();
                if !answers.is_empty() {
                    let by = turn % answers.len();
                    answers.rotate_left(by);
                }
                Lookup::Local {
                    rcode: rcode::NOERROR,
                    answers,
                }
            }
            None if self.domains.iter().any(|d| q.name.ends_with(d)) => Lookup::Local {
                rcode: rcode::NXDOMAIN,
                answers: vec![],
            },
            None => Lookup::Forward,
        }
    }

    /// The addresses of a local name, `Some(&[])` for a domain itself.
    fn addresses(&self, name: &Name) -> Option<&[IpAddr]> {
        let key = name.key()?;
        if let Some(found) = self.local(&key) {
            return Some(found);
        }
        for d in &self.domains {
            if name == d {
                return Some(&[]);
            }
            let domain = d.key().unwrap_or_default();
            if let Some(short) = key.strip_suffix(&domain).and_then(|k| k.strip_suffix('.')) {
                if let Some(found) = self.local(short) {
                    return Some(found);
                }
            }
        }
        None
    }

    /// A name, alias or unique id prefix without a domain.
    fn local(&self, key: &str) -> Option<&[IpAddr]> {
        if let Some(addrs) = self.by_name.get(key) {
            return Some(addrs);
        }
        if key.len() < 12 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut matches = self.ids.iter().filter(|(id, _)| id.starts_with(key));
        match (matches.next(), matches.next()) {
            (Some((_, addrs)), None) => Some(addrs),
            _ => None,
        }
    }

    fn record(&self, owner: &Name, data: RData) -> Record {
        let rtype = match data {
            RData::A(_) => rtype::A,
            RData::Aaaa(_) => rtype::AAAA,
            RData::Ptr(_) => rtype::PTR,
            RData::Cname(_) => rtype::CNAME,
            RData::Other(_) => unreachable!("local answers are addresses and names"),
        };
        Record {
            name: owner.clone(),
            rtype,
            class: CLASS_IN,
            ttl: self.ttl,
            data,
        }
    }
}

/// The address a reverse name stands for: `2.0.89.10.in-addr.arpa` is 10.89.0.2, and 32
/// nibbles under `ip6.arpa` an IPv6 address. `None` for anything else, partial names included.
pub fn reverse_address(name: &Name) -> Option<IpAddr> {
    let labels: Vec<&[u8]> = name.labels().collect();
    let lower = |l: &[u8]| l.to_ascii_lowercase();
    match labels.as_slice() {
        [d, c, b, a, arpa_in, arpa] if lower(arpa_in) == b"in-addr" && lower(arpa) == b"arpa" => {
            let octet = |l: &[u8]| -> Option<u8> {
                if l.is_empty() || l.len() > 3 || (l.len() > 1 && l[0] == b'0') {
                    return None;
                }
                std::str::from_utf8(l).ok()?.parse().ok()
            };
            Some(IpAddr::V4(Ipv4Addr::new(octet(a)?, octet(b)?, octet(c)?, octet(d)?)))
        }
        [nibbles @ .., ip6, arpa] if nibbles.len() == 32 && lower(ip6) == b"ip6" && lower(arpa) == b"arpa" => {
            let mut bits: u128 = 0;
            for l in nibbles.iter().rev() {
                let [digit] = l else { return None };
                bits = bits << 4 | (*digit as char).to_digit(16)? as u128;
            }
            Some(IpAddr::V6(Ipv6Addr::from(bits)))
        }
        _ => None,
    }
}

/// The reverse name of an address (for tests and clients).
pub fn reverse_name(addr: IpAddr) -> Name {
    let text = match addr {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", byte & 0xF, byte >> 4));
            }
            s + "ip6.arpa"
        }
    };
    Name::from_dotted(&text).expect("a reverse name is a valid name")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Entry;

    fn names() -> Names {
        Names::new(&Config {
            listen: vec!["127.0.0.1:53".parse().unwrap()],
            upstream: vec![],
            domains: vec!["mynet".into(), "dns.berth".into()],
            records: vec![
                Entry {
                    name: "web".into(),
                    aliases: vec!["www".into(), "Front.End".into()],
                    id: Some("3f2a9c1b7d4e".to_string() + &"0".repeat(52)),
                    addresses: vec!["10.89.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
                },
                Entry {
                    name: "web2".into(),
                    aliases: vec!["www".into()],
                    id: Some("3f2a9c1b7d4f".to_string() + &"1".repeat(52)),
                    addresses: vec!["10.89.0.3".parse().unwrap()],
                },
            ],
            ttl: 5,
            upstream_timeout_ms: 1000,
            views: Vec::new(),
        })
    }

    #[test]
    fn views_add_names_for_their_clients_only() {
        let mut c = Config {
            listen: vec![],
            upstream: vec![],
            domains: vec![],
            records: vec![Entry {
                name: "web".into(),
                aliases: vec![],
                id: None,
                addresses: vec!["10.89.0.2".parse().unwrap()],
            }],
            ttl: 0,
            upstream_timeout_ms: 1000,
            views: Vec::new(),
        };
        c.views.push(crate::config::View {
            clients: vec!["10.89.0.3".parse().unwrap()],
            records: vec![Entry {
                name: "db".into(),
                aliases: vec![],
                id: None,
                addresses: vec!["10.90.0.2".parse().unwrap()],
            }],
            upstream: vec!["192.0.2.53:53".parse().unwrap()],
        });
        // Forwarding elsewhere only: the network's names, the view's resolver.
        c.views.push(crate::config::View {
            clients: vec!["10.89.0.5".parse().unwrap()],
            records: vec![],
            upstream: vec!["192.0.2.54:53".parse().unwrap()],
        });
        let v = Views::new(&c);
        let forwarder: IpAddr = "10.89.0.5".parse().unwrap();
        assert!(v.views[1].0.is_none(), "no table of its own");
        assert!(matches!(
            ask(v.for_client(Some(forwarder)), "web", rtype::A),
            Lookup::Local { .. }
        ));
        assert_eq!(ask(v.for_client(Some(forwarder)), "db", rtype::A), Lookup::Forward);
        assert_eq!(
            v.upstream_for_client(Some(forwarder)),
            Some(&["192.0.2.54:53".parse().unwrap()][..])
        );
        // The view's own resolvers, for its clients alone (IPv4-mapped too).
        let own = ["192.0.2.53:53".parse().unwrap()];
        assert_eq!(v.upstream_for_client("10.89.0.3".parse().ok()), Some(&own[..]));
        assert_eq!(v.upstream_for_client("::ffff:10.89.0.3".parse().ok()), Some(&own[..]));
        assert_eq!(v.upstream_for_client("10.89.0.4".parse().ok()), None);
        assert_eq!(v.upstream_for_client(None), None);
        let member: IpAddr = "10.89.0.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.89.0.3".parse().unwrap();
        let other: IpAddr = "10.89.0.4".parse().unwrap();
        assert!(matches!(
            ask(v.for_client(Some(member)), "db", rtype::A),
            Lookup::Local { .. }
        ));
        assert!(matches!(
            ask(v.for_client(Some(mapped)), "db", rtype::A),
            Lookup::Local { .. }
        ));
        assert_eq!(ask(v.for_client(Some(other)), "db", rtype::A), Lookup::Forward);
        assert!(matches!(
            ask(v.for_client(Some(other)), "web", rtype::A),
            Lookup::Local { .. }
        ));
    }

    fn ask(names: &Names, name: &str, qtype: u16) -> Lookup {
        let q = Question {
            name: Name::from_dotted(name).unwrap(),
            qtype,
            qclass: CLASS_IN,
        };
        names.lookup(&q, 0)
    }

    fn addrs(l: Lookup) -> Vec<String> {
        match l {
            Lookup::Local { rcode: 0, answers } => answers
                .into_iter()
                .map(|r| match r.data {
                    RData::A(a) => a.to_string(),
                    RData::Aaaa(a) => a.to_string(),
                    RData::Ptr(n) => n.to_string(),
                    other => panic!("unexpected {other:?}"),
                })
                .collect(),
            other => panic!("not a local answer: {other:?}"),
        }
    }

    #[test]
    fn names_aliases_and_domains() {
        let n = names();
        assert_eq!(addrs(ask(&n, "web", rtype::A)), ["10.89.0.2"]);
        assert_eq!(addrs(ask(&n, "WEB.", rtype::AAAA)), ["fd00::2"]);
        assert_eq!(addrs(ask(&n, "web.mynet", rtype::A)), ["10.89.0.2"]);
        assert_eq!(addrs(ask(&n, "web.DNS.berth.", rtype::A)), ["10.89.0.2"]);
        assert_eq!(addrs(ask(&n, "front.end", rtype::ANY)), ["10.89.0.2", "fd00::2"]);
        assert_eq!(addrs(ask(&n, "front.end.mynet", rtype::A)), ["10.89.0.2"]);
        // A shared alias answers every container's address.
        assert_eq!(addrs(ask(&n, "www", rtype::A)), ["10.89.0.2", "10.89.0.3"]);
        // NODATA: the name is there, without records of that type.
        assert_eq!(addrs(ask(&n, "web2", rtype::AAAA)), Vec::<String>::new());
        assert_eq!(addrs(ask(&n, "web", rtype::MX)), Vec::<String>::new());
        assert_eq!(addrs(ask(&n, "mynet", rtype::A)), Vec::<String>::new());
        // Under a domain of ours but unknown: NXDOMAIN here; elsewhere: forwarded.
        assert_eq!(
            ask(&n, "nope.mynet", rtype::A),
            Lookup::Local {
                rcode: rcode::NXDOMAIN,
                answers: vec![]
            }
        );
        assert_eq!(ask(&n, "nope", rtype::A), Lookup::Forward);
        assert_eq!(ask(&n, "example.com", rtype::A), Lookup::Forward);
        assert_eq!(ask(&n, "web.example.com", rtype::A), Lookup::Forward);
        // Other classes are not ours.
        let chaos = Question {
            name: Name::from_dotted("web").unwrap(),
            qtype: rtype::TXT,
            qclass: 3,
        };
        assert_eq!(n.lookup(&chaos, 0), Lookup::Forward);
    }

    #[test]
    fn answers_rotate() {
        let n = names();
        let q = Question {
            name: Name::from_dotted("www").unwrap(),
            qtype: rtype::A,
            qclass: CLASS_IN,
        };
        assert_eq!(addrs(n.lookup(&q, 1)), ["10.89.0.3", "10.89.0.2"]);
        assert_eq!(addrs(n.lookup(&q, 2)), ["10.89.0.2", "10.89.0.3"]);
        let any = Question { qtype: rtype::ANY, ..q };
        assert_eq!(addrs(n.lookup(&any, 1)), ["fd00::2", "10.89.0.3", "10.89.0.2"]);
    }

    #[test]
    fn unique_id_prefixes() {
        let n = names();
        assert_eq!(addrs(ask(&n, "3f2a9c1b7d4e", rtype::A)), ["10.89.0.2"]);
        assert_eq!(addrs(ask(&n, "3F2A9C1B7D4E00.mynet", rtype::A)), ["10.89.0.2"]);
        assert_eq!(addrs(ask(&n, "3f2a9c1b7d4f", rtype::A)), ["10.89.0.3"]);
        // Ambiguous, too short, or not a prefix.
        assert_eq!(ask(&n, "3f2a9c1b7d4", rtype::A), Lookup::Forward);
        assert_eq!(ask(&n, "3f2a9c1b7d", rtype::A), Lookup::Forward);
        assert_eq!(ask(&n, "3f2a9c1b7d4a", rtype::A), Lookup::Forward);
    }

    #[test]
    fn reverse_names() {
        let n = names();
        let v4 = reverse_name("10.89.0.2".parse().unwrap());
        assert_eq!(v4.to_string(), "2.0.89.10.in-addr.arpa.");
        assert_eq!(addrs(ask(&n, &v4.to_string(), rtype::PTR)), ["web.mynet."]);
        let v6 = reverse_name("fd00::2".parse().unwrap());
        assert!(v6.to_string().starts_with("2.0.0.0.0.0.0.0."));
        assert!(v6.to_string().ends_with(".0.0.d.f.ip6.arpa."));
        assert_eq!(
            addrs(ask(&n, &v6.to_string().to_uppercase(), rtype::PTR)),
            ["web.mynet."]
        );
        assert_eq!(addrs(ask(&n, &v4.to_string(), rtype::A)), Vec::<String>::new());
        // Addresses not ours, partial and odd reverse names are forwarded.
        assert_eq!(ask(&n, "9.0.89.10.in-addr.arpa", rtype::PTR), Lookup::Forward);
        assert_eq!(ask(&n, "0.89.10.in-addr.arpa", rtype::PTR), Lookup::Forward);
        assert_eq!(ask(&n, "02.0.89.10.in-addr.arpa", rtype::PTR), Lookup::Forward);
        assert_eq!(ask(&n, "256.0.89.10.in-addr.arpa", rtype::PTR), Lookup::Forward);
        for a in ["0.0.0.0", "255.255.255.255", "::", "2001:db8::ff:1"] {
            let addr: IpAddr = a.parse().unwrap();
            assert_eq!(reverse_address(&reverse_name(addr)), Some(addr));
        }
    }
}
