//! `key=value`, `key:=json`, `key@=file` arguments → the JSON object sent to the admin API.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::client::CliError;
use crate::resources::Kind;

/// Fields whose value is a list: `key=a,b` and repeated keys both append.
const LIST_FIELDS: [&str; 6] = ["urls", "paths", "methods", "modules", "patterns", "tags"];
/// Fields whose `key=value` is read as a boolean (`true`, `false`, `1`, `0`, `t`, `f`), as
/// dgate-cli reads them.
const BOOL_FIELDS: [&str; 6] = [
    "preserveHost",
    "stripPath",
    "tlsSkipVerify",
    "http2Only",
    "hideDGateHeaders",
    "disableQueryParams",
];
/// Fields whose `key=value` is read as a whole number.
const INT_FIELDS: [&str; 2] = ["retries", "priority"];

/// The fields a resource of `kind` has. The server ignores others (as DGate's does), so the
/// CLI refuses them, as dgate-cli does ("unused keys"): a misspelt key is an error, not lost.
fn known_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Namespace => &["name", "tags"],
        Kind::Service => &[
            "name",
            "namespace",
            "urls",
            "retries",
            "retryTimeout",
            "connectTimeout",
            "requestTimeout",
            "tlsSkipVerify",
            "http2Only",
            "hideDGateHeaders",
            "disableQueryParams",
            "tags",
        ],
        Kind::Route => &[
            "name",
            "namespace",
            "paths",
            "methods",
            "preserveHost",
            "stripPath",
            "service",
            "modules",
            "tags",
        ],
        Kind::Module => &[
            "name",
            "namespace",
            "payload",
            "moduleType",
            "limits",
            "tags",
        ],
        Kind::Domain => &[
            "name",
            "namespace",
            "patterns",
            "priority",
            "cert",
            "key",
            "tags",
        ],
        Kind::Collection => &["name", "namespace", "schema", "visibility", "type", "tags"],
        Kind::Document => &["id", "namespace", "collection", "data"],
        Kind::Secret => &["name", "namespace", "data", "tags"],
    }
}

/// The fields `kind` needs in every write.
fn required(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Namespace | Kind::Collection => &["name"],
        Kind::Service => &["name", "urls"],
        Kind::Route => &["name", "paths", "methods"],
        Kind::Module => &["name", "payload"],
        Kind::Domain => &["name", "patterns"],
        Kind::Document => &["id", "collection", "data"],
        Kind::Secret => &["name", "data"],
    }
}

/// How a field is written on the command line, and what it is.
fn field_hint(field: &str) -> &'static str {
    match field {
        "name" => "the first bare word, or name=NAME",
        "id" => "the first bare word, or id=ID",
        "namespace" => "namespace=NS (default: default)",
        "urls" => "urls=http://a:80,http://b:80 (http or https)",
        "paths" => "paths=/users/{id},/static/*",
        "methods" => "methods=GET,POST (or *)",
        "modules" => "modules=m1,m2 (the first runs; the others it may import)",
        "patterns" => "patterns='*.example.com,/^api\\./'",
        "tags" => "tags=a,b",
        "retries" | "priority" => "a whole number",
        "retryTimeout" | "connectTimeout" | "requestTimeout" => "a duration: 1.5s, 500ms",
        "payload" => "payload@=mod.ts (the file; moduleType follows its extension)",
        "moduleType" => "typescript | javascript | wasm",
        "limits" => "limits:='{\"fuel\": 5000000, \"memory\": \"32MiB\", \"timeout\": \"20ms\"}'",
        "cert" | "key" => "a PEM file: cert@=cert.pem",
        "schema" => "schema:='{JSON Schema}' or schema@=schema.json",
        "visibility" => "public | private",
        "type" => "document",
        "service" => "service=NAME (in the same namespace)",
        "collection" => "collection=NAME",
        "data" => "data:='{...}' (a document's JSON) or data=TEXT (a secret)",
        f if BOOL_FIELDS.contains(&f) => "true | false",
        _ => "",
    }
}

/// `dgate <kind> create --help`'s list of the kind's fields, required ones marked.
pub fn help(kind: Kind) -> String {
    let fields = known_fields(kind);
    let width = fields.iter().map(|f| f.len()).max().unwrap_or(0) + 2;
    let mut out = format!("Fields of a {kind} (* required):\n");
    for f in fields {
        let mark = if required(kind).contains(f) { "*" } else { " " };
        out.push_str(&format!("  {f:<width$}{mark} {}\n", field_hint(f)));
    }
    out.push_str(
        "\nKEY=VALUE is text (a number or boolean for the fields above that are one), KEY:=JSON any\n\
         JSON value, KEY@=FILE a file's text (a module payload's bytes, in base64).",
    );
    out
}

/// Parses `args` for a command on `kind`. `read` reads a file named by `key@=file`.
pub fn parse(
    kind: Kind,
    args: &[String],
    read: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<Map<String, Value>, CliError> {
    let usage = CliError::Usage;
    let mut map = Map::new();
    let mut payload_file: Option<String> = None;
    for (i, arg) in args.iter().enumerate() {
        let Some(eq) = arg.find('=') else {
            if i == 0 {
                map.insert(name_key(kind).to_string(), Value::String(arg.clone()));
                continue;
            }
            return Err(usage(format!(
                "{arg:?} is not a field: write KEY=VALUE, KEY:=JSON or KEY@=FILE"
            )));
        };
        let (lhs, rhs) = (&arg[..eq], &arg[eq + 1..]);
        let (key, value) = if let Some(key) = lhs.strip_suffix(':') {
            let v: Value = serde_json::from_str(rhs)
                .map_err(|e| usage(format!("{key}:= takes JSON, and {rhs:?} is not JSON: {e}")))?;
            (key, v)
        } else if let Some(key) = lhs.strip_suffix('@') {
            let bytes =
                read(Path::new(rhs)).map_err(|e| usage(format!("cannot read {rhs}: {e}")))?;
            let v = if kind == Kind::Module && key == "payload" {
                payload_file = Some(rhs.to_string());
                Value::String(BASE64.encode(&bytes))
            } else {
                Value::String(
                    String::from_utf8(bytes)
                        .map_err(|_| usage(format!("{rhs} is not UTF-8 text")))?,
                )
            };
            (key, v)
        } else {
            (lhs, coerce(lhs, rhs)?)
        };
        if key.is_empty() {
            return Err(usage(format!("{arg:?} has no key before '='")));
        }
        let known = known_fields(kind);
        if !known.contains(&key) {
            return Err(usage(format!(
                "a {kind} has no field {key:?} (its fields: {})",
                known.join(", ")
            )));
        }
        insert(&mut map, key, value);
    }
    if let Some(file) = payload_file
        && !map.contains_key("moduleType")
        && let Some(t) = module_type_of(&file)
    {
        map.insert("moduleType".into(), Value::String(t.into()));
    }
    Ok(map)
}

/// A `key=value` value as the field's type takes it: booleans and numbers for the fields that
/// are, a string for the rest (lists are split in [`insert`]).
fn coerce(key: &str, value: &str) -> Result<Value, CliError> {
    if BOOL_FIELDS.contains(&key) {
        return match value {
            "true" | "TRUE" | "True" | "t" | "T" | "1" => Ok(Value::Bool(true)),
            "false" | "FALSE" | "False" | "f" | "F" | "0" => Ok(Value::Bool(false)),
            _ => Err(CliError::Usage(format!(
                "{key} takes true or false, not {value:?}"
            ))),
        };
    }
    if INT_FIELDS.contains(&key) {
        return value
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| CliError::Usage(format!("{key} takes a whole number, not {value:?}")));
    }
    Ok(Value::String(value.to_string()))
}

/// The field a bare first argument fills.
pub fn name_key(kind: Kind) -> &'static str {
    if kind == Kind::Document { "id" } else { "name" }
}

fn insert(map: &mut Map<String, Value>, key: &str, value: Value) {
    if !LIST_FIELDS.contains(&key) {
        map.insert(key.to_string(), value);
        return;
    }
    let items: Vec<Value> = match value {
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_string()))
            .collect(),
        Value::Array(a) => a,
        other => vec![other],
    };
    match map.get_mut(key) {
        Some(Value::Array(existing)) => existing.extend(items),
        _ => {
            map.insert(key.to_string(), Value::Array(items));
        }
    }
}

fn module_type_of(file: &str) -> Option<&'static str> {
    let ext = Path::new(file).extension()?.to_str()?;
    match ext {
        "js" | "mjs" => Some("javascript"),
        "ts" | "mts" => Some("typescript"),
        "wasm" => Some("wasm"),
        _ => None,
    }
}
