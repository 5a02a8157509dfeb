//! What a module, a request or a tenant must not be able to do to the gateway or to the other
//! tenants: reach the node's admin API or private addresses.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use std::time::Duration;

use crate::helpers::{Gateway, eventually, ok_put, write_file};
use crate::upstream;

/// Sends `GET /probe` with `x-to: to` and returns the status and JSON answer.
async fn probe(http: &reqwest::Client, gw: &Gateway, to: &str) -> (u16, Value) {
    let res = http
        .get(format!("{}/probe", gw.proxy))
        .header("x-to", to)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn put_probe(gw: &Gateway, service_url: &str) {
    let api = gw.client();
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/probe.js"
    ))
    .unwrap();
    ok_put(
        &api,
        "module",
        json!({"name": "probe", "payload": B64.encode(source), "moduleType": "javascript",
               "limits": {"timeout": "10s"}}),
    )
    .await;
    ok_put(&api, "service", json!({"name": "s", "urls": [service_url]})).await;
    ok_put(
        &api,
        "route",
        json!({"name": "probe", "paths": ["/probe"], "methods": ["*"], "modules": ["probe"]}),
    )
    .await;
    ok_put(
        &api,
        "route",
        json!({"name": "up", "paths": ["/api/*"], "methods": ["*"], "service": "s", "modules": ["probe"]}),
    )
    .await;
}

/// Module `fetch` and `fetchUpstream` refuse loopback, private and link-local addresses and the
/// node's own admin API by default; `modules.fetch.allow` opens what the operator names, and
/// the admin API stays closed unless named with its port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_cannot_reach_the_admin_api_or_private_addresses() {
    let up = upstream::start("a").await;
    let http = reqwest::Client::new();
    let admin_write = |gw: &Gateway| format!("{}/api/v1/namespace", gw.admin);

    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&dir.path().join("data"), &[]);
    put_probe(&gw, &up.url()).await;
    let local_name = up.url().replace("127.0.0.1", "localhost");
    for (to, why) in [
        (admin_write(&gw), "own admin API"),
        (up.url(), "loopback"),
        (local_name, "loopback"),
        (
            "http://169.254.169.254/latest/meta-data".into(),
            "link-local",
        ),
        ("http://10.0.0.1/".into(), "private"),
        ("http://[::ffff:127.0.0.1]/".into(), "loopback"),
    ] {
        let (status, body) = probe(&http, &gw, &to).await;
        assert_eq!(status, 403, "{to}: {body}");
        let refused = body["refused"].as_str().unwrap_or_default();
        assert!(refused.contains(why), "{to}: {body}");
        assert!(refused.contains("modules.fetch.allow"), "{to}: {body}");
    }
    // fetchUpstream: the service's own URL goes, the admin API does not.
    let res = http
        .get(format!("{}/api/x", gw.proxy))
        .header("x-up", up.url())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .put(format!("{}/api/v1/namespace", gw.proxy))
        .header("x-up", &gw.admin)
        .body(r#"{"name": "pwned"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    // The client hears "module failed"; the log says why.
    eventually("the refusal logged", Duration::from_secs(10), || async {
        gw.logs().contains("own admin API")
    })
    .await;
    let (status, _) = gw.client().get("/api/v1/namespace/pwned").await;
    assert_eq!(status, 404, "no namespace was written through the proxy");

    // Opened by the config: loopback reachable, the admin API still not.
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "c.yaml",
        "modules:\n  fetch:\n    allow: [127.0.0.0/8]\n",
    );
    let gw = Gateway::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    put_probe(&gw, &up.url()).await;
    let (status, body) = probe(&http, &gw, &format!("{}/anything", up.url())).await;
    assert_eq!(
        (status, body["reached"].as_u64()),
        (200, Some(200)),
        "{body}"
    );
    let (status, body) = probe(&http, &gw, &admin_write(&gw)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["refused"].as_str().unwrap().contains("own admin API"),
        "{body}"
    );
    let (status, _) = gw.client().get("/api/v1/namespace/pwned").await;
    assert_eq!(status, 404);
}

/// Sends `GET path` as written (HTTP clients would remove its dot-segments themselves) and
/// returns the status and body.
async fn raw_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// `..` and `%2e%2e` segments are resolved before routing and the resolved path is what the
/// upstream gets, so `/public/../admin/x` cannot reach an upstream's `/admin/x` through a
/// `/public/*` route; a dot-segment hidden behind an encoded slash is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_are_resolved_before_routing() {
    let up = upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&dir.path().join("data"), &[]);
    let api = gw.client();
    ok_put(&api, "service", json!({"name": "s", "urls": [up.url()]})).await;
    ok_put(
        &api,
        "route",
        json!({"name": "public", "paths": ["/public/*"], "methods": ["GET"], "service": "s"}),
    )
    .await;
    for path in [
        "/public/../admin/x",
        "/public/%2e%2e/admin/x",
        "/public/.%2E/admin/x",
    ] {
        let (status, body) = raw_get(&gw.proxy, path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    for path in ["/public/..%2fadmin/x", "/public/%2e%2e%2Fadmin/x"] {
        let (status, body) = raw_get(&gw.proxy, path).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    // Inside the route, the upstream gets the resolved path.
    let (status, body) = raw_get(&gw.proxy, "/public/a/../b/./c?q=1").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""path":"/public/b/c""#), "{body}");
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}
