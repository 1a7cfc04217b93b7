//! Printing lists and documents as Docker does: `--format` Go templates, `table`, `json`.

use anyhow::{Context, Result};
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
