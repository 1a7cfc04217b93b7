//! berth-dns's fuzz target (`fuzz/dns.rs`) on stable Rust: its body runs over seed messages
//! (queries and responses the server meets) and deterministic mutations of them, DNS-aware
//! ones included (compression pointers aimed anywhere, section counts, label lengths). A
//! panic fails the test and writes the input to `$TMPDIR/berth-fuzz-dns_message-crash`.
//!
//! `BERTH_FUZZ_SEEDS=<dir>` also writes the seeds to `<dir>/dns_message/` for the real fuzzer
//! (fuzz/README.md).

#[path = "../../../fuzz/dns.rs"]
mod dns;

use std::panic::{self, AssertUnwindSafe};

use berth_dns::names::reverse_name;
use berth_dns::wire::{flags, rtype, Edns, Message, Name, Question, RData, Record, CLASS_IN};

/// splitmix64: deterministic choices.
struct Choices(u64);

impl Choices {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if n == 0 {
            0
        } else {
            (z % n as u64) as usize
        }
    }
}

fn question(name: &str, qtype: u16) -> Question {
    Question {
        name: Name::from_dotted(name).unwrap(),
        qtype,
        qclass: CLASS_IN,
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let opt = Edns {
        udp_size: 1232,
        ext_rcode: 0,
        version: 0,
        flags: Edns::DO,
        options: vec![0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8],
    }
    .to_record();
    let query = |id, name: &str, qtype, edns: bool| Message {
        id,
        flags: flags::RD,
        questions: vec![question(name, qtype)],
        additional: if edns { vec![opt.clone()] } else { vec![] },
        ..Message::default()
    };
    let mut response = query(0x4242, "example.com", rtype::A, true);
    response.flags |= flags::QR | flags::RA;
    response.answers = vec![
        Record {
            name: Name::from_dotted("example.com").unwrap(),
            rtype: rtype::CNAME,
            class: CLASS_IN,
            ttl: 60,
            data: RData::Cname(Name::from_dotted("www.example.com").unwrap()),
        },
        Record {
            name: Name::from_dotted("www.example.com").unwrap(),
            rtype: rtype::A,
            class: CLASS_IN,
            ttl: 60,
            data: RData::A([192, 0, 2, 1].into()),
        },
        Record {
            name: Name::from_dotted("www.example.com").unwrap(),
            rtype: rtype::MX,
            class: CLASS_IN,
            ttl: 60,
            data: RData::Other(b"\x00\x0a\x04mail\xc0\x0c".to_vec()),
        },
    ];
    // Another opcode (NOTIFY) with many long questions: the reply echoing them must still
    // fit 512 bytes (a case the fuzzer found).
    let mut notify = query(10, "web", rtype::A, false);
    notify.flags |= 4 << 11;
    notify.questions = (0..4)
        .map(|i| {
            question(
                &[format!("{i}").repeat(60), "b".repeat(60), format!("c{i}")].join("."),
                rtype::A,
            )
        })
        .collect();
    let ptr = reverse_name("10.89.0.1".parse().unwrap()).to_string();
    let ptr6 = reverse_name("fd00::2".parse().unwrap()).to_string();
    [
        query(1, "web", rtype::A, false),
        query(2, "WEB.mynet.", rtype::AAAA, true),
        query(3, "db.alias.mynet", rtype::ANY, false),
        query(4, "3f2a9c1b7d4e5f", rtype::A, true),
        query(5, "web", rtype::ANY, false),
        query(6, &ptr, rtype::PTR, false),
        query(7, &ptr6, rtype::PTR, true),
        query(8, "nothere.mynet", rtype::A, false),
        query(9, "example.com", rtype::A, true),
        query(0x4242, "example.com", rtype::A, false),
        response,
        notify,
    ]
    .iter()
    .map(|m| m.to_bytes().unwrap())
    .collect()
}

/// One mutation of `input` (`other`: another seed, for splices).
fn mutate(c: &mut Choices, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let len = out.len();
    match c.below(8) {
        0 => {
            for _ in 0..1 + c.below(4) {
                if let Some(b) = out.get_mut(c.below(len)) {
                    *b ^= 1 << c.below(8);
                }
            }
        }
        1 => {
            let values = [0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff, b'.', b'0'];
            for _ in 0..1 + c.below(3) {
                if let Some(b) = out.get_mut(c.below(len)) {
                    *b = values[c.below(values.len())];
                }
            }
        }
        2 => out.truncate(c.below(len + 1)),
        3 => {
            let (cut, from) = (c.below(len + 1), c.below(other.len() + 1));
            out.truncate(cut);
            out.extend_from_slice(&other[from..]);
        }
        4 => {
            // A compression pointer anywhere, aimed anywhere (itself and forwards included).
            let at = c.below(len.saturating_sub(1));
            let target = c.below(len + 4) as u16;
            if at + 2 <= len {
                out[at..at + 2].copy_from_slice(&(0xc000 | target).to_be_bytes());
            }
        }
        5 => {
            // A section count.
            let field = 4 + 2 * c.below(4);
            if field + 2 <= len {
                let count = [0u16, 1, 2, 3, 0xff, 0xffff][c.below(6)];
                out[field..field + 2].copy_from_slice(&count.to_be_bytes());
            }
        }
        6 => {
            // A repeated chunk: longer names, more records.
            let start = c.below(len + 1);
            let end = start + c.below(len - start + 1);
            let chunk = out[start..end].to_vec();
            let at = c.below(len + 1);
            out.splice(at..at, chunk);
        }
        _ => {
            // Header flags: QR, opcode, TC, rcode.
            if len >= 4 {
                out[2] = c.below(256) as u8;
                out[3] = c.below(256) as u8;
            }
        }
    }
    out
}

#[test]
fn dns_message() {
    let seeds = seeds();
    if let Some(dir) = std::env::var_os("BERTH_FUZZ_SEEDS") {
        let dir = std::path::Path::new(&dir).join("dns_message");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), s).unwrap();
        }
    }
    let check = |what: &str, input: &[u8]| {
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| dns::message(input))) {
            let path = std::env::temp_dir().join("berth-fuzz-dns_message-crash");
            let _ = std::fs::write(&path, input);
            eprintln!("dns_message: {what} panicked; input written to {path:?}");
            panic::resume_unwind(p);
        }
    };
    let mut parsed = 0;
    for (i, s) in seeds.iter().enumerate() {
        check(&format!("seed {i}"), s);
    }
    let mut c = Choices(0xd15e_a5e5);
    for run in 0..20_000 {
        let (a, b) = (c.below(seeds.len()), c.below(seeds.len()));
        let mut input = mutate(&mut c, &seeds[a], &seeds[b]);
        while c.below(3) == 0 {
            input = mutate(&mut c, &input, &seeds[b]);
        }
        check(&format!("mutation {run} of seed {a}"), &input);
        parsed += usize::from(Message::parse(&input).is_ok());
    }
    // The mutations exercise both the error paths and the paths behind a successful parse.
    assert!(parsed > 2_000 && parsed < 18_000, "{parsed} of 20000 mutations parsed");
}
