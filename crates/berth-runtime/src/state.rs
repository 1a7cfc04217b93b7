//! A container's persisted state, its status, and the runtime's state root.
//!
//! Layout under the root (`--root`, default `/run/berth-runc`):
//! `<root>/<id>/state.json` (written once `create` succeeded) and
//! `<root>/<id>/exec.fifo` (present while the container is created but not
//! started). The directory itself is made first, atomically, so a second
//! `create` with the same id fails; while it has no state.json the container
//! is "creating".

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_cgroups::{Cgroup, FreezerState};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
pub const OCI_VERSION: &str = "1.0.2";

/// The OCI lifecycle states, plus runc's "paused".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What the runtime remembers about a container between invocations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Host pid of the container's init process.
    pub pid: i32,
    /// Start time of `pid` (clock ticks since boot, /proc/<pid>/stat field 22),
    /// so a recycled pid is never mistaken for the container.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time, nanoseconds, UTC.
    pub created: String,
    pub cgroup: Option<Cgroup>,
    /// The spec the container was created from (with updates applied).
    pub config: Spec,
    /// Whether the runtime ran without root (no cgroups unless delegated).
    #[serde(default)]
    pub rootless: bool,
    /// Created with `--no-new-keyring`: `exec` keeps the caller's keyring too.
    #[serde(default)]
    pub no_new_keyring: bool,
}

/// The OCI state document printed by `state` and given to hooks.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
}

/// The runtime's root directory holding one directory per container.
#[derive(Clone, Debug)]
pub struct Root {
    pub dir: PathBuf,
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root { dir: dir.into() }
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Atomically claim `id`: fails with `Exists` if it is taken.
    pub fn claim(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        fs::create_dir_all(&self.dir).at("creating state root", &self.dir)?;
        let dir = self.container_dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Exists(id.to_string())),
            Err(e) => Err(Error::path("creating state directory", dir, e)),
        }
    }

    /// Load a container's state; `NotFound` if it has none.
    pub fn load(&self, id: &str) -> Result<State> {
        check_id(id)?;
        let path = self.container_dir(id).join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound(id.to_string())),
            Err(e) => return Err(Error::path("reading state", path, e)),
        };
        serde_json::from_slice(&data).map_err(|e| Error::Invalid(format!("corrupt state file {}: {e}", path.display())))
    }

    /// Ids of every container directory, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(Error::path("listing state root", &self.dir, e)),
        };
        for entry in rd.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if let Some(name) = entry.file_name().to_str() {
                    ids.push(name.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

impl State {
    /// Write state.json atomically (temp file + rename).
    pub fn save(&self, root: &Root) -> Result<()> {
        let dir = root.container_dir(&self.id);
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec(self).map_err(|e| Error::Invalid(format!("encoding state: {e}")))?;
        let mut f = fs::File::create(&tmp).at("writing state", &tmp)?;
        f.write_all(&data).at("writing state", &tmp)?;
        drop(f);
        let path = dir.join(STATE_FILE);
        fs::rename(&tmp, &path).at("writing state", &path)
    }

    /// Is the init process still the one we started (and not a zombie)?
    pub fn init_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        match proc_stat(self.pid) {
            Some((state, start)) => start == self.pid_start_time && state != 'Z' && state != 'X',
            None => false,
        }
    }

    /// The current status, read from the live system.
    pub fn status(&self, root: &Root) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        let fifo = root.container_dir(&self.id).join(EXEC_FIFO);
        // The fifo outlives the start of a `start` killed before removing
        // it; init's end of it closes on exec, so only an init still
        // holding it is waiting to be started.
        if fifo.exists() && holds_file(self.pid, &fifo).unwrap_or(true) {
            return Status::Created;
        }
        if let Some(cg) = &self.cgroup {
            if matches!(cg.freezer_state(), Ok(FreezerState::Frozen)) {
                return Status::Paused;
            }
        }
        Status::Running
    }

    /// The OCI state document for this container.
    pub fn oci(&self, root: &Root) -> OciState {
        let status = self.status(root);
        OciState {
            oci_version: self.config.version().clone(),
            id: self.id.clone(),
            pid: if status == Status::Stopped { 0 } else { self.pid },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: owner_of(&root.container_dir(&self.id)),
            annotations: self.config.annotations().clone().unwrap_or_default(),
        }
    }
}

/// runc's rule for container ids.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

/// Whether process `pid` has `path` open; `None` when its descriptors
/// cannot be read (another user's non-dumpable process).
fn holds_file(pid: i32, path: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let want = fs::metadata(path).ok()?;
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(fds.flatten().any(|fd| {
        // Follows the descriptor itself, whatever namespace its path is in.
        fs::metadata(fd.path()).is_ok_and(|m| m.dev() == want.dev() && m.ino() == want.ino())
    }))
}

/// (state letter, start time) of a process, from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<(char, u64)> {
    // The command name may contain spaces and parentheses: split at the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3 (state); starttime is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Name of the user owning `path`, as runc shows in `list`.
pub fn owner_of(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(md) = fs::metadata(path) else {
        return String::new();
    };
    user_name(md.uid()).unwrap_or_else(|| format!("#{}", md.uid()))
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        f.next()?;
        (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// A Go duration (`time.ParseDuration`): a sequence of numbers with units,
/// `300ms`, `1.5h`, `2h45m`, `10us`; `0` alone too. Negative values and
/// unknown units give `None`.
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut rest = s;
    let mut secs = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        secs += n * scale;
    }
    Some(std::time::Duration::from_secs_f64(secs))
}

/// Current time as Go's RFC3339Nano (trailing zeros of the fraction dropped).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        use std::time::Duration;
        assert_eq!(parse_go_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "5", "x", "5x", "-1s", "s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_matches_go() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1_795_356_846, 105_048_576),
            "2026-11-22T14:14:06.105048576Z"
        );
        assert_eq!(format_rfc3339(951_782_400, 500_000_000), "2000-02-29T00:00:00.5Z");
    }

    #[test]
    fn open_files_are_found_by_inode() {
        let dir = tempfile::tempdir().unwrap();
        let (held, other) = (dir.path().join("held"), dir.path().join("other"));
        fs::write(&other, "").unwrap();
        let f = fs::File::create(&held).unwrap();
        let me = std::process::id() as i32;
        assert_eq!(holds_file(me, &held), Some(true));
        assert_eq!(holds_file(me, &other), Some(false));
        drop(f);
        assert_eq!(holds_file(me, &held), Some(false));
        assert_eq!(holds_file(me, &dir.path().join("missing")), None);
    }

    #[test]
    fn stat_parsing_survives_odd_names() {
        let line = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 1000 10";
        assert_eq!(parse_stat(line), Some(('S', 12345)));
    }

    #[test]
    fn ids_follow_runc_rules() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        assert!(check_id("../etc").is_err());
        assert!(check_id("a/b").is_err());
        assert!(check_id("").is_err());
    }

    #[test]
    fn claim_is_exclusive_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path().join("r"));
        root.claim("one").unwrap();
        assert!(matches!(root.claim("one"), Err(Error::Exists(_))));
        assert_eq!(root.ids().unwrap(), vec!["one".to_string()]);
        assert!(matches!(root.load("one"), Err(Error::NotFound(_))));
    }
}
