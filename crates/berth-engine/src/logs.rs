//! `logs`: a container's json-file log, filtered by time and tail, and
//! followed across rotations until the container stops.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use berth_monitor::jsonlog::{self, Entry};

use crate::{io_err, Engine, EngineError, Result, Row};

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Only entries at or after this time (RFC 3339, compared as text after
    /// normalising to nanoseconds).
    pub since: Option<String>,
    pub until: Option<String>,
    /// The last N entries only.
    pub tail: Option<usize>,
    pub follow: bool,
}

/// An RFC 3339 time as nanoseconds since the epoch, for comparisons.
pub fn time_nanos(t: &str) -> Option<i128> {
    berth_image::images::parse_rfc3339_nanos(t)
}

/// `--since`/`--until` values: RFC 3339, Unix seconds (with fraction), or
/// a duration before now (`10m`, `1h30m`, `45s`).
pub fn parse_time_arg(s: &str, now_nanos: i128) -> Option<i128> {
    if let Some(t) = time_nanos(s) {
        return Some(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Some((secs * 1e9) as i128);
    }
    berth_runtime::state::parse_go_duration(s).map(|d| now_nanos - d.as_nanos() as i128)
}

fn keep(e: &Entry, since: Option<i128>, until: Option<i128>) -> bool {
    let t = time_nanos(&e.time).unwrap_or(0);
    since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
}

impl Engine {
    /// Calls `sink` with the container's log entries; with `follow`, keeps
    /// going until the container is no longer running.
    pub fn logs(&self, row: &Row, opts: &LogOptions, sink: &mut dyn FnMut(&Entry) -> io::Result<()>) -> Result<()> {
        if row.settings().host_config.log_config.kind == "none" {
            return Err(EngineError::State(
                "configured logging driver does not support reading".into(),
            ));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as i128;
        let since = match &opts.since {
            Some(s) => Some(
                parse_time_arg(s, now)
                    .ok_or_else(|| EngineError::State(format!("invalid value for \"since\": {s:?}")))?,
            ),
            None => None,
        };
        let until = match &opts.until {
            Some(s) => Some(
                parse_time_arg(s, now)
                    .ok_or_else(|| EngineError::State(format!("invalid value for \"until\": {s:?}")))?,
            ),
            None => None,
        };
        let path = self.log_path(&row.id);
        let sink_err = |e: io::Error| io_err("writing logs of", &path)(e);
        // Open the live file first, so nothing written meanwhile is lost.
        let mut live = File::open(&path).ok();
        let live_len = live.as_ref().and_then(|f| f.metadata().ok()).map_or(0, |m| m.len());
        let mut entries = Vec::new();
        for f in jsonlog::files(&path) {
            if f == path {
                if let Some(l) = &mut live {
                    let mut r = BufReader::new(io::Read::take(&mut *l, live_len));
                    read_lines(&mut r, &mut entries).map_err(io_err("reading", &path))?;
                }
            } else if let Ok(file) = File::open(&f) {
                jsonlog::read_entries(file, &mut entries).map_err(io_err("reading", &f))?;
            }
        }
        entries.retain(|e| keep(e, since, until));
        let skip = opts.tail.map_or(0, |n| entries.len().saturating_sub(n));
        for e in &entries[skip..] {
            sink(e).map_err(sink_err)?;
        }
        if !opts.follow {
            return Ok(());
        }
        let mut pos = live_len;
        let mut ino = live.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.ino());
        loop {
            let running = self
                .db()
                .get(&row.id)?
                .map(|r| self.sync(r))
                .transpose()?
                .is_some_and(|r| matches!(r.state.as_str(), "running" | "paused" | "restarting" | "created"));
            // Whatever the old file still got, then a rotated-in new one.
            if let Some(f) = &mut live {
                let mut batch = Vec::new();
                f.seek(SeekFrom::Start(pos)).map_err(io_err("reading", &path))?;
                let mut r = BufReader::new(&mut *f);
                pos += read_lines(&mut r, &mut batch).map_err(io_err("reading", &path))?;
                for e in batch.iter().filter(|e| keep(e, since, until)) {
                    sink(e).map_err(sink_err)?;
                }
            }
            let cur = std::fs::metadata(&path).ok().map(|m| m.ino());
            if cur.is_some() && cur != ino {
                live = File::open(&path).ok();
                ino = cur;
                pos = 0;
                continue;
            }
            if !running {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Reads whole lines (a torn last line stays for the next read); returns
/// the bytes consumed.
fn read_lines(r: &mut impl BufRead, out: &mut Vec<Entry>) -> io::Result<u64> {
    let mut used = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(used);
        }
        used += n as u64;
        if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
            out.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_compare_as_instants() {
        let a = time_nanos("2026-11-22T10:00:00Z").unwrap();
        let b = time_nanos("2026-11-22T10:00:00.5Z").unwrap();
        assert_eq!(b - a, 500_000_000);
        assert_eq!(time_nanos("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        assert_eq!(time_nanos("2000-03-01T00:00:00Z"), Some(951_868_800_000_000_000));
        assert_eq!(time_nanos("junk"), None);
    }

    #[test]
    fn since_takes_three_forms() {
        let now = 1_000_000_000_000i128;
        assert_eq!(parse_time_arg("10s", now), Some(now - 10_000_000_000));
        assert_eq!(parse_time_arg("1m30s", now), Some(now - 90_000_000_000));
        assert_eq!(parse_time_arg("12.5", now), Some(12_500_000_000));
        assert_eq!(parse_time_arg("1970-01-01T00:00:02Z", now), Some(2_000_000_000));
        assert_eq!(parse_time_arg("5x", now), None);
        assert_eq!(parse_time_arg("5", now), Some(5_000_000_000));
    }
}
