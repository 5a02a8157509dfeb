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
        HttpNetwork::new(key, None),
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

/// Three nodes on loopback with `heartbeat_interval` (which openraft also uses as each append's
/// timeout), and the index of their leader.
async fn three_nodes(heartbeat_interval: u64) -> (Vec<Node>, usize) {
    let config = Arc::new(
        openraft::Config {
            heartbeat_interval,
            election_timeout_min: 1000,
            election_timeout_max: 2000,
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
    let leader = (leader.unwrap() - 1) as usize;
    (nodes, leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_over_http_and_refuse_a_wrong_key() {
    let (nodes, leader) = three_nodes(100).await;
    let leader = &nodes[leader];
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
    let res = {
        crate::tls::install_default_provider();
        reqwest::Client::new()
    }
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

/// Writes `cmd` through `leader`, and again through a new leader if one was elected meanwhile
/// (three nodes in one process on two threads, on a loaded machine). A write sent again may
/// find itself already applied: Updated, not Created.
async fn write_through_leader(nodes: &[Node], leader: usize, cmd: ChangeCommand) -> ApplyResponse {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut leader = leader;
    loop {
        let write = nodes[leader].raft.client_write(cmd.clone());
        match tokio::time::timeout(Duration::from_secs(60), write)
            .await
            .expect("the write commits")
        {
            Ok(written) => return written.data,
            Err(openraft::error::RaftError::APIError(
                openraft::error::ClientWriteError::ForwardToLeader(to),
            )) if Instant::now() < deadline => {
                if let Some(id) = to.leader_id {
                    leader = (id - 1) as usize;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// openraft gives each append the heartbeat interval; an entry that takes longer to send (a
/// module's component, megabytes of JSON) used to time out on every try and never commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_slower_to_send_than_the_heartbeat_still_commits() {
    let (nodes, leader) = three_nodes(20).await;
    write_through_leader(&nodes, leader, put_namespace("default")).await;
    // Megabytes of JSON in a debug build take far longer than 20 ms to encode, send and store.
    let module = Resource::Module(crate::resources::Module {
        name: "big".into(),
        namespace: "default".into(),
        payload: "AAAA".into(),
        module_type: crate::resources::ModuleType::Javascript,
        limits: Default::default(),
        tags: vec![],
        component: Some("A".repeat(8 << 20)),
        sources: Default::default(),
    });
    let written = write_through_leader(&nodes, leader, ChangeCommand::put(module)).await;
    assert!(
        matches!(
            written,
            ApplyResponse::Created(_) | ApplyResponse::Updated(_)
        ),
        "{written:?}"
    );
    for (i, n) in nodes.iter().enumerate() {
        eventually(&format!("node {} to apply the write", i + 1), || {
            n.sm.store()
                .get(&ResourceKey::new(Kind::Module, "default", "big"))
                .is_ok_and(|r| r.is_some())
        })
        .await;
    }
    for n in &nodes {
        n.raft.shutdown().await.unwrap();
    }
}
