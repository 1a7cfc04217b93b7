//! nftables rulesets applied for real, inside network namespaces this test
//! makes (never the host's): applied, re-applied, listed, removed; and
//! traffic through them: published ports from the "host" namespace (via
//! 127.0.0.1 and via host addresses), from another container on the same
//! bridge (hairpin), from another network and from "outside"; masquerade
//! going out; isolation between networks; internal networks; a drop in the
//! user's chain winning. Every namespace (and so every veth, bridge and
//! rule in it) is deleted at the end, and checked gone. Needs root, `ip`
//! (iproute2) and `nft` (nftables).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_network::ipam::consolidate;
use berth_network::nft::{self, Firewall, NftError};
use berth_network::ports::parse_publish;
use berth_network::store::{self, EndpointSpec, NetworkSpec, Pools, Records};
use rusqlite::Connection;

fn root(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping {test}: needs root");
        return false;
    }
    true
}

/// Runs a command, panicking with its stderr when it fails.
fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A named network namespace (`ip netns add`), deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("berth-nft-test-{}-{tag}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    fn ip(&self, args: &str) {
        let mut v = vec!["ip", "-n", self.name.as_str()];
        v.extend(args.split_whitespace());
        run(&v);
    }

    fn exec(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", self.name.as_str()];
        v.extend(args);
        run(&v)
    }

    fn sysctl(&self, key: &str) {
        self.exec(&["sysctl", "-qw", key]);
    }

    /// `f` on a thread that joined this namespace; processes it spawns are
    /// in it too.
    fn run_in<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = Path::new("/run/netns").join(&self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }

    fn ruleset(&self) -> String {
        self.exec(&["nft", "list", "ruleset"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// This test's namespaces still listed (`ip netns list` prints the name
/// first on each line).
fn leftover_namespaces(tags: &[&str]) -> Vec<String> {
    let ours: Vec<String> = tags
        .iter()
        .map(|t| format!("berth-nft-test-{}-{t}", std::process::id()))
        .collect();
    run(&["ip", "netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| ours.iter().any(|o| o == n))
        .map(str::to_owned)
        .collect()
}

fn open_db(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    // The engine migrates with berth_image::images::migrate; here the one
    // step runs on a new file only.
    let fresh: bool = conn
        .query_row(
            "SELECT count(*) = 0 FROM sqlite_master WHERE name = 'networks'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if fresh {
        for step in store::MIGRATIONS {
            conn.execute_batch(step).unwrap();
        }
    }
    conn
}

fn id(n: u32) -> String {
    format!("{n:064x}")
}

fn network(n: u32, name: &str, bridge: &str, subnet: &str, internal: bool) -> NetworkSpec {
    NetworkSpec {
        id: id(n),
        name: name.into(),
        subnets: consolidate(&[subnet.into()], &[], &[]).unwrap(),
        internal,
        options: [(store::OPT_BRIDGE_NAME.to_owned(), bridge.to_owned())].into(),
        created: "2025-01-01T00:00:00Z".into(),
        ..NetworkSpec::default()
    }
}

fn endpoint(n: u32, container: &str) -> EndpointSpec {
    EndpointSpec {
        id: id(1000 + n),
        container: container.into(),
        name: container.into(),
        ..EndpointSpec::default()
    }
}

/// The records of the traffic test: the default bridge (berth0,
/// 10.88.0.0/16) with c1 (publishing 8080->80) and c2; network "web"
/// (br-u, 10.89.0.0/24) with c3; internal network "secret" (br-i,
/// 10.89.1.0/24) with c4.
fn populate(conn: &Connection) {
    let mut n = 0;
    store::ensure_predefined(conn, store::DEFAULT_BRIDGE_SUBNET, "2025-01-01T00:00:00Z", &mut || {
        n += 1;
        id(n)
    })
    .unwrap();
    store::create_network(conn, &network(10, "web", "br-u", "10.89.0.0/24", false), Pools::DEFAULT).unwrap();
    store::create_network(
        conn,
        &network(11, "secret", "br-i", "10.89.1.0/24", true),
        Pools::DEFAULT,
    )
    .unwrap();
    for (i, (net, c)) in [("bridge", "c1"), ("bridge", "c2"), ("web", "c3"), ("secret", "c4")]
        .iter()
        .enumerate()
    {
        store::connect(conn, net, &endpoint(i as u32, c)).unwrap();
    }
}

#[test]
fn rulesets_apply_reapply_and_go_away() {
    if !root("rulesets_apply_reapply_and_go_away") {
        return;
    }
    let host = Netns::new("apply");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("berth.db");
    {
        let conn = open_db(&db);
        populate(&conn);
    }
    let db2 = db.clone();
    // Ports are published from inside the namespace, so the bind check
    // looks at its sockets.
    host.run_in(move || {
        let conn = open_db(&db2);
        store::publish_ports(&conn, "c1", &parse_publish("8080:80").unwrap()).unwrap();
        store::publish_ports(&conn, "c3", &parse_publish("127.0.0.1:5353:53/udp").unwrap()).unwrap();
        nft::sync(&conn, nft::TABLE).unwrap();
    });
    let first = host.ruleset();
    for want in [
        "table inet berth {",
        "table inet berth-user {",
        "elements = { tcp . 8080 : 10.88.0.2 . 80 }",
        "elements = { 127.0.0.1 . udp . 5353 : 10.89.0.2 . 53 }",
        "oifname != \"br-u\" ip saddr 10.89.0.0/24 masquerade",
        "iifname \"br-i\" oifname != \"br-i\" drop",
        "type filter hook prerouting priority dstnat - 10; policy accept;",
        "type filter hook forward priority filter - 10; policy accept;",
    ] {
        assert!(first.contains(want), "missing {want:?} in\n{first}");
    }
    // The internal network gets no masquerade.
    assert!(!first.contains("oifname != \"br-i\" ip saddr"), "{first}");

    // Applying again changes nothing; a rule and a policy the user put in
    // their table survive every apply.
    let db3 = db.clone();
    let sync = move || {
        let db = db3.clone();
        move || nft::sync(&open_db(&db), nft::TABLE)
    };
    host.run_in(sync()).unwrap();
    assert_eq!(host.ruleset(), first);
    // A change of ports only: the maps' elements are replaced, the rest stays.
    let db4 = db.clone();
    host.run_in(move || {
        let conn = open_db(&db4);
        store::publish_ports(&conn, "c1", &parse_publish("8081:80").unwrap()).unwrap();
        nft::sync_ports(&conn, nft::TABLE).unwrap();
    });
    let ports_only = host.ruleset();
    assert!(
        ports_only.contains("elements = { tcp . 8081 : 10.88.0.2 . 80 }"),
        "{ports_only}"
    );
    assert!(!ports_only.contains("8080"), "{ports_only}");
    assert_eq!(ports_only.replace("8081", "8080"), first, "only the port changed");
    let db5 = db.clone();
    host.run_in(move || {
        let conn = open_db(&db5);
        store::publish_ports(&conn, "c1", &parse_publish("8080:80").unwrap()).unwrap();
        nft::sync_ports(&conn, nft::TABLE).unwrap();
    });
    assert_eq!(host.ruleset(), first);
    // Without our table, a ports-only sync makes the whole table.
    host.exec(&["nft", "delete table inet berth"]);
    let db6 = db.clone();
    host.run_in(move || nft::sync_ports(&open_db(&db6), nft::TABLE))
        .unwrap();
    assert_eq!(host.ruleset(), first);
    host.exec(&["nft", "add rule inet berth-user forward ip saddr 192.0.2.99 drop"]);
    host.exec(&["nft", "add chain inet berth-user prerouting { policy drop; }"]);
    host.run_in(sync()).unwrap();
    let with_user = host.ruleset();
    assert!(with_user.contains("ip saddr 192.0.2.99 drop"), "{with_user}");
    assert!(with_user.contains("priority dstnat - 10; policy drop;"), "{with_user}");
    host.exec(&["nft", "add chain inet berth-user prerouting { policy accept; }"]);

    // A rule added to our table by hand (or left by a crash) is gone after
    // the next apply; released ports leave the maps.
    host.exec(&["nft", "add rule inet berth forward ip saddr 192.0.2.98 drop"]);
    let db4 = db.clone();
    host.run_in(move || {
        let conn = open_db(&db4);
        store::release_container(&conn, "c1").unwrap();
        nft::sync(&conn, nft::TABLE).unwrap();
    });
    let after = host.ruleset();
    assert!(!after.contains("192.0.2.98"), "{after}");
    assert!(!after.contains("8080"), "{after}");
    assert!(after.contains("127.0.0.1 . udp . 5353"), "{after}");

    // A bad script changes nothing and reports nft's own words.
    let before = host.ruleset();
    let err = host
        .run_in(|| nft::apply("berth", "add table inet berth\nadd rule inet berth nosuchchain drop\n"))
        .unwrap_err();
    match &err {
        NftError::Failed { stderr, .. } => assert!(stderr.contains("Error"), "{stderr}"),
        other => panic!("unexpected error {other}"),
    }
    assert!(
        err.to_string()
            .starts_with("applying nftables table berth: nft exit status: 1: "),
        "{err}"
    );
    assert_eq!(host.ruleset(), before);

    // A second table name is a second, independent ruleset.
    host.run_in(|| nft::apply("berth_other", &Firewall::default().script("berth_other")))
        .unwrap();
    assert!(host.ruleset().contains("table inet berth_other {"));
    host.run_in(|| nft::remove_all("berth_other")).unwrap();

    // Teardown removes our table, twice without error; the user's stays.
    host.run_in(|| nft::remove_all(nft::TABLE)).unwrap();
    host.run_in(|| nft::remove_all(nft::TABLE)).unwrap();
    let tables = host.exec(&["nft", "list", "tables"]);
    assert_eq!(tables.trim(), "table inet berth-user");
    drop(host);
    assert_eq!(leftover_namespaces(&["apply"]), Vec::<String>::new());
}

/// Accepts connections on `addr` in a namespace and answers each with the
/// peer address it saw, until stopped.
struct Echo {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Echo {
    fn start(ns: &Netns, addr: &str) -> Echo {
        let path = Path::new("/run/netns").join(&ns.name);
        let addr: SocketAddr = addr.parse().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let listener = TcpListener::bind(addr).unwrap();
            listener.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, peer)) => {
                        let _ = s.write_all(peer.ip().to_string().as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        rx.recv().unwrap();
        Echo {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from `ns` to `addr`: the peer address the echo server saw, or
/// None when the connection failed (dropped: after a 1 s timeout).
fn ask(ns: &Netns, addr: &str) -> Option<String> {
    let addr: SocketAddr = addr.parse().unwrap();
    ns.run_in(move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut seen = String::new();
        s.read_to_string(&mut seen).ok()?;
        Some(seen)
    })
}

/// Sends a few UDP datagrams from `sender` to `dest` while `receiver`
/// listens on `port`: the source address the first one arrived with, or
/// None when none arrived within a second. (One-way traffic: no reply is
/// needed, so only the way out is tested.)
fn udp_seen(sender: &Netns, receiver: &Netns, port: u16, dest: &str) -> Option<String> {
    let path = Path::new("/run/netns").join(&receiver.name);
    let (tx, rx) = std::sync::mpsc::channel();
    let listener = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let sock = UdpSocket::bind(("0.0.0.0", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 16];
        sock.recv_from(&mut buf).ok().map(|(_, peer)| peer.ip().to_string())
    });
    rx.recv().unwrap();
    let dest: SocketAddr = dest.parse().unwrap();
    sender.run_in(move || {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        for _ in 0..3 {
            let _ = sock.send_to(b"x", dest);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    listener.join().unwrap()
}

/// A container namespace on `bridge` (in `host`) with `addr/prefix`,
/// routed through `gateway`.
fn attach(host: &Netns, c: &Netns, bridge: &str, veth: &str, addr: &str, gateway: &str) {
    host.ip(&format!("link add {veth} type veth peer name eth0 netns {}", c.name));
    host.ip(&format!("link set {veth} master {bridge} up"));
    c.ip(&format!("addr add {addr} dev eth0"));
    c.ip("link set eth0 up");
    c.ip(&format!("route add default via {gateway}"));
}

fn bridge(host: &Netns, name: &str, addr: &str) {
    host.ip(&format!("link add {name} type bridge"));
    host.ip(&format!("addr add {addr} dev {name}"));
    host.ip(&format!("link set {name} up"));
    host.sysctl(&format!("net.ipv4.conf.{name}.route_localnet=1"));
}

#[test]
fn published_ports_nat_and_isolation_carry_real_traffic() {
    if !root("published_ports_nat_and_isolation_carry_real_traffic") {
        return;
    }
    let host = Netns::new("host");
    let outside = Netns::new("out");
    let c1 = Netns::new("c1");
    let c2 = Netns::new("c2");
    let c3 = Netns::new("c3");
    let c4 = Netns::new("c4");
    let evil = Netns::new("evil");

    host.sysctl("net.ipv4.ip_forward=1");
    bridge(&host, "berth0", "10.88.0.1/16");
    bridge(&host, "br-u", "10.89.0.1/24");
    bridge(&host, "br-i", "10.89.1.1/24");
    attach(&host, &c1, "berth0", "v1", "10.88.0.2/16", "10.88.0.1");
    attach(&host, &c2, "berth0", "v2", "10.88.0.3/16", "10.88.0.1");
    attach(&host, &c3, "br-u", "v3", "10.89.0.2/24", "10.89.0.1");
    attach(&host, &c4, "br-i", "v4", "10.89.1.2/24", "10.89.1.1");
    // A container that sends packets for 127.0.0.1 to the host (any
    // container with CAP_NET_RAW can craft them; here its kernel is told to).
    attach(&host, &evil, "berth0", "v5", "10.88.0.9/16", "10.88.0.1");
    // "Outside": another machine on the host's uplink, with a route to the
    // containers' subnet through the host (as a LAN neighbour might have).
    host.ip(&format!("link add up0 type veth peer name eth0 netns {}", outside.name));
    host.ip("addr add 192.0.2.2/24 dev up0");
    host.ip("link set up0 up");
    outside.ip("addr add 192.0.2.1/24 dev eth0");
    outside.ip("link set eth0 up");
    outside.ip("route add 10.88.0.0/16 via 192.0.2.2");

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("berth.db");
    {
        let conn = open_db(&db);
        populate(&conn);
        let ips: Vec<String> = store::list_endpoints(&conn, None)
            .unwrap()
            .iter()
            .map(|e| e.ipv4.unwrap().to_string())
            .collect();
        assert_eq!(ips, ["10.88.0.2", "10.88.0.3", "10.89.0.2", "10.89.1.2"]);
    }
    let sync = |db: &Path| {
        let db = db.to_owned();
        move || nft::sync(&open_db(&db), nft::TABLE).unwrap()
    };
    let db1 = db.clone();
    host.run_in(move || {
        let conn = open_db(&db1);
        store::publish_ports(&conn, "c1", &parse_publish("8080:80").unwrap()).unwrap();
        store::publish_ports(&conn, "c4", &parse_publish("8081:80").unwrap()).unwrap();
    });
    host.run_in(sync(&db));

    let _web = Echo::start(&c1, "0.0.0.0:80");
    let _secret = Echo::start(&c4, "0.0.0.0:80");
    let _far = Echo::start(&outside, "0.0.0.0:9");

    // From the host itself: localhost (masqueraded to the bridge address),
    // the bridge's address, the uplink address.
    assert_eq!(ask(&host, "127.0.0.1:8080").as_deref(), Some("10.88.0.1"));
    assert_eq!(ask(&host, "10.88.0.1:8080").as_deref(), Some("10.88.0.1"));
    assert!(ask(&host, "192.0.2.2:8080").is_some());
    // Hairpin: a container on the same bridge through a host address.
    assert_eq!(ask(&c2, "10.88.0.1:8080").as_deref(), Some("10.88.0.1"));
    assert_eq!(ask(&c2, "192.0.2.2:8080").as_deref(), Some("10.88.0.1"));
    // Same bridge, directly: plain switching.
    assert_eq!(ask(&c2, "10.88.0.2:80").as_deref(), Some("10.88.0.3"));
    // From outside: the published port, with the client's own address.
    assert_eq!(ask(&outside, "192.0.2.2:8080").as_deref(), Some("192.0.2.1"));
    // Outbound: masqueraded to the host's uplink address.
    assert_eq!(ask(&c1, "192.0.2.1:9").as_deref(), Some("192.0.2.2"));
    assert_eq!(ask(&c3, "192.0.2.1:9").as_deref(), Some("192.0.2.2"));
    // Another network reaches the published port through the host...
    assert!(ask(&c3, "10.89.0.1:8080").is_some());
    // ...but not the container itself: isolation between networks.
    assert_eq!(ask(&c3, "10.88.0.2:80"), None);
    // The outside cannot route to a container either.
    assert_eq!(ask(&outside, "10.88.0.2:80"), None);
    // Internal network: no way out, no way in, its published port ignored.
    assert_eq!(ask(&c4, "192.0.2.1:9"), None);
    assert_eq!(
        udp_seen(&c1, &outside, 5000, "192.0.2.1:5000").as_deref(),
        Some("192.0.2.2")
    );
    assert_eq!(udp_seen(&c4, &outside, 5000, "192.0.2.1:5000"), None);
    assert_eq!(ask(&c4, "10.88.0.2:80"), None);
    assert_eq!(ask(&c4, "10.88.0.1:8080"), None);
    assert_eq!(ask(&host, "127.0.0.1:8081"), None);
    assert_eq!(ask(&c1, "10.89.1.2:80"), None);
    // ...but the host still reaches it.
    assert_eq!(ask(&host, "10.89.1.2:80").as_deref(), Some("10.89.1.1"));

    // The user's chain wins: a drop there holds across every apply.
    host.exec(&["nft", "add rule inet berth-user prerouting tcp dport 8080 drop"]);
    assert_eq!(ask(&outside, "192.0.2.2:8080"), None);
    host.run_in(sync(&db));
    assert_eq!(ask(&outside, "192.0.2.2:8080"), None);
    host.exec(&["nft", "flush chain inet berth-user prerouting"]);
    host.exec(&[
        "nft",
        "add rule inet berth-user forward ip saddr 192.0.2.1 tcp dport 80 drop",
    ]);
    assert_eq!(ask(&outside, "192.0.2.2:8080"), None);
    assert!(ask(&host, "127.0.0.1:8080").is_some(), "only the outside is dropped");
    host.exec(&["nft", "flush chain inet berth-user forward"]);
    assert_eq!(ask(&outside, "192.0.2.2:8080").as_deref(), Some("192.0.2.1"));

    // A port some host process holds is refused, with Docker's message.
    let db2 = db.clone();
    let refused = host.run_in(move || {
        let _busy = TcpListener::bind("0.0.0.0:8090").unwrap();
        let conn = open_db(&db2);
        store::publish_ports(&conn, "c2", &parse_publish("8090:80").unwrap())
            .unwrap_err()
            .to_string()
    });
    assert_eq!(refused, "Bind for 0.0.0.0:8090 failed: port is already allocated");

    // route_localnet on the bridges must not open the host's loopback
    // services to containers, nor published ports to packets for 127.0.0.1
    // from the outside (CVE-2020-8558).
    let _private = Echo::start(&host, "127.0.0.1:7777");
    assert!(ask(&host, "127.0.0.1:7777").is_some());
    for (ns, via) in [(&evil, "10.88.0.1"), (&outside, "192.0.2.2")] {
        ns.ip("addr del 127.0.0.1/8 dev lo");
        ns.sysctl("net.ipv4.conf.eth0.route_localnet=1");
        ns.ip(&format!("route add 127.0.0.0/8 via {via}"));
    }
    assert_eq!(ask(&evil, "127.0.0.1:7777"), None);
    assert_eq!(ask(&evil, "127.0.0.1:8080"), None);
    assert_eq!(ask(&outside, "127.0.0.1:8080"), None);
    drop(_private);

    // Unpublished: gone at the next apply.
    let db3 = db.clone();
    host.run_in(move || {
        let conn = open_db(&db3);
        store::unpublish_ports(&conn, "c1").unwrap();
        nft::sync(&conn, nft::TABLE).unwrap();
    });
    assert_eq!(ask(&host, "127.0.0.1:8080"), None);
    assert_eq!(ask(&outside, "192.0.2.2:8080"), None);

    host.run_in(|| nft::remove_all(nft::TABLE)).unwrap();
    assert!(!host.ruleset().contains("table inet berth {"));
    drop((_web, _secret, _far));
    drop((host, outside, c1, c2, c3, c4, evil));
    let tags = ["host", "out", "c1", "c2", "c3", "c4", "evil"];
    assert_eq!(leftover_namespaces(&tags), Vec::<String>::new());
}

#[test]
fn golden_script_is_accepted_by_nft() {
    if !root("golden_script_is_accepted_by_nft") {
        return;
    }
    // Every kind of rule the generator writes, IPv6 and SCTP included,
    // parsed and loaded by the real nft.
    let ns = Netns::new("golden");
    let dir = tempfile::tempdir().unwrap();
    let conn = open_db(&dir.path().join("berth.db"));
    let mut six = network(20, "six", "br-6", "10.89.5.0/24", false);
    six.subnets
        .extend(consolidate(&["fd00:6::/64".into()], &[], &[]).unwrap());
    let mut quiet = network(21, "quiet", "br-q", "10.89.6.0/24", false);
    quiet.options.insert(store::OPT_MASQUERADE.into(), "false".into());
    store::create_network(&conn, &six, Pools::DEFAULT).unwrap();
    store::create_network(&conn, &quiet, Pools::DEFAULT).unwrap();
    store::connect(&conn, "six", &endpoint(1, "c1")).unwrap();
    let records = Records {
        ports: vec![
            store::PublishedPort {
                container: "c1".into(),
                host_ip: None,
                host_port: 8080,
                proto: berth_network::ports::Proto::Tcp,
                container_port: 80,
            },
            store::PublishedPort {
                container: "c1".into(),
                host_ip: Some("::1".parse().unwrap()),
                host_port: 9000,
                proto: berth_network::ports::Proto::Sctp,
                container_port: 9,
            },
        ],
        ..store::records(&conn).unwrap()
    };
    let script = Firewall::from_records(&records).script(nft::TABLE);
    assert!(script.contains("tcp . 8080 : fd00:6::2 . 80"), "{script}");
    ns.run_in(move || nft::apply(nft::TABLE, &script)).unwrap();
    let listed = ns.ruleset();
    assert!(listed.contains("tcp . 8080 : fd00:6::2 . 80"), "{listed}");
    assert!(listed.contains("::1 . sctp . 9000 : fd00:6::2 . 9"), "{listed}");
    assert!(!listed.contains("oifname != \"br-q\""), "{listed}");
    drop(ns);
    assert_eq!(leftover_namespaces(&["golden"]), Vec::<String>::new());
}
