//! Golden rulesets: the script for given records, as text.

use std::collections::BTreeMap;

use super::*;
use crate::ipam::Subnet;
use crate::store::{Endpoint, Network, PublishedPort, OPT_MASQUERADE};

fn net(id: &str, name: &str, bridge: Option<&str>, subnets: &[&str], internal: bool) -> Network {
    Network {
        id: id.into(),
        name: name.into(),
        driver: if bridge.is_some() { "bridge" } else { "host" }.into(),
        bridge: bridge.map(Into::into),
        subnets: subnets
            .iter()
            .map(|s| Subnet::new(s.parse().unwrap(), None, None).unwrap())
            .collect(),
        internal,
        ipv6: subnets.iter().any(|s| s.contains(':')),
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        created: String::new(),
    }
}

fn ep(network: &str, container: &str, v4: Option<&str>, v6: Option<&str>) -> Endpoint {
    Endpoint {
        id: format!("{network}-{container}"),
        network: network.into(),
        container: container.into(),
        name: container.into(),
        ipv4: v4.map(|a| a.parse().unwrap()),
        ipv6: v6.map(|a| a.parse().unwrap()),
        mac: String::new(),
        aliases: Vec::new(),
    }
}

fn port(container: &str, host_ip: Option<&str>, host_port: u16, proto: Proto, container_port: u16) -> PublishedPort {
    PublishedPort {
        container: container.into(),
        host_ip: host_ip.map(|a| a.parse().unwrap()),
        host_port,
        proto,
        container_port,
    }
}

const EMPTY: &str = r#"add table inet berth-user
add chain inet berth-user prerouting { type filter hook prerouting priority -110; }
add chain inet berth-user forward { type filter hook forward priority -10; }
add table inet berth
delete table inet berth
table inet berth {
	set bridges {
		type ifname
	}
	map ports4_addr {
		type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
	}
	map ports4 {
		type inet_proto . inet_service : ipv4_addr . inet_service
	}
	map ports6_addr {
		type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service
	}
	map ports6 {
		type inet_proto . inet_service : ipv6_addr . inet_service
	}
	chain localnet {
		type filter hook prerouting priority raw; policy accept;
		iifname @bridges ip daddr 127.0.0.0/8 drop comment "the host's loopback is its own"
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr != 127.0.0.0/8 fib daddr type local jump published
		ip6 daddr != ::1 fib daddr type local jump published
	}
	chain output {
		type nat hook output priority -100; policy accept;
		meta nfproto ipv4 fib daddr type local jump published
		ip6 daddr != ::1 fib daddr type local jump published
	}
	chain published {
		dnat ip to ip daddr . meta l4proto . th dport map @ports4_addr
		dnat ip to meta l4proto . th dport map @ports4
		dnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6_addr
		dnat ip6 to meta l4proto . th dport map @ports6
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname @bridges ip saddr 127.0.0.0/8 masquerade comment "host to published port via localhost"
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state established,related accept
		oifname @bridges ct status dnat accept comment "published ports"
		iifname @bridges oifname @bridges drop comment "isolation between networks"
		iifname @bridges accept
		oifname @bridges drop
	}
}
"#;

#[test]
fn no_records_give_the_empty_skeleton() {
    assert_eq!(Firewall::default().script("berth"), EMPTY);
    assert_eq!(Firewall::from_records(&Records::default()), Firewall::default());
}

/// The default bridge with two published ports, a user network with IPv6,
/// an internal network, one without masquerade and the host network.
fn records() -> Records {
    let mut quiet = net("q", "quiet", Some("br-q"), &["10.89.3.0/24"], false);
    quiet.options.insert(OPT_MASQUERADE.into(), "false".into());
    Records {
        networks: vec![
            net("b", "bridge", Some("berth0"), &["10.88.0.0/16"], false),
            net("h", "host", None, &[], false),
            net("i", "secret", Some("br-i"), &["10.89.1.0/24"], true),
            quiet,
            net("u", "web", Some("br-u"), &["10.89.0.0/24", "fd89::/64"], false),
        ],
        endpoints: vec![
            ep("b", "c1", Some("10.88.0.2"), None),
            ep("i", "c2", Some("10.89.1.2"), None),
            ep("u", "c2", Some("10.89.0.2"), Some("fd89::2")),
            ep("i", "c3", Some("10.89.1.3"), None),
            ep("h", "c4", None, None),
        ],
        ports: vec![
            port("c1", None, 8080, Proto::Tcp, 80),
            port("c1", Some("127.0.0.1"), 5353, Proto::Udp, 53),
            // c2: its first endpoint is internal, so the web one serves.
            port("c2", None, 8443, Proto::Tcp, 443),
            port("c2", Some("::1"), 9000, Proto::Sctp, 9),
            // c3 is only on an internal network, c4 on the host's: no rule.
            port("c3", None, 7000, Proto::Tcp, 7),
            port("c4", None, 7001, Proto::Tcp, 7),
        ],
    }
}

#[test]
fn records_resolve_to_bridges_and_dnat_targets() {
    let fw = Firewall::from_records(&records());
    let bridges: Vec<(&str, bool, bool)> = fw
        .bridges
        .iter()
        .map(|b| (b.bridge.as_str(), b.internal, b.masquerade))
        .collect();
    assert_eq!(
        bridges,
        [
            ("berth0", false, true),
            ("br-i", true, false),
            ("br-q", false, false),
            ("br-u", false, true)
        ]
    );
    let d = |host_ip: Option<&str>, host_port, proto, to: &str, to_port| Dnat {
        host_ip: host_ip.map(|a| a.parse().unwrap()),
        host_port,
        proto,
        to: to.parse().unwrap(),
        to_port,
    };
    assert_eq!(
        fw.dnat,
        [
            d(None, 8080, Proto::Tcp, "10.88.0.2", 80),
            d(Some("127.0.0.1"), 5353, Proto::Udp, "10.88.0.2", 53),
            d(None, 8443, Proto::Tcp, "10.89.0.2", 443),
            d(None, 8443, Proto::Tcp, "fd89::2", 443),
            d(Some("::1"), 9000, Proto::Sctp, "fd89::2", 9),
        ]
    );
}

const FULL: &str = r#"add table inet berth-user
add chain inet berth-user prerouting { type filter hook prerouting priority -110; }
add chain inet berth-user forward { type filter hook forward priority -10; }
add table inet berth
delete table inet berth
table inet berth {
	set bridges {
		type ifname
		elements = { "berth0", "br-i", "br-q", "br-u" }
	}
	map ports4_addr {
		type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
		elements = { 127.0.0.1 . udp . 5353 : 10.88.0.2 . 53 }
	}
	map ports4 {
		type inet_proto . inet_service : ipv4_addr . inet_service
		elements = { tcp . 8080 : 10.88.0.2 . 80, tcp . 8443 : 10.89.0.2 . 443 }
	}
	map ports6_addr {
		type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service
		elements = { ::1 . sctp . 9000 : fd89::2 . 9 }
	}
	map ports6 {
		type inet_proto . inet_service : ipv6_addr . inet_service
		elements = { tcp . 8443 : fd89::2 . 443 }
	}
	chain localnet {
		type filter hook prerouting priority raw; policy accept;
		iifname @bridges ip daddr 127.0.0.0/8 drop comment "the host's loopback is its own"
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr != 127.0.0.0/8 fib daddr type local jump published
		ip6 daddr != ::1 fib daddr type local jump published
	}
	chain output {
		type nat hook output priority -100; policy accept;
		meta nfproto ipv4 fib daddr type local jump published
		ip6 daddr != ::1 fib daddr type local jump published
	}
	chain published {
		dnat ip to ip daddr . meta l4proto . th dport map @ports4_addr
		dnat ip to meta l4proto . th dport map @ports4
		dnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6_addr
		dnat ip6 to meta l4proto . th dport map @ports6
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname @bridges ip saddr 127.0.0.0/8 masquerade comment "host to published port via localhost"
		oifname "berth0" ip saddr 10.88.0.0/16 ct status dnat masquerade comment "hairpin"
		oifname != "berth0" ip saddr 10.88.0.0/16 masquerade
		oifname "br-i" ip saddr 10.89.1.0/24 ct status dnat masquerade comment "hairpin"
		oifname "br-q" ip saddr 10.89.3.0/24 ct status dnat masquerade comment "hairpin"
		oifname "br-u" ip saddr 10.89.0.0/24 ct status dnat masquerade comment "hairpin"
		oifname != "br-u" ip saddr 10.89.0.0/24 masquerade
		oifname "br-u" ip6 saddr fd89::/64 ct status dnat masquerade comment "hairpin"
		oifname != "br-u" ip6 saddr fd89::/64 masquerade
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "br-i" oifname != "br-i" drop comment "internal network"
		oifname "br-i" iifname != "br-i" drop comment "internal network"
		ct state established,related accept
		oifname @bridges ct status dnat accept comment "published ports"
		iifname "berth0" oifname "berth0" accept
		iifname "br-i" oifname "br-i" accept
		iifname "br-q" oifname "br-q" accept
		iifname "br-u" oifname "br-u" accept
		iifname @bridges oifname @bridges drop comment "isolation between networks"
		iifname @bridges accept
		oifname @bridges drop
	}
}
"#;

#[test]
fn golden_ruleset() {
    let script = Firewall::from_records(&records()).script("berth");
    assert_eq!(script, FULL, "got:\n{script}");
}

#[test]
fn table_name_and_odd_bridge_names_stay_well_formed() {
    let fw = Firewall {
        bridges: vec![BridgeRules {
            bridge: "a\"b\\c".into(),
            subnets: vec![],
            internal: false,
            masquerade: true,
        }],
        dnat: vec![],
    };
    let s = fw.script("berth_test");
    assert!(s.contains("table inet berth_test {"));
    assert!(s.contains("elements = { \"abc\" }"), "{s}");
}
