//! Sizes and durations the way Docker prints them (its `go-units` package).

/// `%.{precision}g` with Go's trailing-zero removal.
fn g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let exp = value.abs().log10().floor() as i32;
    let decimals = (precision as i32 - 1 - exp).max(0) as usize;
    let s = format!("{value:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Decimal units with three significant digits: `4.26MB`, `856kB`, `1.2GB` (`docker images`).
pub fn human_size(bytes: u64) -> String {
    human_size_precision(bytes, 3)
}

/// Decimal units with `precision` significant digits.
pub fn human_size_precision(bytes: u64, precision: usize) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    // Rounding can reach the next unit (999.96kB -> 1e+03kB in Go); show it as the next unit.
    let mut shown = g(size, precision);
    if shown.parse::<f64>().map(|v| v >= 1000.0).unwrap_or(false) && i < UNITS.len() - 1 {
        i += 1;
        shown = g(size / 1000.0, precision);
    }
    format!("{shown}{}", UNITS[i])
}

/// Binary units with four significant digits: `1.953MiB`, `23.44GiB`, `0B` (go-units'
/// `BytesSize`: `docker stats`' memory column, `info`'s Total Memory).
pub fn bytes_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut size = bytes as f64;
    let mut i = 0;
    while size >= 1024.0 && i < UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{}{}", g(size, 4), UNITS[i])
}

/// How long ago, as Docker's `HumanDuration`: `Less than a second`, `About a minute`,
/// `3 hours`, `2 weeks`…
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let minutes = s / 60;
    let hours = (s as f64 / 3600.0).round() as i64;
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

/// `<duration> ago`, or `N/A` for an unknown time (0).
pub fn since(created: i64, now: i64) -> String {
    if created <= 0 {
        return "N/A".into();
    }
    format!("{} ago", human_duration(now - created))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_240), "1.24kB");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(4_000_000), "4MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(999_960), "1MB");
        assert_eq!(human_size_precision(1_234_567, 4), "1.235MB");
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(2_048_000), "1.953MiB");
        assert_eq!(bytes_size(24 << 30), "24GiB");
        assert_eq!(bytes_size(512 << 20), "512MiB");
        assert_eq!(bytes_size(25_165_824_000), "23.44GiB");
    }

    #[test]
    fn durations_match_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
        assert_eq!(human_duration(90 * 86400), "3 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
        assert_eq!(since(0, 100), "N/A");
    }
}
