//! The cluster layer: the one door through which state changes. Handlers hand it a
//! [`ChangeCommand`] and get back what the state machine did once the change is durable.
//!
//! Today a node is its own single-member cluster and commands go straight to the local state
//! machine; the Raft log (openraft) goes in front of [`StateMachine::apply`] without changing this
//! interface or any handler.

pub mod network;
pub mod raft_store;
mod state_machine;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use state_machine::{Observer, Rejected, StateMachine};

use crate::resources::{
    ChangeCommand, ChangeOutcome, DEFAULT_NAMESPACE, Kind, Namespace, Resource, ResourceKey,
};
use crate::storage::{Batch, StorageError, Store};

const BOOTSTRAPPED: &[u8] = b"bootstrapped";

#[derive(Clone)]
pub struct Cluster {
    sm: Arc<StateMachine>,
}

impl Cluster {
    /// A one-node cluster over `store`. On a store that has never been used, creates the
    /// `default` namespace (once: deleting it later is the user's choice and sticks).
    pub fn single_node(store: Store) -> Result<Cluster, Rejected> {
        let sm = Arc::new(StateMachine::new(store));
        if sm.store().get_meta(BOOTSTRAPPED)?.is_none() {
            sm.apply(ChangeCommand::put(Resource::Namespace(Namespace {
                name: DEFAULT_NAMESPACE.to_string(),
                tags: vec![],
            })))?;
            let mut batch = Batch::default();
            batch.put_meta(BOOTSTRAPPED, b"1");
            sm.store().write(batch)?;
        }
        Ok(Cluster { sm })
    }

    /// Applies `cmd` cluster-wide; returns once it is durable and visible to reads on this node.
    pub async fn write(&self, cmd: ChangeCommand) -> Result<ChangeOutcome, Rejected> {
        let sm = self.sm.clone();
        tokio::task::spawn_blocking(move || sm.apply(cmd))
            .await
            .unwrap_or_else(|join| Err(Rejected::Internal(format!("write task failed: {join}"))))
    }

    pub fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StorageError> {
        self.sm.store().get(key)
    }

    pub fn list(
        &self,
        kind: Kind,
        namespace: &str,
        collection: Option<&str>,
    ) -> Result<Vec<Resource>, StorageError> {
        self.sm.store().list(kind, namespace, collection)
    }

    /// Calls `observer` with the state now and after every change this node applies.
    pub fn observe(&self, observer: Observer) {
        self.sm.observe(observer);
    }

    /// Whether this node can serve reads and accept writes.
    pub fn is_ready(&self) -> bool {
        self.sm
            .store()
            .get_meta(BOOTSTRAPPED)
            .is_ok_and(|v| v.is_some())
    }
}
