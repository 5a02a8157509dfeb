//! What the admin API answers, where it is not a resource: one type per shape, so the handlers
//! and the OpenAPI document ([`super::openapi`]) say the same thing.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// `GET /healthz`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    pub status: &'static str,
    /// dgate's version.
    pub version: &'static str,
    /// This node's name.
    pub node: String,
}

/// `GET /readyz` when the node is ready.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: &'static str,
}

/// `GET /changelog`, as DGate answers it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Changelog {
    /// The index of the last log entry applied on this node.
    pub count: u64,
    /// That entry's change hash, in base 36: nodes that applied the same agree.
    pub hash: String,
    /// That entry's id, `term-index`.
    pub latest: String,
}

/// `GET /api/v1/module/{name}/status`: whether this node runs the stored version.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ModuleReadiness {
    /// The node that answers.
    pub node: String,
    /// The stored component's hash; null while the module waits for what it imports.
    pub hash: Option<String>,
    /// Whether this node has that version compiled and ready to run.
    pub ready: bool,
    /// Why this node cannot run it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One kept version in `GET /api/v1/{kind}/{name}/history`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HistoryEntry {
    /// Counts up from 1 for each resource; never reused.
    pub version: u64,
    /// Whether the stored resource is this version.
    pub current: bool,
    /// Whether this version is the resource's deletion.
    pub deleted: bool,
    /// When it was written (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Who wrote it: `anonymous`, `key N`, a basic-auth user, or `dgate` (init_resources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// For modules: the start of the payload's hash, to tell versions apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The resource as this version wrote it (absent for a deletion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
}

/// `POST /api/v1/{kind}/{name}/rollback`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RolledBack {
    /// The resource as now stored.
    pub resource: Value,
    /// The new version the rollback made.
    pub version: u64,
    /// The version it restored.
    pub restored: u64,
}

/// `{"name": ...}` for `/api/v1/cluster/promote` and `/leave`.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberName {
    /// The member's node name.
    pub name: String,
}

/// `/api/v1/cluster/join`: a node to add.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// Its node name.
    pub name: String,
    /// Its admin API URL, e.g. `http://10.0.0.4:9080`.
    pub address: String,
    /// Join as a learner that follows the log but does not vote.
    #[serde(default)]
    pub watch_only: bool,
}

/// The body of `DELETE /api/v1/{kind}`; other fields (the whole resource, say) are ignored.
#[derive(Debug, serde::Deserialize, JsonSchema)]
pub struct DeleteBody {
    /// The resource's name.
    #[serde(default)]
    pub name: Option<String>,
    /// A document's id.
    #[serde(default)]
    pub id: Option<String>,
    /// Its namespace (`default` when absent).
    #[serde(default)]
    pub namespace: Option<String>,
    /// A document's collection.
    #[serde(default)]
    pub collection: Option<String>,
}

/// Every failure: `{"error": "...", "status": N}`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    pub error: String,
    /// The HTTP status, repeated.
    pub status: u16,
}
