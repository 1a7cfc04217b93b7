//! `sha256:<64 lower-case hex>` content digests, the only algorithm berth stores.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// Length of a sha256 digest's encoded (hex) part.
const SHA256_HEX_LEN: usize = 64;

/// A content digest: `sha256:` followed by 64 lower-case hex digits, as the OCI image spec's
/// descriptor requires for sha256. Other algorithms are refused by name: the store keeps sha256
/// only, which is what every registry and image builder produces.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    /// The full `sha256:<hex>` string, validated.
    full: String,
}

/// Why a string is not a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest {input:?} has no algorithm (expected sha256:<64 hex digits>)")]
    MissingAlgorithm { input: String },
    #[error("digest {input:?} uses algorithm {algorithm:?}; only sha256 is supported")]
    UnsupportedAlgorithm { input: String, algorithm: String },
    #[error("digest {input:?} has {len} hex digits; sha256 has 64")]
    BadLength { input: String, len: usize },
    #[error("digest {input:?} has a character that is not a lower-case hex digit at {position}")]
    NotHex { input: String, position: usize },
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(Sha256::digest(bytes).into())
    }

    /// The digest whose sha256 sum is `sum`.
    pub fn from_sha256(sum: [u8; 32]) -> Digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut full = String::with_capacity(7 + SHA256_HEX_LEN);
        full.push_str("sha256:");
        for b in sum {
            full.push(HEX[usize::from(b >> 4)] as char);
            full.push(HEX[usize::from(b & 0xf)] as char);
        }
        Digest { full }
    }

    /// Parses and validates `sha256:<64 lower-case hex digits>`.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        let Some((algorithm, hex)) = input.split_once(':') else {
            return Err(DigestError::MissingAlgorithm {
                input: input.to_owned(),
            });
        };
        if algorithm != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm {
                input: input.to_owned(),
                algorithm: algorithm.to_owned(),
            });
        }
        if let Some(position) = hex.bytes().position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::NotHex {
                input: input.to_owned(),
                position: algorithm.len() + 1 + position,
            });
        }
        if hex.len() != SHA256_HEX_LEN {
            return Err(DigestError::BadLength {
                input: input.to_owned(),
                len: hex.len(),
            });
        }
        Ok(Digest { full: input.to_owned() })
    }

    /// The algorithm, always `sha256`.
    pub fn algorithm(&self) -> &str {
        "sha256"
    }

    /// The 64 hex digits after `sha256:`.
    pub fn hex(&self) -> &str {
        &self.full["sha256:".len()..]
    }

    /// The full `sha256:<hex>` form.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.full)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.full)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(deserializer)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn of_empty_input_is_the_well_known_digest() {
        assert_eq!(Digest::of(b"").as_str(), EMPTY);
        assert_eq!(Digest::parse(EMPTY).unwrap(), Digest::of(b""));
        assert_eq!(Digest::of(b"").hex(), &EMPTY[7..]);
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
    }

    #[test]
    fn rejects_other_algorithms_and_malformed_hex() {
        let sha512 = format!("sha512:{}", "a".repeat(128));
        assert_eq!(
            Digest::parse(&sha512).unwrap_err().to_string(),
            format!("digest {sha512:?} uses algorithm \"sha512\"; only sha256 is supported")
        );
        assert!(matches!(
            Digest::parse(&EMPTY[7..]),
            Err(DigestError::MissingAlgorithm { .. })
        ));
        assert!(matches!(
            Digest::parse("sha256:abc"),
            Err(DigestError::BadLength { len: 3, .. })
        ));
        let long = format!("{EMPTY}0");
        assert!(matches!(
            Digest::parse(&long),
            Err(DigestError::BadLength { len: 65, .. })
        ));
        let upper = EMPTY.to_uppercase().replacen("SHA256", "sha256", 1);
        assert!(matches!(
            Digest::parse(&upper),
            Err(DigestError::NotHex { position: 7, .. })
        ));
        let bad = EMPTY.replace('e', "g");
        assert_eq!(
            Digest::parse(&bad).unwrap_err().to_string(),
            format!("digest {bad:?} has a character that is not a lower-case hex digit at 7")
        );
    }

    #[test]
    fn serde_as_a_string() {
        let d = Digest::of(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        let err = serde_json::from_str::<Digest>("\"md5:00\"").unwrap_err();
        assert!(err.to_string().contains("only sha256 is supported"), "{err}");
    }
}
