//! The resource structs. Field names are DGate's JSON names (camelCase). As in DGate, a field
//! the struct does not have is ignored; what DGate sends for "none" (`""` for a certificate, a
//! module type or a visibility) means the default.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Kind;
use crate::units::{ByteSize, Millis};

/// The namespace every resource lands in when the request names none.
pub const DEFAULT_NAMESPACE: &str = "default";
/// What the API shows in place of a secret value or a private key.
pub const REDACTED: &str = "**redacted**";

fn is_false(b: &bool) -> bool {
    !*b
}

/// `""` or `null` as the type's default; anything else as the type reads it.
fn empty_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::de::DeserializeOwned,
{
    match Value::deserialize(d)? {
        Value::Null => Ok(T::default()),
        Value::String(s) if s.is_empty() => Ok(T::default()),
        v => T::deserialize(v).map_err(serde::de::Error::custom),
    }
}

/// `null` (Go's empty slice) as the type's default.
fn null_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `""` or `null` as none.
fn empty_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    /// The namespace's name.
    pub name: String,
    /// Free-form labels.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub tags: Vec<String>,
}

/// An upstream: one or more URLs and how to talk to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// The resource's name, unique in its namespace.
    pub name: String,
    /// The namespace it belongs to (`default` when absent).
    #[serde(default)]
    pub namespace: String,
    /// The upstream URLs (http or https); requests are spread over them.
    pub urls: Vec<String>,
    /// How many times a failed upstream request is tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::units::nanos"
    )]
    #[schemars(with = "crate::units::nanos::Schema")]
    /// How long retries may take in all.
    pub retry_timeout: Option<Millis>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::units::nanos"
    )]
    #[schemars(with = "crate::units::nanos::Schema")]
    /// How long connecting to the upstream may take.
    pub connect_timeout: Option<Millis>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::units::nanos"
    )]
    #[schemars(with = "crate::units::nanos::Schema")]
    /// How long the upstream may take to answer.
    pub request_timeout: Option<Millis>,
    /// Accept any certificate from an https upstream.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_skip_verify: bool,
    /// Speak HTTP/2 only to the upstream (h2c for http URLs).
    #[serde(default, skip_serializing_if = "is_false")]
    pub http2_only: bool,
    /// Do not add DGate's headers to requests and responses.
    #[serde(default, rename = "hideDGateHeaders", skip_serializing_if = "is_false")]
    pub hide_dgate_headers: bool,
    /// Drop the query string from requests sent upstream.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_query_params: bool,
    /// Free-form labels.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// The resource's name, unique in its namespace.
    pub name: String,
    /// The namespace it belongs to (`default` when absent).
    #[serde(default)]
    pub namespace: String,
    /// Path patterns the route answers: `/users/{id}`, `/static/*`.
    pub paths: Vec<String>,
    /// HTTP methods the route answers (`*` for any).
    pub methods: Vec<String>,
    /// Send the client's Host header upstream instead of the upstream's.
    #[serde(default)]
    pub preserve_host: bool,
    /// Remove the matched path prefix before proxying.
    #[serde(default)]
    pub strip_path: bool,
    /// The service (in the same namespace) requests are proxied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Modules that handle the route's requests: the first runs, the others it may import.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub modules: Vec<String>,
    /// Free-form labels.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub tags: Vec<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ModuleType {
    Javascript,
    /// DGate's default: a module whose type is absent or `""`.
    #[default]
    Typescript,
    Wasm,
}

impl ModuleType {
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleType::Javascript => "javascript",
            ModuleType::Typescript => "typescript",
            ModuleType::Wasm => "wasm",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Module {
    /// The resource's name, unique in its namespace.
    pub name: String,
    /// The namespace it belongs to (`default` when absent).
    #[serde(default)]
    pub namespace: String,
    /// Base64 of the module's source (JS/TS) or of a compiled component (wasm).
    pub payload: String,
    /// How the payload is written (`typescript` when absent or `""`).
    #[serde(default, deserialize_with = "empty_is_default")]
    pub module_type: ModuleType,
    /// Per-call limits for this module's hooks; what it leaves out comes from the gateway's
    /// `modules:` config.
    #[serde(default, skip_serializing_if = "ModuleLimits::is_empty")]
    pub limits: ModuleLimits,
    /// Free-form labels.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub tags: Vec<String>,
    /// Base64 of the component built from a JS/TS payload by the node that took the write; it is
    /// what the cluster replicates and the proxies run. Set by the server, never shown by the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub component: Option<String>,
    /// The source files a wasm payload was built from (file name → text), kept so that they
    /// can be read back (`dgate deploy` sends them; `dgate mod get NAME --source`).
    #[serde(
        default,
        skip_serializing_if = "std::collections::BTreeMap::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub sources: std::collections::BTreeMap<String, String>,
}

/// A module's own limits per hook call (a dgate extension of DGate's module resource).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModuleLimits {
    /// Wasm fuel: about one unit per instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Linear memory; at most the gateway's `modules.memory` (the size of an instance slot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// Wall time, including time spent waiting on `fetch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Millis>,
    /// Outbound `fetch` requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fetches: Option<u32>,
}

impl ModuleLimits {
    pub fn is_empty(&self) -> bool {
        *self == ModuleLimits::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    /// The resource's name, unique in its namespace.
    pub name: String,
    /// The namespace it belongs to (`default` when absent).
    #[serde(default)]
    pub namespace: String,
    /// Host patterns (`*.example.com`, or a regex between slashes) routed to the namespace.
    pub patterns: Vec<String>,
    /// Which domain wins when several match a host (highest first).
    #[serde(default)]
    pub priority: i64,
    /// PEM certificate chain for TLS on this domain's hosts; `""` is none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_is_none"
    )]
    pub cert: Option<String>,
    /// PEM private key, shown as [`REDACTED`] by the API; `""` is none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_is_none"
    )]
    pub key: Option<String>,
    /// Free-form labels.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub tags: Vec<String>,
}

/// Who may read a collection's documents: `private` ones only modules, not the admin API.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// DGate's default: a visibility that is absent or `""`.
    #[default]
    Public,
    Private,
}

/// What a collection holds; DGate's only working kind is `document`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CollectionType {
    #[default]
    Document,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Collection {
    /// The resource's name, unique in its namespace.
    pub name: String,
    /// The namespace it belongs to (`default` when absent).
    #[serde(default)]
    pub namespace: String,
    /// A JSON Schema every document of the collection must satisfy. `{}` accepts anything.
    #[serde(default = "empty_schema", deserialize_with = "null_is_empty_schema")]
    pub schema: Value,
    /// `private`: only modules read the documents, not the admin API.
    #[serde(default, deserialize_with = "empty_is_default")]
    pub visibility: Visibility,
    /// What the collection holds (`document`).
    #[serde(default, rename = "type", deserialize_with = "empty_is_default")]
    pub kind: CollectionType,
    /// Free-form labels.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub tags: Vec<String>,
}

fn empty_schema() -> Value {
    Value::Object(Default::default())
}

/// `null` (DGate's "no schema") as the schema that accepts anything.
fn null_is_empty_schema<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => empty_schema(),
        v => v,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// The document's id, unique in its collection.
    pub id: String,
    /// The namespace it belongs to (`default` when absent).
    #[serde(default)]
    pub namespace: String,
    /// The collection (in the same namespace) that holds it.
    pub collection: String,
    /// The document: any JSON value its collection's schema accepts.
    #[serde(default)]
    pub data: Value,
    /// Set by the server (RFC 3339); ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub created_at: Option<String>,
    /// Set by the server (RFC 3339); ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// The resource's name, unique in its namespace.
    pub name: String,
    /// The namespace it belongs to (`default` when absent).
    #[serde(default)]
    pub namespace: String,
    /// The secret value; shown as [`REDACTED`] by the API.
    pub data: String,
    /// Free-form labels.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub tags: Vec<String>,
    /// Set by the server (RFC 3339); ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub created_at: Option<String>,
    /// Set by the server (RFC 3339); ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("readOnly" = true))]
    pub updated_at: Option<String>,
}

/// Any resource, tagged with its kind: the payload of a replicated put.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "spec", rename_all = "lowercase")]
pub enum Resource {
    Namespace(Namespace),
    Service(Service),
    Route(Route),
    Module(Module),
    Domain(Domain),
    Collection(Collection),
    Document(Document),
    Secret(Secret),
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Namespace(_) => Kind::Namespace,
            Resource::Service(_) => Kind::Service,
            Resource::Route(_) => Kind::Route,
            Resource::Module(_) => Kind::Module,
            Resource::Domain(_) => Kind::Domain,
            Resource::Collection(_) => Kind::Collection,
            Resource::Document(_) => Kind::Document,
            Resource::Secret(_) => Kind::Secret,
        }
    }

    /// Where this resource is stored: kind, namespace, (collection,) name.
    pub fn key(&self) -> ResourceKey {
        let (namespace, name) = match self {
            Resource::Namespace(r) => (String::new(), &r.name),
            Resource::Service(r) => (r.namespace.clone(), &r.name),
            Resource::Route(r) => (r.namespace.clone(), &r.name),
            Resource::Module(r) => (r.namespace.clone(), &r.name),
            Resource::Domain(r) => (r.namespace.clone(), &r.name),
            Resource::Collection(r) => (r.namespace.clone(), &r.name),
            Resource::Document(r) => (r.namespace.clone(), &r.id),
            Resource::Secret(r) => (r.namespace.clone(), &r.name),
        };
        let collection = match self {
            Resource::Document(d) => Some(d.collection.clone()),
            _ => None,
        };
        ResourceKey {
            kind: self.kind(),
            namespace,
            collection,
            name: name.clone(),
        }
    }

    /// Parses a JSON body as a resource of `kind`.
    pub fn from_json(kind: Kind, body: &[u8]) -> Result<Resource, serde_json::Error> {
        Ok(match kind {
            Kind::Namespace => Resource::Namespace(serde_json::from_slice(body)?),
            Kind::Service => Resource::Service(serde_json::from_slice(body)?),
            Kind::Route => Resource::Route(serde_json::from_slice(body)?),
            Kind::Module => Resource::Module(serde_json::from_slice(body)?),
            Kind::Domain => Resource::Domain(serde_json::from_slice(body)?),
            Kind::Collection => Resource::Collection(serde_json::from_slice(body)?),
            Kind::Document => Resource::Document(serde_json::from_slice(body)?),
            Kind::Secret => Resource::Secret(serde_json::from_slice(body)?),
        })
    }

    /// The JSON the API returns: secrets and private keys replaced by [`REDACTED`].
    pub fn to_public_json(&self) -> Value {
        let mut shown = self.clone();
        match &mut shown {
            Resource::Secret(s) => s.data = REDACTED.to_string(),
            Resource::Domain(d) if d.key.is_some() => d.key = Some(REDACTED.to_string()),
            Resource::Module(m) => m.component = None,
            _ => {}
        }
        shown.spec_json()
    }

    /// The resource's own JSON, without the kind tag.
    pub fn spec_json(&self) -> Value {
        let v = match self {
            Resource::Namespace(r) => serde_json::to_value(r),
            Resource::Service(r) => serde_json::to_value(r),
            Resource::Route(r) => serde_json::to_value(r),
            Resource::Module(r) => serde_json::to_value(r),
            Resource::Domain(r) => serde_json::to_value(r),
            Resource::Collection(r) => serde_json::to_value(r),
            Resource::Document(r) => serde_json::to_value(r),
            Resource::Secret(r) => serde_json::to_value(r),
        };
        // Serializing these plain structs cannot fail: every field is a string, number, bool or Value.
        v.unwrap_or(Value::Null)
    }
}

/// Identifies one stored resource. Namespaces have an empty `namespace`; only documents have a
/// `collection`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceKey {
    pub kind: Kind,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    pub name: String,
}

impl ResourceKey {
    pub fn namespace(name: &str) -> Self {
        Self {
            kind: Kind::Namespace,
            namespace: String::new(),
            collection: None,
            name: name.to_string(),
        }
    }

    pub fn new(kind: Kind, namespace: &str, name: &str) -> Self {
        Self {
            kind,
            namespace: namespace.to_string(),
            collection: None,
            name: name.to_string(),
        }
    }

    pub fn document(namespace: &str, collection: &str, id: &str) -> Self {
        Self {
            kind: Kind::Document,
            namespace: namespace.to_string(),
            collection: Some(collection.to_string()),
            name: id.to_string(),
        }
    }
}

impl std::fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.kind, &self.collection) {
            (Kind::Namespace, _) => write!(f, "namespace {:?}", self.name),
            (Kind::Document, Some(c)) => write!(
                f,
                "document {:?} in collection {:?} of namespace {:?}",
                self.name, c, self.namespace
            ),
            (kind, _) => write!(
                f,
                "{kind} {:?} in namespace {:?}",
                self.name, self.namespace
            ),
        }
    }
}
