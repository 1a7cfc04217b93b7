use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Result};
use berth_runtime::container::events::{self, Event};
use berth_runtime::Root;

pub fn run(root: &Root, id: &str, interval: &str, stats_once: bool) -> Result<i32> {
    if stats_once {
        let data = events::stats(root, id).map_err(super::chain)?;
        super::print_json(&Event {
            typ: "stats",
            id,
            data: Some(data),
        })?;
        return Ok(0);
    }
    let every = parse_duration(interval)?;
    let mut out = std::io::stdout();
    events::stream(root, id, every, &mut |ev| {
        serde_json::to_writer(&mut out, ev).is_ok() && writeln!(out).is_ok() && out.flush().is_ok()
    })
    .map_err(super::chain)?;
    Ok(0)
}

/// Go-style durations: "5s", "250ms", "1m", "1.5s".
pub fn parse_duration(s: &str) -> Result<Duration> {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| anyhow::anyhow!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("invalid duration {s:?}"),
    };
    if secs <= 0.0 {
        bail!("duration {s:?} must be greater than 0");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("x").is_err());
    }
}
