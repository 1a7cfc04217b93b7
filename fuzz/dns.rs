//! The body of berth-dns's fuzz target: every path a packet from a client or an upstream
//! takes through the server, without sockets.
//!
//! Included by the cargo-fuzz binary `fuzz_targets/dns_message.rs` and by the stable smoke
//! test `crates/berth-dns/tests/fuzz_smoke.rs`. Errors are fine answers; a panic, a reply
//! that does not parse, or one longer than the client takes, is a bug.

use std::sync::OnceLock;

use berth_dns::names::{reverse_address, Names};
use berth_dns::query::{self, Forward, Outcome, Transport, PLAIN_UDP_LIMIT};
use berth_dns::wire::{rtype, Message, Name, Question, CLASS_IN};
use berth_dns::{Config, Entry};

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        Names::new(&Config {
            listen: vec!["127.0.0.1:53".parse().unwrap()],
            upstream: vec![],
            domains: vec!["mynet".into()],
            records: vec![Entry {
                name: "web".into(),
                aliases: vec!["db.alias".into()],
                id: Some("3f2a9c1b7d4e5f60718293a4b5c6d7e8".into()),
                addresses: (1..=40u8)
                    .map(|i| format!("10.89.0.{i}").parse().unwrap())
                    .chain(["fd00::2".parse().unwrap()])
                    .collect(),
            }],
            ttl: 0,
            upstream_timeout_ms: 1000,
            views: Vec::new(),
        })
    })
}

/// Parses `data` as a message (and re-encodes what parsed), answers it as a client's query
/// over UDP and TCP, and relays it as an upstream's response.
pub fn message(data: &[u8]) {
    if let Ok(m) = Message::parse(data) {
        let _ = m.edns();
        for q in &m.questions {
            let _ = reverse_address(&q.name);
            let _ = q.name.key();
            let _ = q.name.to_string();
        }
        // What parsed encodes, unless decompression made it longer than a message can be,
        // and reads back the same.
        if let Ok(bytes) = m.to_bytes() {
            assert_eq!(Message::parse(&bytes).expect("an encoded message parses"), m);
        }
    }
    let _ = Question::peek(data);

    for (transport, turn) in [(Transport::Udp, 0), (Transport::Tcp, 1)] {
        match query::answer(names(), data, transport, turn, true) {
            Outcome::Reply(reply) => {
                let m = Message::parse(&reply).expect("a reply parses");
                let limit = match transport {
                    Transport::Tcp => u16::MAX as usize,
                    Transport::Udp => Message::parse(data)
                        .ok()
                        .and_then(|q| q.edns().ok().flatten())
                        .map_or(PLAIN_UDP_LIMIT, |e| (e.udp_size as usize).max(PLAIN_UDP_LIMIT)),
                };
                assert!(
                    reply.len() <= limit,
                    "a {}-byte reply for a {limit}-byte client",
                    reply.len()
                );
                assert_eq!(m.id, u16::from_be_bytes([data[0], data[1]]));
            }
            Outcome::Forward(fwd) => {
                let failure = query::failure(&fwd, 2);
                Message::parse(&failure).expect("a failure reply parses");
            }
            Outcome::Ignore => {}
        }
    }

    // As an upstream's response to a query for "example.com" with the same id.
    let fwd = Forward {
        id: 0x4242,
        flags: 0x0100,
        question: Question {
            name: Name::from_dotted("example.com").unwrap(),
            qtype: rtype::A,
            qclass: CLASS_IN,
        },
        edns: None,
        limit: PLAIN_UDP_LIMIT,
    };
    let sent = Message {
        id: data.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]])),
        flags: fwd.flags,
        questions: vec![fwd.question.clone()],
        ..Message::default()
    }
    .to_bytes()
    .unwrap();
    let _ = query::try_next(data);
    if query::matches(data, &sent) {
        let out = query::relay(data, &fwd);
        assert!(out.len() <= fwd.limit);
        assert_eq!(&out[..2], &[0x42, 0x42]);
    }
}
