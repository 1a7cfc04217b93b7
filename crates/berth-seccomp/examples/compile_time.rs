//! Times compiling Docker's default profile against loading it from a warm
//! cache:
//!
//!   cargo run --release -p berth-seccomp --example compile_time [default.json]

use std::time::{Duration, Instant};

use berth_seccomp::docker::{self, Target};
use berth_seccomp::{compile, Cache};

const PROFILE: &str = "/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json";
const ROUNDS: u32 = 200;

fn time<T>(mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(f());
    }
    start.elapsed() / ROUNDS
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| PROFILE.to_string());
    let json = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let target = Target::host(
        berth_seccomp::docker::DEFAULT_CAPS
            .iter()
            .map(|c| c.to_string())
            .collect(),
    )
    .unwrap();
    let spec = docker::convert(&json, &target).unwrap();
    let program = compile(&spec).unwrap();
    println!(
        "{path}: {} instructions, flags {:#x}",
        program.instructions().len(),
        program.flags()
    );

    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("seccomp"));
    let start = Instant::now();
    cache.get_or_compile(&spec).unwrap();
    let cold = start.elapsed();

    println!(
        "docker::convert        {:>10.1?}",
        time(|| docker::convert(&json, &target).unwrap())
    );
    println!("compile                {:>10.1?}", time(|| compile(&spec).unwrap()));
    println!("get_or_compile (cold)  {cold:>10.1?}");
    println!(
        "get_or_compile (warm)  {:>10.1?}",
        time(|| cache.get_or_compile(&spec).unwrap())
    );
}
