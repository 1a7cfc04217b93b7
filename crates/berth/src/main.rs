//! berth: a container engine's command line, daemonless, with Docker's commands, flags, output
//! and exit codes. Parses, opens the stores under `--root`/`--runroot`, dispatches.

mod attach;
mod cli;
mod container_args;
mod container_cmds;
mod image_cmds;
mod login;
mod output;
mod progress;
mod sigpipe;
mod units;

use clap::Parser;

fn main() {
    // Broken pipes (`berth images | head`) end the output quietly, as Go programs do.
    sigpipe::default();
    let cli = cli::Cli::parse();
    let code = match image_cmds::dispatch(&cli) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<container_cmds::Exit>() {
            Some(exit) => {
                eprintln!("Error: {exit}");
                exit.code
            }
            None => {
                eprintln!("Error: {e:#}");
                1
            }
        },
    };
    std::process::exit(code);
}
