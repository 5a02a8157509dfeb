//! A real HTTP upstream for proxy tests: echoes what it received as JSON, and has endpoints to be
//! slow, hang, stream a large body, count an upload, or answer a given status. The last path
//! segment picks the behaviour, so it works under any route prefix.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

pub struct Upstream {
    pub addr: SocketAddr,
    /// Requests whose handling was cut short because the caller went away.
    pub cancelled: Arc<AtomicUsize>,
    /// Requests received.
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn https_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts an upstream named `name` (echoed back as `upstream`) on a free loopback port.
pub async fn start(name: &'static str) -> Upstream {
    start_with(name, None).await
}

/// Like [`start`], serving HTTPS with the given PEM certificate and key.
pub async fn start_tls(name: &'static str, cert_pem: &str, key_pem: &str) -> Upstream {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    start_with(name, Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))).await
}

async fn start_with(name: &'static str, tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancelled = Arc::new(AtomicUsize::new(0));
    let hits = Arc::new(AtomicUsize::new(0));
    let (c, h) = (cancelled.clone(), hits.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (c, h, tls) = (c.clone(), h.clone(), tls.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let (c, h) = (c.clone(), h.clone());
                    async move { Ok::<_, Infallible>(handle(name, req, c, h).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match tls {
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            });
        }
    });
    Upstream {
        addr,
        cancelled,
        hits,
        task,
    }
}

type Out = Either<Full<Bytes>, Repeat>;

fn query_num(req: &Request<Incoming>, key: &str) -> u64 {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn json_out(status: StatusCode, v: Value) -> Response<Out> {
    let mut res = Response::new(Either::Left(Full::new(Bytes::from(v.to_string()))));
    *res.status_mut() = status;
    res.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    res
}

/// Counts a request as cancelled if dropped before `done`.
struct CancelGuard(Arc<AtomicUsize>, bool);
impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn handle(
    name: &'static str,
    req: Request<Incoming>,
    cancelled: Arc<AtomicUsize>,
    hits: Arc<AtomicUsize>,
) -> Response<Out> {
    hits.fetch_add(1, Ordering::SeqCst);
    let last = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    match last.as_str() {
        "slow" => tokio::time::sleep(Duration::from_millis(query_num(&req, "ms"))).await,
        "hang" => {
            let mut guard = CancelGuard(cancelled, false);
            tokio::time::sleep(Duration::from_secs(30)).await;
            guard.1 = true;
        }
        "big" => {
            let n = query_num(&req, "bytes");
            let mut res = Response::new(Either::Right(Repeat { left: n }));
            res.headers_mut()
                .insert("content-length", n.to_string().parse().unwrap());
            return res;
        }
        "upload" => {
            let mut body = req.into_body();
            let mut n: u64 = 0;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => n += f.data_ref().map_or(0, |d| d.len() as u64),
                    Err(e) => {
                        return json_out(StatusCode::BAD_REQUEST, json!({"error": e.to_string()}));
                    }
                }
            }
            return json_out(StatusCode::OK, json!({"upstream": name, "received": n}));
        }
        "status" => {
            let code =
                StatusCode::from_u16(query_num(&req, "code") as u16).unwrap_or(StatusCode::OK);
            return json_out(code, json!({"upstream": name}));
        }
        _ => {}
    }
    let mut headers = Map::new();
    for (k, v) in req.headers() {
        headers.insert(k.as_str().to_string(), json!(v.to_str().unwrap_or("")));
    }
    json_out(
        StatusCode::OK,
        json!({
            "upstream": name,
            "method": req.method().as_str(),
            "path": req.uri().path(),
            "query": req.uri().query(),
            "version": format!("{:?}", req.version()),
            "headers": headers,
        }),
    )
}

/// A body of `left` bytes of `x`, produced 64 KiB at a time.
pub struct Repeat {
    left: u64,
}

impl Body for Repeat {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        static CHUNK: [u8; 65536] = [b'x'; 65536];
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK.len() as u64) as usize;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }
}
