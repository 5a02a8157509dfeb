//! The host services modules get on the gateway: documents of the module's own namespace through
//! the cluster (the same state machine rules as the admin API: schemas, references), a cache per
//! namespace, outbound HTTP with a timeout, and the gateway's log. Nothing reaches another
//! namespace or any secret: every key is built here from the module's namespace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cluster::raft_store::RefusalKind;
use crate::cluster::{Cluster, Rejected};
use crate::modules::host::{BoxFuture, Services};
use crate::modules::{Cache, Document, FetchRequest, FetchResponse, HostError, LogLevel};
use crate::resources::{ChangeCommand, ChangeOutcome, Kind, Resource, ResourceKey};

/// The caches of all namespaces, made on first use.
#[derive(Default)]
pub struct Caches {
    by_namespace: Mutex<HashMap<String, Arc<Cache>>>,
}

impl Caches {
    pub fn for_namespace(&self, namespace: &str) -> Arc<Cache> {
        self.by_namespace
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(namespace.to_string())
            .or_default()
            .clone()
    }
}

/// Services for the modules of one namespace.
pub struct GatewayServices {
    cluster: Cluster,
    namespace: String,
    module: String,
    cache: Arc<Cache>,
    fetch_timeout: Duration,
}

impl GatewayServices {
    pub fn new(
        cluster: Cluster,
        namespace: &str,
        module: &str,
        caches: &Caches,
        fetch_timeout: Duration,
    ) -> Self {
        GatewayServices {
            cluster,
            namespace: namespace.to_string(),
            module: module.to_string(),
            cache: caches.for_namespace(namespace),
            fetch_timeout,
        }
    }

    fn document_key(&self, collection: &str, id: &str) -> ResourceKey {
        ResourceKey {
            kind: Kind::Document,
            namespace: self.namespace.clone(),
            collection: Some(collection.to_string()),
            name: id.to_string(),
        }
    }

    fn collection_exists(&self, collection: &str) -> Result<(), HostError> {
        let key = ResourceKey {
            kind: Kind::Collection,
            namespace: self.namespace.clone(),
            collection: None,
            name: collection.to_string(),
        };
        match self.cluster.store().get(&key) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(HostError::NotFound(format!(
                "collection {collection:?} does not exist in namespace {:?}",
                self.namespace
            ))),
            Err(e) => Err(HostError::Failed(format!("storage: {e}"))),
        }
    }
}

fn to_document(r: Resource) -> Option<Document> {
    match r {
        Resource::Document(d) => Some(Document {
            data: d.data.to_string(),
            id: d.id,
            collection: d.collection,
        }),
        _ => None,
    }
}

fn host_error(e: Rejected) -> HostError {
    match e {
        Rejected::Invalid(i) => HostError::Invalid(i.to_string()),
        Rejected::NotFound(k) => HostError::NotFound(format!("{k} not found")),
        Rejected::MissingReference(m) => HostError::NotFound(m),
        Rejected::Conflict(m) => HostError::Invalid(m),
        Rejected::Refused { kind, message } => match kind {
            RefusalKind::NotFound | RefusalKind::MissingReference => HostError::NotFound(message),
            RefusalKind::Invalid | RefusalKind::Conflict => HostError::Invalid(message),
        },
        Rejected::Storage(s) => HostError::Failed(format!("storage: {s}")),
        Rejected::Internal(m) | Rejected::Unavailable(m) => HostError::Failed(m),
    }
}

impl Services for GatewayServices {
    fn log(&self, level: LogLevel, route: Option<&str>, message: &str) {
        let (ns, module, route) = (&self.namespace, &self.module, route.unwrap_or(""));
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

    fn fetch(&self, req: FetchRequest) -> BoxFuture<Result<FetchResponse, HostError>> {
        Box::pin(crate::modules::host::fetch_with_timeout(
            req,
            self.fetch_timeout,
        ))
    }

    fn get_document(
        &self,
        collection: String,
        id: String,
    ) -> BoxFuture<Result<Option<Document>, HostError>> {
        let result = self.collection_exists(&collection).and_then(|()| {
            self.cluster
                .store()
                .get(&self.document_key(&collection, &id))
                .map(|r| r.and_then(to_document))
                .map_err(|e| HostError::Failed(format!("storage: {e}")))
        });
        Box::pin(std::future::ready(result))
    }

    fn set_document(
        &self,
        collection: String,
        id: String,
        data: String,
    ) -> BoxFuture<Result<(), HostError>> {
        let cluster = self.cluster.clone();
        let namespace = self.namespace.clone();
        Box::pin(async move {
            let data: serde_json::Value = serde_json::from_str(&data)
                .map_err(|e| HostError::Invalid(format!("document data is not JSON: {e}")))?;
            let now = crate::resources::now_rfc3339();
            let doc = crate::resources::Document {
                id,
                namespace,
                collection,
                data,
                created_at: Some(now.clone()),
                updated_at: Some(now),
            };
            let mut resource = Resource::Document(doc);
            crate::resources::validate::resource(&mut resource)
                .map_err(|e| HostError::Invalid(e.to_string()))?;
            cluster
                .write(ChangeCommand::put(resource))
                .await
                .map(drop)
                .map_err(host_error)
        })
    }

    fn delete_document(
        &self,
        collection: String,
        id: String,
    ) -> BoxFuture<Result<bool, HostError>> {
        let cluster = self.cluster.clone();
        let key = self.document_key(&collection, &id);
        Box::pin(async move {
            match cluster.write(ChangeCommand::delete(key)).await {
                Ok(ChangeOutcome::Deleted(_)) => Ok(true),
                Ok(_) => Ok(true),
                Err(Rejected::NotFound(_))
                | Err(Rejected::Refused {
                    kind: RefusalKind::NotFound,
                    ..
                }) => Ok(false),
                Err(e) => Err(host_error(e)),
            }
        })
    }

    fn list_documents(
        &self,
        collection: String,
        limit: u32,
        offset: u32,
    ) -> BoxFuture<Result<Vec<Document>, HostError>> {
        let result = self.collection_exists(&collection).and_then(|()| {
            self.cluster
                .store()
                .list(Kind::Document, &self.namespace, Some(&collection))
                .map(|all| {
                    all.into_iter()
                        .skip(offset as usize)
                        .take(limit.min(1000) as usize)
                        .filter_map(to_document)
                        .collect()
                })
                .map_err(|e| HostError::Failed(format!("storage: {e}")))
        });
        Box::pin(std::future::ready(result))
    }

    fn cache(&self) -> &Cache {
        &self.cache
    }
}

#[cfg(test)]
mod tests;
