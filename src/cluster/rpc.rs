//! The cluster's endpoints on the admin listener, at `/api/v1/raft`, behind the shared key: the
//! Raft RPCs, forwarded writes, joins, membership changes and `whoami`.

use super::membership::WhoAmI;
use super::{Cluster, JoinRequest, MembershipChange, Rejected, WriteError, network};
use crate::resources::ChangeCommand;

impl Cluster {
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
}
