//! One request through the proxy, as a list of phases in the order they run (after Pingora's
//! `ProxyHttp`): `request_filter` → `route` → `upstream_request` → `send` → `response_filter` →
//! `log`. Per-request state lives in [`Ctx`]. A route with modules takes the module road
//! (`module_route.rs`) between `route` and `response_filter`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::Either;

use super::Proxy;
use super::body::{ClientBody, RespBody, full};
use super::error::{ErrorKind, ProxyError};
use super::pool::h1::via;
use super::pool::{Added, Forwarded};
use super::snapshot::{RouteTarget, Snapshot};
use super::upstream::{Outgoing, UpstreamPath};
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
    pub host: compact_str::CompactString,
    pub target: Option<Arc<RouteTarget>>,
    /// Path parameters of the matched route, for the phases (and hooks) after routing.
    pub params: Vec<(String, String)>,
    /// Set once the response is handed to hyper.
    answered: bool,
    /// The request's part of its access log line, when the access log is on.
    access: Option<Box<super::access_log::Captured>>,
}

/// A request dropped before it was answered: the client closed the connection (hyper drops the
/// handler's future), which a gateway counts as 499, as nginx and DGate do. The upstream request
/// and any hook call in flight are dropped with it.
impl Drop for Ctx {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        if let Some(access) = &self.access {
            access.write(self, 499);
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

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// The hop-by-hop fields (RFC 9110 §7.6.1), `TE` last (it stays when it says `trailers`).
static HOP_BY_HOP: [&HeaderName; 8] = [
    &header::CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &header::TRANSFER_ENCODING,
    &header::UPGRADE,
    &header::TRAILER,
    &header::PROXY_AUTHORIZATION,
    &header::TE,
];
/// How many headers [`Proxy::upstream_request`] may add: the four forwarding ones and `Via`.
pub(super) const ADDED_UPSTREAM_HEADERS: usize = 5;

impl Proxy {
    /// Runs every phase for one request; never fails (errors become JSON responses).
    /// (Functions returning `async move` blocks, here and down the request's road, rather than
    /// `async fn`s, which hold each argument twice: see [`super::pool::send`].)
    #[allow(clippy::manual_async_fn)] // an `async fn` would hold each argument twice
    pub fn handle(
        &self,
        req: Request<ClientBody>,
        conn: ConnInfo,
    ) -> impl Future<Output = Response<RespBody>> + Send {
        async move {
            let snapshot = self.snapshot.load_full();
            let mut ctx = Ctx {
                started: Instant::now(),
                conn,
                host: Default::default(),
                target: None,
                params: Vec::new(),
                answered: false,
                access: self.settings.access_log.map(|log| log.capture(&req)),
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
    }

    #[allow(clippy::manual_async_fn)] // an `async fn` would hold each argument twice
    fn run(
        &self,
        mut req: Request<ClientBody>,
        ctx: &mut Ctx,
        snapshot: &Snapshot,
    ) -> impl Future<Output = Result<Response<RespBody>, ProxyError>> + Send {
        async move {
            ctx.host = normalize_host(request_host(&req).unwrap_or_default());
            normalize_uri(&mut req)?;
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
            if super::upgrade::is_upgrade(&req) {
                let mut req = req;
                let (client, protocol) = super::upgrade::take(&mut req);
                let (parts, _) = req.into_parts();
                let out =
                    self.upstream_request(parts, path, &target, upstream.disable_query_params, ctx);
                return super::upgrade::forward(&upstream, out, client, protocol).await;
            }
            let (parts, body) = req.into_parts();
            let out =
                self.upstream_request(parts, path, &target, upstream.disable_query_params, ctx);
            let res = upstream.send(out, body).await?;
            let (mut parts, body) = res.into_parts();
            to_client(&mut parts, upstream.hide_dgate_headers);
            Ok(Response::from_parts(parts, Either::Left(body)))
        }
    }

    /// Refuses hosts outside `allowed_domains` and redirects to TLS when asked to.
    fn request_filter(
        &self,
        req: &Request<ClientBody>,
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
        if let Some(redirect) = &s.redirect_https
            && !ctx.conn.tls
            && redirect
                .hosts
                .as_ref()
                .is_none_or(|hosts| hosts.iter().any(|p| p.matches(&ctx.host)))
        {
            let port = redirect.port;
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

    /// Finds the route; returns it and, when `stripPath` changed it, the path to send upstream
    /// (`None`: the client's).
    fn route(
        &self,
        req: &Request<ClientBody>,
        ctx: &mut Ctx,
        snapshot: &Snapshot,
    ) -> Result<(Arc<RouteTarget>, Option<String>), ProxyError> {
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
        let upstream_path = target.strip_path.then(|| match m.path.rest {
            Some(rest) => format!("/{rest}"),
            None => "/".to_string(),
        });
        ctx.target = Some(target.clone());
        Ok((target, upstream_path))
    }

    /// The request as the upstream sees it: hop-by-hop headers gone, forwarding headers added.
    /// The added ones stay out of the map ([`Outgoing::added`]) in the common case, a request
    /// with a `Host`, no hop-by-hop field and none of the forwarding names: one scan over the
    /// names instead of a hash and a probe for each field added.
    pub(super) fn upstream_request<'c>(
        &self,
        parts: http::request::Parts,
        path: Option<String>,
        target: &RouteTarget,
        disable_query: bool,
        ctx: &'c Ctx,
    ) -> Outgoing<'c> {
        let mut headers = parts.headers;
        let forwarded = (!self.settings.disable_x_forwarded_headers).then_some(Forwarded {
            ip: &ctx.conn.peer_ip,
            https: ctx.conn.tls,
        });
        let plain = headers.contains_key(header::HOST)
            && !headers
                .keys()
                .any(|k| HOP_BY_HOP.contains(&k) || Forwarded::NAMES.contains(&k));
        let mut added = Added {
            host: None,
            forwarded: None,
            via: Some(parts.version),
        };
        if plain {
            added.forwarded = forwarded;
        } else {
            let original_host = headers.get(header::HOST).cloned().or_else(|| {
                parts
                    .uri
                    .authority()
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            });
            strip_hop_by_hop(&mut headers);
            if let Some(f) = forwarded {
                f.merge_into(&mut headers, original_host.as_ref());
            }
            if target.preserve_host
                && let Some(h) = original_host
            {
                headers.insert(header::HOST, h);
            }
        }
        let path = match (path, parts.uri.path_and_query()) {
            (None, Some(pq)) if !disable_query => UpstreamPath::Client(pq.clone()),
            (path, _) => UpstreamPath::Other {
                path: path.unwrap_or_else(|| parts.uri.path().to_string()),
                query: parts
                    .uri
                    .query()
                    .filter(|_| !disable_query)
                    .map(str::to_string),
            },
        };
        Outgoing {
            method: parts.method,
            headers,
            path,
            preserve_host: target.preserve_host,
            added,
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
        if let Some(access) = &ctx.access {
            access.write(ctx, status.as_u16());
        }
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
pub(super) fn to_client(parts: &mut http::response::Parts, hide_dgate_headers: bool) {
    strip_hop_by_hop(&mut parts.headers);
    if !hide_dgate_headers {
        parts.headers.append(header::VIA, via(parts.version));
    }
    parts.version = Version::HTTP_11;
}

/// Removes the headers that describe one connection rather than the message (RFC 9110 §7.6.1),
/// including any the `Connection` header names. `TE: trailers` stays (gRPC needs it).
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one scan over the few headers beats a dozen hash lookups.
    let hop = &HOP_BY_HOP;
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

/// Routes, modules and the upstream all see the path with its dot-segments removed.
fn normalize_uri<B>(req: &mut Request<B>) -> Result<(), ProxyError> {
    let path = req.uri().path();
    let normalized = match crate::router::normalize_path(path) {
        Ok(std::borrow::Cow::Borrowed(_)) => return Ok(()),
        Ok(std::borrow::Cow::Owned(p)) => p,
        Err(e) => return Err(ProxyError::new(ErrorKind::BadRequest, e.to_string())),
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{normalized}?{q}"),
        None => normalized,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(
        http::uri::PathAndQuery::from_maybe_shared(bytes::Bytes::from(pq))
            .map_err(|e| ProxyError::new(ErrorKind::BadRequest, e.to_string()))?,
    );
    *req.uri_mut() = http::Uri::from_parts(parts)
        .map_err(|e| ProxyError::new(ErrorKind::BadRequest, e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests;
