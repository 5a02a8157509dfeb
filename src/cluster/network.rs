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
use openraft::{BasicNode, LogId, Raft, Vote};
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
    /// When each node last answered a Raft request from this one.
    answered: Arc<std::sync::Mutex<std::collections::HashMap<NodeId, std::time::Instant>>>,
}

impl HttpNetwork {
    /// `tls`: how to talk to `https://` nodes (the system roots when `None`).
    pub fn new(shared_key: &str, tls: Option<rustls::ClientConfig>) -> HttpNetwork {
        let tls = tls
            .or_else(|| crate::tls::admin_client_config(&[], None, true).ok())
            .map(|mut c| {
                c.alpn_protocols = vec![b"http/1.1".to_vec()];
                c
            });
        crate::tls::install_default_provider();
        let builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(2));
        let builder = match tls {
            Some(c) => builder.tls_backend_preconfigured(c),
            None => builder,
        };
        HttpNetwork {
            http: builder.build().unwrap_or_default(),
            key: shared_key.into(),
            answered: Arc::default(),
        }
    }

    /// How long ago `node` last answered a Raft request from this node; `None` if it never did
    /// (this node sends to the others only while it leads, or asks for votes).
    pub fn since_answer(&self, node: NodeId) -> Option<Duration> {
        self.answered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .map(|at| at.elapsed())
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            base: node_url(node).trim_end_matches('/').to_string(),
            net: self.clone(),
            in_flight: None,
        }
    }
}

/// How long one append may take on the wire. openraft gives each append only the heartbeat
/// interval, which a large entry (a module's component is megabytes) can outlast on a loaded
/// node; the request goes on past that, and openraft's retry of the same entries joins it.
const APPEND_TIMEOUT: Duration = Duration::from_secs(10);

/// One remote node.
pub struct Peer {
    target: NodeId,
    base: String,
    net: HttpNetwork,
    /// The append still on the wire after openraft stopped waiting for it.
    in_flight: Option<InFlight>,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;
type AppendResult = RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible>;

/// An append request sent in its own task, and the entries it carries.
struct InFlight {
    vote: Vote<NodeId>,
    prev: Option<LogId<NodeId>>,
    last: Option<LogId<NodeId>>,
    answer: tokio::task::JoinHandle<AppendResult>,
}

impl InFlight {
    /// Whether `rpc` asks for what this request already carries, and maybe more after it: the
    /// same leader, the same starting point, and this request's entries a prefix of its own.
    fn covers_start_of(&self, rpc: &AppendEntriesRequest<TypeConfig>) -> bool {
        self.vote == rpc.vote && self.prev == rpc.prev_log_id && self.last <= last_log_id(rpc)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.answer.abort();
    }
}

fn last_log_id(rpc: &AppendEntriesRequest<TypeConfig>) -> Option<LogId<NodeId>> {
    rpc.entries.last().map(|e| e.log_id).or(rpc.prev_log_id)
}

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
        send(
            &self.net,
            &self.base,
            self.target,
            path,
            req,
            option.hard_ttl(),
        )
        .await
    }
}

async fn send<Req, Resp, E>(
    net: &HttpNetwork,
    base: &str,
    target: NodeId,
    path: &str,
    req: &Req,
    timeout: Duration,
) -> RpcResult<Resp, E>
where
    Req: Serialize,
    Resp: DeserializeOwned,
    E: std::error::Error + DeserializeOwned,
{
    let res = net
        .http
        .post(format!("{base}/api/v1/raft/{path}"))
        .header(KEY_HEADER, &*net.key)
        .timeout(timeout)
        .json(req)
        .send()
        .await
        .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
    if !res.status().is_success() {
        let err = std::io::Error::other(format!("{base} answered {}", res.status()));
        return Err(RPCError::Network(NetworkError::new(&err)));
    }
    net.answered
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(target, std::time::Instant::now());
    let answer: Result<Resp, RaftError<NodeId, E>> = res
        .json()
        .await
        .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
    answer.map_err(|e| RPCError::RemoteError(RemoteError::new(target, e)))
}

impl RaftNetwork<TypeConfig> for Peer {
    /// Entries are sent from their own task, so that openraft's timeout (the heartbeat
    /// interval) abandons the wait but not the request. A later call for the same entries, or
    /// for those and more, waits for that request instead of sending the entries again: a
    /// follower then gets a large entry once, however long it takes, rather than never within
    /// any one timeout.
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> AppendResult {
        if rpc.entries.is_empty() {
            // A heartbeat goes on its own and leaves a request with entries on the wire.
            return self.call("append", &rpc, &option).await;
        }
        let last = last_log_id(&rpc);
        // If openraft moved on (a new term, or a conflict found), the request in flight is
        // stale; replacing it aborts it.
        let sent = match &mut self.in_flight {
            Some(sent) if sent.covers_start_of(&rpc) => sent,
            slot => {
                let (net, base, target) = (self.net.clone(), self.base.clone(), self.target);
                let (vote, prev) = (rpc.vote, rpc.prev_log_id);
                let answer = tokio::spawn(async move {
                    send(&net, &base, target, "append", &rpc, APPEND_TIMEOUT).await
                });
                slot.insert(InFlight {
                    vote,
                    prev,
                    last,
                    answer,
                })
            }
        };
        // Cancel-safe: if openraft's timeout drops this future, the task and its handle stay.
        let answer = (&mut sent.answer).await;
        let sent_last = sent.last;
        self.in_flight = None;
        let answer = answer.map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        Ok(match answer? {
            // The request carried a prefix of what was asked: only that prefix is matched.
            AppendEntriesResponse::Success if sent_last != last => {
                AppendEntriesResponse::PartialSuccess(sent_last)
            }
            other => other,
        })
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

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{base} unreachable: {source}")]
    Unreachable {
        base: String,
        #[source]
        source: reqwest::Error,
    },
    /// The peer answered with an error; dgate's own errors carry a message, passed on as is.
    #[error("{0}")]
    Answered(String),
    #[error("{base} answered nonsense: {source}")]
    Nonsense {
        base: String,
        #[source]
        source: reqwest::Error,
    },
}

/// Posts `body` to a peer's `/api/v1/raft/{path}` with the key; the answer as JSON.
pub async fn post_json<Req: Serialize, Resp: DeserializeOwned>(
    net: &HttpNetwork,
    base: &str,
    path: &str,
    body: &Req,
    timeout: Duration,
) -> Result<Resp, PeerError> {
    let res = net
        .http
        .post(format!("{}/api/v1/raft/{path}", base.trim_end_matches('/')))
        .header(KEY_HEADER, &*net.key)
        .timeout(timeout)
        .json(body)
        .send()
        .await
        .map_err(|source| PeerError::Unreachable {
            base: base.to_string(),
            source,
        })?;
    let status = res.status();
    if !status.is_success() {
        let text = res.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string));
        return Err(PeerError::Answered(
            message.unwrap_or_else(|| format!("{base} answered {status}: {text}")),
        ));
    }
    res.json().await.map_err(|source| PeerError::Nonsense {
        base: base.to_string(),
        source,
    })
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
mod tests;
