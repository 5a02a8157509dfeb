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
    node_on(dir, name, bootstrap, join, key, &[], "")
}

/// A cluster node; `ports` are extra server flags (fixed ports survive a restart) and
/// `raft_extra` more `raft_config` entries.
fn node_on(
    dir: &std::path::Path,
    name: &str,
    bootstrap: bool,
    join: Option<&str>,
    key: &str,
    ports: &[&str],
    raft_extra: &str,
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
            "node_id: {name}\nadmin:\n  replication:\n    bootstrap_cluster: {bootstrap}\n    cluster_address: {join}\n    shared_key: {key}\n    raft_config: {{heartbeat_interval: 100ms, election_timeout_min: 1000ms, election_timeout_max: 2000ms{raft_extra}}}\n"
        ),
    );
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(ports);
    Gateway::start(&dir.join(name), &args)
}

/// (admin, proxy) loopback ports for `n` nodes, fixed so a node keeps its address across a restart.
fn fixed_ports(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            (
                crate::helpers::free_port().to_string(),
                crate::helpers::free_port().to_string(),
            )
        })
        .collect()
}

fn port_flags(p: &(String, String)) -> [&str; 4] {
    ["--admin-port", p.0.as_str(), "--proxy-port", p.1.as_str()]
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
    let out = crate::helpers::cli(&n2.admin, &["cluster", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("node n2  leader n1  term "), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains(" voter ")).count(),
        3,
        "{text}"
    );
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

    // A module written through a follower is built there, replicated as a component, and each
    // node compiles it and runs it on its proxy.
    use base64::Engine as _;
    let source =
        "export const requestModifier = (ctx) => { ctx.request().headers.set('x-mod', 'on'); };";
    let (s, v) = api2
        .put(
            "module",
            json!({"name": "m", "moduleType": "javascript", "payload": base64::engine::general_purpose::STANDARD.encode(source)}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = api2
        .put(
            "route",
            json!({"name": "rm", "paths": ["/mod/*"], "methods": ["*"], "service": "s", "modules": ["m"]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for gw in [&n1, &n2, &n3] {
        eventually("the module route on every node", || async {
            gw.client().get("/api/v1/route/rm").await.0 == 200
        })
        .await;
        let v: Value = reqwest::get(format!("{}/mod/x", gw.proxy))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["headers"]["x-mod"], "on", "proxy of {}: {v}", gw.admin);
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

    // Membership from the CLI, sent to a follower and carried out by the leader.
    let out = crate::helpers::cli(&n2.admin, &["cluster", "promote", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no member named \"nobody\" (HTTP 404)"));
    let out = crate::helpers::cli(&n2.admin, &["-o", "json", "cluster", "leave", "n3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("n3 to be gone", || async {
        cluster_status(&n1).await["members"]
            .as_array()
            .is_some_and(|m| m.len() == 2)
    })
    .await;
    // The two remaining nodes still commit writes (once the membership change has settled: on a
    // loaded machine the first try may land in a new election).
    eventually("a write committed by the two remaining nodes", || async {
        // 200 if an earlier try timed out but was committed after all.
        matches!(
            n1.client()
                .put("namespace", json!({"name": "after-leave"}))
                .await
                .0,
            200 | 201
        )
    })
    .await;
    drop(n3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_leader_loses_no_acknowledged_write() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let up = upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let ports = fixed_ports(3);
    let flags = |i: usize| port_flags(&ports[i]);
    let n1_admin = format!("http://127.0.0.1:{}", ports[0].0);
    let n1 = node_on(dir.path(), "n1", true, None, "k", &flags(0), "");
    let n2 = node_on(dir.path(), "n2", false, Some(&n1_admin), "k", &flags(1), "");
    let n3 = node_on(dir.path(), "n3", false, Some(&n1_admin), "k", &flags(2), "");
    eventually("three voters", || async {
        cluster_status(&n1).await["members"]
            .as_array()
            .is_some_and(|m| m.len() == 3)
    })
    .await;
    let api1 = n1.client();
    api1.put("service", json!({"name": "s", "urls": [up.url()]}))
        .await;
    let (s, _) = api1
        .put(
            "route",
            json!({"name": "r", "paths": ["/*"], "methods": ["*"], "service": "s"}),
        )
        .await;
    assert_eq!(s, 201);

    // A stream of writes through n2 while the leader dies.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (api2, acked, stop) = (n2.client(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let name = format!("w{i}");
                if api2.put("namespace", json!({"name": name})).await.0 == 201 {
                    acked.lock().unwrap().push(name);
                } else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        })
    };
    eventually("some writes", || async {
        acked.lock().unwrap().len() >= 10
    })
    .await;
    n1.kill9();
    let killed = Instant::now();
    eventually("a new leader", || async {
        let leader = cluster_status(&n2).await["leader"].clone();
        leader == "n2" || leader == "n3"
    })
    .await;
    let failover = killed.elapsed();
    // The surviving proxies keep serving.
    for gw in [&n2, &n3] {
        assert_eq!(
            reqwest::get(format!("{}/x", gw.proxy))
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let before = acked.lock().unwrap().len();
    eventually("writes accepted again", || async {
        acked.lock().unwrap().len() > before + 5
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    eprintln!("failover took {failover:?}");

    let acked = acked.lock().unwrap().clone();
    for gw in [&n2, &n3] {
        eventually("every acknowledged write on the survivors", || async {
            let (_, list) = gw.client().get("/api/v1/namespace").await;
            let have: Vec<&str> = list["data"].as_array().map_or(vec![], |a| {
                a.iter().filter_map(|n| n["name"].as_str()).collect()
            });
            acked.iter().all(|n| have.contains(&n.as_str()))
        })
        .await;
    }

    // The old leader comes back with its data dir and catches up.
    let n1 = node_on(dir.path(), "n1", true, None, "k", &flags(0), "");
    eventually("the old leader to catch up", || async {
        let (_, list) = n1.client().get("/api/v1/namespace").await;
        let have: Vec<&str> = list["data"].as_array().map_or(vec![], |a| {
            a.iter().filter_map(|n| n["name"].as_str()).collect()
        });
        acked.iter().all(|n| have.contains(&n.as_str()))
    })
    .await;
    assert_eq!(n1.client().get("/readyz").await.0, 200);

    // With two of three nodes gone, the last one is a minority: writes are refused with 503 (not
    // left hanging), and its proxy keeps serving the last state.
    drop(n2);
    drop(n3);
    let started = Instant::now();
    let (s, v) = n1
        .client()
        .put("namespace", json!({"name": "lonely"}))
        .await;
    assert_eq!(s, 503, "{v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        reqwest::get(format!("{}/x", n1.proxy))
            .await
            .unwrap()
            .status(),
        200
    );
}

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
    assert!(
        cluster_status(&n3).await["snapshot_index"]
            .as_u64()
            .is_some()
    );
}

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
        let res = reqwest::get(format!("{}/x", gw.proxy)).await.unwrap();
        assert_eq!(res.status(), 200);
    }
}
