//! Printing what the admin API returned: JSON as is, or a table with the columns that matter most
//! for each kind.

use serde_json::Value;

use super::Output;
use crate::resources::Kind;

fn columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Namespace => &["name", "tags"],
        Kind::Service => &["name", "namespace", "urls", "retries", "requestTimeout"],
        Kind::Route => &[
            "name",
            "namespace",
            "paths",
            "methods",
            "service",
            "modules",
        ],
        Kind::Module => &["name", "namespace", "moduleType"],
        Kind::Domain => &["name", "namespace", "patterns", "priority"],
        Kind::Collection => &["name", "namespace", "visibility"],
        Kind::Document => &["id", "namespace", "collection", "updatedAt"],
        Kind::Secret => &["name", "namespace", "updatedAt"],
    }
}

pub fn print(kind: Kind, output: Output, data: Option<&Value>) {
    let Some(data) = data else { return };
    match output {
        Output::Json => print_json(data),
        Output::Table => print!("{}", table(kind, data)),
    }
}

pub fn deleted(kind: Kind, output: Output) {
    if output == Output::Table {
        println!("{kind} deleted");
    }
}

pub(super) fn print_json(data: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(data).unwrap_or_else(|_| data.to_string())
    );
}

/// Prints `GET /api/v1/cluster`: a summary line and a member table.
pub fn cluster(output: Output, data: Option<&Value>) {
    let Some(data) = data else { return };
    if output == Output::Json {
        print_json(data);
        return;
    }
    println!(
        "node {}  leader {}  term {}  applied {}",
        cell(data.get("node")),
        cell(data.get("leader")),
        cell(data.get("term")),
        cell(data.get("applied_index"))
    );
    let members = data.get("members").cloned().unwrap_or(Value::Array(vec![]));
    print!(
        "{}",
        render(
            &["name", "address", "role", "leader", "reachable", "lag"],
            &members
        )
    );
}

/// `dgate history`: one row per kept version, with what it was in a few words.
pub fn history(kind: Kind, output: Output, data: Option<&Value>) {
    let Some(data) = data else { return };
    if output == Output::Json {
        print_json(data);
        return;
    }
    let rows: Vec<Value> = data
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let mut row = v.clone();
            row["current"] = Value::String(if v["current"] == true { "*" } else { "" }.into());
            row["what"] = Value::String(version_summary(kind, v));
            row
        })
        .collect();
    print!(
        "{}",
        render(
            &["version", "current", "at", "by", "what"],
            &Value::Array(rows)
        )
    );
}

/// A version in a few words: a module's type and payload digest, a route's paths and targets.
fn version_summary(kind: Kind, v: &Value) -> String {
    if v["deleted"] == true {
        return "deleted".into();
    }
    let r = &v["resource"];
    match kind {
        Kind::Module => format!("{} {}", cell(r.get("moduleType")), cell(v.get("digest"))),
        _ => {
            let mut s = format!("{} {}", cell(r.get("methods")), cell(r.get("paths")));
            if let Some(svc) = r["service"].as_str() {
                s.push_str(&format!(" -> {svc}"));
            }
            if r["modules"].as_array().is_some_and(|m| !m.is_empty()) {
                s.push_str(&format!(" modules={}", cell(r.get("modules"))));
            }
            s
        }
    }
}

/// Renders one resource or a list of them as an aligned table.
pub fn table(kind: Kind, data: &Value) -> String {
    render(columns(kind), data)
}

fn render(cols: &[&str], data: &Value) -> String {
    let rows: Vec<&Value> = match data {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    let mut cells: Vec<Vec<String>> = vec![cols.iter().map(|c| heading(c)).collect()];
    for row in rows {
        cells.push(cols.iter().map(|c| cell(row.get(*c))).collect());
    }
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn heading(field: &str) -> String {
    let mut out = String::new();
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.is_empty() => "-".into(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| cell(Some(x)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}
