//! Loading and checking a bundle's config.json.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// What is wrong with a bundle or its config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("JSON specification file config.json not found in bundle {0}")]
    Missing(PathBuf),
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Set to `"true"`, the container's pid 1 is a minimal init of the
/// runtime's own that runs the program as its child, forwards signals and
/// reaps zombies (`docker run --init`); see `process::reaper`.
pub const INIT_ANNOTATION: &str = "run.berth.init";

/// Whether the spec asks for the minimal init.
pub fn wants_init(spec: &Spec) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(INIT_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// A loaded bundle: its absolute directory and parsed spec.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    /// The root filesystem, absolute.
    pub rootfs: PathBuf,
}

impl Bundle {
    /// Read `<dir>/config.json` and check what the runtime relies on.
    pub fn load(dir: &Path) -> Result<Bundle, ConfigError> {
        let dir = std::path::absolute(dir).map_err(|e| ConfigError::Read {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let path = dir.join("config.json");
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(if dir.is_dir() {
                    ConfigError::Missing(dir)
                } else {
                    ConfigError::Read { path: dir, source: e }
                })
            }
            Err(e) => return Err(ConfigError::Read { path, source: e }),
        };
        let spec = parse(&text).map_err(|message| ConfigError::Parse {
            path: path.clone(),
            message,
        })?;
        validate(&spec).map_err(|message| ConfigError::Invalid {
            path: path.clone(),
            message,
        })?;
        let root = spec.root().as_ref().map(|r| r.path().clone()).unwrap_or_default();
        let rootfs = if root.is_absolute() { root } else { dir.join(root) };
        if !rootfs.is_dir() {
            return Err(ConfigError::Invalid {
                path,
                message: format!("root.path {} is not a directory", rootfs.display()),
            });
        }
        Ok(Bundle { dir, spec, rootfs })
    }
}

/// Parse config.json text; the message names the field serde choked on.
pub fn parse(text: &[u8]) -> Result<Spec, String> {
    serde_json::from_slice(text).map_err(|e| e.to_string())
}

/// Check the parts of a spec the runtime needs before it forks.
pub fn validate(spec: &Spec) -> Result<(), String> {
    let root = spec.root().as_ref().ok_or("root is required")?;
    if root.path().as_os_str().is_empty() {
        return Err("root.path is empty".into());
    }
    let process = spec.process().as_ref().ok_or("process is required")?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err("process.args must not be empty".into());
    }
    if !process.cwd().is_absolute() {
        return Err(format!("process.cwd {:?} must be an absolute path", process.cwd()));
    }
    let linux = spec.linux().as_ref().ok_or("linux section is required")?;
    crate::lsm::check(process, Some(linux), crate::lsm::Host::for_labels(process, Some(linux)))?;
    let mut seen = Vec::new();
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        if seen.contains(&ns.typ()) {
            return Err(format!("duplicate namespace {}", ns.typ()));
        }
        seen.push(ns.typ());
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(format!("namespace {} path {:?} must be absolute", ns.typ(), p));
            }
        }
    }
    let has = |t| seen.contains(&t);
    let has_userns = has(LinuxNamespaceType::User);
    if (linux.uid_mappings().is_some() || linux.gid_mappings().is_some()) && !has_userns {
        return Err("uid/gid mappings given without a user namespace".into());
    }
    if has_userns
        && linux
            .namespaces()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none())
        && linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
    {
        return Err("a new user namespace needs linux.uidMappings".into());
    }
    if linux.sysctl().as_ref().is_some_and(|s| !s.is_empty()) {
        for key in linux.sysctl().as_ref().unwrap().keys() {
            check_sysctl(key, &has)?;
        }
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err("unable to set hostname without a private UTS namespace".into());
    }
    if linux.time_offsets().is_some() && !has(LinuxNamespaceType::Time) {
        return Err("time offsets given without a time namespace".into());
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if !m.destination().is_absolute() {
            return Err(format!("mount destination {:?} must be absolute", m.destination()));
        }
        check_proc_mount(m)?;
    }
    Ok(())
}

/// runc's rule for /proc: only a procfs may go on /proc itself, and under
/// it only the files lxcfs-style tools replace, or binds of procfs files.
/// Anything else could hide the real /proc from the runtime's own checks
/// (exec labels, /proc/self/fd) or from the masked paths
/// (CVE-2019-16884, CVE-2019-19921 classes).
fn check_proc_mount(m: &oci_spec::runtime::Mount) -> Result<(), String> {
    const ALLOWED: &[&str] = &[
        "/proc/cpuinfo",
        "/proc/diskstats",
        "/proc/meminfo",
        "/proc/stat",
        "/proc/swaps",
        "/proc/uptime",
        "/proc/loadavg",
        "/proc/slabinfo",
        "/proc/net/dev",
        "/proc/sys/kernel/ns_last_pid",
        "/proc/sys/crypto/fips_enabled",
    ];
    let dest: PathBuf = m.destination().components().collect();
    if !dest.starts_with("/proc") {
        return Ok(());
    }
    let typ = m.typ().as_deref().unwrap_or("");
    if dest == Path::new("/proc") {
        return if typ == "proc" {
            Ok(())
        } else {
            Err(format!(
                "/proc cannot be mounted as {typ:?}: only a procfs may go there"
            ))
        };
    }
    if ALLOWED.iter().any(|a| dest == Path::new(a)) {
        return Ok(());
    }
    let source_is_procfs = m.source().as_ref().is_some_and(|src| {
        nix::sys::statfs::statfs(src).is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
    });
    if source_is_procfs {
        return Ok(());
    }
    Err(format!(
        "{} cannot be mounted because it is inside /proc",
        dest.display()
    ))
}

/// runc's rule: a sysctl is allowed only when the namespace it belongs to is
/// the container's own.
fn check_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<(), String> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return if has(LinuxNamespaceType::Ipc) {
            Ok(())
        } else {
            Err(format!("sysctl {key:?} is not allowed in the host's ipc namespace"))
        };
    }
    if key.starts_with("net.") {
        return if has(LinuxNamespaceType::Network) {
            Ok(())
        } else {
            Err(format!("sysctl {key:?} is not allowed in the host's network namespace"))
        };
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return if has(LinuxNamespaceType::Uts) {
            Ok(())
        } else {
            Err(format!("sysctl {key:?} is not allowed in the host's uts namespace"))
        };
    }
    Err(format!("sysctl {key:?} is not in a separate kernel namespace"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_json(extra: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},
            "process":{{"cwd":"/","args":["sh"],"user":{{"uid":0,"gid":0}}}},
            "linux":{{"namespaces":[{{"type":"pid"}},{{"type":"mount"}}]}}{extra}}}"#
        )
    }

    #[test]
    fn parses_and_validates_minimal_spec() {
        let spec = parse(spec_json("").as_bytes()).unwrap();
        validate(&spec).unwrap();
    }

    #[test]
    fn only_procfs_on_proc_and_only_known_files_under_it() {
        let check = |mount: &str| {
            let spec = parse(spec_json(&format!(r#","mounts":[{mount}]"#)).as_bytes()).unwrap();
            validate(&spec)
        };
        assert!(check(r#"{"destination":"/proc","type":"proc","source":"proc"}"#).is_ok());
        assert_eq!(
            check(r#"{"destination":"/proc","type":"tmpfs","source":"tmpfs"}"#).unwrap_err(),
            "/proc cannot be mounted as \"tmpfs\": only a procfs may go there"
        );
        assert!(check(r#"{"destination":"/proc/meminfo","type":"bind","source":"/tmp","options":["bind"]}"#).is_ok());
        assert_eq!(
            check(r#"{"destination":"/proc/self/attr","type":"tmpfs","source":"tmpfs"}"#).unwrap_err(),
            "/proc/self/attr cannot be mounted because it is inside /proc"
        );
        // A bind of a procfs file is fine.
        assert!(check(
            r#"{"destination":"/proc/sys/kernel/x","type":"bind","source":"/proc/uptime","options":["bind"]}"#
        )
        .is_ok());
    }

    #[test]
    fn malformed_json_names_the_position() {
        let err = parse(b"{bad").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn empty_args_rejected() {
        let text = spec_json("").replace(r#"["sh"]"#, "[]");
        let spec = parse(text.as_bytes()).unwrap();
        assert_eq!(validate(&spec).unwrap_err(), "process.args must not be empty");
    }

    #[test]
    fn requested_security_labels_are_refused() {
        let text = spec_json("").replace(
            r#""args":["sh"]"#,
            r#""args":["sh"],"apparmorProfile":"docker-default""#,
        );
        let spec = parse(text.as_bytes()).unwrap();
        assert!(validate(&spec).unwrap_err().contains("AppArmor"));
        let text = spec_json("").replace(r#""args":["sh"]"#, r#""args":["sh"],"apparmorProfile":"""#);
        validate(&parse(text.as_bytes()).unwrap()).unwrap();
    }

    #[test]
    fn hostname_needs_uts_namespace() {
        let spec = parse(spec_json(r#","hostname":"box""#).as_bytes()).unwrap();
        assert!(validate(&spec).unwrap_err().contains("UTS"));
    }

    #[test]
    fn sysctl_rules_follow_namespaces() {
        let has_net = |t| t == LinuxNamespaceType::Network;
        assert!(check_sysctl("net.ipv4.ip_forward", &has_net).is_ok());
        assert!(check_sysctl("kernel.shmmax", &has_net).is_err());
        assert!(check_sysctl("vm.swappiness", &has_net).is_err());
    }

    #[test]
    fn missing_config_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Bundle::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("config.json not found"), "{err}");
    }
}
