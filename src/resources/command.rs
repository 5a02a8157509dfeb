//! The change command: the only way state changes. The admin API builds one, the cluster layer
//! applies it (today directly on the local state machine, with Raft in front of it once replicated).

use serde::{Deserialize, Serialize};

use super::{Resource, ResourceKey};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum ChangeCommand {
    /// Create or replace a resource.
    Put { resource: Resource },
    /// Remove a resource; refused while something refers to it.
    Delete { key: ResourceKey },
}

impl ChangeCommand {
    pub fn put(resource: Resource) -> Self {
        ChangeCommand::Put { resource }
    }

    pub fn delete(key: ResourceKey) -> Self {
        ChangeCommand::Delete { key }
    }
}

/// What applying a command did.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeOutcome {
    Created(Resource),
    Updated(Resource),
    Deleted(ResourceKey),
}
