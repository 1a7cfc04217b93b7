//! Where the cgroup hierarchies are mounted, read from /proc/self/mountinfo.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of layout detection.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed mountinfo line {line:?}")]
    Malformed { line: String },
    #[error("no cgroup or cgroup2 filesystem is mounted")]
    NoCgroups,
}

/// Which cgroup versions the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// cgroup v1 only.
    Legacy,
    /// cgroup v1 hierarchies plus a cgroup2 mount (usually /sys/fs/cgroup/unified).
    Hybrid,
    /// Pure cgroup v2.
    Unified,
}

/// One mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Hierarchy {
    /// Where it is mounted, e.g. /sys/fs/cgroup/memory.
    pub mount_point: PathBuf,
    /// The cgroup of the hierarchy that is mounted there (usually "/").
    pub root: PathBuf,
    /// Controllers of the hierarchy, e.g. ["cpu", "cpuacct"] or ["name=systemd"].
    pub controllers: Vec<String>,
}

/// The cgroup v2 mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unified {
    pub mount_point: PathBuf,
    pub root: PathBuf,
    /// The root's cgroup.controllers.
    pub controllers: Vec<String>,
}

/// The cgroup mounts of the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    v1: Vec<V1Hierarchy>,
    unified: Option<Unified>,
}

const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Undo mountinfo's octal escapes (\040 for space etc.).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Layout {
    /// Reads /proc/self/mountinfo (cgroup and cgroup2 mounts) and the cgroup2 root's cgroup.controllers.
    pub fn detect() -> crate::Result<Layout> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|source| LayoutError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Layout::from_mountinfo(&text, &|p| std::fs::read_to_string(p).ok())
    }

    /// Same as [`Layout::detect`] from given text; `read_file` reads e.g. <unified>/cgroup.controllers.
    pub fn from_mountinfo(mountinfo: &str, read_file: &dyn Fn(&Path) -> Option<String>) -> crate::Result<Layout> {
        let mut v1: Vec<V1Hierarchy> = Vec::new();
        let mut unified: Option<Unified> = None;
        for line in mountinfo.lines().filter(|l| !l.trim().is_empty()) {
            let malformed = || LayoutError::Malformed { line: line.to_string() };
            let (pre, post) = line.split_once(" - ").ok_or_else(malformed)?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                return Err(malformed().into());
            }
            let root = PathBuf::from(unescape(pre[3]));
            let mount_point = PathBuf::from(unescape(pre[4]));
            match post[0] {
                "cgroup2" if unified.is_none() => {
                    let controllers = read_file(&mount_point.join("cgroup.controllers"))
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(str::to_string)
                        .collect();
                    unified = Some(Unified {
                        mount_point,
                        root,
                        controllers,
                    });
                }
                "cgroup" => {
                    let controllers: Vec<String> = post[2]
                        .split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_string)
                        .collect();
                    if controllers.is_empty() || v1.iter().any(|h| h.controllers == controllers) {
                        continue; // bind mount of a hierarchy we already have
                    }
                    v1.push(V1Hierarchy {
                        mount_point,
                        root,
                        controllers,
                    });
                }
                _ => {}
            }
        }
        if v1.is_empty() && unified.is_none() {
            return Err(LayoutError::NoCgroups.into());
        }
        Ok(Layout { v1, unified })
    }

    /// Build a layout directly (e.g. for tests or a cgroup2-only view of a hybrid host).
    pub fn new(v1: Vec<V1Hierarchy>, unified: Option<Unified>) -> Layout {
        Layout { v1, unified }
    }

    pub fn mode(&self) -> Mode {
        match (self.v1.is_empty(), self.unified.is_some()) {
            (false, false) => Mode::Legacy,
            (false, true) => Mode::Hybrid,
            _ => Mode::Unified,
        }
    }

    /// The mounted v1 hierarchies.
    pub fn v1_hierarchies(&self) -> &[V1Hierarchy] {
        &self.v1
    }

    /// The cgroup2 mount, if any.
    pub fn unified(&self) -> Option<&Unified> {
        self.unified.as_ref()
    }

    /// The v1 hierarchy holding `controller` ("name=systemd" for named ones).
    pub fn v1_hierarchy(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1.iter().find(|h| h.controllers.iter().any(|c| c == controller))
    }

    /// True if the controller is available in a v1 hierarchy or in the cgroup2 root.
    pub fn has_controller(&self, controller: &str) -> bool {
        self.v1_hierarchy(controller).is_some()
            || self
                .unified
                .as_ref()
                .is_some_and(|u| u.controllers.iter().any(|c| c == controller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const LEGACY: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid shared:9 - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw shared:12 - cgroup cgroup rw,net_cls,net_prio
32 25 0:29 / /sys/fs/cgroup/hugetlb rw shared:13 - cgroup cgroup rw,hugetlb
99 25 0:27 /x /mnt/memory\\040bind rw - cgroup cgroup rw,memory
";

    const UNIFIED: &str = "\
22 1 0:21 / /proc rw - proc proc rw
27 20 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn hybrid_host() {
        let l = Layout::from_mountinfo(HYBRID, &|p| {
            (p == Path::new("/sys/fs/cgroup/unified/cgroup.controllers")).then(|| "hugetlb\n".into())
        })
        .unwrap();
        assert_eq!(l.mode(), Mode::Hybrid);
        assert_eq!(l.v1_hierarchies().len(), 9);
        assert_eq!(
            l.v1_hierarchy("cpuacct").unwrap().mount_point,
            Path::new("/sys/fs/cgroup/cpuacct")
        );
        assert!(l.has_controller("hugetlb"));
        assert!(l.v1_hierarchy("hugetlb").is_none());
        assert!(l.v1_hierarchy("name=systemd").is_some());
        assert!(!l.has_controller("net_cls"));
    }

    #[test]
    fn legacy_comounted() {
        let l = Layout::from_mountinfo(LEGACY, &|_| None).unwrap();
        assert_eq!(l.mode(), Mode::Legacy);
        let cpu = l.v1_hierarchy("cpu").unwrap();
        assert_eq!(cpu.controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(l.v1_hierarchy("cpuacct").unwrap(), cpu);
        assert_eq!(
            l.v1_hierarchy("net_prio").unwrap().mount_point,
            Path::new("/sys/fs/cgroup/net_cls,net_prio")
        );
        // the bind mount of memory is skipped
        assert_eq!(l.v1_hierarchies().len(), 5);
        assert_eq!(
            l.v1_hierarchy("name=systemd").unwrap().controllers,
            vec!["name=systemd"]
        );
    }

    #[test]
    fn pure_v2() {
        let l = Layout::from_mountinfo(UNIFIED, &|_| {
            Some("cpuset cpu io memory hugetlb pids rdma misc\n".into())
        })
        .unwrap();
        assert_eq!(l.mode(), Mode::Unified);
        assert!(l.has_controller("memory"));
        assert!(!l.has_controller("freezer"));
        assert_eq!(l.unified().unwrap().mount_point, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn errors() {
        assert!(Layout::from_mountinfo("22 1 0:21 / /proc rw - proc proc rw", &|_| None).is_err());
        assert!(Layout::from_mountinfo("garbage", &|_| None).is_err());
        assert_eq!(unescape("a\\040b"), "a b");
    }
}
