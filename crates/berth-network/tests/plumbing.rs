//! Root tests of the netlink plumbing against the real kernel.
//!
//! Each test makes its own "host" network namespace and puts the bridge and
//! the host ends of the veths there, so the machine's own namespace is never
//! touched; the "containers" are namespaces made with `netns::create`.
//! Traffic only flows between these namespaces. Every namespace file is
//! removed at the end (also on failure), and the test checks that no link,
//! file or mount is left.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_network::endpoint::{self, Bridge, Endpoint};
use berth_network::netlink::{Handle, IfAddr, MacAddr, NewLink, Request};
use berth_network::netns;

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipping: needs root");
    false
}

/// A temporary directory of namespace files, all removed on drop.
struct Lab {
    dir: tempfile::TempDir,
    made: Vec<PathBuf>,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            dir: tempfile::tempdir().unwrap(),
            made: Vec::new(),
        }
    }

    fn netns(&mut self, name: &str) -> PathBuf {
        let path = netns::path(self.dir.path(), name);
        netns::create(&path).unwrap();
        self.made.push(path.clone());
        path
    }

    /// Namespace files and mounts of this lab still present.
    fn leftovers(&self) -> Vec<String> {
        let dir = self.dir.path().to_str().unwrap().to_owned();
        let mut left: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&dir))
            .map(str::to_owned)
            .collect();
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("netns")) {
            left.extend(entries.map(|e| e.unwrap().path().display().to_string()));
        }
        left
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for path in self.made.iter().rev() {
            let _ = netns::remove(path);
        }
    }
}

fn ifaddr(s: &str) -> IfAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Opens a netlink handle inside a namespace.
fn handle_in(ns: &Path) -> Handle {
    netns::run_in(ns, Handle::open).unwrap().unwrap()
}

/// A TCP exchange: a listener in `server_ns` on `addr`, a client in `client_ns`.
fn exchange(server_ns: &Path, client_ns: &Path, addr: SocketAddr) {
    let listener = netns::run_in(server_ns, || TcpListener::bind(addr)).unwrap().unwrap();
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            let (mut conn, peer) = listener.accept().unwrap();
            let mut buf = [0u8; 4];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(b"pong").unwrap();
            (buf, peer)
        });
        let mut client = netns::run_in(client_ns, || TcpStream::connect_timeout(&addr, Duration::from_secs(5)))
            .unwrap()
            .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        client.write_all(b"ping").unwrap();
        let mut reply = [0u8; 4];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"pong");
        let (got, peer) = server.join().unwrap();
        assert_eq!(&got, b"ping");
        eprintln!("{peer} -> {addr}: ok");
    });
}

const V4_GW: &str = "198.18.7.1/24";
const V6_GW: &str = "fd42:b5::1/64";

fn endpoint<'a>(
    netns: &'a Path,
    host_ifname: &'a str,
    addresses: &'a [IfAddr],
    gateways: &'a [IpAddr],
) -> Endpoint<'a> {
    Endpoint {
        bridge: "bt0",
        bridge_index: None,
        netns,
        host_ifname,
        ifname: "eth0",
        addresses,
        gateways,
        mtu: 1400,
        mac: None,
    }
}

#[test]
fn two_containers_talk_over_a_bridge_in_v4_and_v6() {
    if !root() {
        return;
    }
    let mut lab = Lab::new();
    let host = lab.netns("host");
    let c1 = lab.netns("c1");
    let c2 = lab.netns("c2");

    let gateways = [ifaddr(V4_GW), ifaddr(V6_GW)];
    let bridge = Bridge {
        name: "bt0",
        addresses: &gateways,
        mtu: 1400,
    };
    let (mut nl, index) = netns::run_in(&host, || {
        let mut nl = Handle::open().unwrap();
        let index = endpoint::ensure_bridge(&mut nl, &bridge, Path::new("/proc/sys"))
            .unwrap()
            .index;
        // Again: nothing to do, same bridge.
        assert_eq!(
            endpoint::ensure_bridge(&mut nl, &bridge, Path::new("/proc/sys"))
                .unwrap()
                .index,
            index
        );
        // The sysctls of this namespace (the thread's), not the machine's.
        for key in [
            "net/ipv4/ip_forward",
            "net/ipv4/conf/bt0/route_localnet",
            "net/ipv6/conf/all/forwarding",
        ] {
            assert_eq!(
                std::fs::read_to_string(Path::new("/proc/sys").join(key))
                    .unwrap()
                    .trim(),
                "1",
                "{key}"
            );
        }
        (nl, index)
    })
    .unwrap();
    let br = nl.link("bt0").unwrap().unwrap();
    assert_eq!((br.kind.as_deref(), br.mtu, br.up), (Some("bridge"), 1400, true));
    assert_eq!(br.mac, Some(MacAddr([0x02, 0x42, 198, 18, 7, 1])));
    let mut on_bridge = nl.addresses(index).unwrap();
    on_bridge.retain(|a| gateways.contains(a));
    assert_eq!(on_bridge.len(), 2, "each gateway address once: {on_bridge:?}");

    // Addresses outside the bridge's subnets, reached through the default routes.
    let lo = nl.link("lo").unwrap().unwrap();
    nl.execute(&[
        Request::add_address(&lo, ifaddr("198.19.0.1/32")),
        Request::add_address(&lo, ifaddr("fd42:ff::1/128")),
    ])
    .unwrap();

    let routes = [ip("198.18.7.1"), ip("fd42:b5::1")];
    let a1 = [ifaddr("198.18.7.2/24"), ifaddr("fd42:b5::2/64")];
    let a2 = [ifaddr("198.18.7.3/24"), ifaddr("fd42:b5::3/64")];
    let (h1, h2) = (
        endpoint::host_ifname("c1c1c1c1c1c1", "ee"),
        endpoint::host_ifname("c2c2c2c2c2c2", "ee"),
    );
    let mac1 = endpoint::attach(&mut nl, &endpoint(&c1, &h1, &a1, &routes)).unwrap();
    assert_eq!(mac1.to_string(), "02:42:c6:12:07:02");
    let given = MacAddr([0x02, 0, 0, 0, 0, 0x33]);
    let mac2 = endpoint::attach(
        &mut nl,
        &Endpoint {
            mac: Some(given),
            ..endpoint(&c2, &h2, &a2, &routes)
        },
    )
    .unwrap();
    assert_eq!(mac2, given);

    let port = nl.link(&h1).unwrap().unwrap();
    assert_eq!(
        (port.kind.as_deref(), port.master, port.mtu, port.up),
        (Some("veth"), Some(index), 1400, true)
    );
    let mut in_c1 = handle_in(&c1);
    let eth0 = in_c1.link("eth0").unwrap().unwrap();
    assert_eq!((eth0.mac, eth0.mtu, eth0.up), (Some(mac1), 1400, true));
    let addrs = in_c1.addresses(eth0.index).unwrap();
    assert!(a1.iter().all(|a| addrs.contains(a)), "{addrs:?}");
    assert!(in_c1.link("lo").unwrap().unwrap().up, "lo is up in a new namespace");

    // Container to container over the bridge, container to gateway, and
    // through the default route to the "host"'s other addresses.
    exchange(&c2, &c1, "198.18.7.3:7001".parse().unwrap());
    exchange(&c2, &c1, "[fd42:b5::3]:7001".parse().unwrap());
    exchange(&host, &c1, "198.18.7.1:7002".parse().unwrap());
    exchange(&host, &c2, "198.19.0.1:7003".parse().unwrap());
    exchange(&host, &c2, "[fd42:ff::1]:7003".parse().unwrap());

    // Attaching again replaces the stale pair.
    endpoint::attach(&mut nl, &endpoint(&c1, &h1, &a1, &routes)).unwrap();
    exchange(&c2, &c1, "198.18.7.3:7004".parse().unwrap());

    // Removing a container's namespace takes its pair along (the kernel
    // does it in the background).
    let c3 = lab.netns("c3");
    let h3 = endpoint::host_ifname("c3c3c3c3c3c3", "ee");
    let a3 = [ifaddr("198.18.7.4/24")];
    endpoint::attach(&mut nl, &endpoint(&c3, &h3, &a3, &routes[..1])).unwrap();
    exchange(&c3, &c1, "198.18.7.4:7005".parse().unwrap());
    netns::remove(&c3).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while nl.link_index(&h3).unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "{h3} still there 10 s after its namespace was removed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    for h in [&h1, &h2] {
        endpoint::detach(&mut nl, h).unwrap();
        endpoint::detach(&mut nl, h).unwrap();
        assert_eq!(nl.link_index(h).unwrap(), None, "{h} left behind");
    }
    assert_eq!(in_c1.link("eth0").unwrap(), None, "the peer goes with the host end");
    endpoint::remove_bridge(&mut nl, "bt0").unwrap();
    endpoint::remove_bridge(&mut nl, "bt0").unwrap();
    assert_eq!(nl.link_index("bt0").unwrap(), None);

    drop((nl, in_c1));
    for ns in [&c1, &c2, &host] {
        netns::remove(ns).unwrap();
        assert!(!ns.exists());
    }
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}

#[test]
fn mistakes_are_reported_with_their_object() {
    if !root() {
        return;
    }
    let mut lab = Lab::new();
    let host = lab.netns("host");
    let c1 = lab.netns("c1");
    let mut nl = handle_in(&host);
    let none = tempfile::tempdir().unwrap();

    let gw = [ifaddr(V4_GW)];
    let a1 = [ifaddr("198.18.7.2/24")];
    let err = endpoint::attach(&mut nl, &endpoint(&c1, "vbx", &a1, &[])).unwrap_err();
    assert_eq!(err.to_string(), "bridge bt0 does not exist");

    // A link of another kind under the bridge's name.
    let ns = netns::NetNs::open(&c1).unwrap();
    use std::os::fd::AsFd;
    let peer = NewLink {
        netns: Some(ns.as_fd()),
        ..NewLink::named("other")
    };
    nl.execute(&[Request::new_veth(&NewLink::named("bt0"), &peer)]).unwrap();
    let bridge = Bridge {
        name: "bt0",
        addresses: &gw,
        mtu: 1500,
    };
    let err = endpoint::ensure_bridge(&mut nl, &bridge, none.path()).unwrap_err();
    assert_eq!(err.to_string(), "link bt0 exists and is not a bridge");
    let err = nl
        .execute(&[Request::new_veth(&NewLink::named("bt0"), &NewLink::named("x"))])
        .unwrap_err();
    assert_eq!(err.to_string(), "adding veth bt0 (peer x)");
    assert_eq!(err.errno(), Some(nix::errno::Errno::EEXIST));
    endpoint::detach(&mut nl, "bt0").unwrap();

    // The first failing request of a batch is the one reported.
    let lo = nl.link("lo").unwrap().unwrap();
    let err = nl
        .execute(&[
            Request::add_address(&lo, ifaddr("198.19.0.1/32")),
            Request::add_address(&lo, ifaddr("198.19.0.1/32")),
            Request::set_mtu("nothere0", 1500),
        ])
        .unwrap_err();
    assert_eq!(err.to_string(), "adding address 198.19.0.1/32 to lo");
    assert_eq!(err.errno(), Some(nix::errno::Errno::EEXIST));

    // A sysctl root without the bridge's directory: the bridge is made, the sysctl named.
    let br = Bridge {
        name: "bt1",
        addresses: &gw,
        mtu: 1500,
    };
    let err = endpoint::ensure_bridge(&mut nl, &br, none.path()).unwrap_err();
    assert!(err.to_string().starts_with("setting sysctl "), "{err}");
    assert!(nl.link_index("bt1").unwrap().is_some());

    drop((nl, ns));
    for ns in [&c1, &host] {
        netns::remove(ns).unwrap();
    }
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}

/// Setup and teardown of one endpoint with the bridge in place, as `berth
/// run` and `berth rm` do it, median of 100 runs; teardown once by `detach`
/// then removing the namespace, once by removing the namespace alone. Run
/// with `cargo test -p berth-network --release --test plumbing -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement"]
fn measure_endpoint_setup_and_teardown() {
    if !root() {
        return;
    }
    let mut lab = Lab::new();
    let host = lab.netns("host");
    let runroot = lab.dir.path().to_owned();
    let gateways = [ifaddr(V4_GW), ifaddr(V6_GW)];
    let bridge = Bridge {
        name: "bt0",
        addresses: &gateways,
        mtu: 1500,
    };
    let routes = [ip("198.18.7.1"), ip("fd42:b5::1")];
    let addrs = [ifaddr("198.18.7.2/24"), ifaddr("fd42:b5::2/64")];
    let proc_sys = Path::new("/proc/sys");
    netns::run_in(&host, || {
        let mut nl = Handle::open().unwrap();
        endpoint::ensure_bridge(&mut nl, &bridge, proc_sys).unwrap();
        for (detach, what) in [(true, "detach + netns remove"), (false, "netns remove alone")] {
            let mut times = Vec::new();
            let mut phases = [Duration::ZERO; 4];
            for i in 0..100 {
                let id = format!("{i:04x}{}", if detach { "d" } else { "n" });
                let ns = netns::path(&runroot, &id);
                let veth = endpoint::host_ifname(&id, "ee");
                let ep = Endpoint { mtu: 1500, ..endpoint(&ns, &veth, &addrs, &routes) };
                let t0 = Instant::now();
                endpoint::ensure_bridge(&mut nl, &bridge, proc_sys).unwrap();
                let t1 = Instant::now();
                netns::create(&ns).unwrap();
                let t2 = Instant::now();
                endpoint::attach(&mut nl, &ep).unwrap();
                let t3 = Instant::now();
                if detach {
                    endpoint::detach(&mut nl, &veth).unwrap();
                }
                netns::remove(&ns).unwrap();
                let t4 = Instant::now();
                times.push(t4 - t0);
                for (p, d) in phases.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
                    *p += d;
                }
            }
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            eprintln!(
                "ensure_bridge + netns create + attach + {what}, 100 runs: median {:.2} ms, p90 {:.2} ms, min {:.2} ms, max {:.2} ms",
                ms(times[50]),
                ms(times[90]),
                ms(times[0]),
                ms(times[99])
            );
            eprintln!(
                "  mean per phase: ensure_bridge {:.3} ms, netns create {:.3} ms, attach {:.3} ms, teardown {:.3} ms",
                ms(phases[0]) / 100.0,
                ms(phases[1]) / 100.0,
                ms(phases[2]) / 100.0,
                ms(phases[3]) / 100.0
            );
        }
        endpoint::remove_bridge(&mut nl, "bt0").unwrap();
    })
    .unwrap();
    netns::remove(&host).unwrap();
    assert_eq!(lab.leftovers(), Vec::<String>::new());
}
