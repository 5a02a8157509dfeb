//! State survives a clean restart and `kill -9` at any moment.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::Gateway;

#[tokio::test]
async fn state_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let api = gw.client();
    assert_eq!(api.put("namespace", json!({"name": "ns1"})).await.0, 201);
    assert_eq!(
        api.put(
            "service",
            json!({"name": "svc", "namespace": "ns1", "urls": ["http://127.0.0.1:8081"]})
        )
        .await
        .0,
        201
    );
    assert_eq!(
        api.put(
            "route",
            json!({"name": "rt", "namespace": "ns1", "paths": ["/x/*"], "methods": ["GET"], "service": "svc"})
        )
        .await
        .0,
        201
    );
    assert_eq!(
        api.put(
            "secret",
            json!({"name": "s", "namespace": "ns1", "data": "v"})
        )
        .await
        .0,
        201
    );
    gw.stop();

    let gw = Gateway::start(dir.path(), &[]);
    let api = gw.client();
    let (s, rt) = api.get("/api/v1/route/rt?namespace=ns1").await;
    assert_eq!(s, 200, "{rt}");
    assert_eq!(rt["data"]["service"], "svc");
    assert_eq!(rt["data"]["paths"], json!(["/x/*"]));
    let (s, svc) = api.get("/api/v1/service/svc?namespace=ns1").await;
    assert_eq!(s, 200);
    assert_eq!(svc["data"]["urls"], json!(["http://127.0.0.1:8081"]));
    // The default namespace is created once, and stays.
    let (_, nss) = api.get("/api/v1/namespace").await;
    assert_eq!(nss["count"], 2);
    // References still hold after restart.
    let (s, _) = api
        .delete("service", json!({"name": "svc", "namespace": "ns1"}))
        .await;
    assert_eq!(s, 409);
    gw.stop();
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let gw = Gateway::start(dir.path(), &[]);
        let api = gw.client();
        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        // Four concurrent writers, each creating one namespace per step until the kill.
        let mut writers = vec![];
        for w in 0..4 {
            let api = api.clone();
            let acked = acked.clone();
            writers.push(tokio::spawn(async move {
                let start = Instant::now();
                for i in 0.. {
                    if start.elapsed() > Duration::from_secs(20) {
                        break;
                    }
                    let name = format!("r{round}-w{w}-{i}");
                    let body = json!({"name": name}).to_string();
                    let Ok(res) = crate::helpers::http()
                        .put(format!("{}/api/v1/namespace", api.base()))
                        .body(body)
                        .send()
                        .await
                    else {
                        break;
                    };
                    if res.status().as_u16() == 201 {
                        acked.lock().unwrap().push(name);
                    } else {
                        break;
                    }
                }
            }));
        }
        // Let some writes land, then kill without warning.
        let deadline = Instant::now() + Duration::from_secs(10);
        while acked.lock().unwrap().len() < 40 * (round + 1) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        gw.kill9();
        for w in writers {
            let _ = w.await;
        }
        let acked = acked.lock().unwrap().clone();
        assert!(
            !acked.is_empty(),
            "no write was acknowledged before the kill"
        );

        let gw = Gateway::start(dir.path(), &[]);
        let (s, list) = gw.client().get("/api/v1/namespace").await;
        assert_eq!(s, 200);
        let stored: Vec<String> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect();
        for name in &acked {
            assert!(
                stored.contains(name),
                "acknowledged {name} lost after kill -9 (round {round})"
            );
        }
        // Every stored entry reads back whole.
        for name in &stored {
            let (s, one) = gw.client().get(&format!("/api/v1/namespace/{name}")).await;
            assert_eq!(s, 200, "{name}: {one}");
            assert_eq!(one["data"]["name"], name.as_str());
        }
        gw.stop();
    }
}

/// A data dir another dgate holds is named as such; a damaged one is not blamed on one.
#[tokio::test]
async fn storage_open_errors_say_what_went_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Gateway::start(&data, &[]);
    let second = Gateway::try_start(&data, &[])
        .err()
        .expect("the second must not start");
    assert!(second.contains("holds its lock"), "{second}");
    first.stop();

    let damaged = dir.path().join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    std::fs::write(damaged.join("CURRENT"), "garbage").unwrap();
    let err = Gateway::try_start(&damaged, &[])
        .err()
        .expect("a damaged store must not open");
    assert!(err.contains("cannot open storage in"), "{err}");
    assert!(!err.contains("lock"), "{err}");
}
