//! The admin API's contract: every endpoint once, with its handler and what it takes and
//! answers. The router is built from this table ([`endpoints`]) and `GET /api/v1/openapi.json`
//! is generated from it (OpenAPI 3.1; every schema comes from the Rust types through schemars),
//! so the document lists exactly the endpoints that exist.
//!
//! Raft's node-to-node RPC under `/api/v1/raft/` (authenticated by the cluster's shared key) is
//! not part of the admin API and is not described.

use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};
use schemars::{SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use super::views::{
    Changelog, DeleteBody, ErrorBody, Health, HistoryEntry, MemberName, ModuleReadiness, NewMember,
    Ready, RolledBack,
};
use super::{AdminState, history, resources};
use crate::cluster::ClusterStatus;
use crate::resources::{
    Collection, Document, Domain, Kind, Module, Namespace, Route, Secret, Service,
};

/// A schema in the document, given the generator (which collects named schemas under
/// `#/components/schemas`) and, on a per-kind path, the kind.
type SchemaFn = fn(&mut SchemaGenerator, Option<Kind>) -> Value;

/// One method on one path.
pub(super) struct Endpoint {
    pub method: Method,
    /// axum's path: `{x}` is a path parameter; `{kind}` is documented once per kind in `kinds`.
    pub path: &'static str,
    pub handler: MethodRouter<AdminState>,
    pub doc: Doc,
}

pub(super) struct Doc {
    /// The operationId (per kind: `<id>-<kind>`).
    id: &'static str,
    /// One line; `{kind}` is replaced with the kind.
    summary: &'static str,
    description: &'static str,
    tag: &'static str,
    /// The kinds a `{kind}` path is documented for.
    kinds: &'static [Kind],
    query: &'static [Param],
    body: Option<SchemaFn>,
    /// The success status and its JSON body (`None`: no body, or the text in `text`).
    ok: (u16, Option<SchemaFn>),
    /// A success answered as text/plain (`/`, `/metrics`).
    text: bool,
    /// Failures it may answer, beside the 401/403 of the access policy.
    errors: &'static [u16],
}

impl Doc {
    const fn new(id: &'static str, tag: &'static str, summary: &'static str) -> Doc {
        Doc {
            id,
            summary,
            description: "",
            tag,
            kinds: &[],
            query: &[],
            body: None,
            ok: (200, None),
            text: false,
            errors: &[],
        }
    }
    const fn describe(mut self, description: &'static str) -> Doc {
        self.description = description;
        self
    }
    const fn kinds(mut self, kinds: &'static [Kind]) -> Doc {
        self.kinds = kinds;
        self
    }
    const fn query(mut self, query: &'static [Param]) -> Doc {
        self.query = query;
        self
    }
    const fn body(mut self, body: SchemaFn) -> Doc {
        self.body = Some(body);
        self
    }
    const fn ok(mut self, status: u16, body: Option<SchemaFn>) -> Doc {
        self.ok = (status, body);
        self
    }
    const fn text(mut self) -> Doc {
        self.text = true;
        self
    }
    const fn errors(mut self, errors: &'static [u16]) -> Doc {
        self.errors = errors;
        self
    }
}

/// A query parameter.
#[derive(Clone, Copy)]
pub(super) enum Param {
    Namespace,
    Collection,
    Payload,
    To,
}

impl Param {
    fn json(self) -> Value {
        let (name, description, schema) = match self {
            Param::Namespace => (
                "namespace",
                "The namespace (`default` when absent; required with `disable_default_namespace`).",
                json!({"type": "string"}),
            ),
            Param::Collection => (
                "collection",
                "A document's collection (required for documents).",
                json!({"type": "string"}),
            ),
            Param::Payload => (
                "payload",
                "Include module payloads and sources (left out of listings by default: they can be megabytes).",
                json!({"type": "boolean", "default": false}),
            ),
            Param::To => (
                "to",
                "The version to restore (default: the newest kept one before the current).",
                json!({"type": "integer", "minimum": 1}),
            ),
        };
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
    }
}

const ALL: &[Kind] = &Kind::ALL;
const VERSIONED: &[Kind] = &[Kind::Module, Kind::Route];
const SCOPE: &[Param] = &[Param::Namespace, Param::Collection];
const LISTING: &[Param] = &[Param::Namespace, Param::Collection, Param::Payload];

/// Every admin endpoint: the router is built from this list and the document generated from it.
pub(super) fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    let e = |method, path, handler, doc| Endpoint {
        method,
        path,
        handler,
        doc,
    };
    vec![
        e(M::GET, "/", get(super::root), Doc::new("root", "node", "A line of text; the node's Raft state in headers")
            .describe("As DGate answers it: `X-DGate-Raft-State`, `X-DGate-ChangeHash` and `X-DGate-WatchOnly` headers.")
            .text()),
        e(M::GET, "/healthz", get(super::healthz), Doc::new("healthz", "node", "Whether the process answers (no credentials needed)")
            .ok(200, Some(|g, _| g.subschema_for::<Health>().to_value()))),
        e(M::GET, "/readyz", get(super::readyz), Doc::new("readyz", "node", "Whether the node can serve: it knows a leader (no credentials needed)")
            .describe("`X-Raft-State` and `X-Raft-Leader` headers, as in DGate.")
            .ok(200, Some(|g, _| g.subschema_for::<Ready>().to_value()))
            .errors(&[503])),
        e(M::GET, "/changelog", get(super::changelog), Doc::new("changelog", "node", "The last change applied on this node, as DGate shows it")
            .ok(200, Some(|g, _| g.subschema_for::<Changelog>().to_value()))),
        e(M::GET, "/metrics", get(super::render_metrics), Doc::new("metrics", "node", "Prometheus metrics (text exposition format)")
            .text()),
        e(M::GET, "/api/v1/openapi.json", get(openapi_json), Doc::new("openapi", "node", "This document")
            .ok(200, Some(|_, _| json!({"type": "object", "description": "An OpenAPI 3.1 document."})))),
        e(M::GET, "/api/v1/{kind}", get(resources::list), Doc::new("list", "resources", "List the {kind}s of a namespace")
            .describe("Documents are listed by collection. Module payloads and sources are left out unless `payload=true`; secret values and private keys are redacted.")
            .kinds(ALL).query(LISTING)
            .ok(200, Some(|g, k| envelope(Some(json!({"type": "array", "items": resource(g, k)})), true)))
            .errors(&[400, 403, 404])),
        e(M::PUT, "/api/v1/{kind}", put(resources::put), Doc::new("put", "resources", "Create or replace a {kind}")
            .describe("Validated, built (a JS/TS module is compiled to a component), and replicated before the answer. Query parameters fill in what the body leaves out.")
            .kinds(ALL).query(SCOPE)
            .body(resource)
            .ok(201, Some(|g, k| envelope(Some(resource(g, k)), false)))
            .errors(&[400, 404, 409, 413, 422, 503])),
        e(M::DELETE, "/api/v1/{kind}", delete(resources::delete), Doc::new("delete", "resources", "Delete a {kind} named in the body")
            .describe("Documents: with no body and `?namespace=&collection=`, every document of the collection.")
            .kinds(ALL).query(SCOPE)
            .body(|g, _| g.subschema_for::<DeleteBody>().to_value())
            .ok(204, None)
            .errors(&[400, 404, 409, 413, 422, 503])),
        e(M::GET, "/api/v1/{kind}/{name}", get(resources::get), Doc::new("get", "resources", "Get a {kind}")
            .kinds(ALL).query(SCOPE)
            .ok(200, Some(|g, k| envelope(Some(resource(g, k)), false)))
            .errors(&[400, 403, 404, 422])),
        e(M::PUT, "/api/v1/{kind}/{name}", put(resources::put_by_path), Doc::new("put-data", "resources", "Create or replace a document with its data as the body (DGate's form)")
            .kinds(&[Kind::Document]).query(SCOPE)
            .body(|_, _| json!({"description": "The document's data: any JSON value its collection's schema accepts."}))
            .ok(201, Some(|g, k| envelope(Some(resource(g, k)), false)))
            .errors(&[400, 404, 405, 413, 422, 503])),
        e(M::DELETE, "/api/v1/{kind}/{name}", delete(resources::delete_by_path), Doc::new("delete-by-name", "resources", "Delete a {kind}")
            .kinds(ALL).query(SCOPE)
            .ok(204, None)
            .errors(&[400, 404, 409, 422, 503])),
        e(M::GET, "/api/v1/{kind}/{name}/history", get(history::history), Doc::new("history", "history", "The kept versions of a {kind}, newest first")
            .describe("`storage.history` versions are kept per resource, replicated with the rest of the state.")
            .kinds(VERSIONED).query(&[Param::Namespace, Param::Payload])
            .ok(200, Some(|g, k| {
                let mut entry = g.subschema_for::<HistoryEntry>().to_value();
                entry = json!({"allOf": [entry, {"properties": {"resource": resource(g, k)}}]});
                envelope(Some(json!({"type": "array", "items": entry})), true)
            }))
            .errors(&[400, 404])),
        e(M::POST, "/api/v1/{kind}/{name}/rollback", post(history::rollback), Doc::new("rollback", "history", "Write a kept version of a {kind} again")
            .describe("An ordinary write: validated, built, compiled, replicated, and kept as a new version.")
            .kinds(VERSIONED).query(&[Param::Namespace, Param::To])
            .ok(200, Some(|g, k| {
                let r = g.subschema_for::<RolledBack>().to_value();
                let r = json!({"allOf": [r, {"properties": {"resource": resource(g, k)}}]});
                envelope(Some(r), false)
            }))
            .errors(&[400, 404, 409, 422, 503])),
        e(M::GET, "/api/v1/{kind}/{name}/status", get(resources::module_status), Doc::new("module-status", "resources", "Whether this node runs the stored version of a module")
            .describe("`dgate deploy` asks every member, to say when the new version is ready on each.")
            .kinds(&[Kind::Module]).query(&[Param::Namespace])
            .ok(200, Some(|g, _| { let s = g.subschema_for::<ModuleReadiness>().to_value(); envelope(Some(s), false) }))
            .errors(&[400, 404])),
        e(M::PUT, "/api/v1/batch", put(resources::put_batch), Doc::new("batch", "resources", "Write several resources as one replicated change: all or none")
            .describe("Each item is a resource with its `kind`; an item may refer to one before it (a route to the module written with it). Answers the stored resources, in order.")
            .body(|g, _| json!({"type": "array", "minItems": 1, "items": any_resource(g)}))
            .ok(200, Some(|g, _| { let items = any_resource_shown(g); envelope(Some(json!({"type": "array", "items": items})), true) }))
            .errors(&[400, 404, 409, 413, 422, 503])),
        e(M::GET, "/api/v1/cluster", get(super::cluster_status), Doc::new("cluster", "cluster", "Who leads, who is in, and how far this node has applied")
            .ok(200, Some(|g, _| { let s = g.subschema_for::<ClusterStatus>().to_value(); envelope(Some(s), false) }))),
        e(M::POST, "/api/v1/cluster/join", post(super::cluster_join), Doc::new("cluster-join", "cluster", "Add a node to the cluster")
            .body(|g, _| g.subschema_for::<NewMember>().to_value())
            .ok(200, Some(|g, _| { let s = g.subschema_for::<ClusterStatus>().to_value(); envelope(Some(s), false) }))
            .errors(&[400, 422, 503])),
        e(M::POST, "/api/v1/cluster/promote", post(super::cluster_promote), Doc::new("cluster-promote", "cluster", "Make a watch-only member a voter")
            .body(|g, _| g.subschema_for::<MemberName>().to_value())
            .ok(200, Some(|g, _| { let s = g.subschema_for::<ClusterStatus>().to_value(); envelope(Some(s), false) }))
            .errors(&[400, 404, 422, 503])),
        e(M::POST, "/api/v1/cluster/leave", post(super::cluster_leave), Doc::new("cluster-leave", "cluster", "Remove a member from the cluster")
            .body(|g, _| g.subschema_for::<MemberName>().to_value())
            .ok(200, Some(|g, _| { let s = g.subschema_for::<ClusterStatus>().to_value(); envelope(Some(s), false) }))
            .errors(&[400, 404, 422, 503])),
    ]
}

/// `{"status_code", "data", "count"?}`: how resource endpoints answer, as DGate does.
fn envelope(data: Option<Value>, counted: bool) -> Value {
    let mut properties = json!({
        "status_code": {"type": "integer", "description": "The HTTP status, repeated."},
    });
    if let Some(d) = data {
        properties["data"] = d;
    }
    let mut required = vec!["status_code", "data"];
    if counted {
        properties["count"] =
            json!({"type": "integer", "minimum": 0, "description": "How many items `data` holds."});
        required.push("count");
    }
    json!({"type": "object", "properties": properties, "required": required})
}

/// The schema of a resource of `kind`, as a reference into `#/components/schemas`.
fn resource(g: &mut SchemaGenerator, kind: Option<Kind>) -> Value {
    match kind {
        Some(kind) => kind_schema(g, kind),
        None => any_resource_shown(g),
    }
}

fn kind_schema(g: &mut SchemaGenerator, kind: Kind) -> Value {
    match kind {
        Kind::Namespace => g.subschema_for::<Namespace>(),
        Kind::Service => g.subschema_for::<Service>(),
        Kind::Route => g.subschema_for::<Route>(),
        Kind::Module => g.subschema_for::<Module>(),
        Kind::Domain => g.subschema_for::<Domain>(),
        Kind::Collection => g.subschema_for::<Collection>(),
        Kind::Document => g.subschema_for::<Document>(),
        Kind::Secret => g.subschema_for::<Secret>(),
    }
    .to_value()
}

/// Any resource (an answer that holds several kinds).
fn any_resource_shown(g: &mut SchemaGenerator) -> Value {
    json!({"anyOf": Kind::ALL.iter().map(|k| kind_schema(g, *k)).collect::<Vec<_>>()})
}

/// A batch item: a resource with its `kind`.
fn any_resource(g: &mut SchemaGenerator) -> Value {
    let items: Vec<Value> = Kind::ALL
        .iter()
        .map(|k| {
            json!({"allOf": [
                {"type": "object", "properties": {"kind": {"const": k.as_str()}}, "required": ["kind"]},
                kind_schema(g, *k),
            ]})
        })
        .collect();
    json!({"oneOf": items})
}

/// The generator every schema in the document comes from: JSON Schema 2020-12 (OpenAPI 3.1's
/// dialect), named schemas under `#/components/schemas`, described as requests are read.
pub fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .for_deserialize()
        .into_generator()
}

/// The OpenAPI 3.1 document of the admin API.
pub fn document() -> Value {
    let mut g = generator();
    let mut paths = Map::new();
    for endpoint in endpoints() {
        let kinds: Vec<Option<Kind>> = if endpoint.path.contains("{kind}") {
            endpoint.doc.kinds.iter().copied().map(Some).collect()
        } else {
            vec![None]
        };
        for kind in kinds {
            let path = match kind {
                Some(k) => endpoint.path.replace("{kind}", k.as_str()),
                None => endpoint.path.to_string(),
            };
            let op = operation(&mut g, &endpoint.doc, &path, kind);
            let item = paths
                .entry(path)
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|o| o.insert(endpoint.method.as_str().to_ascii_lowercase(), op));
            debug_assert!(item.is_some());
        }
    }
    let error = g.subschema_for::<ErrorBody>().to_value();
    let schemas = g.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dgate admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Resources (namespaces, services, routes, modules, domains, collections, documents, secrets) under /api/v1, DGate-compatible; the cluster; the node's health. Every failure answers {\"error\", \"status\"}.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "http://127.0.0.1:9080", "description": "The default admin listener"}],
        "tags": [
            {"name": "resources", "description": "The gateway's resources, replicated to every node."},
            {"name": "history", "description": "Kept versions of modules and routes."},
            {"name": "cluster", "description": "Membership and Raft state."},
            {"name": "node", "description": "This node: health, readiness, metrics."},
        ],
        "security": [{}, {"apiKey": []}, {"basic": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                "Error": {
                    "description": "A failure, with what went wrong.",
                    "content": {"application/json": {"schema": error}},
                },
            },
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-DGate-Key", "description": "With `admin.auth_method: key` (the header is `admin.key_auth.header_name`)."},
                "basic": {"type": "http", "scheme": "basic", "description": "With `admin.auth_method: basic`."},
            },
        },
    })
}

fn operation(g: &mut SchemaGenerator, doc: &Doc, path: &str, kind: Option<Kind>) -> Value {
    let name = kind.map_or(String::new(), |k| k.as_str().to_string());
    let mut op = Map::new();
    let id = match kind {
        Some(k) => format!("{}-{}", doc.id, k.as_str()),
        None => doc.id.to_string(),
    };
    op.insert("operationId".into(), json!(id));
    op.insert(
        "summary".into(),
        json!(doc.summary.replace("{kind}", &name)),
    );
    if !doc.description.is_empty() {
        op.insert("description".into(), json!(doc.description));
    }
    op.insert("tags".into(), json!([doc.tag]));
    let mut parameters: Vec<Value> = path_params(path)
        .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(doc.query.iter().filter_map(|q| {
        // Only documents have a collection.
        let skip = matches!(q, Param::Collection) && kind != Some(Kind::Document);
        (!skip).then(|| q.json())
    }));
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(body) = doc.body {
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": body(g, kind)}}}),
        );
    }
    let mut responses = Map::new();
    let (status, body) = doc.ok;
    let ok = match (body, doc.text) {
        (Some(schema), _) => {
            json!({"description": "Done.", "content": {"application/json": {"schema": schema(g, kind)}}})
        }
        (None, true) => {
            json!({"description": "Done.", "content": {"text/plain": {"schema": {"type": "string"}}}})
        }
        (None, false) => json!({"description": "Done."}),
    };
    responses.insert(status.to_string(), ok);
    if status == 201 {
        // A put that replaces answers 200 with the same body.
        let replaced = responses[&status.to_string()].clone();
        responses.insert("200".into(), replaced);
    }
    let public = matches!(path, "/healthz" | "/readyz");
    let access: &[u16] = if public { &[403] } else { &[401, 403] };
    let mut errors: Vec<u16> = doc.errors.iter().chain(access).copied().collect();
    errors.sort_unstable();
    errors.dedup();
    for e in errors {
        responses.insert(
            e.to_string(),
            json!({"$ref": "#/components/responses/Error"}),
        );
    }
    op.insert("responses".into(), Value::Object(responses));
    if public {
        op.insert("security".into(), json!([]));
    }
    Value::Object(op)
}

/// The `{x}` segments of a path.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// `GET /api/v1/openapi.json`.
async fn openapi_json() -> axum::Json<Value> {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    axum::Json(DOCUMENT.get_or_init(document).clone())
}
