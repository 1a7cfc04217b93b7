//! UDP: queries from clients on the listening sockets, and their forwarding upstream.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use super::{log, Server, BATCH};
use crate::query::{self, Forward, Outcome, Transport};
use crate::wire::rcode;

/// A UDP query in flight upstream.
pub(super) struct Forwarding {
    fwd: Forward,
    client: SocketAddr,
    /// The listening address the client asked, which the reply comes from.
    local: SocketAddr,
    /// The query as sent upstream: the client's with a fresh id.
    query: Vec<u8>,
    /// One connected socket per try still open, with the upstream it asked.
    tries: Vec<(UdpSocket, SocketAddr)>,
    /// Tries made, failed ones included.
    made: usize,
    pub(super) deadline: Instant,
    /// The last SERVFAIL/REFUSED/NOTIMP an upstream gave, relayed if nothing better comes.
    fallback: Option<Vec<u8>>,
}

impl Forwarding {
    pub(super) fn sockets(&self) -> impl Iterator<Item = (usize, &UdpSocket)> {
        self.tries.iter().enumerate().map(|(i, (s, _))| (i, s))
    }
}

impl Server {
    /// Datagrams on listening socket `i`.
    pub(super) fn on_udp(&mut self, i: usize) {
        for _ in 0..BATCH {
            let Some(l) = self.listeners.get(i) else { return };
            let local = l.addr;
            let (n, client) = match l.udp.recv_from(&mut self.buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let turn = self.next_turn();
            let packet = self.buf[..n].to_vec();
            match query::answer(
                self.names.for_client(Some(client.ip())),
                &packet,
                Transport::Udp,
                turn,
                !self.upstreams(Some(client.ip())).is_empty(),
            ) {
                Outcome::Reply(reply) => self.send_to_client(local, client, &reply),
                Outcome::Forward(fwd) => self.start_forward(local, client, packet, fwd),
                Outcome::Ignore => {}
            }
        }
    }

    fn send_to_client(&self, local: SocketAddr, client: SocketAddr, reply: &[u8]) {
        if let Some(l) = self.listeners.iter().find(|l| l.addr == local) {
            // A client that went away, or a full buffer: as a lost datagram, the client retries.
            let _ = l.udp.send_to(reply, client);
        }
    }

    fn start_forward(&mut self, local: SocketAddr, client: SocketAddr, mut packet: Vec<u8>, fwd: Forward) {
        // A client's retransmission of a query still in flight adds nothing.
        let duplicate = self
            .forwards
            .iter()
            .any(|(_, f)| f.client == client && f.fwd.id == fwd.id && f.fwd.question == fwd.question);
        if duplicate {
            return;
        }
        if self.forwards.items.iter().all(Option::is_some) {
            log(format_args!(
                "{} queries in flight upstream: SERVFAIL for {client}",
                super::MAX_FORWARDS
            ));
            return self.send_to_client(local, client, &query::failure(&fwd, rcode::SERVFAIL));
        }
        let id = self.next_id();
        packet[..2].copy_from_slice(&id.to_be_bytes());
        let now = Instant::now();
        let forwarding = Forwarding {
            fwd,
            client,
            local,
            query: packet,
            tries: Vec::new(),
            made: 0,
            deadline: now,
            fallback: None,
        };
        if let Some(slot) = self.forwards.insert(forwarding) {
            self.next_try(slot, now);
        }
    }

    /// Sends the query to the next upstream, or, when every try is spent, gives up.
    fn next_try(&mut self, slot: usize, now: Instant) {
        loop {
            let Some(f) = self.forwards.items[slot].as_ref() else {
                return;
            };
            let client = Some(f.client.ip());
            if f.made >= self.max_tries(client) {
                // Tries still open may yet answer before the deadline; none open: fail now.
                if f.tries.is_empty() || f.deadline <= now {
                    self.finish(slot, None);
                }
                return;
            }
            let n = f.made;
            let Some(upstream) = self.upstream_for(client, n) else {
                return self.finish(slot, None);
            };
            let timeout = self.timeout();
            let f = self.forwards.items[slot].as_mut().expect("checked above");
            f.made += 1;
            match super::socket::connect_udp(&upstream).and_then(|s| s.send(&f.query).map(|_| s)) {
                Ok(sock) => {
                    f.tries.push((sock, upstream));
                    f.deadline = now + timeout;
                    return;
                }
                Err(e) => log(format_args!("forwarding to {upstream}: {e}")),
            }
        }
    }

    /// A datagram on try `t` of forwarded query `slot`.
    pub(super) fn on_forward(&mut self, slot: usize, t: usize) {
        for _ in 0..BATCH {
            let Some(f) = self.forwards.items[slot].as_mut() else {
                return;
            };
            let Some((sock, upstream)) = f.tries.get(t) else { return };
            let upstream = *upstream;
            match sock.recv(&mut self.buf) {
                Ok(n) => {
                    let response = &self.buf[..n];
                    if !query::matches(response, &f.query) {
                        continue;
                    }
                    if query::try_next(response) {
                        f.fallback = Some(response.to_vec());
                        f.tries.remove(t);
                        return self.next_try(slot, Instant::now());
                    }
                    let response = response.to_vec();
                    self.answered_by(upstream);
                    return self.finish(slot, Some(&response));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ICMP unreachable (ECONNREFUSED) and the like: this upstream is out.
                Err(_) => {
                    f.tries.remove(t);
                    return self.next_try(slot, Instant::now());
                }
            }
        }
    }

    pub(super) fn forward_timed_out(&mut self, slot: usize, now: Instant) {
        self.next_try(slot, now);
    }

    /// Replies to the client with `response` (relayed), the last fallback, or SERVFAIL, and
    /// frees the slot.
    fn finish(&mut self, slot: usize, response: Option<&[u8]>) {
        let Some(f) = self.forwards.items[slot].take() else {
            return;
        };
        let reply = match response.or(f.fallback.as_deref()) {
            Some(r) => query::relay(r, &f.fwd),
            None => query::failure(&f.fwd, rcode::SERVFAIL),
        };
        self.send_to_client(f.local, f.client, &reply);
    }
}
