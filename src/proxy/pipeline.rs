//! One request through the proxy, as a list of phases in the order they run (after Pingora's
//! `ProxyHttp`): `request_filter` → `route` → `upstream_request` → `send` → `response_filter` →
//! `log`. Per-request state lives in [`Ctx`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::Either;
use hyper::body::Incoming;

use super::Proxy;
use super::body::{RespBody, full};
use super::error::{ErrorKind, ProxyError};
use super::snapshot::{RouteTarget, Snapshot};
use super::upstream::Outgoing;
use crate::router::{Miss, normalize_host};

/// The connection a request came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The peer's IP as a header value, made once per connection.
    pub peer_ip: HeaderValue,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> ConnInfo {
        let peer_ip = HeaderValue::from_str(&peer.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        ConnInfo { peer, tls, peer_ip }
    }
}

/// Per-request state shared by the phases.
pub struct Ctx {
    pub started: Instant,
    pub conn: ConnInfo,
    pub host: String,
    pub target: Option<Arc<RouteTarget>>,
    /// Path parameters of the matched route, for the phases (and hooks) after routing.
    pub params: Vec<(String, String)>,
    /// Set once the response is handed to hyper.
    answered: bool,
}

/// A request dropped before it was answered: the client closed the connection (hyper drops the
/// handler's future), which a gateway counts as 499, as nginx and DGate do. The upstream request
/// and any hook call in flight are dropped with it.
impl Drop for Ctx {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let elapsed = self.started.elapsed();
        if let Some(t) = &self.target {
            t.metrics.observe(499, elapsed.as_secs_f64());
            tracing::info!(
                namespace = %t.namespace,
                route = %t.name,
                client = %self.conn.peer,
                after = ?elapsed,
                "client closed the connection before the response (499)"
            );
        }
    }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Runs one hook call on an instance of `$loaded` held only for that call: an instance is not
/// kept while the request waits on its upstream, so a few warm instances serve many requests.
/// A macro rather than a function taking a closure: each level of nesting copied the call's
/// large future once more.
macro_rules! on_instance {
    ($loaded:expr, $hook:ident($($arg:expr),*)) => {{
        let mut lease = lease($loaded).await?;
        let out = lease.instance.$hook($($arg),*).await;
        $loaded.give_back(lease);
        out
    }};
}

impl Proxy {
    /// Runs every phase for one request; never fails (errors become JSON responses).
    pub async fn handle(&self, req: Request<Incoming>, conn: ConnInfo) -> Response<RespBody> {
        let snapshot = self.snapshot.load_full();
        let mut ctx = Ctx {
            started: Instant::now(),
            conn,
            host: String::new(),
            target: None,
            params: Vec::new(),
            answered: false,
        };
        let res = match self.run(req, &mut ctx, &snapshot).await {
            Ok(res) => res,
            Err(e) => e.into_response(),
        };
        let res = self.response_filter(res, &ctx);
        self.log(&ctx, res.status());
        ctx.answered = true;
        res
    }

    async fn run(
        &self,
        req: Request<Incoming>,
        ctx: &mut Ctx,
        snapshot: &Snapshot,
    ) -> Result<Response<RespBody>, ProxyError> {
        ctx.host = normalize_host(request_host(&req).unwrap_or_default());
        if let Some(early) = self.request_filter(&req, ctx)? {
            return Ok(early);
        }
        let (target, path) = self.route(&req, ctx, snapshot)?;
        if let Some(m) = &target.missing_module {
            return Err(ProxyError::new(
                ErrorKind::ModuleFailed,
                format!(
                    "module {m:?} of route {:?} has no usable component",
                    target.name
                ),
            ));
        }
        if !target.modules.is_empty() {
            // Boxed: the module pipeline's state (hook calls, the upstream call between them)
            // made every request's future 16 KiB, the plain route's too, and hyper keeps one
            // per connection; without it a request's future is about 4 KiB.
            return Box::pin(self.run_modules(req, ctx, target, path)).await;
        }
        let Some(upstream) = target.upstream.clone() else {
            return Err(ProxyError::new(
                ErrorKind::NoHandler,
                format!(
                    "route {:?} has no service and no request handler",
                    target.name
                ),
            ));
        };
        let (parts, body) = req.into_parts();
        let out = self.upstream_request(parts, path, &target, upstream.disable_query_params, ctx);
        let res = upstream.send(out, body).await?;
        let (mut parts, body) = res.into_parts();
        to_client(&mut parts, upstream.hide_dgate_headers);
        Ok(Response::from_parts(parts, Either::Left(body)))
    }

    /// A route with modules: requestModifier → fetchUpstream → upstream → responseModifier, or
    /// requestHandler on a route without a service; errorHandler when the upstream or a hook
    /// fails. Bodies are read into memory (up to `modules.max_body_size`) so hooks can use them.
    async fn run_modules(
        &self,
        req: Request<Incoming>,
        ctx: &mut Ctx,
        target: Arc<RouteTarget>,
        path: String,
    ) -> Result<Response<RespBody>, ProxyError> {
        let hooks = self
            .hooks
            .get()
            .ok_or_else(|| ProxyError::new(ErrorKind::Internal, "modules are not enabled"))?;
        let loaded = hooks
            .get(&target.modules[0])
            .await
            .map_err(|e| ProxyError::new(ErrorKind::ModuleFailed, e))?;
        let (mut parts, body) = req.into_parts();
        let call = CallInfo {
            route: target.info.clone(),
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            remote_address: Some(ctx.conn.peer.ip()),
            // Routing was the last use of the host.
            host: std::mem::take(&mut ctx.host),
            tls: ctx.conn.tls,
            path_params: ctx.params.clone(),
            error_message: None,
        };
        let defined = &loaded.module.defined;
        // An errorHandler sees the request as the client sent it.
        let original = defined
            .contains(&Hook::ErrorHandler)
            .then(|| (call.clone(), parts.headers.clone()));
        // The body stays on the connection unless a hook reads it; the headers and the rest of
        // the call cross into the sandbox only if a hook reads them.
        let io = Box::new(Io {
            request_source: Some(Box::new(Pending(body))),
            body_limit: hooks.max_body(),
            route: Some(target.label.clone()),
            request_headers: std::mem::take(&mut parts.headers),
            call,
            ..Io::default()
        });
        match target.upstream.clone() {
            None if defined.contains(&Hook::RequestHandler) => {
                let (r, io) = on_instance!(&loaded, request_handler(io));
                match r {
                    Ok(status) => module_response(status, io),
                    Err(e) => Err(module_failed(&target, e)),
                }
            }
            None => Err(ProxyError::new(
                ErrorKind::NoHandler,
                format!(
                    "route {:?} has no service and its module no requestHandler",
                    target.name
                ),
            )),
            Some(upstream) => {
                let outcome = self
                    .forward_with_modules(
                        &loaded,
                        defined,
                        io,
                        &mut parts,
                        path,
                        &target,
                        upstream,
                        ctx,
                        hooks.max_body(),
                    )
                    .await;
                match (outcome, original) {
                    (Ok(res), _) => Ok(res),
                    (Err(e), Some((mut call, headers))) => {
                        let status = e.status().as_u16();
                        call.error_message = Some(e.context.clone());
                        let io = Box::new(Io {
                            route: Some(target.label.clone()),
                            request_headers: headers,
                            call,
                            ..Io::default()
                        });
                        let (r, io) = on_instance!(&loaded, error_handler(status, io));
                        match r {
                            Ok(status) => module_response(status, io),
                            Err(he) => {
                                tracing::warn!(route = %target.name, error = %he, "errorHandler failed");
                                Err(e)
                            }
                        }
                    }
                    (Err(e), None) => Err(e),
                }
            }
        }
    }

    /// requestModifier, fetchUpstream, the upstream call and responseModifier. The request's
    /// headers come in `io.request_headers`, its method and URI in `io.call`.
    #[allow(clippy::too_many_arguments)]
    async fn forward_with_modules(
        &self,
        loaded: &super::hooks::Loaded,
        defined: &[Hook],
        mut io: Box<Io>,
        parts: &mut http::request::Parts,
        mut path: String,
        target: &RouteTarget,
        mut upstream: Arc<super::upstream::Upstream>,
        ctx: &Ctx,
        max_body: usize,
    ) -> Result<Response<RespBody>, ProxyError> {
        if defined.contains(&Hook::RequestModifier) {
            let (r, io2) = on_instance!(loaded, request_modifier(io));
            io = io2;
            r.map_err(|e| module_failed(target, e))?;
            parts.method = io.call.method.clone();
            if io.call.uri != parts.uri {
                parts.uri = io.call.uri.clone();
                path = parts.uri.path().to_string();
            }
        }
        if defined.contains(&Hook::FetchUpstream) {
            let (r, io2) = on_instance!(loaded, fetch_upstream(io));
            io = io2;
            let url = r.map_err(|e| module_failed(target, e))?;
            upstream = Arc::new(upstream.with_url(&url).ok_or_else(|| {
                ProxyError::new(
                    ErrorKind::ModuleFailed,
                    format!("fetchUpstream returned {url:?}, not an http(s) URL"),
                )
            })?);
        }
        parts.headers = std::mem::take(&mut io.request_headers);
        // responseModifier may read the request's headers, as they went upstream.
        let sent_headers = if defined.contains(&Hook::ResponseModifier) {
            parts.headers.clone()
        } else {
            HeaderMap::new()
        };
        // Unread and unchanged, the client's body streams to the upstream as it came.
        let unread = match io.request_source.take() {
            Some(src) if !io.request_body_set => {
                src.into_any().downcast::<Pending<Incoming>>().ok()
            }
            _ => None,
        };
        let head = std::mem::replace(parts, Request::new(()).into_parts().0);
        let mut out = self.upstream_request(head, path, target, upstream.disable_query_params, ctx);
        let res = match unread {
            Some(stream) => upstream.send(out, stream.0).await?,
            None => {
                let body = bytes::Bytes::from(std::mem::take(&mut io.request_body));
                out.headers.remove(header::CONTENT_LENGTH);
                if !body.is_empty() {
                    out.headers
                        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
                }
                upstream.send_bytes(out, body).await?
            }
        };
        let (mut rparts, rbody) = res.into_parts();
        to_client(&mut rparts, upstream.hide_dgate_headers);
        if !defined.contains(&Hook::ResponseModifier) {
            return Ok(Response::from_parts(rparts, Either::Left(rbody)));
        }
        // Read only if the hook asks for it.
        let call = std::mem::take(&mut io.call);
        *io = Io {
            response_source: Some(Box::new(Pending(rbody))),
            body_limit: max_body,
            route: Some(target.label.clone()),
            request_headers: sent_headers,
            response_headers: std::mem::take(&mut rparts.headers),
            call,
            ..Io::default()
        };
        let status = rparts.status.as_u16();
        let (r, mut io) = on_instance!(loaded, response_modifier(status, io));
        let status = r.map_err(|e| module_failed(target, e))?;
        if !io.response_body_set
            && let Some(src) = io.response_source.take()
            && let Ok(stream) = src
                .into_any()
                .downcast::<Pending<super::pool::UpstreamBody>>()
        {
            // Body untouched: it streams from the upstream, under the hook's status and headers.
            let (status, headers) = module_head(status, std::mem::take(&mut io.response_headers))?;
            let mut out = Response::new(Either::Left(stream.0));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            return Ok(out);
        }
        module_response(status, io)
    }

    /// Refuses hosts outside `allowed_domains` and redirects to TLS when asked to.
    fn request_filter(
        &self,
        req: &Request<Incoming>,
        ctx: &Ctx,
    ) -> Result<Option<Response<RespBody>>, ProxyError> {
        let s = &self.settings;
        if !s.allowed_domains.is_empty() && !s.allowed_domains.iter().any(|p| p.matches(&ctx.host))
        {
            return Err(ProxyError::new(
                ErrorKind::HostNotAllowed,
                format!("host {:?} is not served here", ctx.host),
            ));
        }
        if let Some(port) = s.redirect_https
            && !ctx.conn.tls
        {
            let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
            let location = if port == 443 {
                format!("https://{}{pq}", ctx.host)
            } else {
                format!("https://{}:{port}{pq}", ctx.host)
            };
            let status = if matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::PERMANENT_REDIRECT
            };
            let mut res = Response::new(full(bytes::Bytes::new()));
            *res.status_mut() = status;
            if let Ok(v) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            return Ok(Some(res));
        }
        Ok(None)
    }

    /// Finds the route; returns it and the path to send upstream (after `stripPath`).
    fn route(
        &self,
        req: &Request<Incoming>,
        ctx: &mut Ctx,
        snapshot: &Snapshot,
    ) -> Result<(Arc<RouteTarget>, String), ProxyError> {
        let path = req.uri().path();
        let m = snapshot
            .table
            .lookup(&ctx.host, req.method(), path)
            .map_err(|miss| match miss {
                Miss::NoNamespace => ProxyError::new(
                    ErrorKind::NoNamespace,
                    format!("no namespace serves host {:?}", ctx.host),
                ),
                Miss::NoRoute => ProxyError::new(
                    ErrorKind::NoRoute,
                    format!(
                        "no route for {} {path} in namespace {:?}",
                        req.method(),
                        snapshot.table.namespace_for(&ctx.host).unwrap_or_default()
                    ),
                ),
            })?;
        let target = m.path.value.clone();
        ctx.params = m
            .path
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let upstream_path = if target.strip_path {
            match m.path.rest {
                Some(rest) => format!("/{rest}"),
                None => "/".to_string(),
            }
        } else {
            path.to_string()
        };
        ctx.target = Some(target.clone());
        Ok((target, upstream_path))
    }

    /// The request as the upstream sees it: hop-by-hop headers gone, forwarding headers added.
    fn upstream_request(
        &self,
        parts: http::request::Parts,
        path: String,
        target: &RouteTarget,
        disable_query: bool,
        ctx: &Ctx,
    ) -> Outgoing {
        let mut headers = parts.headers;
        let original_host = headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        strip_hop_by_hop(&mut headers);
        if !self.settings.disable_x_forwarded_headers {
            let ip = &ctx.conn.peer_ip;
            let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
                Some(prev) => {
                    HeaderValue::from_str(&format!("{prev}, {}", ip.to_str().unwrap_or("")))
                        .unwrap_or_else(|_| ip.clone())
                }
                None => ip.clone(),
            };
            headers.insert(X_FORWARDED_FOR.clone(), xff);
            headers.insert(X_REAL_IP.clone(), ip.clone());
            if let Some(h) = &original_host {
                headers.insert(X_FORWARDED_HOST.clone(), h.clone());
            }
            headers.insert(
                X_FORWARDED_PROTO.clone(),
                HeaderValue::from_static(if ctx.conn.tls { "https" } else { "http" }),
            );
        }
        headers.append(header::VIA, via(parts.version));
        if target.preserve_host
            && let Some(h) = original_host
        {
            headers.insert(header::HOST, h);
        }
        Outgoing {
            method: parts.method,
            headers,
            path,
            query: if disable_query {
                None
            } else {
                parts.uri.query().map(str::to_string)
            },
            preserve_host: target.preserve_host,
        }
    }

    fn response_filter(&self, mut res: Response<RespBody>, _ctx: &Ctx) -> Response<RespBody> {
        for (name, value) in &self.settings.global_headers {
            res.headers_mut().insert(name.clone(), value.clone());
        }
        res
    }

    fn log(&self, ctx: &Ctx, status: StatusCode) {
        let seconds = ctx.started.elapsed().as_secs_f64();
        match &ctx.target {
            Some(t) => t.metrics.observe(status.as_u16(), seconds),
            None => self.unmatched.observe(status.as_u16(), seconds),
        }
    }
}

/// An instance of `loaded` for one hook call (see [`on_instance!`]).
async fn lease(loaded: &super::hooks::Loaded) -> Result<super::hooks::Lease, ProxyError> {
    loaded
        .take()
        .await
        .map_err(|e| ProxyError::new(ErrorKind::ModuleFailed, e.to_string()))
}

use crate::modules::{CallError, CallInfo, Hook, Io};

fn module_failed(target: &RouteTarget, e: CallError) -> ProxyError {
    let module = target.modules.first().map_or("", |m| m.name.as_str());
    tracing::warn!(namespace = %target.namespace, route = %target.name, module, error = %e, "module failed");
    target.metrics.module_failure();
    ProxyError::new(ErrorKind::ModuleFailed, format!("module {module:?}: {e}"))
}

/// A response a hook made: its status, and its headers and body from `io`.
fn module_response(status: u16, mut io: Box<Io>) -> Result<Response<RespBody>, ProxyError> {
    let body = bytes::Bytes::from(std::mem::take(&mut io.response_body));
    let (status, mut headers) = module_head(status, std::mem::take(&mut io.response_headers))?;
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let mut out = Response::new(full(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// The status a hook answered, checked, and its headers without hop-by-hop ones.
fn module_head(status: u16, mut headers: HeaderMap) -> Result<(StatusCode, HeaderMap), ProxyError> {
    let status = StatusCode::from_u16(status).map_err(|_| {
        ProxyError::new(
            ErrorKind::ModuleFailed,
            format!("a module answered status {status}"),
        )
    })?;
    strip_hop_by_hop(&mut headers);
    Ok((status, headers))
}

/// A body on the proxy path that a hook may or may not read.
struct Pending<B>(B);

impl<B> crate::modules::host::LazyBody for Pending<B>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn read(
        self: Box<Self>,
        limit: usize,
    ) -> crate::modules::host::BoxFuture<Result<Vec<u8>, crate::modules::HostError>> {
        Box::pin(async move {
            read_limited(self.0, limit, "message")
                .await
                .map(|b| b.to_vec())
                .map_err(|e| {
                    if e.kind == ErrorKind::BodyTooLarge {
                        crate::modules::HostError::Limit(e.context)
                    } else {
                        crate::modules::HostError::Failed(e.context)
                    }
                })
        })
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// Reads a whole body, refusing more than `limit` bytes.
async fn read_limited<B>(body: B, limit: usize, what: &str) -> Result<bytes::Bytes, ProxyError>
where
    B: hyper::body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt as _;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ProxyError::new(
                ErrorKind::BodyTooLarge,
                format!(
                    "the {what} body is larger than the {limit} bytes a route with modules reads"
                ),
            ))
        }
        Err(e) => Err(ProxyError::new(
            ErrorKind::BadRequest,
            format!("reading the {what} body: {e}"),
        )),
    }
}

/// The host a request is for: `:authority` (HTTP/2, absolute URIs) or the `Host` header.
fn request_host<B>(req: &Request<B>) -> Option<&str> {
    req.uri().authority().map(|a| a.as_str()).or_else(|| {
        req.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
    })
}

/// An upstream response's head as the client gets it: no hop-by-hop headers, `Via` unless
/// hidden, and the client's own protocol whatever the upstream spoke.
fn to_client(parts: &mut http::response::Parts, hide_dgate_headers: bool) {
    strip_hop_by_hop(&mut parts.headers);
    if !hide_dgate_headers {
        parts.headers.append(header::VIA, via(parts.version));
    }
    parts.version = Version::HTTP_11;
}

fn via(version: Version) -> HeaderValue {
    HeaderValue::from_static(match version {
        Version::HTTP_10 => "1.0 dgate",
        Version::HTTP_2 => "2 dgate",
        Version::HTTP_3 => "3 dgate",
        _ => "1.1 dgate",
    })
}

/// Removes the headers that describe one connection rather than the message (RFC 9110 §7.6.1),
/// including any the `Connection` header names. `TE: trailers` stays (gRPC needs it).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one scan over the few headers beats a dozen hash lookups.
    let hop = [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
        &header::TRAILER,
        &header::PROXY_AUTHORIZATION,
        &header::TE,
    ];
    if !headers.keys().any(|k| hop.contains(&k)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &hop[..hop.len() - 1] {
        headers.remove(*name);
    }
    if headers
        .get(header::TE)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(header::TE);
    }
}
