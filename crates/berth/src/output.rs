//! Printing lists and documents as Docker does: `--format` Go templates, `table`, `json`.

use std::io::{self, BufWriter, Write};

use anyhow::{bail, Context, Result};
use berth_template::{Columns, Format, Template};
use serde_json::Value;

/// Prints `rows` through `format` (a `--format` value, or the command's default `table …`),
/// with `headers` naming the columns of a table.
pub fn print_list(rows: &[Value], format: &str, headers: &[(&str, &str)]) -> Result<()> {
    let parsed = Format::parse(format).with_context(|| format!("--format {format:?}"))?;
    let columns = Columns {
        default: format,
        headers,
    };
    print!("{}", parsed.render(rows, &columns)?);
    Ok(())
}

/// `--filter KEY=VALUE` flags as pairs, with Docker's message for a malformed one.
pub fn filter_pairs(filters: &[String]) -> Result<Vec<(String, String)>> {
    filters
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("bad format of filter (expected name=value): {f}"))
        })
        .collect()
}

/// `inspect`: the documents as an indented JSON array, or each through `format`.
pub fn print_inspect(docs: &[Value], format: Option<&str>) -> Result<()> {
    match format.filter(|f| !f.is_empty()) {
        None => println!("{}", to_json_indent(&Value::Array(docs.to_vec()))),
        Some("json") => println!("{}", serde_json::to_string(docs)?),
        Some(f) => {
            let template = Template::parse(f).with_context(|| format!("--format {f:?}"))?;
            for doc in docs {
                println!("{}", template.render(doc)?);
            }
        }
    }
    Ok(())
}

/// JSON indented with four spaces, as Docker's inspect prints it.
fn to_json_indent(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut ser).expect("JSON of a value");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// Writes an archive to `output`, or to stdout (never a terminal). A file is written next to
/// its name and renamed into place: no half archive under the name.
pub fn write_output(
    output: Option<&std::path::Path>,
    write: impl FnOnce(&mut (dyn Write + Send)) -> Result<()>,
) -> Result<()> {
    match output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("creating a file in {}", dir.display()))?;
            let mut w = BufWriter::new(tmp.as_file());
            write(&mut w)?;
            w.flush()?;
            drop(w);
            tmp.persist(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            if io::IsTerminal::is_terminal(&io::stdout()) {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut w = BufWriter::new(io::stdout());
            write(&mut w)?;
            w.flush()?;
        }
    }
    Ok(())
}

/// Asks `question` on stderr; whether the answer was yes.
pub fn confirm(warning: &str) -> Result<bool> {
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// A prune's list: the heading, one name a line, a blank line; nothing when empty.
pub fn print_deleted(heading: &str, names: &[String]) {
    if names.is_empty() {
        return;
    }
    println!("{heading}");
    for n in names {
        println!("{n}");
    }
    println!();
}

/// `KEY=VALUE` flags as a map (`KEY` alone: an empty value).
pub fn key_values(flags: &[String]) -> std::collections::BTreeMap<String, String> {
    flags
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}
