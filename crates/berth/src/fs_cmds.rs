//! The container filesystem commands: `cp`, `diff`, `export`, `commit`, with Docker's flags,
//! output and exit codes. `cp` does here what Docker's client does (host paths, symlinks of
//! the destination, where to extract and under which name) and leaves the container side to
//! the engine, as Docker leaves it to its daemon.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use berth_engine::fs::{abs_path, pipe, prepare_copy, split_path, CommitFlags};
use berth_engine::{Engine, EngineError};
use berth_image::layer::pack::{PackOptions, Packer, Select};
use berth_image::layer::{self, ApplyOptions, Whiteouts};
use clap::Args;

use crate::cli::Global;
use crate::container_cmds::open;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy (berth prints none).
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH, a host path, or `-` (a tar on stdin).
    pub source: String,
    /// CONTAINER:DEST_PATH, a host path, or `-` (a tar on stdout).
    pub destination: String,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    pub container: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

/// `docker cp`'s split of an argument: `CONTAINER:PATH`, or a local path (absolute, or
/// starting with `.`, or without `:`).
fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

pub fn cp(g: &Global, a: &CpArgs) -> Result<i32> {
    let (src_container, src) = split_cp_arg(&a.source);
    let (dst_container, dst) = split_cp_arg(&a.destination);
    match (src_container, dst_container) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some(c), None) => copy_from(&open(g)?, c, src, dst, a.follow_link),
        (None, Some(c)) => copy_to(&open(g)?, src, c, dst, a.follow_link, a.archive),
    }?;
    Ok(0)
}

/// An absolute host path, a trailing `/` or `/.` kept.
fn local_abs(path: &str) -> Result<String> {
    if path.starts_with('/') {
        return Ok(path.to_owned());
    }
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let joined = format!("{}/{path}", cwd.display());
    let clean = abs_path(&joined);
    Ok(clean)
}

/// What is at a host destination, symlinks followed (Docker's `CopyInfoDestinationPath`):
/// (path, exists, is a directory). A missing path needs an existing parent directory.
fn destination_info(path: &str) -> Result<(String, bool, bool)> {
    let mut path = path.to_owned();
    for _ in 0..=10 {
        match std::fs::symlink_metadata(&path) {
            Ok(md) if md.file_type().is_symlink() => {
                let target = std::fs::read_link(&path).with_context(|| format!("readlink {path}"))?;
                let target = target.to_string_lossy().into_owned();
                path = if target.starts_with('/') {
                    target
                } else {
                    let (dir, _) = split_path(path.trim_end_matches('/'));
                    abs_path(&format!("{dir}{target}"))
                };
            }
            Ok(md) => return Ok((path, true, md.is_dir())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (dir, _) = split_path(path.trim_end_matches('/'));
                let dir = if dir.is_empty() { "." } else { dir };
                let md = std::fs::metadata(dir).with_context(|| format!("stat {dir}"))?;
                if !md.is_dir() {
                    bail!("not a directory");
                }
                return Ok((path, false, false));
            }
            Err(e) => return Err(e).with_context(|| format!("lstat {path}")),
        }
    }
    bail!("too many symlinks in {path}")
}

fn copy_from(e: &Engine, container: &str, src: &str, dst: &str, follow: bool) -> Result<()> {
    if dst == "-" {
        let stdout = io::stdout();
        e.archive_path(container, src, follow, None, stdout)?;
        return Ok(());
    }
    let dst = local_abs(dst)?;
    validate_output_path(&dst)?;
    let stat = e.stat_path(container, src, follow)?;
    let (dst_path, exists, is_dir) = destination_info(&dst)?;
    let (dir, as_name) = prepare_copy(stat.is_dir(), &dst_path, exists, is_dir).map_err(anyhow::Error::msg)?;
    let (writer, reader) = pipe();
    let source = format!("{container}:{src}");
    let extract = std::thread::spawn(move || {
        let mut opts = ApplyOptions::new(format!("archive of {source}"), Whiteouts::Plain);
        opts.same_owner = false;
        opts.no_overwrite_dir_non_dir = true;
        layer::apply(reader, Path::new(&dir), &opts)
    });
    let archived = e.archive_path(container, src, follow, as_name.as_deref(), writer);
    let extracted = extract
        .join()
        .unwrap_or_else(|_| panic!("the extraction thread panicked"));
    // The extraction's error first: the archive's is then only a broken pipe.
    extracted?;
    archived?;
    Ok(())
}

/// Docker's `ValidateOutputPath`: the parent directory must exist, and what is there must be
/// a directory or a regular file.
fn validate_output_path(path: &str) -> Result<()> {
    let (dir, _) = split_path(path.trim_end_matches('/'));
    let dir = dir.trim_end_matches('/');
    if !dir.is_empty() && !Path::new(dir).exists() {
        bail!("invalid output path: directory {dir:?} does not exist");
    }
    if let Ok(md) = std::fs::metadata(path) {
        if !md.is_dir() && !md.is_file() {
            bail!("invalid output path: {path:?} must be a directory or a regular file");
        }
    }
    Ok(())
}

/// A host source, Docker's `CopyInfoSourcePath`: its path with the directory's symlinks (and
/// with `follow` the last one) resolved, the name its entries get, and whether it is a
/// directory.
fn source_info(path: &str, follow: bool) -> Result<(PathBuf, String, bool)> {
    let abs = local_abs(path)?;
    let (dir, base) = split_path(&abs);
    let dir = if dir.is_empty() { "/" } else { dir };
    let real_dir = std::fs::canonicalize(dir).with_context(|| format!("lstat {abs}"))?;
    let (resolved, name) = match base {
        "" | "." => (
            real_dir.clone(),
            if base.is_empty() {
                file_name(&real_dir)
            } else {
                ".".into()
            },
        ),
        b if follow => {
            let target = std::fs::canonicalize(real_dir.join(b)).with_context(|| format!("lstat {abs}"))?;
            (target, b.to_owned())
        }
        b => (real_dir.join(b), b.to_owned()),
    };
    let md = std::fs::symlink_metadata(&resolved).with_context(|| format!("lstat {}", resolved.display()))?;
    Ok((resolved, name, md.is_dir()))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into())
}

/// Writes the host path `src` as a tar named `as_name`.
fn pack_host(src: &Path, is_dir: bool, as_name: &str, out: impl Write) -> io::Result<()> {
    let mut packer = Packer::new(out, PackOptions::default());
    let open_dir = |p: &Path| std::fs::File::open(p).map(std::os::fd::OwnedFd::from);
    if is_dir {
        let dir = open_dir(src)?;
        packer.append_dir(&dir, as_name, true, &mut |_| Select::Include)?;
    } else {
        let parent = src.parent().unwrap_or(Path::new("/"));
        let dir = open_dir(parent)?;
        let name = src.file_name().unwrap_or_default();
        packer.append(&dir, name, as_name, &mut |_| Select::Include)?;
    }
    packer.finish()?.flush()
}

fn copy_to(e: &Engine, src: &str, container: &str, dst: &str, follow: bool, archive: bool) -> Result<()> {
    let mut dst_path = dst.to_owned();
    let mut stat = e.stat_path(container, dst, false);
    if let Ok(st) = &stat {
        if st.is_symlink() {
            let link = st.link_target.clone();
            dst_path = if link.starts_with('/') {
                link
            } else {
                let (dir, _) = split_path(dst);
                format!("{dir}{link}")
            };
            stat = e.stat_path(container, &dst_path, false);
        }
    }
    let (exists, is_dir) = match &stat {
        Ok(st) => {
            if !st.is_dir() && !st.is_regular() {
                bail!("destination \"{container}:{dst}\" must be a directory or a regular file");
            }
            (true, st.is_dir())
        }
        Err(EngineError::FileNotFound { .. }) => (false, false),
        // No such container, and the like.
        Err(EngineError::NotFound(_) | EngineError::Ambiguous(_)) => return Err(stat.unwrap_err().into()),
        Err(_) => (false, false),
    };
    if src == "-" {
        if !is_dir {
            bail!("destination \"{container}:{dst}\" must be a directory");
        }
        e.extract_to_dir(container, &dst_path, io::stdin(), archive)?;
        return Ok(());
    }
    let (src_path, src_base, src_is_dir) = source_info(src, follow)?;
    let (dir, rename) = prepare_copy(src_is_dir, &dst_path, exists, is_dir).map_err(anyhow::Error::msg)?;
    let as_name = rename.unwrap_or(src_base);
    let (writer, reader) = pipe();
    let packed = std::thread::spawn(move || pack_host(&src_path, src_is_dir, &as_name, writer));
    let extracted = e.extract_to_dir(container, &dir, reader, archive);
    let packed = packed
        .join()
        .unwrap_or_else(|_| panic!("the archiving thread panicked"));
    extracted?;
    match packed {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r.with_context(|| format!("archiving {src}")),
    }
}

pub fn diff(g: &Global, a: &DiffArgs) -> Result<i32> {
    let e = open(g)?;
    let mut out = io::stdout().lock();
    for change in e.changes(&a.container)? {
        writeln!(out, "{change}")?;
    }
    Ok(0)
}

pub fn export(g: &Global, a: &ExportArgs) -> Result<i32> {
    let e = open(g)?;
    // Like Docker: a missing container leaves no file behind.
    e.get(&a.container)?;
    crate::output::write_output(a.output.as_deref(), |w| Ok(e.export(&a.container, w)?))?;
    Ok(0)
}

pub fn commit(g: &Global, a: &CommitArgs) -> Result<i32> {
    let mut e = open(g)?;
    let flags = CommitFlags {
        reference: a.reference.clone(),
        author: a.author.clone(),
        message: a.message.clone(),
        changes: a.changes.clone(),
        pause: a.pause,
    };
    let id = e.commit(&a.container, &flags)?;
    println!("{id}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_arguments_split_like_dockers() {
        assert_eq!(split_cp_arg("c1:/etc"), (Some("c1"), "/etc"));
        assert_eq!(split_cp_arg("/abs:x"), (None, "/abs:x"));
        assert_eq!(split_cp_arg("./f:name"), (None, "./f:name"));
        assert_eq!(split_cp_arg("plain"), (None, "plain"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
        assert_eq!(split_cp_arg("c1:"), (Some("c1"), ""));
    }
}
