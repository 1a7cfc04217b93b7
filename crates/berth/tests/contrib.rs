//! The files of `contrib/` that hosts install, checked by the tools that read them.

use std::path::Path;
use std::process::Command;

/// `contrib/systemd/berth-boot.service` is a unit systemd accepts, running this build's
/// `berth system boot` (the unit's `/usr/local/bin/berth` replaced by it).
#[test]
fn the_boot_unit_is_one_systemd_accepts() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("skipping: systemd-analyze missing (apt-get install systemd)");
        return;
    }
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/systemd/berth-boot.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains("ExecStart=/usr/local/bin/berth system boot\n"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("berth-boot.service");
    std::fs::write(&copy, text.replace("/usr/local/bin/berth", env!("CARGO_BIN_EXE_berth"))).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "{}: {stderr}",
        out.status
    );
    // And the command it runs exists: `system boot --help` is answered.
    let help = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["system", "boot", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success(), "{}", String::from_utf8_lossy(&help.stderr));
}
