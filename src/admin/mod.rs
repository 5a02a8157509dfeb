//! The admin API (axum): `/api/v1/<kind>` resources, `/healthz`, `/readyz`, `/metrics`.
//!
//! Handlers are thin: they parse and validate input, hand a [`ChangeCommand`] to the cluster layer
//! and render what comes back. Every failure goes through [`AppError`]; no handler writes storage.
//!
//! [`ChangeCommand`]: crate::resources::ChangeCommand

mod auth;
mod error;
mod history;
mod metrics;
mod openapi;
mod process;
mod resources;
mod views;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, middleware};
use serde_json::json;

pub use auth::AccessPolicy;
pub use error::AppError;
pub use metrics::Metrics;
pub use openapi::document as openapi_document;
pub use resources::write;

use crate::cluster::{Cluster, MembershipChange};
use crate::config::Config;
use views::{MemberName, NewMember};

/// What every handler shares.
#[derive(Clone)]
pub struct AdminState {
    pub cluster: Cluster,
    pub metrics: Arc<Metrics>,
    pub node_name: Arc<str>,
    pub max_body_size: u64,
    /// Where JS/TS modules written through the API are built.
    pub builder: crate::build::Builder,
    /// `disable_default_namespace`: a request that names no namespace is refused.
    pub namespace_required: bool,
    /// Compiles a module on this node before its write goes out (see [`AdminState::warming`]).
    pub warm: Option<Warmer>,
    /// Whether this node has a module ready to run (see [`AdminState::reporting`]).
    pub module_status: Option<ModuleStatus>,
}

/// A stored module's component hash and whether this node has that version ready to run
/// (`Err`: it cannot load it); `None` for a module stored unbuilt.
pub type ModuleStatus =
    Arc<dyn Fn(&crate::resources::Module) -> Option<(String, Result<bool, String>)> + Send + Sync>;

/// Compiles (and loads) a module on this node: a permanent failure refuses its write.
pub type Warmer = Arc<
    dyn Fn(
            &crate::resources::Module,
        ) -> crate::modules::BoxFuture<Result<(), Arc<crate::modules::LoadError>>>
        + Send
        + Sync,
>;

impl AdminState {
    pub fn new(
        config: &Config,
        cluster: Cluster,
        metrics: Arc<Metrics>,
        builder: crate::build::Builder,
    ) -> AdminState {
        AdminState {
            cluster,
            metrics,
            node_name: config.node_name().into(),
            max_body_size: config.admin.max_body_size.0,
            builder,
            namespace_required: config.disable_default_namespace,
            warm: None,
            module_status: None,
        }
    }

    /// `GET /api/v1/module/{name}/status` answers from `status`.
    pub fn reporting(mut self, status: ModuleStatus) -> AdminState {
        self.module_status = Some(status);
        self
    }

    /// Module writes are compiled by `warm` on this node before they are written, so a request
    /// right after the write never waits for a compile here.
    pub fn warming(mut self, warm: Warmer) -> AdminState {
        self.warm = Some(warm);
        self
    }
}

/// Builds the admin Router for `cluster` under `config`'s access policy and body cap; modules
/// written through it are built by `builder`.
pub fn router(
    config: &Config,
    cluster: Cluster,
    metrics: Arc<Metrics>,
    builder: crate::build::Builder,
) -> Router {
    routes(config, AdminState::new(config, cluster, metrics, builder))
}

/// The admin Router over `state`, under `config`'s access policy and body cap.
pub fn routes(config: &Config, state: AdminState) -> Router {
    let max_body_size = state.max_body_size;
    let metrics = state.metrics.clone();
    let policy = Arc::new(AccessPolicy::from_config(config));
    // Every endpoint the API has, from the table its OpenAPI document is generated from.
    let mut router = Router::new();
    for endpoint in openapi::endpoints() {
        router = router.route(endpoint.path, endpoint.handler);
    }
    // Raft's own endpoints (key-authenticated) exist only where nodes replicate.
    if config.admin.replication.is_some() {
        router = router.nest_service("/api/v1/raft", state.cluster.rpc_router());
    }
    router
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(metrics, metrics::record))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(
            usize::try_from(max_body_size).unwrap_or(usize::MAX),
        ))
        .layer(middleware::from_fn_with_state(
            max_body_size,
            refuse_declared_oversize,
        ))
        .layer(middleware::from_fn_with_state(policy, auth::enforce))
        .with_state(state)
}

/// 413 at once for a request whose declared `Content-Length` is over the cap, before any of its
/// body is read (the body limit alone answers only once that much has arrived). Raft's own
/// endpoints are not admin requests: log batches and snapshots have their own, larger limit.
async fn refuse_declared_oversize(
    State(max): State<u64>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    if req.uri().path().starts_with("/api/v1/raft/") {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return AppError::PayloadTooLarge(max).into_response();
    }
    next.run(req).await
}

async fn healthz(State(state): State<AdminState>) -> Response {
    Json(views::Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        node: state.node_name.to_string(),
    })
    .into_response()
}

/// A hash of the last log entry applied on this node, as DGate shows its change hash: it
/// changes with every change applied, and nodes that applied the same agree.
fn change_hash((term, index): (u64, u64)) -> u64 {
    crate::cluster::fnv1a(term.to_le_bytes().into_iter().chain(index.to_le_bytes()))
}

/// `n` in base 36, as DGate writes its change hash.
fn base36(mut n: u64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// `GET /changelog`, as DGate answers it: `count` is the index of the last log entry applied
/// on this node (Raft's own entries included), `hash` its change hash, `latest` its id.
async fn changelog(State(state): State<AdminState>) -> Response {
    let (_, _, applied) = state.cluster.raft_state();
    Json(views::Changelog {
        count: applied.1,
        hash: base36(change_hash(applied)),
        latest: format!("{}-{}", applied.0, applied.1),
    })
    .into_response()
}

/// `GET /`: what DGate answers there, a line of text and the node's state in headers
/// (`X-DGate-ChangeHash`: see [`changelog`]).
async fn root(State(state): State<AdminState>) -> Response {
    let (raft, _, applied) = state.cluster.raft_state();
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/plain".to_string()),
            (
                axum::http::HeaderName::from_static("x-dgate-watchonly"),
                (raft == "Learner").to_string(),
            ),
            (
                axum::http::HeaderName::from_static("x-dgate-changehash"),
                change_hash(applied).to_string(),
            ),
            (
                axum::http::HeaderName::from_static("x-dgate-raft-state"),
                raft.to_string(),
            ),
        ],
        "DGate Admin API",
    )
        .into_response()
}

/// `GET /readyz`, with DGate's `X-Raft-State` and `X-Raft-Leader` headers.
async fn readyz(State(state): State<AdminState>) -> Response {
    let (raft, leader, _) = state.cluster.raft_state();
    let mut res = if state.cluster.is_ready() {
        Json(views::Ready { status: "ready" }).into_response()
    } else {
        AppError::Unavailable("not ready: the cluster has no leader".into()).into_response()
    };
    let headers = res.headers_mut();
    headers.insert("x-raft-state", axum::http::HeaderValue::from_static(raft));
    if let Some(v) = leader.and_then(|l| axum::http::HeaderValue::from_str(&l).ok()) {
        headers.insert("x-raft-leader", v);
    }
    res
}

async fn cluster_status(State(state): State<AdminState>) -> Response {
    Json(json!({ "status_code": 200, "data": state.cluster.status() })).into_response()
}

async fn cluster_member_change(
    state: &AdminState,
    body: Result<Json<MemberName>, axum::extract::rejection::JsonRejection>,
    change: fn(String) -> MembershipChange,
) -> Result<Response, AppError> {
    let Json(member) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    state.cluster.change_membership(change(member.name)).await?;
    Ok(Json(json!({ "status_code": 200, "data": state.cluster.status() })).into_response())
}

async fn cluster_join(
    State(state): State<AdminState>,
    body: Result<Json<NewMember>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    let Json(m) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    state
        .cluster
        .add_member(&m.name, &m.address, !m.watch_only)
        .await?;
    Ok(Json(json!({ "status_code": 200, "data": state.cluster.status() })).into_response())
}

async fn cluster_promote(
    State(state): State<AdminState>,
    body: Result<Json<MemberName>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    cluster_member_change(&state, body, MembershipChange::Promote).await
}

async fn cluster_leave(
    State(state): State<AdminState>,
    body: Result<Json<MemberName>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AppError> {
    cluster_member_change(&state, body, MembershipChange::Leave).await
}

async fn render_metrics(State(state): State<AdminState>) -> Response {
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("no admin endpoint at {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
