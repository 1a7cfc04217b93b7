//! The OCI runtime spec of a container, made from its (merged) config and
//! host config the way Docker makes it: Docker's capabilities, mounts,
//! masked and read-only paths, device rules, resources and seccomp profile.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::config::{Config, HostConfig, MountPoint};
use crate::user::User;

/// Docker's default capabilities (the set the built-in seccomp profile is written for).
pub use berth_seccomp::docker::DEFAULT_CAPS;

const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The cgroup every container's group sits in: `/berth/<id>`.
pub const CGROUP_PARENT: &str = "/berth";

/// Default size of /dev/shm (Docker's 64 MiB).
pub const DEFAULT_SHM: i64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("seccomp profile {path}: {source}")]
    Seccomp {
        path: String,
        #[source]
        source: berth_seccomp::Error,
    },
    #[error("reading seccomp profile {path}: {source}")]
    SeccompFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        what,
        value: value.into(),
        reason: reason.into(),
    }
}

/// What the spec is made from.
pub struct Inputs<'a> {
    pub id: &'a str,
    pub config: &'a Config,
    pub host: &'a HostConfig,
    pub rootfs: &'a Path,
    /// The container's directory, holding hostname, hosts and resolv.conf.
    pub dir: &'a Path,
    pub user: &'a User,
    /// Named volumes' host directories, by volume name.
    pub volume_dirs: &'a BTreeMap<String, std::path::PathBuf>,
    /// The network namespace to join; `None` makes a new one (or, for the
    /// host network, none).
    pub netns: Option<&'a Path>,
}

/// Capabilities after `--privileged`, `--cap-add` and `--cap-drop` (each
/// with or without `CAP_`, any case, `ALL` allowed), Docker's order of
/// application: drop ALL first, then adds, then the other drops.
pub fn capabilities(host: &HostConfig) -> Result<Vec<String>, SpecError> {
    let norm = |c: &str| -> Result<String, SpecError> {
        let up = c.to_ascii_uppercase();
        let name = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        if name == "CAP_ALL" || berth_runtime::caps::NAMES.contains(&name.as_str()) {
            Ok(name)
        } else {
            Err(invalid("capability", c, "unknown capability"))
        }
    };
    let all = available_caps();
    if host.privileged {
        return Ok(all);
    }
    let adds = host.cap_add.iter().map(|c| norm(c)).collect::<Result<Vec<_>, _>>()?;
    let drops = host.cap_drop.iter().map(|c| norm(c)).collect::<Result<Vec<_>, _>>()?;
    let mut caps: Vec<String> = if drops.iter().any(|d| d == "CAP_ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if adds.iter().any(|a| a == "CAP_ALL") {
        caps = all;
    } else {
        for a in adds {
            if !caps.contains(&a) {
                caps.push(a);
            }
        }
    }
    caps.retain(|c| !drops.contains(c));
    Ok(caps)
}

/// "All capabilities" for `--privileged` and `--cap-add ALL`: those in the
/// engine's own bounding set (as Docker and Podman do), so a privileged
/// container can start where the engine runs with fewer than the kernel
/// knows (inside another container, a sandbox); each in kernel order.
pub fn available_caps() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    berth_runtime::caps::NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| bounding & (1 << i) != 0)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// `--security-opt` entries, parsed.
#[derive(Debug, Default, PartialEq)]
pub struct SecurityOpts {
    pub no_new_privileges: bool,
    /// `None`: the default profile; `Some(None)`: unconfined; `Some(path)`.
    pub seccomp: Option<Option<String>>,
}

pub fn security_opts(opts: &[String]) -> Result<SecurityOpts, SpecError> {
    let mut s = SecurityOpts::default();
    for o in opts {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        match k {
            "no-new-privileges" => {
                s.no_new_privileges = match v {
                    "" | "true" => true,
                    "false" => false,
                    _ => return Err(invalid("security option", o, "no-new-privileges takes true or false")),
                }
            }
            "seccomp" if v == "unconfined" => s.seccomp = Some(None),
            "seccomp" if !v.is_empty() => s.seccomp = Some(Some(v.to_string())),
            // No AppArmor or SELinux on this host's builds: accepted and
            // ignored as Docker does where the LSM is absent.
            "apparmor" | "label" => {}
            _ => {
                return Err(invalid(
                    "security option",
                    o,
                    "expected no-new-privileges, seccomp=…, apparmor=… or label=…",
                ))
            }
        }
    }
    Ok(s)
}

/// Parses a size with an optional unit (`b`, `k`, `m`, `g`, binary).
pub fn parse_size(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let v: f64 = num.parse().ok()?;
    (v >= 0.0).then_some((v * mult as f64) as i64)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": typ, "source": source, "options": options})
}

/// The spec, as JSON (what config.json holds).
/// The OCI `linux.resources` limits of `--memory`, `--memory-swap`, `--cpus`,
/// `--cpu-shares`, `--cpuset-cpus` and `--pids-limit` (devices aside): for
/// the spec, and for `update` of a running container.
pub fn limits(h: &HostConfig) -> Result<Value, SpecError> {
    let mut resources = json!({});
    let mut memory = serde_json::Map::new();
    if h.memory > 0 {
        memory.insert("limit".into(), json!(h.memory));
        let swap = match h.memory_swap {
            0 => h.memory * 2,
            -1 => -1,
            s if s < h.memory => {
                return Err(invalid(
                    "memory-swap",
                    &s.to_string(),
                    "minimum memoryswap limit should be larger than memory limit",
                ))
            }
            s => s,
        };
        memory.insert("swap".into(), json!(swap));
    }
    if !memory.is_empty() {
        resources["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if h.nano_cpus > 0 {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(h.nano_cpus / 10_000));
    }
    if h.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(h.cpu_shares));
    }
    if !h.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(h.cpuset_cpus));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = h.pids_limit.filter(|p| *p != 0) {
        resources["pids"] = json!({"limit": p});
    }
    Ok(resources)
}

pub fn generate(i: &Inputs) -> Result<Value, SpecError> {
    let c = i.config;
    let h = i.host;
    let caps = capabilities(h)?;
    let sec = security_opts(&h.security_opt)?;
    let mut args: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    args.extend(c.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        return Err(invalid("command", "", "no command specified"));
    }
    let hostname = if c.hostname.is_empty() {
        i.id[..12].to_string()
    } else {
        c.hostname.clone()
    };
    let mut env: Vec<String> = Vec::new();
    if !c.env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    env.push(format!("HOSTNAME={hostname}"));
    if c.tty {
        env.push("TERM=xterm".into());
    }
    env.extend(c.env.iter().cloned());
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", i.user.home.clone().unwrap_or_else(|| "/".into())));
    }
    let cwd = if c.working_dir.is_empty() {
        "/".to_string()
    } else {
        c.working_dir.clone()
    };
    if !cwd.starts_with('/') {
        return Err(invalid("working directory", &cwd, "the path must be absolute"));
    }

    let mut rlimits = Vec::new();
    for u in &h.ulimits {
        let name = format!("RLIMIT_{}", u.name.to_ascii_uppercase());
        rlimits.push(json!({"type": name, "soft": u.soft, "hard": u.hard}));
    }
    let process = json!({
        "terminal": c.tty,
        "user": {"uid": i.user.uid, "gid": i.user.gid, "additionalGids": i.user.additional_gids},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits,
        "noNewPrivileges": sec.no_new_privileges,
        "oomScoreAdj": 0,
    });

    let shm = if h.shm_size > 0 { h.shm_size } else { DEFAULT_SHM };
    let shm_opt = format!("size={}k", shm / 1024);
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", if h.privileged { "rw" } else { "ro" }],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_opt],
        ),
    ];
    let user_targets: Vec<String> = h
        .mounts
        .iter()
        .map(|m| clean(&m.target))
        .chain(h.tmpfs.keys().map(|t| clean(t)))
        .collect();
    for f in ["resolv.conf", "hostname", "hosts"] {
        let dest = format!("/etc/{f}");
        if user_targets.contains(&dest) {
            continue;
        }
        let src = i.dir.join(f);
        let mut opts = vec!["rbind", "rprivate"];
        if h.readonly_rootfs {
            opts.push("ro");
        }
        mounts.push(mount(&dest, "bind", &src.to_string_lossy(), &opts));
    }
    for (target, opts) in &h.tmpfs {
        let mut o: Vec<&str> = vec!["nosuid", "nodev", "noexec"];
        let extra: Vec<&str> = opts.split(',').filter(|s| !s.is_empty()).collect();
        if extra.contains(&"exec") {
            o.retain(|x| *x != "noexec");
        }
        o.extend(extra.iter().filter(|e| **e != "exec"));
        mounts.push(mount(target, "tmpfs", "tmpfs", &o));
    }
    for m in &h.mounts {
        mounts.push(user_mount(m, i.volume_dirs)?);
    }

    let mut resources = limits(h)?;
    resources["devices"] = json!([{"allow": false, "access": "rwm"}]);
    let mut devices = Vec::new();
    for d in &h.devices {
        let (typ, major, minor) = device_numbers(&d.path_on_host)?;
        let dest = if d.path_in_container.is_empty() {
            &d.path_on_host
        } else {
            &d.path_in_container
        };
        let perms = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            &d.cgroup_permissions
        };
        devices.push(
            json!({"path": dest, "type": typ, "major": major, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0}),
        );
        resources["devices"]
            .as_array_mut()
            .expect("array")
            .push(json!({"allow": true, "type": typ, "major": major, "minor": minor, "access": perms}));
    }
    if h.privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    match (h.network_mode.as_str(), i.netns) {
        ("host", _) => {}
        (_, Some(path)) => namespaces.push(json!({"type": "network", "path": path})),
        _ => namespaces.push(json!({"type": "network"})),
    }
    let mut linux = json!({
        "resources": resources,
        "cgroupsPath": format!("{CGROUP_PARENT}/{}", i.id),
        "namespaces": namespaces,
        "devices": devices,
        "sysctl": h.sysctls,
    });
    if !h.privileged {
        linux["maskedPaths"] = json!(MASKED);
        linux["readonlyPaths"] = json!(READONLY);
        let seccomp = match &sec.seccomp {
            Some(None) => None,
            Some(Some(path)) => {
                let bytes = std::fs::read(path).map_err(|source| SpecError::SeccompFile {
                    path: path.clone(),
                    source,
                })?;
                Some(convert_seccomp(&bytes, &caps, path)?)
            }
            None => Some(convert_seccomp(
                berth_seccomp::docker::default_profile(),
                &caps,
                "(default)",
            )?),
        };
        if let Some(s) = seccomp {
            linux["seccomp"] = s;
        }
    }
    let mut annotations = serde_json::Map::new();
    if h.init == Some(true) {
        annotations.insert(berth_runtime::config::INIT_ANNOTATION.into(), json!("true"));
    }
    Ok(json!({
        "ociVersion": berth_runtime::state::OCI_VERSION,
        "process": process,
        "root": {"path": i.rootfs, "readonly": h.readonly_rootfs},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": annotations,
    }))
}

fn convert_seccomp(bytes: &[u8], caps: &[String], path: &str) -> Result<Value, SpecError> {
    let err = |source| SpecError::Seccomp {
        path: path.into(),
        source,
    };
    let target = berth_seccomp::docker::Target::host(caps.to_vec()).map_err(err)?;
    let s = berth_seccomp::docker::convert(bytes, &target).map_err(err)?;
    Ok(serde_json::to_value(s).expect("serializable"))
}

/// A path with `.` and empty components removed.
pub(crate) fn clean(p: &str) -> String {
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    format!("/{}", parts.join("/"))
}

fn user_mount(m: &MountPoint, volume_dirs: &BTreeMap<String, std::path::PathBuf>) -> Result<Value, SpecError> {
    if !m.target.starts_with('/') {
        return Err(invalid("mount target", &m.target, "the path must be absolute"));
    }
    if clean(&m.target) == "/" {
        return Err(invalid("mount target", &m.target, "cannot mount over /"));
    }
    match m.kind.as_str() {
        "bind" | "volume" => {
            let source = if m.kind == "bind" {
                if !m.source.starts_with('/') {
                    return Err(invalid("bind source", &m.source, "the path must be absolute"));
                }
                if !Path::new(&m.source).exists() {
                    return Err(invalid("bind source", &m.source, "no such file or directory"));
                }
                m.source.clone()
            } else {
                volume_dirs
                    .get(&m.source)
                    .ok_or_else(|| invalid("volume", &m.source, "not found"))?
                    .to_string_lossy()
                    .into_owned()
            };
            let prop = m
                .bind_options
                .as_ref()
                .map(|b| b.propagation.as_str())
                .filter(|p| !p.is_empty())
                .unwrap_or("rprivate");
            if !["private", "rprivate", "shared", "rshared", "slave", "rslave"].contains(&prop) {
                return Err(invalid(
                    "bind propagation",
                    prop,
                    "expected [r]private, [r]shared or [r]slave",
                ));
            }
            let mut opts = vec!["rbind", prop];
            if m.read_only {
                opts.push("ro");
            }
            Ok(mount(&m.target, "bind", &source, &opts))
        }
        "tmpfs" => {
            let mut opts = vec!["nosuid".to_string(), "nodev".to_string(), "noexec".to_string()];
            if let Some(t) = &m.tmpfs_options {
                if t.size_bytes > 0 {
                    opts.push(format!("size={}k", (t.size_bytes + 1023) / 1024));
                }
                if t.mode > 0 {
                    opts.push(format!("mode={:o}", t.mode));
                }
            }
            if m.read_only {
                opts.push("ro".into());
            }
            let o: Vec<&str> = opts.iter().map(|s| s.as_str()).collect();
            Ok(mount(&m.target, "tmpfs", "tmpfs", &o))
        }
        other => Err(invalid("mount type", other, "expected bind, volume or tmpfs")),
    }
}

/// The type and numbers of a device node on the host.
fn device_numbers(path: &str) -> Result<(&'static str, u64, u64), SpecError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::metadata(path).map_err(|e| invalid("device", path, e.to_string()))?;
    let typ = if md.file_type().is_char_device() {
        "c"
    } else if md.file_type().is_block_device() {
        "b"
    } else {
        return Err(invalid("device", path, "not a device node"));
    };
    let rdev = md.rdev();
    Ok((typ, libc::major(rdev) as u64, libc::minor(rdev) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_flags_apply_in_docker_order() {
        let mut h = HostConfig::default();
        assert_eq!(capabilities(&h).unwrap().len(), 14);
        h.cap_add = vec!["net_admin".into(), "CAP_SYS_TIME".into()];
        h.cap_drop = vec!["chown".into()];
        let c = capabilities(&h).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()) && c.contains(&"CAP_SYS_TIME".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        h.cap_drop = vec!["ALL".into()];
        h.cap_add = vec!["kill".into()];
        assert_eq!(capabilities(&h).unwrap(), ["CAP_KILL"]);
        h.cap_add = vec!["bogus".into()];
        assert!(capabilities(&h).unwrap_err().to_string().contains("bogus"));
        h.cap_add.clear();
        h.privileged = true;
        assert_eq!(capabilities(&h).unwrap(), available_caps());
    }

    #[test]
    fn security_opts_parse() {
        let s = security_opts(&["no-new-privileges".into(), "seccomp=unconfined".into()]).unwrap();
        assert_eq!(
            s,
            SecurityOpts {
                no_new_privileges: true,
                seccomp: Some(None)
            }
        );
        assert!(security_opts(&["bogus=1".into()]).is_err());
        assert_eq!(
            security_opts(&["seccomp:/p.json".into()]).unwrap().seccomp,
            Some(Some("/p.json".into()))
        );
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("10kb"), Some(10 << 10));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("-1m"), None);
    }

    fn inputs_spec(c: &Config, h: &HostConfig) -> Result<Value, SpecError> {
        let user = User {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: Some("/root".into()),
        };
        let vols = BTreeMap::new();
        generate(&Inputs {
            id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            config: c,
            host: h,
            rootfs: Path::new("/r"),
            dir: Path::new("/d"),
            user: &user,
            volume_dirs: &vols,
            netns: None,
        })
    }

    #[test]
    fn spec_follows_docker_defaults() {
        let c = Config {
            cmd: Some(vec!["sh".into()]),
            env: vec!["A=1".into()],
            ..Default::default()
        };
        let h = HostConfig {
            memory: 64 << 20,
            nano_cpus: 1_500_000_000,
            pids_limit: Some(100),
            security_opt: vec!["seccomp=unconfined".into()],
            tmpfs: [("/run".to_string(), "size=1m".to_string())].into(),
            ..Default::default()
        };
        let s = inputs_spec(&c, &h).unwrap();
        assert_eq!(s["hostname"], "0123456789ab");
        assert_eq!(s["process"]["args"], json!(["sh"]));
        let env: Vec<&str> = s["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            env[0],
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        );
        assert!(env.contains(&"HOSTNAME=0123456789ab") && env.contains(&"A=1") && env.contains(&"HOME=/root"));
        assert_eq!(
            s["linux"]["resources"]["memory"],
            json!({"limit": 64 << 20, "swap": 128 << 20})
        );
        assert_eq!(
            s["linux"]["resources"]["cpu"],
            json!({"period": 100000, "quota": 150000})
        );
        assert_eq!(s["linux"]["resources"]["pids"], json!({"limit": 100}));
        assert!(s["linux"].get("seccomp").is_none());
        let dests: Vec<&str> = s["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        for d in [
            "/proc",
            "/dev/shm",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/run",
        ] {
            assert!(dests.contains(&d), "{d} in {dests:?}");
        }
        assert_eq!(s["linux"]["maskedPaths"].as_array().unwrap().len(), MASKED.len());
        let ns: Vec<&str> = s["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(ns.contains(&"network"));
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let c = Config::default();
        assert!(inputs_spec(&c, &HostConfig::default())
            .unwrap_err()
            .to_string()
            .contains("no command"));
        let c = Config {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        let h = HostConfig {
            memory: 10 << 20,
            memory_swap: 5 << 20,
            security_opt: vec!["seccomp=unconfined".into()],
            ..Default::default()
        };
        assert!(inputs_spec(&c, &h).unwrap_err().to_string().contains("memory-swap"));
        let h = HostConfig {
            mounts: vec![MountPoint {
                kind: "bind".into(),
                source: "relative".into(),
                target: "/x".into(),
                ..Default::default()
            }],
            security_opt: vec!["seccomp=unconfined".into()],
            ..Default::default()
        };
        assert!(inputs_spec(&c, &h)
            .unwrap_err()
            .to_string()
            .contains("bind source \"relative\""));
    }
}
