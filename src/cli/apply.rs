//! `dgate apply -f FILE`, `dgate diff -f FILE`, `dgate export`: a gateway's resources kept in a
//! file. The format is `proxy.init_resources`' (one list per kind; read by the same code): a
//! module gives `payload` (source text), `payload_file` (a `.ts`/`.js` file is built here, as
//! `dgate deploy` builds it, its imports and npm packages included) or `payload_base64`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::{CliError, Client};
use super::{ApplyArgs, Cli, ExportArgs, Output};
use crate::config::InitResources;
use crate::resources::{Kind, REDACTED, Resource, ResourceKey};

/// The lists of a resource file, in the order they are written (what others refer to first).
const LISTS: [(&str, Kind); 8] = [
    ("namespaces", Kind::Namespace),
    ("modules", Kind::Module),
    ("services", Kind::Service),
    ("routes", Kind::Route),
    ("domains", Kind::Domain),
    ("collections", Kind::Collection),
    ("documents", Kind::Document),
    ("secrets", Kind::Secret),
];

/// What applying a resource does.
#[derive(Debug)]
enum Change {
    Create,
    /// The fields that differ.
    Update(Vec<String>),
    Unchanged,
    Delete,
}

struct Planned {
    key: ResourceKey,
    /// The resource to write (`None` for a delete).
    resource: Option<Resource>,
    change: Change,
}

/// Reads `file` into resources, building JS/TS modules named by `payload_file`.
fn read(file: &Path) -> Result<Vec<Resource>, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let bad = |why: String| CliError::Usage(format!("{}: {why}", file.display()));
    let mut value: Value = if text.trim().is_empty() {
        json!({})
    } else {
        serde_saphyr::from_str(&text)
            .map_err(|e| bad(e.to_string().lines().next().unwrap_or_default().to_string()))?
    };
    let base = file.parent().unwrap_or(Path::new(""));
    if let Some(modules) = value.get_mut("modules").and_then(Value::as_array_mut) {
        for (i, m) in modules.iter_mut().enumerate() {
            build_module(m, base).map_err(|why| bad(format!("modules[{i}]: {why}")))?;
        }
    }
    let init: InitResources = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    crate::server::init::read_in(&init, base, "").map_err(|e| bad(e.to_string()))
}

/// A module whose `payload_file` is JS/TS: built here into a wasm payload with its sources.
fn build_module(m: &mut Value, base: &Path) -> Result<(), String> {
    let Some(fields) = m.as_object_mut() else {
        return Ok(());
    };
    let Some(file) = fields.get("payload_file").and_then(Value::as_str) else {
        return Ok(());
    };
    let path = base.join(file);
    if !super::modules::is_source(&path) {
        return Ok(());
    }
    let source = std::fs::read_to_string(&path)
        .map_err(|e| format!("payload_file: cannot read {}: {e}", path.display()))?;
    let (component, sources) = super::modules::build_project(&path, &source);
    let component = component.map_err(|e| e.to_string())?;
    fields.remove("payload_file");
    fields.insert(
        "payload_base64".into(),
        Value::String(BASE64.encode(component)),
    );
    fields.insert("moduleType".into(), json!("wasm"));
    fields.insert("sources".into(), json!(sources));
    Ok(())
}

/// `dgate check --file FILE`: the file read as `apply` reads it (modules built), no gateway asked.
pub fn check_file(file: &Path) -> Result<usize, CliError> {
    read(file).map(|r| r.len())
}

/// `/kind/name` and its query, for one resource.
fn path_of(key: &ResourceKey) -> (String, Vec<(&'static str, String)>) {
    let mut query = vec![("namespace", key.namespace.clone())];
    if let Some(c) = &key.collection {
        query.push(("collection", c.clone()));
    }
    let name = super::resource::encode(&key.name);
    (format!("/{}/{name}", key.kind), query)
}

/// The stored resource, or `None` when there is none.
async fn current(client: &Client, key: &ResourceKey) -> Result<Option<Value>, CliError> {
    let (path, query) = path_of(key);
    match client.send(Method::GET, &path, &query, None).await {
        Ok(v) => Ok(v),
        Err(CliError::Api { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The fields of `desired` that `stored` does not have as they are. What the server sets
/// (document times), cannot show (secret values) or makes again (a built module's payload,
/// compared through its sources) is left out.
fn differences(desired: &Resource, stored: &Value) -> Vec<String> {
    let mut want = desired.to_public_json();
    let mut have = stored.clone();
    for v in [&mut want, &mut have] {
        if let Some(o) = v.as_object_mut() {
            o.remove("createdAt");
            o.remove("updatedAt");
        }
    }
    let mut changed = Vec::new();
    if let Resource::Secret(s) = desired
        && s.data != REDACTED
    {
        // Shown redacted: a value given in the file is written every time.
        changed.push("data".to_string());
    }
    if let Resource::Module(m) = desired
        && !m.sources.is_empty()
    {
        for v in [&mut want, &mut have] {
            if let Some(o) = v.as_object_mut() {
                o.remove("payload");
            }
        }
    }
    let (Some(want), Some(have)) = (want.as_object(), have.as_object()) else {
        return vec!["(all)".into()];
    };
    let keys: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    for k in keys {
        // Shown redacted: a secret's value, a domain's private key (a new key comes with a new
        // cert, which is compared).
        if (k == "data" && matches!(desired, Resource::Secret(_)))
            || (k == "key" && matches!(desired, Resource::Domain(_)))
        {
            continue;
        }
        let (w, h) = (want.get(k), have.get(k));
        let empty =
            |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v == &json!([]) || v == &json!({}));
        if w != h && !(empty(w) && empty(h)) {
            changed.push(k.clone());
        }
    }
    changed
}

/// Every resource of the namespaces `desired` names, as the server has them.
async fn stored_keys(
    client: &Client,
    namespaces: &BTreeSet<String>,
) -> Result<Vec<ResourceKey>, CliError> {
    let mut keys = Vec::new();
    for ns in namespaces {
        let query = [("namespace", ns.clone())];
        for kind in [
            Kind::Route,
            Kind::Module,
            Kind::Service,
            Kind::Domain,
            Kind::Collection,
            Kind::Secret,
        ] {
            let list = match client
                .send(Method::GET, &format!("/{kind}"), &query, None)
                .await
            {
                Ok(list) => list.unwrap_or(Value::Null),
                // A namespace the file creates holds nothing yet.
                Err(CliError::Api { status: 404, .. }) => break,
                Err(e) => return Err(e),
            };
            for item in list.as_array().into_iter().flatten() {
                let Some(name) = item["name"].as_str() else {
                    continue;
                };
                if kind == Kind::Collection {
                    let q = [("namespace", ns.clone()), ("collection", name.to_string())];
                    let docs = client.send(Method::GET, "/document", &q, None).await;
                    for d in docs
                        .ok()
                        .flatten()
                        .as_ref()
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(id) = d["id"].as_str() {
                            let mut key = ResourceKey::new(Kind::Document, ns, id);
                            key.collection = Some(name.to_string());
                            keys.push(key);
                        }
                    }
                }
                keys.push(ResourceKey::new(kind, ns, name));
            }
        }
    }
    Ok(keys)
}

/// What applying `file` would do.
async fn plan(client: &Client, file: &Path, prune: bool) -> Result<Vec<Planned>, CliError> {
    let desired = read(file)?;
    let mut planned = Vec::new();
    for resource in desired {
        let key = resource.key();
        let change = match current(client, &key).await? {
            None => Change::Create,
            Some(stored) => match differences(&resource, &stored) {
                d if d.is_empty() => Change::Unchanged,
                d => Change::Update(d),
            },
        };
        planned.push(Planned {
            key,
            resource: Some(resource),
            change,
        });
    }
    if prune {
        let wanted: BTreeSet<ResourceKey> = planned.iter().map(|p| p.key.clone()).collect();
        let namespaces: BTreeSet<String> = planned
            .iter()
            .map(|p| match p.key.kind {
                Kind::Namespace => p.key.name.clone(),
                _ => p.key.namespace.clone(),
            })
            .collect();
        // Routes first, documents before their collection: what refers to others goes first.
        for key in stored_keys(client, &namespaces).await? {
            if !wanted.contains(&key) {
                planned.push(Planned {
                    key,
                    resource: None,
                    change: Change::Delete,
                });
            }
        }
    }
    Ok(planned)
}

fn describe(p: &Planned) -> Option<String> {
    let what = match &p.key.collection {
        Some(c) => format!("{} {}/{}/{}", p.key.kind, p.key.namespace, c, p.key.name),
        None if p.key.kind == Kind::Namespace => format!("namespace {}", p.key.name),
        None => format!("{} {}/{}", p.key.kind, p.key.namespace, p.key.name),
    };
    match &p.change {
        Change::Create => Some(format!("+ {what}")),
        Change::Update(fields) => Some(format!("~ {what} ({})", fields.join(", "))),
        Change::Delete => Some(format!("- {what}")),
        Change::Unchanged => None,
    }
}

fn summary(planned: &[Planned]) -> (usize, usize, usize, usize) {
    let count = |f: fn(&Change) -> bool| planned.iter().filter(|p| f(&p.change)).count();
    (
        count(|c| matches!(c, Change::Create)),
        count(|c| matches!(c, Change::Update(_))),
        count(|c| matches!(c, Change::Delete)),
        count(|c| matches!(c, Change::Unchanged)),
    )
}

fn print_plan(cli: &Cli, planned: &[Planned], verb: &str) {
    let (created, updated, deleted, unchanged) = summary(planned);
    if cli.output == Output::Json {
        let changes: Vec<Value> = planned
            .iter()
            .map(|p| {
                let (change, fields) = match &p.change {
                    Change::Create => ("create", vec![]),
                    Change::Update(f) => ("update", f.clone()),
                    Change::Delete => ("delete", vec![]),
                    Change::Unchanged => ("unchanged", vec![]),
                };
                json!({"kind": p.key.kind.as_str(), "namespace": p.key.namespace,
                       "collection": p.key.collection, "name": p.key.name,
                       "change": change, "fields": fields})
            })
            .collect();
        let out = json!({"changes": changes, "created": created, "updated": updated,
                         "deleted": deleted, "unchanged": unchanged});
        super::output::print_json(&out);
        return;
    }
    planned
        .iter()
        .filter_map(describe)
        .for_each(|l| println!("{l}"));
    println!(
        "{verb}{created} created, {updated} updated, {deleted} deleted, {unchanged} unchanged"
    );
}

/// `dgate diff -f FILE [--prune]`: what `apply` would change, written nowhere.
pub async fn diff(cli: &Cli, args: &ApplyArgs) -> Result<(), CliError> {
    let client = Client::new(cli)?;
    let planned = plan(&client, &args.file, args.prune).await?;
    print_plan(cli, &planned, "would be: ");
    Ok(())
}

/// `dgate apply -f FILE [--prune] [--dry-run]`: what changed is written as one replicated
/// change (all or nothing); with `--prune`, what the file's namespaces hold and the file does
/// not list is deleted after it.
pub async fn apply(cli: &Cli, args: &ApplyArgs) -> Result<(), CliError> {
    let client = Client::new(cli)?;
    let planned = plan(&client, &args.file, args.prune).await?;
    if args.dry_run {
        print_plan(cli, &planned, "dry run, nothing written: ");
        return Ok(());
    }
    let writes: Vec<Value> = planned
        .iter()
        .filter(|p| matches!(p.change, Change::Create | Change::Update(_)))
        .filter_map(|p| p.resource.as_ref())
        .map(|r| {
            let mut item = r.spec_json();
            item["kind"] = json!(r.key().kind.as_str());
            item
        })
        .collect();
    if !writes.is_empty() {
        client
            .send(Method::PUT, "/batch", &[], Some(&Value::Array(writes)))
            .await?;
    }
    for p in planned
        .iter()
        .filter(|p| matches!(p.change, Change::Delete))
    {
        let (path, query) = path_of(&p.key);
        client.send(Method::DELETE, &path, &query, None).await?;
    }
    print_plan(cli, &planned, "");
    Ok(())
}

/// `dgate export [-n NS]...`: the resources of the namespaces (all by default) in the file
/// format `apply` reads, on stdout (YAML; `-o json` for JSON). Secret values and domain keys
/// come out redacted (applying them back keeps the stored values).
pub async fn export(cli: &Cli, args: &ExportArgs) -> Result<(), CliError> {
    let client = Client::new(cli)?;
    let all = client
        .send(Method::GET, "/namespace", &[], None)
        .await?
        .unwrap_or(Value::Null);
    let mut lists: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for ns in all.as_array().into_iter().flatten() {
        let Some(name) = ns["name"].as_str() else {
            continue;
        };
        if !args.namespaces.is_empty() && !args.namespaces.iter().any(|n| n == name) {
            continue;
        }
        lists.entry("namespaces").or_default().push(ns.clone());
        for (list, kind) in &LISTS[1..] {
            if *kind == Kind::Document {
                continue;
            }
            let query = [("namespace", name.to_string()), ("payload", "true".into())];
            let items = client
                .send(Method::GET, &format!("/{kind}"), &query, None)
                .await?
                .unwrap_or(Value::Null);
            for item in items.as_array().into_iter().flatten() {
                let mut item = item.clone();
                if *kind == Kind::Module {
                    module_for_file(&mut item);
                }
                if let Some(o) = item.as_object_mut() {
                    o.remove("createdAt");
                    o.remove("updatedAt");
                }
                if *kind == Kind::Collection
                    && let Some(c) = item["name"].as_str()
                {
                    let q = [
                        ("namespace", name.to_string()),
                        ("collection", c.to_string()),
                    ];
                    // A private collection's documents are for modules only (403): not exported.
                    if let Ok(Some(docs)) = client.send(Method::GET, "/document", &q, None).await {
                        for d in docs.as_array().into_iter().flatten() {
                            let mut d = d.clone();
                            if let Some(o) = d.as_object_mut() {
                                o.remove("createdAt");
                                o.remove("updatedAt");
                            }
                            lists.entry("documents").or_default().push(d);
                        }
                    }
                }
                lists.entry(list).or_default().push(item);
            }
        }
    }
    let mut out = Map::new();
    for (list, _) in LISTS {
        if let Some(items) = lists.remove(list) {
            out.insert(list.to_string(), Value::Array(items));
        }
    }
    let out = Value::Object(out);
    if cli.output == Output::Json {
        super::output::print_json(&out);
    } else {
        let yaml = serde_saphyr::to_string(&out)
            .map_err(|e| CliError::Failed(format!("cannot write YAML: {e}")))?;
        print!("{yaml}");
    }
    Ok(())
}

/// A module as the file format has it: a JS/TS payload as its source text, a wasm one as
/// `payload_base64` (with the sources it was built from).
fn module_for_file(item: &mut Value) {
    let Some(fields) = item.as_object_mut() else {
        return;
    };
    let Some(Value::String(payload)) = fields.remove("payload") else {
        return;
    };
    let text = match fields.get("moduleType").and_then(Value::as_str) {
        Some("wasm") => None,
        _ => BASE64
            .decode(payload.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
    };
    match text {
        Some(text) => fields.insert("payload".into(), Value::String(text)),
        None => fields.insert("payload_base64".into(), Value::String(payload)),
    };
}
