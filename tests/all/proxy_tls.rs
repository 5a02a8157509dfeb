//! TLS termination: per-domain certificates chosen by SNI (changes live), the `proxy.tls` default,
//! HTTP/1.1 and HTTP/2 (ALPN) over TLS, and redirect_https.

use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::helpers::{Gateway, write_file};
use crate::upstream;

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn leaf(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(cfg))
    }
}

/// Connects with SNI `name`; returns the certificate the server presented and the stream.
async fn handshake(
    gw: &Gateway,
    ca: &Ca,
    name: &str,
    alpn: &[&[u8]],
) -> (
    CertificateDer<'static>,
    tokio_rustls::client::TlsStream<TcpStream>,
) {
    let addr = gw
        .proxy_tls
        .as_ref()
        .unwrap()
        .trim_start_matches("https://")
        .to_string();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = ca
        .connector(alpn)
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS handshake for {name}: {e}"));
    let cert = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    (cert, tls)
}

async fn h1_get(stream: tokio_rustls::client::TlsStream<TcpStream>, host: &str) -> Value {
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri("/hello")
        .header("host", host)
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

#[tokio::test]
async fn sni_picks_the_domain_certificate_and_changes_are_live() {
    let up = upstream::start("a").await;
    let ca = Ca::new();
    let (a, b, fallback) = (
        ca.leaf(&["a.test"]),
        ca.leaf(&["b.test"]),
        ca.leaf(&["default.test", "other.test"]),
    );
    let dir = tempfile::tempdir().unwrap();
    let cert = write_file(dir.path(), "cert.pem", &fallback.cert_pem);
    let key = write_file(dir.path(), "key.pem", &fallback.key_pem);
    let config = write_file(
        dir.path(),
        "dgate.yaml",
        &format!(
            "proxy:\n  redirect_https: true\n  tls:\n    port: 0\n    cert_file: {}\n    key_file: {}\n",
            cert.display(),
            key.display()
        ),
    );
    let gw = Gateway::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let api = gw.client();
    api.put("service", json!({"name": "s", "urls": [up.url()]}))
        .await;
    api.put(
        "route",
        json!({"name": "r", "paths": ["/*"], "methods": ["*"], "service": "s"}),
    )
    .await;
    for (name, leaf) in [("da", &a), ("db", &b)] {
        let host = if name == "da" { "a.test" } else { "b.test" };
        let (s, v) = api
            .put(
                "domain",
                json!({"name": name, "patterns": [host], "cert": leaf.cert_pem, "key": leaf.key_pem}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    let (got, stream) = handshake(&gw, &ca, "a.test", &[b"http/1.1"]).await;
    assert_eq!(got, a.der);
    let v = h1_get(stream, "a.test").await;
    assert_eq!(v["headers"]["x-forwarded-proto"], "https");
    let (got, _) = handshake(&gw, &ca, "b.test", &[]).await;
    assert_eq!(got, b.der);
    let (got, _) = handshake(&gw, &ca, "other.test", &[]).await;
    assert_eq!(
        got, fallback.der,
        "no domain matches: the proxy.tls certificate"
    );

    // HTTP/2 over TLS, negotiated by ALPN.
    let (_, stream) = handshake(&gw, &ca, "a.test", &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let res = send
        .send_request(
            http::Request::builder()
                .uri("https://a.test/h2")
                .body(Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        (res.status().as_u16(), res.version()),
        (200, http::Version::HTTP_2)
    );

    // Replace a.test's certificate: the next handshake presents the new one, no restart.
    let a2 = ca.leaf(&["a.test"]);
    let (s, _) = api
        .put(
            "domain",
            json!({"name": "da", "patterns": ["a.test"], "cert": a2.cert_pem, "key": a2.key_pem}),
        )
        .await;
    assert_eq!(s, 200);
    let (got, _) = handshake(&gw, &ca, "a.test", &[]).await;
    assert_eq!(got, a2.der);

    // Plain HTTP is redirected to the TLS port.
    let res = crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/x?y=1", gw.proxy))
        .header("host", "a.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 301);
    let tls_port = gw
        .proxy_tls
        .as_ref()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        res.headers()["location"],
        format!("https://a.test:{tls_port}/x?y=1")
    );
    // Stop off the runtime: the test's own HTTP/2 client must keep running to answer GOAWAY.
    tokio::task::spawn_blocking(move || gw.stop())
        .await
        .unwrap();
}

#[test]
fn a_bad_tls_file_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "dgate.yaml",
        "proxy:\n  tls:\n    port: 0\n    cert_file: /nonexistent/cert.pem\n    key_file: /nonexistent/key.pem\n",
    );
    let out = std::process::Command::new(crate::helpers::BIN)
        .args(["server", "--config", config.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("dgate: config: proxy.tls.cert_file: cannot read /nonexistent/cert.pem"),
        "{err}"
    );
}

#[tokio::test]
async fn https_upstreams_are_verified_unless_skipped() {
    let ca = Ca::new();
    let leaf = ca.leaf(&["localhost"]);
    let up = upstream::start_tls("secure", &leaf.cert_pem, &leaf.key_pem).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&dir.path().join("data"), &[]);
    let api = gw.client();
    api.put(
        "service",
        json!({"name": "verified", "urls": [up.https_url()]}),
    )
    .await;
    api.put(
        "service",
        json!({"name": "skip", "urls": [up.https_url()], "tlsSkipVerify": true}),
    )
    .await;
    api.put(
        "route",
        json!({"name": "v", "paths": ["/v"], "methods": ["GET"], "service": "verified"}),
    )
    .await;
    api.put(
        "route",
        json!({"name": "s", "paths": ["/s"], "methods": ["GET"], "service": "skip"}),
    )
    .await;
    // The test CA is in no system store: verification fails, and the client gets a 502.
    let res = crate::helpers::get(format!("{}/v", gw.proxy))
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let res = crate::helpers::get(format!("{}/s", gw.proxy))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["upstream"], "secure");
    assert_eq!(
        v["headers"]["host"],
        format!("localhost:{}", up.addr.port())
    );
    gw.stop();
}
