//! Modules: running users' compiled components, shared by the proxy and `dgate module run`.
//!
//! This layer knows neither the proxy nor the cluster. What modules reach outside the sandbox
//! goes through [`Host`] (documents, cache, fetch, log), whose document store is the
//! [`Services`] trait: the composition root (`src/server`) implements it over the cluster and
//! hands it in; `dgate module run` uses [`LocalDocuments`].
//!
//! - `bindings`: the one `bindgen!` of `wit/dgate.wit`.
//! - `engine`, `compile`, `check`: loading a component (checked, compiled once, cached on disk).
//! - `instance`: a module and its instances; the five hook calls under hard limits (`limits`).
//! - `call`: what one call works on (`Io`); `state`: the store's data and the host imports.
//! - `host`, `fetch`, `cache`, `local`: the host services; `egress`: where fetches may go.
//! - `pool`: the modules of a node's routes, their idle instances and call limits.
//! - `offload`: long hook calls leave the proxy's threads; `metrics`: per-module counters.
//! - `ticker`: the epoch clock of the wall-time limit.

mod bindings;
mod cache;
mod call;
mod check;
mod compile;
mod egress;
mod engine;
mod error;
mod fetch;
mod host;
mod instance;
mod limits;
mod local;
mod metrics;
mod offload;
mod pool;
mod state;
mod ticker;

pub use bindings::{
    Document, FetchRequest, FetchResponse, Field, HeaderEdit, Hook, HookError, HostError, LogLevel,
    RequestChanges, ResponseChanges,
};
pub use cache::Cache;
pub use call::{CallInfo, EditError, Io, LazyBody, RouteInfo, apply_edits, header_pairs};
pub use check::check_component;
pub use compile::compiler_main;
pub use egress::{Egress, EgressError, non_public};
pub use engine::{Engine, EngineOptions, content_hash};
pub use error::{CallError, LoadError};
pub use host::{BoxFuture, Host, HostEnv, LogTo, MAX_LIST, Services, ready};
pub use instance::{Instance, Module};
pub use limits::Limits;
pub use local::{LocalDocuments, SeedError};
pub use offload::{Gone, Offload};
pub use pool::{Lease, Loaded, ModuleSet, ModuleSource, Readiness};
