//! `list`: a tab-aligned table like runc's, or JSON.

use anyhow::Result;
use berth_runtime::{OciState, Root};

pub fn run(root: &Root, format: &str, quiet: bool) -> Result<i32> {
    let mut states: Vec<OciState> = Vec::new();
    for id in root.ids().map_err(super::chain)? {
        if let Ok(s) = root.load(&id) {
            states.push(s.oci(root));
        }
    }
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    if format == "json" {
        println!("{}", serde_json::to_string(&states)?);
        return Ok(0);
    }
    let rows: Vec<[String; 6]> =
        std::iter::once(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from))
            .chain(states.iter().map(|s| {
                [
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]
            }))
            .collect();
    print!("{}", table(&rows));
    Ok(0)
}

/// Go's tabwriter with minwidth 12, padding 3, as runc configures it.
pub fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < N {
                let w = (widths[i] + 3).max(12);
                out.push_str(&" ".repeat(w - c.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}
