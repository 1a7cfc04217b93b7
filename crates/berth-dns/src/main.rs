//! `berth-dns --config FILE [--daemonize] [--pid-file PATH] [--log-file PATH]`: serves one
//! network's names until SIGTERM or until FILE is removed. See the library's documentation.

use std::path::PathBuf;

use berth_dns::daemon::{self, Detached};
use berth_dns::server::{Exit, Server};

const USAGE: &str = "usage: berth-dns --config FILE [--daemonize] [--pid-file PATH] [--log-file PATH]";

struct Args {
    config: PathBuf,
    daemonize: bool,
    pid_file: Option<PathBuf>,
    log_file: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut config, mut daemonize, mut pid_file, mut log_file) = (None, false, None, None);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().map(PathBuf::from).ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--config" => config = Some(value("--config")?),
            "--pid-file" => pid_file = Some(value("--pid-file")?),
            "--log-file" => log_file = Some(value("--log-file")?),
            "--daemonize" => daemonize = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let config = config.ok_or_else(|| format!("--config is required\n{USAGE}"))?;
    // A daemon works from "/": relative paths are resolved first.
    let absolute = |p: PathBuf| std::path::absolute(&p).map_err(|e| format!("{}: {e}", p.display()));
    Ok(Args {
        config: absolute(config)?,
        daemonize,
        pid_file: pid_file.map(absolute).transpose()?,
        log_file: log_file.map(absolute).transpose()?,
    })
}

fn fail(code: i32, message: impl std::fmt::Display) -> ! {
    eprintln!("berth-dns: {message}");
    std::process::exit(code)
}

fn main() {
    let args = parse_args(std::env::args().skip(1)).unwrap_or_else(|e| fail(2, e));
    if args.daemonize {
        daemon::close_inherited_fds().unwrap_or_else(|e| fail(1, format_args!("closing inherited descriptors: {e}")));
    }
    if let Err(e) = daemon::raise_fd_limit() {
        eprintln!("berth-dns: raising the open file limit: {e}");
    }
    // Bound before detaching: an address in use is the caller's error, at once.
    let mut server = Server::bind(&args.config).unwrap_or_else(|e| fail(1, e));
    let ready = if args.daemonize {
        match daemon::detach() {
            Ok(Detached::Parent(code)) => std::process::exit(code),
            Ok(Detached::Daemon(ready)) => Some(ready),
            Err(e) => fail(1, format_args!("detaching: {e}")),
        }
    } else {
        None
    };
    if let Some(pid_file) = &args.pid_file {
        if let Err(e) = daemon::write_pid_file(pid_file) {
            fail(1, format_args!("writing pid file {}: {e}", pid_file.display()));
        }
    }
    if let Some(ready) = ready {
        if let Err(e) = daemon::quiet_stdio(args.log_file.as_deref()) {
            fail(1, format_args!("redirecting standard streams: {e}"));
        }
        ready.notify();
    }
    let result = server.run();
    if let Some(pid_file) = &args.pid_file {
        daemon::remove_pid_file(pid_file);
    }
    match result {
        Ok(Exit::Signal(_)) | Ok(Exit::ConfigRemoved) => {}
        Err(e) => fail(1, e),
    }
}
