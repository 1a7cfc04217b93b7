//! A compiled filter and its on-disk form.
//!
//! ```text
//! "BERTHBPF" | version u32 | flags u32 | count u32 | count x (code u16, jt u8, jf u8, k u32) | sha256 of all before
//! ```
//!
//! Integers are little-endian. Anything that does not check out (length,
//! magic, version, count, digest, flags) is refused, so a truncated or
//! corrupted cache file is recompiled, never loaded.

use sha2::{Digest, Sha256};

use crate::bpf::{SockFilter, MAX_INSNS, RET_K};
use crate::Error;

pub const FLAG_TSYNC: u32 = 1;
pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;
pub const FLAG_NEW_LISTENER: u32 = 8;
pub const FLAG_TSYNC_ESRCH: u32 = 16;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;
const KNOWN_FLAGS: u32 = 63;

const MAGIC: &[u8; 8] = b"BERTHBPF";
const VERSION: u32 = 1;
const HEADER: usize = 20;
const DIGEST: usize = 32;

/// A seccomp filter ready for `seccomp(SECCOMP_SET_MODE_FILTER, flags, ...)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    filter: Vec<SockFilter>,
    flags: u32,
}

impl Program {
    pub(crate) fn new(filter: Vec<SockFilter>, flags: u32) -> Program {
        Program { filter, flags }
    }

    pub fn instructions(&self) -> &[SockFilter] {
        &self.filter
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits to load with.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether some rule uses SCMP_ACT_NOTIFY: the program is then loaded
    /// with SECCOMP_FILTER_FLAG_NEW_LISTENER and [`crate::load`] returns the
    /// listener fd.
    pub fn needs_listener(&self) -> bool {
        self.flags & FLAG_NEW_LISTENER != 0
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + 8 * self.filter.len() + DIGEST);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&(self.filter.len() as u32).to_le_bytes());
        for insn in &self.filter {
            out.extend_from_slice(&insn.code.to_le_bytes());
            out.extend_from_slice(&[insn.jt, insn.jf]);
            out.extend_from_slice(&insn.k.to_le_bytes());
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Program, Error> {
        if bytes.len() < HEADER + DIGEST {
            return Err(Error::BadProgram("truncated header"));
        }
        let (body, digest) = bytes.split_at(bytes.len() - DIGEST);
        let word = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().unwrap());
        if &body[..8] != MAGIC {
            return Err(Error::BadProgram("bad magic"));
        }
        if word(8) != VERSION {
            return Err(Error::BadProgram("unknown version"));
        }
        let (flags, count) = (word(12), word(16) as usize);
        if count == 0 || count > MAX_INSNS || body.len() != HEADER + 8 * count {
            return Err(Error::BadProgram("bad length"));
        }
        if Sha256::digest(body).as_slice() != digest {
            return Err(Error::BadProgram("checksum mismatch"));
        }
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Error::BadProgram("unknown flags"));
        }
        let filter: Vec<SockFilter> = body[HEADER..]
            .chunks_exact(8)
            .map(|c| SockFilter {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        if filter[count - 1].code != RET_K {
            return Err(Error::BadProgram("does not end in ret"));
        }
        Ok(Program { filter, flags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Program {
        let filter = vec![
            SockFilter {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 4,
            },
            SockFilter {
                code: 0x15,
                jt: 1,
                jf: 0,
                k: 0xc000_003e,
            },
            SockFilter {
                code: RET_K,
                jt: 0,
                jf: 0,
                k: 0x8000_0000,
            },
            SockFilter {
                code: RET_K,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            },
        ];
        Program::new(filter, FLAG_TSYNC | FLAG_NEW_LISTENER)
    }

    #[test]
    fn round_trip() {
        let prog = sample();
        let bytes = prog.to_bytes();
        assert_eq!(bytes.len(), HEADER + 4 * 8 + DIGEST);
        assert_eq!(Program::from_bytes(&bytes).unwrap(), prog);
        assert!(prog.needs_listener());
    }

    #[test]
    fn every_truncation_and_bit_flip_is_refused() {
        let bytes = sample().to_bytes();
        for len in 0..bytes.len() {
            assert!(Program::from_bytes(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(Program::from_bytes(&bad).is_err(), "flipped byte {i}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Program::from_bytes(&longer).is_err());
    }
}
