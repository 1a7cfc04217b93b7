//! One query, without I/O: what the server sends back for a packet a client sent, or that the
//! packet goes upstream; the replies to a forwarded query (relayed, or a failure).

use crate::names::{Lookup, Names};
use crate::wire::{flags, opcode, rcode, Edns, Header, Message, Question};

/// The largest UDP reply to a client without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP_LIMIT: usize = 512;
/// The UDP payload size this server advertises: the DNS flag day 2020 value, which fits one
/// Ethernet frame without fragments.
pub const ADVERTISED_UDP_SIZE: u16 = 1232;

/// How the query came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What to do with a packet from a client.
#[derive(Debug)]
pub enum Outcome {
    /// Send this reply.
    Reply(Vec<u8>),
    /// Ask the upstream resolvers.
    Forward(Forward),
    /// Say nothing: a response, or not even a header.
    Ignore,
}

/// A query bound upstream: what its reply needs.
#[derive(Debug, Clone)]
pub struct Forward {
    /// The client's id, which its reply carries.
    pub id: u16,
    pub flags: u16,
    pub question: Question,
    pub edns: Option<Edns>,
    /// The largest reply the client takes (its EDNS size over UDP, 65535 over TCP).
    pub limit: usize,
}

/// Answers `packet`. `turn` rotates shared names' addresses; without upstream resolvers a
/// query that is not local fails at once (SERVFAIL).
pub fn answer(names: &Names, packet: &[u8], transport: Transport, turn: usize, upstreams: bool) -> Outcome {
    let Ok(header) = Header::parse(packet) else {
        return Outcome::Ignore;
    };
    if header.is_response() {
        return Outcome::Ignore;
    }
    let formerr = || Outcome::Reply(bare_reply(&header, rcode::FORMERR));
    let Ok(msg) = Message::parse(packet) else {
        return formerr();
    };
    let Ok(edns) = msg.edns() else {
        return formerr();
    };
    let limit = match (transport, &edns) {
        (Transport::Tcp, _) => u16::MAX as usize,
        (Transport::Udp, Some(e)) => (e.udp_size as usize).max(PLAIN_UDP_LIMIT),
        (Transport::Udp, None) => PLAIN_UDP_LIMIT,
    };
    if header.opcode() != opcode::QUERY {
        return Outcome::Reply(reply(&msg, edns.as_ref(), rcode::NOTIMP, false, vec![], limit));
    }
    if msg.questions.len() != 1 {
        return formerr();
    }
    if let Some(e) = &edns {
        if e.version != 0 {
            return Outcome::Reply(reply(&msg, edns.as_ref(), rcode::BADVERS, false, vec![], limit));
        }
    }
    let question = &msg.questions[0];
    match names.lookup(question, turn) {
        Lookup::Local { rcode, answers } => Outcome::Reply(reply(&msg, edns.as_ref(), rcode, true, answers, limit)),
        Lookup::Forward if !upstreams => {
            Outcome::Reply(reply(&msg, edns.as_ref(), rcode::SERVFAIL, false, vec![], limit))
        }
        Lookup::Forward => Outcome::Forward(Forward {
            id: msg.id,
            flags: msg.flags,
            question: question.clone(),
            edns,
            limit,
        }),
    }
}

/// The reply to a forwarded query no upstream answered (SERVFAIL), or that could not be sent.
pub fn failure(fwd: &Forward, code: u16) -> Vec<u8> {
    let msg = Message {
        id: fwd.id,
        flags: fwd.flags,
        questions: vec![fwd.question.clone()],
        ..Message::default()
    };
    reply(&msg, fwd.edns.as_ref(), code, false, vec![], fwd.limit)
}

/// Whether `response` answers the query `sent` (as sent upstream, with its id): a response,
/// with that id and that question.
pub fn matches(response: &[u8], sent: &[u8]) -> bool {
    match (Question::peek(response), Question::peek(sent)) {
        (Ok((rh, rq)), Ok((sh, sq))) => rh.is_response() && rh.id == sh.id && rq == sq,
        _ => false,
    }
}

/// Whether an upstream's response says to ask the next one (RFC 1035's resolvers, and glibc,
/// move on after SERVFAIL, NOTIMP and REFUSED).
pub fn try_next(response: &[u8]) -> bool {
    Header::parse(response).is_ok_and(|h| matches!(h.rcode(), rcode::SERVFAIL | rcode::NOTIMP | rcode::REFUSED))
}

/// An upstream's response (one that [`matches`] the query) for the client: its id back, and cut to the header and question
/// with TC set if it is longer than the client takes (the client retries over TCP).
pub fn relay(response: &[u8], fwd: &Forward) -> Vec<u8> {
    if response.len() < Header::LEN {
        // Not a response ([`matches`] says so first): nothing to relay.
        return failure(fwd, rcode::SERVFAIL);
    }
    let mut out = response.to_vec();
    out[..2].copy_from_slice(&fwd.id.to_be_bytes());
    if out.len() <= fwd.limit {
        return out;
    }
    let flags = Header::parse(response)
        .map(|h| h.flags)
        .unwrap_or(fwd.flags | flags::QR);
    let msg = Message {
        id: fwd.id,
        flags: flags | flags::TC,
        questions: vec![fwd.question.clone()],
        ..Message::default()
    };
    msg.to_bytes().expect("a header and one question fit")
}

/// A reply with the header alone (no question could be read): FORMERR.
fn bare_reply(query: &Header, code: u16) -> Vec<u8> {
    let msg = Message {
        id: query.id,
        flags: reply_flags(query.flags, code, false),
        ..Message::default()
    };
    msg.to_bytes().expect("a header fits")
}

/// A reply to `query`: its questions, the answers, and an OPT record if the query had one;
/// TC and no answers (and no questions if still too long) when that is longer than `limit`.
fn reply(
    query: &Message,
    edns: Option<&Edns>,
    code: u16,
    authoritative: bool,
    answers: Vec<crate::wire::Record>,
    limit: usize,
) -> Vec<u8> {
    let opt = edns.map(|e| {
        Edns {
            udp_size: ADVERTISED_UDP_SIZE,
            ext_rcode: (code >> 4) as u8,
            version: 0,
            // DO is copied back (RFC 3225 §3).
            flags: e.flags & Edns::DO,
            options: vec![],
        }
        .to_record()
    });
    let mut msg = Message {
        id: query.id,
        flags: reply_flags(query.flags, code, authoritative),
        questions: query.questions.clone(),
        answers,
        authority: vec![],
        additional: opt.into_iter().collect(),
    };
    match msg.to_bytes() {
        Ok(bytes) if bytes.len() <= limit => bytes,
        _ => {
            msg.flags |= flags::TC;
            msg.answers.clear();
            match msg.to_bytes() {
                Ok(bytes) if bytes.len() <= limit => bytes,
                // Many questions (a NOTIMP for another opcode echoes all it got): none.
                _ => {
                    msg.questions.clear();
                    msg.to_bytes().expect("a header and OPT fit")
                }
            }
        }
    }
}

/// QR, the query's opcode, RD and CD, RA (this server recurses through its upstreams), AA for
/// local answers, and the low 4 bits of the rcode.
fn reply_flags(query_flags: u16, code: u16, authoritative: bool) -> u16 {
    let kept = query_flags & (0x7800 | flags::RD | flags::CD);
    let aa = if authoritative { flags::AA } else { 0 };
    flags::QR | kept | flags::RA | aa | (code & 0xF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Entry};
    use crate::wire::{rtype, Name, RData, Record, CLASS_IN};

    fn names() -> Names {
        Names::new(&Config {
            listen: vec!["127.0.0.1:53".parse().unwrap()],
            upstream: vec![],
            domains: vec!["mynet".into()],
            records: vec![Entry {
                name: "web".into(),
                aliases: vec!["many".into()],
                id: None,
                addresses: vec!["10.89.0.2".parse().unwrap()],
            }]
            .into_iter()
            .chain((3..60).map(|i| Entry {
                name: format!("c{i}"),
                aliases: vec!["many".into()],
                id: None,
                addresses: vec![format!("fd00::{i}").parse().unwrap()],
            }))
            .collect(),
            ttl: 0,
            upstream_timeout_ms: 1000,
            views: Vec::new(),
        })
    }

    fn query(name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
        Message {
            id: 0xBEEF,
            flags: flags::RD,
            questions: vec![Question {
                name: Name::from_dotted(name).unwrap(),
                qtype,
                qclass: CLASS_IN,
            }],
            additional: edns
                .map(|size| {
                    Edns {
                        udp_size: size,
                        ext_rcode: 0,
                        version: 0,
                        flags: Edns::DO,
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

    fn reply_to(packet: &[u8], transport: Transport) -> Message {
        match answer(&names(), packet, transport, 0, true) {
            Outcome::Reply(bytes) => Message::parse(&bytes).unwrap(),
            other => panic!("no reply: {other:?}"),
        }
    }

    #[test]
    fn local_answers() {
        let m = reply_to(&query("WEB.mynet.", rtype::A, None), Transport::Udp);
        assert_eq!(m.id, 0xBEEF);
        assert_eq!(m.flags, flags::QR | flags::AA | flags::RD | flags::RA);
        assert_eq!(m.questions[0].name.to_string(), "WEB.mynet.");
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].data, RData::A("10.89.0.2".parse().unwrap()));
        assert!(m.additional.is_empty());
        let m = reply_to(&query("nope.mynet", rtype::A, Some(4096)), Transport::Udp);
        assert_eq!(m.flags & 0xF, rcode::NXDOMAIN);
        let opt = m.edns().unwrap().unwrap();
        assert_eq!((opt.udp_size, opt.flags), (ADVERTISED_UDP_SIZE, Edns::DO));
    }

    #[test]
    fn long_answers_are_truncated_to_the_client_size() {
        // 58 addresses: over 512 bytes, under 4096.
        let m = reply_to(&query("many", rtype::ANY, None), Transport::Udp);
        assert!(m.flags & flags::TC != 0);
        assert!(m.answers.is_empty());
        assert_eq!(m.questions.len(), 1);
        let m = reply_to(&query("many", rtype::ANY, Some(4096)), Transport::Udp);
        assert_eq!(m.flags & flags::TC, 0);
        assert_eq!(m.answers.len(), 58);
        let m = reply_to(&query("many", rtype::ANY, None), Transport::Tcp);
        assert_eq!(m.answers.len(), 58);
    }

    #[test]
    fn forwards_what_is_not_local() {
        let q = query("example.com", rtype::A, Some(1400));
        let Outcome::Forward(fwd) = answer(&names(), &q, Transport::Udp, 0, true) else {
            panic!("not forwarded");
        };
        assert_eq!((fwd.id, fwd.limit), (0xBEEF, 1400));
        let m = Message::parse(&failure(&fwd, rcode::SERVFAIL)).unwrap();
        assert_eq!(m.flags, flags::QR | flags::RD | flags::RA | rcode::SERVFAIL);
        assert!(m.edns().unwrap().is_some());
        // Without upstreams: SERVFAIL at once.
        let m = match answer(&names(), &q, Transport::Udp, 0, false) {
            Outcome::Reply(b) => Message::parse(&b).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(m.flags & 0xF, rcode::SERVFAIL);
    }

    #[test]
    fn relays_with_the_clients_id_and_size() {
        let q = query("example.com", rtype::A, None);
        let Outcome::Forward(fwd) = answer(&names(), &q, Transport::Udp, 0, true) else {
            panic!("not forwarded");
        };
        let mut sent = q.clone();
        sent[..2].copy_from_slice(&0x1111u16.to_be_bytes());
        let mut resp = Message::parse(&sent).unwrap();
        resp.flags |= flags::QR | flags::RA;
        resp.questions[0].name = Name::from_dotted("EXAMPLE.com").unwrap();
        resp.answers = (0..40)
            .map(|i| Record {
                name: Name::from_dotted("example.com").unwrap(),
                rtype: rtype::A,
                class: CLASS_IN,
                ttl: 300,
                data: RData::A([192, 0, 2, i].into()),
            })
            .collect();
        let resp = resp.to_bytes().unwrap();
        assert!(matches(&resp, &sent));
        assert!(!matches(&resp, &q), "another id");
        assert!(!matches(&sent, &sent), "not a response");
        let small = relay(&resp, &fwd);
        let m = Message::parse(&small).unwrap();
        assert_eq!(m.id, 0xBEEF);
        assert!(m.flags & flags::TC != 0 && m.answers.is_empty());
        let big = relay(&resp, &Forward { limit: 65535, ..fwd });
        assert_eq!(Message::parse(&big).unwrap().answers.len(), 40);
        assert_eq!(&big[2..], &resp[2..]);
    }

    #[test]
    fn odd_queries() {
        // A response is ignored; fewer than 12 bytes too.
        let mut r = query("web", rtype::A, None);
        r[2] |= 0x80;
        assert!(matches!(answer(&names(), &r, Transport::Udp, 0, true), Outcome::Ignore));
        assert!(matches!(
            answer(&names(), &r[..11], Transport::Udp, 0, true),
            Outcome::Ignore
        ));
        // A cut question: FORMERR with the id.
        let q = query("web", rtype::A, None);
        let m = reply_to(&q[..q.len() - 1], Transport::Udp);
        assert_eq!((m.id, m.flags & 0xF), (0xBEEF, rcode::FORMERR));
        // Two questions: FORMERR.
        let mut two = Message::parse(&q).unwrap();
        two.questions.push(two.questions[0].clone());
        let m = reply_to(&two.to_bytes().unwrap(), Transport::Udp);
        assert_eq!(m.flags & 0xF, rcode::FORMERR);
        // NOTIFY (opcode 4): NOTIMP.
        let mut notify = q.clone();
        notify[2] |= 4 << 3;
        let m = reply_to(&notify, Transport::Udp);
        assert_eq!(m.flags & 0xF, rcode::NOTIMP);
        assert_eq!(m.flags & 0x7800, 4 << 11);
        // Another opcode with many long questions: NOTIMP within 512 bytes.
        let mut many = Message::parse(&notify).unwrap();
        many.questions = (0..4)
            .map(|i| Question {
                name: Name::from_dotted(&[format!("{i}").repeat(60), "b".repeat(60), format!("c{i}")].join("."))
                    .unwrap(),
                qtype: rtype::A,
                qclass: CLASS_IN,
            })
            .collect();
        let reply = match answer(&names(), &many.to_bytes().unwrap(), Transport::Udp, 0, true) {
            Outcome::Reply(b) => b,
            other => panic!("{other:?}"),
        };
        assert!(reply.len() <= PLAIN_UDP_LIMIT);
        let m = Message::parse(&reply).unwrap();
        assert_eq!(m.flags & 0xF, rcode::NOTIMP);
        assert!(m.flags & flags::TC != 0);
        // EDNS version 1: BADVERS (16 = extended rcode 1, header rcode 0).
        let mut v1 = Message::parse(&query("web", rtype::A, Some(1232))).unwrap();
        v1.additional[0].ttl |= 1 << 16;
        let m = reply_to(&v1.to_bytes().unwrap(), Transport::Udp);
        assert_eq!(m.flags & 0xF, 0);
        assert_eq!(m.edns().unwrap().unwrap().ext_rcode, 1);
    }
}
