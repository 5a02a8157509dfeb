//! Several real `dgate` processes forming one Raft cluster on loopback.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Gateway, write_file};
use crate::upstream;

fn node(
    dir: &std::path::Path,
    name: &str,
    bootstrap: bool,
    join: Option<&str>,
    key: &str,
) -> Gateway {
    let join = join.map_or(String::new(), |j| format!("[\"{j}\"]"));
    let join = if join.is_empty() {
        "[]".to_string()
    } else {
        join
    };
    let config = write_file(
        dir,
        &format!("{name}.yaml"),
        &format!(
            "node_id: {name}\nadmin:\n  replication:\n    bootstrap_cluster: {bootstrap}\n    cluster_address: {join}\n    shared_key: {key}\n    raft_config: {{heartbeat_interval: 50ms, election_timeout_min: 300ms, election_timeout_max: 600ms}}\n"
        ),
    );
    Gateway::start(&dir.join(name), &["--config", config.to_str().unwrap()])
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cluster_status(gw: &Gateway) -> Value {
    gw.client().get("/api/v1/cluster").await.1["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_a_cluster_and_replicate_writes_from_any_node() {
    let up = upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let n1 = node(dir.path(), "n1", true, None, "k3y");
    let n2 = node(dir.path(), "n2", false, Some(&n1.admin), "k3y");
    let n3 = node(dir.path(), "n3", false, Some(&n1.admin), "k3y");
    eventually("three voters", || async {
        let s = cluster_status(&n1).await;
        s["members"]
            .as_array()
            .is_some_and(|m| m.len() == 3 && m.iter().all(|x| x["role"] == "voter"))
    })
    .await;
    assert_eq!(cluster_status(&n1).await["leader"], "n1");
    for gw in [&n1, &n2, &n3] {
        eventually("a leader on every node", || async {
            gw.client().get("/readyz").await.0 == 200
        })
        .await;
    }

    // Writes through a follower: committed by the leader, readable at once on the node that took them.
    let api2 = n2.client();
    let (s, v) = api2
        .put("service", json!({"name": "s", "urls": [up.url()]}))
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = api2
        .put(
            "route",
            json!({"name": "r", "paths": ["/*"], "methods": ["*"], "service": "s"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(api2.get("/api/v1/route/r").await.0, 200);
    // A refused write keeps its status across the forward.
    let (s, v) = api2.delete("service", json!({"name": "s"})).await;
    assert_eq!(s, 409, "{v}");
    // Every node applies it, and every proxy serves it.
    for gw in [&n1, &n2, &n3] {
        eventually("the route on every node", || async {
            gw.client().get("/api/v1/route/r").await.0 == 200
        })
        .await;
        let res = reqwest::get(format!("{}/hello", gw.proxy)).await.unwrap();
        assert_eq!(res.status(), 200, "proxy of {}", gw.admin);
    }

    // A node with the wrong shared key never gets in.
    let intruder = node(dir.path(), "n4", false, Some(&n1.admin), "wrong");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        cluster_status(&n1).await["members"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(intruder.client().get("/readyz").await.0, 503);
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/raft/vote", n1.admin))
        .header("x-dgate-cluster-key", "wrong")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
