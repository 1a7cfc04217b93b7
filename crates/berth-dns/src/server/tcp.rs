//! TCP (RFC 7766): each message behind a 2-byte length. A client's queries are answered in
//! order, one at a time; one that is not local goes upstream over a TCP connection of its own.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use nix::poll::PollFlags;

use super::{log, Server, TCP_IDLE};
use crate::query::{self, Forward, Outcome, Transport};
use crate::wire::rcode;

/// The most a client's unread input may hold: one whole message and one read's worth.
const READ_CHUNK: usize = 16 * 1024;

/// One TCP client.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    input: Vec<u8>,
    /// Reply bytes not written yet.
    output: Vec<u8>,
    /// The client closed its side.
    eof: bool,
    idle_until: Instant,
    upstream: Option<Upstream>,
}

/// A client's query in flight upstream over TCP.
struct Upstream {
    fwd: Forward,
    /// The query as sent upstream (fresh id), framed.
    query: Vec<u8>,
    stream: Option<TcpStream>,
    connected: bool,
    /// How much of `query` the current connection has written.
    written: usize,
    input: Vec<u8>,
    made: usize,
    deadline: Instant,
    fallback: Option<Vec<u8>>,
}

impl Conn {
    /// The client events to wait for: replies to write; or, when no query is in the works
    /// and no whole one is buffered, more input.
    pub(super) fn interest(&self) -> Option<PollFlags> {
        if !self.output.is_empty() {
            Some(PollFlags::POLLOUT)
        } else if self.upstream.is_none() && !self.eof && frame(&self.input).is_none() {
            Some(PollFlags::POLLIN)
        } else {
            None
        }
    }

    pub(super) fn upstream_interest(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        let up = self.upstream.as_ref()?;
        let stream = up.stream.as_ref()?;
        let events = if !up.connected || up.written < up.query.len() {
            PollFlags::POLLOUT
        } else {
            PollFlags::POLLIN
        };
        Some((stream.as_fd(), events))
    }

    pub(super) fn deadline(&self) -> Instant {
        self.upstream.as_ref().map_or(self.idle_until, |u| u.deadline)
    }
}

/// The length of the whole message at the start of `input`, if it is all there.
fn frame(input: &[u8]) -> Option<usize> {
    let len = u16::from_be_bytes([*input.first()?, *input.get(1)?]) as usize;
    (input.len() >= 2 + len).then_some(len)
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + msg.len());
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

impl Server {
    /// New clients on listening socket `i`.
    pub(super) fn on_accept(&mut self, i: usize) {
        loop {
            let Some(l) = self.listeners.get(i) else { return };
            let stream = match l.tcp.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let conn = Conn {
                stream,
                input: Vec::new(),
                output: Vec::new(),
                eof: false,
                idle_until: Instant::now() + TCP_IDLE,
                upstream: None,
            };
            // Over the bound the client is closed (dropped here) and retries later.
            if self.conns.insert(conn).is_none() {
                return;
            }
        }
    }

    pub(super) fn on_conn(&mut self, slot: usize, events: PollFlags) {
        let Some(c) = self.conns.items[slot].as_mut() else {
            return;
        };
        if events.contains(PollFlags::POLLOUT) && !c.output.is_empty() {
            match c.stream.write(&c.output) {
                Ok(n) => {
                    c.output.drain(..n);
                    c.idle_until = Instant::now() + TCP_IDLE;
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(_) => return self.close(slot),
            }
        } else if events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let start = c.input.len();
            c.input.resize(start + READ_CHUNK, 0);
            let got = c.stream.read(&mut c.input[start..]);
            c.input.truncate(start + *got.as_ref().unwrap_or(&0));
            match got {
                Ok(0) => c.eof = true,
                Ok(_) => c.idle_until = Instant::now() + TCP_IDLE,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(_) => return self.close(slot),
            }
        }
        self.serve_conn(slot);
    }

    /// Takes the next whole query when the previous one is done; closes a client that has
    /// nothing more to say or hear.
    fn serve_conn(&mut self, slot: usize) {
        let client = self.client_of(slot);
        let upstreams = !self.upstreams(client).is_empty();
        let turn = self.next_turn();
        let Some(c) = self.conns.items[slot].as_mut() else {
            return;
        };
        if c.upstream.is_some() || !c.output.is_empty() {
            return;
        }
        let Some(len) = frame(&c.input) else {
            if c.eof {
                self.close(slot);
            }
            return;
        };
        let packet: Vec<u8> = c.input.drain(..2 + len).skip(2).collect();
        match query::answer(self.names.for_client(client), &packet, Transport::Tcp, turn, upstreams) {
            Outcome::Reply(reply) => c.output = framed(&reply),
            Outcome::Forward(fwd) => {
                let mut query = framed(&packet);
                let id = self.next_id();
                query[2..4].copy_from_slice(&id.to_be_bytes());
                let c = self.conns.items[slot].as_mut().expect("checked above");
                c.upstream = Some(Upstream {
                    fwd,
                    query,
                    stream: None,
                    connected: false,
                    written: 0,
                    input: Vec::new(),
                    made: 0,
                    deadline: Instant::now(),
                    fallback: None,
                });
                self.next_upstream(slot, Instant::now());
            }
            // A response, or no header: not a client worth keeping.
            Outcome::Ignore => self.close(slot),
        }
    }

    /// Connects to the next upstream for client `slot`'s query, or, when every try is spent,
    /// replies with what there is.
    fn next_upstream(&mut self, slot: usize, now: Instant) {
        let client = self.client_of(slot);
        let max = self.max_tries(client);
        let timeout = self.timeout();
        loop {
            let Some(up) = self.conns.items[slot].as_mut().and_then(|c| c.upstream.as_mut()) else {
                return;
            };
            up.stream = None;
            if up.made >= max {
                return self.finish_upstream(slot, None);
            }
            let n = up.made;
            up.made += 1;
            let Some(addr) = self.upstream_for(client, n) else {
                return self.finish_upstream(slot, None);
            };
            let up = self.conns.items[slot]
                .as_mut()
                .and_then(|c| c.upstream.as_mut())
                .expect("checked above");
            match super::socket::connect_tcp(&addr) {
                Ok(stream) => {
                    up.stream = Some(stream);
                    up.connected = false;
                    up.written = 0;
                    up.input.clear();
                    up.deadline = now + timeout;
                    return;
                }
                Err(e) => log(format_args!("forwarding over TCP to {addr}: {e}")),
            }
        }
    }

    pub(super) fn on_upstream(&mut self, slot: usize, events: PollFlags) {
        let Some(up) = self.conns.items[slot].as_mut().and_then(|c| c.upstream.as_mut()) else {
            return;
        };
        let Some(stream) = up.stream.as_mut() else { return };
        let peer = stream.peer_addr().ok();
        if !up.connected {
            match stream.take_error() {
                Ok(None) if !events.intersects(PollFlags::POLLERR | PollFlags::POLLHUP) => up.connected = true,
                _ => return self.next_upstream(slot, Instant::now()),
            }
        }
        if up.written < up.query.len() {
            match stream.write(&up.query[up.written..]) {
                Ok(n) => up.written += n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(_) => return self.next_upstream(slot, Instant::now()),
            }
            return;
        }
        let start = up.input.len();
        up.input.resize(start + READ_CHUNK, 0);
        let got = stream.read(&mut up.input[start..]);
        up.input.truncate(start + *got.as_ref().unwrap_or(&0));
        match got {
            Ok(0) => return self.next_upstream(slot, Instant::now()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => return,
            Err(_) => return self.next_upstream(slot, Instant::now()),
        }
        let Some(len) = frame(&up.input) else { return };
        let response = up.input[2..2 + len].to_vec();
        if !query::matches(&response, &up.query[2..]) {
            return self.next_upstream(slot, Instant::now());
        }
        if query::try_next(&response) {
            up.fallback = Some(response);
            return self.next_upstream(slot, Instant::now());
        }
        if let Some(peer) = peer {
            self.answered_by(peer);
        }
        self.finish_upstream(slot, Some(&response));
    }

    /// Puts the reply to client `slot`'s forwarded query on its output.
    fn finish_upstream(&mut self, slot: usize, response: Option<&[u8]>) {
        let Some(c) = self.conns.items[slot].as_mut() else {
            return;
        };
        let Some(up) = c.upstream.take() else { return };
        let reply = match response.or(up.fallback.as_deref()) {
            Some(r) => query::relay(r, &up.fwd),
            None => query::failure(&up.fwd, rcode::SERVFAIL),
        };
        c.output = framed(&reply);
        c.idle_until = Instant::now() + TCP_IDLE;
    }

    pub(super) fn conn_timed_out(&mut self, slot: usize, now: Instant) {
        match self.conns.items[slot].as_ref() {
            Some(c) if c.upstream.is_some() => self.next_upstream(slot, now),
            Some(_) => self.close(slot),
            None => {}
        }
    }

    /// The address of client `slot`.
    fn client_of(&self, slot: usize) -> Option<std::net::IpAddr> {
        let c = self.conns.items.get(slot)?.as_ref()?;
        c.stream.peer_addr().ok().map(|a| a.ip())
    }

    fn close(&mut self, slot: usize) {
        self.conns.items[slot] = None;
    }
}
