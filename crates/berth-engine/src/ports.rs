//! Docker's port syntax: `-p [ip:][hostPort:]containerPort[/proto]` with
//! ranges, and `--expose port[-port][/proto]`, into `PortBindings` and
//! `ExposedPorts`.

use std::collections::BTreeMap;

use crate::config::PortBinding;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid port specification {spec:?}: {reason}")]
pub struct PortError {
    pub spec: String,
    pub reason: String,
}

fn err(spec: &str, reason: impl Into<String>) -> PortError {
    PortError {
        spec: spec.into(),
        reason: reason.into(),
    }
}

/// `80`, `8000-8010` → (first, last).
fn range(spec: &str, s: &str, what: &str) -> Result<(u16, u16), PortError> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let n = |v: &str| {
        v.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| err(spec, format!("invalid {what} {v:?}")))
    };
    let (a, b) = (n(a)?, n(b)?);
    if b < a {
        return Err(err(spec, format!("invalid {what} range {s:?}")));
    }
    Ok((a, b))
}

fn proto(spec: &str, p: &str) -> Result<String, PortError> {
    match p.to_ascii_lowercase().as_str() {
        "" | "tcp" => Ok("tcp".into()),
        "udp" => Ok("udp".into()),
        "sctp" => Ok("sctp".into()),
        other => Err(err(spec, format!("unknown protocol {other:?}"))),
    }
}

/// One `-p` value: the container ports (`80/tcp`) and their bindings.
pub fn parse_publish(spec: &str) -> Result<Vec<(String, PortBinding)>, PortError> {
    let (rest, proto_s) = spec.rsplit_once('/').unwrap_or((spec, ""));
    let proto = proto(spec, proto_s)?;
    // An IPv6 host address comes in brackets: [::1]:8080:80.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r.split_once("]:").ok_or_else(|| err(spec, "unclosed IPv6 address"))?;
        (ip.to_string(), r)
    } else {
        match rest.matches(':').count() {
            2 => {
                let (ip, r) = rest.split_once(':').expect("two colons");
                (ip.to_string(), r)
            }
            0 | 1 => (String::new(), rest),
            _ => return Err(err(spec, "too many colons")),
        }
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(err(spec, format!("invalid host address {ip:?}")));
    }
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest),
    };
    let (c0, c1) = range(spec, container, "container port")?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(range(spec, host, "host port")?)
    };
    let mut out = Vec::new();
    for (i, c) in (c0..=c1).enumerate() {
        let host_port = match host_range {
            None => String::new(),
            // One host port for a container range: the same host port is
            // not possible for several; Docker takes a host range of equal size,
            // or a host range to pick one from when the container side is one port.
            Some((h0, h1)) if c0 == c1 && h0 != h1 => format!("{h0}-{h1}"),
            Some((h0, h1)) => {
                if h1 - h0 != c1 - c0 {
                    return Err(err(spec, "host and container port ranges differ in size"));
                }
                (h0 + i as u16).to_string()
            }
        };
        out.push((
            format!("{c}/{proto}"),
            PortBinding {
                host_ip: ip.clone(),
                host_port,
            },
        ));
    }
    Ok(out)
}

/// One `--expose` value: the container ports it names (`80/tcp`).
pub fn parse_expose(spec: &str) -> Result<Vec<String>, PortError> {
    let (rest, proto_s) = spec.rsplit_once('/').unwrap_or((spec, ""));
    let proto = proto(spec, proto_s)?;
    let (a, b) = range(spec, rest, "port")?;
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

/// Adds `-p` values to a `PortBindings` map.
pub fn add_bindings(map: &mut BTreeMap<String, Vec<PortBinding>>, spec: &str) -> Result<(), PortError> {
    for (port, b) in parse_publish(spec)? {
        map.entry(port).or_default().push(b);
    }
    Ok(())
}

/// `80/tcp` → (80, "tcp").
pub fn split_port(key: &str) -> Option<(u16, &str)> {
    let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    Some((p.parse().ok()?, proto))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    #[test]
    fn publish_forms_follow_docker() {
        assert_eq!(parse_publish("80").unwrap(), [("80/tcp".into(), b("", ""))]);
        assert_eq!(parse_publish("8080:80").unwrap(), [("80/tcp".into(), b("", "8080"))]);
        assert_eq!(
            parse_publish("127.0.0.1:8080:80/udp").unwrap(),
            [("80/udp".into(), b("127.0.0.1", "8080"))]
        );
        assert_eq!(
            parse_publish("127.0.0.1::80").unwrap(),
            [("80/tcp".into(), b("127.0.0.1", ""))]
        );
        assert_eq!(
            parse_publish("[::1]:8080:80").unwrap(),
            [("80/tcp".into(), b("::1", "8080"))]
        );
        assert_eq!(
            parse_publish("8000-8001:80-81").unwrap(),
            [("80/tcp".into(), b("", "8000")), ("81/tcp".into(), b("", "8001"))]
        );
        assert_eq!(
            parse_publish("8000-8010:80").unwrap(),
            [("80/tcp".into(), b("", "8000-8010"))]
        );
        for bad in [
            "",
            "0",
            "70000",
            "a:80",
            "1.2.3:80:80",
            "8000-8002:80-81",
            "80/icmp",
            "1:2:3:4",
            "90-80",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
        assert!(parse_publish("x:1:2")
            .unwrap_err()
            .to_string()
            .contains("invalid host address"));
    }

    #[test]
    fn expose_ranges() {
        assert_eq!(parse_expose("80").unwrap(), ["80/tcp"]);
        assert_eq!(parse_expose("53/udp").unwrap(), ["53/udp"]);
        assert_eq!(parse_expose("7000-7002").unwrap(), ["7000/tcp", "7001/tcp", "7002/tcp"]);
        assert!(parse_expose("x").is_err());
        assert_eq!(split_port("53/udp"), Some((53, "udp")));
    }
}
