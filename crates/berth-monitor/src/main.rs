//! `berth-monitor MONITOR_JSON [--sync-fd N]`: detaches, creates the
//! container, reports `{"pid":N,"monitor":M}` (init's and its own pid) or `{"error":"…"}` on the sync descriptor,
//! then serves the container until it exits for good. See the library's
//! documentation for the whole job.

mod serve;
mod trim;

use std::io::Write;
use std::os::fd::RawFd;

use berth_monitor::MonitorConfig;
use berth_runtime::sys::clone::{exit_immediately, fork_with_namespaces, Forked};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, sync_fd) = match parse_args(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-monitor: {e}");
            std::process::exit(2);
        }
    };
    let cfg: MonitorConfig = match std::fs::read(&path)
        .map_err(|e| format!("reading {path}: {e}"))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("parsing {path}: {e}")))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-monitor: {e}");
            std::process::exit(2);
        }
    };
    // Detach from the caller: it reaps the parent at once, and the monitor
    // lives on in a session of its own (no terminal's hangup reaches it).
    match fork_with_namespaces(nix::sched::CloneFlags::empty()) {
        Ok(Forked::Parent(_)) => exit_immediately(0),
        Ok(Forked::Child) => {}
        Err(e) => {
            eprintln!("berth-monitor: forking: {e}");
            std::process::exit(1);
        }
    }
    let sync = sync_fd.map(|fd| std::fs::File::from(berth_runtime::sys::fds::adopt(fd)));
    let _ = nix::unistd::setsid();
    let code = serve::run(cfg, sync);
    exit_immediately(code)
}

fn parse_args(args: &[String]) -> Result<(String, Option<RawFd>), String> {
    match args {
        [path] => Ok((path.clone(), None)),
        [path, flag, fd] if flag == "--sync-fd" => Ok((
            path.clone(),
            Some(
                fd.parse()
                    .map_err(|_| format!("--sync-fd {fd:?}: not a descriptor number"))?,
            ),
        )),
        _ => Err("usage: berth-monitor MONITOR_JSON [--sync-fd N]".into()),
    }
}

/// Reports the outcome of the first create to the engine (one JSON line).
pub(crate) fn report(sync: &mut Option<std::fs::File>, msg: serde_json::Value) {
    if let Some(mut f) = sync.take() {
        let _ = writeln!(f, "{msg}");
    }
}
