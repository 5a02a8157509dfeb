//! The cluster layer: the one door through which state changes. Handlers hand it a
//! [`ChangeCommand`]; it goes through the Raft log (openraft) and comes back as what the state
//! machine did, once the change is committed, durable and applied on this node.
//!
//! A node on its own is a one-member Raft cluster, so the single-node and the replicated case share
//! one code path. (Joining nodes over `network.rs` is the next step; today every server bootstraps
//! its own one-member cluster.)

pub mod network;
pub mod raft_store;
mod state_machine;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft};

pub use state_machine::{Observer, Rejected, StateMachine};

use crate::resources::{
    ChangeCommand, ChangeOutcome, DEFAULT_NAMESPACE, Kind, Namespace, Resource, ResourceKey,
};
use crate::storage::{Batch, StorageError, Store};
use raft_store::{ApplyResponse, LogStore, NodeId, SmStore, TypeConfig};

const BOOTSTRAPPED: &[u8] = b"bootstrapped";
/// This node's Raft id while every node is its own cluster.
const SELF_ID: NodeId = 1;

#[derive(Clone)]
pub struct Cluster {
    sm: Arc<StateMachine>,
    raft: Raft<TypeConfig>,
}

impl Cluster {
    /// A one-member Raft cluster over `store`, reachable at `advert` (this node's admin URL). On a
    /// store that has never been used, initializes the cluster and creates the `default` namespace
    /// (once: deleting it later is the user's choice and sticks).
    pub async fn single_node(store: Store, advert: &str) -> Result<Cluster, Rejected> {
        let internal =
            |what: &str, e: &dyn std::fmt::Display| Rejected::Internal(format!("{what}: {e}"));
        let sm = Arc::new(StateMachine::new(store));
        let config = openraft::Config {
            heartbeat_interval: 100,
            election_timeout_min: 300,
            election_timeout_max: 600,
            ..Default::default()
        }
        .validate()
        .map_err(|e| internal("raft config", &e))?;
        let raft = Raft::new(
            SELF_ID,
            Arc::new(config),
            network::HttpNetwork::new(""),
            LogStore::new(sm.clone()),
            SmStore::new(sm.clone()),
        )
        .await
        .map_err(|e| internal("cannot start raft", &e))?;
        if !raft
            .is_initialized()
            .await
            .map_err(|e| internal("raft", &e))?
        {
            let members = BTreeMap::from([(SELF_ID, BasicNode::new(advert))]);
            raft.initialize(members)
                .await
                .map_err(|e| internal("cannot initialize the cluster", &e))?;
        }
        raft.wait(Some(Duration::from_secs(10)))
            .current_leader(SELF_ID, "this node leads its own cluster")
            .await
            .map_err(|e| internal("no leader", &e))?;
        let cluster = Cluster { sm, raft };
        if cluster.sm.store().get_meta(BOOTSTRAPPED)?.is_none() {
            cluster
                .write(ChangeCommand::put(Resource::Namespace(Namespace {
                    name: DEFAULT_NAMESPACE.to_string(),
                    tags: vec![],
                })))
                .await?;
            let mut batch = Batch::default();
            batch.put_meta(BOOTSTRAPPED, b"1");
            cluster.sm.store().write(batch)?;
        }
        Ok(cluster)
    }

    /// Commits `cmd` through Raft; returns once it is applied on this node.
    pub async fn write(&self, cmd: ChangeCommand) -> Result<ChangeOutcome, Rejected> {
        match self.raft.client_write(cmd).await {
            Ok(res) => outcome(res.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(Rejected::Unavailable(format!(
                    "this node is not the leader (leader: {:?})",
                    f.leader_id
                )))
            }
            Err(e) => Err(Rejected::Unavailable(format!(
                "cannot commit the change: {e}"
            ))),
        }
    }

    /// Stops the Raft node (on server shutdown).
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
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

    /// Whether this node can serve reads and accept writes: storage is initialized and the
    /// cluster has a leader.
    pub fn is_ready(&self) -> bool {
        self.sm
            .store()
            .get_meta(BOOTSTRAPPED)
            .is_ok_and(|v| v.is_some())
            && self.raft.metrics().borrow().current_leader.is_some()
    }
}

/// What the state machine answered for a committed command.
fn outcome(response: ApplyResponse) -> Result<ChangeOutcome, Rejected> {
    match response {
        ApplyResponse::Created(r) => Ok(ChangeOutcome::Created(r)),
        ApplyResponse::Updated(r) => Ok(ChangeOutcome::Updated(r)),
        ApplyResponse::Deleted(k) => Ok(ChangeOutcome::Deleted(k)),
        ApplyResponse::Refused { kind, message } => Err(Rejected::Refused { kind, message }),
        ApplyResponse::Nothing => Err(Rejected::Internal(
            "a command was applied as a blank entry".into(),
        )),
    }
}
