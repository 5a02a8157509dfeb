//! `key=value`, `key:=json`, `key@=file` arguments → the JSON object sent to the admin API.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::client::CliError;
use crate::resources::Kind;

/// What a field's `key=value` is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldType {
    /// `key=a,b`; repeated keys append.
    List,
    /// `true`, `false`, `1`, `0`, `t`, `f` (as dgate-cli reads them).
    Bool,
    /// A whole number.
    Int,
    /// Text (or any JSON with `key:=`).
    Text,
}

/// One field of a resource kind, as its schema says.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    required: bool,
    kind: FieldType,
    description: String,
}

/// The fields a resource of `kind` takes, from the kind's schema (the server ignores others, as
/// DGate's does, so the CLI refuses them as dgate-cli does: a misspelt key is an error, not
/// lost). Fields the server sets are left out. The name (or id) first, then the namespace.
fn fields(kind: Kind) -> Vec<Field> {
    let schema = kind.schema();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut fields: Vec<Field> = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, p)| p["readOnly"] != Value::Bool(true))
        .map(|(name, p)| Field {
            name: name.clone(),
            required: required.contains(&name.as_str()),
            kind: field_type(p),
            // Doc comments wrap; a help line does not.
            description: p["description"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        })
        .collect();
    let rank = |f: &Field| match f.name.as_str() {
        "name" | "id" => 0,
        "namespace" => 1,
        _ => 2,
    };
    fields.sort_by_key(rank);
    fields
}

/// A property's type: `"type": "array"` (or `["array", "null"]`) and so on.
fn field_type(property: &Value) -> FieldType {
    let types: Vec<&str> = match &property["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"array") {
        FieldType::List
    } else if types.contains(&"boolean") {
        FieldType::Bool
    } else if types.contains(&"integer") {
        FieldType::Int
    } else {
        FieldType::Text
    }
}

fn field(kind: Kind, key: &str) -> Option<Field> {
    fields(kind).into_iter().find(|f| f.name == key)
}

/// How a field is written on the command line, and what it is.
fn field_hint(field: &str) -> &'static str {
    match field {
        "name" => "the first bare word, or name=NAME",
        "id" => "the first bare word, or id=ID",
        "namespace" => "namespace=NS",
        "urls" => "urls=http://a:80,http://b:80",
        "paths" => "paths=/users/{id},/static/*",
        "methods" => "methods=GET,POST (or *)",
        "modules" => "modules=m1,m2",
        "patterns" => "patterns='*.example.com,/^api\\./'",
        "tags" => "tags=a,b",
        "retries" | "priority" => "a whole number",
        "retryTimeout" | "connectTimeout" | "requestTimeout" => "a duration: 1.5s, 500ms",
        "payload" => "payload@=mod.ts: the file; moduleType follows its extension",
        "moduleType" => "typescript | javascript | wasm",
        "limits" => "limits:='{\"fuel\": 5000000, \"memory\": \"32MiB\", \"timeout\": \"20ms\"}'",
        "cert" | "key" => "a PEM file: cert@=cert.pem",
        "schema" => "schema:='{JSON Schema}' or schema@=schema.json",
        "visibility" => "public | private",
        "type" => "document",
        "service" => "service=NAME",
        "collection" => "collection=NAME",
        "data" => "data:='{...}' for a document, data=TEXT for a secret",
        _ => "",
    }
}

/// `dgate <kind> create --help`'s list of the kind's fields, required ones marked: each with its
/// description (the resource type's doc comment) and how to write it.
pub fn help(kind: Kind) -> String {
    let fields = fields(kind);
    let width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0) + 2;
    let mut out = format!("Fields of a {kind} (* required):\n");
    for f in &fields {
        let mark = if f.required { "*" } else { " " };
        let hint = match (field_hint(&f.name), f.kind) {
            ("", FieldType::Bool) => "true | false",
            ("", FieldType::Int) => "a whole number",
            (hint, _) => hint,
        };
        let mut line = f.description.clone();
        if !hint.is_empty() {
            line = if line.is_empty() {
                hint.to_string()
            } else {
                format!("{line} [{hint}]")
            };
        }
        out.push_str(&format!("  {:<width$}{mark} {line}\n", f.name));
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
            let kind_of = field(kind, lhs).map_or(FieldType::Text, |f| f.kind);
            (lhs, coerce(lhs, kind_of, rhs)?)
        };
        if key.is_empty() {
            return Err(usage(format!("{arg:?} has no key before '='")));
        }
        let Some(field) = field(kind, key) else {
            let known: Vec<String> = fields(kind).into_iter().map(|f| f.name).collect();
            return Err(usage(format!(
                "a {kind} has no field {key:?} (its fields: {})",
                known.join(", ")
            )));
        };
        insert(&mut map, &field, value);
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
fn coerce(key: &str, kind: FieldType, value: &str) -> Result<Value, CliError> {
    if kind == FieldType::Bool {
        return match value {
            "true" | "TRUE" | "True" | "t" | "T" | "1" => Ok(Value::Bool(true)),
            "false" | "FALSE" | "False" | "f" | "F" | "0" => Ok(Value::Bool(false)),
            _ => Err(CliError::Usage(format!(
                "{key} takes true or false, not {value:?}"
            ))),
        };
    }
    if kind == FieldType::Int {
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

fn insert(map: &mut Map<String, Value>, field: &Field, value: Value) {
    let key = field.name.as_str();
    if field.kind != FieldType::List {
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
