//! The change command: the only way state changes. The admin API builds one; the cluster layer
//! commits it through Raft and every node's state machine applies it, telling its observers what
//! it applied ([`Applied`]).

use serde::{Deserialize, Serialize};

use super::{Kind, Resource, ResourceKey};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum ChangeCommand {
    /// Create or replace a resource.
    Put {
        resource: Resource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stamp: Option<Stamp>,
    },
    /// Remove a resource; refused while something refers to it.
    Delete {
        key: ResourceKey,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stamp: Option<Stamp>,
    },
    /// Create or replace several resources together, in one write: a module and the modules
    /// that import it, rebuilt against it.
    PutAll {
        resources: Vec<Resource>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stamp: Option<Stamp>,
    },
    /// Remove every document of a collection (DGate's `DELETE /document` without an id).
    DeleteDocuments {
        namespace: String,
        collection: String,
    },
}

/// When a change was made and by whom, as the node that took it saw it: kept with the versions
/// it makes in the history (the state machine reads no clock of its own).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stamp {
    /// RFC 3339.
    pub at: String,
    /// The caller as the admin API authenticated it (`anonymous`, `key 0`, a user name).
    pub by: String,
}

impl Stamp {
    /// Now, by `by`.
    pub fn now(by: impl Into<String>) -> Self {
        Stamp {
            at: super::now_rfc3339(),
            by: by.into(),
        }
    }
}

impl ChangeCommand {
    pub fn put(resource: Resource) -> Self {
        ChangeCommand::Put {
            resource,
            stamp: None,
        }
    }

    pub fn delete(key: ResourceKey) -> Self {
        ChangeCommand::Delete { key, stamp: None }
    }

    pub fn put_all(resources: Vec<Resource>) -> Self {
        ChangeCommand::PutAll {
            resources,
            stamp: None,
        }
    }

    /// The command, stamped (a collection's documents' delete keeps no history, so no stamp).
    pub fn stamped(mut self, with: Stamp) -> Self {
        match &mut self {
            ChangeCommand::Put { stamp, .. }
            | ChangeCommand::Delete { stamp, .. }
            | ChangeCommand::PutAll { stamp, .. } => *stamp = Some(with),
            ChangeCommand::DeleteDocuments { .. } => {}
        }
        self
    }

    pub fn delete_documents(namespace: &str, collection: &str) -> Self {
        ChangeCommand::DeleteDocuments {
            namespace: namespace.to_string(),
            collection: collection.to_string(),
        }
    }
}

/// What applying a command did.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeOutcome {
    Created(Resource),
    Updated(Resource),
    Deleted(ResourceKey),
    /// A collection's documents were deleted: these.
    DeletedDocuments(Vec<ResourceKey>),
    /// What each put of a [`ChangeCommand::PutAll`] did, in order.
    All(Vec<ChangeOutcome>),
}

/// What an observer is told.
#[derive(Clone, Copy, Debug)]
pub enum Applied<'a> {
    /// The whole state (at start, after a snapshot is installed): every resource of the
    /// [`SERVED`] kinds, namespaces first.
    All(&'a [Resource]),
    /// This resource was created or updated, as stored.
    Put(&'a Resource),
    /// The resource with this key was deleted.
    Deleted(&'a ResourceKey),
}

/// The kinds that configure serving, which [`Applied::All`] carries. Collections, documents and
/// secrets are read when needed, not held by observers.
pub const SERVED: [Kind; 5] = [
    Kind::Namespace,
    Kind::Service,
    Kind::Module,
    Kind::Route,
    Kind::Domain,
];
