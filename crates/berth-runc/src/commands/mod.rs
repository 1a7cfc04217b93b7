//! One file per command; each returns the process exit code.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use anyhow::Result;
use berth_runtime::Root;

use crate::cli::{Cli, Command};

pub fn dispatch(cli: &Cli) -> Result<i32> {
    let root = Root::new(cli.global.root());
    match &cli.command {
        Command::Create(a) => create::run(&root, a),
        Command::Start { id } => start::run(&root, id),
        Command::Run(a) => run::run(&root, a),
        Command::State { id } => state::run(&root, id),
        Command::Kill { all, id, signal } => kill::run(&root, id, signal, *all),
        Command::Delete { force, id } => delete::run(&root, id, *force),
        Command::List { format, quiet } => list::run(&root, format, *quiet),
        Command::Ps { format, id, ps_args } => ps::run(&root, id, format, ps_args),
        Command::Exec(a) => exec::run(&root, a),
        Command::Pause { id } => pause::pause(&root, id),
        Command::Resume { id } => pause::resume(&root, id),
        Command::Events { interval, stats, id } => events::run(&root, id, interval, *stats),
        Command::Update(a) => update::run(&root, a),
        Command::Spec { bundle, rootless } => spec::run(bundle, *rootless),
        Command::Features => features::run(),
    }
}

/// Print JSON the way runc does (two-space indent).
pub fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Turn a runtime error into its user-facing chain.
pub fn chain(e: berth_runtime::Error) -> anyhow::Error {
    anyhow::anyhow!(e.chain())
}
