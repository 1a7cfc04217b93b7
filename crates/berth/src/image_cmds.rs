//! The image commands: parse what the user gave, call `berth_image::images`, print as Docker.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_engine::db::{Db, NewEvent};
use berth_engine::events;
use berth_image::archive::Format;
use berth_image::format::Platform;
use berth_image::images::{self, ImageSummary, Images, ImportOptions, PullOptions, Removed};
use berth_image::registry::{Client, ClientConfig, Reference};
use serde_json::{json, Value};

use crate::cli::{
    Cli, Command, ExportArgs, Global, HistoryArgs, ImageCommand, ImagesArgs, ImportArgs, InspectArgs, LoadArgs,
    PruneArgs, PullArgs, PushArgs, RmiArgs, SaveArgs, SystemCommand, TagArgs,
};
use crate::container_cmds;
use crate::output;
use crate::progress::Progress;
use crate::units::{human_size, now, since};

/// The store root: `--root`, `BERTH_ROOT`, else the default for the user.
pub fn root_dir(global: &Global) -> PathBuf {
    if let Some(root) = &global.root {
        return root.clone();
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/berth");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("berth")
}

fn open(global: &Global) -> Result<Images> {
    let root = root_dir(global);
    Images::open(&root).with_context(|| format!("opening the image store in {}", root.display()))
}

/// The engine's journal in the store (`berth events`), where image commands record what
/// they did, as dockerd does.
fn journal(global: &Global) -> Result<Db> {
    let path = root_dir(global).join("berth.db");
    Db::open(&path).with_context(|| format!("opening the journal in {}", path.display()))
}

/// Records `events` in the journal.
fn record(global: &Global, events: &[NewEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let db = journal(global)?;
    for e in events {
        db.add_event(e).context("recording an image event")?;
    }
    Ok(())
}

/// The `pull` or `push` event of `reference`: the reference as the user knows it (with its
/// tag), the repository as name.
fn transfer_event(images: &Images, action: &str, reference: &Reference, id: &str) -> NewEvent {
    events::image_event(
        action,
        &images::display_name(&images::reference_key(reference)),
        Some(&images::display_name(&reference.name())),
        &events::image_labels(images, id),
    )
}

fn client(global: &Global) -> Result<Client> {
    let mut config = ClientConfig::from_environment().context("reading Docker's config.json")?;
    config.insecure_registries = global.insecure_registries.clone();
    Ok(Client::new(config))
}

fn platform(p: Option<&str>) -> Result<Option<Platform>> {
    p.map(|p| Platform::parse(p).with_context(|| format!("--platform {p:?}")))
        .transpose()
}

pub fn dispatch(cli: &Cli) -> Result<i32> {
    let g = &cli.global;
    match &cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull(g, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push(g, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => list(g, a),
        Command::Inspect(a) => match a.kind.as_deref() {
            None => container_cmds::inspect_any(g, &a.names, a.format.as_deref()),
            Some("container") => container_cmds::inspect(g, &a.names, a.format.as_deref()),
            _ => inspect(g, a),
        },
        Command::Image(ImageCommand::Inspect(a)) => inspect(g, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history(g, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag(g, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi(g, a),
        Command::Image(ImageCommand::Prune(a)) => prune(g, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save(g, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load(g, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import(g, a),
        Command::Image(ImageCommand::Export(a)) => export(g, a),
        Command::Login(a) => crate::login::login(g, a),
        Command::Logout(a) => crate::login::logout(g, a),
        Command::System(SystemCommand::Df(a)) => crate::system_cmds::df(g, a),
        Command::System(SystemCommand::Prune(a)) => crate::system_cmds::prune(g, a),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => crate::system_cmds::events(g, a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => crate::system_cmds::info(g, a),
        Command::System(SystemCommand::Boot) => crate::system_cmds::boot(g),
        Command::Version(a) => crate::system_cmds::version(a),
        Command::Volume(c) => crate::volume_cmds::dispatch(g, c),
        Command::Container(c) => container_cmds::dispatch(g, c),
        Command::Cp(a) => crate::fs_cmds::cp(g, a),
        Command::Diff(a) => crate::fs_cmds::diff(g, a),
        Command::Export(a) => crate::fs_cmds::export(g, a),
        Command::Commit(a) => crate::fs_cmds::commit(g, a),
        Command::Run(a) => container_cmds::run(g, a),
        Command::Create(a) => container_cmds::create(g, a),
        Command::Start(a) => container_cmds::start(g, a),
        Command::Stop(a) => container_cmds::stop(g, a),
        Command::Restart(a) => container_cmds::restart(g, a),
        Command::Kill(a) => container_cmds::kill(g, a),
        Command::Rm(a) => container_cmds::rm(g, a),
        Command::Ps(a) => container_cmds::ps(g, a),
        Command::Logs(a) => container_cmds::logs(g, a),
        Command::Exec(a) => container_cmds::exec(g, a),
        Command::Attach(a) => container_cmds::attach_cmd(g, a),
        Command::Wait(a) => container_cmds::wait(g, a),
        Command::Pause(a) => container_cmds::pause(g, a),
        Command::Unpause(a) => container_cmds::unpause(g, a),
        Command::Rename(a) => container_cmds::rename(g, a),
        Command::Top(a) => container_cmds::top(g, a),
        Command::Stats(a) => crate::resource_cmds::stats(g, a),
        Command::Port(a) => crate::network_cmds::port(g, a),
        Command::Network(c) => crate::network_cmds::dispatch(g, c),
        Command::Update(a) => crate::resource_cmds::update(g, a),
    }
}

/// Whether a name gives neither tag nor digest (`busybox`, `127.0.0.1:5000/app`), so that
/// `latest` is implied.
pub fn uses_default_tag(name: &str) -> bool {
    !name.contains('@') && !name.rsplit('/').next().unwrap_or(name).contains(':')
}

fn pull(g: &Global, a: &PullArgs) -> Result<i32> {
    let reference = Reference::parse(&a.name)?;
    let mut images = open(g)?;
    let client = client(g)?;
    let opts = PullOptions {
        platform: platform(a.platform.as_deref())?,
        ..PullOptions::default()
    };
    let progress = Progress::stdout(a.quiet);
    if uses_default_tag(&a.name) && !a.quiet {
        println!("Using default tag: latest");
    }
    let pulled = images.pull(&client, &reference, &opts, &|e| progress.pull_event(e))?;
    record(g, &[transfer_event(&images, "pull", &reference, &pulled.id)])?;
    println!("{}", pulled.name);
    Ok(0)
}

/// `run`/`create` of an image not present: pull it, telling stderr (stdout
/// belongs to the container).
pub fn pull_for_run(g: &Global, images: &mut Images, name: &str) -> Result<()> {
    let reference = Reference::parse(name)?;
    let client = client(g)?;
    let progress = Progress::stdout(true);
    let pulled = images.pull(&client, &reference, &PullOptions::default(), &|e| {
        progress.pull_event(e)
    })?;
    record(g, &[transfer_event(images, "pull", &reference, &pulled.id)])?;
    eprintln!("Status: Downloaded newer image for {}", pulled.name);
    Ok(())
}

fn push(g: &Global, a: &PushArgs) -> Result<i32> {
    let reference = Reference::parse(&a.name)?;
    let images = open(g)?;
    let client = client(g)?;
    let progress = Progress::stdout(a.quiet);
    if uses_default_tag(&a.name) && !a.quiet {
        println!("Using default tag: latest");
    }
    images.push(&client, &reference, None, None, &|e| progress.push_event(e))?;
    let id = images.resolve(&a.name)?.id;
    record(g, &[transfer_event(&images, "push", &reference, &id)])?;
    if a.quiet {
        println!("{}", images::display_name(&images::reference_key(&reference)));
    }
    Ok(0)
}

/// A time as Docker's `CreatedAt` shows it (Go's `time.String()`, in UTC).
pub fn created_at(secs: i64) -> String {
    let t = images::format_rfc3339(secs);
    format!("{} {} +0000 UTC", &t[..10], &t[11..19])
}

/// One `docker images` row per name (or one `<none>` row), as the template sees it.
pub(crate) fn image_rows(summary: &ImageSummary, no_trunc: bool) -> Vec<Value> {
    let id = if no_trunc {
        summary.id.clone()
    } else {
        images::short_id(&summary.id)
    };
    let digest_of = |repo: &str| {
        summary
            .repo_digests
            .iter()
            .find_map(|d| d.split_once('@').filter(|(r, _)| *r == repo).map(|(_, d)| d.to_owned()))
            .unwrap_or_else(|| "<none>".into())
    };
    let now = now();
    let row = |repo: &str, tag: &str, digest: String| {
        json!({
            "ID": id,
            "Repository": repo,
            "Tag": tag,
            "Digest": digest,
            "CreatedSince": since(summary.created, now),
            "CreatedAt": created_at(summary.created),
            "Size": human_size(summary.size),
            "VirtualSize": human_size(summary.size),
            "SharedSize": "N/A",
            "UniqueSize": "N/A",
            "Containers": if summary.containers == 0 { "N/A".to_string() } else { summary.containers.to_string() },
        })
    };
    let mut rows = Vec::new();
    for tag in &summary.repo_tags {
        let (repo, t) = images::split_name(tag);
        rows.push(row(&repo, &t, digest_of(&repo)));
    }
    if rows.is_empty() {
        match summary.repo_digests.first() {
            Some(d) => {
                let (repo, digest) = d.split_once('@').unwrap_or((d, "<none>"));
                rows.push(row(repo, "<none>", digest.to_owned()));
            }
            None => rows.push(row("<none>", "<none>", "<none>".into())),
        }
    }
    rows
}

/// Whether a name matches a `reference=` pattern (`*` within a path component, as Docker's
/// path.Match on the familiar name, with or without the tag).
fn reference_matches(pattern: &str, name: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && glob(p, &s[1..])),
            (Some(b'?'), Some(c)) if *c != b'/' => glob(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let (repo, _) = images::split_name(name);
    glob(pattern.as_bytes(), name.as_bytes()) || glob(pattern.as_bytes(), repo.as_bytes())
}

fn list(g: &Global, a: &ImagesArgs) -> Result<i32> {
    list_in(&open(g)?, a)
}

pub(crate) fn list_in(store: &Images, a: &ImagesArgs) -> Result<i32> {
    let mut summaries = store.list()?;
    for (key, value) in crate::output::filter_pairs(&a.filters)? {
        let (key, value) = (key.as_str(), value.as_str());
        match key {
            "dangling" => {
                let want = match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => bail!("invalid filter 'dangling={value}': use true or false"),
                };
                summaries.retain(|s| s.repo_tags.is_empty() == want);
            }
            "label" => {
                let (k, v) = match value.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (value, None),
                };
                summaries.retain(|s| match (s.labels.get(k), v) {
                    (Some(_), None) => true,
                    (Some(have), Some(want)) => have == want,
                    (None, _) => false,
                });
            }
            "before" | "since" => {
                let pivot = store.resolve(value)?;
                let created = pivot.created.as_deref().and_then(images::parse_rfc3339).unwrap_or(0);
                summaries.retain(|s| {
                    if key == "before" {
                        s.created < created
                    } else {
                        s.created > created
                    }
                });
            }
            "reference" => {
                // Only the matching names show, as with Docker.
                for s in &mut summaries {
                    s.repo_tags.retain(|t| reference_matches(value, t));
                }
                summaries.retain(|s| !s.repo_tags.is_empty());
            }
            _ => bail!("invalid filter '{key}'"),
        }
    }
    if let Some(repo) = &a.repository {
        let (want_repo, want_tag) = match repo.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((r, t)) => (r.to_owned(), Some(t.to_owned())),
            None => (repo.clone(), None),
        };
        let want_repo = images::display_name(&Reference::parse(&want_repo).map(|r| r.name()).unwrap_or(want_repo));
        for s in &mut summaries {
            s.repo_tags.retain(|t| {
                let (r, tag) = images::split_name(t);
                r == want_repo && want_tag.as_deref().is_none_or(|w| w == tag)
            });
        }
        summaries.retain(|s| !s.repo_tags.is_empty());
    }
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for s in &summaries {
            let id = if a.no_trunc {
                s.id.clone()
            } else {
                images::short_id(&s.id)
            };
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    let rows: Vec<Value> = summaries.iter().flat_map(|s| image_rows(s, a.no_trunc)).collect();
    let default = if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    output::print_list(&rows, a.format.as_deref().unwrap_or(default), IMAGE_HEADERS)?;
    Ok(0)
}

/// Column headers of image listings, per field.
const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
];

fn inspect(g: &Global, a: &InspectArgs) -> Result<i32> {
    if let Some(kind) = a.kind.as_deref().filter(|k| *k != "image") {
        bail!("\"{kind}\" is not a valid value for --type (image or container)");
    }
    let store = open(g)?;
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for name in &a.names {
        match store.resolve(name) {
            Ok(row) => docs.push(store.inspect(&row)?),
            Err(images::ImageError::NotFound { .. }) => missing.push(name.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    output::print_inspect(&docs, a.format.as_deref())?;
    for name in &missing {
        eprintln!("Error: No such image: {name}");
    }
    Ok(if missing.is_empty() { 0 } else { 1 })
}

fn history(g: &Global, a: &HistoryArgs) -> Result<i32> {
    let store = open(g)?;
    let row = store.resolve(&a.name)?;
    let now = now();
    let rows: Vec<Value> = store
        .history(&row)?
        .into_iter()
        .map(|h| {
            let id = if h.id == "<missing>" || a.no_trunc {
                h.id.clone()
            } else {
                images::short_id(&h.id)
            };
            let created_by = if a.no_trunc || h.created_by.chars().count() <= 45 {
                h.created_by.clone()
            } else {
                format!("{}…", h.created_by.chars().take(44).collect::<String>())
            };
            json!({
                "ID": id,
                "CreatedSince": if a.human { since(h.created, now) } else { h.created.to_string() },
                "CreatedAt": created_at(h.created),
                "CreatedBy": created_by,
                "Size": if a.human { human_size(h.size) } else { h.size.to_string() },
                "Comment": h.comment,
            })
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let default = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
    output::print_list(
        &rows,
        a.format.as_deref().unwrap_or(default),
        &[
            ("ID", "IMAGE"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("CreatedBy", "CREATED BY"),
            ("Size", "SIZE"),
            ("Comment", "COMMENT"),
        ],
    )?;
    Ok(0)
}

fn tag(g: &Global, a: &TagArgs) -> Result<i32> {
    let images = open(g)?;
    images.tag(&a.source, &a.target)?;
    let id = images.resolve(&a.source)?.id;
    record(g, &[tag_event(&images, &id, &a.target)?])?;
    Ok(0)
}

/// The `tag` event of image `id` given the name `target`.
fn tag_event(images: &Images, id: &str, target: &str) -> Result<NewEvent> {
    let name = images::display_name(&images::reference_key(&Reference::parse(target)?));
    Ok(events::image_event(
        "tag",
        id,
        Some(&name),
        &events::image_labels(images, id),
    ))
}

fn print_removed(removed: &[Removed]) {
    for r in removed {
        match r {
            Removed::Untagged(name) => println!("Untagged: {name}"),
            Removed::Deleted(id) | Removed::DeletedLayer(id) => println!("Deleted: {id}"),
        }
    }
}

fn rmi(g: &Global, a: &RmiArgs) -> Result<i32> {
    let mut store = open(g)?;
    let journal = journal(g)?;
    let mut code = 0;
    for name in &a.names {
        match events::remove_image(&mut store, &journal, name, a.force) {
            Ok(removed) => print_removed(&removed),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

fn prune(g: &Global, a: &PruneArgs) -> Result<i32> {
    if !a.force {
        let what = if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        if !output::confirm(&format!("WARNING! This will remove {what}."))? {
            return Ok(0);
        }
    }
    let mut store = open(g)?;
    let (removed, reclaimed) = events::prune_images(&mut store, &journal(g)?, a.all)?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        print_removed(&removed);
        println!();
    }
    println!("Total reclaimed space: {}", human_size(reclaimed));
    Ok(0)
}

fn save(g: &Global, a: &SaveArgs) -> Result<i32> {
    let format = match a.format.as_str() {
        "combined" => Format::Combined,
        "docker" => Format::Docker,
        "oci" => Format::Oci,
        other => bail!("--format {other:?}: use docker, oci or combined"),
    };
    let store = open(g)?;
    let names: Vec<&str> = a.names.iter().map(String::as_str).collect();
    output::write_output(a.output.as_deref(), |w| Ok(store.save(&names, w, format)?))?;
    let mut saved = Vec::new();
    for name in &names {
        let id = store.resolve(name)?.id;
        if !saved.contains(&id) {
            saved.push(id);
        }
    }
    let events: Vec<NewEvent> = saved
        .iter()
        .map(|id| events::image_event("save", id, Some(id), &events::image_labels(&store, id)))
        .collect();
    record(g, &events)?;
    Ok(0)
}

fn input(path: Option<&std::path::Path>) -> Result<Box<dyn Read>> {
    Ok(match path {
        Some(p) if p != std::path::Path::new("-") => {
            Box::new(File::open(p).with_context(|| format!("opening {}", p.display()))?)
        }
        _ => Box::new(io::stdin().lock()),
    })
}

fn load(g: &Global, a: &LoadArgs) -> Result<i32> {
    if a.input.is_none() && io::IsTerminal::is_terminal(&io::stdin()) {
        bail!("requested load from stdin, but stdin is empty");
    }
    let mut store = open(g)?;
    let loaded = store.load(input(a.input.as_deref())?)?;
    let events: Vec<NewEvent> = loaded
        .iter()
        .map(|(_, id)| events::image_event("load", id, Some(id), &events::image_labels(&store, id)))
        .collect();
    record(g, &events)?;
    for (name, id) in loaded {
        match name {
            Some(name) => println!("Loaded image: {name}"),
            None => println!("Loaded image ID: {id}"),
        }
    }
    Ok(0)
}

fn import(g: &Global, a: &ImportArgs) -> Result<i32> {
    let mut store = open(g)?;
    let opts = ImportOptions {
        reference: a.reference.clone(),
        changes: a.changes.clone(),
        message: a.message.clone(),
        platform: platform(a.platform.as_deref())?,
    };
    let id = store.import(input(Some(std::path::Path::new(&a.file)))?, &opts)?;
    // dockerd: the tag first, then the import.
    let mut events = Vec::new();
    if let Some(target) = &a.reference {
        events.push(tag_event(&store, &id, target)?);
    }
    events.push(events::image_event(
        "import",
        &id,
        Some(&id),
        &events::image_labels(&store, &id),
    ));
    record(g, &events)?;
    println!("{id}");
    Ok(0)
}

fn export(g: &Global, a: &ExportArgs) -> Result<i32> {
    let store = open(g)?;
    output::write_output(a.output.as_deref(), |w| Ok(store.export(&a.name, w)?))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::reference_matches;

    #[test]
    fn the_default_tag_is_implied_only_without_tag_or_digest() {
        assert!(super::uses_default_tag("busybox"));
        assert!(super::uses_default_tag("127.0.0.1:5000/app"));
        assert!(!super::uses_default_tag("busybox:1"));
        assert!(!super::uses_default_tag("127.0.0.1:5000/app:1"));
        assert!(!super::uses_default_tag("app@sha256:0123"));
    }

    #[test]
    fn reference_filters_glob_like_docker() {
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("busybox:1.*", "busybox:1.36"));
        assert!(!reference_matches("busy*", "127.0.0.1:5000/busybox:latest"));
        assert!(reference_matches("*/busybox", "127.0.0.1:5000/busybox:latest"));
    }
}
