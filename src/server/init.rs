//! `proxy.init_resources`: DGate's resources written at every start. They are read into
//! resources when the config is loaded (so a bad entry or a missing file is a config error),
//! and written through the admin API's own path once the server runs. `dgate apply` reads its
//! resource files with the same code ([`read_in`]).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use crate::config::{ConfigError, InitResources};
use crate::resources::{Kind, Resource, validate};

/// The resources `init` lists, in the order they are written (what others refer to first).
pub fn read(init: &InitResources) -> Result<Vec<Resource>, ConfigError> {
    read_in(init, Path::new(""), "proxy.init_resources")
}

/// Like [`read`], with files named relative to `base` and errors under `at` (`at.routes[2]`).
pub fn read_in(init: &InitResources, base: &Path, at: &str) -> Result<Vec<Resource>, ConfigError> {
    let lists: [(&str, Kind, &Vec<Value>); 8] = [
        ("namespaces", Kind::Namespace, &init.namespaces),
        ("modules", Kind::Module, &init.modules),
        ("services", Kind::Service, &init.services),
        ("routes", Kind::Route, &init.routes),
        ("domains", Kind::Domain, &init.domains),
        ("collections", Kind::Collection, &init.collections),
        ("documents", Kind::Document, &init.documents),
        ("secrets", Kind::Secret, &init.secrets),
    ];
    let mut out = Vec::new();
    for (list, kind, items) in lists {
        for (i, item) in items.iter().enumerate() {
            let at = if at.is_empty() {
                format!("{list}[{i}]")
            } else {
                format!("{at}.{list}[{i}]")
            };
            let bad = |reason: String| ConfigError::Schema {
                key: at.clone(),
                reason,
            };
            let mut item = item.clone();
            let fields = item
                .as_object_mut()
                .ok_or_else(|| bad("must be a mapping".into()))?;
            match kind {
                Kind::Module => module_payload(fields, base).map_err(bad)?,
                Kind::Domain => {
                    for (file_key, key) in [("cert_file", "cert"), ("key_file", "key")] {
                        if let Some(file) = take_string(fields, file_key).map_err(&bad)? {
                            let text = std::fs::read_to_string(base.join(&file))
                                .map_err(|e| bad(format!("{file_key}: cannot read {file}: {e}")))?;
                            fields.insert(key.into(), Value::String(text));
                        }
                    }
                }
                _ => {}
            }
            let bytes = serde_json::to_vec(&item).map_err(|e| bad(e.to_string()))?;
            // serde_json's position is in the JSON made here, not in the file: left out.
            let mut resource = Resource::from_json(kind, &bytes).map_err(|e| {
                let text = e.to_string();
                bad(text.split(" at line ").next().unwrap_or(&text).to_string())
            })?;
            validate::resource(&mut resource).map_err(|e| bad(e.to_string()))?;
            out.push(resource);
        }
    }
    Ok(out)
}

/// A module's `payload` is its source text in DGate's init resources (DGate encodes it), or
/// `payload_file` names the file (the type comes from the file's extension when not given), or
/// `payload_base64` is the payload as the admin API takes it (what `dgate export` writes for a
/// wasm module).
fn module_payload(fields: &mut serde_json::Map<String, Value>, base: &Path) -> Result<(), String> {
    let text = take_string(fields, "payload")?;
    let file = take_string(fields, "payload_file")?;
    let encoded = take_string(fields, "payload_base64")?;
    let source = match (text, file, encoded) {
        (None, None, Some(encoded)) => {
            fields.insert("payload".into(), Value::String(encoded));
            return Ok(());
        }
        (Some(text), None, None) => text.into_bytes(),
        (None, Some(file), None) => {
            if !fields.contains_key("moduleType") {
                let ext = Path::new(&file).extension().and_then(|e| e.to_str());
                let ty = match ext {
                    Some("js" | "mjs") => Some("javascript"),
                    Some("wasm") => Some("wasm"),
                    _ => None,
                };
                if let Some(ty) = ty {
                    fields.insert("moduleType".into(), Value::String(ty.into()));
                }
            }
            std::fs::read(base.join(&file))
                .map_err(|e| format!("payload_file: cannot read {file}: {e}"))?
        }
        (None, None, None) => {
            return Err("payload, payload_file or payload_base64 is required".into());
        }
        _ => return Err("give one of payload, payload_file and payload_base64".into()),
    };
    fields.insert("payload".into(), Value::String(BASE64.encode(source)));
    Ok(())
}

fn take_string(
    fields: &mut serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, String> {
    match fields.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{key}: must be a string")),
    }
}
