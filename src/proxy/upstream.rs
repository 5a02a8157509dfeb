//! Upstreams: one pooled keep-alive client per distinct connection setting (shared across services
//! and kept across snapshots, so pools survive config changes), round robin over a service's URLs,
//! timeouts, and retries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Method, Request, Response, Uri, header};
use http_body_util::Either;
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use tokio::time::Instant;

use super::body::{ClientBody, ReqBody, empty_request};
use super::error::{ErrorKind, ProxyError};
use super::pool::{self, Added, PoolError, UpstreamBody};
use crate::clock::coarse_tokio_now;
use crate::config::defaults;
use crate::resources::Service;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, ReqBody>;

/// What makes two services need different clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ClientKey {
    connect_timeout_ms: u64,
    tls_skip_verify: bool,
    http2_only: bool,
}

/// The clients in use, by setting. Only touched when a snapshot is built.
pub struct Clients {
    map: Mutex<HashMap<ClientKey, HttpClient>>,
    verified: Arc<ClientConfig>,
    unverified: Arc<ClientConfig>,
    /// The same two for upgraded connections, made once: HTTP/1.1 only offered (an upgrade is
    /// an HTTP/1.1 exchange).
    upgrade_verified: Arc<ClientConfig>,
    upgrade_unverified: Arc<ClientConfig>,
}

impl Clients {
    pub fn new() -> Clients {
        let verified = crate::tls::client_config_with_system_roots();
        let unverified = crate::tls::client_config_without_verification();
        let http1 = |config: &Arc<ClientConfig>| {
            let mut config = (**config).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        };
        Clients {
            map: Mutex::new(HashMap::new()),
            upgrade_verified: http1(&verified),
            upgrade_unverified: http1(&unverified),
            verified,
            unverified,
        }
    }

    /// TLS for upgraded connections, with the services' verification.
    fn upgrade_tls(&self, skip_verify: bool) -> Arc<ClientConfig> {
        if skip_verify {
            self.upgrade_unverified.clone()
        } else {
            self.upgrade_verified.clone()
        }
    }

    fn get(&self, key: ClientKey) -> HttpClient {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key)
            .or_insert_with(|| {
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_nodelay(true);
                http.set_connect_timeout(Some(Duration::from_millis(key.connect_timeout_ms)));
                let tls = if key.tls_skip_verify {
                    &self.unverified
                } else {
                    &self.verified
                };
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config((**tls).clone())
                    .https_or_http()
                    .enable_http1()
                    .enable_http2()
                    .wrap_connector(http);
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .http2_only(key.http2_only)
                    .set_host(false)
                    .build(connector)
            })
            .clone()
    }
}

impl Default for Clients {
    fn default() -> Self {
        Clients::new()
    }
}

/// One upstream URL, split for cheap URI building.
#[derive(Debug)]
struct Target {
    scheme: Scheme,
    /// The URL's authority, as this thread's connection pool knows it.
    address: pool::Key,
    host_header: HeaderValue,
    /// The URL's path without a trailing slash (`""` for the root).
    base_path: String,
    /// Plain HTTP/1.1: served from this thread's connection pool rather than the shared client.
    pooled: bool,
}

impl Target {
    fn authority(&self) -> &Authority {
        self.address.authority()
    }
}

/// A service, ready to forward to.
pub struct Upstream {
    pub name: String,
    targets: Vec<Target>,
    next: AtomicUsize,
    client: HttpClient,
    connect_timeout: Duration,
    retries: u32,
    retry_timeout: Option<Duration>,
    request_timeout: Duration,
    pub hide_dgate_headers: bool,
    pub disable_query_params: bool,
    /// TLS for upgraded (WebSocket) connections to https URLs: HTTP/1.1 only.
    upgrade_tls: Arc<ClientConfig>,
}

/// How one request goes upstream (everything but the body, which is passed on its own).
pub struct Outgoing<'a> {
    pub method: Method,
    pub headers: http::HeaderMap,
    /// The path and query, without the service URL's base path.
    pub path: UpstreamPath,
    pub preserve_host: bool,
    /// The fields the proxy adds (`Host` is chosen for each attempt's URL).
    pub added: Added<'a>,
}

/// The path and query a request sends upstream, after the service URL's base path.
pub enum UpstreamPath {
    /// The client's, as it came (the common case: no allocation).
    Client(PathAndQuery),
    /// A path of the proxy's (`stripPath`, a hook's URI) or the client's without its query.
    Other { path: String, query: Option<String> },
}

impl Upstream {
    /// Builds the upstream for a validated service; `None` if a URL does not parse.
    /// `name: host:port, ...`, for tests.
    #[cfg(test)]
    pub fn describe(&self) -> String {
        let targets: Vec<&str> = self
            .targets
            .iter()
            .map(|t| t.authority().as_str())
            .collect();
        format!("{}: {}", self.name, targets.join(", "))
    }

    /// Whether `url`'s scheme and authority are one of this service's URLs.
    pub fn has_url(&self, url: &Uri) -> bool {
        self.targets.iter().any(|t| {
            url.scheme() == Some(&t.scheme) && url.authority().is_some_and(|a| a == t.authority())
        })
    }

    /// The same upstream settings pointed at one `url` (a module's `fetchUpstream` choice);
    /// plain HTTP connects to `at` when given (the address a policy checked), with the URL's
    /// host as the `Host` header.
    pub fn with_url(&self, uri: &Uri, at: Option<std::net::SocketAddr>) -> Option<Upstream> {
        let named = uri.authority()?.clone();
        let scheme = uri.scheme()?.clone();
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return None;
        }
        let authority = match at {
            Some(addr) if scheme == Scheme::HTTP => addr.to_string().parse().ok()?,
            _ => named.clone(),
        };
        let target = Target {
            pooled: scheme == Scheme::HTTP
                && self
                    .targets
                    .first()
                    .is_none_or(|t| t.pooled || t.scheme != Scheme::HTTP),
            scheme,
            host_header: HeaderValue::from_str(named.as_str()).ok()?,
            base_path: uri.path().trim_end_matches('/').to_string(),
            address: pool::Key::new(authority),
        };
        Some(Upstream {
            name: self.name.clone(),
            targets: vec![target],
            next: AtomicUsize::new(0),
            client: self.client.clone(),
            connect_timeout: self.connect_timeout,
            retries: self.retries,
            retry_timeout: self.retry_timeout,
            request_timeout: self.request_timeout,
            hide_dgate_headers: self.hide_dgate_headers,
            disable_query_params: self.disable_query_params,
            upgrade_tls: self.upgrade_tls.clone(),
        })
    }

    pub fn from_service(s: &Service, clients: &Clients) -> Option<Upstream> {
        let targets = s
            .urls
            .iter()
            .map(|u| {
                let uri: Uri = u.parse().ok()?;
                let authority = uri.authority()?.clone();
                Some(Target {
                    pooled: uri.scheme() == Some(&Scheme::HTTP) && !s.http2_only,
                    scheme: uri.scheme()?.clone(),
                    host_header: HeaderValue::from_str(authority.as_str()).ok()?,
                    address: pool::Key::new(authority),
                    base_path: uri.path().trim_end_matches('/').to_string(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let key = ClientKey {
            connect_timeout_ms: s.connect_timeout.unwrap_or(defaults::CONNECT_TIMEOUT).0,
            tls_skip_verify: s.tls_skip_verify,
            http2_only: s.http2_only,
        };
        Some(Upstream {
            name: s.name.clone(),
            targets,
            next: AtomicUsize::new(0),
            client: clients.get(key),
            connect_timeout: Duration::from_millis(key.connect_timeout_ms),
            retries: s.retries.unwrap_or(0),
            retry_timeout: s.retry_timeout.map(|m| m.as_duration()),
            request_timeout: s
                .request_timeout
                .unwrap_or(defaults::REQUEST_TIMEOUT)
                .as_duration(),
            hide_dgate_headers: s.hide_dgate_headers,
            disable_query_params: s.disable_query_params,
            upgrade_tls: clients.upgrade_tls(s.tls_skip_verify),
        })
    }

    fn pick(&self) -> &Target {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.targets[i % self.targets.len()]
    }

    /// The request for `target`: in origin form (`/path?query`) when it goes on a connection of
    /// dgate's own (the pool's, an upgrade's), absolute for hyper-util's client.
    fn request(
        &self,
        target: &Target,
        out: &Outgoing<'_>,
        headers: http::HeaderMap,
        body: ReqBody,
        origin_form: bool,
    ) -> Result<Request<ReqBody>, ProxyError> {
        let pq = match &out.path {
            UpstreamPath::Client(pq) if target.base_path.is_empty() => pq.clone(),
            path => {
                let (path, query) = match path {
                    UpstreamPath::Client(pq) => (pq.path(), pq.query()),
                    UpstreamPath::Other { path, query } => (path.as_str(), query.as_deref()),
                };
                let mut pq = String::with_capacity(target.base_path.len() + path.len() + 16);
                pq.push_str(&target.base_path);
                pq.push_str(path);
                if let Some(q) = query {
                    pq.push('?');
                    pq.push_str(q);
                }
                PathAndQuery::from_maybe_shared(pq).map_err(|e| {
                    ProxyError::new(ErrorKind::BadRequest, format!("invalid request path: {e}"))
                })?
            }
        };
        let uri = if origin_form {
            Uri::from(pq)
        } else {
            Uri::builder()
                .scheme(target.scheme.clone())
                .authority(target.authority().clone())
                .path_and_query(pq)
                .build()
                .map_err(|e| ProxyError::new(ErrorKind::Internal, format!("upstream URI: {e}")))?
        };
        let mut req = Request::new(body);
        *req.method_mut() = out.method.clone();
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        Ok(req)
    }

    /// The `Host` a request with `headers` sends to `target` in place of its own: the URL's,
    /// unless the service preserves the client's and the request has one.
    fn host_for<'t>(
        target: &'t Target,
        out: &Outgoing<'_>,
        headers: &http::HeaderMap,
    ) -> Option<&'t HeaderValue> {
        (!out.preserve_host || !headers.contains_key(header::HOST)).then_some(&target.host_header)
    }

    /// Sends `out` to the next URL, retrying on the following URL when that is safe: only a
    /// request without a body is retried (a streamed body cannot be replayed), after a connection
    /// failure for any method, after a timeout or a broken response for idempotent methods.
    /// (Not `async`: a wrapper's future would hold its arguments a second time.)
    pub fn send(
        &self,
        out: Outgoing<'_>,
        body: ClientBody,
    ) -> impl Future<Output = Result<Response<UpstreamBody>, ProxyError>> + Send {
        let replayable = body.is_end_stream();
        self.send_body(out, Some(body), None, replayable)
    }

    /// Like [`Upstream::send`] with a body already in memory (a module read or replaced it); it
    /// can be sent again on a retry.
    pub fn send_bytes(
        &self,
        out: Outgoing<'_>,
        body: bytes::Bytes,
    ) -> impl Future<Output = Result<Response<UpstreamBody>, ProxyError>> + Send {
        self.send_body(out, None, Some(body), true)
    }

    /// (An `async move` block rather than an `async fn`, which would hold each argument twice.)
    #[allow(clippy::manual_async_fn)] // an `async fn` would hold each argument twice
    fn send_body(
        &self,
        mut out: Outgoing<'_>,
        mut body: Option<ClientBody>,
        bytes: Option<bytes::Bytes>,
        replayable: bool,
    ) -> impl Future<Output = Result<Response<UpstreamBody>, ProxyError>> + Send {
        async move {
            let idempotent = pool::idempotent(&out.method);
            let deadline = self.retry_timeout.map(|d| coarse_tokio_now() + d);
            let mut attempt = 0u32;
            loop {
                let target = self.pick();
                let this_body = if let Some(b) = &bytes {
                    Either::Right(http_body_util::Full::new(b.clone()))
                } else if replayable {
                    empty_request()
                } else {
                    match body.take() {
                        Some(b) => Either::Left(b),
                        None => {
                            return Err(ProxyError::new(ErrorKind::Internal, "body already sent"));
                        }
                    }
                };
                // The headers are copied only while another attempt may follow.
                let last_try = !(replayable && attempt < self.retries);
                let headers = if last_try {
                    std::mem::take(&mut out.headers)
                } else {
                    out.headers.clone()
                };
                let added = Added {
                    host: Self::host_for(target, &out, &headers),
                    ..out.added
                };
                let mut req = self.request(target, &out, headers, this_body, target.pooled)?;
                let mut limit = coarse_tokio_now() + self.request_timeout;
                if let Some(d) = deadline {
                    limit = limit.min(d);
                }
                // Each awaited here rather than through a shared async fn, which would hold the
                // request a second time in every request's future.
                let sent = if target.pooled {
                    // The limit is kept by the pool (a connection's own timer on its lean road).
                    pool::send(&target.address, self.connect_timeout, req, &added, limit)
                        .await
                        .map_err(|e| self.pool_error(target, e))
                } else {
                    added.merge_into(req.headers_mut());
                    // Boxed, as the rarer road (TLS and HTTP/2 upstreams): its connect state
                    // would make every request's future kilobytes larger.
                    Box::pin(self.attempt_shared(target, req, limit)).await
                };
                let err = match sent {
                    Ok(res) => return Ok(res),
                    Err(e) => e,
                };
                let in_time = deadline.is_none_or(|d| coarse_tokio_now() < d);
                if !(replayable && err.may_retry(idempotent) && attempt < self.retries && in_time) {
                    return Err(err);
                }
                attempt += 1;
                tracing::debug!(upstream = %self.name, attempt, error = %err, "retrying");
            }
        }
    }

    /// One attempt on hyper-util's shared client (the upstreams this thread's pool does not
    /// serve: TLS, HTTP/2).
    async fn attempt_shared(
        &self,
        target: &Target,
        req: Request<ReqBody>,
        limit: Instant,
    ) -> Result<Response<UpstreamBody>, ProxyError> {
        match tokio::time::timeout_at(limit, self.client.request(req)).await {
            Ok(Ok(res)) => Ok(res.map(UpstreamBody::unpooled)),
            Err(_) => Err(ProxyError::new(
                ErrorKind::UpstreamTimeout,
                format!(
                    "{}: no response within {:?}",
                    target.authority(),
                    self.request_timeout
                ),
            )),
            Ok(Err(e)) => {
                let kind = if timed_out(&e) {
                    ErrorKind::UpstreamTimeout
                } else if e.is_connect() {
                    ErrorKind::UpstreamConnect
                } else {
                    ErrorKind::UpstreamProtocol
                };
                Err(ProxyError::new(kind, format!("{}: {e:?}", target.authority())).caused_by(e))
            }
        }
    }
}

impl Upstream {
    /// Sends an upgrade request (a WebSocket handshake) to the next URL on a connection of its
    /// own, kept for the upgrade: the answer, whose upgrade the caller takes when it is a 101.
    /// Not retried: the client's handshake is answered by the one upstream that took it.
    pub async fn send_upgrade(
        &self,
        mut out: Outgoing<'_>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let target = self.pick();
        let headers = std::mem::take(&mut out.headers);
        let added = Added {
            host: Self::host_for(target, &out, &headers),
            ..out.added
        };
        let mut req = self.request(target, &out, headers, empty_request(), true)?;
        added.merge_into(req.headers_mut());
        let err = |kind, detail: String| {
            ProxyError::new(kind, format!("{}: {detail}", target.authority()))
        };
        let limit = coarse_tokio_now() + self.request_timeout;
        let port = target
            .authority()
            .port_u16()
            .unwrap_or(if target.scheme == Scheme::HTTPS {
                443
            } else {
                80
            });
        let connect = tokio::net::TcpStream::connect((target.authority().host(), port));
        let tcp = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(err(ErrorKind::UpstreamConnect, e.to_string()).caused_by(e)),
            Err(_) => {
                return Err(err(
                    ErrorKind::UpstreamTimeout,
                    format!("no connection within {:?}", self.connect_timeout),
                ));
            }
        };
        let _ = tcp.set_nodelay(true);
        let sent = async {
            if target.scheme == Scheme::HTTPS {
                let name =
                    rustls_pki_types::ServerName::try_from(target.authority().host().to_string())
                        .map_err(|e| err(ErrorKind::UpstreamConnect, e.to_string()))?;
                let tls = tokio_rustls::TlsConnector::from(self.upgrade_tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| err(ErrorKind::UpstreamConnect, e.to_string()).caused_by(e))?;
                handshake(TokioIo::new(tls), req).await
            } else {
                handshake(TokioIo::new(tcp), req).await
            }
            .map_err(|e| err(ErrorKind::UpstreamProtocol, e.to_string()).caused_by(e))
        };
        match tokio::time::timeout_at(limit, sent).await {
            Ok(res) => res,
            Err(_) => Err(err(
                ErrorKind::UpstreamTimeout,
                format!("no response within {:?}", self.request_timeout),
            )),
        }
    }

    /// What a failure of the pool's attempt at `target` tells the client.
    fn pool_error(&self, target: &Target, e: PoolError) -> ProxyError {
        let err = |kind, detail: String| {
            ProxyError::new(kind, format!("{}: {detail}", target.authority()))
        };
        match e {
            PoolError::Timeout => err(
                ErrorKind::UpstreamTimeout,
                format!("no response within {:?}", self.request_timeout),
            ),
            PoolError::Connect(e) => err(ErrorKind::UpstreamConnect, e.to_string()).caused_by(e),
            PoolError::ConnectTimeout => err(
                ErrorKind::UpstreamTimeout,
                format!("no connection within {:?}", self.connect_timeout),
            ),
            PoolError::Exchange(e) => {
                let kind = match &e {
                    pool::BodyError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                        ErrorKind::UpstreamTimeout
                    }
                    _ => ErrorKind::UpstreamProtocol,
                };
                err(kind, e.to_string()).caused_by(e)
            }
        }
    }
}

/// One request on a new HTTP/1.1 connection over `io` that may be upgraded.
async fn handshake<I>(io: I, req: Request<ReqBody>) -> Result<Response<Incoming>, hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upgraded upstream connection ended with an error");
        }
    });
    sender.send_request(req).await
}

/// Whether an error's cause chain holds an I/O timeout (a connect timeout, say).
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        cur = err.source();
    }
    false
}
