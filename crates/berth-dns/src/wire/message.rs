//! Messages: header, questions and the three record sections (RFC 1035 §4.1), EDNS's OPT
//! pseudo-record (RFC 6891 §6).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::name::{Compression, Name};
use super::WireError;

/// Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2 for AD and CD).
pub mod flags {
    pub const QR: u16 = 0x8000;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const AD: u16 = 0x0020;
    pub const CD: u16 = 0x0010;
}

/// Opcodes.
pub mod opcode {
    pub const QUERY: u8 = 0;
}

/// Response codes; BADVERS is an extended code (RFC 6891 §9): its upper 8 bits go into OPT.
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const BADVERS: u16 = 16;
}

/// Record types the server looks at.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const OPT: u16 = 41;
    pub const ANY: u16 = 255;
}

/// The Internet class.
pub const CLASS_IN: u16 = 1;

/// The fixed 12-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub id: u16,
    /// QR, opcode, AA, TC, RD, RA, Z, AD, CD and the rcode, as on the wire.
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub const LEN: usize = 12;

    /// The header at the start of `msg`.
    pub fn parse(msg: &[u8]) -> Result<Header, WireError> {
        let h = msg.get(..Self::LEN).ok_or(WireError::Truncated)?;
        let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Ok(Header {
            id: word(0),
            flags: word(2),
            qdcount: word(4),
            ancount: word(6),
            nscount: word(8),
            arcount: word(10),
        })
    }

    pub fn is_response(&self) -> bool {
        self.flags & flags::QR != 0
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xF) as u8
    }

    /// The 4-bit rcode of the header (without EDNS's extension).
    pub fn rcode(&self) -> u16 {
        self.flags & 0xF
    }

    fn write(&self, out: &mut Vec<u8>) {
        for word in [
            self.id,
            self.flags,
            self.qdcount,
            self.ancount,
            self.nscount,
            self.arcount,
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
    }
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

impl Question {
    fn read(msg: &[u8], pos: usize) -> Result<(Question, usize), WireError> {
        let (name, at) = Name::read(msg, pos)?;
        let fixed = msg.get(at..at + 4).ok_or(WireError::Truncated)?;
        let q = Question {
            name,
            qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
            qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
        };
        Ok((q, at + 4))
    }

    /// The header and the one question of a message, without reading the rest: what matching
    /// an upstream's response to a pending query needs, whatever records it carries.
    pub fn peek(msg: &[u8]) -> Result<(Header, Question), WireError> {
        let header = Header::parse(msg)?;
        if header.qdcount != 1 {
            return Err(WireError::Truncated);
        }
        let (q, _) = Question::read(msg, Header::LEN)?;
        Ok((header, q))
    }

    fn write(&self, out: &mut Vec<u8>, names: &mut Compression) {
        self.name.write(out, names);
        out.extend_from_slice(&self.qtype.to_be_bytes());
        out.extend_from_slice(&self.qclass.to_be_bytes());
    }
}

/// Record data: decoded for the types the server answers, raw bytes otherwise (whatever
/// compression pointers those hold refer to the message they were read from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ptr(Name),
    Cname(Name),
    Other(Vec<u8>),
}

/// One resource record. An OPT pseudo-record keeps its fields here as on the wire (class is
/// the UDP payload size, ttl the extended rcode, version and flags): see [`Edns`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

impl Record {
    fn read(msg: &[u8], pos: usize) -> Result<(Record, usize), WireError> {
        let (name, at) = Name::read(msg, pos)?;
        let fixed = msg.get(at..at + 10).ok_or(WireError::Truncated)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let len = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        let start = at + 10;
        let raw = msg.get(start..start + len).ok_or(WireError::Truncated)?;
        let bad = WireError::BadRdata(rtype);
        let data = match rtype {
            rtype::A => RData::A(<[u8; 4]>::try_from(raw).map_err(|_| bad)?.into()),
            rtype::AAAA => RData::Aaaa(<[u8; 16]>::try_from(raw).map_err(|_| bad)?.into()),
            rtype::PTR | rtype::CNAME => {
                let (target, end) = Name::read(msg, start)?;
                if end != start + len {
                    return Err(bad);
                }
                if rtype == rtype::PTR {
                    RData::Ptr(target)
                } else {
                    RData::Cname(target)
                }
            }
            _ => RData::Other(raw.to_vec()),
        };
        let record = Record {
            name,
            rtype,
            class,
            ttl,
            data,
        };
        Ok((record, start + len))
    }

    fn write(&self, out: &mut Vec<u8>, names: &mut Compression) {
        self.name.write(out, names);
        out.extend_from_slice(&self.rtype.to_be_bytes());
        out.extend_from_slice(&self.class.to_be_bytes());
        out.extend_from_slice(&self.ttl.to_be_bytes());
        let len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        match &self.data {
            RData::A(a) => out.extend_from_slice(&a.octets()),
            RData::Aaaa(a) => out.extend_from_slice(&a.octets()),
            RData::Ptr(n) | RData::Cname(n) => n.write(out, names),
            RData::Other(raw) => out.extend_from_slice(raw),
        }
        let len = (out.len() - len_at - 2) as u16;
        out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }
}

/// The EDNS OPT pseudo-record's meaning (RFC 6891 §6.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edns {
    /// The largest UDP response the sender can take.
    pub udp_size: u16,
    /// The upper 8 bits of the 12-bit rcode.
    pub ext_rcode: u8,
    pub version: u8,
    /// DO and the reserved bits.
    pub flags: u16,
    /// The options, raw.
    pub options: Vec<u8>,
}

impl Edns {
    /// The DNSSEC OK bit.
    pub const DO: u16 = 0x8000;

    fn from_record(r: &Record) -> Result<Edns, WireError> {
        if r.name != Name::root() {
            return Err(WireError::BadOpt);
        }
        let options = match &r.data {
            RData::Other(raw) => raw.clone(),
            _ => return Err(WireError::BadOpt),
        };
        Ok(Edns {
            udp_size: r.class,
            ext_rcode: (r.ttl >> 24) as u8,
            version: (r.ttl >> 16) as u8,
            flags: r.ttl as u16,
            options,
        })
    }

    /// The OPT record that carries this.
    pub fn to_record(&self) -> Record {
        Record {
            name: Name::root(),
            rtype: rtype::OPT,
            class: self.udp_size,
            ttl: (self.ext_rcode as u32) << 24 | (self.version as u32) << 16 | self.flags as u32,
            data: RData::Other(self.options.clone()),
        }
    }
}

/// A whole message. The counts of the header are the lengths of the sections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub id: u16,
    pub flags: u16,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
}

impl Message {
    /// Parses a message; bytes after the last record are ignored.
    pub fn parse(msg: &[u8]) -> Result<Message, WireError> {
        let h = Header::parse(msg)?;
        let mut at = Header::LEN;
        // No preallocation from the counts: a hostile count would reserve memory for records
        // the bytes cannot hold; each read fails at the end of the input instead.
        let mut questions = Vec::new();
        for _ in 0..h.qdcount {
            let (q, next) = Question::read(msg, at)?;
            questions.push(q);
            at = next;
        }
        let mut sections = [Vec::new(), Vec::new(), Vec::new()];
        for (section, count) in sections.iter_mut().zip([h.ancount, h.nscount, h.arcount]) {
            for _ in 0..count {
                let (r, next) = Record::read(msg, at)?;
                section.push(r);
                at = next;
            }
        }
        let [answers, authority, additional] = sections;
        Ok(Message {
            id: h.id,
            flags: h.flags,
            questions,
            answers,
            authority,
            additional,
        })
    }

    /// The message in wire form, names compressed.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        let count = |n: usize| u16::try_from(n).map_err(|_| WireError::TooLong);
        let header = Header {
            id: self.id,
            flags: self.flags,
            qdcount: count(self.questions.len())?,
            ancount: count(self.answers.len())?,
            nscount: count(self.authority.len())?,
            arcount: count(self.additional.len())?,
        };
        let mut out = Vec::with_capacity(512);
        header.write(&mut out);
        let mut names = Compression::default();
        for q in &self.questions {
            q.write(&mut out, &mut names);
        }
        for r in self.answers.iter().chain(&self.authority).chain(&self.additional) {
            r.write(&mut out, &mut names);
        }
        if out.len() > u16::MAX as usize {
            return Err(WireError::TooLong);
        }
        Ok(out)
    }

    /// The EDNS information of the OPT record in the additional section, if there is one.
    /// More than one OPT record is an error (RFC 6891 §6.1.1: FORMERR).
    pub fn edns(&self) -> Result<Option<Edns>, WireError> {
        let mut opts = self.additional.iter().filter(|r| r.rtype == rtype::OPT);
        let first = opts.next().map(Edns::from_record).transpose()?;
        if opts.next().is_some() {
            return Err(WireError::BadOpt);
        }
        Ok(first)
    }

    pub fn header(&self) -> Header {
        Header {
            id: self.id,
            flags: self.flags,
            qdcount: self.questions.len() as u16,
            ancount: self.answers.len() as u16,
            nscount: self.authority.len() as u16,
            arcount: self.additional.len() as u16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query as `dig web.mynet A +bufsize=1232` sends it.
    fn query_bytes() -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(b"\x03web\x05mynet\x00\x00\x01\x00\x01");
        q.extend_from_slice(b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00");
        q
    }

    #[test]
    fn parses_a_query_with_edns() {
        let m = Message::parse(&query_bytes()).unwrap();
        assert_eq!(m.id, 0x1234);
        assert_eq!(m.flags, flags::RD | flags::AD);
        assert_eq!(m.questions.len(), 1);
        assert_eq!(m.questions[0].name.key().unwrap(), "web.mynet");
        assert_eq!(m.questions[0].qtype, rtype::A);
        let edns = m.edns().unwrap().unwrap();
        assert_eq!(edns.udp_size, 1232);
        assert_eq!(edns.version, 0);
        assert_eq!(m.to_bytes().unwrap(), query_bytes());
        let (h, q) = Question::peek(&query_bytes()).unwrap();
        assert_eq!(h.id, 0x1234);
        assert_eq!(q, m.questions[0]);
    }

    #[test]
    fn answers_round_trip_with_compression() {
        let name = Name::from_dotted("web.mynet").unwrap();
        let m = Message {
            id: 7,
            flags: flags::QR | flags::AA | flags::RD | flags::RA,
            questions: vec![Question {
                name: name.clone(),
                qtype: rtype::ANY,
                qclass: CLASS_IN,
            }],
            answers: vec![
                Record {
                    name: name.clone(),
                    rtype: rtype::A,
                    class: CLASS_IN,
                    ttl: 60,
                    data: RData::A(Ipv4Addr::new(10, 89, 0, 2)),
                },
                Record {
                    name: name.clone(),
                    rtype: rtype::AAAA,
                    class: CLASS_IN,
                    ttl: 60,
                    data: RData::Aaaa("fd00::2".parse().unwrap()),
                },
                Record {
                    name: Name::from_dotted("2.0.89.10.in-addr.arpa").unwrap(),
                    rtype: rtype::PTR,
                    class: CLASS_IN,
                    ttl: 0,
                    data: RData::Ptr(Name::from_dotted("db.mynet").unwrap()),
                },
            ],
            authority: vec![],
            additional: vec![Edns {
                udp_size: 1232,
                ext_rcode: 0,
                version: 0,
                flags: Edns::DO,
                options: vec![0, 10, 0, 2, 0xAB, 0xCD],
            }
            .to_record()],
        };
        let bytes = m.to_bytes().unwrap();
        // The answers' owner names are pointers to the question's.
        assert_eq!(bytes.windows(2).filter(|w| *w == [0xC0, 0x0C]).count(), 2);
        // The PTR target "db.mynet" points at "mynet" of the question.
        assert!(bytes.windows(5).any(|w| w == b"\x02db\xC0\x10"));
        let back = Message::parse(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.edns().unwrap().unwrap().flags, Edns::DO);
    }

    #[test]
    fn malformed_messages_are_errors() {
        let q = query_bytes();
        for len in 0..q.len() {
            assert!(Message::parse(&q[..len]).is_err(), "prefix of {len} bytes parsed");
        }
        // An A record with 3 bytes of data.
        let mut bad = vec![0, 1, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        bad.extend_from_slice(b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x03\x01\x02\x03");
        assert_eq!(Message::parse(&bad).unwrap_err(), WireError::BadRdata(rtype::A));
        // A PTR whose name runs past its data length.
        let mut bad = vec![0, 1, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        bad.extend_from_slice(b"\x00\x00\x0c\x00\x01\x00\x00\x00\x00\x00\x02\x01a\x00");
        assert_eq!(Message::parse(&bad).unwrap_err(), WireError::BadRdata(rtype::PTR));
        // Two OPT records.
        let mut two = query_bytes();
        two[11] = 2;
        two.extend_from_slice(b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00");
        assert_eq!(Message::parse(&two).unwrap().edns().unwrap_err(), WireError::BadOpt);
        // A huge count with no records behind it.
        let mut counts = query_bytes();
        counts[6] = 0xFF;
        counts[7] = 0xFF;
        assert_eq!(Message::parse(&counts).unwrap_err(), WireError::Truncated);
    }

    #[test]
    fn header_fields() {
        let h = Header::parse(&query_bytes()).unwrap();
        assert!(!h.is_response());
        assert_eq!(h.opcode(), opcode::QUERY);
        assert_eq!(h.rcode(), rcode::NOERROR);
        assert_eq!((h.qdcount, h.arcount), (1, 1));
        let h = Header {
            flags: flags::QR | (5 << 11) | rcode::NXDOMAIN,
            ..h
        };
        assert!(h.is_response());
        assert_eq!(h.opcode(), 5);
        assert_eq!(h.rcode(), rcode::NXDOMAIN);
    }
}
