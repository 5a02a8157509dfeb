//! The leader dies under a stream of writes: no acknowledged write is lost.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::upstream;

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
            crate::helpers::get(format!("{}/x", gw.proxy))
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

    // The new leader's status shows the dead node unreachable and behind.
    let leader = cluster_status(&n2).await["leader"]
        .as_str()
        .unwrap()
        .to_string();
    let leader_gw = if leader == "n2" { &n2 } else { &n3 };
    eventually("the dead node shown unreachable and behind", || async {
        let status = cluster_status(leader_gw).await;
        let members = status["members"].as_array().cloned().unwrap_or_default();
        let of = |name: &str| members.iter().find(|m| m["name"] == name).cloned();
        let (Some(dead), Some(me)) = (of("n1"), of(&leader)) else {
            return false;
        };
        me["reachable"] == true
            && me["lag"] == 0
            && dead["reachable"] == false
            && dead["lag"].as_u64().is_some_and(|lag| lag > 0)
    })
    .await;

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
    eventually("the old leader reachable and caught up", || async {
        let status = cluster_status(leader_gw).await;
        status["members"].as_array().is_some_and(|members| {
            members
                .iter()
                .all(|m| m["reachable"] == true && m["lag"] == 0)
        })
    })
    .await;

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
        crate::helpers::get(format!("{}/x", n1.proxy))
            .await
            .unwrap()
            .status(),
        200
    );
}
