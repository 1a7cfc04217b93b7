//! What the listing, `inspect` and `history` commands show, in Docker's shapes.

use serde_json::{json, Map, Value};

use super::{display_name, is_digest_name, ImageRow, Images, Result};

/// One image as `docker images` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub id: String,
    /// `busybox:latest`, as Docker shows names.
    pub repo_tags: Vec<String>,
    /// `busybox@sha256:…`.
    pub repo_digests: Vec<String>,
    /// The config's `created`, seconds since the epoch (0 when absent or unreadable).
    pub created: i64,
    /// The config's `created` as written.
    pub created_text: Option<String>,
    pub size: u64,
    /// Holders (containers) using it.
    pub containers: u64,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// One line of `docker history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image ID for the top line, else `<missing>`.
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

/// Seconds since the epoch of an RFC 3339 time (`2024-01-02T03:04:05.5+01:00`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    parse_rfc3339_nanos(s).map(|n| n.div_euclid(1_000_000_000) as i64)
}

/// Nanoseconds since the epoch of an RFC 3339 time, the fraction kept (to nine digits).
pub fn parse_rfc3339_nanos(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: i128 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            nanos = format!("{:0<9}", &frac[..digits.min(9)]).parse().ok()?;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hour * 3600 + minute * 60 + second - offset) as i128 * 1_000_000_000 + nanos)
}

impl Images {
    /// `(RepoTags, RepoDigests)` as Docker shows them, from an image's recorded names.
    fn shown_names(names: impl IntoIterator<Item = String>) -> (Vec<String>, Vec<String>) {
        let (digests, tags): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| is_digest_name(n));
        (
            tags.iter().map(|n| display_name(n)).collect(),
            digests.iter().map(|n| display_name(n)).collect(),
        )
    }

    /// Every image, newest first, as `docker images` lists them.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let refs = self.db.ref_counts()?;
        let mut names: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
        for (name, image, _) in self.db.names()? {
            names.entry(image).or_default().push(name);
        }
        let mut out = Vec::new();
        for row in self.db.images()? {
            let (repo_tags, repo_digests) = Self::shown_names(names.remove(&row.id).unwrap_or_default());
            // The image ID is the config's digest.
            let labels = super::parse_digest(&row.id, "image ID")
                .and_then(|id| self.read_blob(&id, "image config"))
                .ok()
                .and_then(|bytes| crate::format::ImageConfig::parse(&bytes).ok())
                .and_then(|c| c.config)
                .map(|c| c.labels)
                .unwrap_or_default();
            out.push(ImageSummary {
                created: row.created.as_deref().and_then(parse_rfc3339).unwrap_or(0),
                created_text: row.created.clone(),
                containers: refs.get(&row.id).copied().unwrap_or(0),
                id: row.id,
                repo_tags,
                repo_digests,
                size: row.size,
                labels,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `docker image inspect`'s document for an image.
    pub fn inspect(&self, row: &ImageRow) -> Result<Value> {
        let resolved = self.read_image(row)?;
        let (repo_tags, repo_digests) = Self::shown_names(self.db.names_of(&row.id)?.into_iter().map(|(n, _)| n));
        let raw: Value = serde_json::from_slice(&resolved.config_bytes).unwrap_or(Value::Null);
        let mut config = Map::new();
        for (key, default) in [
            ("Hostname", json!("")),
            ("Domainname", json!("")),
            ("User", json!("")),
            ("AttachStdin", json!(false)),
            ("AttachStdout", json!(false)),
            ("AttachStderr", json!(false)),
            ("Tty", json!(false)),
            ("OpenStdin", json!(false)),
            ("StdinOnce", json!(false)),
            ("Env", Value::Null),
            ("Cmd", Value::Null),
            ("Image", json!("")),
            ("Volumes", Value::Null),
            ("WorkingDir", json!("")),
            ("Entrypoint", Value::Null),
            ("OnBuild", Value::Null),
            ("Labels", Value::Null),
        ] {
            config.insert(key.to_owned(), default);
        }
        if let Some(Value::Object(given)) = raw.get("config") {
            for (k, v) in given {
                config.insert(k.clone(), v.clone());
            }
        }
        let layers: Vec<String> = resolved.config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect();
        let text = |key: &str| raw.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
        let comment = resolved
            .config
            .history
            .last()
            .and_then(|h| h.comment.clone())
            .unwrap_or_default();
        let mut doc = json!({
            "Id": row.id,
            "RepoTags": repo_tags,
            "RepoDigests": repo_digests,
            "Parent": "",
            "Comment": comment,
            "Created": resolved.config.created.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "DockerVersion": text("docker_version"),
            "Author": resolved.config.author.clone().unwrap_or_default(),
            "Config": Value::Object(config),
            "Architecture": resolved.config.architecture,
            "Os": resolved.config.os,
            "Size": row.size,
            "GraphDriver": {
                "Name": if self.snapshots.whiteouts() == crate::layer::Whiteouts::Apply { "vfs" } else { "overlay2" },
                "Data": Value::Null,
            },
            "RootFS": { "Type": "layers", "Layers": layers },
            "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
        });
        if let Some(variant) = &resolved.config.variant {
            doc["Variant"] = json!(variant);
        }
        Ok(doc)
    }

    /// `docker history`'s lines for an image, newest first.
    pub fn history(&self, row: &ImageRow) -> Result<Vec<HistoryRow>> {
        let resolved = self.read_image(row)?;
        let mut sizes = self.db.image_layers(&row.id)?.into_iter().map(|l| l.size);
        let mut rows: Vec<HistoryRow> = Vec::new();
        if resolved.config.history.is_empty() {
            // No history: one line per layer, as Docker shows.
            for size in sizes {
                rows.push(HistoryRow {
                    id: "<missing>".into(),
                    created: 0,
                    created_by: String::new(),
                    size,
                    comment: String::new(),
                });
            }
        } else {
            for h in &resolved.config.history {
                let size = if h.empty_layer { 0 } else { sizes.next().unwrap_or(0) };
                rows.push(HistoryRow {
                    id: "<missing>".into(),
                    created: h.created.as_deref().and_then(parse_rfc3339).unwrap_or(0),
                    created_by: h.created_by.clone().unwrap_or_default(),
                    size,
                    comment: h.comment.clone().unwrap_or_default(),
                });
            }
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = row.id.clone();
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T12:00:00.123456789Z"), Some(1_709_208_000));
        assert_eq!(parse_rfc3339("2024-02-29T13:00:00+01:00"), Some(1_709_208_000));
        assert_eq!(parse_rfc3339("2024-02-29"), None);
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
    }
}
