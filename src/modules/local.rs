//! Documents in memory, for running a module on its own (`dgate module run`, tests): the
//! [`Services`] of a host with no cluster behind it. Namespaces are kept apart as on the gateway.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::bindings::{Document, HostError};
use super::host::{BoxFuture, Services, ready};

/// Why seed documents were refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SeedError(String);

/// Documents by namespace, collection and id; data as JSON text.
#[derive(Default)]
pub struct LocalDocuments {
    documents: Mutex<BTreeMap<(String, String, String), String>>,
    /// Collections written by modules, by namespace and name (documents need none here).
    collections: Mutex<BTreeMap<(String, String), serde_json::Value>>,
}

impl LocalDocuments {
    /// Seeds documents of `namespace`: `{"collection": {"id": <data>, ...}, ...}`.
    pub fn with_documents(
        self,
        namespace: &str,
        seed: &serde_json::Value,
    ) -> Result<Self, SeedError> {
        let Some(collections) = seed.as_object() else {
            return Err(SeedError(
                "documents must be an object of collections".into(),
            ));
        };
        {
            let mut docs = self.documents.lock().unwrap_or_else(|p| p.into_inner());
            for (collection, items) in collections {
                let Some(items) = items.as_object() else {
                    return Err(SeedError(format!(
                        "collection {collection:?} must be an object of documents by id"
                    )));
                };
                for (id, data) in items {
                    docs.insert(
                        (namespace.to_string(), collection.clone(), id.clone()),
                        data.to_string(),
                    );
                }
            }
        }
        Ok(self)
    }

    /// Every document of `namespace`, as `{"collection": {"id": data}}`.
    pub fn documents(&self, namespace: &str) -> serde_json::Value {
        let docs = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = serde_json::Map::new();
        for ((_, c, id), data) in docs.iter().filter(|((ns, _, _), _)| ns == namespace) {
            let entry = out
                .entry(c.clone())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let Some(o) = entry.as_object_mut() {
                o.insert(
                    id.clone(),
                    serde_json::from_str(data).unwrap_or(serde_json::Value::Null),
                );
            }
        }
        serde_json::Value::Object(out)
    }
}

fn key(namespace: &str, collection: &str, id: &str) -> (String, String, String) {
    (
        namespace.to_string(),
        collection.to_string(),
        id.to_string(),
    )
}

impl Services for LocalDocuments {
    fn get_collection(
        &self,
        namespace: &str,
        name: &str,
    ) -> BoxFuture<Result<Option<serde_json::Value>, HostError>> {
        let collections = self.collections.lock().unwrap_or_else(|p| p.into_inner());
        ready(Ok(collections
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()))
    }

    fn set_collection(
        &self,
        namespace: &str,
        collection: crate::resources::Collection,
    ) -> BoxFuture<Result<(), HostError>> {
        let shown = crate::resources::Resource::Collection(collection.clone()).to_public_json();
        self.collections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((namespace.to_string(), collection.name), shown);
        ready(Ok(()))
    }

    fn delete_collection(&self, namespace: &str, name: &str) -> BoxFuture<Result<bool, HostError>> {
        let docs = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        if docs.keys().any(|(ns, c, _)| ns == namespace && c == name) {
            return ready(Err(HostError::Invalid(format!(
                "collection {name:?} still holds documents"
            ))));
        }
        let removed = self
            .collections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(namespace.to_string(), name.to_string()))
            .is_some();
        ready(Ok(removed))
    }

    fn get_document(
        &self,
        namespace: &str,
        collection: &str,
        id: &str,
    ) -> BoxFuture<Result<Option<Document>, HostError>> {
        let docs = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        let found = docs
            .get(&key(namespace, collection, id))
            .map(|data| Document {
                id: id.to_string(),
                collection: collection.to_string(),
                data: data.clone(),
            });
        ready(Ok(found))
    }

    fn set_document(
        &self,
        namespace: &str,
        collection: &str,
        id: &str,
        data: serde_json::Value,
    ) -> BoxFuture<Result<(), HostError>> {
        self.documents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key(namespace, collection, id), data.to_string());
        ready(Ok(()))
    }

    fn delete_document(
        &self,
        namespace: &str,
        collection: &str,
        id: &str,
    ) -> BoxFuture<Result<bool, HostError>> {
        let removed = self
            .documents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key(namespace, collection, id))
            .is_some();
        ready(Ok(removed))
    }

    fn list_documents(
        &self,
        namespace: &str,
        collection: &str,
        limit: usize,
        offset: usize,
    ) -> BoxFuture<Result<Vec<Document>, HostError>> {
        let docs = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        let list = docs
            .iter()
            .filter(|((ns, c, _), _)| ns == namespace && c == collection)
            .skip(offset)
            .take(limit)
            .map(|((_, c, id), data)| Document {
                id: id.clone(),
                collection: c.clone(),
                data: data.clone(),
            })
            .collect();
        ready(Ok(list))
    }
}
