//! v1 net_cls and net_prio.

use std::path::Path;

use oci_spec::runtime::LinuxNetwork;

use crate::fs;

pub fn apply_class_id(dir: &Path, net: &LinuxNetwork) -> crate::Result<()> {
    if let Some(id) = net.class_id() {
        fs::write(dir, "net_cls.classid", id)?;
    }
    Ok(())
}

pub fn apply_priorities(dir: &Path, net: &LinuxNetwork) -> crate::Result<()> {
    for p in net.priorities().iter().flatten() {
        fs::write(dir, "net_prio.ifpriomap", format!("{} {}", p.name(), p.priority()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fixture;

    #[test]
    fn net() {
        let t = tempfile::tempdir().unwrap();
        fixture::set(t.path(), "net_cls.classid", "0");
        fixture::set(t.path(), "net_prio.ifpriomap", "");
        let net: LinuxNetwork =
            serde_json::from_str(r#"{"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]}"#).unwrap();
        apply_class_id(t.path(), &net).unwrap();
        apply_priorities(t.path(), &net).unwrap();
        assert_eq!(fixture::get(t.path(), "net_cls.classid"), "1048577");
        assert_eq!(fixture::get(t.path(), "net_prio.ifpriomap"), "eth0 5");
    }
}
