//! Raft RPC over HTTP: the client side ([`HttpNetwork`], openraft's network factory) and the server
//! side ([`rpc_router`], three POST endpoints to mount on the admin listener). Every request carries
//! the cluster's shared key in [`KEY_HEADER`]; a request without the right key is refused with 401
//! before it reaches Raft.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::raft_store::{NodeId, TypeConfig};
use crate::constant_time;

/// The header that carries the cluster's shared key.
pub const KEY_HEADER: &str = "x-dgate-cluster-key";

/// Creates a [`Peer`] per target node; nodes are addressed by their admin URL (`BasicNode::addr`).
#[derive(Clone)]
pub struct HttpNetwork {
    http: reqwest::Client,
    key: Arc<str>,
}

impl HttpNetwork {
    pub fn new(shared_key: &str) -> HttpNetwork {
        HttpNetwork {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_default(),
            key: shared_key.into(),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            base: node_url(node).trim_end_matches('/').to_string(),
            net: self.clone(),
        }
    }
}

/// One remote node.
pub struct Peer {
    target: NodeId,
    base: String,
    net: HttpNetwork,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl Peer {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let res = self
            .net
            .http
            .post(format!("{}/api/v1/raft/{path}", self.base))
            .header(KEY_HEADER, &*self.net.key)
            .timeout(option.hard_ttl())
            .json(req)
            .send()
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        if !res.status().is_success() {
            let err = std::io::Error::other(format!("{} answered {}", self.base, res.status()));
            return Err(RPCError::Network(NetworkError::new(&err)));
        }
        let answer: Result<Resp, RaftError<NodeId, E>> = res
            .json()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.call("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.call("vote", &rpc, &option).await
    }
}

#[derive(Clone)]
struct RpcState {
    raft: Raft<TypeConfig>,
    key: Arc<str>,
}

/// `POST /api/v1/raft/{append,vote,snapshot}` plus the `extra` routes, to nest under the admin
/// listener; all of them behind the shared key.
pub fn rpc_router(raft: Raft<TypeConfig>, shared_key: &str, extra: axum::Router) -> axum::Router {
    let state = RpcState {
        raft,
        key: shared_key.into(),
    };
    axum::Router::new()
        .route("/append", post(append))
        .route("/vote", post(vote))
        .route("/snapshot", post(snapshot))
        .with_state(state.clone())
        .merge(extra)
        // Log batches and snapshot chunks are larger than admin requests.
        .layer(axum::extract::DefaultBodyLimit::max(1 << 30))
        // The key is checked before anything else, body parsing included.
        .layer(axum::middleware::from_fn_with_state(state, authorized))
}

/// The admin URL in a node's address (`http://host:port#name`).
pub fn node_url(node: &BasicNode) -> &str {
    node.addr.split('#').next().unwrap_or_default()
}

/// The node name in a node's address.
pub fn node_name(node: &BasicNode) -> &str {
    node.addr.split_once('#').map_or("", |(_, n)| n)
}

/// Posts `body` to a peer's `/api/v1/raft/{path}` with the key; the answer as JSON.
pub async fn post_json<Req: Serialize, Resp: DeserializeOwned>(
    net: &HttpNetwork,
    base: &str,
    path: &str,
    body: &Req,
    timeout: Duration,
) -> Result<Resp, String> {
    let res = net
        .http
        .post(format!("{}/api/v1/raft/{path}", base.trim_end_matches('/')))
        .header(KEY_HEADER, &*net.key)
        .timeout(timeout)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("{base} unreachable: {e}"))?;
    let status = res.status();
    if !status.is_success() {
        let text = res.text().await.unwrap_or_default();
        // dgate's own errors carry a message; pass it on as is.
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string));
        return Err(message.unwrap_or_else(|| format!("{base} answered {status}: {text}")));
    }
    res.json()
        .await
        .map_err(|e| format!("{base} answered nonsense: {e}"))
}

async fn authorized(
    State(state): State<RpcState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = req
        .headers()
        .get(KEY_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if constant_time::eq(given, state.key.as_bytes()) {
        next.run(req).await
    } else {
        let body = serde_json::json!({"error": "wrong or missing cluster key", "status": 401});
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    }
}

async fn append(
    State(state): State<RpcState>,
    Json(req): Json<AppendEntriesRequest<TypeConfig>>,
) -> Response {
    Json(state.raft.append_entries(req).await).into_response()
}

async fn vote(State(state): State<RpcState>, Json(req): Json<VoteRequest<NodeId>>) -> Response {
    Json(state.raft.vote(req).await).into_response()
}

async fn snapshot(
    State(state): State<RpcState>,
    Json(req): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Response {
    Json(state.raft.install_snapshot(req).await).into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use super::*;
    use crate::cluster::StateMachine;
    use crate::cluster::raft_store::{ApplyResponse, LogStore, SmStore};
    use crate::resources::{ChangeCommand, Kind, Namespace, Resource, ResourceKey};
    use crate::storage::Store;

    struct Node {
        raft: Raft<TypeConfig>,
        sm: Arc<StateMachine>,
        url: String,
    }

    async fn start_node(id: NodeId, config: Arc<openraft::Config>, key: &str) -> Node {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let sm = Arc::new(StateMachine::new(Store::open_memory().unwrap()));
        let raft = Raft::new(
            id,
            config,
            HttpNetwork::new(key),
            LogStore::new(sm.clone()),
            SmStore::new(sm.clone()),
        )
        .await
        .unwrap();
        let rpc = rpc_router(raft.clone(), key, axum::Router::new());
        let app = axum::Router::new().nest("/api/v1/raft", rpc);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Node { raft, sm, url }
    }

    fn put_namespace(name: &str) -> ChangeCommand {
        ChangeCommand::put(Resource::Namespace(Namespace {
            name: name.into(),
            tags: vec![],
        }))
    }

    async fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_nodes_replicate_over_http_and_refuse_a_wrong_key() {
        let config = Arc::new(
            openraft::Config {
                heartbeat_interval: 100,
                election_timeout_min: 400,
                election_timeout_max: 800,
                ..Default::default()
            }
            .validate()
            .unwrap(),
        );
        let mut nodes = Vec::new();
        for id in 1..=3 {
            nodes.push(start_node(id, config.clone(), "s3cret").await);
        }
        let members: BTreeMap<NodeId, BasicNode> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (i as NodeId + 1, BasicNode::new(&n.url)))
            .collect();
        nodes[0].raft.initialize(members).await.unwrap();

        let mut leader = None;
        eventually("a leader", || {
            leader = nodes[0].raft.metrics().borrow().current_leader;
            leader.is_some()
        })
        .await;
        let leader = &nodes[(leader.unwrap() - 1) as usize];

        let written = leader
            .raft
            .client_write(put_namespace("replicated"))
            .await
            .unwrap();
        assert!(
            matches!(written.data, ApplyResponse::Created(_)),
            "{:?}",
            written.data
        );
        // A command the state machine refuses is answered as such, on every node alike.
        let refused = leader
            .raft
            .client_write(ChangeCommand::delete(ResourceKey::namespace("missing")))
            .await
            .unwrap();
        assert!(
            matches!(refused.data, ApplyResponse::Refused { .. }),
            "{:?}",
            refused.data
        );

        for (i, n) in nodes.iter().enumerate() {
            eventually(&format!("node {} to apply the write", i + 1), || {
                n.sm.store()
                    .get(&ResourceKey::namespace("replicated"))
                    .is_ok_and(|r| r.is_some())
            })
            .await;
            assert_eq!(
                n.sm.store().list(Kind::Namespace, "", None).unwrap().len(),
                1
            );
        }

        // A peer that does not know the key is refused before Raft sees the request.
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/raft/vote", nodes[1].url))
            .header(KEY_HEADER, "wrong")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        for n in &nodes {
            n.raft.shutdown().await.unwrap();
        }
    }
}
