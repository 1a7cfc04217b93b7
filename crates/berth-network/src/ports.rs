//! Published ports as the command line gives them: `-p`/`--publish` specs,
//! `-P` (every exposed port) and the `HostConfig.PortBindings` form Docker
//! keeps them in. Parsing only; [`crate::store::publish_ports`] turns
//! bindings into host ports held in `berth.db`, and [`crate::nft`] into DNAT
//! rules.
//!
//! The spec grammar is Docker's (`nat.ParsePortSpec`):
//! `[[ip:][hostPort]:]containerPort[/proto]`, where an IPv6 `ip` is written
//! in brackets, either port may be a range `a-b`, and `proto` is `tcp`
//! (default), `udp` or `sctp`. Equal-length ranges map port to port; a host
//! range with a single container port is a set of candidates of which the
//! first free one is taken; no host port means a free port from the
//! ephemeral range.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// What is wrong with a `-p` spec or an exposed port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("invalid IP address: {0}")]
    InvalidIp(String),
    #[error("no port specified: {0}<empty>")]
    NoPort(String),
    #[error("invalid containerPort: {0}")]
    InvalidContainerPort(String),
    #[error("invalid hostPort: {0}")]
    InvalidHostPort(String),
    #[error("invalid ranges specified for container and host Ports: {0} and {1}")]
    RangeMismatch(String, String),
    #[error("invalid proto: {0}")]
    InvalidProto(String),
}

/// A transport protocol ports are published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = PortError;

    fn from_str(s: &str) -> Result<Proto, PortError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            _ => Err(PortError::InvalidProto(s.to_owned())),
        }
    }
}

/// The host side of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPort {
    /// Any free port of the ephemeral range (`-p 80`, `-P`).
    Any,
    /// This port, or the binding fails.
    Port(u16),
    /// The first free port of `start..=end` (`-p 8000-8010:80`).
    Range(u16, u16),
}

impl fmt::Display for HostPort {
    /// As `HostConfig.PortBindings` writes it: `""`, `"8080"`, `"8000-8010"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPort::Any => Ok(()),
            HostPort::Port(p) => write!(f, "{p}"),
            HostPort::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

/// One container port to publish, before a host port is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortBinding {
    /// None: every host address (`0.0.0.0` and `::`).
    pub host_ip: Option<IpAddr>,
    pub host_port: HostPort,
    pub container_port: u16,
    pub proto: Proto,
}

impl PortBinding {
    /// The `PortBindings` key: `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }

    /// A binding from its `PortBindings` form: key `80/tcp`, `HostIp`,
    /// `HostPort` (either may be empty).
    pub fn from_docker(key: &str, host_ip: &str, host_port: &str) -> Result<PortBinding, PortError> {
        let (port, proto) = split_proto(key);
        let (start, end) = parse_range(port).map_err(|_| PortError::InvalidContainerPort(port.to_owned()))?;
        if start != end || start == 0 {
            return Err(PortError::InvalidContainerPort(port.to_owned()));
        }
        let host_ip = parse_ip(host_ip)?;
        let host_port = match host_port {
            "" => HostPort::Any,
            p => match parse_range(p).map_err(|_| PortError::InvalidHostPort(p.to_owned()))? {
                (0, 0) => HostPort::Any,
                (a, b) if a == b => HostPort::Port(a),
                (a, b) => HostPort::Range(a, b),
            },
        };
        Ok(PortBinding {
            host_ip,
            host_port,
            container_port: start,
            proto: proto.parse()?,
        })
    }
}

/// `80/tcp`, `53/udp`, `80` (tcp): a port (or range) and its protocol.
fn split_proto(s: &str) -> (&str, &str) {
    match s.split_once('/') {
        Some((port, "")) => (port, "tcp"),
        Some((port, proto)) => (port, proto),
        None => (s, "tcp"),
    }
}

/// `80` or `8000-8010`.
fn parse_range(s: &str) -> Result<(u16, u16), ()> {
    let num = |x: &str| -> Result<u16, ()> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        x.parse().map_err(|_| ())
    };
    match s.split_once('-') {
        None => num(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(());
            }
            Ok((a, b))
        }
    }
}

fn parse_ip(s: &str) -> Result<Option<IpAddr>, PortError> {
    let bare = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
    if bare.is_empty() {
        return Ok(None);
    }
    let ip: IpAddr = bare.parse().map_err(|_| PortError::InvalidIp(s.to_owned()))?;
    // 0.0.0.0 and :: mean every address: the same as none given.
    Ok(if ip.is_unspecified() { None } else { Some(ip) })
}

/// Parses one `-p` value into its bindings, one per container port.
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>, PortError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (ip, host) = match n {
        1 => ("", ""),
        2 => ("", parts[0]),
        3 => (parts[0], parts[1]),
        // An IPv6 address has colons of its own.
        _ => (
            &spec[..spec.len() - container.len() - parts[n - 2].len() - 2],
            parts[n - 2],
        ),
    };
    let (container, proto) = split_proto(container);
    let host_ip = parse_ip(ip)?;
    if container.is_empty() {
        return Err(PortError::NoPort(spec.to_owned()));
    }
    let (c_start, c_end) = parse_range(container)
        .ok()
        .filter(|(a, _)| *a != 0)
        .ok_or_else(|| PortError::InvalidContainerPort(container.to_owned()))?;
    let hosts = if host.is_empty() {
        None
    } else {
        Some(parse_range(host).map_err(|_| PortError::InvalidHostPort(host.to_owned()))?)
    };
    if let Some((h_start, h_end)) = hosts {
        if h_end - h_start != c_end - c_start && c_start != c_end {
            return Err(PortError::RangeMismatch(container.to_owned(), host.to_owned()));
        }
    }
    let proto: Proto = proto.parse()?;
    Ok((c_start..=c_end)
        .enumerate()
        .map(|(i, container_port)| PortBinding {
            host_ip,
            host_port: match hosts {
                None | Some((0, 0)) => HostPort::Any,
                Some((a, b)) if c_start == c_end && a != b => HostPort::Range(a, b),
                Some((a, _)) => HostPort::Port(a + i as u16),
            },
            container_port,
            proto,
        })
        .collect())
}

/// `-P`: every exposed port (`ExposedPorts` keys such as `80/tcp` or
/// `8000-8002/udp`) published on a free host port of every address.
pub fn publish_all<'a>(exposed: impl IntoIterator<Item = &'a str>) -> Result<Vec<PortBinding>, PortError> {
    let mut out = Vec::new();
    for key in exposed {
        let (port, proto) = split_proto(key);
        let (start, end) = parse_range(port)
            .ok()
            .filter(|(a, _)| *a != 0)
            .ok_or_else(|| PortError::InvalidContainerPort(port.to_owned()))?;
        let proto: Proto = proto.parse()?;
        out.extend((start..=end).map(|container_port| PortBinding {
            host_ip: None,
            host_port: HostPort::Any,
            container_port,
            proto,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(host_ip: Option<&str>, host_port: HostPort, container_port: u16, proto: Proto) -> PortBinding {
        PortBinding {
            host_ip: host_ip.map(|s| s.parse().unwrap()),
            host_port,
            container_port,
            proto,
        }
    }

    #[test]
    fn specs_parse_like_docker() {
        use HostPort::*;
        use Proto::*;
        assert_eq!(parse_publish("80").unwrap(), [b(None, Any, 80, Tcp)]);
        assert_eq!(parse_publish("8080:80").unwrap(), [b(None, Port(8080), 80, Tcp)]);
        assert_eq!(parse_publish("8080:80/udp").unwrap(), [b(None, Port(8080), 80, Udp)]);
        assert_eq!(parse_publish("8080:80/SCTP").unwrap(), [b(None, Port(8080), 80, Sctp)]);
        assert_eq!(
            parse_publish("127.0.0.1:8080:80").unwrap(),
            [b(Some("127.0.0.1"), Port(8080), 80, Tcp)]
        );
        assert_eq!(
            parse_publish("127.0.0.1::80").unwrap(),
            [b(Some("127.0.0.1"), Any, 80, Tcp)]
        );
        assert_eq!(
            parse_publish("0.0.0.0:8080:80").unwrap(),
            [b(None, Port(8080), 80, Tcp)]
        );
        assert_eq!(
            parse_publish("[::1]:8080:80").unwrap(),
            [b(Some("::1"), Port(8080), 80, Tcp)]
        );
        assert_eq!(
            parse_publish("::1:8080:80").unwrap(),
            [b(Some("::1"), Port(8080), 80, Tcp)]
        );
        assert_eq!(parse_publish("[::]:8080:80").unwrap(), [b(None, Port(8080), 80, Tcp)]);
        assert_eq!(
            parse_publish("8000-8002:80-82").unwrap(),
            [
                b(None, Port(8000), 80, Tcp),
                b(None, Port(8001), 81, Tcp),
                b(None, Port(8002), 82, Tcp)
            ]
        );
        assert_eq!(
            parse_publish("8000-8010:80").unwrap(),
            [b(None, Range(8000, 8010), 80, Tcp)]
        );
        assert_eq!(
            parse_publish("80-81/udp").unwrap(),
            [b(None, Any, 80, Udp), b(None, Any, 81, Udp)]
        );
    }

    #[test]
    fn bad_specs_get_dockers_messages() {
        let e = |s: &str| parse_publish(s).unwrap_err().to_string();
        assert_eq!(e("8080:"), "no port specified: 8080:<empty>");
        assert_eq!(e("8080:http"), "invalid containerPort: http");
        assert_eq!(e("8080:0"), "invalid containerPort: 0");
        assert_eq!(e("x:80"), "invalid hostPort: x");
        assert_eq!(e("70000:80"), "invalid hostPort: 70000");
        assert_eq!(
            e("8000-8001:80-82"),
            "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"
        );
        assert_eq!(e("8080:80/icmp"), "invalid proto: icmp");
        assert_eq!(e("1.2.3:8080:80"), "invalid IP address: 1.2.3");
        assert_eq!(e("90-80"), "invalid containerPort: 90-80");
    }

    #[test]
    fn docker_form_round_trips() {
        for spec in [
            "8080:80",
            "127.0.0.1:8080:80/udp",
            "80",
            "8000-8010:80",
            "[fd00::1]::53/udp",
        ] {
            for binding in parse_publish(spec).unwrap() {
                let ip = binding.host_ip.map(|i| i.to_string()).unwrap_or_default();
                let back = PortBinding::from_docker(&binding.key(), &ip, &binding.host_port.to_string()).unwrap();
                assert_eq!(back, binding, "{spec}");
            }
        }
        assert!(PortBinding::from_docker("80-81/tcp", "", "").is_err());
    }

    #[test]
    fn publish_all_takes_every_exposed_port() {
        let got = publish_all(["80/tcp", "53/udp", "9000-9001"]).unwrap();
        let ports: Vec<String> = got.iter().map(|b| b.key()).collect();
        assert_eq!(ports, ["80/tcp", "53/udp", "9000/tcp", "9001/tcp"]);
        assert!(got.iter().all(|b| b.host_port == HostPort::Any && b.host_ip.is_none()));
        assert_eq!(
            publish_all(["x/tcp"]).unwrap_err().to_string(),
            "invalid containerPort: x"
        );
    }
}
