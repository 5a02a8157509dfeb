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

pub use state_machine::{Changed, Observer, Rejected, StateMachine};

use crate::config::RaftTimings;
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

/// How this node takes part in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// This node's name; its Raft id is derived from it, so it must not change.
    pub name: String,
    /// This node's admin URL as other nodes reach it.
    pub advert: String,
    pub shared_key: String,
    /// Initialize a new cluster on first start (the single-node default).
    pub bootstrap: bool,
    /// Admin URLs to join an existing cluster through.
    pub join: Vec<String>,
    /// Become a voter after joining (`watch_only` nodes stay learners).
    pub voter: bool,
    pub timings: RaftTimings,
}

impl ClusterOptions {
    /// A cluster of one, bootstrapped on first start.
    pub fn single(name: &str, advert: &str) -> ClusterOptions {
        ClusterOptions {
            name: name.to_string(),
            advert: advert.to_string(),
            shared_key: String::new(),
            bootstrap: true,
            join: vec![],
            voter: true,
            timings: RaftTimings::default(),
        }
    }
}

/// The Raft id for a node name (FNV-1a, never 0): stable across restarts and nodes.
pub fn node_id(name: &str) -> NodeId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// A join request: who wants in, where it listens, and whether it votes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JoinRequest {
    pub id: NodeId,
    pub node: BasicNode,
    pub voter: bool,
}

/// What a node answers about itself to a key-holding peer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct WhoAmI {
    name: String,
}

/// A change to who is in the cluster, by node name.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", content = "name", rename_all = "lowercase")]
pub enum MembershipChange {
    /// A learner becomes a voter.
    Promote(String),
    /// A node leaves the cluster.
    Leave(String),
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
        let sm = Arc::new(StateMachine::new(store));
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
        let net = network::HttpNetwork::new(&opts.shared_key);
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

    /// Asks each join address in turn to let this node in, until one accepts.
    async fn join_until_accepted(&self) {
        let req = JoinRequest {
            id: self.me,
            node: BasicNode::new(format!("{}#{}", self.opts.advert, self.opts.name)),
            voter: self.opts.voter,
        };
        for attempt in 0u64.. {
            let addr = &self.opts.join[(attempt as usize) % self.opts.join.len()];
            let res: Result<(), String> =
                network::post_json(&self.net, addr, "join", &req, Duration::from_secs(30)).await;
            match res {
                Ok(()) => {
                    tracing::info!(through = %addr, "joined the cluster");
                    return;
                }
                Err(e) => {
                    tracing::warn!(through = %addr, error = %e, "join failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Lets a node in (as a learner that has caught up, then a voter unless it asked not to).
    /// Sent to a follower, it is passed on to the leader.
    pub async fn join(&self, req: JoinRequest) -> Result<(), Rejected> {
        let added = self.raft.add_learner(req.id, req.node.clone(), true).await;
        match added {
            Ok(_) => {}
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                return self.to_leader(f.leader_node, "join", &req).await;
            }
            Err(e) => return Err(Rejected::Unavailable(format!("cannot add the node: {e}"))),
        }
        if req.voter {
            self.raft
                .change_membership(openraft::ChangeMembers::AddVoterIds([req.id].into()), false)
                .await
                .map_err(|e| Rejected::Unavailable(format!("cannot promote the node: {e}")))?;
        }
        Ok(())
    }

    /// Adds the node `name` that listens at `address` (its admin URL), on an operator's request.
    /// The node must answer there with that name and this cluster's shared key; it then joins
    /// like a node that asked itself (see [`Cluster::join`]).
    pub async fn add_member(&self, name: &str, address: &str, voter: bool) -> Result<(), Rejected> {
        let refused = |message: String| Rejected::Refused {
            kind: raft_store::RefusalKind::Invalid,
            message,
        };
        let url = url::Url::parse(address)
            .map_err(|e| refused(format!("address {address:?} is not a URL: {e}")))?;
        if url.scheme() != "http" || url.host_str().is_none() {
            return Err(refused(format!(
                "address {address:?} must be the node's admin URL, like http://10.0.0.3:9080"
            )));
        }
        crate::resources::validate::name("name", name)
            .map_err(|e| refused(format!("{name:?} is not a node name: {}", e.reason)))?;
        let whoami: WhoAmI =
            network::post_json(&self.net, address, "whoami", &(), Duration::from_secs(5))
                .await
                .map_err(|e| refused(format!("cannot reach node {name:?}: {e}")))?;
        if whoami.name != name {
            return Err(refused(format!(
                "the node at {address} is named {:?}, not {name:?}",
                whoami.name
            )));
        }
        self.join(JoinRequest {
            id: node_id(name),
            node: BasicNode::new(format!("{}#{name}", address.trim_end_matches('/'))),
            voter,
        })
        .await
    }

    /// Promotes or removes a member (on the leader, forwarding it there from a follower).
    pub async fn change_membership(&self, change: MembershipChange) -> Result<(), Rejected> {
        let (name, promote) = match &change {
            MembershipChange::Promote(n) => (n.as_str(), true),
            MembershipChange::Leave(n) => (n.as_str(), false),
        };
        let id = node_id(name);
        let is_voter = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            if membership.get_node(&id).is_none() {
                return Err(Rejected::Refused {
                    kind: raft_store::RefusalKind::NotFound,
                    message: format!("no member named {name:?}"),
                });
            }
            membership.voter_ids().any(|v| v == id)
        };
        let members = match (promote, is_voter) {
            (true, _) => openraft::ChangeMembers::AddVoterIds([id].into()),
            (false, true) => openraft::ChangeMembers::RemoveVoters([id].into()),
            (false, false) => openraft::ChangeMembers::RemoveNodes([id].into()),
        };
        match self.raft.change_membership(members, false).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                self.to_leader(f.leader_node, "membership", &change).await
            }
            Err(e) => Err(Rejected::Unavailable(format!(
                "cannot change the membership: {e}"
            ))),
        }
    }

    /// Commits `cmd` through Raft (on the leader, forwarding it there from a follower); returns
    /// once it is applied on this node, so a read here right after sees it.
    pub async fn write(&self, cmd: ChangeCommand) -> Result<ChangeOutcome, Rejected> {
        let forwarded: Forwarded = match self.write_here(cmd.clone()).await {
            Ok(f) => return outcome(f.response),
            Err(WriteError::NotLeader(leader)) => self.to_leader(leader, "write", &cmd).await?,
            Err(WriteError::Other(e)) => return Err(e),
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
        .map_err(Rejected::Unavailable)
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

    /// The Raft RPCs plus the forwarded-write and join endpoints, behind the shared key, to nest
    /// at `/api/v1/raft` on the admin listener.
    pub fn rpc_router(&self) -> axum::Router {
        use axum::Json;
        use axum::extract::State;
        use axum::http::StatusCode;
        use axum::response::{IntoResponse, Response};

        fn failed(e: &Rejected) -> Response {
            let body = serde_json::json!({"error": e.to_string(), "status": 503});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
        async fn write(State(c): State<Cluster>, Json(cmd): Json<ChangeCommand>) -> Response {
            match c.write_here(cmd).await {
                Ok(f) => Json(f).into_response(),
                Err(WriteError::NotLeader(_)) => {
                    failed(&Rejected::Unavailable("not the leader".into()))
                }
                Err(WriteError::Other(e)) => failed(&e),
            }
        }
        async fn join(State(c): State<Cluster>, Json(req): Json<JoinRequest>) -> Response {
            match c.join(req).await {
                Ok(()) => Json(()).into_response(),
                Err(e) => failed(&e),
            }
        }
        async fn membership(
            State(c): State<Cluster>,
            Json(change): Json<MembershipChange>,
        ) -> Response {
            match c.change_membership(change).await {
                Ok(()) => Json(()).into_response(),
                Err(e) => failed(&e),
            }
        }
        async fn whoami(State(c): State<Cluster>) -> Json<WhoAmI> {
            Json(WhoAmI {
                name: c.opts.name.clone(),
            })
        }
        let extra = axum::Router::new()
            .route("/whoami", axum::routing::post(whoami))
            .route("/write", axum::routing::post(write))
            .route("/membership", axum::routing::post(membership))
            .route("/join", axum::routing::post(join))
            .with_state(self.clone());
        network::rpc_router(self.raft.clone(), &self.opts.shared_key, extra)
    }

    /// Who leads, who is in, and how far this node has applied: for `GET /api/v1/cluster`.
    pub fn status(&self) -> serde_json::Value {
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
        let members: Vec<serde_json::Value> = membership
            .nodes()
            .map(|(id, node)| {
                serde_json::json!({
                    "name": network::node_name(node),
                    "address": network::node_url(node),
                    "role": if voters.contains(id) { "voter" } else { "learner" },
                    "leader": m.current_leader == Some(*id),
                })
            })
            .collect();
        serde_json::json!({
            "node": self.opts.name,
            "leader": m.current_leader.map(name_of),
            "term": m.current_term,
            "applied_index": m.last_applied.map(|l| l.index),
            "last_log_index": m.last_log_index,
            "purged_index": m.purged.map(|l| l.index),
            "snapshot_index": m.snapshot.map(|l| l.index),
            "members": members,
        })
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

    /// This node's applied state (reads only: writes go through [`Cluster::write`]).
    pub fn store(&self) -> &Store {
        self.sm.store()
    }

    /// Calls `observer` with the state now and after every change this node applies.
    pub fn observe(&self, observer: Observer) {
        self.sm.observe(observer);
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
        ApplyResponse::Refused { kind, message } => Err(Rejected::Refused { kind, message }),
        ApplyResponse::Nothing => Err(Rejected::Internal(
            "a command was applied as a blank entry".into(),
        )),
    }
}
