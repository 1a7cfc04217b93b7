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

/// Go-style durations: "5s", "250ms", "1m", "1.5s"; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let d = match s.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Duration::from_secs_f64(n),
        _ => berth_runtime::state::parse_go_duration(s).ok_or_else(|| anyhow::anyhow!("invalid duration {s:?}"))?,
    };
    if d.is_zero() {
        bail!("duration {s:?} must be greater than 0");
    }
    Ok(d)
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
