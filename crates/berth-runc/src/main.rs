//! berth-runc: a runc-compatible command line over berth-runtime.
//! Parses, sets up logging, dispatches to `commands/<verb>.rs`.

mod cli;
mod commands;
mod log;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    log::init(&cli.global);
    if cli.global.systemd_cgroup && !std::path::Path::new("/run/systemd/system").is_dir() {
        log::error("systemd cgroup driver requested (--systemd-cgroup) but systemd is not running on this host");
        std::process::exit(1);
    }
    let code = match commands::dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            let prefix = cli.command.error_prefix();
            let msg = berth_runtime::error::chain(&*e);
            log::error(&if prefix.is_empty() {
                msg
            } else {
                format!("{prefix}{msg}")
            });
            cli.command.error_exit_code()
        }
    };
    std::process::exit(code);
}
