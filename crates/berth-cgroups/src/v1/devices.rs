//! v1 devices controller: devices.deny "a", then the rules in order.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::fs;

fn num(n: Option<i64>) -> String {
    match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_string(),
    }
}

/// A rule as a line for devices.allow / devices.deny, e.g. "c 1:3 rwm"; `None` for rules the
/// device cgroup cannot express (fifos).
pub fn rule_line(rule: &LinuxDeviceCgroup) -> Option<String> {
    let typ = match rule.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => "a",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::P => return None,
    };
    let access = rule.access().as_deref().filter(|a| !a.is_empty()).unwrap_or("rwm");
    Some(format!("{typ} {}:{} {access}", num(rule.major()), num(rule.minor())))
}

pub fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> crate::Result<()> {
    fs::write(dir, "devices.deny", "a")?;
    for rule in rules {
        if let Some(line) = rule_line(rule) {
            let file = if rule.allow() { "devices.allow" } else { "devices.deny" };
            fs::write(dir, file, line)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                {"allow": true, "type": "b", "major": 8},
                {"allow": true, "type": "p"}]"#,
        )
        .unwrap();
        let lines: Vec<_> = rules.iter().map(rule_line).collect();
        assert_eq!(lines[0].as_deref(), Some("a *:* rwm"));
        assert_eq!(lines[1].as_deref(), Some("c 1:3 rw"));
        assert_eq!(lines[2].as_deref(), Some("b 8:* rwm"));
        assert_eq!(lines[3], None);
        // Writes are single lines; the fixture keeps the last one of each file.
        let t = tempfile::tempdir().unwrap();
        crate::fs::fixture::set(t.path(), "devices.allow", "");
        crate::fs::fixture::set(t.path(), "devices.deny", "");
        apply(t.path(), &rules).unwrap();
        assert_eq!(crate::fs::fixture::get(t.path(), "devices.deny"), "a *:* rwm");
        assert_eq!(crate::fs::fixture::get(t.path(), "devices.allow"), "b 8:* rwm");
    }
}
