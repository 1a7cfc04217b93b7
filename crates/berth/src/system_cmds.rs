//! `system df`, `system prune`, `events`, `version` and `info`, as Docker prints them.

use std::io::Write;

use anyhow::{Context, Result};
use berth_engine::events::{self, EventFilter, EventOptions};
use berth_engine::system::{self, API_VERSION, VERSION};
use berth_template::Template;
use clap::Args;
use serde_json::{json, Value};

use crate::cli::{DfArgs, Global, ImagesArgs};
use crate::container_cmds::{command_text, open, status_text};
use crate::output;
use crate::output::{confirm, print_deleted};
use crate::units::{bytes_size, human_duration, human_size, now};

/// The commit and toolchain this binary was built from (build.rs).
const GIT_COMMIT: &str = env!("BERTH_GIT_COMMIT");
const RUST_VERSION: &str = env!("BERTH_RUST_VERSION");

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images, not only dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Prune anonymous volumes too.
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Show events since this time (RFC 3339, Unix seconds, or a duration like 10m).
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this time, then exit.
    #[arg(long)]
    pub until: Option<String>,
    /// Filter: type=, container=, event=, image=, label=, volume=.
    #[arg(short, long = "filter")]
    pub filters: Vec<String>,
    /// A Go template, or `json`.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// A Go template, or `json`.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `percent` of Docker's reclaimable columns: ` (N%)` of a non-zero whole.
fn reclaimable(part: u64, whole: u64) -> String {
    let pct = (part * 100)
        .checked_div(whole)
        .map(|p| format!(" ({p}%)"))
        .unwrap_or_default();
    format!("{}{pct}", human_size(part))
}

const DF_HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

pub fn df(g: &Global, a: &DfArgs) -> Result<i32> {
    let e = open(g)?;
    let du = e.disk_usage()?;
    let now = now();
    let containers: Vec<Value> = du
        .containers
        .iter()
        .map(|c| {
            let s = c.row.settings();
            json!({
                "ID": c.row.id[..12],
                "Image": c.row.image_name,
                "Command": command_text(&c.row, false),
                "LocalVolumes": s.host_config.mounts.iter().filter(|m| m.kind == "volume").count().to_string(),
                "Size": human_size(c.size),
                "RunningFor": format!("{} ago", human_duration(now - crate::container_cmds::secs_of(&c.row.created))),
                "Status": status_text(&c.row, now, None),
                "Names": c.row.name,
            })
        })
        .collect();
    let volumes: Vec<Value> = du
        .volumes
        .iter()
        .map(|v| json!({"Name": v.volume.name, "Links": v.links.to_string(), "Size": human_size(v.size)}))
        .collect();
    if a.verbose {
        if let Some(f) = a.format.as_deref().filter(|f| !f.starts_with("table")) {
            let images: Vec<Value> = e
                .images()
                .list()?
                .iter()
                .flat_map(|s| crate::image_cmds::image_rows(s, false))
                .collect();
            let doc = json!({
                "LayersSize": du.images.size,
                "Images": images,
                "Containers": containers,
                "Volumes": volumes,
                "BuildCache": [],
            });
            return print_document(&doc, Some(f)).map(|()| 0);
        }
        println!("Images space usage:\n");
        let images = ImagesArgs {
            all: true,
            digests: false,
            filters: Vec::new(),
            format: Some(
                "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}".into(),
            ),
            no_trunc: false,
            quiet: false,
            repository: None,
        };
        crate::image_cmds::list_in(e.images(), &images)?;
        println!("\nContainers space usage:\n");
        output::print_list(
            &containers,
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
            &[
                ("ID", "CONTAINER ID"),
                ("Image", "IMAGE"),
                ("Command", "COMMAND"),
                ("LocalVolumes", "LOCAL VOLUMES"),
                ("Size", "SIZE"),
                ("RunningFor", "CREATED"),
                ("Status", "STATUS"),
                ("Names", "NAMES"),
            ],
        )?;
        println!("\nLocal Volumes space usage:\n");
        output::print_list(
            &volumes,
            "table {{.Name}}\t{{.Links}}\t{{.Size}}",
            &[("Name", "VOLUME NAME"), ("Links", "LINKS"), ("Size", "SIZE")],
        )?;
        println!("\nBuild cache usage: 0B\n");
        output::print_list(
            &[],
            "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
            &[
                ("ID", "CACHE ID"),
                ("CacheType", "CACHE TYPE"),
                ("Size", "SIZE"),
                ("CreatedSince", "CREATED"),
                ("LastUsedSince", "LAST USED"),
                ("UsageCount", "USAGE"),
                ("Shared", "SHARED"),
            ],
        )?;
        return Ok(0);
    }
    let c_size: u64 = du.containers.iter().map(|c| c.size).sum();
    let c_free: u64 = du
        .containers
        .iter()
        .filter(|c| !c.row.is_running())
        .map(|c| c.size)
        .sum();
    let c_active = du.containers.iter().filter(|c| c.row.is_running()).count();
    let v_size: u64 = du.volumes.iter().map(|v| v.size).sum();
    let v_free: u64 = du.volumes.iter().filter(|v| v.links == 0).map(|v| v.size).sum();
    let v_active = du.volumes.iter().filter(|v| v.links > 0).count();
    let i = &du.images;
    let rows = vec![
        json!({
            "Type": "Images",
            "TotalCount": i.images.to_string(),
            "Active": i.active.to_string(),
            "Size": human_size(i.size),
            "Reclaimable": reclaimable(i.reclaimable, i.size),
        }),
        json!({
            "Type": "Containers",
            "TotalCount": du.containers.len().to_string(),
            "Active": c_active.to_string(),
            "Size": human_size(c_size),
            "Reclaimable": reclaimable(c_free, c_size),
        }),
        json!({
            "Type": "Local Volumes",
            "TotalCount": du.volumes.len().to_string(),
            "Active": v_active.to_string(),
            "Size": human_size(v_size),
            "Reclaimable": reclaimable(v_free, v_size),
        }),
        json!({"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
    ];
    output::print_list(
        &rows,
        a.format
            .as_deref()
            .unwrap_or("table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"),
        DF_HEADERS,
    )?;
    Ok(0)
}

/// Prints the lines of removed images as Docker's prune does (lower case).
fn print_images(removed: &[berth_image::images::Removed]) {
    if removed.is_empty() {
        return;
    }
    println!("Deleted Images:");
    for r in removed {
        match r {
            berth_image::images::Removed::Untagged(n) => println!("untagged: {n}"),
            berth_image::images::Removed::Deleted(id) | berth_image::images::Removed::DeletedLayer(id) => {
                println!("deleted: {id}")
            }
        }
    }
    println!();
}

pub fn prune(g: &Global, a: &SystemPruneArgs) -> Result<i32> {
    if !a.force {
        let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers\n");
        if a.volumes {
            warning.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        warning.push_str(if a.all {
            "  - all images without at least one container associated to them\n"
        } else {
            "  - all dangling images\n"
        });
        if !confirm(&warning)? {
            return Ok(0);
        }
    }
    let mut e = open(g)?;
    let report = e.system_prune(a.all, a.volumes)?;
    print_deleted("Deleted Containers:", &report.containers);
    print_deleted("Deleted Volumes:", &report.volumes);
    print_images(&report.images);
    println!("Total reclaimed space: {}", human_size(report.reclaimed));
    Ok(0)
}

/// One document through `--format`: `json` (compact), a template, or (None) as is.
fn print_document(doc: &Value, format: Option<&str>) -> Result<()> {
    match format.filter(|f| !f.is_empty()) {
        None | Some("json") => println!("{}", serde_json::to_string(doc)?),
        Some(f) => {
            let t = Template::parse(f).with_context(|| format!("--format {f:?}"))?;
            println!("{}", t.render(doc)?);
        }
    }
    Ok(())
}

pub fn events(g: &Global, a: &EventsArgs) -> Result<i32> {
    let e = open(g)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let time = |flag: &str, v: &Option<String>| -> Result<Option<i128>> {
        v.as_deref()
            .map(|s| {
                berth_engine::logs::parse_time_arg(s, now)
                    .with_context(|| format!("invalid value for \"{flag}\": {s:?}"))
            })
            .transpose()
    };
    let until = time("until", &a.until)?;
    // Docker: with --until alone, the journal from its start.
    let since = time("since", &a.since)?.or(until.map(|_| 0));
    let opts = EventOptions {
        since,
        until,
        filter: EventFilter::parse(&a.filters)?,
    };
    let format = a.format.as_deref().map(str::trim).filter(|f| !f.is_empty());
    // `{{json .}}` is the API's message, as Docker's; other templates see Go's field names.
    let json_lines = matches!(format, Some("json" | "{{json .}}"));
    let template = match format {
        Some(f) if !json_lines => Some(Template::parse(f).with_context(|| format!("--format {f:?}"))?),
        _ => None,
    };
    let stdout = std::io::stdout();
    let mut failed = None;
    e.events(&opts, &mut |ev| {
        let text = if json_lines {
            events::message(ev).to_string()
        } else if let Some(t) = &template {
            match t.render(&events::template_value(ev)) {
                Ok(s) => s,
                Err(err) => {
                    failed = Some(err);
                    return Err(std::io::Error::other("template"));
                }
            }
        } else {
            events::line(ev)
        };
        let mut w = stdout.lock();
        writeln!(w, "{text}")?;
        w.flush()
    })?;
    match failed {
        Some(err) => Err(err.into()),
        None => Ok(0),
    }
}

/// `version`'s client part, Docker's shape with the Rust toolchain for Go's.
fn client_version() -> Value {
    json!({
        "Platform": {"Name": ""},
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": GIT_COMMIT,
        "RustVersion": RUST_VERSION,
        "Os": std::env::consts::OS,
        "Arch": berth_image::format::Platform::host().architecture,
        "BuildTime": "",
        "Context": "default",
    })
}

fn field(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn version(a: &FormatArgs) -> Result<i32> {
    let doc = json!({
        "Client": client_version(),
        "Server": system::version(GIT_COMMIT, RUST_VERSION),
    });
    if a.format.as_deref().is_some_and(|f| !f.is_empty()) {
        print_document(&doc, a.format.as_deref())?;
        return Ok(0);
    }
    let c = &doc["Client"];
    let s = &doc["Server"];
    // Values start in column 20, as Docker's tabwriter lays them out.
    let line =
        |indent: &str, k: &str, v: String| format!("{indent}{:<w$}{v}\n", format!("{k}:"), w = 20 - indent.len());
    let mut out = String::from("Client:\n");
    out += &line(" ", "Version", field(c, "Version"));
    out += &line(" ", "API version", field(c, "ApiVersion"));
    out += &line(" ", "Rust version", field(c, "RustVersion"));
    out += &line(" ", "Git commit", field(c, "GitCommit"));
    out += &line(" ", "OS/Arch", format!("{}/{}", field(c, "Os"), field(c, "Arch")));
    out += &line(" ", "Context", field(c, "Context"));
    out += &format!(
        "\nServer: {} (daemonless: the engine runs in each command)\n",
        s["Platform"]["Name"].as_str().unwrap_or("")
    );
    for comp in s["Components"].as_array().into_iter().flatten() {
        let d = &comp["Details"];
        out += &format!(" {}:\n", field(comp, "Name"));
        if comp["Name"] == "Engine" {
            out += &line("  ", "Version", field(comp, "Version"));
            out += &line(
                "  ",
                "API version",
                format!(
                    "{} (minimum version {})",
                    field(d, "ApiVersion"),
                    field(d, "MinAPIVersion")
                ),
            );
            out += &line("  ", "Rust version", field(d, "RustVersion"));
            out += &line("  ", "Git commit", field(d, "GitCommit"));
            out += &line("  ", "OS/Arch", format!("{}/{}", field(d, "Os"), field(d, "Arch")));
            out += &line("  ", "Experimental", field(d, "Experimental"));
        } else {
            out += &line("  ", "Version", field(comp, "Version"));
            for (k, v) in d.as_object().into_iter().flatten() {
                out += &line("  ", k, v.as_str().map_or_else(|| v.to_string(), str::to_owned));
            }
        }
    }
    print!("{out}");
    Ok(0)
}

pub fn info(g: &Global, a: &FormatArgs) -> Result<i32> {
    let e = open(g)?;
    let mut doc = e.info(&g.insecure_registries)?;
    doc["ClientInfo"] = json!({
        "Debug": false,
        "Version": VERSION,
        "Context": "default",
        "Plugins": [],
        "Warnings": null,
    });
    if a.format.as_deref().is_some_and(|f| !f.is_empty()) {
        print_document(&doc, a.format.as_deref())?;
        return Ok(0);
    }
    print!("{}", info_text(&doc));
    Ok(0)
}

/// `info`'s report, laid out as Docker's.
fn info_text(d: &Value) -> String {
    let f = |k: &str| field(d, k);
    let list = |k: &str| -> Vec<String> {
        d[k].as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let mut o = String::new();
    o += &format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n\n",
        field(&d["ClientInfo"], "Version")
    );
    o += "Server:\n";
    o += &format!(" Containers: {}\n", f("Containers"));
    o += &format!("  Running: {}\n", f("ContainersRunning"));
    o += &format!("  Paused: {}\n", f("ContainersPaused"));
    o += &format!("  Stopped: {}\n", f("ContainersStopped"));
    o += &format!(" Images: {}\n", f("Images"));
    o += &format!(" Server Version: {}\n", f("ServerVersion"));
    o += &format!(" Storage Driver: {}\n", f("Driver"));
    for pair in d["DriverStatus"].as_array().into_iter().flatten() {
        o += &format!(
            "  {}: {}\n",
            pair[0].as_str().unwrap_or(""),
            pair[1].as_str().unwrap_or("")
        );
    }
    o += &format!(" Logging Driver: {}\n", f("LoggingDriver"));
    o += &format!(" Cgroup Driver: {}\n", f("CgroupDriver"));
    o += &format!(" Cgroup Version: {}\n", f("CgroupVersion"));
    o += &format!(" Cgroup Layout: {}\n", f("CgroupLayout"));
    o += " Plugins:\n";
    for kind in ["Volume", "Network", "Log"] {
        let names: Vec<&str> = d["Plugins"][kind]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        o += &format!("  {kind}: {}\n", names.join(" "));
    }
    o += &format!(
        " Swarm: {}\n",
        d["Swarm"]["LocalNodeState"].as_str().unwrap_or("inactive")
    );
    let runtimes: Vec<&String> = d["Runtimes"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    o += &format!(
        " Runtimes: {}\n",
        runtimes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
    );
    o += &format!(" Default Runtime: {}\n", f("DefaultRuntime"));
    o += " Security Options:\n";
    for opt in list("SecurityOptions") {
        let mut parts = opt.split(',');
        let name = parts.next().unwrap_or_default().trim_start_matches("name=");
        o += &format!("  {name}\n");
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                let mut key = k.to_owned();
                if let Some(first) = key.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                o += &format!("   {key}: {v}\n");
            }
        }
    }
    o += &format!(" Kernel Version: {}\n", f("KernelVersion"));
    o += &format!(" Operating System: {}\n", f("OperatingSystem"));
    o += &format!(" OSType: {}\n", f("OSType"));
    o += &format!(" Architecture: {}\n", f("Architecture"));
    o += &format!(" CPUs: {}\n", f("NCPU"));
    o += &format!(" Total Memory: {}\n", bytes_size(d["MemTotal"].as_u64().unwrap_or(0)));
    o += &format!(" Name: {}\n", f("Name"));
    o += &format!(" Root Dir: {}\n", f("DockerRootDir"));
    o += &format!(" Run Root Dir: {}\n", f("RunRoot"));
    o += " Debug Mode: false\n Experimental: false\n";
    o += " Insecure Registries:\n";
    for r in d["RegistryConfig"]["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        o += &format!("  {}\n", r.as_str().unwrap_or(""));
    }
    o += &format!(" Live Restore Enabled: {}\n", f("LiveRestoreEnabled"));
    for w in list("Warnings") {
        o += &format!("WARNING: {w}\n");
    }
    o
}

/// `berth system boot`: what dockerd does for its containers when it starts (see
/// `berth_engine::boot`). Prints each container started or removed; a failure is reported on
/// stderr and the others go on (exit 1).
pub fn boot(g: &Global) -> Result<i32> {
    use berth_engine::boot::Booted;
    let e = open(g)?;
    let mut code = 0;
    for done in e.boot()? {
        match done {
            Booted::Started(row) => println!("started {}", row.name),
            Booted::Removed(row) => println!("removed {}", row.name),
            Booted::Failed(row, err) => {
                eprintln!("Error: container {}: {err}", row.name);
                code = 1;
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaimable_shows_a_percentage_of_a_non_zero_whole() {
        assert_eq!(reclaimable(0, 0), "0B");
        assert_eq!(reclaimable(500, 1000), "500B (50%)");
        assert_eq!(reclaimable(1000, 1000), "1kB (100%)");
    }

    #[test]
    fn info_text_lays_out_dockers_sections() {
        let d = json!({
            "Containers": 3, "ContainersRunning": 1, "ContainersPaused": 0, "ContainersStopped": 2,
            "Images": 1, "ServerVersion": "0.1.0", "Driver": "overlay",
            "DriverStatus": [["Backing Filesystem", "extfs"]],
            "CgroupVersion": "1", "CgroupLayout": "hybrid",
            "Plugins": {"Volume": ["local"], "Network": ["host", "null"], "Log": ["json-file"]},
            "Runtimes": {"berth": {"path": "/x"}},
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
            "MemTotal": 25_165_824_000u64,
            "ClientInfo": {"Version": "0.1.0"},
            "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"]},
        });
        let t = info_text(&d);
        for want in [
            "Server:\n Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n Images: 1\n",
            " Storage Driver: overlay\n  Backing Filesystem: extfs\n",
            " Cgroup Version: 1\n Cgroup Layout: hybrid\n",
            "  Network: host null\n",
            " Security Options:\n  seccomp\n   Profile: builtin\n  cgroupns\n",
            " Total Memory: 23.44GiB\n",
            " Insecure Registries:\n  127.0.0.0/8\n",
        ] {
            assert!(t.contains(want), "{want:?} in\n{t}");
        }
    }
}
