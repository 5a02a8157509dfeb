//! What DGate's `ws_tests` and `grpc_tests` check, against real upstreams: a WebSocket handshake
//! switched through the proxy and the connection joined both ways, and a gRPC-shaped call over
//! HTTP/2 to an `http2Only` service with its trailers passed back.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Gateway, ok_put};

/// Reads up to the end of an HTTP head.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut byte))
            .await
            .expect("a head in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before the head ended: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A WebSocket-style upstream: answers the handshake with 101 (saying whether a module's
/// `x-modified` header reached it), then echoes every byte upper-cased.
async fn switching_upstream() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let head = read_head(&mut s).await.to_ascii_lowercase();
                let asked = head.contains("\r\nupgrade: websocket\r\n")
                    && head.contains("\r\nconnection: upgrade\r\n")
                    && head.contains("\r\nsec-websocket-key: ");
                if !asked {
                    let _ = s
                        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let modified = head.contains("\r\nx-modified: yes\r\n");
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-Saw-Modifier: {modified}\r\n\r\n"
                );
                let _ = s.write_all(answer.as_bytes()).await;
                let mut buf = [0u8; 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            buf[..n].make_ascii_uppercase();
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (url, task)
}

const HANDSHAKE: &str = "GET /ws/chat HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_handshakes_switch_and_join_both_ways() {
    let (ws_url, _ws) = switching_upstream().await;
    let plain = crate::upstream::start("plain").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let api = gw.client();
    ok_put(&api, "service", json!({"name": "ws", "urls": [ws_url]})).await;
    ok_put(
        &api,
        "service",
        json!({"name": "plain", "urls": [plain.url()]}),
    )
    .await;
    ok_put(
        &api,
        "route",
        json!({"name": "ws", "paths": ["/ws/*"], "methods": ["GET"], "service": "ws"}),
    )
    .await;
    ok_put(
        &api,
        "route",
        json!({"name": "plain", "paths": ["/plain/*"], "methods": ["GET"], "service": "plain"}),
    )
    .await;
    // The same upstream behind a module: its requestModifier runs on the handshake.
    use base64::Engine as _;
    let source = "export const requestModifier = (ctx) => { ctx.request().headers.set('x-modified', 'yes'); };";
    ok_put(
        &api,
        "module",
        json!({"name": "marker", "moduleType": "javascript",
        "payload": base64::engine::general_purpose::STANDARD.encode(source)}),
    )
    .await;
    ok_put(&api, "route", json!({"name": "ws-mod", "paths": ["/wsm/*"], "methods": ["GET"], "service": "ws", "modules": ["marker"]})).await;

    let proxy = gw.proxy.trim_start_matches("http://").to_string();
    for (path, modified) in [("/ws/chat", "false"), ("/wsm/chat", "true")] {
        let mut s = TcpStream::connect(&proxy).await.unwrap();
        s.write_all(HANDSHAKE.replace("/ws/chat", path).as_bytes())
            .await
            .unwrap();
        let head = read_head(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{path}: {head}");
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{head}");
        assert!(
            lower.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{head}"
        );
        assert!(
            lower.contains(&format!("\r\nx-saw-modifier: {modified}\r\n")),
            "{path}: {head}"
        );
        // Both ways, more than once: the connections are joined, not one exchange.
        for word in ["hello", "again"] {
            s.write_all(word.as_bytes()).await.unwrap();
            let mut got = vec![0u8; word.len()];
            tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut got))
                .await
                .expect("the echo in time")
                .unwrap();
            assert_eq!(got, word.to_ascii_uppercase().as_bytes());
        }
    }

    // An upstream that does not switch answers the handshake as any request.
    let mut s = TcpStream::connect(&proxy).await.unwrap();
    s.write_all(HANDSHAKE.replace("/ws/chat", "/plain/x").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

/// An HTTP/2-only upstream shaped like a gRPC server: a body and `grpc-status` trailers.
async fn grpc_upstream() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let grpc = req
                        .headers()
                        .get("content-type")
                        .is_some_and(|v| v == "application/grpc")
                        && req.headers().get("te").is_some_and(|v| v == "trailers");
                    let path = req.uri().path().to_string();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", if grpc { "0" } else { "3" }.parse().unwrap());
                    trailers.insert("grpc-message", path.parse().unwrap());
                    let reply = [b"reply:".as_slice(), &body].concat();
                    let body = Full::new(Bytes::from(reply))
                        .with_trailers(async move { Some(Ok(trailers)) });
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(body)
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), service)
                    .await;
            });
        }
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_reach_an_http2_only_service_and_trailers_come_back() {
    let (grpc_url, _grpc) = grpc_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let api = gw.client();
    ok_put(
        &api,
        "service",
        json!({"name": "greeter", "urls": [grpc_url], "http2Only": true}),
    )
    .await;
    ok_put(&api, "route", json!({"name": "greeter", "paths": ["/helloworld.Greeter/*"], "methods": ["POST"], "service": "greeter"})).await;

    let stream = TcpStream::connect(gw.proxy.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method("POST")
        .uri("http://grpc.test/helloworld.Greeter/SayHello")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\x00\x00\x00\x00\x05world")))
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let collected = res.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["grpc-status"], "0", "{trailers:?}");
    assert_eq!(trailers["grpc-message"], "/helloworld.Greeter/SayHello");
    assert_eq!(
        collected.to_bytes(),
        Bytes::from_static(b"reply:\x00\x00\x00\x00\x05world")
    );
    tokio::task::spawn_blocking(move || gw.stop())
        .await
        .unwrap();
}
