//! The configuration file the engine writes for one network's server, and its atomic writer.
//!
//! ```json
//! {
//!   "listen": ["10.89.0.1:53"],
//!   "upstream": ["192.168.1.1:53", "127.0.0.53"],
//!   "domains": ["mynet"],
//!   "records": [
//!     {"name": "web", "aliases": ["www"], "id": "3f2a9c1b7d4e…", "addresses": ["10.89.0.2", "fd00::2"]}
//!   ],
//!   "ttl": 0,
//!   "upstream_timeout_ms": 1000
//! }
//! ```
//!
//! - `listen`: the addresses served, UDP and TCP on each (the network's gateway, port 53).
//!   They need not be on the host yet (IP_FREEBIND).
//! - `upstream`: the resolvers names that are not local are forwarded to, in order of
//!   preference (`IP` means port 53). The server runs in the host's network namespace, so the
//!   host's own resolv.conf servers, loopback ones such as systemd-resolved's included, work.
//! - `domains`: each name is also answered as `NAME.DOMAIN`, and names under a domain that
//!   are not known are NXDOMAIN here instead of being forwarded. The first is the domain of
//!   reverse (PTR) answers: `web.mynet.`, as Docker names a container on network `mynet`.
//! - `records`: one per container on the network: its `name` (what PTR answers), `aliases`
//!   (`--network-alias`, `--link` names), its `id` (64 hex digits; any prefix of 12 to 63
//!   digits, one DNS label, answers, as Docker answers the 12-digit short id) and its
//!   `addresses`. A name or alias
//!   several containers share answers all their addresses.
//! - `ttl`: the TTL of local answers (default 0: containers come and go).
//! - `upstream_timeout_ms`: how long one upstream has to answer before the next is asked.
//! - `views` (optional): for the clients at the addresses a view lists, its `records` are
//!   added to the others (a container on several networks), and its `upstream`, when given,
//!   replaces the server's for their forwarded names (a container's `--dns`).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize};

use crate::wire::Name;

/// A server's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    #[serde(default, deserialize_with = "upstreams")]
    pub upstream: Vec<SocketAddr>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub records: Vec<Entry>,
    #[serde(default)]
    pub ttl: u32,
    #[serde(default = "default_timeout")]
    pub upstream_timeout_ms: u64,
    /// Names only some clients see besides `records`: a container on several
    /// networks asks this network's server and must find the containers of
    /// its other networks too, which the rest of this network must not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<View>,
}

/// What the clients at `clients` (their source addresses) see besides the rest: extra
/// records, and their own resolvers for names that are not local.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub clients: Vec<IpAddr>,
    #[serde(default)]
    pub records: Vec<Entry>,
    /// Where these clients' other names go instead of `upstream` (a container's `--dns`,
    /// as Docker's embedded server forwards to it); empty: `upstream`.
    #[serde(default, deserialize_with = "upstreams", skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<SocketAddr>,
}

/// One container's names and addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

/// Why a configuration could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parsing {}: {source}", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// The default of `upstream_timeout_ms`: with glibc's 5 s per try, two upstream tries fit
/// in one client try.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 1000;

fn default_timeout() -> u64 {
    DEFAULT_UPSTREAM_TIMEOUT_MS
}

/// `"IP:PORT"` or `"IP"` (port 53); IPv6 with a port as `"[::1]:53"`.
fn upstreams<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| serde::de::Error::custom(format!("upstream {s:?}: not an address")))
        })
        .collect()
}

impl Config {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = serde_json::from_slice(&bytes).map_err(|source| Error::Parse {
            path: path.to_owned(),
            source,
        })?;
        config.check().map_err(|reason| Error::Invalid {
            path: path.to_owned(),
            reason,
        })?;
        Ok(config)
    }

    /// What the server cannot serve: no listen address, itself as an upstream (a loop), names
    /// that are not DNS names, ids that are not hex.
    pub fn check(&self) -> Result<(), String> {
        if self.listen.is_empty() {
            return Err("no listen address".into());
        }
        let views = self.views.iter().flat_map(|v| &v.upstream);
        if let Some(own) = self.upstream.iter().chain(views).find(|u| self.listen.contains(u)) {
            return Err(format!("upstream {own} is this server's own address"));
        }
        let name = |what: &str, n: &str| match Name::from_dotted(n) {
            Ok(_) if !n.is_empty() && n != "." => Ok(()),
            _ => Err(format!("{what} {n:?}: not a domain name")),
        };
        for d in &self.domains {
            name("domain", d)?;
        }
        for e in &self.records {
            name("name", &e.name)?;
            for a in &e.aliases {
                name("alias", a)?;
            }
            if let Some(id) = &e.id {
                if id.len() < 12 || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("record {:?}: id {id:?} is not 12 to 64 hex digits", e.name));
                }
            }
        }
        Ok(())
    }
}

/// Replaces the configuration at `path` atomically (a temporary file beside it, renamed
/// over it), so the server never reads half a file: it sees the new inode on its next check.
pub fn write_config(path: &Path, config: &Config) -> Result<(), Error> {
    let write_err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    config.check().map_err(|reason| Error::Invalid {
        path: path.to_owned(),
        reason,
    })?;
    let bytes = serde_json::to_vec_pretty(config).expect("a config serializes");
    write_atomic(path, &bytes).map_err(write_err)
}

/// Writes `bytes` to `path` through a uniquely named temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dns.json");
        std::fs::write(
            &path,
            r#"{"listen": ["10.89.0.1:53"], "upstream": ["192.168.1.1:53", "127.0.0.53", "[::1]:5353"],
                "domains": ["mynet"],
                "records": [{"name": "web", "aliases": ["www"], "id": "3f2a9c1b7d4e",
                             "addresses": ["10.89.0.2", "fd00::2"]}]}"#,
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(
            c.upstream,
            ["192.168.1.1:53", "127.0.0.53:53", "[::1]:5353"]
                .map(|s| s.parse::<SocketAddr>().unwrap())
                .to_vec()
        );
        assert_eq!(c.ttl, 0);
        assert_eq!(c.upstream_timeout_ms, DEFAULT_UPSTREAM_TIMEOUT_MS);
        assert_eq!(c.records[0].addresses.len(), 2);

        // What write_config writes reads back the same, and nothing else is left behind.
        write_config(&path, &c).unwrap();
        assert_eq!(Config::load(&path).unwrap(), c);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn errors_name_the_file_and_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dns.json");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Config::load(&path).unwrap_err().to_string()
        };
        assert!(load(r#"{"listen": []}"#).ends_with("dns.json: no listen address"));
        assert!(load(r#"{"listen": ["1.2.3.4:53"], "upstream": ["x"]}"#).contains("upstream \"x\": not an address"));
        assert!(load(r#"{"listen": ["1.2.3.4:53"], "records": [{"name": "a..b"}]}"#)
            .contains("name \"a..b\": not a domain name"));
        assert!(
            load(r#"{"listen": ["1.2.3.4:53"], "records": [{"name": "a", "id": "xyz"}]}"#)
                .contains("id \"xyz\" is not 12 to 64 hex digits")
        );
        assert!(load(r#"{"listen": ["1.2.3.4:53"], "upstream": ["1.2.3.4"]}"#)
            .contains("upstream 1.2.3.4:53 is this server's own address"));
        assert!(load("{").starts_with("parsing "));
        let missing = dir.path().join("missing.json");
        assert!(Config::load(&missing).unwrap_err().to_string().starts_with("reading "));
        let bad = Config {
            listen: vec![],
            upstream: vec![],
            domains: vec![],
            records: vec![],
            ttl: 0,
            upstream_timeout_ms: 1,
            views: Vec::new(),
        };
        assert!(write_config(&path, &bad).is_err());
    }
}
