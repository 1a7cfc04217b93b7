//! berth: a container engine's command line, daemonless, with Docker's commands, flags, output
//! and exit codes. Parses, opens the stores under `--root`/`--runroot`, dispatches.

mod attach;
mod cli;
mod container_args;
mod container_cmds;
mod fs_cmds;
mod image_cmds;
mod login;
mod network_cmds;
mod output;
mod progress;
mod resource_cmds;
mod sigpipe;
mod system_cmds;
mod units;
mod volume_cmds;

use clap::Parser;

fn main() {
    // Broken pipes (`berth images | head`) end the output quietly, as Go programs do.
    sigpipe::default();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind::*;
            // Docker's status for a bad flag is 125 (its engine-error code),
            // so `run --bogus` is told apart from the container's own codes.
            let code = match e.kind() {
                UnknownArgument | InvalidValue | NoEquals | ValueValidation | TooManyValues | TooFewValues
                | WrongNumberOfValues | ArgumentConflict => 125,
                _ => e.exit_code(),
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match image_cmds::dispatch(&cli) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<container_cmds::Exit>() {
            Some(exit) => {
                eprintln!("Error: {exit}");
                exit.code
            }
            None => {
                eprintln!("Error: {}", berth_runtime::error::chain(&*e));
                1
            }
        },
    };
    std::process::exit(code);
}
