//! `/api/v1/<kind>` handlers: thin translations between HTTP and [`ChangeCommand`]s / reads.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminState, AppError, error::json_error};
use crate::resources::validate;
use crate::resources::{
    ChangeCommand, ChangeOutcome, DEFAULT_NAMESPACE, Kind, Resource, ResourceKey,
};

/// `?namespace=&collection=` on every resource endpoint.
#[derive(Debug, Default, Deserialize)]
pub struct Scope {
    pub(super) namespace: Option<String>,
    pub(super) collection: Option<String>,
    /// Module listings leave payloads out (they can be megabytes each) unless this is true.
    #[serde(default)]
    pub(super) payload: bool,
}

pub(super) fn kind(s: &str) -> Result<Kind, AppError> {
    s.parse().map_err(|_| {
        let known: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        AppError::NotFound(format!(
            "unknown resource kind {s:?} (one of {})",
            known.join(", ")
        ))
    })
}

pub(super) fn scope(q: Result<Query<Scope>, QueryRejection>) -> Result<Scope, AppError> {
    q.map(|Query(s)| s)
        .map_err(|e| AppError::BadRequest(format!("invalid query string: {}", e.body_text())))
}

fn body(b: Result<Bytes, BytesRejection>, limit: u64) -> Result<Bytes, AppError> {
    b.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(limit),
        _ => AppError::BadRequest(format!("cannot read request body: {}", e.body_text())),
    })
}

pub(super) fn ok_json(status: StatusCode, data: Value, count: Option<usize>) -> Response {
    let mut body = json!({ "status_code": status.as_u16(), "data": data });
    if let Some(n) = count {
        body["count"] = json!(n);
    }
    (status, Json(body)).into_response()
}

/// `PUT /api/v1/<kind>`: create or replace one resource.
pub async fn put(
    State(state): State<AdminState>,
    Path(kind_s): Path<String>,
    q: Result<Query<Scope>, QueryRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let kind = kind(&kind_s)?;
    let scope = scope(q)?;
    let bytes = body(b, state.max_body_size)?;
    if bytes.is_empty() {
        return Err(AppError::BadRequest(format!(
            "request body is empty: send the {kind} as JSON"
        )));
    }
    let mut resource =
        Resource::from_json(kind, &bytes).map_err(|e| json_error(kind.as_str(), &e))?;
    apply_scope(&mut resource, &scope);
    if kind != Kind::Namespace {
        require_namespace(&state, Some(&resource.key().namespace))?;
    }
    store(&state, resource).await
}

/// `disable_default_namespace`: a request must name its namespace, as in DGate.
pub(super) fn require_namespace(
    state: &AdminState,
    namespace: Option<&str>,
) -> Result<(), AppError> {
    if state.namespace_required && namespace.is_none_or(str::is_empty) {
        return Err(AppError::BadRequest("namespace is required".into()));
    }
    Ok(())
}

/// `PUT /api/v1/document/{id}?namespace=&collection=` with the document's data as the body
/// (DGate's form). Other kinds are written with `PUT /api/v1/<kind>`.
pub async fn put_by_path(
    State(state): State<AdminState>,
    Path((kind_s, id)): Path<(String, String)>,
    q: Result<Query<Scope>, QueryRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let kind = kind(&kind_s)?;
    if kind != Kind::Document {
        return Err(AppError::MethodNotAllowed(format!(
            "PUT /api/v1/{kind}/{{name}} is only for documents: send the {kind} as JSON to PUT /api/v1/{kind}"
        )));
    }
    let scope = scope(q)?;
    require_namespace(&state, scope.namespace.as_deref())?;
    let collection = scope
        .collection
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AppError::BadRequest("collection is required".into()))?;
    let bytes = body(b, state.max_body_size)?;
    let data: Value =
        serde_json::from_slice(&bytes).map_err(|e| json_error("document data", &e))?;
    let document = crate::resources::Document {
        id,
        namespace: scope.namespace.unwrap_or_default(),
        collection,
        data,
        created_at: None,
        updated_at: None,
    };
    store(&state, Resource::Document(document)).await
}

async fn store(state: &AdminState, resource: Resource) -> Result<Response, AppError> {
    let outcome = write(state, resource).await?;
    audit(state, &outcome, None);
    Ok(match outcome {
        ChangeOutcome::Created(r) => ok_json(StatusCode::CREATED, r.to_public_json(), None),
        ChangeOutcome::Updated(r) => ok_json(StatusCode::OK, r.to_public_json(), None),
        _ => return Err(AppError::Internal("a put was applied as a delete".into())),
    })
}

/// Validates `resource`, builds it if it is a JS/TS module (rebuilding the modules that import
/// it), and writes it through the cluster: what `PUT` does, also used for `init_resources`.
pub async fn write(state: &AdminState, resource: Resource) -> Result<ChangeOutcome, AppError> {
    let all = prepare(state, resource).await?;
    if all.len() == 1 {
        let resource = all
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Internal("a prepared write has no resource".into()))?;
        return Ok(state
            .cluster
            .write(ChangeCommand::put(resource).stamped(stamp()))
            .await?);
    }
    // The module and the modules rebuilt against it, in one write.
    match state
        .cluster
        .write(ChangeCommand::put_all(all).stamped(stamp()))
        .await?
    {
        ChangeOutcome::All(mut outcomes) if !outcomes.is_empty() => Ok(outcomes.swap_remove(0)),
        _ => Err(AppError::Internal(
            "a module's write was applied otherwise".into(),
        )),
    }
}

/// Several resources in one replicated change: all of them, or none. Each is checked and
/// prepared as [`write`] does; a resource may refer to one before it (a route to the module
/// deployed with it). The outcomes, in order (with any modules rebuilt along the way).
pub async fn write_all(
    state: &AdminState,
    resources: Vec<Resource>,
) -> Result<Vec<ChangeOutcome>, AppError> {
    let mut all = Vec::with_capacity(resources.len());
    for resource in resources {
        all.extend(prepare(state, resource).await?);
    }
    match state
        .cluster
        .write(ChangeCommand::put_all(all).stamped(stamp()))
        .await?
    {
        ChangeOutcome::All(outcomes) => Ok(outcomes),
        _ => Err(AppError::Internal(
            "a batch write was applied otherwise".into(),
        )),
    }
}

/// Validates `resource`, builds it if it is a JS/TS module, rebuilds the modules that import
/// it, compiles them on this node and stamps documents and secrets: what a write sends to the
/// cluster, the resource first.
async fn prepare(state: &AdminState, mut resource: Resource) -> Result<Vec<Resource>, AppError> {
    validate::resource(&mut resource)?;
    // A JS/TS module is built here; modules that import it are rebuilt against the new source
    // before anything is written, so a change that breaks one of them is refused.
    let mut dependents = Vec::new();
    if let Resource::Module(m) = &mut resource {
        // A wasm module neither imports nor is imported: no sources to read.
        let others = if m.module_type == crate::resources::ModuleType::Wasm {
            Sources::new()
        } else {
            namespace_modules(state, &m.namespace, &m.name)?
        };
        let waits_for = missing_imports(m, &others);
        if waits_for.is_empty() {
            prepare_module(&state.builder, m, &others).await?;
        } else {
            // As DGate, which resolves imports when a module runs: stored now, built when what
            // it imports is written (its routes answer 502 meanwhile).
            tracing::info!(module = %m.name, namespace = %m.namespace, waits_for = ?waits_for,
                "module stored unbuilt until the modules it imports exist");
            m.component = None;
        }
        dependents = rebuild_dependents(&state.builder, m, others).await?;
    }
    if let (Some(warm), Resource::Module(m)) = (&state.warm, &resource) {
        for module in std::iter::once(m).chain(dependents.iter()) {
            warm_module(warm, module).await?;
        }
    }
    let now = crate::resources::now_rfc3339();
    match &mut resource {
        Resource::Document(d) => {
            d.created_at = Some(now.clone());
            d.updated_at = Some(now);
        }
        Resource::Secret(s) => {
            s.created_at = Some(now.clone());
            s.updated_at = Some(now);
        }
        _ => {}
    }
    let mut all = vec![resource];
    all.extend(dependents.into_iter().map(Resource::Module));
    Ok(all)
}

/// `PUT /api/v1/batch`: `[{"kind": "module", ...}, {"kind": "route", ...}]`, written as one
/// replicated change (all or none). Answers the stored resources, in order.
pub async fn put_batch(
    State(state): State<AdminState>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let bytes = body(b, state.max_body_size)?;
    let items: Vec<Value> =
        serde_json::from_slice(&bytes).map_err(|e| json_error("batch (a JSON array)", &e))?;
    if items.is_empty() {
        return Err(AppError::BadRequest("the batch is empty".into()));
    }
    let mut resources = Vec::with_capacity(items.len());
    for (i, mut item) in items.into_iter().enumerate() {
        let kind_s = item
            .as_object_mut()
            .and_then(|o| o.remove("kind"))
            .and_then(|k| k.as_str().map(str::to_string))
            .ok_or_else(|| {
                AppError::BadRequest(format!("batch[{i}]: an object with a \"kind\" is expected"))
            })?;
        let kind = kind(&kind_s).map_err(|e| AppError::BadRequest(format!("batch[{i}]: {e}")))?;
        let bytes = serde_json::to_vec(&item).map_err(|e| AppError::Internal(e.to_string()))?;
        let resource = Resource::from_json(kind, &bytes)
            .map_err(|e| json_error(&format!("batch[{i}]: {}", kind.as_str()), &e))?;
        if kind != Kind::Namespace {
            require_namespace(&state, Some(&resource.key().namespace))?;
        }
        resources.push(resource);
    }
    let outcomes = write_all(&state, resources).await?;
    outcomes.iter().for_each(|o| audit(&state, o, None));
    let items: Vec<Value> = outcomes
        .iter()
        .filter_map(|o| match o {
            ChangeOutcome::Created(r) | ChangeOutcome::Updated(r) => Some(r.to_public_json()),
            _ => None,
        })
        .collect();
    let n = items.len();
    Ok(ok_json(StatusCode::OK, Value::Array(items), Some(n)))
}

/// Compiles `m` on this node before it is written: a component the engine refuses is a 422;
/// a failure that may pass (no instance slot free) leaves the load to the background.
async fn warm_module(
    warm: &crate::admin::Warmer,
    m: &crate::resources::Module,
) -> Result<(), AppError> {
    match warm(m).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_transient() => {
            tracing::warn!(module = %m.name, namespace = %m.namespace, error = %e, "module not compiled before its write; it loads in the background");
            Ok(())
        }
        Err(e) => Err(AppError::Unprocessable(format!(
            "payload: the component cannot be loaded: {e}"
        ))),
    }
}

/// The modules that `m` imports by name, directly or through the modules it imports, and that
/// `others` (its namespace's other modules) lacks.
fn missing_imports(m: &crate::resources::Module, others: &Sources) -> Vec<String> {
    let Some((file, source)) = js_source(m) else {
        return vec![];
    };
    let mut missing = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = crate::build::imports_of(&file, &source);
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        match others.get(&name) {
            Some((_, file, source)) => todo.extend(crate::build::imports_of(file, source)),
            None => missing.push(name),
        }
    }
    missing
}

/// The other JS/TS modules of a namespace, by name, with their sources: what a module may
/// import by name.
type Sources = std::collections::BTreeMap<String, (crate::resources::Module, String, String)>;

fn namespace_modules(
    state: &AdminState,
    namespace: &str,
    except: &str,
) -> Result<Sources, AppError> {
    let mut out = Sources::new();
    for r in state.cluster.list(Kind::Module, namespace, None)? {
        let Resource::Module(m) = r else { continue };
        if m.name == except {
            continue;
        }
        if let Some((file, source)) = js_source(&m) {
            out.insert(m.name.clone(), (m, file, source));
        }
    }
    Ok(out)
}

/// The file name a JS/TS module is built under (`name.js`, `name.ts`); `None` for wasm.
fn js_file_name(m: &crate::resources::Module) -> Option<String> {
    use crate::resources::ModuleType;
    let ext = match m.module_type {
        ModuleType::Javascript => "js",
        ModuleType::Typescript => "ts",
        ModuleType::Wasm => return None,
    };
    Some(format!("{}.{ext}", m.name))
}

/// A JS/TS module's file name and source text; `None` for wasm or a payload that is not
/// base64 of UTF-8 text.
fn js_source(m: &crate::resources::Module) -> Option<(String, String)> {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;

    let file = js_file_name(m)?;
    let source = BASE64
        .decode(m.payload.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())?;
    Some((file, source))
}

/// The modules of `others` that import `m` (directly or through others), rebuilt with `m`'s new
/// source. A dependent that no longer builds refuses the write (422); one that still imports a
/// module the namespace lacks stays unbuilt.
async fn rebuild_dependents(
    builder: &crate::build::Builder,
    m: &crate::resources::Module,
    mut others: Sources,
) -> Result<Vec<crate::resources::Module>, AppError> {
    // A wasm module neither imports nor is imported.
    let Some((file, source)) = js_source(m) else {
        return Ok(vec![]);
    };
    // Which modules reach `m` through their imports.
    let imports: std::collections::BTreeMap<String, Vec<String>> = others
        .iter()
        .map(|(n, (_, file, src))| (n.clone(), crate::build::imports_of(file, src)))
        .collect();
    let mut affected = std::collections::BTreeSet::new();
    let mut changed = true;
    while changed {
        changed = false;
        for (n, deps) in &imports {
            if !affected.contains(n) && deps.iter().any(|d| d == &m.name || affected.contains(d)) {
                affected.insert(n.clone());
                changed = true;
            }
        }
    }
    let mut rebuilt = Vec::new();
    if affected.is_empty() {
        return Ok(rebuilt);
    }
    others.insert(m.name.clone(), (m.clone(), file, source));
    for name in affected {
        let Some((d, _, _)) = others.get(&name) else {
            continue;
        };
        let mut d = d.clone();
        let mut libs = others.clone();
        libs.remove(&name);
        if !missing_imports(&d, &libs).is_empty() {
            continue;
        }
        prepare_module(builder, &mut d, &libs)
            .await
            .map_err(|e| match e {
                AppError::Unprocessable(msg) => AppError::Unprocessable(format!(
                    "module {name:?} imports {:?} and would no longer build: {msg}",
                    m.name
                )),
                other => other,
            })?;
        rebuilt.push(d);
    }
    Ok(rebuilt)
}

/// Makes a module's component on the node that took the write: a JS/TS payload is built here
/// (the component is what the cluster replicates), with the namespace's other JS/TS modules
/// importable by name; a wasm payload is checked against dgate's world. Either failure is a
/// 422 with the builder's message.
async fn prepare_module(
    builder: &crate::build::Builder,
    m: &mut crate::resources::Module,
    libs: &Sources,
) -> Result<(), AppError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;

    let payload = BASE64
        .decode(m.payload.trim())
        .map_err(|e| AppError::Unprocessable(format!("payload: is not valid base64: {e}")))?;
    match js_file_name(m) {
        None => {
            m.component = None;
            crate::modules::check_component(&payload)
                .map_err(|e| AppError::Unprocessable(format!("payload: {e}")))
        }
        Some(file) => {
            let source = String::from_utf8(payload)
                .map_err(|_| AppError::Unprocessable("payload: is not UTF-8 text".into()))?;
            let libraries = libs
                .iter()
                .map(|(n, (_, f, src))| (n.clone(), (f.clone(), src.clone())))
                .collect();
            let built = builder
                .build(crate::build::BuildRequest {
                    file,
                    source,
                    libraries,
                    library: true,
                })
                .await;
            match built {
                Ok(component) => {
                    m.component = Some(BASE64.encode(component));
                    Ok(())
                }
                Err(crate::build::BuildError::Source(msg)) => {
                    Err(AppError::Unprocessable(format!("payload: {msg}")))
                }
                Err(e @ crate::build::BuildError::Limit(_)) => {
                    Err(AppError::Unprocessable(format!("payload: {e}")))
                }
                Err(e @ crate::build::BuildError::Busy(_)) => {
                    Err(AppError::Unavailable(e.to_string()))
                }
                Err(e) => Err(AppError::Internal(e.to_string())),
            }
        }
    }
}

/// The query string names the namespace (and collection) when the body leaves them out.
fn apply_scope(resource: &mut Resource, scope: &Scope) {
    let ns = scope.namespace.clone().unwrap_or_default();
    let fill = |field: &mut String| {
        if field.is_empty() {
            field.clone_from(&ns);
        }
    };
    match resource {
        Resource::Namespace(_) => {}
        Resource::Service(r) => fill(&mut r.namespace),
        Resource::Route(r) => fill(&mut r.namespace),
        Resource::Module(r) => fill(&mut r.namespace),
        Resource::Domain(r) => fill(&mut r.namespace),
        Resource::Collection(r) => fill(&mut r.namespace),
        Resource::Secret(r) => fill(&mut r.namespace),
        Resource::Document(d) => {
            fill(&mut d.namespace);
            if d.collection.is_empty()
                && let Some(c) = &scope.collection
            {
                d.collection.clone_from(c);
            }
        }
    }
}

/// `GET /api/v1/<kind>?namespace=`: every resource of a kind in one namespace (`default` when
/// none is named; documents also by `collection`).
pub async fn list(
    State(state): State<AdminState>,
    Path(kind_s): Path<String>,
    q: Result<Query<Scope>, QueryRejection>,
) -> Result<Response, AppError> {
    let kind = kind(&kind_s)?;
    let scope = scope(q)?;
    if kind != Kind::Namespace {
        require_namespace(&state, scope.namespace.as_deref())?;
    }
    let namespace = scope
        .namespace
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    if kind != Kind::Namespace {
        validate::name("namespace", &namespace)?;
        if state
            .cluster
            .get(&ResourceKey::namespace(&namespace))?
            .is_none()
        {
            return Err(AppError::NotFound(format!(
                "namespace {namespace:?} not found"
            )));
        }
    }
    let collection = match kind {
        Kind::Document => {
            let c = scope
                .collection
                .filter(|c| !c.is_empty())
                .ok_or_else(|| AppError::BadRequest("collection is required".into()))?;
            readable_collection(&state, &namespace, &c)?;
            Some(c)
        }
        _ => None,
    };
    let items: Vec<Value> = state
        .cluster
        .list(kind, &namespace, collection.as_deref())?
        .iter()
        .map(|r| public_json(r, scope.payload))
        .collect();
    let n = items.len();
    Ok(ok_json(StatusCode::OK, Value::Array(items), Some(n)))
}

/// `r` as listings show it: a module's payload and sources (megabytes) only when asked for.
pub(super) fn public_json(r: &Resource, with_payload: bool) -> Value {
    let mut shown = r.to_public_json();
    if !with_payload
        && matches!(r, Resource::Module(_))
        && let Some(fields) = shown.as_object_mut()
    {
        fields.remove("payload");
        fields.remove("sources");
    }
    shown
}

/// Whether the admin API may read the documents of `collection`: it must exist and not be
/// private (a private collection's documents are for modules only, as in DGate).
fn readable_collection(
    state: &AdminState,
    namespace: &str,
    collection: &str,
) -> Result<(), AppError> {
    validate::name("collection", collection)?;
    match state
        .cluster
        .get(&ResourceKey::new(Kind::Collection, namespace, collection))?
    {
        None => Err(AppError::NotFound(format!(
            "collection {collection:?} not found in namespace {namespace:?}"
        ))),
        Some(Resource::Collection(c)) if c.visibility == crate::resources::Visibility::Private => {
            Err(AppError::Forbidden(format!(
                "collection {collection:?} is private: its documents are only for modules"
            )))
        }
        Some(_) => Ok(()),
    }
}

pub(super) fn key_from(
    kind: Kind,
    name: String,
    namespace: Option<String>,
    collection: Option<String>,
) -> Result<ResourceKey, AppError> {
    let mut key = ResourceKey {
        kind,
        namespace: if kind == Kind::Namespace {
            String::new()
        } else {
            namespace.unwrap_or_default()
        },
        collection: if kind == Kind::Document {
            collection
        } else {
            None
        },
        name,
    };
    validate::key(&mut key)?;
    Ok(key)
}

/// `GET /api/v1/<kind>/{name}?namespace=` (documents: `/document/{id}?namespace=&collection=`).
pub async fn get(
    State(state): State<AdminState>,
    Path((kind_s, name)): Path<(String, String)>,
    q: Result<Query<Scope>, QueryRejection>,
) -> Result<Response, AppError> {
    let kind = kind(&kind_s)?;
    let scope = scope(q)?;
    if kind != Kind::Namespace {
        require_namespace(&state, scope.namespace.as_deref())?;
    }
    let key = key_from(kind, name, scope.namespace, scope.collection)?;
    if let Some(c) = &key.collection {
        readable_collection(&state, &key.namespace, c)?;
    }
    match state.cluster.get(&key)? {
        Some(r) => Ok(ok_json(StatusCode::OK, r.to_public_json(), None)),
        None => Err(AppError::NotFound(format!("{key} not found"))),
    }
}

/// `GET /api/v1/module/{name}/status?namespace=`: whether this node has the stored version of
/// the module compiled and ready to run: `{"node", "hash", "ready", "error"?}` (`hash` is null
/// for a module stored unbuilt until what it imports exists). `dgate deploy` asks each node.
pub async fn module_status(
    State(state): State<AdminState>,
    Path((kind_s, name)): Path<(String, String)>,
    q: Result<Query<Scope>, QueryRejection>,
) -> Result<Response, AppError> {
    if kind(&kind_s)? != Kind::Module {
        return Err(AppError::BadRequest(format!(
            "{kind_s} has no status: only modules are compiled on each node"
        )));
    }
    let scope = scope(q)?;
    require_namespace(&state, scope.namespace.as_deref())?;
    let key = key_from(Kind::Module, name, scope.namespace, None)?;
    let Some(Resource::Module(m)) = state.cluster.get(&key)? else {
        return Err(AppError::NotFound(format!("{key} not found")));
    };
    let status = state.module_status.as_ref().and_then(|f| f(&m));
    let mut data = super::views::ModuleReadiness {
        node: state.node_name.to_string(),
        hash: None,
        ready: false,
        error: None,
    };
    match status {
        Some((hash, ready)) => {
            data.hash = Some(hash);
            match ready {
                Ok(r) => data.ready = r,
                Err(e) => data.error = Some(e),
            }
        }
        None if state.module_status.is_none() => {
            data.error = Some("this node does not run modules".into());
        }
        None => {}
    }
    Ok(ok_json(StatusCode::OK, json!(data), None))
}

/// `DELETE /api/v1/<kind>` with body `{"name", "namespace"}` (documents: `{"id", "namespace",
/// "collection"}`, or no body and `?namespace=&collection=` for all of a collection's).
pub async fn delete(
    State(state): State<AdminState>,
    Path(kind_s): Path<String>,
    q: Result<Query<Scope>, QueryRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let kind = kind(&kind_s)?;
    let scope = scope(q)?;
    let bytes = body(b, state.max_body_size)?;
    if bytes.is_empty() && kind == Kind::Document {
        // DGate's `DELETE /document?namespace=&collection=`: all of a collection's documents.
        let collection = scope
            .collection
            .filter(|c| !c.is_empty())
            .ok_or_else(|| AppError::BadRequest("collection is required".into()))?;
        require_namespace(&state, scope.namespace.as_deref())?;
        let namespace = scope.namespace.unwrap_or_default();
        let command = ChangeCommand::delete_documents(&namespace, &collection);
        return match state.cluster.write(command).await? {
            outcome @ ChangeOutcome::DeletedDocuments(_) => {
                audit(&state, &outcome, None);
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(AppError::Internal("a delete was applied as a put".into())),
        };
    }
    let del: super::views::DeleteBody = if bytes.is_empty() {
        return Err(AppError::BadRequest(format!(
            "request body is empty: send {{\"name\": ..., \"namespace\": ...}} naming the {kind} to delete"
        )));
    } else {
        serde_json::from_slice(&bytes).map_err(|e| json_error("delete request", &e))?
    };
    let name = match kind {
        Kind::Document => del.id.or(del.name),
        _ => del.name,
    }
    .ok_or_else(|| {
        AppError::Unprocessable(format!(
            "{}: is required",
            if kind == Kind::Document { "id" } else { "name" }
        ))
    })?;
    let namespace = del.namespace.filter(|n| !n.is_empty()).or(scope.namespace);
    if kind != Kind::Namespace {
        require_namespace(&state, namespace.as_deref())?;
    }
    let key = key_from(kind, name, namespace, del.collection.or(scope.collection))?;
    finish_delete(&state, key).await
}

/// `DELETE /api/v1/<kind>/{name}?namespace=` (documents: `&collection=`).
pub async fn delete_by_path(
    State(state): State<AdminState>,
    Path((kind_s, name)): Path<(String, String)>,
    q: Result<Query<Scope>, QueryRejection>,
) -> Result<Response, AppError> {
    let kind = kind(&kind_s)?;
    let scope = scope(q)?;
    if kind != Kind::Namespace {
        require_namespace(&state, scope.namespace.as_deref())?;
    }
    let key = key_from(kind, name, scope.namespace, scope.collection)?;
    finish_delete(&state, key).await
}

async fn finish_delete(state: &AdminState, key: ResourceKey) -> Result<Response, AppError> {
    let command = ChangeCommand::delete(key).stamped(stamp());
    match state.cluster.write(command).await? {
        outcome @ ChangeOutcome::Deleted(_) => {
            audit(state, &outcome, None);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(AppError::Internal("a delete was applied as a put".into())),
    }
}

/// When a change is made, and by whom: kept in the history of what it writes.
fn stamp() -> crate::resources::Stamp {
    crate::resources::Stamp::now(super::auth::caller())
}

/// One `dgate::audit` line for each resource `outcome` changed, inside the request's `admin`
/// span (who and from where); modules and routes also say the version the change made.
/// `rollback_to`: the change restored that earlier version.
pub(super) fn audit(state: &AdminState, outcome: &ChangeOutcome, rollback_to: Option<u64>) {
    let line = |op: &str, key: &ResourceKey| {
        let version = if crate::cluster::VERSIONED.contains(&key.kind) {
            state.cluster.store().last_version(key).ok()
        } else {
            None
        };
        tracing::info!(
            target: "dgate::audit",
            op,
            kind = key.kind.as_str(),
            namespace = (!key.namespace.is_empty()).then_some(key.namespace.as_str()),
            name = %key.name,
            collection = key.collection.as_deref(),
            version,
            rollback_to,
            "admin change"
        );
    };
    match outcome {
        ChangeOutcome::Created(r) => line("create", &r.key()),
        ChangeOutcome::Updated(r) => line("update", &r.key()),
        ChangeOutcome::Deleted(k) => line("delete", k),
        // A collection emptied at once: one line, not one per document.
        ChangeOutcome::DeletedDocuments(keys) => {
            if let Some(first) = keys.first() {
                tracing::info!(
                    target: "dgate::audit",
                    op = "delete",
                    kind = "document",
                    namespace = %first.namespace,
                    collection = first.collection.as_deref(),
                    count = keys.len(),
                    "admin change"
                );
            }
        }
        ChangeOutcome::All(all) => all.iter().for_each(|o| audit(state, o, rollback_to)),
    }
}
