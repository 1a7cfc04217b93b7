//! v2 pids controller (same file as v1).

use std::path::Path;

use oci_spec::runtime::LinuxPids;

pub fn apply(dir: &Path, pids: &LinuxPids) -> crate::Result<()> {
    crate::v1::pids::apply(dir, pids)
}
