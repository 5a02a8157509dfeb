//! Who is in the cluster: joining (asked by a new node, or added by an operator), promoting a
//! learner, and leaving. Sent to a follower, each is passed on to the leader.

use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{ClientWriteError, RaftError};

use super::raft_store::NodeId;
use super::{COMMIT_TIMEOUT, Cluster, Refusal, Rejected, network, node_id};

/// A join request: who wants in, where it listens, and whether it votes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JoinRequest {
    pub id: NodeId,
    pub node: BasicNode,
    pub voter: bool,
}

/// What a node answers about itself to a key-holding peer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct WhoAmI {
    pub(super) name: String,
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

impl Cluster {
    /// Asks each join address in turn to let this node in, until one accepts.
    pub(super) async fn join_until_accepted(&self) {
        let req = JoinRequest {
            id: self.me,
            node: BasicNode::new(format!("{}#{}", self.opts.advert, self.opts.name)),
            voter: self.opts.voter,
        };
        // DGate's configs list every node, this one too: it cannot let itself in.
        let me = self.opts.advert.trim_end_matches('/');
        let through: Vec<&String> = self
            .opts
            .join
            .iter()
            .filter(|a| a.trim_end_matches('/') != me)
            .collect();
        let through = if through.is_empty() {
            self.opts.join.iter().collect()
        } else {
            through
        };
        for attempt in 0u64.. {
            let addr = through[(attempt as usize) % through.len()];
            let res: Result<(), network::PeerError> =
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
        let refused = |message: String| Rejected::Refused(Refusal::Invalid(message));
        let url = url::Url::parse(address)
            .map_err(|e| refused(format!("address {address:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(refused(format!(
                "address {address:?} must be the node's admin URL, like http://10.0.0.3:9080 (https:// with admin.tls)"
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
                return Err(Refusal::NotFound(format!("no member named {name:?}")).into());
            }
            membership.voter_ids().any(|v| v == id)
        };
        let members = match (promote, is_voter) {
            (true, _) => openraft::ChangeMembers::AddVoterIds([id].into()),
            (false, true) => openraft::ChangeMembers::RemoveVoters([id].into()),
            (false, false) => openraft::ChangeMembers::RemoveNodes([id].into()),
        };
        // Sent during an election, it waits for the election's outcome, as a write does.
        let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
        loop {
            match self.raft.change_membership(members.clone(), false).await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    if f.leader_node.is_some() {
                        return self.to_leader(f.leader_node, "membership", &change).await;
                    }
                    self.wait_for_leader(deadline).await?;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => {
                    return Err(Rejected::Unavailable(format!(
                        "cannot change the membership: {e}"
                    )));
                }
            }
        }
    }
}
