//! `features`: what this runtime supports, in the OCI features format.

use serde_json::{json, Value};

pub fn features() -> Value {
    let layout = berth_cgroups::Layout::detect().ok();
    let v1 = layout
        .as_ref()
        .is_some_and(|l| l.mode() != berth_cgroups::Mode::Unified);
    let v2 = layout.as_ref().is_some_and(|l| l.mode() != berth_cgroups::Mode::Legacy);
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::rootfs::options::KNOWN,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": &crate::caps::NAMES[..=crate::caps::last_cap().min(40) as usize],
            "cgroup": {"v1": v1, "v2": v2, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "org.opencontainers.runc.version": env!("CARGO_PKG_VERSION"),
            "io.github.berth.runtime": "berth-runc"
        }
    })
}
