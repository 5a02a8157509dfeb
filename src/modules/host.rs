//! The host services a module reaches outside its sandbox — documents, a cache, outbound HTTP and
//! the log — in one place, used alike by the gateway and by `dgate module run`, so both apply the
//! same limits and checks. Only where documents are stored differs: that is the [`Services`]
//! trait, which the composition root (`src/server`) implements over the cluster and
//! [`LocalDocuments`](super::LocalDocuments) implements in memory.
//!
//! Every key a module can touch is built here from the module's own namespace: no module reaches
//! another namespace's documents or cache, or any secret.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use super::bindings::{Document, FetchRequest, FetchResponse, HostError, LogLevel};
use super::cache::Cache;
use super::egress::Egress;
use super::fetch::Fetcher;
use super::local::LocalDocuments;
use crate::config::ModulesConfig;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The most documents one `list` returns.
pub const MAX_LIST: u32 = 1000;

/// Where modules' documents live. Calls name the module's namespace; the collection and id have
/// been checked to be non-empty, and data to be JSON.
pub trait Services: Send + Sync + 'static {
    fn get_document(
        &self,
        namespace: &str,
        collection: &str,
        id: &str,
    ) -> BoxFuture<Result<Option<Document>, HostError>>;
    fn set_document(
        &self,
        namespace: &str,
        collection: &str,
        id: &str,
        data: serde_json::Value,
    ) -> BoxFuture<Result<(), HostError>>;
    /// Whether there was a document to delete.
    fn delete_document(
        &self,
        namespace: &str,
        collection: &str,
        id: &str,
    ) -> BoxFuture<Result<bool, HostError>>;
    fn list_documents(
        &self,
        namespace: &str,
        collection: &str,
        limit: usize,
        offset: usize,
    ) -> BoxFuture<Result<Vec<Document>, HostError>>;
    /// A collection as the admin API shows it.
    fn get_collection(
        &self,
        namespace: &str,
        name: &str,
    ) -> BoxFuture<Result<Option<serde_json::Value>, HostError>>;
    /// Creates or replaces `collection` (checked as the admin API checks it) in `namespace`.
    fn set_collection(
        &self,
        namespace: &str,
        collection: crate::resources::Collection,
    ) -> BoxFuture<Result<(), HostError>>;
    /// Whether there was a collection to delete; one with documents is refused.
    fn delete_collection(&self, namespace: &str, name: &str) -> BoxFuture<Result<bool, HostError>>;
}

/// Where a module's `console.*` lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTo {
    /// The gateway's log, with the namespace, module and route.
    Tracing,
    /// Standard error, one `[level] message` line each (`dgate module run`).
    Stderr,
}

/// What all the modules of one node share: the documents' store, one cache per namespace, one
/// outbound HTTP client.
pub struct HostEnv {
    services: Arc<dyn Services>,
    caches: Mutex<HashMap<String, Arc<Cache>>>,
    fetcher: Fetcher,
    egress: Arc<Egress>,
    log: LogTo,
}

impl HostEnv {
    /// `config` gives the fetch timeout and the largest body a fetch reads; `egress` where
    /// fetches may go.
    pub fn new(
        services: Arc<dyn Services>,
        config: &ModulesConfig,
        egress: Egress,
        log: LogTo,
    ) -> Arc<HostEnv> {
        let egress = Arc::new(egress);
        Arc::new(HostEnv {
            services,
            caches: Mutex::default(),
            fetcher: Fetcher::new(
                egress.clone(),
                config.fetch_timeout.as_duration(),
                usize::try_from(config.max_body_size.0).unwrap_or(usize::MAX),
            ),
            egress,
            log,
        })
    }

    /// Where modules' outbound requests may go.
    pub fn egress(&self) -> &Egress {
        &self.egress
    }

    /// The host of module `module` in `namespace`.
    pub fn host(self: &Arc<Self>, namespace: &str, module: &str) -> Arc<Host> {
        let cache = self
            .caches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(namespace.to_string())
            .or_default()
            .clone();
        Arc::new(Host {
            env: self.clone(),
            namespace: namespace.to_string(),
            module: module.to_string(),
            cache,
        })
    }
}

/// The host services of one module.
pub struct Host {
    env: Arc<HostEnv>,
    namespace: String,
    module: String,
    cache: Arc<Cache>,
}

/// A future that is ready with `v`: what a [`Services`] answers when it needs no waiting.
pub fn ready<T: Send + 'static>(v: T) -> BoxFuture<T> {
    Box::pin(std::future::ready(v))
}

/// Refuses an empty collection or id before any store sees it.
fn names(collection: &str, id: Option<&str>) -> Result<(), HostError> {
    if collection.is_empty() || id.is_some_and(str::is_empty) {
        return Err(HostError::Invalid(
            "collection and id must not be empty".into(),
        ));
    }
    Ok(())
}

impl Host {
    /// A host of its own with documents in memory, on the config's defaults (for loading a
    /// module to look at it, and for tests).
    pub fn local() -> Arc<Host> {
        HostEnv::new(
            Arc::new(LocalDocuments::default()),
            &ModulesConfig::default(),
            Egress::new(&Default::default(), Vec::new()),
            LogTo::Tracing,
        )
        .host(crate::resources::DEFAULT_NAMESPACE, "local")
    }

    /// A `console.*` line from a hook running for `route` (when the caller said which).
    pub fn log(&self, level: LogLevel, route: Option<&str>, message: &str) {
        let (ns, module, route) = (&self.namespace, &self.module, route.unwrap_or(""));
        if self.env.log == LogTo::Stderr {
            eprintln!("[{}] {message}", level_name(level));
            return;
        }
        match level {
            LogLevel::Debug => {
                tracing::debug!(namespace = %ns, module = %module, route = %route, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(namespace = %ns, module = %module, route = %route, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(namespace = %ns, module = %module, route = %route, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(namespace = %ns, module = %module, route = %route, "{message}")
            }
        }
    }

    pub fn fetch(&self, req: FetchRequest) -> BoxFuture<Result<FetchResponse, HostError>> {
        let env = self.env.clone();
        Box::pin(async move { env.fetcher.fetch(req).await })
    }

    pub fn get_document(
        &self,
        collection: String,
        id: String,
    ) -> BoxFuture<Result<Option<Document>, HostError>> {
        if let Err(e) = names(&collection, Some(&id)) {
            return ready(Err(e));
        }
        self.env
            .services
            .get_document(&self.namespace, &collection, &id)
    }

    pub fn set_document(
        &self,
        collection: String,
        id: String,
        data: String,
    ) -> BoxFuture<Result<(), HostError>> {
        if let Err(e) = names(&collection, Some(&id)) {
            return ready(Err(e));
        }
        let data: serde_json::Value = match serde_json::from_str(&data) {
            Ok(d) => d,
            Err(e) => {
                return ready(Err(HostError::Invalid(format!(
                    "document data is not JSON: {e}"
                ))));
            }
        };
        self.env
            .services
            .set_document(&self.namespace, &collection, &id, data)
    }

    pub fn delete_document(
        &self,
        collection: String,
        id: String,
    ) -> BoxFuture<Result<bool, HostError>> {
        if let Err(e) = names(&collection, Some(&id)) {
            return ready(Err(e));
        }
        self.env
            .services
            .delete_document(&self.namespace, &collection, &id)
    }

    /// At most [`MAX_LIST`] documents, from `offset`.
    pub fn list_documents(
        &self,
        collection: String,
        limit: u32,
        offset: u32,
    ) -> BoxFuture<Result<Vec<Document>, HostError>> {
        if let Err(e) = names(&collection, None) {
            return ready(Err(e));
        }
        self.env.services.list_documents(
            &self.namespace,
            &collection,
            limit.min(MAX_LIST) as usize,
            offset as usize,
        )
    }

    pub fn get_collection(
        &self,
        name: String,
    ) -> BoxFuture<Result<Option<serde_json::Value>, HostError>> {
        if let Err(e) = names(&name, None) {
            return ready(Err(e));
        }
        self.env.services.get_collection(&self.namespace, &name)
    }

    /// `json` is the collection as the admin API takes it; its namespace, if it names one,
    /// must be the module's.
    pub fn set_collection(&self, json: String) -> BoxFuture<Result<(), HostError>> {
        let parsed = crate::resources::Resource::from_json(
            crate::resources::Kind::Collection,
            json.as_bytes(),
        );
        let mut collection = match parsed {
            Ok(crate::resources::Resource::Collection(c)) => c,
            Ok(_) => return ready(Err(HostError::Invalid("not a collection".into()))),
            Err(e) => return ready(Err(HostError::Invalid(format!("collection: {e}")))),
        };
        if !collection.namespace.is_empty() && collection.namespace != self.namespace {
            return ready(Err(HostError::NotAllowed(format!(
                "a module writes collections of its own namespace ({:?}), not {:?}",
                self.namespace, collection.namespace
            ))));
        }
        collection.namespace = self.namespace.clone();
        let mut resource = crate::resources::Resource::Collection(collection);
        if let Err(e) = crate::resources::validate::resource(&mut resource) {
            return ready(Err(HostError::Invalid(e.to_string())));
        }
        let crate::resources::Resource::Collection(collection) = resource else {
            return ready(Err(HostError::Invalid("not a collection".into())));
        };
        self.env
            .services
            .set_collection(&self.namespace, collection)
    }

    pub fn delete_collection(&self, name: String) -> BoxFuture<Result<bool, HostError>> {
        if let Err(e) = names(&name, None) {
            return ready(Err(e));
        }
        self.env.services.delete_collection(&self.namespace, &name)
    }

    /// The cache of the module's namespace.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}
