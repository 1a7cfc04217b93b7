//! berth-monitor is linked as a non-PIE executable on Linux: one runs per
//! container for its whole life, and a position-independent executable's
//! relocated data (its GOT and `.data.rel.ro`, written by the dynamic loader
//! at every start) is about 280 kB of private memory per monitor; non-PIE,
//! the linker resolves it and the pages stay clean and shared.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
