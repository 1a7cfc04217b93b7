//! Container ids (64 hex digits, random) and names (given, or made up).

use std::io::Read;

/// 32 random bytes from the kernel, as 64 lower-case hex digits.
pub fn random_id() -> std::io::Result<String> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

const ADJECTIVES: [&str; 32] = [
    "amber", "brave", "calm", "clever", "coral", "crisp", "daring", "eager", "fancy", "gentle", "glad", "golden",
    "happy", "jolly", "keen", "lively", "lucid", "merry", "nimble", "noble", "placid", "proud", "quiet", "rapid",
    "silent", "steady", "sunny", "swift", "tidy", "upbeat", "vivid", "witty",
];

const NOUNS: [&str; 32] = [
    "anchor", "barge", "beacon", "buoy", "cargo", "compass", "current", "dinghy", "dock", "ferry", "galley", "harbor",
    "hull", "jetty", "keel", "lagoon", "lantern", "marina", "mast", "mooring", "oar", "pier", "quay", "rudder", "sail",
    "schooner", "skiff", "tide", "tugboat", "wake", "wharf", "yawl",
];

/// A name like `steady_harbor` from random bits; `salt` > 0 appends a number
/// (to step past a name in use).
pub fn random_name(bits: u64, salt: u32) -> String {
    let a = ADJECTIVES[(bits % 32) as usize];
    let n = NOUNS[((bits >> 5) % 32) as usize];
    if salt == 0 {
        format!("{a}_{n}")
    } else {
        format!("{a}_{n}{salt}")
    }
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex() {
        let a = random_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(a, random_id().unwrap());
    }

    #[test]
    fn names_follow_docker_rules() {
        assert!(valid_name("web") && valid_name("a.b-c_d") && valid_name("9x"));
        assert!(!valid_name("a") && !valid_name("-x") && !valid_name("a/b") && !valid_name("_x"));
        assert!(valid_name(&random_name(12345, 0)) && valid_name(&random_name(u64::MAX, 7)));
    }
}
