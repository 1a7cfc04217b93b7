//! The network tables on a temp-dir SQLite file.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;

use super::*;
use crate::ipam::consolidate;
use crate::ports::{parse_publish, PortBinding, Proto};

/// A connection set up as the engine sets up berth.db (WAL, foreign keys,
/// busy timeout), with these tables migrated.
fn open(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn
}

fn setup() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = open(&dir.path().join("berth.db"));
    for step in MIGRATIONS {
        conn.execute_batch(step).unwrap();
    }
    (dir, conn)
}

fn id(n: u32) -> String {
    format!("{n:08x}{}", "0".repeat(56))
}

fn spec(n: u32, name: &str) -> NetworkSpec {
    NetworkSpec {
        id: id(n),
        name: name.to_owned(),
        created: "2025-01-01T00:00:00Z".to_owned(),
        ..NetworkSpec::default()
    }
}

fn with_subnet(mut s: NetworkSpec, subnet: &str) -> NetworkSpec {
    s.subnets = consolidate(&[subnet.to_owned()], &[], &[]).unwrap();
    s
}

fn ep(container: &str) -> EndpointSpec {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    EndpointSpec {
        id: format!("{n:064x}"),
        container: container.to_owned(),
        name: format!("name-{container}"),
        ..EndpointSpec::default()
    }
}

fn cidrs(n: &Network) -> Vec<String> {
    n.subnets.iter().map(|s| s.subnet.to_string()).collect()
}

fn predefined(conn: &Connection) {
    let mut n = 100;
    ensure_predefined(conn, DEFAULT_BRIDGE_SUBNET, "2025-01-01T00:00:00Z", &mut || {
        n += 1;
        id(n)
    })
    .unwrap();
}

#[test]
fn predefined_networks_are_made_once_and_cannot_be_removed() {
    let (_d, conn) = setup();
    predefined(&conn);
    predefined(&conn);
    let all = list_networks(&conn).unwrap();
    let names: Vec<&str> = all.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["bridge", "host", "none"]);
    let bridge = find_network(&conn, "bridge").unwrap();
    assert_eq!(bridge.bridge.as_deref(), Some("berth0"));
    assert_eq!(cidrs(&bridge), ["10.88.0.0/16"]);
    assert_eq!(bridge.subnets[0].gateway, "10.88.0.1".parse::<IpAddr>().unwrap());
    let host = find_network(&conn, "host").unwrap();
    assert_eq!(
        (host.driver.as_str(), host.bridge.as_deref(), host.subnets.len()),
        ("host", None, 0)
    );
    assert_eq!(find_network(&conn, "none").unwrap().driver, "null");
    for name in PREDEFINED {
        let e = remove_network(&conn, name).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{name} is a pre-defined network and cannot be removed")
        );
    }
    let e = create_network(&conn, &spec(1, "bridge"), Pools::DEFAULT).unwrap_err();
    assert_eq!(e.to_string(), "network with name bridge already exists");
}

#[test]
fn networks_get_free_pool_subnets_and_overlaps_are_refused() {
    let (_d, conn) = setup();
    predefined(&conn);
    let a = create_network(&conn, &spec(1, "a"), Pools::DEFAULT).unwrap();
    let b = create_network(&conn, &spec(2, "b"), Pools::DEFAULT).unwrap();
    assert_eq!(cidrs(&a), ["10.89.0.0/24"]);
    assert_eq!(cidrs(&b), ["10.89.1.0/24"]);
    assert_eq!(a.bridge.as_deref(), Some("br-000000010000"));
    assert_eq!(a.driver, "bridge");
    let e = create_network(&conn, &with_subnet(spec(3, "c"), "10.88.5.0/24"), Pools::DEFAULT).unwrap_err();
    assert_eq!(e.to_string(), "Pool overlaps with other one on this address space");
    let e = create_network(&conn, &with_subnet(spec(3, "c"), "10.89.0.0/16"), Pools::DEFAULT).unwrap_err();
    assert_eq!(e.to_string(), "Pool overlaps with other one on this address space");
    // An explicit subnet inside the pool makes the pool skip it.
    let c = create_network(&conn, &with_subnet(spec(3, "c"), "10.89.2.0/24"), Pools::DEFAULT).unwrap();
    assert_eq!(cidrs(&c), ["10.89.2.0/24"]);
    assert_eq!(
        cidrs(&create_network(&conn, &spec(4, "d"), Pools::DEFAULT).unwrap()),
        ["10.89.3.0/24"]
    );
    // Pool subnets avoid the host's routes.
    let routes = ["10.89.4.0/23".parse().unwrap()];
    let pools = Pools {
        avoid: &routes,
        ..Pools::DEFAULT
    };
    assert_eq!(
        cidrs(&create_network(&conn, &spec(9, "r"), pools).unwrap()),
        ["10.89.6.0/24"]
    );
    remove_network(&conn, "r").unwrap();
    // A removed network's subnet is free again.
    remove_network(&conn, "a").unwrap();
    assert_eq!(
        cidrs(&create_network(&conn, &spec(5, "e"), Pools::DEFAULT).unwrap()),
        ["10.89.0.0/24"]
    );
    let e = create_network(&conn, &spec(6, "e"), Pools::DEFAULT).unwrap_err();
    assert_eq!(e.to_string(), "network with name e already exists");
    // A refused create records nothing.
    assert_eq!(list_networks(&conn).unwrap().len(), 7);
    // Pools run dry.
    let tiny = [Pool {
        base: "10.200.0.0/24".parse().unwrap(),
        size: 24,
    }];
    let pools = Pools {
        v4: &tiny,
        v6: &[],
        avoid: &[],
    };
    create_network(&conn, &spec(7, "f"), pools).unwrap();
    let e = create_network(&conn, &spec(8, "g"), pools).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("could not find an available, non-overlapping IPv4 address pool"),
        "{e}"
    );
}

#[test]
fn ipv6_gateway_range_internal_labels_and_options_are_kept() {
    let (_d, conn) = setup();
    let mut s = spec(1, "six");
    s.ipv6 = true;
    s.internal = true;
    s.labels.insert("team".into(), "a".into());
    s.options.insert(OPT_BRIDGE_NAME.into(), "berth-six".into());
    let n = create_network(&conn, &s, Pools::DEFAULT).unwrap();
    assert_eq!(cidrs(&n), ["10.89.0.0/24", "fd89::/64"]);
    assert_eq!(n.bridge.as_deref(), Some("berth-six"));
    assert!(n.internal && n.ipv6 && !n.masquerade());
    assert_eq!(find_network(&conn, "six").unwrap(), n);

    let mut s = spec(2, "ranged");
    s.subnets = consolidate(
        &["10.50.0.0/16".into(), "fd00:50::/64".into()],
        &["10.50.0.254".into()],
        &["10.50.1.0/24".into()],
    )
    .unwrap();
    let n = create_network(&conn, &s, Pools::DEFAULT).unwrap();
    assert!(n.ipv6, "an IPv6 subnet turns IPv6 on");
    assert_eq!(cidrs(&n), ["10.50.0.0/16", "fd00:50::/64"]);
    assert_eq!(n.subnets[0].gateway.to_string(), "10.50.0.254");
    assert_eq!(n.subnets[0].ip_range.unwrap().to_string(), "10.50.1.0/24");
    let (_, e) = connect(&conn, "ranged", &ep("c1")).unwrap();
    assert_eq!(e.ipv4.unwrap().to_string(), "10.50.1.0");
    assert_eq!(e.ipv6.unwrap().to_string(), "fd00:50::2");

    let mut s = spec(3, "clash");
    s.options.insert(OPT_BRIDGE_NAME.into(), "berth-six".into());
    let e = create_network(&conn, &s, Pools::DEFAULT).unwrap_err();
    assert_eq!(e.to_string(), "bridge name berth-six is already used by network six");
    s.options.insert(OPT_BRIDGE_NAME.into(), "much-too-long-name".into());
    assert!(matches!(
        create_network(&conn, &s, Pools::DEFAULT),
        Err(StoreError::InvalidBridgeName(_))
    ));
    let mut s = spec(4, "mv");
    s.driver = "macvlan".into();
    assert_eq!(
        create_network(&conn, &s, Pools::DEFAULT).unwrap_err().to_string(),
        "plugin \"macvlan\" not found"
    );
    s.driver = "host".into();
    assert_eq!(
        create_network(&conn, &s, Pools::DEFAULT).unwrap_err().to_string(),
        "only one instance of \"host\" network is allowed"
    );
}

#[test]
fn lookup_by_id_name_and_unique_prefix() {
    let (_d, conn) = setup();
    let mut a = spec(0, "a");
    a.id = format!("abc1{}", "0".repeat(60));
    let mut b = spec(0, "b");
    b.id = format!("abc2{}", "0".repeat(60));
    let a = create_network(&conn, &a, Pools::DEFAULT).unwrap();
    create_network(&conn, &b, Pools::DEFAULT).unwrap();
    assert_eq!(find_network(&conn, &a.id).unwrap().name, "a");
    assert_eq!(find_network(&conn, "a").unwrap().name, "a");
    assert_eq!(find_network(&conn, "abc1").unwrap().name, "a");
    assert_eq!(find_network(&conn, "ABC2").unwrap().name, "b");
    assert_eq!(
        find_network(&conn, "abc").unwrap_err().to_string(),
        "network abc is ambiguous (2 matches found based on ID prefix)"
    );
    assert_eq!(
        find_network(&conn, "zzz").unwrap_err().to_string(),
        "network zzz not found"
    );
    assert_eq!(find_network(&conn, "").unwrap_err().to_string(), "network  not found");
    assert_eq!(remove_network(&conn, "abc2").unwrap().name, "b");
    assert_eq!(find_network(&conn, "abc").unwrap().name, "a");
}

#[test]
fn endpoints_lease_the_lowest_free_addresses_and_release_them() {
    let (_d, conn) = setup();
    predefined(&conn);
    create_network(&conn, &with_subnet(spec(1, "n"), "10.60.0.0/29"), Pools::DEFAULT).unwrap();
    let ip = |e: &Endpoint| e.ipv4.unwrap().to_string();
    let (net, e1) = connect(&conn, "n", &ep("c1")).unwrap();
    assert_eq!(net.name, "n");
    assert_eq!(
        (ip(&e1), e1.mac.as_str(), e1.ipv6),
        ("10.60.0.2".into(), "02:42:0a:3c:00:02", None)
    );
    let (_, e2) = connect(&conn, "n", &ep("c2")).unwrap();
    assert_eq!(ip(&e2), "10.60.0.3");
    let mut asked = ep("c3");
    asked.ipv4 = Some(Ipv4Addr::new(10, 60, 0, 6));
    asked.mac = Some("02:AA:BB:CC:DD:EE".into());
    asked.aliases = vec!["db".into()];
    let (_, e3) = connect(&conn, "n", &asked).unwrap();
    assert_eq!(
        (ip(&e3), e3.mac.as_str(), e3.aliases.clone()),
        ("10.60.0.6".into(), "02:aa:bb:cc:dd:ee", vec!["db".to_string()])
    );

    let mut taken = ep("c4");
    taken.ipv4 = Some(Ipv4Addr::new(10, 60, 0, 6));
    assert_eq!(
        connect(&conn, "n", &taken).unwrap_err().to_string(),
        "Address already in use"
    );
    taken.ipv4 = Some(Ipv4Addr::new(10, 61, 0, 6));
    assert_eq!(
        connect(&conn, "n", &taken).unwrap_err().to_string(),
        "Invalid address 10.61.0.6: It does not belong to any of this network's subnets"
    );
    taken.ipv4 = Some(Ipv4Addr::new(10, 88, 0, 9));
    assert_eq!(
        connect(&conn, "bridge", &taken).unwrap_err().to_string(),
        "user specified IP address is supported on user defined networks only"
    );
    assert_eq!(
        connect(&conn, "n", &ep("c1")).unwrap_err().to_string(),
        "endpoint with name name-c1 already exists in network n"
    );
    let (_, e4) = connect(&conn, "n", &ep("c4")).unwrap();
    let (_, e5) = connect(&conn, "n", &ep("c5")).unwrap();
    assert_eq!((ip(&e4), ip(&e5)), ("10.60.0.4".into(), "10.60.0.5".into()));
    let e = connect(&conn, "n", &ep("c6")).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "no available IPv4 addresses on this network's address pools: n ({})",
            id(1)
        )
    );

    // Removal is refused while endpoints remain.
    assert_eq!(
        remove_network(&conn, "n").unwrap_err().to_string(),
        format!(
            "error while removing network: network n id {} has active endpoints",
            id(1)
        )
    );
    // A released address is the next one handed out.
    let (_, gone) = disconnect(&conn, "n", "c2").unwrap();
    assert_eq!(gone, e2);
    assert_eq!(
        disconnect(&conn, "n", "c2").unwrap_err().to_string(),
        "container c2 is not connected to network n"
    );
    assert_eq!(ip(&connect(&conn, "n", &ep("c6")).unwrap().1), "10.60.0.3");

    // A container on two networks; rm releases both.
    let (_, b1) = connect(&conn, "bridge", &ep("c1")).unwrap();
    assert_eq!(ip(&b1), "10.88.0.2");
    let on: Vec<String> = container_endpoints(&conn, "c1")
        .unwrap()
        .into_iter()
        .map(|e| e.network)
        .collect();
    assert_eq!(on, [id(1), id(101)]);
    let (released, _) = release_container(&conn, "c1").unwrap();
    assert_eq!(released.len(), 2);
    assert!(container_endpoints(&conn, "c1").unwrap().is_empty());
    assert_eq!(list_endpoints(&conn, Some(&id(1))).unwrap().len(), 4);
    for c in ["c3", "c4", "c5", "c6"] {
        release_container(&conn, c).unwrap();
    }
    assert_eq!(remove_network(&conn, "n").unwrap().name, "n");
}

#[test]
fn concurrent_connections_never_share_an_address() {
    let (dir, conn) = setup();
    create_network(&conn, &with_subnet(spec(1, "busy"), "10.70.0.0/24"), Pools::DEFAULT).unwrap();
    let path = dir.path().join("berth.db");
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let conn = open(&path);
                (0..10)
                    .map(|i| {
                        connect(&conn, "busy", &ep(&format!("t{t}-{i}")))
                            .unwrap()
                            .1
                            .ipv4
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<Ipv4Addr> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let distinct: BTreeSet<Ipv4Addr> = all.iter().copied().collect();
    assert_eq!((all.len(), distinct.len()), (60, 60));
    // The lowest 60: .2 to .61.
    assert_eq!(distinct.first().unwrap().to_string(), "10.70.0.2");
    assert_eq!(distinct.last().unwrap().to_string(), "10.70.0.61");
}

fn bindings(specs: &[&str]) -> Vec<PortBinding> {
    specs.iter().flat_map(|s| parse_publish(s).unwrap()).collect()
}

/// A TCP port nothing on this host listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn published_ports_are_held_once_and_checked_against_the_host() {
    let (_d, conn) = setup();
    let p = free_port();
    let got = publish_ports(
        &conn,
        "c1",
        &bindings(&[&format!("{p}:80"), &format!("127.0.0.1:{p}:53/udp")]),
    )
    .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].host_addr(), got[0].proto, got[0].container_port),
        (format!("0.0.0.0:{p}"), Proto::Tcp, 80)
    );
    assert_eq!(got[1].host_addr(), format!("127.0.0.1:{p}"));
    // Held by another container: on every address, or on one of them.
    for spec in [format!("{p}:80"), format!("127.0.0.1:{p}:80"), format!("[::1]:{p}:80")] {
        let e = publish_ports(&conn, "c2", &bindings(&[&spec])).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "Bind for {}:{p} failed: port is already allocated",
                spec.rsplitn(3, ':').nth(2).map_or("0.0.0.0", |ip| ip)
            )
        );
    }
    // Another protocol is another port.
    publish_ports(&conn, "c2", &bindings(&[&format!("{p}:80/sctp")])).unwrap();
    // A refused publish holds nothing, not even its first good binding.
    let q = free_port();
    let e = publish_ports(&conn, "c3", &bindings(&[&format!("{q}:80"), &format!("{p}:81")])).unwrap_err();
    assert!(matches!(e, StoreError::PortAllocated(_)), "{e}");
    assert!(published_ports(&conn, Some("c3")).unwrap().is_empty());

    // A port a host process listens on is refused too.
    let busy = TcpListener::bind("0.0.0.0:0").unwrap();
    let bp = busy.local_addr().unwrap().port();
    let e = publish_ports(&conn, "c3", &bindings(&[&format!("{bp}:80")])).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("Bind for 0.0.0.0:{bp} failed: port is already allocated")
    );
    let e = publish_ports(&conn, "c3", &bindings(&[&format!("127.0.0.1:{bp}:80")])).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("Bind for 127.0.0.1:{bp} failed: port is already allocated")
    );
    let busy_udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let up = busy_udp.local_addr().unwrap().port();
    let e = publish_ports(&conn, "c3", &bindings(&[&format!("127.0.0.1:{up}:53/udp")])).unwrap_err();
    assert!(matches!(e, StoreError::PortAllocated(_)), "{e}");
    drop(busy);
    publish_ports(&conn, "c3", &bindings(&[&format!("{bp}:80")])).unwrap();
    // An address the host does not have.
    let e = publish_ports(&conn, "c4", &bindings(&["192.0.2.77:8080:80"])).unwrap_err();
    assert!(e.to_string().starts_with("Bind for 192.0.2.77:8080 failed: "), "{e}");

    // Publishing again replaces what the container held.
    let r = free_port();
    publish_ports(&conn, "c1", &bindings(&[&format!("{r}:80")])).unwrap();
    let held: Vec<u16> = published_ports(&conn, Some("c1"))
        .unwrap()
        .iter()
        .map(|p| p.host_port)
        .collect();
    assert_eq!(held, [r]);
    publish_ports(&conn, "c4", &bindings(&[&format!("{p}:80")])).unwrap();
    assert_eq!(unpublish_ports(&conn, "c4").unwrap().len(), 1);
    assert!(published_ports(&conn, Some("c4")).unwrap().is_empty());
}

#[test]
fn random_and_range_host_ports() {
    let (_d, conn) = setup();
    let got = publish_ports(&conn, "c1", &bindings(&["80", "81/udp", "127.0.0.1::82"])).unwrap();
    let (lo, hi) = EPHEMERAL_PORTS;
    for p in &got {
        assert!((lo..=hi).contains(&p.host_port), "{p:?}");
    }
    let distinct: BTreeSet<u16> = got.iter().map(|p| p.host_port).collect();
    assert_eq!(distinct.len(), 3, "{got:?}");
    // A range: the first free port of it.
    let base = free_port();
    if base < 65000 {
        let first = publish_ports(&conn, "c2", &bindings(&[&format!("{base}:80")])).unwrap();
        assert_eq!(first[0].host_port, base);
        let spec = format!("{base}-{}:80", base + 20);
        let next = publish_ports(&conn, "c3", &bindings(&[&spec])).unwrap();
        assert!(next[0].host_port > base && next[0].host_port <= base + 20, "{next:?}");
        let e = publish_ports(&conn, "c4", &bindings(&[&format!("{base}-{base}:80")])).unwrap_err();
        assert!(matches!(e, StoreError::PortAllocated(_)), "{e}");
    }
    // Equal ranges map one to one.
    let q = free_port();
    if q < 65000 {
        if let Ok(got) = publish_ports(&conn, "c5", &bindings(&[&format!("{q}-{}:90-91", q + 1)])) {
            let pairs: Vec<(u16, u16)> = got.iter().map(|p| (p.host_port, p.container_port)).collect();
            assert_eq!(pairs, [(q, 90), (q + 1, 91)]);
        }
    }
    let all = records(&conn).unwrap();
    assert_eq!(all.ports.len(), published_ports(&conn, None).unwrap().len());
    let (_, ports) = release_container(&conn, "c1").unwrap();
    assert_eq!(ports, got);
}
