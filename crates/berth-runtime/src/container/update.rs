//! `update`: change a live container's resource limits.

use oci_spec::runtime::LinuxResources;

use crate::error::Result;
use crate::state::Root;

/// Apply `resources` (merged over the container's current ones) and record
/// them in the state.
pub fn update(root: &Root, id: &str, resources: &LinuxResources) -> Result<()> {
    let mut state = super::load_live(root, id)?;
    let cg = super::cgroup_of(&state, "update")?.clone();
    cg.apply(resources)?;
    let merged = merge(
        state
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default(),
        resources,
    );
    if let Some(linux) = state.config.linux_mut() {
        linux.set_resources(Some(merged));
    }
    state.save(root)
}

/// Overlay the set fields of `new` on `base`, field by field.
pub fn merge(base: LinuxResources, new: &LinuxResources) -> LinuxResources {
    let mut b = serde_json::to_value(&base).unwrap_or_default();
    let n = serde_json::to_value(new).unwrap_or_default();
    merge_json(&mut b, &n);
    serde_json::from_value(b).unwrap_or(base)
}

fn merge_json(base: &mut serde_json::Value, new: &serde_json::Value) {
    match (base, new) {
        (serde_json::Value::Object(b), serde_json::Value::Object(n)) => {
            for (k, v) in n {
                merge_json(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, n) => *b = n.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_unset_fields() {
        let base: LinuxResources =
            serde_json::from_str(r#"{"memory":{"limit":100,"reservation":50},"pids":{"limit":10}}"#).unwrap();
        let new: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":200}}"#).unwrap();
        let m = merge(base, &new);
        assert_eq!(m.memory().unwrap().limit(), Some(200));
        assert_eq!(m.memory().unwrap().reservation(), Some(50));
        assert_eq!(m.pids().unwrap().limit(), 10);
    }
}
