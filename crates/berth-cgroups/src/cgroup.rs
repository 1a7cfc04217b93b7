//! A container's cgroup: one directory per hierarchy it uses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::fs::{self, FsError};
use crate::layout::{Layout, Mode};
use crate::resolve::{self, ResolveError};
use crate::{v1, v2, Result};

/// How often [`Cgroup::create`] starts again when a parent group went away meanwhile.
const CREATE_TRIES: u32 = 10;

/// Errors of whole-cgroup operations.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("the {controller} cgroup controller is not available on this host, but the container sets a limit for it")]
    ControllerMissing { controller: String },
    #[error("unified resource {key:?} needs cgroup v2 with its controller, which this host lacks")]
    UnifiedUnavailable { key: String },
    #[error("no freezer available (neither a v1 freezer hierarchy nor a cgroup2 mount)")]
    NoFreezer,
    #[error("listing processes of {path}")]
    ListDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sending signal {signal} to pid {pid}")]
    Signal {
        pid: i32,
        signal: i32,
        #[source]
        source: nix::Error,
    },
}

/// State of the cgroup freezer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    Thawed,
    Freezing,
    Frozen,
}

/// A cgroup directory in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Dir {
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    pub path: PathBuf,
}

/// The cgroup directory in the cgroup2 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnifiedDir {
    /// Controllers of the cgroup2 root.
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    pub path: PathBuf,
}

/// A container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    pub v1: Vec<V1Dir>,
    pub unified: Option<UnifiedDir>,
}

/// Where a controller lives for this cgroup.
pub(crate) enum Target<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

impl Cgroup {
    /// Resolve `linux.cgroupsPath` as runc's cgroupfs driver does.
    pub fn resolve(layout: &Layout, cgroups_path: Option<&Path>, id: &str, self_cgroup: &str) -> Result<Cgroup> {
        let path = match cgroups_path {
            Some(p) if !p.as_os_str().is_empty() => {
                let text = p.to_string_lossy();
                if resolve::is_systemd_path(&text) {
                    return Err(ResolveError::Systemd {
                        path: text.into_owned(),
                    }
                    .into());
                }
                p.to_path_buf()
            }
            _ => {
                if id.is_empty() || id.contains('/') || id == "." || id == ".." {
                    return Err(ResolveError::InvalidId { id: id.to_string() }.into());
                }
                Path::new("/").join(id)
            }
        };
        let mut v1 = Vec::new();
        for h in layout.v1_hierarchies() {
            let inner = resolve::inner_path(&path, self_cgroup, &h.controllers, &h.root, &h.controllers.join(","))?;
            v1.push(V1Dir {
                controllers: h.controllers.clone(),
                mount_point: h.mount_point.clone(),
                path: join_inner(&h.mount_point, &inner),
            });
        }
        let unified = match layout.unified() {
            Some(u) => {
                let inner = resolve::inner_path(&path, self_cgroup, &[], &u.root, "cgroup2")?;
                Some(UnifiedDir {
                    controllers: u.controllers.clone(),
                    mount_point: u.mount_point.clone(),
                    path: join_inner(&u.mount_point, &inner),
                })
            }
            None => None,
        };
        Ok(Cgroup { v1, unified })
    }

    /// The layout mode this cgroup was resolved for.
    pub fn mode(&self) -> Mode {
        match (self.v1.is_empty(), self.unified.is_some()) {
            (false, false) => Mode::Legacy,
            (false, true) => Mode::Hybrid,
            _ => Mode::Unified,
        }
    }

    /// Every directory of this cgroup (v1 ones, then the cgroup2 one).
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.v1
            .iter()
            .map(|d| d.path.as_path())
            .chain(self.unified.iter().map(|u| u.path.as_path()))
    }

    /// Create the directories in every hierarchy; on v2 enable the available controllers in ancestors.
    ///
    /// An engine removes its shared parent group (e.g. `/berth`) once it is empty
    /// ([`Cgroup::remove_if_unused`]); should that happen between the creation of the parent and
    /// of the child here (a level missing: ENOENT; a file of a removed group: ENODEV), the
    /// creation starts again.
    pub fn create(&self) -> Result<()> {
        let mut tries = 0;
        loop {
            match self.create_once() {
                Err(crate::Error::Fs(e))
                    if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENODEV)) && tries < CREATE_TRIES =>
                {
                    tries += 1
                }
                r => return r,
            }
        }
    }

    /// Removes the group's directories that hold no group of their own (`rmdir`, which the
    /// kernel refuses for a group with children or tasks); anything else is left as it is.
    pub fn remove_if_unused(&self) {
        for dir in self.dirs() {
            let _ = std::fs::remove_dir(dir);
        }
    }

    fn create_once(&self) -> Result<()> {
        for d in &self.v1 {
            if d.controllers.iter().any(|c| c == "cpuset") {
                v1::cpuset::create(&d.mount_point, &d.path)?;
            } else {
                fs::create_dir_all(&d.path)?;
            }
        }
        if let Some(u) = &self.unified {
            v2::create(&u.mount_point, &u.path)?;
        }
        Ok(())
    }

    /// Where `controller` is handled: a v1 hierarchy holding it, else the cgroup2 dir if it has it.
    /// "freezer" and "devices" are always handled by a cgroup2 dir (cgroup.freeze, eBPF).
    pub(crate) fn target(&self, controller: &str) -> Option<Target<'_>> {
        if let Some(d) = self.v1.iter().find(|d| d.controllers.iter().any(|c| c == controller)) {
            return Some(Target::V1(&d.path));
        }
        let u = self.unified.as_ref()?;
        let implicit = matches!(controller, "freezer" | "devices");
        (implicit || u.controllers.iter().any(|c| c == controller)).then_some(Target::V2(&u.path))
    }

    /// The directory in a given hierarchy: a v1 controller name, or "" for the cgroup2 one.
    /// A controller only available on the cgroup2 mount gives the cgroup2 directory.
    pub fn path_for(&self, controller: &str) -> Option<&Path> {
        if controller.is_empty() {
            return self.unified.as_ref().map(|u| u.path.as_path());
        }
        match self.target(controller)? {
            Target::V1(p) | Target::V2(p) => Some(p),
        }
    }

    /// True if the given controller is available for this cgroup.
    pub fn has_controller(&self, controller: &str) -> bool {
        self.target(controller).is_some()
    }

    /// Apply resources, each controller in the format of the hierarchy holding it.
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        crate::apply::apply(self, resources)
    }

    /// Move a process in: write its pid to cgroup.procs in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        for dir in self.dirs() {
            fs::write(dir, "cgroup.procs", pid)?;
        }
        Ok(())
    }

    fn freezer(&self) -> Result<Target<'_>> {
        self.target("freezer").ok_or_else(|| CgroupError::NoFreezer.into())
    }

    /// Freeze every process, waiting until the kernel reports the cgroup frozen.
    pub fn freeze(&self) -> Result<()> {
        match self.freezer()? {
            Target::V1(d) => v1::freezer::freeze(d),
            Target::V2(d) => v2::freezer::freeze(d),
        }
    }

    /// Thaw the cgroup.
    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            Target::V1(d) => v1::freezer::thaw(d),
            Target::V2(d) => v2::freezer::thaw(d),
        }
    }

    pub fn freezer_state(&self) -> Result<FreezerState> {
        match self.freezer()? {
            Target::V1(d) => v1::freezer::state(d),
            Target::V2(d) => v2::freezer::state(d),
        }
    }

    /// The directory whose process list is authoritative for the container.
    fn procs_dir(&self) -> Option<&Path> {
        for c in ["pids", "freezer", "memory"] {
            if let Some(d) = self.v1.iter().find(|d| d.controllers.iter().any(|x| x == c)) {
                return Some(&d.path);
            }
        }
        self.unified
            .as_ref()
            .map(|u| u.path.as_path())
            .or_else(|| self.v1.first().map(|d| d.path.as_path()))
    }

    /// All pids in the container's cgroup, recursively.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        if let Some(dir) = self.procs_dir() {
            collect_pids(dir, &mut out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Stats for `runc events`.
    pub fn stats(&self) -> Result<crate::Stats> {
        crate::stats::collect(self)
    }

    /// Number of OOM kills so far.
    pub fn oom_kill_count(&self) -> Result<u64> {
        match self.target("memory") {
            Some(Target::V1(d)) => Ok(fs::read_keyed(d, "memory.oom_control", "oom_kill")?),
            Some(Target::V2(d)) => Ok(fs::read_keyed(d, "memory.events", "oom_kill")?),
            None => Ok(0),
        }
    }

    /// Kill every process: cgroup.kill when available, else freeze, signal each pid, thaw.
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        if signal == libc::SIGKILL {
            if let Some(u) = &self.unified {
                if u.path.join("cgroup.kill").exists() {
                    match fs::write(&u.path, "cgroup.kill", 1) {
                        Ok(()) => return Ok(()),
                        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        let frozen = self.freeze().is_ok();
        let res = self.signal_all(signal);
        if frozen {
            self.thaw()?;
        }
        res
    }

    fn signal_all(&self, signal: i32) -> Result<()> {
        let sig = nix::sys::signal::Signal::try_from(signal).map_err(|source| CgroupError::Signal {
            pid: 0,
            signal,
            source,
        })?;
        for pid in self.pids()? {
            match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig) {
                Ok(()) | Err(nix::Error::ESRCH) => {}
                Err(source) => return Err(CgroupError::Signal { pid, signal, source }.into()),
            }
        }
        Ok(())
    }

    /// Remove the directories (deepest first), retrying EBUSY; missing directories are fine.
    pub fn destroy(&self) -> Result<()> {
        for dir in self.dirs() {
            remove_tree(dir)?;
        }
        Ok(())
    }
}

fn join_inner(mount_point: &Path, inner: &Path) -> PathBuf {
    mount_point.join(inner.strip_prefix("/").unwrap_or(inner))
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::ListDir {
                path: dir.to_path_buf(),
                source,
            }
            .into())
        }
    };
    Ok(rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect())
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    if let Some(text) = fs::read_opt(dir, "cgroup.procs")? {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    for sub in subdirs(dir)? {
        collect_pids(&sub, out)?;
    }
    Ok(())
}

fn remove_tree(dir: &Path) -> Result<()> {
    for sub in subdirs(dir)? {
        remove_tree(&sub)?;
    }
    let mut delay = Duration::from_millis(10);
    for attempt in 0.. {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 6 => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(source) => {
                return Err(FsError::RemoveDir {
                    path: dir.to_path_buf(),
                    source,
                }
                .into())
            }
        }
    }
    unreachable!()
}

#[cfg(test)]
mod tests;
