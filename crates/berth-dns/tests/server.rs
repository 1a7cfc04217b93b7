//! The real `berth-dns` binary on 127.0.0.1, its upstream a UDP/TCP socket of the test on
//! 127.0.0.1 that answers `example.com` itself: no traffic leaves loopback, no root needed.
//! Queries come from a client written here with the crate's wire module.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_dns::names::reverse_name;
use berth_dns::wire::{flags, rcode, rtype, Edns, Message, Name, Question, RData, Record, CLASS_IN};
use berth_dns::{Config, Entry};

/// The binary under test; `BERTH_DNS_BIN` points the measurements at another build (release).
fn bin() -> PathBuf {
    std::env::var_os("BERTH_DNS_BIN").map_or_else(|| env!("CARGO_BIN_EXE_berth-dns").into(), PathBuf::from)
}
const FULL_ID: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

/// A port free for both UDP and TCP on 127.0.0.1.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The test's upstream resolver: `example.com` A is 192.0.2.1, `fail.example` gets
/// SERVFAIL, `silent.example` nothing; everything else NXDOMAIN. UDP and TCP on one port.
struct Upstream {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn upstream_reply(query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::parse(query).ok()?;
    let question = q.questions.first()?.clone();
    let key = question.name.key()?;
    let mut r = Message {
        id: q.id,
        flags: flags::QR | flags::RD | flags::RA,
        questions: vec![question.clone()],
        additional: q.additional.clone(),
        ..Message::default()
    };
    match key.as_str() {
        "silent.example" => return None,
        "fail.example" => r.flags |= rcode::SERVFAIL,
        "example.com" if question.qtype == rtype::A => r.answers.push(Record {
            name: question.name.clone(),
            rtype: rtype::A,
            class: CLASS_IN,
            ttl: 300,
            data: RData::A([192, 0, 2, 1].into()),
        }),
        "big.example" => {
            // 100 A records: over any UDP size a client offers here.
            for i in 0..100u8 {
                r.answers.push(Record {
                    name: question.name.clone(),
                    rtype: rtype::A,
                    class: CLASS_IN,
                    ttl: 300,
                    data: RData::A([198, 51, 100, i].into()),
                });
            }
        }
        _ => r.flags |= rcode::NXDOMAIN,
    }
    Some(r.to_bytes().unwrap())
}

impl Upstream {
    fn start() -> Upstream {
        // A port free for both: the UDP one's TCP twin may be taken.
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (queries.clone(), stop.clone());
        let udp_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 65535];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, from)) = udp.recv_from(&mut buf) {
                    q.fetch_add(1, Ordering::Relaxed);
                    if let Some(mut reply) = upstream_reply(&buf[..n]) {
                        // As a real server: over 512 bytes without EDNS, truncated.
                        let limit = Message::parse(&buf[..n])
                            .ok()
                            .and_then(|m| m.edns().ok().flatten())
                            .map_or(512, |e| e.udp_size as usize);
                        if reply.len() > limit {
                            let mut m = Message::parse(&reply).unwrap();
                            m.flags |= flags::TC;
                            m.answers.clear();
                            reply = m.to_bytes().unwrap();
                        }
                        udp.send_to(&reply, from).unwrap();
                    }
                }
            }
        });
        let (q, s) = (queries.clone(), stop.clone());
        let tcp_thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut len = [0u8; 2];
                if conn.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
                conn.read_exact(&mut query).unwrap();
                q.fetch_add(1, Ordering::Relaxed);
                if let Some(reply) = upstream_reply(&query) {
                    conn.write_all(&(reply.len() as u16).to_be_bytes()).unwrap();
                    conn.write_all(&reply).unwrap();
                }
            }
        });
        Upstream {
            addr,
            queries,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn config(port: u16, upstream: &[SocketAddr]) -> Config {
    Config {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], port))],
        upstream: upstream.to_vec(),
        domains: vec!["mynet".into()],
        records: vec![
            Entry {
                name: "web".into(),
                aliases: vec!["db.alias".into(), "shared".into()],
                id: Some(FULL_ID.into()),
                addresses: vec!["10.89.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
            },
            Entry {
                name: "db".into(),
                aliases: vec!["shared".into()],
                id: None,
                addresses: vec!["10.89.0.3".parse().unwrap()],
            },
        ],
        ttl: 0,
        // Short, so the tests of silent upstreams are quick; not so short that a stalled
        // test upstream on a loaded machine counts as silent.
        upstream_timeout_ms: 500,
        views: Vec::new(),
    }
}

/// A server run in the foreground as the test's child (killed by pid if a test fails).
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Server {
    fn start(config: &Config) -> Server {
        let dir = tempfile::tempdir().unwrap();
        berth_dns::write_config(&dir.path().join("dns.json"), config).unwrap();
        let pid_file = dir.path().join("dns.pid");
        let child = Command::new(bin())
            .arg("--config")
            .arg(dir.path().join("dns.json"))
            .arg("--pid-file")
            .arg(&pid_file)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while !pid_file.exists() {
            assert!(Instant::now() < until, "berth-dns did not write its pid file");
            std::thread::sleep(Duration::from_millis(2));
        }
        Server {
            child,
            addr: config.listen[0],
            dir,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("dns.json")
    }

    /// Waits for the server to exit by itself.
    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < until, "berth-dns still runs");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().unwrap().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn query_bytes(id: u16, name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    Message {
        id,
        flags: flags::RD,
        questions: vec![Question {
            name: Name::from_dotted(name).unwrap(),
            qtype,
            qclass: CLASS_IN,
        }],
        additional: edns
            .map(|udp_size| {
                Edns {
                    udp_size,
                    ext_rcode: 0,
                    version: 0,
                    flags: 0,
                    options: vec![],
                }
                .to_record()
            })
            .into_iter()
            .collect(),
        ..Message::default()
    }
    .to_bytes()
    .unwrap()
}

/// Asks over UDP; `None` when no reply came within `wait`.
fn ask_udp_within(server: SocketAddr, name: &str, qtype: u16, wait: Duration) -> Option<Message> {
    ask_udp_from([127, 0, 0, 1], server, name, qtype, wait)
}

/// Asks over UDP from the loopback address `from`.
fn ask_udp_from(from: [u8; 4], server: SocketAddr, name: &str, qtype: u16, wait: Duration) -> Option<Message> {
    let sock = UdpSocket::bind(SocketAddr::from((from, 0))).unwrap();
    sock.connect(server).unwrap();
    sock.set_read_timeout(Some(wait)).unwrap();
    let id = (std::process::id() as u16) ^ 0x5a5a;
    sock.send(&query_bytes(id, name, qtype, None)).unwrap();
    let mut buf = [0u8; 65535];
    let n = sock.recv(&mut buf).ok()?;
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(m.id, id, "the reply carries the query's id");
    assert_eq!(m.questions[0].name, Name::from_dotted(name).unwrap());
    Some(m)
}

fn ask_udp(server: SocketAddr, name: &str, qtype: u16) -> Message {
    ask_udp_within(server, name, qtype, Duration::from_secs(5)).expect("a reply")
}

fn ask_tcp(server: SocketAddr, name: &str, qtype: u16) -> Message {
    ask_tcp_from([127, 0, 0, 1], server, name, qtype)
}

/// Asks over TCP from the loopback address `from`.
fn ask_tcp_from(from: [u8; 4], server: SocketAddr, name: &str, qtype: u16) -> Message {
    let sock = connect_tcp_from(from, server);
    let mut s = sock;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let q = query_bytes(0x7777, name, qtype, None);
    s.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
    s.write_all(&q).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut reply).unwrap();
    let m = Message::parse(&reply).unwrap();
    assert_eq!(m.id, 0x7777);
    m
}

fn rcode_of(m: &Message) -> u16 {
    m.flags & 0xF
}

/// The answers as text: addresses and PTR names.
fn answers(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => a.to_string(),
            RData::Aaaa(a) => a.to_string(),
            RData::Ptr(n) => n.to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn answers_local_names_and_forwards_the_rest() {
    let up = Upstream::start();
    let server = Server::start(&config(free_port(), &[up.addr]));
    let s = server.addr;

    let m = ask_udp(s, "web", rtype::A);
    assert_eq!(
        (rcode_of(&m), answers(&m)),
        (rcode::NOERROR, vec!["10.89.0.2".to_string()])
    );
    assert!(m.flags & flags::AA != 0 && m.flags & flags::RA != 0);
    assert_eq!(m.answers[0].ttl, 0);
    assert_eq!(answers(&ask_udp(s, "WEB.mynet.", rtype::A)), ["10.89.0.2"]);
    assert_eq!(answers(&ask_udp(s, "db.alias", rtype::A)), ["10.89.0.2"]);
    assert_eq!(answers(&ask_udp(s, "db.alias.mynet", rtype::AAAA)), ["fd00::2"]);
    assert_eq!(answers(&ask_udp(s, &FULL_ID[..12], rtype::A)), ["10.89.0.2"]);
    assert_eq!(answers(&ask_udp(s, &FULL_ID[..40], rtype::A)), ["10.89.0.2"]);
    assert_eq!(answers(&ask_udp(s, "web", rtype::AAAA)), ["fd00::2"]);
    let mut shared = answers(&ask_udp(s, "shared", rtype::A));
    shared.sort();
    assert_eq!(shared, ["10.89.0.2", "10.89.0.3"]);
    // The name is there without an AAAA record: NOERROR, no answer, not forwarded.
    let before = up.queries.load(Ordering::Relaxed);
    let m = ask_udp(s, "db", rtype::AAAA);
    assert_eq!((rcode_of(&m), m.answers.len()), (rcode::NOERROR, 0));
    let m = ask_udp(s, "nothere.mynet", rtype::A);
    assert_eq!(rcode_of(&m), rcode::NXDOMAIN);
    assert!(m.flags & flags::AA != 0);
    assert_eq!(
        up.queries.load(Ordering::Relaxed),
        before,
        "local names never go upstream"
    );

    let ptr = reverse_name("10.89.0.3".parse().unwrap()).to_string();
    assert_eq!(answers(&ask_udp(s, &ptr, rtype::PTR)), ["db.mynet."]);
    let ptr6 = reverse_name("fd00::2".parse().unwrap()).to_string();
    assert_eq!(answers(&ask_udp(s, &ptr6, rtype::PTR)), ["web.mynet."]);

    // Forwarded: the upstream's answer, with the client's id (ask_udp checks it).
    let m = ask_udp(s, "example.com", rtype::A);
    assert_eq!(
        (rcode_of(&m), answers(&m)),
        (rcode::NOERROR, vec!["192.0.2.1".to_string()])
    );
    assert!(m.flags & flags::AA == 0);
    assert_eq!(rcode_of(&ask_udp(s, "unknown", rtype::A)), rcode::NXDOMAIN);
    assert_eq!(rcode_of(&ask_udp(s, "unknown.example.org", rtype::A)), rcode::NXDOMAIN);
    let ptr = reverse_name("192.0.2.9".parse().unwrap()).to_string();
    assert_eq!(rcode_of(&ask_udp(s, &ptr, rtype::PTR)), rcode::NXDOMAIN);
    assert!(up.queries.load(Ordering::Relaxed) >= before + 4);

    // TCP: local and forwarded.
    assert_eq!(answers(&ask_tcp(s, "web.mynet", rtype::A)), ["10.89.0.2"]);
    assert_eq!(answers(&ask_tcp(s, "example.com", rtype::A)), ["192.0.2.1"]);
    // Too big for UDP: TC, then the whole answer over TCP (forwarded over TCP).
    let m = ask_udp(s, "big.example", rtype::A);
    assert!(m.flags & flags::TC != 0);
    assert_eq!(ask_tcp(s, "big.example", rtype::A).answers.len(), 100);
}

#[test]
fn many_clients_at_once_get_their_own_answers() {
    let up = Upstream::start();
    let server = Server::start(&config(free_port(), &[up.addr]));
    // 8 clients, 24 queries each sent back to back before any reply is read (192 datagrams:
    // within the listening socket's default buffer, ~250 small datagrams); the same ids from
    // different clients, so only the server's id rewriting keeps them apart.
    let clients: Vec<UdpSocket> = (0..8)
        .map(|_| {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            c.connect(server.addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c
        })
        .collect();
    for c in &clients {
        for id in 0..24u16 {
            let (name, qtype) = if id % 2 == 0 {
                ("example.com", rtype::A)
            } else {
                ("web", rtype::A)
            };
            c.send(&query_bytes(id, name, qtype, Some(1232))).unwrap();
        }
    }
    for c in &clients {
        let mut seen = [false; 24];
        let mut buf = [0u8; 4096];
        for _ in 0..24 {
            let n = c.recv(&mut buf).expect("every query gets a reply");
            let m = Message::parse(&buf[..n]).unwrap();
            let want = if m.id % 2 == 0 { "192.0.2.1" } else { "10.89.0.2" };
            assert_eq!(answers(&m), [want], "reply {}", m.id);
            assert!(!seen[m.id as usize], "one reply per query");
            seen[m.id as usize] = true;
        }
    }
}

#[test]
fn servfail_when_no_upstream_answers() {
    let up = Upstream::start();
    // The upstream that says nothing to `silent.example`, and a second that is not there
    // (a closed port: ICMP unreachable).
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let server = Server::start(&config(free_port(), &[up.addr, closed]));
    let start = Instant::now();
    let m = ask_udp(server.addr, "silent.example", rtype::A);
    let took = start.elapsed();
    assert_eq!(rcode_of(&m), rcode::SERVFAIL);
    assert!(took < Duration::from_secs(3), "SERVFAIL after {took:?}");
    // The upstream's own SERVFAIL goes to the next upstream, then back to the client.
    assert_eq!(
        rcode_of(&ask_udp(server.addr, "fail.example", rtype::A)),
        rcode::SERVFAIL
    );
    assert_eq!(
        rcode_of(&ask_tcp(server.addr, "silent.example", rtype::A)),
        rcode::SERVFAIL
    );
    // The working upstream still answers after all that.
    assert_eq!(answers(&ask_udp(server.addr, "example.com", rtype::A)), ["192.0.2.1"]);

    // With no upstream at all: SERVFAIL at once.
    let alone = Server::start(&config(free_port(), &[]));
    let m = ask_udp(alone.addr, "example.com", rtype::A);
    assert_eq!(rcode_of(&m), rcode::SERVFAIL);
    // Local names still work.
    assert_eq!(answers(&ask_udp(alone.addr, "web", rtype::A)), ["10.89.0.2"]);
}

/// A TCP connection to `server` from the loopback address `from` (bound first, as std's
/// `TcpStream::connect` cannot).
fn connect_tcp_from(from: [u8; 4], server: SocketAddr) -> TcpStream {
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    bind(&fd, &SocketAddr::from((from, 0))).unwrap();
    connect(&fd, &server).unwrap();
    TcpStream::from(fd)
}

/// A view's own upstream (a container's `--dns`): its clients' forwarded names go there,
/// over UDP and TCP, and everyone else's to the server's upstream.
#[test]
fn a_views_clients_forward_to_their_own_upstream() {
    let (shared, own) = (Upstream::start(), Upstream::start());
    let mut cfg = config(free_port(), &[shared.addr]);
    cfg.views.push(berth_dns::config::View {
        clients: vec!["127.0.0.2".parse().unwrap()],
        records: Vec::new(),
        upstream: vec![own.addr],
    });
    let server = Server::start(&cfg);
    let wait = Duration::from_secs(5);
    let count = |u: &Upstream| u.queries.load(Ordering::Relaxed);

    let m = ask_udp_from([127, 0, 0, 2], server.addr, "example.com", rtype::A, wait).expect("a reply");
    assert_eq!(answers(&m), ["192.0.2.1"]);
    assert_eq!((count(&shared), count(&own)), (0, 1));
    assert_eq!(
        answers(&ask_tcp_from([127, 0, 0, 2], server.addr, "example.com", rtype::A)),
        ["192.0.2.1"]
    );
    assert_eq!((count(&shared), count(&own)), (0, 2));
    // Local names stay local for them too.
    let m = ask_udp_from([127, 0, 0, 2], server.addr, "web", rtype::A, wait).expect("a reply");
    assert_eq!(answers(&m), ["10.89.0.2"]);
    // Another client: the server's upstream.
    assert_eq!(answers(&ask_udp(server.addr, "example.com", rtype::A)), ["192.0.2.1"]);
    assert_eq!(answers(&ask_tcp(server.addr, "example.com", rtype::A)), ["192.0.2.1"]);
    assert_eq!((count(&shared), count(&own)), (2, 2));
}

#[test]
fn falls_back_to_the_next_upstream() {
    let up = Upstream::start();
    // A silent first upstream: a socket that reads nothing.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = Server::start(&config(free_port(), &[silent.local_addr().unwrap(), up.addr]));
    let m = ask_udp(server.addr, "example.com", rtype::A);
    assert_eq!(answers(&m), ["192.0.2.1"]);
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let mut asked = 0;
    while silent.recv(&mut buf).is_ok() {
        asked += 1;
    }
    assert!(asked >= 1, "the silent upstream was asked first");
    // The one that answered is asked first from now on: the silent one is not asked again.
    assert_eq!(answers(&ask_udp(server.addr, "example.com", rtype::A)), ["192.0.2.1"]);
    assert!(silent.recv(&mut buf).is_err(), "the silent upstream was asked again");
}

#[test]
fn reload_picks_up_changes() {
    let up = Upstream::start();
    let mut cfg = config(free_port(), &[up.addr]);
    let server = Server::start(&cfg);
    assert_eq!(rcode_of(&ask_udp(server.addr, "cache", rtype::A)), rcode::NXDOMAIN);
    cfg.records.push(Entry {
        name: "cache".into(),
        aliases: vec![],
        id: None,
        addresses: vec!["10.89.0.4".parse().unwrap()],
    });
    berth_dns::write_config(&server.config_path(), &cfg).unwrap();
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let m = ask_udp(server.addr, "cache", rtype::A);
        if answers(&m) == ["10.89.0.4"] {
            break;
        }
        assert!(Instant::now() < until, "the new record never showed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // An invalid file is ignored; the last good configuration stays.
    std::fs::write(server.config_path(), b"{not json").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(answers(&ask_udp(server.addr, "cache", rtype::A)), ["10.89.0.4"]);
    // A removed record goes away.
    cfg.records.pop();
    berth_dns::write_config(&server.config_path(), &cfg).unwrap();
    let until = Instant::now() + Duration::from_secs(2);
    while rcode_of(&ask_udp(server.addr, "cache", rtype::A)) != rcode::NXDOMAIN {
        assert!(Instant::now() < until, "the removed record stayed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sighup_reloads_at_once() {
    let mut cfg = config(free_port(), &[]);
    let server = Server::start(&cfg);
    cfg.records[0].addresses = vec!["10.89.0.9".parse().unwrap()];
    berth_dns::write_config(&server.config_path(), &cfg).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    // The signal is pending before the query leaves, and the server reads its signals
    // first: the very next answer is the new one, without waiting for the periodic check.
    assert_eq!(answers(&ask_udp(server.addr, "web", rtype::A)), ["10.89.0.9"]);
}

#[test]
fn an_edit_in_place_that_keeps_size_and_mtime_is_seen() {
    let server = Server::start(&config(free_port(), &[]));
    let path = server.config_path();
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("10.89.0.2", "10.89.0.9");
    std::fs::write(&path, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(before)
        .unwrap();
    let until = Instant::now() + Duration::from_secs(2);
    while answers(&ask_udp(server.addr, "web", rtype::A)) != ["10.89.0.9"] {
        assert!(Instant::now() < until, "the edit was not seen");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The network's gateway address may not be on the host yet when the server starts (or be
/// an IPv6 address still in duplicate address detection): it binds anyway. 192.0.2.53 and
/// 2001:db8::53 are documentation addresses no interface here has; nothing is sent to them.
#[test]
fn listens_on_addresses_the_host_does_not_have_yet() {
    let port = free_port();
    let mut cfg = config(port, &[]);
    cfg.listen.push(SocketAddr::from(([192, 0, 2, 53], port)));
    cfg.listen.push("[2001:db8::53]:53".parse().unwrap());
    cfg.listen[2].set_port(port);
    let server = Server::start(&cfg);
    assert_eq!(answers(&ask_udp(server.addr, "web", rtype::A)), ["10.89.0.2"]);
    assert_eq!(answers(&ask_tcp(server.addr, "web", rtype::A)), ["10.89.0.2"]);
}

#[test]
fn sigterm_and_a_deleted_config_end_it() {
    let mut server = Server::start(&config(free_port(), &[]));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = server.wait_exit(Duration::from_secs(2));
    assert!(status.success(), "{status}");
    assert!(!server.dir.path().join("dns.pid").exists(), "the pid file is removed");

    let mut server = Server::start(&config(free_port(), &[]));
    std::fs::remove_file(server.config_path()).unwrap();
    let status = server.wait_exit(Duration::from_secs(2));
    assert!(status.success(), "{status}");
    assert!(!server.dir.path().join("dns.pid").exists());
    // Its port is free again.
    UdpSocket::bind(server.addr).unwrap();
}

#[test]
fn the_library_spawns_finds_and_stops_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg_path, pid_file) = (dir.path().join("dns.json"), dir.path().join("dns.pid"));
    let cfg = config(free_port(), &[]);
    berth_dns::write_config(&cfg_path, &cfg).unwrap();
    let pid = berth_dns::spawn(&bin(), &cfg_path, &pid_file).unwrap();
    // It serves when spawn returns.
    assert_eq!(answers(&ask_udp(cfg.listen[0], "web", rtype::A)), ["10.89.0.2"]);
    assert_eq!(berth_dns::running(&pid_file), Some(pid));
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap().trim(), pid.to_string());
    // A detached daemon: its own session, not the test's child.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    assert_eq!(fields[3], pid.to_string(), "session id is its own pid");
    assert_ne!(fields[1].parse::<u32>().unwrap(), std::process::id());

    // It keeps none of its caller's descriptors: standard streams on /dev/null, its sockets
    // and its signalfd.
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let target = std::fs::read_link(fd.unwrap().path()).unwrap();
        let t = target.to_string_lossy();
        assert!(
            t == "/dev/null" || t.starts_with("socket:") || t == "anon_inode:[signalfd]",
            "inherited {t}"
        );
    }

    // A second one on the same address fails at once, saying why.
    let other = dir.path().join("other.json");
    berth_dns::write_config(&other, &cfg).unwrap();
    let start = Instant::now();
    let err = berth_dns::spawn(&bin(), &other, &dir.path().join("other.pid")).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    let text = err.to_string();
    assert!(
        text.contains(&format!("binding {} (udp)", cfg.listen[0])) && text.contains("in use"),
        "{text}"
    );
    assert!(!dir.path().join("other.pid").exists());

    assert!(berth_dns::stop(&pid_file).unwrap());
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || berth_dns::running(&pid_file).is_none());
    assert!(!pid_file.exists());
    assert_eq!(berth_dns::running(&pid_file), None);
    assert!(!berth_dns::stop(&pid_file).unwrap(), "stopping twice is fine");
    // A pid file naming some other process is not trusted.
    std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    assert_eq!(berth_dns::running(&pid_file), None);
    assert!(!berth_dns::stop(&pid_file).unwrap());
    assert!(!pid_file.exists(), "a stale pid file is removed");
}

#[test]
fn bad_configurations_fail_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dns.json");
    std::fs::write(&path, r#"{"listen": ["127.0.0.1:1"], "records": [{"name": "a..b"}]}"#).unwrap();
    let out = Command::new(bin()).arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dns.json: name \"a..b\": not a domain name"), "{err}");
    let out = Command::new(bin()).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: berth-dns --config FILE"));
}

/// Round-trip times on loopback: a local answer and a forwarded one (through the test's
/// upstream), medians over 200 queries each; and the server's resident size. Printed for
/// the report (`--nocapture`), with bounds loose enough for a debug build on a busy VM.
#[test]
fn latency_and_size() {
    let up = Upstream::start();
    let server = Server::start(&config(free_port(), &[up.addr]));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(server.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let median = |name: &str| {
        let mut times = Vec::new();
        let mut buf = [0u8; 1024];
        for id in 0..200u16 {
            let start = Instant::now();
            sock.send(&query_bytes(id, name, rtype::A, None)).unwrap();
            let n = sock.recv(&mut buf).unwrap();
            times.push(start.elapsed());
            assert_eq!(Message::parse(&buf[..n]).unwrap().id, id);
        }
        times.sort();
        times[times.len() / 2]
    };
    let local = median("web");
    let forwarded = median("example.com");
    // The same questions straight to the test's upstream: what forwarding adds is the rest.
    sock.connect(up.addr).unwrap();
    let direct = median("example.com");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let rss = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().to_string();
    println!("local answer median {local:?}, forwarded median {forwarded:?} (upstream alone {direct:?}), {rss}");
    assert!(local < Duration::from_millis(5), "local {local:?}");
    assert!(forwarded < Duration::from_millis(20), "forwarded {forwarded:?}");
    let kib: u64 = rss.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(kib < 16 * 1024, "{rss}");
}

/// What a container's resolver does, with busybox's nslookup (which takes SERVER:PORT).
#[test]
fn busybox_nslookup_resolves_through_it() {
    let Ok(busybox) = which("busybox") else {
        eprintln!("busybox not installed: skipped");
        return;
    };
    let up = Upstream::start();
    let server = Server::start(&config(free_port(), &[up.addr]));
    let nslookup = |args: &[&str]| {
        let out = Command::new(&busybox)
            .arg("nslookup")
            .args(args)
            .arg(server.addr.to_string())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = nslookup(&["web"]);
    assert!(
        out.contains("Address: 10.89.0.2") && out.contains("Address: fd00::2"),
        "{out}"
    );
    let out = nslookup(&["-type=A", "db.alias.mynet"]);
    assert!(out.contains("Address: 10.89.0.2"), "{out}");
    let out = nslookup(&["10.89.0.3"]);
    assert!(out.contains("3.0.89.10.in-addr.arpa\tname = db.mynet"), "{out}");
    let out = nslookup(&["-type=A", "example.com"]);
    assert!(out.contains("Address: 192.0.2.1"), "{out}");
}

fn which(program: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or(())
}
