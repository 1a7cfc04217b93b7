//! `berth volume …`: create, ls, inspect, rm, prune, as Docker prints them.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use berth_engine::volumes::{self, VolumeCreate, VolumeError};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cli::Global;
use crate::container_cmds::open;
use crate::output;
use crate::output::key_values;
use crate::units::human_size;

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes.
    Inspect(InspectArgs),
    /// Remove one or more volumes.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes (anonymous ones only, unless --all).
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Volume driver name (only `local`).
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume (KEY=VALUE, repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Driver options: type=…, device=…, o=… (mount(2)'s filesystem, source and options).
    #[arg(short = 'o', long = "opt")]
    pub opts: Vec<String>,
    /// Volume name (also as the argument).
    #[arg(long = "name", hide = true)]
    pub name_flag: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display volume names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter: dangling=true|false, name=…, label=KEY[=VALUE], driver=….
    #[arg(short, long = "filter")]
    pub filters: Vec<String>,
    /// A Go template, `table …`, or `json`.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A Go template, or `json`.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// No error for volumes that do not exist.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not only anonymous ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Filter: label=KEY[=VALUE], label!=KEY[=VALUE], all=true.
    #[arg(long = "filter")]
    pub filters: Vec<String>,
}

pub fn dispatch(g: &Global, c: &VolumeCommand) -> Result<i32> {
    match c {
        VolumeCommand::Create(a) => create(g, a),
        VolumeCommand::Ls(a) => ls(g, a),
        VolumeCommand::Inspect(a) => inspect(g, a),
        VolumeCommand::Rm(a) => rm(g, a),
        VolumeCommand::Prune(a) => prune(g, a),
    }
}

fn create(g: &Global, a: &CreateArgs) -> Result<i32> {
    let name = match (&a.name, &a.name_flag) {
        (Some(n), Some(f)) if n != f => {
            bail!("conflicting options: either specify --name or provide positional arg, not both")
        }
        (n, f) => n.clone().or_else(|| f.clone()),
    };
    for o in &a.opts {
        if !o.contains('=') {
            bail!("invalid argument {o:?} for \"-o, --opt\" flag: expected KEY=VALUE");
        }
    }
    let e = open(g)?;
    let v = e.volume_create(&VolumeCreate {
        name,
        driver: Some(a.driver.clone()),
        labels: key_values(&a.labels),
        options: key_values(&a.opts),
    })?;
    println!("{}", v.name);
    Ok(0)
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn ls(g: &Global, a: &LsArgs) -> Result<i32> {
    let e = open(g)?;
    let filters = crate::output::filter_pairs(&a.filters)?;
    let mut rows = Vec::new();
    for u in e.volumes()? {
        if volumes::filter_matches(&u, &filters)? {
            rows.push(u);
        }
    }
    if a.quiet {
        for u in &rows {
            println!("{}", u.volume.name);
        }
        return Ok(0);
    }
    let values: Vec<Value> = rows
        .iter()
        .map(|u| {
            json!({
                "Name": u.volume.name,
                "Driver": u.volume.driver,
                "Scope": "local",
                "Mountpoint": e.volume_mountpoint(&u.volume.name),
                "Labels": labels_text(&u.volume.labels),
                "CreatedAt": u.volume.created,
                "Links": "N/A",
                "Size": "N/A",
                "Group": "N/A",
                "Availability": "N/A",
                "Status": "N/A",
            })
        })
        .collect();
    output::print_list(
        &values,
        a.format.as_deref().unwrap_or("table {{.Driver}}\t{{.Name}}"),
        &[
            ("Name", "VOLUME NAME"),
            ("Driver", "DRIVER"),
            ("Scope", "SCOPE"),
            ("Mountpoint", "MOUNTPOINT"),
            ("Labels", "LABELS"),
            ("CreatedAt", "CREATED"),
            ("Links", "LINKS"),
            ("Size", "SIZE"),
            ("Group", "GROUP"),
            ("Availability", "AVAILABILITY"),
            ("Status", "STATUS"),
        ],
    )?;
    Ok(0)
}

fn inspect(g: &Global, a: &InspectArgs) -> Result<i32> {
    let e = open(g)?;
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for n in &a.names {
        match e.volume(n) {
            Ok(v) => docs.push(e.volume_inspect(&v)),
            Err(err @ VolumeError::NotFound(_)) => errors.push(err),
            Err(err) => return Err(err.into()),
        }
    }
    output::print_inspect(&docs, a.format.as_deref())?;
    for err in &errors {
        eprintln!("Error response from daemon: {err}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

fn rm(g: &Global, a: &RmArgs) -> Result<i32> {
    crate::container_cmds::each(g, &a.names, |e, n| match e.volume_remove(n) {
        Err(VolumeError::NotFound(_)) if a.force => Ok(()),
        r => r,
    })
}

fn prune(g: &Global, a: &PruneArgs) -> Result<i32> {
    let mut all = a.all;
    let mut labels = Vec::new();
    for (k, v) in crate::output::filter_pairs(&a.filters)? {
        match k.as_str() {
            "all" => all |= matches!(v.as_str(), "true" | "1"),
            "label" | "label!" => labels.push((k == "label", v)),
            _ => bail!("invalid filter '{k}'"),
        }
    }
    if !a.force {
        let what = if all { "all" } else { "anonymous" };
        if !crate::output::confirm(&format!(
            "WARNING! This will remove {what} local volumes not used by at least one container."
        ))? {
            return Ok(0);
        }
    }
    let e = open(g)?;
    let keep = |v: &volumes::Volume| {
        labels
            .iter()
            .any(|(want, l)| volumes::label_matches(&v.labels, l) != *want)
    };
    let (removed, reclaimed) = e.volume_prune(all, &keep)?;
    crate::output::print_deleted("Deleted Volumes:", &removed);
    println!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_and_filters_split_on_the_first_equals() {
        let m = key_values(&["a=b=c".into(), "flag".into()]);
        assert_eq!(m["a"], "b=c");
        assert_eq!(m["flag"], "");
        assert_eq!(
            crate::output::filter_pairs(&["label=x=y".into()]).unwrap(),
            [("label".to_string(), "x=y".to_string())]
        );
        assert!(crate::output::filter_pairs(&["dangling".into()]).is_err());
        let labels = [("a".to_string(), "1".to_string()), ("b".to_string(), String::new())].into();
        assert_eq!(labels_text(&labels), "a=1,b=");
    }
}
