//! A node that missed the compacted log catches up by snapshot.

use serde_json::json;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_the_compacted_log_catches_up_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let ports = fixed_ports(3);
    let flags = |i: usize| port_flags(&ports[i]);
    let n1_admin = format!("http://127.0.0.1:{}", ports[0].0);
    let small = |name: &str, boot: bool, i: usize| {
        let join = (!boot).then_some(n1_admin.as_str());
        node_on(
            dir.path(),
            name,
            boot,
            join,
            "k",
            &flags(i),
            ", snapshot_threshold: 20",
        )
    };
    let n1 = small("n1", true, 0);
    let _n2 = small("n2", false, 1);
    let n3 = small("n3", false, 2);
    eventually("three voters", || async {
        cluster_status(&n1).await["members"]
            .as_array()
            .is_some_and(|m| m.len() == 3)
    })
    .await;
    eventually("n3 applied the membership", || async {
        cluster_status(&n3).await["applied_index"]
            .as_u64()
            .is_some()
    })
    .await;
    let n3_applied = cluster_status(&n3).await["applied_index"].as_u64().unwrap();
    drop(n3);
    // A route written twice while n3 is away: its versions reach n3 in the snapshot.
    let api = n1.client();
    crate::helpers::ok_put(
        &api,
        "service",
        json!({"name": "s", "urls": ["http://127.0.0.1:9"]}),
    )
    .await;
    for path in ["/a", "/b"] {
        crate::helpers::ok_put(
            &api,
            "route",
            json!({"name": "r", "paths": [path], "methods": ["GET"], "service": "s"}),
        )
        .await;
    }
    for i in 0..150 {
        let (s, v) = n1
            .client()
            .put("namespace", json!({"name": format!("s{i}")}))
            .await;
        assert_eq!(s, 201, "{v}");
    }
    eventually("the log to be compacted past n3", || async {
        cluster_status(&n1).await["purged_index"]
            .as_u64()
            .is_some_and(|p| p > n3_applied)
    })
    .await;
    let n3 = small("n3", false, 2);
    eventually("n3 to catch up", || async {
        let (_, list) = n3.client().get("/api/v1/namespace").await;
        list["count"].as_u64() == Some(151)
    })
    .await;
    let (_, here) = n3.client().get("/api/v1/route/r/history").await;
    let (_, there) = n1.client().get("/api/v1/route/r/history").await;
    assert_eq!(here["count"], 2, "{here}");
    assert_eq!(here, there, "the snapshot carries the history");
    assert!(
        cluster_status(&n3).await["snapshot_index"]
            .as_u64()
            .is_some()
    );
}
