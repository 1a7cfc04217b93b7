//! Capabilities: the five sets of `process.capabilities`, applied in runc's
//! order (bounding first, then the identity change, then the rest).

use oci_spec::runtime::{Capability, LinuxCapabilities};

use crate::error::{IoContext, Result};
use crate::sys::capset;

/// The kernel's number for a capability.
pub fn number(cap: Capability) -> u32 {
    use Capability::*;
    match cap {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// The highest capability number the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Every capability name we know, in kernel order, for `features`.
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The five sets as bit masks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

impl CapSets {
    /// Masks from the spec, dropping capabilities the kernel does not have
    /// (runc ignores those with a warning).
    pub fn from_spec(caps: Option<&LinuxCapabilities>) -> CapSets {
        let last = last_cap();
        let mask = |set: &Option<oci_spec::runtime::Capabilities>| -> u64 {
            set.as_ref()
                .map(|s| {
                    s.iter()
                        .map(|c| number(*c))
                        .filter(|n| *n <= last)
                        .fold(0u64, |m, n| m | (1 << n))
                })
                .unwrap_or(0)
        };
        match caps {
            None => CapSets::default(),
            Some(c) => CapSets {
                bounding: mask(c.bounding()),
                effective: mask(c.effective()),
                inheritable: mask(c.inheritable()),
                permitted: mask(c.permitted()),
                ambient: mask(c.ambient()),
            },
        }
    }
}

/// Drop everything not in the bounding set. Needs CAP_SETPCAP, so it runs
/// before the process changes its uid.
pub fn apply_bounding(sets: &CapSets) -> Result<()> {
    for cap in 0..=last_cap() {
        if sets.bounding & (1 << cap) == 0 {
            capset::drop_bounding(cap).op(format!(
                "dropping capability {} from the bounding set",
                NAMES.get(cap as usize).unwrap_or(&"?")
            ))?;
        }
    }
    Ok(())
}

/// Set effective, permitted and inheritable, then raise the ambient set.
pub fn apply_sets(sets: &CapSets) -> Result<()> {
    capset::capset(sets.effective, sets.permitted, sets.inheritable).op("setting capabilities")?;
    capset::clear_ambient().op("clearing ambient capabilities")?;
    for cap in 0..64u32 {
        if sets.ambient & (1 << cap) != 0 {
            // An ambient capability must be permitted and inheritable; runc
            // ignores the ones that are not rather than failing.
            let _ = capset::raise_ambient(cap);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_names() {
        for (i, name) in NAMES.iter().enumerate() {
            let cap: Capability = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(number(cap) as usize, i, "{name}");
        }
    }

    #[test]
    fn masks_from_spec() {
        let caps: LinuxCapabilities =
            serde_json::from_str(r#"{"bounding":["CAP_KILL","CAP_CHOWN"],"effective":["CAP_KILL"],"ambient":[]}"#)
                .unwrap();
        let sets = CapSets::from_spec(Some(&caps));
        assert_eq!(sets.bounding, (1 << 5) | 1);
        assert_eq!(sets.effective, 1 << 5);
        assert_eq!(sets.permitted, 0);
    }
}
