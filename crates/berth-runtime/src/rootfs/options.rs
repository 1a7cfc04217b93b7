//! Mount options of the OCI spec turned into mount(2) flags and data.

use nix::mount::MsFlags;

/// A mount's options, split the way mount(2) wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount itself.
    pub flags: MsFlags,
    /// Propagation changes applied after mounting (each its own call).
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific data ("mode=755,size=65536k").
    pub data: String,
    /// runc's tmpcopyup: copy what was under a tmpfs into it.
    pub tmpcopyup: bool,
    /// Recursive attributes (`rro`, `rnosuid`, …) for mount_setattr(2):
    /// bits to set and to clear on the whole tree.
    pub rec_set: u64,
    pub rec_clr: u64,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)).
    pub idmap: Option<bool>,
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// Parse OCI mount options. Unknown words go to the data string, as runc does.
pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
        tmpcopyup: false,
        rec_set: 0,
        rec_clr: 0,
        idmap: None,
    };
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let o = opt.as_str();
        if let Some((clear, flag)) = flag_for(o) {
            if clear {
                out.flags.remove(flag);
            } else {
                out.flags.insert(flag);
            }
        } else if let Some(p) = propagation_for(o) {
            out.propagation.push(p);
        } else if o == "tmpcopyup" {
            out.tmpcopyup = true;
        } else if o == "idmap" || o == "ridmap" {
            out.idmap = Some(o == "ridmap");
        } else if let Some((clear, set)) = recursive_attr_for(o) {
            out.rec_clr |= clear;
            out.rec_set = (out.rec_set & !clear) | set;
        } else {
            data.push(o);
        }
    }
    out.data = data.join(",");
    out
}

fn flag_for(opt: &str) -> Option<(bool, MsFlags)> {
    Some(match opt {
        "defaults" => (false, MsFlags::empty()),
        "ro" => (false, MsFlags::MS_RDONLY),
        "rw" => (true, MsFlags::MS_RDONLY),
        "suid" => (true, MsFlags::MS_NOSUID),
        "nosuid" => (false, MsFlags::MS_NOSUID),
        "dev" => (true, MsFlags::MS_NODEV),
        "nodev" => (false, MsFlags::MS_NODEV),
        "exec" => (true, MsFlags::MS_NOEXEC),
        "noexec" => (false, MsFlags::MS_NOEXEC),
        "sync" => (false, MsFlags::MS_SYNCHRONOUS),
        "async" => (true, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (false, MsFlags::MS_DIRSYNC),
        "remount" => (false, MsFlags::MS_REMOUNT),
        "mand" => (false, MsFlags::MS_MANDLOCK),
        "nomand" => (true, MsFlags::MS_MANDLOCK),
        "atime" => (true, MsFlags::MS_NOATIME),
        "noatime" => (false, MsFlags::MS_NOATIME),
        "diratime" => (true, MsFlags::MS_NODIRATIME),
        "nodiratime" => (false, MsFlags::MS_NODIRATIME),
        "relatime" => (false, MsFlags::MS_RELATIME),
        "norelatime" => (true, MsFlags::MS_RELATIME),
        "strictatime" => (false, MsFlags::MS_STRICTATIME),
        "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
        "bind" => (false, MsFlags::MS_BIND),
        "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
        "silent" => (false, MsFlags::MS_SILENT),
        "loud" => (true, MsFlags::MS_SILENT),
        "iversion" => (false, MsFlags::MS_I_VERSION),
        "noiversion" => (true, MsFlags::MS_I_VERSION),
        "lazytime" => (false, MsFlags::MS_LAZYTIME),
        "nolazytime" => (true, MsFlags::MS_LAZYTIME),
        _ => return None,
    })
}

/// Propagation option → flags for a separate mount(2) call.
pub fn propagation_for(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Recursive mount attributes, as runc spells them: (bits to clear, bits to set).
fn recursive_attr_for(opt: &str) -> Option<(u64, u64)> {
    use crate::sys::mount_api::*;
    Some(match opt {
        "rro" => (0, MOUNT_ATTR_RDONLY),
        "rrw" => (MOUNT_ATTR_RDONLY, 0),
        "rnosuid" => (0, MOUNT_ATTR_NOSUID),
        "rsuid" => (MOUNT_ATTR_NOSUID, 0),
        "rnodev" => (0, MOUNT_ATTR_NODEV),
        "rdev" => (MOUNT_ATTR_NODEV, 0),
        "rnoexec" => (0, MOUNT_ATTR_NOEXEC),
        "rexec" => (MOUNT_ATTR_NOEXEC, 0),
        "rnodiratime" => (0, MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (MOUNT_ATTR_NODIRATIME, 0),
        "rrelatime" => (MOUNT_ATTR_ATIME_MASK, MOUNT_ATTR_RELATIME),
        "rnoatime" => (MOUNT_ATTR_ATIME_MASK, MOUNT_ATTR_NOATIME),
        "rstrictatime" => (MOUNT_ATTR_ATIME_MASK, MOUNT_ATTR_STRICTATIME),
        "rnosymfollow" => (0, MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (MOUNT_ATTR_NOSYMFOLLOW, 0),
        _ => return None,
    })
}

/// Every option word we understand, for `features`.
pub const KNOWN: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "tmpcopyup",
    "unbindable",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_data_and_propagation_split() {
        let o = parse(&s(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]));
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn recursive_attributes_and_idmap() {
        use crate::sys::mount_api::*;
        let o = parse(&s(&["rbind", "rro", "rnosuid", "rnoatime", "ridmap"]));
        assert_eq!(o.rec_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME);
        assert_eq!(o.rec_clr, MOUNT_ATTR_ATIME_MASK);
        assert_eq!(o.idmap, Some(true));
        assert!(o.data.is_empty());
        let o = parse(&s(&["rro", "rrw"]));
        assert_eq!((o.rec_set, o.rec_clr), (0, MOUNT_ATTR_RDONLY));
    }

    #[test]
    fn later_option_wins() {
        let o = parse(&s(&["rbind", "ro", "rw"]));
        assert!(o.is_bind() && o.flags.contains(MsFlags::MS_REC));
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }
}
