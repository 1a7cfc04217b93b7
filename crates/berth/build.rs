//! Records what `berth version` reports of the build: the Rust toolchain (`rustc --version`)
//! and the git commit, when the source is a git checkout.

use std::process::Command;

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rust = output(Command::new(rustc).arg("--version")).unwrap_or_default();
    println!("cargo:rustc-env=BERTH_RUST_VERSION={rust}");
    let commit = output(Command::new("git").args(["rev-parse", "--short=12", "HEAD"])).unwrap_or_default();
    println!("cargo:rustc-env=BERTH_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    // A new commit (or checkout) moves HEAD or the branch it names; its reflog changes either way.
    if let Some(dir) = output(Command::new("git").args(["rev-parse", "--absolute-git-dir"])) {
        for f in ["HEAD", "logs/HEAD"] {
            let p = std::path::Path::new(&dir).join(f);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
}
