//! A node joined by the CLI, and five nodes losing two, then three.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::upstream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joined_by_cli_and_five_nodes_losing_two_then_three() {
    let up = upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let n1 = node(dir.path(), "n1", true, None, "k5");
    // n2 starts with replication on but no bootstrap and nowhere to join: it waits to be added.
    let n2 = node(dir.path(), "n2", false, None, "k5");
    assert_eq!(n2.client().get("/readyz").await.0, 503);

    // Bad joins are refused with a message, and change nothing.
    for (args, message) in [
        (
            vec!["n9", n2.admin.as_str()],
            "is named \"n2\", not \"n9\" (HTTP 422)",
        ),
        (vec!["n2", "not a url"], "is not a URL"),
        (
            vec!["n2", "ftp://127.0.0.1:1"],
            "must be the node's admin URL",
        ),
        (vec!["n2", "http://127.0.0.1:1"], "cannot reach node \"n2\""),
    ] {
        let mut cmd = vec!["cluster", "join"];
        cmd.extend(args);
        let out = crate::helpers::cli(&n1.admin, &cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {err}");
        assert!(err.contains(message), "{cmd:?}: {err}");
    }
    assert_eq!(
        cluster_status(&n1).await["members"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let out = crate::helpers::cli(&n1.admin, &["cluster", "join", "n2", &n2.admin]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n3 = node(dir.path(), "n3", false, Some(&n1.admin), "k5");
    let n4 = node(dir.path(), "n4", false, Some(&n1.admin), "k5");
    let n5 = node(dir.path(), "n5", false, Some(&n2.admin), "k5");
    eventually("five voters", || async {
        cluster_status(&n1).await["members"]
            .as_array()
            .is_some_and(|m| m.len() == 5 && m.iter().all(|x| x["role"] == "voter"))
    })
    .await;
    let api2 = n2.client();
    api2.put("service", json!({"name": "s", "urls": [up.url()]}))
        .await;
    let (s, v) = api2
        .put(
            "route",
            json!({"name": "r", "paths": ["/*"], "methods": ["*"], "service": "s"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // Two of five down: the other three are a majority and still commit.
    drop(n4);
    drop(n5);
    let (s, v) = api2.put("namespace", json!({"name": "with-three"})).await;
    assert_eq!(s, 201, "{v}");

    // Three of five down: the two left are a minority. They refuse writes with a clear 503,
    // answer reads, and keep proxying the last state.
    drop(n3);
    for gw in [&n1, &n2] {
        let started = Instant::now();
        let (s, v) = gw
            .client()
            .put("namespace", json!({"name": "minority"}))
            .await;
        assert_eq!(s, 503, "{v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!(gw.client().get("/api/v1/namespace/with-three").await.0, 200);
        let res = crate::helpers::get(format!("{}/x", gw.proxy))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
}
