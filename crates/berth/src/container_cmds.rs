//! The container commands: parse, call the engine, print as Docker prints.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_engine::logs::LogOptions;
use berth_engine::{Engine, EngineError, EngineOptions, ExecOptions, Row};
use berth_monitor::proto;
use serde_json::{json, Value};

use crate::cli::Global;
use crate::container_args::*;
use crate::units::{human_duration, now};
use crate::{attach, output};

/// Exit status for errors of the engine itself (Docker's 125).
pub const ENGINE_ERROR: i32 = 125;

/// An error with the exit status `run`, `create`, `start` and `exec` give it.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub error: anyhow::Error,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&berth_runtime::error::chain(&*self.error))
    }
}

impl std::error::Error for Exit {}

pub fn exit_error(code: i32, error: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(Exit {
        code,
        error: error.into(),
    })
}

/// The error's status for `run`/`create`/`start`: 126 or 127 when the
/// program could not be run, 125 for the rest.
fn engine_exit(e: EngineError) -> anyhow::Error {
    let code = match &e {
        EngineError::Start { code, .. } => *code,
        _ => ENGINE_ERROR,
    };
    exit_error(code, e)
}

/// The berth-monitor binary: `$BERTH_MONITOR`, next to this executable, or
/// on PATH.
/// A helper program of berth (`berth-monitor`, `berth-dns`): from `$env`, next to
/// this executable, in /usr/libexec/berth, or on PATH.
fn helper_path(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        let p = exe.with_file_name(name);
        if p.exists() {
            return p;
        }
    }
    for dir in ["/usr/libexec/berth", "/usr/local/libexec/berth"] {
        let p = PathBuf::from(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

pub fn open(g: &Global) -> Result<Engine> {
    let root = crate::image_cmds::root_dir(g);
    let runroot = runroot_dir(g);
    let exe = std::env::current_exe().context("locating the berth executable")?;
    let command = |sub: &str| {
        vec![
            exe.to_string_lossy().into_owned(),
            "--root".into(),
            root.to_string_lossy().into_owned(),
            "--runroot".into(),
            runroot.to_string_lossy().into_owned(),
            "container".into(),
            sub.into(),
        ]
    };
    Engine::open(
        &root,
        &runroot,
        EngineOptions {
            monitor: helper_path("berth-monitor", "BERTH_MONITOR"),
            dns: helper_path("berth-dns", "BERTH_DNS"),
            exit_command: command("cleanup"),
            health_command: command("healthcheck"),
        },
    )
    .with_context(|| format!("opening the store in {}", root.display()))
}

pub fn runroot_dir(g: &Global) -> PathBuf {
    if let Some(r) = &g.runroot {
        return r.clone();
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/berth");
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| PathBuf::from(d).join("berth"))
        .unwrap_or_else(|| std::env::temp_dir().join(format!("berth-{}", nix::unistd::geteuid())))
}

pub fn dispatch(g: &Global, c: &ContainerCommand) -> Result<i32> {
    match c {
        ContainerCommand::Ls(a) => ps(g, a),
        ContainerCommand::Run(a) => run(g, a),
        ContainerCommand::Create(a) => create(g, a),
        ContainerCommand::Start(a) => start(g, a),
        ContainerCommand::Stop(a) => stop(g, a),
        ContainerCommand::Restart(a) => restart(g, a),
        ContainerCommand::Kill(a) => kill(g, a),
        ContainerCommand::Rm(a) => rm(g, a),
        ContainerCommand::Logs(a) => logs(g, a),
        ContainerCommand::Exec(a) => exec(g, a),
        ContainerCommand::Attach(a) => attach_cmd(g, a),
        ContainerCommand::Wait(a) => wait(g, a),
        ContainerCommand::Inspect(a) => inspect(g, &a.containers, a.format.as_deref()),
        ContainerCommand::Pause(a) => pause(g, a),
        ContainerCommand::Unpause(a) => unpause(g, a),
        ContainerCommand::Rename(a) => rename(g, a),
        ContainerCommand::Top(a) => top(g, a),
        ContainerCommand::Stats(a) => crate::resource_cmds::stats(g, a),
        ContainerCommand::Update(a) => crate::resource_cmds::update(g, a),
        ContainerCommand::Port(a) => crate::network_cmds::port(g, a),
        ContainerCommand::Prune(_) => prune(g),
        ContainerCommand::Cp(a) => crate::fs_cmds::cp(g, a),
        ContainerCommand::Diff(a) => crate::fs_cmds::diff(g, a),
        ContainerCommand::Export(a) => crate::fs_cmds::export(g, a),
        ContainerCommand::Commit(a) => crate::fs_cmds::commit(g, a),
        ContainerCommand::Cleanup(a) => {
            let e = open(g)?;
            if let Ok(id) = e.lookup(&a.container) {
                e.cleanup(&id)?;
            }
            Ok(0)
        }
        ContainerCommand::Healthcheck(a) => {
            let e = open(g)?;
            let probe = e.healthcheck(&a.container)?;
            Ok(probe.map_or(0, |p| if p.exit_code == 0 { 0 } else { 1 }))
        }
    }
}

pub fn pause(g: &Global, a: &NamesArgs) -> Result<i32> {
    each(g, &a.containers, |e, n| e.pause(n))
}

pub fn unpause(g: &Global, a: &NamesArgs) -> Result<i32> {
    each(g, &a.containers, |e, n| e.unpause(n))
}

pub fn rename(g: &Global, a: &RenameArgs) -> Result<i32> {
    open(g)?.rename(&a.container, &a.new_name)?;
    Ok(0)
}

/// Runs `f` on each named object (container, network, volume), printing each
/// name that worked and an error for each that did not, as Docker does; 1 if
/// any failed.
pub(crate) fn each<E: std::fmt::Display>(
    g: &Global,
    names: &[String],
    f: impl Fn(&Engine, &str) -> std::result::Result<(), E>,
) -> Result<i32> {
    let e = open(g)?;
    let mut code = 0;
    for n in names {
        match f(&e, n) {
            Ok(()) => println!("{n}"),
            Err(err) => {
                eprintln!("Error response from daemon: {err}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Creates the container, pulling its image first if it is missing.
fn create_container(g: &Global, e: &mut Engine, a: &CreateArgs) -> Result<String> {
    let opts = a.options().map_err(|err| exit_error(ENGINE_ERROR, err))?;
    if let Err(berth_image::images::ImageError::NotFound { .. }) = e.images().resolve(&a.image) {
        let shown = if crate::image_cmds::uses_default_tag(&a.image) {
            format!("{}:latest", a.image)
        } else {
            a.image.clone()
        };
        eprintln!("Unable to find image '{shown}' locally");
        crate::image_cmds::pull_for_run(g, e.images_mut(), &a.image).map_err(|err| exit_error(ENGINE_ERROR, err))?;
    }
    e.create(&opts).map_err(engine_exit)
}

pub fn create(g: &Global, a: &CreateArgs) -> Result<i32> {
    let mut e = open(g).map_err(|err| exit_error(ENGINE_ERROR, err))?;
    let id = create_container(g, &mut e, a)?;
    println!("{id}");
    Ok(0)
}

pub fn run(g: &Global, a: &RunArgs) -> Result<i32> {
    let mut e = open(g).map_err(|err| exit_error(ENGINE_ERROR, err))?;
    if a.detach && a.create.rm && a.create.interactive && !a.create.tty {
        // Docker allows it; nothing special.
    }
    let id = create_container(g, &mut e, &a.create)?;
    if a.detach {
        if let Err(err) = e.start(&id, None) {
            return Err(engine_exit(err));
        }
        println!("{id}");
        return Ok(0);
    }
    let mut want = proto::WANT_STDOUT | proto::WANT_STDERR;
    if a.create.interactive {
        want |= proto::WANT_STDIN;
    }
    let client = match e.start(&id, Some(want)) {
        Ok(c) => c.expect("attached"),
        Err(err) => {
            if a.create.rm {
                let _ = e.remove_with_volumes(&id, true, true);
            }
            return Err(engine_exit(err));
        }
    };
    // This process records the exit (and applies --rm) as soon as it has the code.
    if let Ok(mut w) = client.writer() {
        let _ = w.cleans_up();
    }
    let opts = attach::Options {
        stdin: a.create.interactive,
        tty: a.create.tty,
        sig_proxy: a.sig_proxy && !a.create.tty,
        detach_keys: attach::detach_keys(a.detach_keys.as_deref())?,
    };
    let outcome = attach::stream(&e, &id, client, &opts)?;
    finish_attached(&e, &id, outcome)
}

/// After an attached session: the exit code, once the store has it.
fn finish_attached(e: &Engine, id: &str, outcome: attach::Outcome) -> Result<i32> {
    match outcome {
        attach::Outcome::Detached => Ok(0),
        attach::Outcome::Exited(code) => {
            e.cleanup(id)?;
            Ok(code)
        }
        attach::Outcome::Lost => {
            let code = e.wait_exit(id, None)?.unwrap_or(ENGINE_ERROR);
            e.cleanup(id)?;
            Ok(code)
        }
    }
}

pub fn start(g: &Global, a: &StartArgs) -> Result<i32> {
    let e = open(g)?;
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let row = e.get(&a.containers[0])?;
        let s = row.settings();
        let stdin = a.interactive && s.config.open_stdin;
        let mut want = proto::WANT_STDOUT | proto::WANT_STDERR;
        if stdin {
            want |= proto::WANT_STDIN;
        }
        let Some(client) = e.start(&row.id, Some(want)).map_err(engine_exit)? else {
            bail!("container {} is already running", a.containers[0]);
        };
        let opts = attach::Options {
            stdin,
            tty: s.config.tty,
            sig_proxy: !s.config.tty,
            detach_keys: attach::detach_keys(a.detach_keys.as_deref())?,
        };
        let outcome = attach::stream(&e, &row.id, client, &opts)?;
        return finish_attached(&e, &row.id, outcome);
    }
    let mut code = 0;
    for n in &a.containers {
        match e.start(n, None) {
            Ok(_) => println!("{n}"),
            Err(err) => {
                eprintln!("Error response from daemon: {err}");
                code = 1;
            }
        }
    }
    if code != 0 {
        eprintln!("Error: failed to start containers: {}", a.containers.join(", "));
    }
    Ok(code)
}

pub fn stop(g: &Global, a: &StopArgs) -> Result<i32> {
    each(g, &a.containers, |e, n| e.stop(n, a.time, a.signal.as_deref()))
}

pub fn restart(g: &Global, a: &StopArgs) -> Result<i32> {
    each(g, &a.containers, |e, n| {
        e.stop(n, a.time, a.signal.as_deref())?;
        e.start(n, None).map(drop)
    })
}

pub fn kill(g: &Global, a: &KillArgs) -> Result<i32> {
    each(g, &a.containers, |e, n| e.kill(n, &a.signal))
}

pub fn rm(g: &Global, a: &RmArgs) -> Result<i32> {
    each(g, &a.containers, |e, n| e.remove_with_volumes(n, a.force, a.volumes))
}

pub fn wait(g: &Global, a: &NamesArgs) -> Result<i32> {
    let e = open(g)?;
    let mut code = 0;
    for n in &a.containers {
        match e.wait(n) {
            Ok(c) => println!("{c}"),
            Err(err) => {
                eprintln!("Error response from daemon: {err}");
                code = 1;
            }
        }
    }
    Ok(code)
}

fn prune(g: &Global) -> Result<i32> {
    let (deleted, reclaimed) = open(g)?.container_prune()?;
    crate::output::print_deleted("Deleted Containers:", &deleted);
    println!("Total reclaimed space: {}", crate::units::human_size(reclaimed));
    Ok(0)
}

/// `inspect` of containers (the top-level `inspect` also looks at images).
pub fn inspect(g: &Global, names: &[String], format: Option<&str>) -> Result<i32> {
    let e = open(g)?;
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        match e.get(n) {
            Ok(row) => docs.push(e.inspect(&row)),
            Err(EngineError::NotFound(_)) => missing.push(n.clone()),
            Err(err) => return Err(err.into()),
        }
    }
    output::print_inspect(&docs, format)?;
    for n in &missing {
        eprintln!("Error: No such container: {n}");
    }
    Ok(if missing.is_empty() { 0 } else { 1 })
}

/// The top-level `inspect`: containers first, then images, as Docker looks.
pub fn inspect_any(g: &Global, names: &[String], format: Option<&str>) -> Result<i32> {
    let e = open(g)?;
    let mut docs = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        match e.get(n) {
            Ok(row) => docs.push(e.inspect(&row)),
            Err(EngineError::NotFound(_)) => match e.images().resolve(n) {
                Ok(img) => docs.push(e.images().inspect(&img)?),
                Err(berth_image::images::ImageError::NotFound { .. }) => missing.push(n.clone()),
                Err(err) => return Err(err.into()),
            },
            Err(err) => return Err(err.into()),
        }
    }
    output::print_inspect(&docs, format)?;
    for n in &missing {
        eprintln!("Error: No such object: {n}");
    }
    Ok(if missing.is_empty() { 0 } else { 1 })
}

pub(crate) fn secs_of(t: &str) -> i64 {
    berth_engine::logs::time_nanos(t).map_or(0, |n| (n / 1_000_000_000) as i64)
}

/// `ps`'s PORTS column: `0.0.0.0:8080->80/tcp, :::8080->80/tcp`.
fn ports_text(ports: &[berth_network::store::PublishedPort]) -> String {
    let mut out = Vec::new();
    for p in ports {
        let c = format!("{}/{}", p.container_port, p.proto);
        match p.host_ip {
            None => {
                out.push(format!("0.0.0.0:{}->{c}", p.host_port));
                out.push(format!(":::{}->{c}", p.host_port));
            }
            Some(_) => out.push(format!("{}->{c}", p.host_addr())),
        }
    }
    out.join(", ")
}

/// `ps`'s STATUS column.
pub fn status_text(row: &Row, now: i64, health: Option<&str>) -> String {
    match row.state.as_str() {
        "created" => "Created".into(),
        "running" => format!(
            "Up {}{}",
            human_duration(now - secs_of(&row.started_at)),
            berth_engine::health::ps_suffix(health.unwrap_or_default())
        ),
        "paused" => format!("Up {} (Paused)", human_duration(now - secs_of(&row.started_at))),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            row.exit_code,
            human_duration(now - secs_of(&row.finished_at))
        ),
        "exited" => format!(
            "Exited ({}) {} ago",
            row.exit_code,
            human_duration(now - secs_of(&row.finished_at))
        ),
        other => other.to_string(),
    }
}

/// `ps`'s COMMAND as Docker shows it: the program, then its arguments with
/// those holding a space in single quotes, cut to 20 characters, then
/// double-quoted (Go's `strconv.Quote`).
pub(crate) fn command_text(row: &Row, no_trunc: bool) -> String {
    let s = row.settings();
    let mut args = s.config.entrypoint.clone().unwrap_or_default();
    args.extend(s.config.cmd.clone().unwrap_or_default());
    let mut words = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        if i > 0 && a.contains(' ') {
            words.push(format!("'{a}'"));
        } else {
            words.push(a.clone());
        }
    }
    let mut cmd = words.join(" ");
    if !no_trunc && cmd.chars().count() > 20 {
        cmd = cmd.chars().take(19).collect::<String>() + "…";
    }
    let mut quoted = String::from("\"");
    for c in cmd.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn ps_matches(row: &Row, filters: &[(String, String)]) -> Result<bool> {
    let s = row.settings();
    for (k, v) in filters {
        let ok = match k.as_str() {
            "id" => row.id.starts_with(v.as_str()),
            "name" => row.name.contains(v.as_str()),
            "status" => row.state == *v,
            "exited" => row.state == "exited" && row.exit_code.to_string() == *v,
            "label" => match v.split_once('=') {
                Some((lk, lv)) => s.config.labels.get(lk).is_some_and(|x| x == lv),
                None => s.config.labels.contains_key(v),
            },
            "ancestor" => {
                row.image_name == *v
                    || row
                        .image
                        .trim_start_matches("sha256:")
                        .starts_with(v.trim_start_matches("sha256:"))
            }
            _ => bail!("invalid filter '{k}'"),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

pub fn ps(g: &Global, a: &PsArgs) -> Result<i32> {
    let e = open(g)?;
    let filters = crate::output::filter_pairs(&a.filters)?;
    let status_filter = filters.iter().any(|(k, _)| k == "status" || k == "exited");
    let last = if a.latest { 1 } else { a.last };
    let all = a.all || last > 0 || status_filter;
    let now = now();
    let mut rows = Vec::new();
    for row in e.list()? {
        if !all && !row.is_running() {
            continue;
        }
        if !ps_matches(&row, &filters)? {
            continue;
        }
        rows.push(row);
        if last > 0 && rows.len() as i64 >= last {
            break;
        }
    }
    if a.quiet {
        for r in &rows {
            println!(
                "{}",
                if a.no_trunc {
                    r.id.clone()
                } else {
                    r.id[..12].to_string()
                }
            );
        }
        return Ok(0);
    }
    let values: Vec<Value> = rows
        .iter()
        .map(|r| {
            let s = r.settings();
            let health = (r.state == "running")
                .then(|| e.health(r, &s.config).ok().flatten().map(|h| h.status))
                .flatten();
            // Leases and ports are held only while it runs (or restarts).
            let (endpoints, ports) = if r.is_running() || r.state == "restarting" {
                e.container_network(&r.id).unwrap_or_default()
            } else {
                Default::default()
            };
            let nets: Vec<String> = endpoints.into_iter().map(|(n, _)| n.name).collect();
            let labels: Vec<String> = s.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            json!({
                "ID": if a.no_trunc { r.id.clone() } else { r.id[..12].to_string() },
                "Image": r.image_name,
                "Command": command_text(r, a.no_trunc),
                "CreatedAt": crate::image_cmds::created_at(secs_of(&r.created)),
                "RunningFor": format!("{} ago", human_duration(now - secs_of(&r.created))),
                "Status": status_text(r, now, health.as_deref()),
                "State": r.state,
                "Ports": ports_text(&ports),
                "Names": r.name,
                "Labels": labels.join(","),
                "Mounts": s.host_config.mounts.iter().map(|m| m.source.clone()).collect::<Vec<_>>().join(","),
                "Networks": if nets.is_empty() { s.host_config.network_mode.clone() } else { nets.join(",") },
                "Size": "0B",
                "LocalVolumes": s.host_config.mounts.iter().filter(|m| m.kind == "volume").count().to_string(),
            })
        })
        .collect();
    let format = a.format.clone().unwrap_or_else(|| {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".into()
    });
    output::print_list(
        &values,
        &format,
        &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("CreatedAt", "CREATED AT"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("State", "STATE"),
            ("Ports", "PORTS"),
            ("Names", "NAMES"),
            ("Labels", "LABELS"),
            ("Mounts", "MOUNTS"),
            ("Networks", "NETWORKS"),
            ("Size", "SIZE"),
            ("LocalVolumes", "LOCAL VOLUMES"),
        ],
    )?;
    Ok(0)
}

/// A stored time with nine fraction digits, as `logs -t` prints it.
fn fixed_nanos(t: &str) -> String {
    let Some(body) = t.strip_suffix('Z') else {
        return t.to_string();
    };
    let (secs, frac) = body.split_once('.').unwrap_or((body, ""));
    format!("{secs}.{frac:0<9}Z")
}

pub fn logs(g: &Global, a: &LogsArgs) -> Result<i32> {
    let e = open(g)?;
    let row = e.get(&a.container)?;
    let tail = match a.tail.as_str() {
        "all" | "" => None,
        n => Some(
            n.parse::<i64>()
                .with_context(|| format!("invalid --tail {n:?}"))?
                .max(0) as usize,
        ),
    };
    let opts = LogOptions {
        since: a.since.clone(),
        until: a.until.clone(),
        tail,
        follow: a.follow,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    e.logs(&row, &opts, &mut |entry| {
        let prefix = if a.timestamps {
            format!("{} ", fixed_nanos(&entry.time))
        } else {
            String::new()
        };
        if entry.stream == "stderr" {
            let mut w = stderr.lock();
            write!(w, "{prefix}{}", entry.log)?;
            w.flush()
        } else {
            let mut w = stdout.lock();
            write!(w, "{prefix}{}", entry.log)?;
            w.flush()
        }
    })?;
    Ok(0)
}

pub fn exec(g: &Global, a: &ExecArgs) -> Result<i32> {
    let e = open(g)?;
    let row = e.get(&a.container)?;
    let opts = ExecOptions {
        cmd: a.command.clone(),
        env: environment(&a.env_file, &a.env)?,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        tty: a.tty,
        privileged: a.privileged,
    };
    let process = e.exec_process(&row, &opts)?;
    attach::exec(&e, &row.id, &process, a.detach, a.interactive)
}

pub fn attach_cmd(g: &Global, a: &AttachArgs) -> Result<i32> {
    let e = open(g)?;
    let row = e.get(&a.container)?;
    let s = row.settings();
    let stdin = !a.no_stdin && s.config.open_stdin;
    let mut want = proto::WANT_STDOUT | proto::WANT_STDERR;
    if stdin {
        want |= proto::WANT_STDIN;
    }
    let client = e.attach(&row, want)?;
    let opts = attach::Options {
        stdin,
        tty: s.config.tty,
        sig_proxy: a.sig_proxy && !s.config.tty,
        detach_keys: attach::detach_keys(a.detach_keys.as_deref())?,
    };
    let outcome = attach::stream(&e, &row.id, client, &opts)?;
    match outcome {
        attach::Outcome::Detached => Ok(0),
        attach::Outcome::Exited(code) => Ok(code),
        attach::Outcome::Lost => Ok(e.wait_exit(&row.id, None)?.unwrap_or(ENGINE_ERROR)),
    }
}

pub fn top(g: &Global, a: &TopArgs) -> Result<i32> {
    let e = open(g)?;
    let row = e.get(&a.container)?;
    let pids = e.pids(&row)?;
    let lines = berth_runtime::container::ps::table(&pids, &a.ps_args).map_err(|e| anyhow::anyhow!(e.chain()))?;
    for line in lines {
        println!("{line}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times_get_nine_digits() {
        assert_eq!(fixed_nanos("2026-11-22T10:00:00.5Z"), "2026-11-22T10:00:00.500000000Z");
        assert_eq!(fixed_nanos("2026-11-22T10:00:00Z"), "2026-11-22T10:00:00.000000000Z");
    }
}
