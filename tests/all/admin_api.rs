//! The admin API over a real socket: CRUD of every kind, bad input, auth, metrics.

use serde_json::{Value, json};

use crate::helpers::{Api, Gateway, write_file};

/// One valid body per kind, in the order they can be created (and the reverse of deletion).
fn every_kind() -> Vec<(&'static str, Value)> {
    vec![
        ("namespace", json!({"name": "ns1", "tags": ["t"]})),
        (
            "service",
            json!({"name": "svc", "namespace": "ns1", "urls": ["http://127.0.0.1:9"], "retries": 2, "requestTimeout": "5s"}),
        ),
        (
            "module",
            json!({"name": "mod1", "namespace": "ns1", "payload": "ZXhwb3J0IGNvbnN0IHJlcXVlc3RNb2RpZmllciA9ICgpID0+IHt9Ow==", "moduleType": "javascript"}),
        ),
        (
            "route",
            json!({"name": "rt", "namespace": "ns1", "paths": ["/x/*"], "methods": ["GET"], "service": "svc", "modules": ["mod1"], "stripPath": true}),
        ),
        (
            "domain",
            json!({"name": "dom", "namespace": "ns1", "patterns": ["*.example.com"], "priority": 5}),
        ),
        (
            "collection",
            json!({"name": "col", "namespace": "ns1", "schema": {"type": "object"}, "visibility": "public"}),
        ),
        (
            "document",
            json!({"id": "doc1", "namespace": "ns1", "collection": "col", "data": {"k": "v"}}),
        ),
        (
            "secret",
            json!({"name": "sec", "namespace": "ns1", "data": "hunter2"}),
        ),
    ]
}

fn get_path(kind: &str, body: &Value) -> String {
    match kind {
        "namespace" => format!("/api/v1/namespace/{}", body["name"].as_str().unwrap()),
        "document" => format!(
            "/api/v1/document/{}?namespace=ns1&collection=col",
            body["id"].as_str().unwrap()
        ),
        _ => format!(
            "/api/v1/{kind}/{}?namespace=ns1",
            body["name"].as_str().unwrap()
        ),
    }
}

#[tokio::test]
async fn crud_of_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let api = gw.client();
    for (kind, body) in every_kind() {
        let (s, res) = api.put(kind, body.clone()).await;
        assert_eq!(s, 201, "{kind}: {res}");
        let (s, got) = api.get(&get_path(kind, &body)).await;
        assert_eq!(s, 200, "{kind}: {got}");
        assert_eq!(got["status_code"], 200);
        let key = if kind == "document" { "id" } else { "name" };
        assert_eq!(got["data"][key], body[key], "{kind}");
        let list_path = match kind {
            "namespace" => "/api/v1/namespace".to_string(),
            "document" => "/api/v1/document?namespace=ns1&collection=col".to_string(),
            _ => format!("/api/v1/{kind}?namespace=ns1"),
        };
        let (s, list) = api.get(&list_path).await;
        assert_eq!(s, 200);
        assert!(list["count"].as_u64().unwrap() >= 1, "{kind}: {list}");
    }
    let (_, secret) = api.get("/api/v1/secret/sec?namespace=ns1").await;
    assert_eq!(secret["data"]["data"], "**redacted**");

    // Delete in reverse order; each one is gone afterwards.
    for (kind, body) in every_kind().into_iter().rev() {
        let del = match kind {
            "document" => json!({"id": "doc1", "namespace": "ns1", "collection": "col"}),
            "namespace" => json!({"name": "ns1"}),
            _ => json!({"name": body["name"], "namespace": "ns1"}),
        };
        let (s, res) = api.delete(kind, del).await;
        assert_eq!(s, 204, "{kind}: {res}");
        let (s, _) = api.get(&get_path(kind, &body)).await;
        assert_eq!(s, 404, "{kind}");
    }
    gw.stop();
}

#[tokio::test]
async fn bad_input_classes_leave_state_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(dir.path(), "c.yaml", "admin:\n  max_body_size: 1KiB\n");
    let data = dir.path().join("data");
    let gw = Gateway::start(&data, &["--config", config.to_str().unwrap()]);
    let api = gw.client();
    api.put("namespace", json!({"name": "ns1"})).await;
    let before = snapshot(&api).await;

    let cases: Vec<(&str, &str, Option<String>, u16)> = vec![
        ("PUT", "/api/v1/namespace", Some("{}".into()), 422),
        ("PUT", "/api/v1/namespace", Some(r#"{"name": 5}"#.into()), 422),
        // Unknown fields are ignored as DGate does, except in dgate's own extensions.
        ("PUT", "/api/v1/module", Some(r#"{"name": "x", "payload": "AAAA", "limits": {"bogus": 1}}"#.into()), 422),
        ("PUT", "/api/v1/namespace", Some("{not json".into()), 400),
        ("PUT", "/api/v1/namespace", Some(format!(r#"{{"name": "big", "tags": ["{}"]}}"#, "a".repeat(2000))), 413),
        (
            "PUT",
            "/api/v1/route",
            Some(r#"{"name":"r","namespace":"ns1","paths":["/x"],"methods":["GET"],"service":"ghost"}"#.into()),
            422,
        ),
        ("PUT", "/api/v1/service", Some(r#"{"name":"s","namespace":"ns1","urls":["nope"]}"#.into()), 422),
        ("PUT", "/api/v1/service", Some(r#"{"name":"s","namespace":"missing","urls":["http://h"]}"#.into()), 422),
        ("DELETE", "/api/v1/namespace", Some(r#"{"name":"missing"}"#.into()), 404),
        ("DELETE", "/api/v1/namespace", Some("[]".into()), 422),
        ("GET", "/api/v1/nothing", None, 404),
        ("PATCH", "/api/v1/namespace", Some("{}".into()), 405),
    ];
    for (method, path, body, want) in cases {
        let (s, res) = api.raw(method, path, body.clone()).await;
        assert_eq!(s, want, "{method} {path} {body:?}: {res}");
        assert_eq!(res["status"], want, "{res}");
        assert!(
            res["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{res}"
        );
    }
    assert_eq!(snapshot(&api).await, before);
    gw.stop();
}

/// Everything an API client can see in the namespaces it knows of.
async fn snapshot(api: &Api) -> Vec<Value> {
    let mut all = vec![];
    let (_, nss) = api.get("/api/v1/namespace").await;
    for ns in nss["data"].as_array().unwrap() {
        let name = ns["name"].as_str().unwrap();
        all.push(ns.clone());
        for kind in [
            "service",
            "route",
            "module",
            "domain",
            "collection",
            "document",
            "secret",
        ] {
            let (_, list) = api.get(&format!("/api/v1/{kind}?namespace={name}")).await;
            all.push(list["data"].clone());
        }
    }
    all
}

#[tokio::test]
async fn key_auth_on_and_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "c.yaml",
        "admin:\n  auth_method: key\n  key_auth:\n    keys: [\"${TEST_KEY:-k3y}\"]\n",
    );
    let gw = Gateway::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let (s, res) = gw.client().put("namespace", json!({"name": "a"})).await;
    assert_eq!(s, 401, "{res}");
    let (s, _) = gw
        .client()
        .with_header("X-DGate-Key", "wrong")
        .put("namespace", json!({"name": "a"}))
        .await;
    assert_eq!(s, 401);
    let authed = gw.client().with_header("X-DGate-Key", "k3y");
    let (s, _) = authed.put("namespace", json!({"name": "a"})).await;
    assert_eq!(s, 201);
    let (s, _) = gw.client().get("/healthz").await;
    assert_eq!(s, 200);
    let (_, list) = authed.get("/api/v1/namespace").await;
    assert_eq!(list["count"], 2);
    gw.stop();

    // The same data dir without auth: open to everyone.
    let gw = Gateway::start(&dir.path().join("data"), &[]);
    let (s, list) = gw.client().get("/api/v1/namespace").await;
    assert_eq!(s, 200);
    assert_eq!(list["count"], 2);
    gw.stop();
}

#[tokio::test]
async fn basic_auth_and_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "c.yaml",
        "admin:\n  auth_method: basic\n  basic_auth:\n    users:\n      - {username: admin, password: pw}\n  allow_list: [127.0.0.0/8]\n",
    );
    let gw = Gateway::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let (s, _) = gw.client().get("/api/v1/namespace").await;
    assert_eq!(s, 401);
    // base64("admin:pw")
    let (s, _) = gw
        .client()
        .with_header("Authorization", "Basic YWRtaW46cHc=")
        .get("/api/v1/namespace")
        .await;
    assert_eq!(s, 200);
    gw.stop();

    let config = write_file(
        dir.path(),
        "c2.yaml",
        "admin:\n  allow_list: [10.0.0.0/8]\n",
    );
    let gw = Gateway::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let (s, res) = gw.client().get("/healthz").await;
    assert_eq!(s, 403, "{res}");
    gw.stop();
}

#[tokio::test]
async fn metrics_and_probes() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let api = gw.client();
    assert_eq!(api.get("/readyz").await.0, 200);
    api.get("/api/v1/namespace").await;
    let text = gw.metrics().await;
    assert!(
        text.contains(
            r#"dgate_admin_requests_total{method="GET",route="/api/v1/{kind}",status="200"} 1"#
        ),
        "{text}"
    );
    gw.stop();
}

/// A request that declares a body over the cap is answered 413 at once, not after its body
/// (which a client may never send) has arrived.
#[tokio::test]
async fn a_declared_body_over_the_cap_is_refused_before_it_arrives() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(dir.path(), "c.yaml", "admin:\n  max_body_size: 1KiB\n");
    let gw = Gateway::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let mut s = tokio::net::TcpStream::connect(gw.admin.trim_start_matches("http://"))
        .await
        .unwrap();
    s.write_all(
        b"PUT /api/v1/namespace HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{\"name\":",
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(std::time::Duration::from_secs(20), s.read_exact(&mut head))
        .await
        .expect("an answer without the rest of the body")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    gw.stop();

    // Raft's endpoints keep their own, larger limit: a log batch over the admin cap goes through.
    let config = write_file(
        dir.path(),
        "r.yaml",
        "admin:\n  max_body_size: 1KiB\n  replication: {shared_key: k, bootstrap_cluster: true}\n",
    );
    let gw = Gateway::start(
        &dir.path().join("raft"),
        &["--config", config.to_str().unwrap()],
    );
    let res = crate::helpers::http()
        .post(format!("{}/api/v1/raft/vote", gw.admin))
        .header("x-dgate-cluster-key", "k")
        .header("content-type", "application/json")
        .body(format!("{{\"padding\": \"{}\"}}", "x".repeat(4096)))
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 413, "{:?}", res.text().await);
    gw.stop();
}
