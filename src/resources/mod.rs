//! The eight resource kinds, their DGate-compatible JSON shapes, field validation, and the
//! [`ChangeCommand`] that the cluster layer replicates through Raft and applies.
//!
//! This module does no I/O. Field rules that need nothing but the resource itself live in
//! [`validate`]; rules that need the rest of the state (a route's service must exist, a service in use
//! must not be deleted) are checked by the state machine when it applies a command.

mod command;
mod types;
pub mod validate;

#[cfg(test)]
mod tests;

pub use command::{Applied, ChangeCommand, ChangeOutcome, SERVED, Stamp};
pub use types::{
    Collection, CollectionType, DEFAULT_NAMESPACE, Document, Domain, Module, ModuleLimits,
    ModuleType, Namespace, REDACTED, Resource, ResourceKey, Route, Secret, Service, Visibility,
};

use std::fmt;
use std::str::FromStr;

/// The resource kinds, in the order the admin API and the CLI list them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Namespace,
    Service,
    Route,
    Module,
    Domain,
    Collection,
    Document,
    Secret,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Namespace,
        Kind::Service,
        Kind::Route,
        Kind::Module,
        Kind::Domain,
        Kind::Collection,
        Kind::Document,
        Kind::Secret,
    ];

    /// The JSON Schema of a resource of this kind as the admin API reads it (JSON Schema
    /// 2020-12; field descriptions are the types' doc comments).
    pub fn schema(self) -> serde_json::Value {
        use schema_of as of;
        match self {
            Kind::Namespace => of::<Namespace>(),
            Kind::Service => of::<Service>(),
            Kind::Route => of::<Route>(),
            Kind::Module => of::<Module>(),
            Kind::Domain => of::<Domain>(),
            Kind::Collection => of::<Collection>(),
            Kind::Document => of::<Document>(),
            Kind::Secret => of::<Secret>(),
        }
    }

    /// The path segment under `/api/v1` and the storage key prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "namespace",
            Kind::Service => "service",
            Kind::Route => "route",
            Kind::Module => "module",
            Kind::Domain => "domain",
            Kind::Collection => "collection",
            Kind::Document => "document",
            Kind::Secret => "secret",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown resource kind {s:?}"))
    }
}

/// The JSON Schema of `T` as it is read (JSON Schema 2020-12, named parts under `$defs`): what
/// [`Kind::schema`] and `dgate schema config` give.
pub fn schema_of<T: schemars::JsonSchema>() -> serde_json::Value {
    schemars::generate::SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// Now, as the `createdAt`/`updatedAt` the server stamps on documents and secrets (RFC 3339, ms).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
