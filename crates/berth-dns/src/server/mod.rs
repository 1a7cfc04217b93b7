//! The server: one thread, one `poll(2)` loop over the listening sockets (UDP and TCP on each
//! address), the TCP clients, the queries in flight upstream and a signalfd.
//!
//! - A query for a local name is answered at once ([`crate::query::answer`]).
//! - Any other goes to the upstream resolvers under a fresh random id, from a socket of its
//!   own connected to the upstream (so the kernel drops datagrams from anyone else and each
//!   query has its own random source port); the response must carry that id and the same
//!   question. An upstream that does not answer within `upstream_timeout_ms`, or answers
//!   SERVFAIL/REFUSED/NOTIMP, hands the query to the next one (the earlier tries stay open:
//!   a late answer still counts); the upstream that answered last is asked first. When every
//!   try is spent the client gets SERVFAIL. UDP queries are forwarded over UDP, TCP queries
//!   over TCP.
//! - Queries in flight and TCP clients are bounded ([`MAX_FORWARDS`], [`MAX_CONNS`]); a
//!   client over the bound gets SERVFAIL (UDP) or a closed connection (TCP).
//! - The configuration file is checked at most every [`CHECK_INTERVAL`] (inode, size, mtime
//!   and ctime from one `stat`) and on SIGHUP; a changed one is loaded (an invalid one is logged
//!   and the previous kept), a deleted one ends the server. SIGTERM and SIGINT end it too.

mod socket;
mod tcp;
mod udp;

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::config::{self, Config};
use crate::names::Views;

/// How often the configuration file is looked at.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// UDP queries in flight upstream at once.
pub const MAX_FORWARDS: usize = 256;
/// TCP clients at once.
pub const MAX_CONNS: usize = 64;
/// How long a TCP client may stay idle (RFC 7766 §6.2.3 suggests seconds, not minutes).
pub const TCP_IDLE: Duration = Duration::from_secs(10);
/// Datagrams read from one socket per wake-up, so one busy client cannot starve the rest.
const BATCH: usize = 64;

/// Why the server could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error("binding {addr} ({proto}): {source}")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        source: io::Error,
    },
    #[error("blocking signals into a signalfd: {0}")]
    Signals(nix::Error),
    #[error("waiting for events: {0}")]
    Poll(nix::Error),
}

/// Why the server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Signal(Signal),
    ConfigRemoved,
}

/// The sockets of one listen address.
struct Listener {
    addr: SocketAddr,
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Listener {
    fn bind(addr: SocketAddr) -> Result<Listener, Error> {
        let err = |proto| move |source| Error::Bind { addr, proto, source };
        let udp = socket::listen_udp(&addr).map_err(err("udp"))?;
        let tcp = socket::listen_tcp(&addr).map_err(err("tcp"))?;
        Ok(Listener { addr, udp, tcp })
    }
}

/// What identifies one version of the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    /// Also changed by a write in place that puts the mtime back.
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A fixed number of slots; a free one is found by a scan (the bounds are small).
struct Slots<T> {
    items: Vec<Option<T>>,
}

impl<T> Slots<T> {
    fn new(cap: usize) -> Slots<T> {
        Slots {
            items: (0..cap).map(|_| None).collect(),
        }
    }

    fn insert(&mut self, item: T) -> Option<usize> {
        let free = self.items.iter().position(Option::is_none)?;
        self.items[free] = Some(item);
        Some(free)
    }

    fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.as_ref().map(|t| (i, t)))
    }
}

/// xorshift64*, seeded from the kernel: query ids an off-path attacker cannot guess from the
/// ids it saw go to the upstreams (which it does not see either).
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let mut seed = [0u8; 8];
        let from_kernel = std::fs::File::open("/dev/urandom").and_then(|mut f| io::Read::read_exact(&mut f, &mut seed));
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let mixed = u64::from_ne_bytes(seed) ^ clock ^ (std::process::id() as u64) << 32;
        if from_kernel.is_err() {
            log(format_args!(
                "reading /dev/urandom failed; query ids come from the clock"
            ));
        }
        Rng(mixed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A line on standard error (a log file or /dev/null for a daemon).
fn log(args: std::fmt::Arguments<'_>) {
    eprintln!("berth-dns: {args}");
}

/// What a poll entry stands for.
#[derive(Debug, Clone, Copy)]
enum Token {
    Signal,
    Udp(usize),
    Tcp(usize),
    /// A forwarded UDP query's socket: the query's slot and the try.
    Forward(usize, usize),
    Conn(usize),
    /// The upstream connection of a TCP client's forwarded query.
    Upstream(usize),
}

/// One network's server.
pub struct Server {
    path: PathBuf,
    stamp: Option<Stamp>,
    config: Config,
    names: Views,
    listeners: Vec<Listener>,
    forwards: Slots<udp::Forwarding>,
    conns: Slots<tcp::Conn>,
    rng: Rng,
    /// The upstream asked first: the last one that answered.
    preferred: usize,
    /// Rotates the addresses of shared names.
    turn: usize,
    buf: Vec<u8>,
    /// SIGTERM, SIGINT and SIGHUP, blocked from [`Server::bind`] on.
    signals: SignalFd,
}

impl Server {
    /// Loads the configuration at `path` and binds every listen address; an address in use
    /// is an error naming it. Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and
    /// what it forks) into a signalfd that [`Server::run`] reads: one sent as soon as the
    /// server is known (its pid file written, its caller told it is ready) is not lost, nor
    /// does it kill the server before it serves.
    pub fn bind(path: &Path) -> Result<Server, Error> {
        let mut mask = SigSet::empty();
        for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
            mask.add(s);
        }
        mask.thread_block().map_err(Error::Signals)?;
        let signals =
            SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map_err(Error::Signals)?;
        let config = Config::load(path)?;
        let stamp = std::fs::metadata(path).ok().map(|m| Stamp::of(&m));
        let listeners = config
            .listen
            .iter()
            .map(|a| Listener::bind(*a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Server {
            path: path.to_owned(),
            stamp,
            names: Views::new(&config),
            config,
            listeners,
            forwards: Slots::new(MAX_FORWARDS),
            conns: Slots::new(MAX_CONNS),
            rng: Rng::seeded(),
            preferred: 0,
            turn: 0,
            buf: vec![0; u16::MAX as usize],
            signals,
        })
    }

    /// The addresses served (with the ports the kernel chose for port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().filter_map(|l| l.udp.local_addr().ok()).collect()
    }

    /// Serves until SIGTERM or SIGINT, or until the configuration file is removed; SIGHUP
    /// reloads the configuration.
    pub fn run(&mut self) -> Result<Exit, Error> {
        let mut next_check = Instant::now() + CHECK_INTERVAL;
        let mut ready = Vec::new();
        loop {
            let now = Instant::now();
            self.expire(now);
            if now >= next_check {
                if let Some(exit) = self.check_config(false) {
                    return Ok(exit);
                }
                next_check = now + CHECK_INTERVAL;
            }
            let wake = self.next_deadline().map_or(next_check, |d| d.min(next_check));
            // Rounded up, so a deadline is past when poll returns.
            let wait = wake.saturating_duration_since(now).as_micros().div_ceil(1000);
            let timeout = PollTimeout::from(wait.min(u16::MAX as u128) as u16);

            ready.clear();
            {
                let mut entries: Vec<(BorrowedFd<'_>, PollFlags, Token)> = Vec::with_capacity(64);
                entries.push((self.signals.as_fd(), PollFlags::POLLIN, Token::Signal));
                let accepting = self.conns.items.iter().any(Option::is_none);
                for (i, l) in self.listeners.iter().enumerate() {
                    entries.push((l.udp.as_fd(), PollFlags::POLLIN, Token::Udp(i)));
                    if accepting {
                        entries.push((l.tcp.as_fd(), PollFlags::POLLIN, Token::Tcp(i)));
                    }
                }
                for (slot, f) in self.forwards.iter() {
                    for (t, sock) in f.sockets() {
                        entries.push((sock.as_fd(), PollFlags::POLLIN, Token::Forward(slot, t)));
                    }
                }
                for (slot, c) in self.conns.iter() {
                    if let Some(events) = c.interest() {
                        entries.push((c.stream.as_fd(), events, Token::Conn(slot)));
                    }
                    if let Some((fd, events)) = c.upstream_interest() {
                        entries.push((fd, events, Token::Upstream(slot)));
                    }
                }
                let mut fds: Vec<PollFd<'_>> = entries.iter().map(|(fd, ev, _)| PollFd::new(*fd, *ev)).collect();
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(Error::Poll(e)),
                }
                for (fd, (_, _, token)) in fds.iter().zip(&entries) {
                    if let Some(ev) = fd.revents().filter(|ev| !ev.is_empty()) {
                        ready.push((*token, ev));
                    }
                }
            }
            for &(token, events) in &ready {
                match token {
                    Token::Signal => {
                        if let Some(exit) = self.on_signal() {
                            return Ok(exit);
                        }
                    }
                    Token::Udp(i) => self.on_udp(i),
                    Token::Tcp(i) => self.on_accept(i),
                    Token::Forward(slot, t) => self.on_forward(slot, t),
                    Token::Conn(slot) => self.on_conn(slot, events),
                    Token::Upstream(slot) => self.on_upstream(slot, events),
                }
            }
        }
    }

    fn on_signal(&mut self) -> Option<Exit> {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGHUP) => {
                    if let Some(exit) = self.check_config(true) {
                        return Some(exit);
                    }
                }
                Ok(sig) => return Some(Exit::Signal(sig)),
                Err(_) => {}
            }
        }
        None
    }

    /// Timeouts of forwarded queries and idle TCP clients.
    fn expire(&mut self, now: Instant) {
        for slot in 0..MAX_FORWARDS {
            if self.forwards.items[slot].as_ref().is_some_and(|f| f.deadline <= now) {
                self.forward_timed_out(slot, now);
            }
        }
        for slot in 0..MAX_CONNS {
            if self.conns.items[slot].as_ref().is_some_and(|c| c.deadline() <= now) {
                self.conn_timed_out(slot, now);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let forwards = self.forwards.iter().map(|(_, f)| f.deadline);
        let conns = self.conns.iter().map(|(_, c)| c.deadline());
        forwards.chain(conns).min()
    }

    /// Reloads the configuration if its file changed (or `force`); `Some` when it is gone.
    fn check_config(&mut self, force: bool) -> Option<Exit> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Some(Exit::ConfigRemoved),
            Err(e) => {
                log(format_args!("checking {}: {e}", self.path.display()));
                return None;
            }
        };
        let stamp = Stamp::of(&meta);
        if !force && self.stamp == Some(stamp) {
            return None;
        }
        self.stamp = Some(stamp);
        match Config::load(&self.path) {
            Ok(config) => self.apply(config),
            Err(e) => log(format_args!("{e}; keeping the previous configuration")),
        }
        None
    }

    fn apply(&mut self, config: Config) {
        self.listeners.retain(|l| config.listen.contains(&l.addr));
        for addr in &config.listen {
            if !self.listeners.iter().any(|l| l.addr == *addr) {
                match Listener::bind(*addr) {
                    Ok(l) => self.listeners.push(l),
                    Err(e) => log(format_args!("{e}")),
                }
            }
        }
        if config.upstream != self.config.upstream {
            self.preferred = 0;
        }
        self.names = Views::new(&config);
        self.config = config;
    }

    /// The resolvers the client at `client`'s forwarded queries go to: its view's (a
    /// container's `--dns`), else the server's.
    fn upstreams(&self, client: Option<IpAddr>) -> &[SocketAddr] {
        self.names.upstream_for_client(client).unwrap_or(&self.config.upstream)
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.upstream_timeout_ms.max(1))
    }

    /// How many tries a client's forwarded query gets: each upstream once, at least two (a
    /// lost datagram to a single upstream is retried), at most four (bounded time).
    fn max_tries(&self, client: Option<IpAddr>) -> usize {
        self.upstreams(client).len().clamp(2, 4)
    }

    /// The upstream for try `n` of a client's query: for the server's own, the preferred one
    /// first, then the next ones; a view's in their order.
    fn upstream_for(&self, client: Option<IpAddr>, n: usize) -> Option<SocketAddr> {
        if let Some(ups) = self.names.upstream_for_client(client) {
            return Some(ups[n % ups.len()]);
        }
        let ups = &self.config.upstream;
        (!ups.is_empty()).then(|| ups[(self.preferred + n) % ups.len()])
    }

    /// Remembers the server's upstream that answered as the one to ask first.
    fn answered_by(&mut self, upstream: SocketAddr) {
        if let Some(i) = self.config.upstream.iter().position(|u| *u == upstream) {
            self.preferred = i;
        }
    }

    fn next_id(&mut self) -> u16 {
        self.rng.next() as u16
    }

    fn next_turn(&mut self) -> usize {
        self.turn = self.turn.wrapping_add(1);
        self.turn
    }
}
