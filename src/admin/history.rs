//! `/api/v1/<kind>/{name}/history` and `/rollback`: the kept versions of a module or route
//! (`storage.history` of them, replicated with the rest of the state), and a write that
//! restores one of them.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::resources::{
    Scope, audit, key_from, kind, ok_json, public_json, require_namespace, scope, write,
};
use super::views::{HistoryEntry, RolledBack};
use super::{AdminState, AppError};
use crate::cluster::VERSIONED;
use crate::resources::{ChangeOutcome, ResourceKey};
use crate::storage::Version;

/// `?to=` on a rollback.
#[derive(Debug, Default, Deserialize)]
pub struct RollbackTo {
    to: Option<u64>,
}

/// The key of a versioned resource named in the path, or a 4xx saying why not.
fn versioned_key(
    state: &AdminState,
    kind_s: &str,
    name: String,
    scope: &Scope,
) -> Result<ResourceKey, AppError> {
    let kind = kind(kind_s)?;
    if !VERSIONED.contains(&kind) {
        return Err(AppError::BadRequest(format!(
            "{kind} has no history: only modules and routes keep their versions"
        )));
    }
    require_namespace(state, scope.namespace.as_deref())?;
    key_from(kind, name, scope.namespace.clone(), None)
}

/// `key`'s kept versions (oldest first), or 404 when none is kept.
fn kept(state: &AdminState, key: &ResourceKey) -> Result<Vec<Version>, AppError> {
    let versions = state.cluster.versions(key)?;
    if versions.is_empty() {
        return Err(AppError::NotFound(format!(
            "{key} has no kept versions (it was never written, or storage.history is 0)"
        )));
    }
    Ok(versions)
}

/// `GET /api/v1/<kind>/{name}/history?namespace=`: the kept versions, newest first. Module
/// payloads and sources are left out unless `?payload=true`.
pub async fn history(
    State(state): State<AdminState>,
    Path((kind_s, name)): Path<(String, String)>,
    q: Result<Query<Scope>, QueryRejection>,
) -> Result<Response, AppError> {
    let scope = scope(q)?;
    let key = versioned_key(&state, &kind_s, name, &scope)?;
    let versions = kept(&state, &key)?;
    let current = current_version(&state, &key, &versions)?;
    let items: Vec<Value> = versions
        .iter()
        .rev()
        .map(|v| {
            let digest = match &v.resource {
                // Tells versions apart at a glance.
                Some(crate::resources::Resource::Module(m)) => {
                    Some(crate::modules::content_hash(m.payload.as_bytes())[..12].to_string())
                }
                _ => None,
            };
            json!(HistoryEntry {
                version: v.version,
                current: Some(v.version) == current,
                deleted: v.resource.is_none(),
                at: v.at.clone(),
                by: v.by.clone(),
                digest,
                resource: v.resource.as_ref().map(|r| public_json(r, scope.payload)),
            })
        })
        .collect();
    let n = items.len();
    Ok(ok_json(StatusCode::OK, Value::Array(items), Some(n)))
}

/// The version the stored resource is: the newest kept one, unless that is a delete.
fn current_version(
    state: &AdminState,
    key: &ResourceKey,
    versions: &[Version],
) -> Result<Option<u64>, AppError> {
    let exists = state.cluster.get(key)?.is_some();
    Ok(versions
        .last()
        .filter(|v| exists && v.resource.is_some())
        .map(|v| v.version))
}

/// `POST /api/v1/<kind>/{name}/rollback?namespace=&to=N`: writes version N again (without
/// `to`, the newest kept version before the current one; after a delete, the version that
/// was deleted). The rollback is a write like any other: checked, built, replicated, and
/// kept as a new version.
pub async fn rollback(
    State(state): State<AdminState>,
    Path((kind_s, name)): Path<(String, String)>,
    q: Result<Query<Scope>, QueryRejection>,
    to: Result<Query<RollbackTo>, QueryRejection>,
) -> Result<Response, AppError> {
    let scope = scope(q)?;
    let Query(to) = to.map_err(|e| AppError::BadRequest(format!("to: {}", e.body_text())))?;
    let key = versioned_key(&state, &kind_s, name, &scope)?;
    let versions = kept(&state, &key)?;
    let current = current_version(&state, &key, &versions)?;
    let target = match to.to {
        Some(n) => versions.iter().find(|v| v.version == n).ok_or_else(|| {
            let (first, last) = (versions[0].version, versions[versions.len() - 1].version);
            AppError::NotFound(format!(
                "version {n} of {key} is not kept (kept: {first} to {last})"
            ))
        })?,
        None => versions
            .iter()
            .rev()
            .find(|v| v.resource.is_some() && Some(v.version) != current)
            .ok_or_else(|| {
                AppError::Conflict(format!(
                    "{key} has no earlier version to roll back to; see its history"
                ))
            })?,
    };
    if Some(target.version) == current {
        return Err(AppError::Conflict(format!(
            "{key} is already at version {}",
            target.version
        )));
    }
    let Some(resource) = target.resource.clone() else {
        return Err(AppError::Conflict(format!(
            "version {} of {key} is its deletion: roll back to a version before it, or delete it",
            target.version
        )));
    };
    let outcome = write(&state, resource).await?;
    audit(&state, &outcome, Some(target.version));
    let (status, stored) = match outcome {
        ChangeOutcome::Created(r) => (StatusCode::CREATED, r),
        ChangeOutcome::Updated(r) => (StatusCode::OK, r),
        _ => {
            return Err(AppError::Internal(
                "a rollback was applied as a delete".into(),
            ));
        }
    };
    let version = state.cluster.store().last_version(&key)?;
    let shown = public_json(&stored, false);
    Ok(ok_json(
        status,
        json!(RolledBack {
            resource: shown,
            version,
            restored: target.version,
        }),
        None,
    ))
}
