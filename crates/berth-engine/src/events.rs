//! `events`: the journal every change writes (`events` in `berth.db`), read as Docker's
//! event stream. Past events from `since`, then new ones as they are committed (polled
//! by sequence number, so a poll costs one indexed read) until `until`, or for ever.

use std::collections::BTreeMap;
use std::time::Duration;

use rusqlite::params;
use serde_json::{json, Value};

use berth_image::images::{Images, Removed};

use crate::db::{Db, DbError, Event, NewEvent};
use crate::{Engine, EngineError, Result};

/// How often a follower looks for new events.
pub const POLL: Duration = Duration::from_millis(150);

/// The filter keys Docker's `events --filter` takes that berth's journal can match.
const KEYS: [&str; 7] = ["type", "container", "event", "image", "label", "volume", "scope"];

/// `--filter`s: values of one key are alternatives, keys must all match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    by_key: BTreeMap<String, Vec<String>>,
}

impl EventFilter {
    /// From `KEY=VALUE` strings.
    pub fn parse(filters: &[String]) -> Result<EventFilter> {
        let mut f = EventFilter::default();
        for s in filters {
            let (k, v) = s
                .split_once('=')
                .ok_or_else(|| EngineError::State(format!("bad format of filter (expected name=value): {s}")))?;
            if !KEYS.contains(&k) {
                return Err(EngineError::State(format!("invalid filter '{k}'")));
            }
            f.by_key.entry(k.to_owned()).or_default().push(v.to_owned());
        }
        Ok(f)
    }

    /// Whether `e` passes, as Docker's daemon matches: `container` and `volume` by a prefix
    /// of the actor's id or `name` attribute (of any event type, as Docker's), `image` by
    /// the actor or its image (or name) attribute, with or without the tag, `event` by
    /// action (`exec_start` matches `exec_start: sh`), `label` by attribute (containers'
    /// labels are attributes of their events), all `label`s at once.
    pub fn matches(&self, e: &Event) -> bool {
        let attrs: BTreeMap<String, String> = serde_json::from_str(&e.attributes).unwrap_or_default();
        let name = attrs.get("name").map(String::as_str).unwrap_or_default();
        let fuzzy = |values: &[String]| {
            values
                .iter()
                .any(|v| e.actor.starts_with(v.as_str()) || name.starts_with(v.as_str()))
        };
        self.by_key.iter().all(|(k, values)| match k.as_str() {
            "type" => values.contains(&e.kind),
            "event" => values
                .iter()
                .any(|v| e.action == *v || e.action.split_once(':').is_some_and(|(a, _)| a == v)),
            "container" | "volume" => fuzzy(values),
            "image" => {
                let image = attrs
                    .get(if e.kind == "image" { "name" } else { "image" })
                    .map(String::as_str)
                    .unwrap_or_default();
                [e.actor.as_str(), image]
                    .iter()
                    .flat_map(|s| [*s, strip_tag(s)])
                    .any(|s| !s.is_empty() && values.iter().any(|v| v == s))
            }
            "label" => values.iter().all(|v| crate::volumes::label_matches(&attrs, v)),
            "scope" => values.iter().any(|v| v == "local"),
            _ => false,
        })
    }
}

/// An image name without its tag (`busybox:1` -> `busybox`; a registry's port stays).
fn strip_tag(name: &str) -> &str {
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') && !name.contains('@') => &name[..i],
        _ => name,
    }
}

/// Docker's event message (the `/events` stream's JSON): container events also carry the
/// deprecated `status`, `id` and `from`.
pub fn message(e: &Event) -> Value {
    let attrs: Value = serde_json::from_str(&e.attributes).unwrap_or_else(|_| json!({}));
    let mut m = serde_json::Map::new();
    if e.kind == "container" {
        m.insert("status".into(), json!(e.action));
        m.insert("id".into(), json!(e.actor));
        m.insert("from".into(), attrs.get("image").cloned().unwrap_or(json!("")));
    } else if e.kind == "image" {
        // dockerd 20.10 fills these for images too (not `from`; `id` left out when empty).
        m.insert("status".into(), json!(e.action));
        if !e.actor.is_empty() {
            m.insert("id".into(), json!(e.actor));
        }
    }
    m.insert("Type".into(), json!(e.kind));
    m.insert("Action".into(), json!(e.action));
    m.insert("Actor".into(), json!({"ID": e.actor, "Attributes": attrs}));
    m.insert("scope".into(), json!("local"));
    m.insert("time".into(), json!(e.time_nano.div_euclid(1_000_000_000)));
    m.insert("timeNano".into(), json!(e.time_nano));
    Value::Object(m)
}

/// The message with the field names a `--format` template uses (Go's: `.Status`, `.ID`,
/// `.From`, `.Time`, `.TimeNano`, `.Scope`).
pub fn template_value(e: &Event) -> Value {
    let mut m = message(e);
    let obj = m.as_object_mut().expect("object");
    for (json_name, go_name) in [
        ("status", "Status"),
        ("id", "ID"),
        ("from", "From"),
        ("scope", "Scope"),
        ("time", "Time"),
        ("timeNano", "TimeNano"),
    ] {
        let v = obj.remove(json_name).unwrap_or(json!(""));
        obj.insert(go_name.into(), v);
    }
    m
}

/// `2024-01-02T03:04:05.000000006Z`: RFC 3339 in UTC with nine fraction digits.
pub fn time_text(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let t = berth_runtime::state::format_rfc3339(secs, 0);
    format!("{}.{frac:09}Z", t.trim_end_matches('Z'))
}

/// Docker's line for an event: time, type, action, actor, then the attributes sorted by
/// key: `2024-…Z container start 3f2a… (image=busybox, name=web)`.
pub fn line(e: &Event) -> String {
    let attrs: BTreeMap<String, String> = serde_json::from_str(&e.attributes).unwrap_or_default();
    let mut s = format!("{} {} {} {}", time_text(e.time_nano), e.kind, e.action, e.actor);
    if !attrs.is_empty() {
        let kv: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!(" ({})", kv.join(", ")));
    }
    s
}

/// What `events` reads.
#[derive(Debug, Clone, Default)]
pub struct EventOptions {
    /// Nanoseconds since the epoch; `None`: only events from now on.
    pub since: Option<i128>,
    /// Stop at this time; `None`: follow for ever.
    pub until: Option<i128>,
    pub filter: EventFilter,
}

impl Db {
    /// Events after sequence number `after` at or after `since` (ns), oldest first.
    pub fn events_since(&self, after: i64, since: i64) -> std::result::Result<Vec<Event>, DbError> {
        let err = || self.err("read events");
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT seq, time_nano, type, action, actor, attributes FROM events
                 WHERE seq > ?1 AND time_nano >= ?2 ORDER BY seq",
            )
            .map_err(err())?;
        let rows = stmt
            .query_map(params![after, since], |r| {
                Ok(Event {
                    seq: r.get(0)?,
                    time_nano: r.get(1)?,
                    kind: r.get(2)?,
                    action: r.get(3)?,
                    actor: r.get(4)?,
                    attributes: r.get(5)?,
                })
            })
            .map_err(err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(err())
    }

    /// The newest event's sequence number (0 for none).
    pub fn last_event(&self) -> std::result::Result<i64, DbError> {
        self.conn()
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))
            .map_err(self.err("read events"))
    }
}

fn now_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

impl Engine {
    /// Calls `out` with each event that passes the filter, oldest first: those since
    /// `opts.since`, then (while `until` has not passed) each new one as it is recorded.
    /// Returns when `until` passed, or when `out` fails (the reader went away).
    pub fn events(&self, opts: &EventOptions, out: &mut dyn FnMut(&Event) -> std::io::Result<()>) -> Result<()> {
        let clamp = |t: i128| t.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        let mut last = match opts.since {
            Some(_) => 0,
            None => self.db.last_event()?,
        };
        let since = clamp(opts.since.unwrap_or(i64::MIN as i128));
        loop {
            // The time before the read: an event committed after it is left for the next poll.
            let now = now_nanos();
            for e in self.db.events_since(last, since)? {
                last = e.seq;
                if opts.until.is_some_and(|u| i128::from(e.time_nano) > u) {
                    return Ok(());
                }
                if opts.filter.matches(&e) && out(&e).is_err() {
                    return Ok(());
                }
            }
            if opts.until.is_some_and(|u| now >= u) {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
    }
}

/// An image event as dockerd 20.10 writes it. `actor` is the image ID, or for `pull` and
/// `push` the reference as the user knows it (`busybox:latest`, `127.0.0.1:5000/app:1`), or
/// empty for `prune`; `name` is the `name` attribute (the new name for `tag`, the repository
/// for `pull`/`push`, the image ID otherwise); the image's labels come along as attributes,
/// as for containers.
pub fn image_event(action: &str, actor: &str, name: Option<&str>, labels: &BTreeMap<String, String>) -> NewEvent {
    let mut attributes: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    if let Some(name) = name {
        attributes.insert("name".into(), json!(name));
    }
    NewEvent {
        kind: "image",
        action: action.into(),
        actor: actor.into(),
        attributes,
    }
}

/// The labels of image `id` (its config's `Labels`), for its events; none if it is gone.
pub fn image_labels(images: &Images, id: &str) -> BTreeMap<String, String> {
    let Ok(row) = images.resolve(id) else {
        return BTreeMap::new();
    };
    images
        .config_bytes(&row)
        .ok()
        .and_then(|bytes| berth_image::format::ImageConfig::parse(&bytes).ok())
        .and_then(|c| c.config)
        .map(|c| c.labels)
        .unwrap_or_default()
}

/// The journal entries of image removals (`rmi`, `image prune`), as dockerd writes them: an
/// `untag` for each name removed, then a `delete` without labels, both with the image ID as
/// actor and name. Removed by a name (`by_name`: `rmi NAME`, a prune), a digest name that
/// goes with a tag of its repository is the tag's companion and gets no event of its own
/// (dockerd cleans those up silently); removed by ID every name gets one. `removed` lists an
/// image's names before its `Deleted`; names with no `Deleted` after them are `untagged`'s
/// (an `rmi` that only untagged). `labels(id)` gives an image's labels, read before it went.
pub fn removal_events(
    removed: &[Removed],
    untagged: Option<&str>,
    by_name: bool,
    labels: &dyn Fn(&str) -> BTreeMap<String, String>,
) -> Vec<NewEvent> {
    let mut out = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let untags = |names: &[&str], id: &str, out: &mut Vec<NewEvent>| {
        let tagged_repos: Vec<String> = names
            .iter()
            .filter(|n| !n.contains('@'))
            .map(|n| berth_image::images::split_name(n).0)
            .collect();
        let l = labels(id);
        for name in names {
            let companion = by_name
                && name
                    .split_once('@')
                    .is_some_and(|(repo, _)| tagged_repos.iter().any(|r| r == repo));
            if !companion {
                out.push(image_event("untag", id, Some(id), &l));
            }
        }
    };
    for r in removed {
        match r {
            Removed::Untagged(name) => names.push(name),
            Removed::Deleted(id) => {
                untags(&names, id, &mut out);
                out.push(image_event("delete", id, Some(id), &BTreeMap::new()));
                names.clear();
            }
            Removed::DeletedLayer(_) => {}
        }
    }
    if let Some(id) = untagged {
        untags(&names, id, &mut out);
    }
    out
}

/// `rmi`: removes `name` from `images` ([`Images::remove`]) and journals what went.
pub fn remove_image(images: &mut Images, db: &Db, name: &str, force: bool) -> Result<Vec<Removed>> {
    let id = images.resolve(name)?.id;
    let labels = image_labels(images, &id);
    // As `resolve` (and Docker) look names up: a reference naming an image first, then IDs.
    let by_name = berth_image::registry::Reference::parse(name)
        .ok()
        .and_then(|r| images.db().image_by_name(&berth_image::images::reference_key(&r)).ok())
        .flatten()
        .is_some();
    let removed = images.remove(name, force)?;
    for e in removal_events(&removed, Some(&id), by_name, &|_| labels.clone()) {
        db.add_event(&e)?;
    }
    Ok(removed)
}

/// `image prune` (and `system prune`'s images): [`Images::prune`], journaled as dockerd
/// does: the removals, then a `prune` event with the bytes reclaimed.
pub fn prune_images(images: &mut Images, db: &Db, all: bool) -> Result<(Vec<Removed>, u64)> {
    let mut labels = std::collections::HashMap::new();
    for row in images.db().images()? {
        let l = image_labels(images, &row.id);
        labels.insert(row.id, l);
    }
    let (removed, reclaimed) = images.prune(all)?;
    for e in removal_events(&removed, None, true, &|id| labels.get(id).cloned().unwrap_or_default()) {
        db.add_event(&e)?;
    }
    let mut attrs = BTreeMap::new();
    attrs.insert("reclaimed".to_owned(), reclaimed.to_string());
    db.add_event(&image_event("prune", "", None, &attrs))?;
    Ok((removed, reclaimed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_are_journaled_as_dockerd_does() {
        let removed = [
            Removed::Untagged("reg/app:1".into()),
            Removed::Untagged("reg/app@sha256:aa".into()),
            Removed::Untagged("other@sha256:bb".into()),
            Removed::Deleted("sha256:1".into()),
            Removed::Untagged("x:2".into()),
        ];
        let labels = |_: &str| BTreeMap::from([("team".to_owned(), "infra".to_owned())]);
        let got: Vec<(String, String, usize)> = removal_events(&removed, Some("sha256:2"), true, &labels)
            .iter()
            .map(|e| (e.action.clone(), e.actor.clone(), e.attributes.len()))
            .collect();
        let want = [
            // The tag, and the digest of another repository; not the tag's companion digest.
            ("untag", "sha256:1", 2),
            ("untag", "sha256:1", 2),
            // Without labels: the image is gone.
            ("delete", "sha256:1", 1),
            ("untag", "sha256:2", 2),
        ];
        let want: Vec<(String, String, usize)> = want
            .iter()
            .map(|(a, b, n)| (a.to_string(), b.to_string(), *n))
            .collect();
        assert_eq!(got, want);
        // Removed by ID: every name has its untag, the companion digest too.
        let by_id = removal_events(&removed[..4], None, false, &labels);
        assert_eq!(by_id.iter().filter(|e| e.action == "untag").count(), 3);
        let e = image_event(
            "prune",
            "",
            None,
            &BTreeMap::from([("reclaimed".to_owned(), "7".to_owned())]),
        );
        let ev = ev("image", &e.action, "", Value::Object(e.attributes));
        let m = message(&ev);
        assert_eq!(m["status"], "prune");
        assert!(m.get("id").is_none(), "{m}");
    }

    fn ev(kind: &str, action: &str, actor: &str, attrs: Value) -> Event {
        Event {
            seq: 1,
            time_nano: 1_700_000_000_000_000_042,
            kind: kind.into(),
            action: action.into(),
            actor: actor.into(),
            attributes: attrs.to_string(),
        }
    }

    #[test]
    fn lines_and_messages_are_dockers() {
        let e = ev(
            "container",
            "start",
            "abc",
            json!({"name": "web", "image": "bb", "a": "1"}),
        );
        assert_eq!(
            line(&e),
            "2023-11-14T22:13:20.000000042Z container start abc (a=1, image=bb, name=web)"
        );
        let m = message(&e);
        assert_eq!(m["status"], "start");
        assert_eq!(m["from"], "bb");
        assert_eq!(m["Actor"]["Attributes"]["name"], "web");
        assert_eq!(m["time"], 1_700_000_000);
        let v = ev("volume", "create", "data", json!({"driver": "local"}));
        assert!(message(&v).get("status").is_none());
        assert_eq!(
            line(&v),
            "2023-11-14T22:13:20.000000042Z volume create data (driver=local)"
        );
        let t = template_value(&e);
        assert_eq!((t["ID"].as_str(), t["Scope"].as_str()), (Some("abc"), Some("local")));
    }

    #[test]
    fn filters_match_as_dockers_daemon_does() {
        let f = |s: &[&str]| EventFilter::parse(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap();
        let start = ev(
            "container",
            "start",
            "abc123",
            json!({"name": "web", "image": "bb:latest", "tier": "front"}),
        );
        let exec = ev(
            "container",
            "exec_start: sh -c x",
            "abc123",
            json!({"name": "web", "image": "bb"}),
        );
        let vol = ev(
            "volume",
            "mount",
            "data",
            json!({"container": "abc123", "driver": "local"}),
        );
        assert!(f(&["type=container"]).matches(&start) && !f(&["type=container"]).matches(&vol));
        assert!(f(&["type=container", "type=volume"]).matches(&vol));
        assert!(f(&["container=web"]).matches(&start) && f(&["container=abc"]).matches(&start));
        assert!(!f(&["container=abc"]).matches(&vol) && !f(&["container=zzz"]).matches(&start));
        // Docker matches the key against any event's actor: a volume named like a prefix.
        assert!(f(&["container=da"]).matches(&vol));
        assert!(f(&["event=exec_start"]).matches(&exec) && !f(&["event=start"]).matches(&exec));
        assert!(f(&["image=bb"]).matches(&start) && f(&["image=bb:latest"]).matches(&start));
        assert!(!f(&["image=other"]).matches(&start) && !f(&["image=bb"]).matches(&vol));
        assert_eq!(strip_tag("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(strip_tag("127.0.0.1:5000/app:v1"), "127.0.0.1:5000/app");
        assert!(f(&["label=tier=front"]).matches(&start) && !f(&["label=tier=back"]).matches(&start));
        assert!(f(&["volume=data", "event=mount"]).matches(&vol) && !f(&["volume=data"]).matches(&start));
        assert!(f(&["type=volume", "volume=data"]).matches(&vol));
        assert!(EventFilter::parse(&["colour=red".into()]).is_err());
        assert!(EventFilter::parse(&["type".into()]).is_err());
    }
}
