//! The host as a whole: disk use (`system df`), pruning (`container prune`, `system prune`),
//! and what `version` and `info` report of the engine. berth has no daemon: the "server"
//! these describe is this library, as linked into the CLI.

use std::collections::BTreeMap;
use std::path::Path;

use berth_image::format::Platform;
use serde_json::{json, Value};

use crate::volumes::Volume;
use crate::{Engine, Result, Row};

/// berth's version (the workspace's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Docker Engine API version berth's API server serves, and the oldest it accepts.
pub const API_VERSION: &str = "1.47";
pub const MIN_API_VERSION: &str = "1.24";

/// A container and the bytes its writable layer takes.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    pub row: Row,
    pub size: u64,
}

/// A volume, how many containers use it, and the bytes it takes.
#[derive(Debug, Clone)]
pub struct VolumeUsage {
    pub volume: Volume,
    pub links: usize,
    pub size: u64,
}

/// `system df`'s numbers.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    pub images: berth_image::images::DiskUsage,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
}

/// What `system prune` removed.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<berth_image::images::Removed>,
    pub reclaimed: u64,
}

/// `uname -r`.
pub fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A field of an os-release file (`PRETTY_NAME`, `VERSION_ID`), unquoted.
fn os_release_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix('=')?;
        Some(v.trim().trim_matches('"').trim_matches('\'').to_owned())
    })
}

/// Docker's name for the filesystem under `path` (its `Backing Filesystem`).
fn backing_fs(path: &Path) -> String {
    use nix::sys::statfs;
    let Ok(fs) = statfs::statfs(path) else {
        return "unknown".into();
    };
    let magic = fs.filesystem_type().0 as u64;
    match magic {
        0xef53 => "extfs",
        0x5846_5342 => "xfs",
        0x9123_683e => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794c_7630 => "overlayfs",
        0x2fc1_2fc1 => "zfs",
        0x6969 => "nfs",
        0x5346_544e => "ntfs",
        0xf2f5_2010 => "f2fs",
        _ => return format!("0x{magic:x}"),
    }
    .into()
}

/// `version`'s server section, Docker's `/version` shape: the engine library's version,
/// the API version it serves, the Rust toolchain it was built with (in place of Go's),
/// OS/arch and kernel. `git_commit` and `rust_version` come from the binary's build.
pub fn version(git_commit: &str, rust_version: &str) -> Value {
    let kernel = kernel_version();
    json!({
        "Platform": {"Name": "berth"},
        "Components": [
            {
                "Name": "Engine",
                "Version": VERSION,
                "Details": {
                    "ApiVersion": API_VERSION,
                    "MinAPIVersion": MIN_API_VERSION,
                    "GitCommit": git_commit,
                    "RustVersion": rust_version,
                    "Os": std::env::consts::OS,
                    "Arch": Platform::host().architecture,
                    "KernelVersion": kernel,
                    "Experimental": "false",
                },
            },
            {
                "Name": "berth-runtime",
                "Version": VERSION,
                "Details": {"GitCommit": git_commit, "OciVersion": berth_runtime::state::OCI_VERSION},
            },
        ],
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": git_commit,
        "RustVersion": rust_version,
        "Os": std::env::consts::OS,
        "Arch": Platform::host().architecture,
        "KernelVersion": kernel,
    })
}

/// The cgroup layout as `info` reports it: (`CgroupVersion`, berth's `CgroupLayout`).
fn cgroup_version() -> (&'static str, &'static str) {
    use berth_cgroups::layout::Mode;
    match berth_cgroups::Layout::detect().map(|l| l.mode()) {
        Ok(Mode::Legacy) => ("1", "legacy"),
        Ok(Mode::Hybrid) => ("1", "hybrid"),
        Ok(Mode::Unified) => ("2", "unified"),
        Err(_) => ("", "none"),
    }
}

impl Engine {
    /// The bytes of content in a container's writable layer (Docker's `SizeRw`).
    pub fn container_size(&self, id: &str) -> u64 {
        self.images
            .snapshotter()
            .writable_dir(&format!("container-{id}"))
            .ok()
            .and_then(|d| berth_image::snapshot::content_size(&d).ok())
            .unwrap_or(0)
    }

    /// `system df`: images, containers and volumes with their sizes.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let images = self.images.disk_usage()?;
        let containers = self
            .list()?
            .into_iter()
            .map(|row| ContainerUsage {
                size: self.container_size(&row.id),
                row,
            })
            .collect();
        let volumes = self
            .volumes()?
            .into_iter()
            .map(|u| VolumeUsage {
                size: self.volume_size(&u.volume.name),
                links: u.containers.len(),
                volume: u.volume,
            })
            .collect();
        Ok(DiskUsage {
            images,
            containers,
            volumes,
        })
    }

    /// `container prune`: removes every container that is not running; their ids and the
    /// bytes their writable layers took.
    pub fn container_prune(&self) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for row in self.list()? {
            if !matches!(row.state.as_str(), "exited" | "created" | "dead") {
                continue;
            }
            let size = self.container_size(&row.id);
            match self.remove(&row.id, false) {
                Ok(()) => {
                    removed.push(row.id);
                    reclaimed += size;
                }
                // Started or removed by another process meanwhile.
                Err(crate::EngineError::NotFound(_) | crate::EngineError::State(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((removed, reclaimed))
    }

    /// `system prune`: stopped containers, then (with `volumes`) anonymous volumes no
    /// container uses, then dangling images (every image no container uses with `all`).
    pub fn system_prune(&mut self, all: bool, volumes: bool) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let (containers, freed) = self.container_prune()?;
        report.containers = containers;
        report.reclaimed += freed;
        if volumes {
            let (vols, freed) = self.volume_prune(false, &|_| false)?;
            report.volumes = vols;
            report.reclaimed += freed;
        }
        let (images, freed) = crate::events::prune_images(&mut self.images, &self.db, all)?;
        report.images = images;
        report.reclaimed += freed;
        Ok(report)
    }

    /// `info`'s server part, Docker's `/info` shape: counts, storage and cgroup drivers, the
    /// host, the directories, the runtime. `insecure` lists the registries reached over HTTP.
    pub fn info(&self, insecure: &[String]) -> Result<Value> {
        let rows = self.list()?;
        let count = |states: &[&str]| rows.iter().filter(|r| states.contains(&r.state.as_str())).count();
        let images = self.images.db().images()?.len();
        let driver = self.images.snapshotter().name();
        let backing = backing_fs(&self.root);
        let driver_status: Vec<[String; 2]> = match driver {
            "overlay" => vec![
                ["Backing Filesystem".into(), backing],
                ["Supports d_type".into(), "true".into()],
                ["Using metacopy".into(), "false".into()],
                ["Native Overlay Diff".into(), "true".into()],
                ["userxattr".into(), "false".into()],
            ],
            _ => vec![["Backing Filesystem".into(), backing]],
        };
        let (cg_version, cg_layout) = cgroup_version();
        let os_release = std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .unwrap_or_default();
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mem = crate::stats::mem_total(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default());
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut registries: Vec<String> = vec!["127.0.0.0/8".into(), "::1/128".into(), "localhost".into()];
        registries.extend(insecure.iter().cloned());
        let mut runtimes = BTreeMap::new();
        runtimes.insert("berth", json!({"path": self.opts.monitor}));
        let now = berth_runtime::state::now_rfc3339();
        let mut info = json!({
            "ID": "",
            "Containers": rows.len(),
            "ContainersRunning": count(&["running", "restarting"]),
            "ContainersPaused": count(&["paused"]),
            "ContainersStopped": count(&["created", "exited", "dead"]),
            "Images": images,
            "Driver": driver,
            "DriverStatus": driver_status,
            "Plugins": {
                "Volume": ["local"],
                "Network": ["host", "null"],
                "Authorization": null,
                "Log": ["json-file", "none"],
            },
            "MemoryLimit": true,
            "SwapLimit": true,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "OomKillDisable": cg_version == "1",
            "IPv4Forwarding": std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|s| s.trim() == "1"),
            "Debug": false,
        });
        let host = json!({
            "SystemTime": now,
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cg_version,
            "CgroupLayout": cg_layout,
            "KernelVersion": kernel_version(),
            "OperatingSystem": os_release_field(&os_release, "PRETTY_NAME").unwrap_or_else(|| "Linux".into()),
            "OSVersion": os_release_field(&os_release, "VERSION_ID").unwrap_or_default(),
            "OSType": std::env::consts::OS,
            "Architecture": std::env::consts::ARCH,
        });
        let rest = json!({
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"InsecureRegistryCIDRs": registries, "Mirrors": []},
            "NCPU": ncpu,
            "MemTotal": mem,
            "DockerRootDir": self.root,
            "RunRoot": self.runroot,
            "Name": hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": VERSION,
            "Runtimes": runtimes,
            "DefaultRuntime": "berth",
            "Swarm": {"LocalNodeState": "inactive"},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
            "Warnings": [],
        });
        for part in [host, rest] {
            if let (Value::Object(to), Value::Object(from)) = (&mut info, part) {
                to.extend(from);
            }
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_files_parse() {
        let os = "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"13\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n";
        assert_eq!(
            os_release_field(os, "PRETTY_NAME").as_deref(),
            Some("Debian GNU/Linux 13 (trixie)")
        );
        assert_eq!(os_release_field(os, "VERSION_ID").as_deref(), Some("13"));
        assert_eq!(os_release_field(os, "ID"), None);
        assert_eq!(
            crate::stats::mem_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            24_576_000 * 1024
        );
        assert_eq!(crate::stats::mem_total(""), 0);
    }

    #[test]
    fn version_has_dockers_shape() {
        let v = version("abc1234", "rustc 1.90.0");
        for key in [
            "Version",
            "ApiVersion",
            "MinAPIVersion",
            "Os",
            "Arch",
            "KernelVersion",
            "GitCommit",
        ] {
            assert!(v[key].is_string(), "{key} in {v}");
        }
        assert_eq!(v["Components"][0]["Name"], "Engine");
        assert_eq!(v["RustVersion"], "rustc 1.90.0");
        assert!(!backing_fs(Path::new("/")).is_empty());
    }
}
