//! The cluster layer: the one door through which state changes. Handlers hand it a
//! [`ChangeCommand`]; it goes through the Raft log (openraft) and comes back as what the state
//! machine did, once the change is committed, durable and applied on this node.
//!
//! A node on its own is a one-member Raft cluster, so the single-node and the replicated case share
//! one code path. Nodes join through `network.rs` (by config, or `dgate cluster join`); a
//! follower forwards writes to the leader.

mod membership;
pub mod network;
mod options;
pub mod raft_store;
mod rpc;
mod state_machine;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft};

pub use membership::{JoinRequest, MembershipChange};
pub use options::{ClusterOptions, fnv1a, node_id};
pub use state_machine::{Observer, Refusal, Rejected, StateMachine, VERSIONED};

use crate::resources::{
    ChangeCommand, ChangeOutcome, DEFAULT_NAMESPACE, Kind, Namespace, Resource, ResourceKey,
};
use crate::storage::{Batch, StorageError, Store};
use raft_store::{ApplyResponse, LogStore, NodeId, SmStore, TypeConfig};

const BOOTSTRAPPED: &[u8] = b"bootstrapped";
/// How long a write may wait to be committed by a majority.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a write could not be proposed here.
pub enum WriteError {
    /// Another node leads (its address, when known).
    NotLeader(Option<BasicNode>),
    Other(Rejected),
}

/// A write forwarded to the leader, and what it answers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Forwarded {
    pub response: ApplyResponse,
    pub log_index: u64,
}

#[derive(Clone)]
pub struct Cluster {
    sm: Arc<StateMachine>,
    raft: Raft<TypeConfig>,
    me: NodeId,
    net: network::HttpNetwork,
    opts: Arc<ClusterOptions>,
}

fn internal(what: &str, e: &dyn std::fmt::Display) -> Rejected {
    Rejected::Internal(format!("{what}: {e}"))
}

impl Cluster {
    /// A one-member cluster over `store`, reachable at `advert` (this node's admin URL).
    pub async fn single_node(store: Store, advert: &str) -> Result<Cluster, Rejected> {
        Cluster::start(store, ClusterOptions::single("dgate", advert)).await
    }

    /// Starts this node's Raft over `store`. A bootstrapping node initializes the cluster on its
    /// first start and creates the `default` namespace (once: deleting it later sticks); a node
    /// with join addresses asks them to let it in, in the background, until one does.
    pub async fn start(store: Store, opts: ClusterOptions) -> Result<Cluster, Rejected> {
        let sm = Arc::new(StateMachine::with_history(store, opts.history));
        let t = &opts.timings;
        let config = openraft::Config {
            cluster_name: "dgate".into(),
            heartbeat_interval: t.heartbeat_interval.0,
            election_timeout_min: t.election_timeout_min.0,
            election_timeout_max: t.election_timeout_max.0,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(t.snapshot_threshold),
            // Keep some log behind a snapshot so a briefly lagging node needs no snapshot.
            max_in_snapshot_log_to_keep: t.snapshot_threshold.min(100),
            ..Default::default()
        }
        .validate()
        .map_err(|e| internal("raft config", &e))?;
        let me = node_id(&opts.name);
        let net = network::HttpNetwork::new(&opts.shared_key, opts.peer_tls.clone());
        let raft = Raft::new(
            me,
            Arc::new(config),
            net.clone(),
            LogStore::new(sm.clone()),
            SmStore::new(sm.clone()),
        )
        .await
        .map_err(|e| internal("cannot start raft", &e))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| internal("raft", &e))?;
        if !initialized && opts.bootstrap {
            let self_node = BasicNode::new(format!("{}#{}", opts.advert, opts.name));
            raft.initialize(BTreeMap::from([(me, self_node)]))
                .await
                .map_err(|e| internal("cannot initialize the cluster", &e))?;
        }
        let cluster = Cluster {
            sm,
            raft,
            me,
            net,
            opts: Arc::new(opts),
        };
        // Alone: a fresh bootstrap, or a node whose applied membership has only itself as voter.
        let alone = (!initialized && cluster.opts.bootstrap)
            || raft_store::applied_membership(&cluster.sm)?
                .is_some_and(|m| m.membership().voter_ids().eq([me]));
        if alone {
            // A cluster of one elects itself at once; wait so the first request finds a leader.
            cluster
                .raft
                .wait(Some(Duration::from_secs(10)))
                .current_leader(me, "this node leads its own cluster")
                .await
                .map_err(|e| internal("no leader", &e))?;
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
        }
        if !initialized && !cluster.opts.bootstrap && cluster.opts.join.is_empty() {
            tracing::info!(
                "not in a cluster yet: add this node from a member with `dgate cluster join {} {}`",
                cluster.opts.name,
                cluster.opts.advert
            );
        } else if !initialized && !cluster.opts.bootstrap {
            let joining = cluster.clone();
            tokio::spawn(async move { joining.join_until_accepted().await });
        }
        Ok(cluster)
    }

    /// Commits `cmd` through Raft (on the leader, forwarding it there from a follower); returns
    /// once it is applied on this node, so a read here right after sees it.
    /// A write that arrives during an election waits for its outcome (up to
    /// [`COMMIT_TIMEOUT`]) rather than failing at once.
    pub async fn write(&self, cmd: ChangeCommand) -> Result<ChangeOutcome, Rejected> {
        let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
        let forwarded: Forwarded = loop {
            match self.write_here(cmd.clone()).await {
                Ok(f) => return outcome(f.response),
                Err(WriteError::NotLeader(Some(leader))) => {
                    break self.to_leader(Some(leader), "write", &cmd).await?;
                }
                Err(WriteError::NotLeader(None)) => {
                    self.wait_for_leader(deadline).await?;
                    // A leader this node knows by id but not yet by address: a moment more.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(WriteError::Other(e)) => return Err(e),
            }
        };
        self.raft
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(forwarded.log_index), "the forwarded write")
            .await
            .map_err(|e| {
                Rejected::Unavailable(format!("the write did not reach this node: {e}"))
            })?;
        outcome(forwarded.response)
    }

    /// Waits until this node knows a leader, or `deadline`.
    pub(super) async fn wait_for_leader(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<(), Rejected> {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let no_leader = || Rejected::Unavailable("the cluster has no leader".into());
        if left.is_zero() {
            return Err(no_leader());
        }
        self.raft
            .wait(Some(left))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .map(drop)
            .map_err(|_| no_leader())
    }

    /// Sends a request this node cannot serve to the leader's `/api/v1/raft/{path}`.
    async fn to_leader<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        leader: Option<BasicNode>,
        path: &str,
        body: &Req,
    ) -> Result<Resp, Rejected> {
        let leader =
            leader.ok_or_else(|| Rejected::Unavailable("the cluster has no leader".into()))?;
        network::post_json(
            &self.net,
            network::node_url(&leader),
            path,
            body,
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| Rejected::Unavailable(e.to_string()))
    }

    /// Proposes `cmd` on this node, which must be the leader.
    pub async fn write_here(&self, cmd: ChangeCommand) -> Result<Forwarded, WriteError> {
        // Without a quorum a leader cannot commit; answer instead of waiting forever.
        let written = tokio::time::timeout(COMMIT_TIMEOUT, self.raft.client_write(cmd)).await;
        let Ok(written) = written else {
            return Err(WriteError::Other(Rejected::Unavailable(format!(
                "the change was not committed within {COMMIT_TIMEOUT:?} (is a majority of the cluster up?); it may still be applied later"
            ))));
        };
        match written {
            Ok(res) => Ok(Forwarded {
                response: res.data,
                log_index: res.log_id.index,
            }),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(WriteError::NotLeader(f.leader_node))
            }
            Err(e) => Err(WriteError::Other(Rejected::Unavailable(format!(
                "cannot commit the change: {e}"
            )))),
        }
    }

    /// Who leads, who is in, and how far this node has applied: for `GET /api/v1/cluster`.
    pub fn status(&self) -> ClusterStatus {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        let name_of = |id: NodeId| {
            membership
                .get_node(&id)
                .map(|n| network::node_name(n).to_string())
                .unwrap_or_default()
        };
        // What the leader knows of each member: how far its log is behind, and whether it has
        // answered lately. Other nodes know only of themselves.
        let leading = m.replication.is_some();
        let stale = Duration::from_millis(self.opts.timings.election_timeout_max.0.max(1000) * 2);
        let members: Vec<MemberStatus> = membership
            .nodes()
            .map(|(id, node)| {
                let me = *id == self.me;
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(id).cloned())
                    .flatten()
                    .map(|l| l.index);
                let lag = match (me, leading) {
                    (true, _) => Some(0),
                    (false, true) => Some(
                        m.last_log_index
                            .unwrap_or(0)
                            .saturating_sub(matched.unwrap_or(0)),
                    ),
                    (false, false) => None,
                };
                let since = (!me).then(|| self.net.since_answer(*id)).flatten();
                let reachable = match (me, leading) {
                    (true, _) => Some(true),
                    (false, true) => Some(since.is_some_and(|d| d < stale)),
                    (false, false) => None,
                };
                MemberStatus {
                    name: network::node_name(node).to_string(),
                    address: network::node_url(node).to_string(),
                    role: if voters.contains(id) {
                        Role::Voter
                    } else {
                        Role::Learner
                    },
                    leader: m.current_leader == Some(*id),
                    reachable,
                    lag,
                    last_answer_ms: since.map(|d| d.as_millis() as u64),
                }
            })
            .collect();
        ClusterStatus {
            node: self.opts.name.clone(),
            leader: m.current_leader.map(name_of),
            term: m.current_term,
            applied_index: m.last_applied.map(|l| l.index),
            last_log_index: m.last_log_index,
            purged_index: m.purged.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            members,
        }
    }

    /// This node's Raft state as DGate's headers name it (`Leader`, `Follower`, `Candidate`,
    /// `Learner`, `Shutdown`), the leader's admin URL if there is one, and the (term, index) of
    /// the last log entry applied here.
    pub fn raft_state(&self) -> (&'static str, Option<String>, (u64, u64)) {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let state = match m.state {
            openraft::ServerState::Leader => "Leader",
            openraft::ServerState::Follower => "Follower",
            openraft::ServerState::Candidate => "Candidate",
            openraft::ServerState::Learner => "Learner",
            openraft::ServerState::Shutdown => "Shutdown",
        };
        let leader = m.current_leader.and_then(|id| {
            m.membership_config
                .membership()
                .get_node(&id)
                .map(|n| network::node_url(n).to_string())
        });
        let applied = m
            .last_applied
            .map_or((0, 0), |l| (l.leader_id.term, l.index));
        (state, leader, applied)
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

    /// `key`'s kept versions on this node, oldest first.
    pub fn versions(
        &self,
        key: &ResourceKey,
    ) -> Result<Vec<crate::storage::Version>, StorageError> {
        self.sm.store().versions(key)
    }

    /// This node's applied state (reads only: writes go through [`Cluster::write`]).
    pub fn store(&self) -> &Store {
        self.sm.store()
    }

    /// Calls `observer` with the state now and after every change this node applies.
    pub fn observe(&self, observer: Observer) -> Result<(), Rejected> {
        self.sm.observe(observer)
    }

    /// Whether this node can take writes: the cluster has a leader.
    pub fn is_ready(&self) -> bool {
        self.raft.metrics().borrow().current_leader.is_some()
    }
}

/// What the state machine answered for a committed command.
fn outcome(response: ApplyResponse) -> Result<ChangeOutcome, Rejected> {
    match response {
        ApplyResponse::Created(r) => Ok(ChangeOutcome::Created(r)),
        ApplyResponse::Updated(r) => Ok(ChangeOutcome::Updated(r)),
        ApplyResponse::Deleted(k) => Ok(ChangeOutcome::Deleted(k)),
        ApplyResponse::DeletedDocuments(keys) => Ok(ChangeOutcome::DeletedDocuments(keys)),
        ApplyResponse::All(all) => all
            .into_iter()
            .map(outcome)
            .collect::<Result<Vec<_>, _>>()
            .map(ChangeOutcome::All),
        ApplyResponse::Refused(r) => Err(r.into()),
        ApplyResponse::Nothing => Err(Rejected::Internal(
            "a command was applied as a blank entry".into(),
        )),
    }
}

/// `GET /api/v1/cluster`: who leads, who is in, and how far this node has applied.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ClusterStatus {
    /// This node's name.
    pub node: String,
    /// The leader's name, when there is one.
    pub leader: Option<String>,
    pub term: u64,
    /// The index of the last log entry applied on this node.
    pub applied_index: Option<u64>,
    pub last_log_index: Option<u64>,
    /// Entries up to this index are in the snapshot, no longer in the log.
    pub purged_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub members: Vec<MemberStatus>,
}

/// One member of the cluster as this node knows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct MemberStatus {
    pub name: String,
    /// Its admin API URL.
    pub address: String,
    pub role: Role,
    pub leader: bool,
    /// Whether it answered the leader lately (known on the leader only; null elsewhere).
    pub reachable: Option<bool>,
    /// How many log entries it is behind the leader (known on the leader only).
    pub lag: Option<u64>,
    /// Milliseconds since it last answered this node.
    pub last_answer_ms: Option<u64>,
}

/// A member votes (and may lead), or only follows the log (a watch-only node).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Voter,
    Learner,
}
