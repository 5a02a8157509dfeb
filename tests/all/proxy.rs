//! The proxy over real sockets: matching, forwarding semantics, errors, retries, streaming, hot
//! reload, cancellation and h2c. Upstreams are real TCP servers (see `upstream.rs`).

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Api, Gateway, ok_put, write_file};
use crate::upstream;

/// GET through the proxy with an optional Host; returns status, headers and JSON (or Null).
async fn get(
    gw: &Gateway,
    path: &str,
    host: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = crate::helpers::http().get(format!("{}{path}", gw.proxy));
    if let Some(h) = host {
        req = req.header("host", h);
    }
    let res = req.send().await.expect("proxy request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Sends every request in the default namespace to `up` (service `s`, route `r`).
async fn serve_all(api: &Api, up: &upstream::Upstream) {
    ok_put(api, "service", json!({"name": "s", "urls": [up.url()]})).await;
    ok_put(
        api,
        "route",
        json!({"name": "r", "paths": ["/*"], "methods": ["*"], "service": "s"}),
    )
    .await;
}

/// A gateway on the defaults whose every request goes to `up`; keep the dir alive with it.
async fn gateway_to(up: &upstream::Upstream) -> (tempfile::TempDir, Gateway) {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    serve_all(&gw.client(), up).await;
    (dir, gw)
}

fn start(dir: &std::path::Path, config: Option<&str>) -> Gateway {
    match config {
        Some(text) => {
            let path = write_file(dir, "dgate.yaml", text);
            Gateway::start(&dir.join("data"), &["--config", path.to_str().unwrap()])
        }
        None => Gateway::start(&dir.join("data"), &[]),
    }
}

#[tokio::test]
async fn forwarding_semantics() {
    let up = upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(
        dir.path(),
        Some("proxy:\n  global_headers:\n    x-served-by: dgate-test\n"),
    );
    let api = gw.client();
    ok_put(
        &api,
        "service",
        json!({"name": "s", "urls": [format!("{}/base/", up.url())]}),
    )
    .await;
    ok_put(&api, "service", json!({"name": "noq", "urls": [up.url()], "disableQueryParams": true, "hideDGateHeaders": true})).await;
    ok_put(&api, "route", json!({"name": "strip", "paths": ["/api/*"], "methods": ["GET"], "service": "s", "stripPath": true})).await;
    ok_put(&api, "route", json!({"name": "keep", "paths": ["/keep/{id}"], "methods": ["*"], "service": "s", "preserveHost": true})).await;
    ok_put(
        &api,
        "route",
        json!({"name": "noq", "paths": ["/noq"], "methods": ["GET"], "service": "noq"}),
    )
    .await;

    let (s, h, v) = get(&gw, "/api/a/b?x=1&y=2", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["path"], "/base/a/b");
    assert_eq!(v["query"], "x=1&y=2");
    assert_eq!(v["headers"]["host"], up.addr.to_string());
    assert_eq!(v["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(v["headers"]["x-real-ip"], "127.0.0.1");
    assert_eq!(v["headers"]["x-forwarded-proto"], "http");
    assert_eq!(
        v["headers"]["x-forwarded-host"],
        gw.proxy.trim_start_matches("http://")
    );
    assert_eq!(v["headers"]["via"], "1.1 dgate");
    assert_eq!(h["via"], "1.1 dgate");
    assert_eq!(h["x-served-by"], "dgate-test");

    let (s, _, v) = get(&gw, "/keep/42?q", Some("example.org")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["path"], "/base/keep/42");
    assert_eq!(v["headers"]["host"], "example.org");

    let (s, h, v) = get(&gw, "/noq?secret=1", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["query"], Value::Null);
    assert!(h.get("via").is_none(), "hideDGateHeaders");

    // Hop-by-hop headers, and those the Connection header names, do not cross; X-Forwarded-For
    // appends.
    let res = crate::helpers::http()
        .get(format!("{}/api/x", gw.proxy))
        .header("connection", "x-hop")
        .header("x-hop", "1")
        .header("proxy-authorization", "Basic eA==")
        .header("x-forwarded-for", "10.0.0.1")
        .header("x-end-to-end", "kept")
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert!(v["headers"].get("x-hop").is_none(), "{v}");
    assert!(v["headers"].get("proxy-authorization").is_none(), "{v}");
    assert_eq!(v["headers"]["x-end-to-end"], "kept");
    assert_eq!(v["headers"]["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
    gw.stop();
}

#[tokio::test]
async fn matching_rules() {
    let (a, b, d) = (
        upstream::start("a").await,
        upstream::start("b").await,
        upstream::start("default").await,
    );
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    let api = gw.client();
    for (ns, up) in [("nsa", &a), ("nsb", &b), ("default", &d)] {
        if ns != "default" {
            ok_put(&api, "namespace", json!({"name": ns})).await;
        }
        ok_put(
            &api,
            "service",
            json!({"name": "s", "namespace": ns, "urls": [up.url()]}),
        )
        .await;
        ok_put(&api, "route", json!({"name": "all", "namespace": ns, "paths": ["/*"], "methods": ["*"], "service": "s"})).await;
    }
    ok_put(&api, "domain", json!({"name": "wild", "namespace": "nsa", "patterns": ["*.a.test", "exact.test"], "priority": 1})).await;
    ok_put(
        &api,
        "domain",
        json!({"name": "api", "namespace": "nsb", "patterns": ["api.*"], "priority": 10}),
    )
    .await;
    ok_put(&api, "domain", json!({"name": "re", "namespace": "nsb", "patterns": ["/^c[0-9]+\\.test$/"], "priority": 0})).await;

    for (host, want) in [
        ("www.a.test", "a"),
        ("exact.test", "a"),
        ("api.a.test", "b"), // both match; the higher priority wins
        ("c42.test", "b"),
        ("other.test", "default"),
        ("EXACT.TEST:8080", "a"),
    ] {
        let (s, _, v) = get(&gw, "/x", Some(host)).await;
        assert_eq!(s, 200, "{host}: {v}");
        assert_eq!(v["upstream"], want, "{host}");
    }

    // Within a namespace: the most specific path, then the method.
    let svc = json!({"name": "sa", "namespace": "nsa", "urls": [a.url()]});
    ok_put(&api, "service", svc).await;
    ok_put(
        &api,
        "service",
        json!({"name": "sb", "namespace": "nsa", "urls": [b.url()]}),
    )
    .await;
    ok_put(&api, "route", json!({"name": "user", "namespace": "nsa", "paths": ["/users/{id}"], "methods": ["GET"], "service": "sb"})).await;
    ok_put(&api, "route", json!({"name": "me", "namespace": "nsa", "paths": ["/users/me"], "methods": ["GET"], "service": "sa"})).await;
    let host = Some("x.a.test");
    assert_eq!(get(&gw, "/users/7", host).await.2["upstream"], "b");
    assert_eq!(get(&gw, "/users/me", host).await.2["upstream"], "a");
    // POST /users/7 does not fit the GET-only route; the catch-all takes it.
    let res = crate::helpers::http()
        .post(format!("{}/users/7", gw.proxy))
        .header("host", "x.a.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["upstream"], "a");

    // No route: 404 JSON.
    let (s, h, v) = get(&gw, "/nothing", Some("other.test")).await;
    assert_eq!(s, 200, "default has a catch-all: {v}");
    let (s, _) = api.delete("route", json!({"name": "all"})).await;
    assert_eq!(s, 204);
    let (s, h2, v) = get(&gw, "/nothing", Some("other.test")).await;
    assert_eq!(s, 404);
    assert_eq!(v["status"], 404);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("no route for GET /nothing"),
        "{v}"
    );
    assert_eq!(h2["content-type"], "application/json");
    let _ = h;
    gw.stop();
}

#[tokio::test]
async fn strict_mode_and_allowed_domains() {
    let up = upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(
        dir.path(),
        Some("proxy:\n  strict_mode: true\n  allowed_domains: ['*.a.test', 'b.test']\n"),
    );
    let api = gw.client();
    serve_all(&api, &up).await;
    ok_put(
        &api,
        "domain",
        json!({"name": "d", "patterns": ["*.a.test"]}),
    )
    .await;
    assert_eq!(get(&gw, "/", Some("www.a.test")).await.0, 200);
    // Allowed, but no domain matches and strict mode does not fall back to default.
    let (s, _, v) = get(&gw, "/", Some("b.test")).await;
    assert_eq!(s, 404, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("no namespace serves host"),
        "{v}"
    );
    let (s, _, v) = get(&gw, "/", Some("evil.test")).await;
    assert_eq!(s, 403, "{v}");
    gw.stop();
}

#[tokio::test]
async fn upstream_failures_map_to_502_504_501() {
    let up = upstream::start("a").await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    let api = gw.client();
    ok_put(
        &api,
        "service",
        json!({"name": "dead", "urls": [format!("http://{dead}")]}),
    )
    .await;
    ok_put(
        &api,
        "service",
        json!({"name": "slow", "urls": [up.url()], "requestTimeout": "300ms"}),
    )
    .await;
    ok_put(
        &api,
        "route",
        json!({"name": "dead", "paths": ["/dead"], "methods": ["GET"], "service": "dead"}),
    )
    .await;
    ok_put(
        &api,
        "route",
        json!({"name": "slow", "paths": ["/slow"], "methods": ["GET"], "service": "slow"}),
    )
    .await;
    ok_put(
        &api,
        "route",
        json!({"name": "none", "paths": ["/none"], "methods": ["GET"]}),
    )
    .await;

    let (s, h, v) = get(&gw, "/dead", None).await;
    assert_eq!((s, v["status"].as_u64()), (502, Some(502)), "{v}");
    assert_eq!(h["content-type"], "application/json");
    let started = Instant::now();
    let (s, _, v) = get(&gw, "/slow?ms=3000", None).await;
    assert_eq!(s, 504, "{v}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the timeout did not cut the wait"
    );
    let (s, _, v) = get(&gw, "/slow?ms=10", None).await;
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = get(&gw, "/none", None).await;
    assert_eq!(s, 501, "{v}");
    // The admin API is not reachable through the proxy port.
    let (s, _, v) = get(&gw, "/api/v1/namespace", None).await;
    assert_eq!(s, 404, "{v}");
    // Upstream error statuses pass through untouched.
    ok_put(
        &api,
        "route",
        json!({"name": "up", "paths": ["/up/*"], "methods": ["GET"], "service": "slow"}),
    )
    .await;
    let (s, _, v) = get(&gw, "/up/status?code=503", None).await;
    assert_eq!((s, &v["upstream"]), (503, &json!("a")), "{v}");
    gw.stop();
}

#[tokio::test]
async fn round_robin_and_retries() {
    let (a, b) = (upstream::start("a").await, upstream::start("b").await);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    let api = gw.client();
    ok_put(
        &api,
        "service",
        json!({"name": "rr", "urls": [a.url(), b.url()]}),
    )
    .await;
    ok_put(
        &api,
        "service",
        json!({"name": "retry", "urls": [dead.clone(), a.url()], "retries": 1}),
    )
    .await;
    ok_put(
        &api,
        "service",
        json!({"name": "noretry", "urls": [dead, a.url()]}),
    )
    .await;
    for (name, path) in [("rr", "/rr"), ("retry", "/retry"), ("noretry", "/noretry")] {
        ok_put(
            &api,
            "route",
            json!({"name": name, "paths": [path], "methods": ["*"], "service": name}),
        )
        .await;
    }
    let mut seen = vec![];
    for _ in 0..4 {
        seen.push(
            get(&gw, "/rr", None).await.2["upstream"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(seen, ["a", "b", "a", "b"]);
    for i in 0..6 {
        let (s, _, v) = get(&gw, "/retry", None).await;
        assert_eq!(
            s, 200,
            "attempt {i}: the dead URL is retried on the next one: {v}"
        );
    }
    let statuses: Vec<u16> = {
        let mut v = vec![];
        for _ in 0..4 {
            v.push(get(&gw, "/noretry", None).await.0);
        }
        v
    };
    assert!(
        statuses.contains(&502) && statuses.contains(&200),
        "{statuses:?}"
    );
    // A request with a body is never replayed: with the dead URL first it fails.
    let mut saw_502 = false;
    for _ in 0..2 {
        let res = crate::helpers::http()
            .post(format!("{}/retry", gw.proxy))
            .body("payload")
            .send()
            .await
            .unwrap();
        saw_502 |= res.status().as_u16() == 502;
    }
    assert!(saw_502, "a POST with a body must not be retried");
    gw.stop();
}

#[tokio::test]
async fn large_bodies_stream_with_flat_memory() {
    let up = upstream::start("a").await;
    let (_dir, gw) = gateway_to(&up).await;
    let before = gw.peak_rss_kib();

    // Upload 512 MiB with a raw socket, so the client holds only one chunk at a time.
    const SIZE: u64 = 512 << 20;
    let addr = gw.proxy.trim_start_matches("http://").to_string();
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: {SIZE}\r\nconnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'y'; 1 << 20];
    for _ in 0..(SIZE >> 20) {
        conn.write_all(&chunk).await.unwrap();
    }
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(&format!("\"received\":{SIZE}")), "{answer}");

    // Download 512 MiB.
    let mut res = crate::helpers::get(format!("{}/big?bytes={SIZE}", gw.proxy))
        .await
        .unwrap();
    let mut got = 0u64;
    while let Some(c) = res.chunk().await.unwrap() {
        got += c.len() as u64;
    }
    assert_eq!(got, SIZE);
    let growth_mib = gw.peak_rss_kib().saturating_sub(before) / 1024;
    assert!(
        growth_mib < 64,
        "peak RSS grew by {growth_mib} MiB moving 1 GiB through the proxy"
    );
    gw.stop();
}

#[tokio::test]
async fn route_changes_are_live_while_a_download_is_in_flight() {
    let (a, b) = (upstream::start("a").await, upstream::start("b").await);
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    let api = gw.client();
    ok_put(&api, "service", json!({"name": "sa", "urls": [a.url()]})).await;
    ok_put(&api, "service", json!({"name": "sb", "urls": [b.url()]})).await;
    ok_put(
        &api,
        "route",
        json!({"name": "r", "paths": ["/*"], "methods": ["*"], "service": "sa"}),
    )
    .await;

    const SIZE: u64 = 64 << 20;
    let mut download = crate::helpers::get(format!("{}/big?bytes={SIZE}", gw.proxy))
        .await
        .unwrap();
    let mut got = download
        .chunk()
        .await
        .unwrap()
        .map_or(0, |c| c.len() as u64);

    // Repoint the route while the download is half-way; the next request goes to b.
    ok_put(
        &api,
        "route",
        json!({"name": "r", "paths": ["/*"], "methods": ["*"], "service": "sb"}),
    )
    .await;
    assert_eq!(get(&gw, "/who", None).await.2["upstream"], "b");
    while let Some(c) = download.chunk().await.unwrap() {
        got += c.len() as u64;
    }
    assert_eq!(got, SIZE, "the in-flight download completes");
    // Deleting the old service is allowed now, and does not disturb anything.
    let (s, _) = api.delete("service", json!({"name": "sa"})).await;
    assert_eq!(s, 204);
    assert_eq!(get(&gw, "/who", None).await.2["upstream"], "b");
    gw.stop();
}

#[tokio::test]
async fn a_client_that_leaves_cancels_the_upstream_request() {
    let up = upstream::start("a").await;
    let (_dir, gw) = gateway_to(&up).await;
    let addr = gw.proxy.trim_start_matches("http://").to_string();
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /hang HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.hits.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(conn);
    while up.cancelled.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the upstream request was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.stop();
}

#[tokio::test]
async fn http2_cleartext() {
    let up = upstream::start("a").await;
    let (_dir, gw) = gateway_to(&up).await;
    let stream = TcpStream::connect(gw.proxy.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2c handshake");
    tokio::spawn(conn);
    for i in 0..3 {
        let req = http::Request::builder()
            .uri(format!("http://h2.test/p{i}?q={i}"))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let res = send.send_request(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), http::Version::HTTP_2);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["path"], format!("/p{i}"));
        assert_eq!(v["headers"]["x-forwarded-host"], "h2.test");
        assert_eq!(v["headers"]["via"], "2 dgate");
    }
    // Stop off the runtime: the test's own HTTP/2 client must keep running to answer GOAWAY.
    tokio::task::spawn_blocking(move || gw.stop())
        .await
        .unwrap();
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), Some("proxy:\n  max_headers: 10\n"));
    let mut req = crate::helpers::http().get(format!("{}/x", gw.proxy));
    for i in 0..20 {
        req = req.header(format!("x-h{i}"), "v");
    }
    let s = req.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
    assert!(
        s == 431 || s == 0,
        "too many headers must be refused, got {s}"
    );
    let big = "a".repeat(100 << 10);
    let s = crate::helpers::http()
        .get(format!("{}/x", gw.proxy))
        .header("x-big", big)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert!(
        s == 431 || s == 0,
        "a 100 KiB header must be refused, got {s}"
    );
    let long_path = format!("/{}", "p".repeat(100 << 10));
    let s = crate::helpers::get(format!("{}{long_path}", gw.proxy))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert!(
        matches!(s, 414 | 431 | 0),
        "a 100 KiB request line must be refused, got {s}"
    );
    // The server is fine afterwards.
    assert_eq!(get(&gw, "/x", None).await.0, 404);
    gw.stop();
}

#[tokio::test]
async fn silent_and_slow_clients_are_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), Some("proxy:\n  header_read_timeout: 300ms\n"));
    let addr = gw.proxy.trim_start_matches("http://").to_string();
    for partial in [&b""[..], b"GET / HTTP/1.1\r\nhost: x\r\n"] {
        let mut conn = TcpStream::connect(&addr).await.unwrap();
        conn.write_all(partial).await.unwrap();
        let started = Instant::now();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "connection with {partial:?} was never closed");
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "closed too early"
        );
    }
    gw.stop();
}

/// Reads from `conn` the responses to requests with `methods` (each framed by `content-length`)
/// until all have come or the connection closes; returns their statuses and bodies.
async fn read_responses(conn: &mut TcpStream, methods: &[&str]) -> Vec<(u16, String)> {
    let n = methods.len();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        let mut chunk = [0u8; 8192];
        let read = tokio::time::timeout_at(deadline.into(), conn.read(&mut chunk))
            .await
            .expect("responses in time")
            .unwrap();
        if read == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..read]);
        while out.len() < n {
            let mut fields = [httparse::EMPTY_HEADER; 32];
            let mut res = httparse::Response::new(&mut fields);
            let Ok(httparse::Status::Complete(len)) = res.parse(&buf) else {
                break;
            };
            let announced: usize = res
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map_or(0, |h| {
                    std::str::from_utf8(h.value).unwrap().parse().unwrap()
                });
            let body_len = if methods[out.len()] == "HEAD" {
                0
            } else {
                announced
            };
            if buf.len() < len + body_len {
                break;
            }
            let body = String::from_utf8_lossy(&buf[len..len + body_len]).to_string();
            out.push((res.code.unwrap(), body));
            buf.drain(..len + body_len);
        }
    }
    out
}

/// The lean HTTP/1.1 path serves pipelined requests in order, and hands the connection to hyper
/// at the first request with a body, which is then served with the bytes already read.
#[tokio::test]
async fn pipelined_requests_and_a_body_on_one_connection() {
    let up = upstream::start("a").await;
    let (_dir, gw) = gateway_to(&up).await;
    let addr = gw.proxy.trim_start_matches("http://").to_string();
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    let pipelined = "GET /one HTTP/1.1\r\nhost: x\r\n\r\n\
                     HEAD /two HTTP/1.1\r\nhost: x\r\n\r\n\
                     GET /status?code=404 HTTP/1.1\r\nhost: x\r\n\r\n\
                     POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello\
                     GET /three HTTP/1.1\r\nhost: x\r\n\r\n";
    conn.write_all(pipelined.as_bytes()).await.unwrap();
    let got = read_responses(&mut conn, &["GET", "HEAD", "GET", "POST"]).await;
    assert_eq!(got.len(), 4, "{got:?}");
    let body = |i: usize| serde_json::from_str::<Value>(&got[i].1).unwrap();
    assert_eq!((got[0].0, body(0)["path"].clone()), (200, json!("/one")));
    // HEAD: no body, and the next response follows right after the head.
    assert_eq!(got[1], (200, String::new()));
    assert_eq!(got[2].0, 404);
    assert_eq!(got[3].0, 200);
    assert_eq!(body(3)["received"], 5);
    // hyper serves the rest of the connection: the request pipelined behind the body too.
    let more = read_responses(&mut conn, &["GET"]).await;
    assert_eq!(more.len(), 1);
    let last: Value = serde_json::from_str(&more[0].1).unwrap();
    assert_eq!(last["path"], "/three");

    // `Connection: close` is honoured on the lean path: the answer, then the end of the stream.
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /bye HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_responses(&mut conn, &["GET", "GET"]).await;
    assert_eq!(
        got.len(),
        1,
        "the connection was not closed after the answer"
    );
    // HTTP/1.0 goes to hyper, and is answered in kind.
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /old HTTP/1.0\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut text = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut text))
        .await
        .expect("an HTTP/1.0 answer and close")
        .unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    gw.stop();
}

#[tokio::test]
async fn stopping_lets_requests_in_flight_finish() {
    let up = upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    serve_all(&gw.client(), &up).await;
    let url = format!("{}/slow?ms=1500", gw.proxy);
    let in_flight =
        tokio::spawn(async move { crate::helpers::get(url).await.map(|r| r.status().as_u16()) });
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.hits.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SIGTERM now; `stop` waits for a clean exit.
    tokio::task::spawn_blocking(move || gw.stop())
        .await
        .unwrap();
    assert_eq!(in_flight.await.unwrap().expect("the request was cut"), 200);
}

/// An HTTP/1.1 upstream that answers with exact bytes, chosen by path, and counts the connections
/// it accepted: the wire cases hyper's test upstream would never produce.
async fn raw_upstream() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut more = [0u8; 4096];
                        match conn.read(&mut more).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&more[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end + 4);
                    let mut line = head.split(' ');
                    let (method, path) = (line.next().unwrap_or(""), line.next().unwrap_or(""));
                    let parts: Vec<&[u8]> = match (method, path) {
                        ("HEAD", _) => vec![b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"],
                        (_, "/len") => vec![b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"],
                        (_, "/chunked") => vec![
                            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;e=1\r\nhel",
                            b"lo\r\n6\r\n world\r",
                            b"\n0\r\nx-sum: 11\r\n\r\n",
                        ],
                        (_, "/continue") => vec![
                            b"HTTP/1.1 100 Continue\r\n\r\n",
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                        ],
                        (_, "/empty") => vec![b"HTTP/1.1 204 No Content\r\n\r\n"],
                        (_, "/eof") | (_, "/close") => vec![b"HTTP/1.1 200 OK\r\n\r\nuntil close"],
                        (_, "/drop") => vec![b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nbye"],
                        (_, "/short") => vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"],
                        _ => vec![
                            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nx",
                        ],
                    };
                    for part in parts {
                        if conn.write_all(part).await.is_err() {
                            return;
                        }
                        let _ = conn.flush().await;
                        tokio::task::yield_now().await;
                    }
                    // `/drop` closes the connection without saying so: the next request finds
                    // a pooled connection the upstream has closed.
                    if matches!(path, "/eof" | "/close" | "/drop" | "/short") {
                        return;
                    }
                }
            });
        }
    });
    (url, accepted)
}

/// A client on one keep-alive connection to the proxy, so that every request lands on the same
/// proxy thread and its pool (reqwest may open a second connection while returning the first).
struct OneConn(hyper::client::conn::http1::SendRequest<Empty<bytes::Bytes>>);

impl OneConn {
    async fn open(proxy: &str) -> OneConn {
        let stream = TcpStream::connect(proxy.trim_start_matches("http://"))
            .await
            .unwrap();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        OneConn(sender)
    }

    /// Status, `content-length` and body text; `Err` when the exchange broke.
    async fn fetch(
        &mut self,
        method: http::Method,
        path: &str,
    ) -> Result<(u16, Option<String>, String), hyper::Error> {
        self.0.ready().await?;
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "x")
            .body(Empty::new())
            .unwrap();
        let res = self.0.send_request(req).await?;
        let status = res.status().as_u16();
        let length = res
            .headers()
            .get("content-length")
            .map(|v| v.to_str().unwrap().to_string());
        let body = res.into_body().collect().await?.to_bytes();
        Ok((status, length, String::from_utf8_lossy(&body).into_owned()))
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let (status, _, body) = self.fetch(http::Method::GET, path).await.unwrap();
        (status, body)
    }
}

#[tokio::test]
async fn pooled_connections_read_every_response_framing_and_are_reused() {
    use std::sync::atomic::Ordering;
    let (url, accepted) = raw_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), None);
    let api = gw.client();
    ok_put(&api, "service", json!({"name": "s", "urls": [url]})).await;
    ok_put(
        &api,
        "route",
        json!({"name": "r", "paths": ["/*"], "methods": ["*"], "service": "s"}),
    )
    .await;
    let hello = (200, "hello".to_string());
    let mut client = OneConn::open(&gw.proxy).await;

    for _ in 0..5 {
        assert_eq!(client.get("/len").await, hello);
    }
    // The proxy thread's pool kept the upstream connection.
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the connection was not reused"
    );

    assert_eq!(
        client.get("/chunked").await,
        (200, "hello world".to_string())
    );
    assert_eq!(client.get("/continue").await, (200, "ok".to_string()));
    let head = client.fetch(http::Method::HEAD, "/len").await.unwrap();
    assert_eq!(head, (200, Some("5".to_string()), String::new()));
    assert_eq!(client.get("/empty").await, (204, String::new()));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "a complete exchange lost its connection"
    );

    // A close-delimited body ends with its connection, which is not reused.
    assert_eq!(client.get("/eof").await, (200, "until close".to_string()));
    assert_eq!(client.get("/len").await, hello);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);

    // The upstream closes a kept connection while it is idle: the next request still gets through.
    for _ in 0..3 {
        assert_eq!(client.get("/drop").await, (200, "bye".to_string()));
        assert_eq!(client.get("/len").await, hello);
    }

    // Broken answers: conflicting lengths are a 502; a body cut short breaks the client's
    // exchange (after the head, or before it when the head was still in the proxy's write buffer
    // as the body broke).
    assert_eq!(client.get("/bad").await.0, 502);
    let short = client.fetch(http::Method::GET, "/short").await;
    assert!(
        short.is_err(),
        "a truncated body read as complete: {short:?}"
    );
    let mut client = OneConn::open(&gw.proxy).await;
    assert_eq!(client.get("/len").await, hello);
    gw.stop();
}
