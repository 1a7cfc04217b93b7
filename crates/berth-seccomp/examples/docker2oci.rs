//! Print a Docker-format seccomp profile as the OCI `linux.seccomp` section
//! for this host, for the given capabilities (default: those of
//! `runc spec`). Used by the benchmarks.
//!
//!     cargo run --release -p berth-seccomp --example docker2oci -- PROFILE.json [CAP...]

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: docker2oci PROFILE.json [CAP...]");
        std::process::exit(2);
    };
    let mut caps: Vec<String> = args.collect();
    if caps.is_empty() {
        caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            .map(String::from)
            .to_vec();
    }
    let run = || -> Result<String, Box<dyn std::error::Error>> {
        let raw = std::fs::read(&path).map_err(|e| format!("reading {path}: {e}"))?;
        let target = berth_seccomp::docker::Target::host(caps)?;
        let oci = berth_seccomp::docker::convert(&raw, &target)?;
        Ok(serde_json::to_string_pretty(&oci)?)
    };
    match run() {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("docker2oci: {e}");
            std::process::exit(1);
        }
    }
}
