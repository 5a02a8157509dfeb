//! The cluster behind modules' documents: [`crate::modules::Services`] over the cluster, with
//! the same state machine rules as the admin API (schemas, references). The namespace comes from
//! the module's host; nothing here reaches another namespace or any secret.

use crate::cluster::{Cluster, Refusal, Rejected};
use crate::modules::{BoxFuture, Document, HostError, Services, ready};
use crate::resources::{ChangeCommand, Kind, Resource, ResourceKey};

/// Documents of every namespace, through `cluster`.
pub struct GatewayServices {
    cluster: Cluster,
}

impl GatewayServices {
    pub fn new(cluster: Cluster) -> Self {
        GatewayServices { cluster }
    }

    fn collection_exists(&self, namespace: &str, collection: &str) -> Result<(), HostError> {
        let key = ResourceKey::new(Kind::Collection, namespace, collection);
        match self.cluster.get(&key) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(HostError::NotFound(format!(
                "collection {collection:?} does not exist in namespace {namespace:?}"
            ))),
            Err(e) => Err(HostError::Failed(format!("storage: {e}"))),
        }
    }
}

fn document_key(namespace: &str, collection: &str, id: &str) -> ResourceKey {
    ResourceKey {
        kind: Kind::Document,
        namespace: namespace.to_string(),
        collection: Some(collection.to_string()),
        name: id.to_string(),
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

/// The one mapping of the cluster's refusals to what a module is told.
fn host_error(e: Rejected) -> HostError {
    match e {
        Rejected::Refused(Refusal::NotFound(m) | Refusal::MissingReference(m)) => {
            HostError::NotFound(m)
        }
        Rejected::Refused(Refusal::Invalid(m) | Refusal::Conflict(m)) => HostError::Invalid(m),
        Rejected::Storage(s) => HostError::Failed(format!("storage: {s}")),
        e @ (Rejected::Internal(_) | Rejected::Unavailable(_)) => HostError::Failed(e.to_string()),
    }
}

impl Services for GatewayServices {
    fn get_collection(
        &self,
        namespace: &str,
        name: &str,
    ) -> BoxFuture<Result<Option<serde_json::Value>, HostError>> {
        let key = ResourceKey::new(Kind::Collection, namespace, name);
        ready(
            self.cluster
                .get(&key)
                .map(|r| r.map(|c| c.to_public_json()))
                .map_err(|e| HostError::Failed(format!("storage: {e}"))),
        )
    }

    fn set_collection(
        &self,
        _namespace: &str,
        collection: crate::resources::Collection,
    ) -> BoxFuture<Result<(), HostError>> {
        let cluster = self.cluster.clone();
        Box::pin(async move {
            cluster
                .write(ChangeCommand::put(Resource::Collection(collection)))
                .await
                .map(drop)
                .map_err(host_error)
        })
    }

    fn delete_collection(&self, namespace: &str, name: &str) -> BoxFuture<Result<bool, HostError>> {
        let cluster = self.cluster.clone();
        let key = ResourceKey::new(Kind::Collection, namespace, name);
        Box::pin(async move {
            match cluster.write(ChangeCommand::delete(key)).await {
                Ok(_) => Ok(true),
                Err(Rejected::Refused(Refusal::NotFound(_))) => Ok(false),
                Err(e) => Err(host_error(e)),
            }
        })
    }

    fn get_document(
        &self,
        namespace: &str,
        collection: &str,
        id: &str,
    ) -> BoxFuture<Result<Option<Document>, HostError>> {
        let result = self
            .collection_exists(namespace, collection)
            .and_then(|()| {
                self.cluster
                    .get(&document_key(namespace, collection, id))
                    .map(|r| r.and_then(to_document))
                    .map_err(|e| HostError::Failed(format!("storage: {e}")))
            });
        ready(result)
    }

    fn set_document(
        &self,
        namespace: &str,
        collection: &str,
        id: &str,
        data: serde_json::Value,
    ) -> BoxFuture<Result<(), HostError>> {
        let now = crate::resources::now_rfc3339();
        let mut resource = Resource::Document(crate::resources::Document {
            id: id.to_string(),
            namespace: namespace.to_string(),
            collection: collection.to_string(),
            data,
            created_at: Some(now.clone()),
            updated_at: Some(now),
        });
        if let Err(e) = crate::resources::validate::resource(&mut resource) {
            return ready(Err(HostError::Invalid(e.to_string())));
        }
        let cluster = self.cluster.clone();
        Box::pin(async move {
            cluster
                .write(ChangeCommand::put(resource))
                .await
                .map(drop)
                .map_err(host_error)
        })
    }

    fn delete_document(
        &self,
        namespace: &str,
        collection: &str,
        id: &str,
    ) -> BoxFuture<Result<bool, HostError>> {
        let cluster = self.cluster.clone();
        let key = document_key(namespace, collection, id);
        Box::pin(async move {
            match cluster.write(ChangeCommand::delete(key)).await {
                Ok(_) => Ok(true),
                Err(Rejected::Refused(Refusal::NotFound(_))) => Ok(false),
                Err(e) => Err(host_error(e)),
            }
        })
    }

    fn list_documents(
        &self,
        namespace: &str,
        collection: &str,
        limit: usize,
        offset: usize,
    ) -> BoxFuture<Result<Vec<Document>, HostError>> {
        let result = self
            .collection_exists(namespace, collection)
            .and_then(|()| {
                self.cluster
                    .list(Kind::Document, namespace, Some(collection))
                    .map(|all| {
                        all.into_iter()
                            .skip(offset)
                            .take(limit)
                            .filter_map(to_document)
                            .collect()
                    })
                    .map_err(|e| HostError::Failed(format!("storage: {e}")))
            });
        ready(result)
    }
}

#[cfg(test)]
mod tests;
