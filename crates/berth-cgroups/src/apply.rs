//! Dispatch of OCI resources to the hierarchy holding each controller.

use oci_spec::runtime::LinuxResources;

use crate::cgroup::{Cgroup, CgroupError, Target};
use crate::{fs, v1, v2, Result};

fn missing(controller: &str) -> crate::Error {
    CgroupError::ControllerMissing {
        controller: controller.to_string(),
    }
    .into()
}

pub fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        match cg.target("memory") {
            Some(Target::V1(d)) => v1::memory::apply(d, m)?,
            Some(Target::V2(d)) => v2::memory::apply(d, m)?,
            None if v1::memory::is_set(m) => return Err(missing("memory")),
            None => {}
        }
    }
    if let Some(c) = r.cpu() {
        match cg.target("cpu") {
            Some(Target::V1(d)) => v1::cpu::apply(d, c)?,
            Some(Target::V2(d)) => v2::cpu::apply(d, c)?,
            None if v1::cpu::is_set(c) => return Err(missing("cpu")),
            None => {}
        }
        let cpuset =
            c.cpus().as_ref().is_some_and(|s| !s.is_empty()) || c.mems().as_ref().is_some_and(|s| !s.is_empty());
        match cg.target("cpuset") {
            Some(Target::V1(d)) => v1::cpuset::apply(d, c)?,
            Some(Target::V2(d)) => v2::cpuset::apply(d, c)?,
            None if cpuset => return Err(missing("cpuset")),
            None => {}
        }
    }
    if let Some(p) = r.pids() {
        match cg.target("pids") {
            Some(Target::V1(d)) => v1::pids::apply(d, p)?,
            Some(Target::V2(d)) => v2::pids::apply(d, p)?,
            None if p.limit() > 0 => return Err(missing("pids")),
            None => {}
        }
    }
    if let Some(b) = r.block_io() {
        match (cg.target("blkio"), cg.target("io")) {
            (Some(Target::V1(d)), _) => v1::blkio::apply(d, b)?,
            (_, Some(Target::V2(d))) => v2::io::apply(d, b)?,
            _ if v1::blkio::is_set(b) => return Err(missing("blkio")),
            _ => {}
        }
    }
    if let Some(h) = r.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
        match cg.target("hugetlb") {
            Some(Target::V1(d)) => v1::hugetlb::apply(d, h)?,
            Some(Target::V2(d)) => v2::hugetlb::apply(d, h)?,
            None => return Err(missing("hugetlb")),
        }
    }
    if let Some(n) = r.network() {
        match cg.target("net_cls") {
            Some(Target::V1(d)) => v1::net::apply_class_id(d, n)?,
            _ if n.class_id().is_some() => return Err(missing("net_cls")),
            _ => {}
        }
        match cg.target("net_prio") {
            Some(Target::V1(d)) => v1::net::apply_priorities(d, n)?,
            _ if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) => return Err(missing("net_prio")),
            _ => {}
        }
    }
    if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        apply_unified(cg, u)?;
    }
    // Devices last, so the runtime can still set up everything else.
    if let Some(d) = r.devices() {
        match cg.target("devices") {
            Some(Target::V1(dir)) => v1::devices::apply(dir, d)?,
            Some(Target::V2(dir)) => v2::devices::apply(dir, d)?,
            None if !d.is_empty() => return Err(missing("devices")),
            None => {}
        }
    }
    Ok(())
}

/// Raw cgroup v2 key/values, sorted by key for a stable write order.
fn apply_unified(cg: &Cgroup, map: &std::collections::HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        let controller = key.split('.').next().unwrap_or_default();
        let dir = match &cg.unified {
            Some(u) if controller == "cgroup" || u.controllers.iter().any(|c| c == controller) => &u.path,
            _ => return Err(CgroupError::UnifiedUnavailable { key: key.clone() }.into()),
        };
        if key.contains('/') || key.is_empty() {
            return Err(CgroupError::UnifiedUnavailable { key: key.clone() }.into());
        }
        fs::write(dir, key, &map[key])?;
    }
    Ok(())
}
