//! The module road of the pipeline: requestModifier → fetchUpstream → upstream →
//! responseModifier, or requestHandler on a route without a service; errorHandler when the
//! upstream or a hook fails. Each hook call holds an instance only for that call.

use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::Either;

use super::Proxy;
use super::body::{ClientBody, RespBody, full};
use super::error::{ErrorKind, ProxyError};
use super::pipeline::{ADDED_UPSTREAM_HEADERS, Ctx, strip_hop_by_hop, to_client};
use super::pool::UpstreamBody;
use super::snapshot::RouteTarget;
use super::upstream::Upstream;
use crate::modules::{
    CallError, CallInfo, Hook, Io, LazyBody, Lease, Loaded, ModuleSet, Readiness,
};

/// Runs one hook call on an instance of `$loaded` held only for that call: an instance is not
/// kept while the request waits on its upstream, so a few warm instances serve many requests.
/// The call moves off the proxy thread if it runs long (see `modules::Offload`). A macro
/// rather than a function taking a closure: each level of nesting copied the call's large
/// future once more.
macro_rules! on_instance {
    ($modules:expr, $target:expr, $loaded:expr, $hook:ident($($arg:expr),*)) => {{
        let mut lease = lease($loaded, $target).await?;
        let loaded = Arc::clone($loaded);
        // Made in place: a named future moved into `run` would take its room twice.
        $modules
            .offload()
            .run(async move {
                let out = lease.instance.$hook($($arg),*).await;
                loaded.record(out.1.hook, &lease.instance, out.0.as_ref().err());
                loaded.give_back(lease);
                out
            })
            .await
            .map_err(|_| refused($target, CallError::ShuttingDown))?
    }};
}

impl Proxy {
    /// A route with modules: requestModifier → fetchUpstream → upstream → responseModifier, or
    /// requestHandler on a route without a service; errorHandler when the upstream or a hook
    /// fails. Bodies are read into memory (up to `modules.max_body_size`) so hooks can use them.
    pub(super) async fn run_modules(
        &self,
        req: Request<ClientBody>,
        ctx: &mut Ctx,
        target: Arc<RouteTarget>,
        path: Option<String>,
    ) -> Result<Response<RespBody>, ProxyError> {
        let modules = self
            .modules
            .get()
            .ok_or_else(|| ProxyError::new(ErrorKind::Internal, "modules are not enabled"))?;
        let source = &target.modules[0];
        // No request waits for a compile: a new version loads in the background while the
        // one it replaces serves.
        let loaded = match source.readiness() {
            Readiness::Ready(loaded) => loaded,
            Readiness::Failed(e) => {
                return Err(ProxyError::new(
                    ErrorKind::ModuleFailed,
                    format!("module {:?} cannot be loaded: {e}", source.name),
                ));
            }
            Readiness::Loading => {
                modules.prepare(source);
                target.metrics.module_busy();
                return Err(ProxyError::new(
                    ErrorKind::ModuleBusy,
                    format!("module {:?} is still loading on this node", source.name),
                ));
            }
        };
        let mut req = req;
        // A WebSocket handshake: its request modifiers run, then it switches (no responseModifier).
        let upgrade = super::upgrade::is_upgrade(&req).then(|| super::upgrade::take(&mut req));
        let (mut parts, body) = req.into_parts();
        // Room, once, for a few headers a hook adds and those added before the upstream call:
        // the parser sized the map for its own.
        let _ = parts.headers.try_reserve(ADDED_UPSTREAM_HEADERS + 3);
        let call = CallInfo {
            route: target.info.clone(),
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            remote_address: Some(ctx.conn.peer.ip()),
            // Routing was the last use of the host.
            host: std::mem::take(&mut ctx.host),
            tls: ctx.conn.tls,
            // Nothing reads the route's parameters after this either.
            path_params: std::mem::take(&mut ctx.params),
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
            request_source: Some(LazyBody::new(body)),
            body_limit: modules.max_body(),
            route: Some(target.label.clone()),
            request_headers: std::mem::take(&mut parts.headers),
            call,
            ..Io::default()
        });
        match target.upstream.clone() {
            None if defined.contains(&Hook::RequestHandler) => {
                let (r, io) = on_instance!(modules, &target, &loaded, request_handler(io));
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
                        &loaded, defined, io, &mut parts, path, &target, upstream, ctx, modules,
                        upgrade,
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
                        let (r, io) =
                            on_instance!(modules, &target, &loaded, error_handler(status, io));
                        match r {
                            Ok(status) => module_response(status, io),
                            Err(he) => {
                                tracing::warn!(
                                    namespace = %target.namespace,
                                    route = %target.name,
                                    module = target.modules.first().map(|m| m.name.as_str()),
                                    error = %he,
                                    stack = js_stack(&he),
                                    "errorHandler failed"
                                );
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
        loaded: &Arc<Loaded>,
        defined: &[Hook],
        mut io: Box<Io>,
        parts: &mut http::request::Parts,
        mut path: Option<String>,
        target: &RouteTarget,
        mut upstream: Arc<Upstream>,
        ctx: &Ctx,
        modules: &ModuleSet,
        upgrade: Option<(hyper::upgrade::OnUpgrade, Option<HeaderValue>)>,
    ) -> Result<Response<RespBody>, ProxyError> {
        if defined.contains(&Hook::RequestModifier) {
            let (r, io2) = on_instance!(modules, target, loaded, request_modifier(io));
            io = io2;
            r.map_err(|e| module_failed(target, e))?;
            parts.method = io.call.method.clone();
            if io.call.uri != parts.uri {
                parts.uri = io.call.uri.clone();
                // The hook's URI goes as it is, unstripped.
                path = None;
            }
        }
        if defined.contains(&Hook::FetchUpstream) {
            let (r, io2) = on_instance!(modules, target, loaded, fetch_upstream(io));
            io = io2;
            let url = r.map_err(|e| module_failed(target, e))?;
            let not_http = || {
                ProxyError::new(
                    ErrorKind::ModuleFailed,
                    format!("fetchUpstream returned {url:?}, not an http(s) URL"),
                )
            };
            let uri: http::Uri = url.parse().map_err(|_| not_http())?;
            // One of the service's own URLs goes as configured; any other is a module's
            // choice, held to the same policy as its `fetch`.
            let at = if upstream.has_url(&uri) {
                None
            } else {
                let host = uri.host().ok_or_else(not_http)?;
                let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                    Some("https") => 443,
                    _ => 80,
                });
                let addrs = modules.egress().resolve(host, port).await.map_err(|e| {
                    ProxyError::new(
                        ErrorKind::ModuleFailed,
                        format!("fetchUpstream returned {url:?}: {e}"),
                    )
                })?;
                addrs.first().copied()
            };
            upstream = Arc::new(upstream.with_url(&uri, at).ok_or_else(not_http)?);
        }
        parts.headers = std::mem::take(&mut io.request_headers);
        // responseModifier may read the request's headers, as they went upstream.
        let sent_headers = if defined.contains(&Hook::ResponseModifier) {
            parts.headers.clone()
        } else {
            HeaderMap::new()
        };
        // Unread and unchanged, the client's body streams to the upstream as it came.
        let unread = io.take_unread_request::<ClientBody>();
        let head = std::mem::replace(parts, Request::new(()).into_parts().0);
        let mut out = self.upstream_request(head, path, target, upstream.disable_query_params, ctx);
        if let Some((client, protocol)) = upgrade {
            return super::upgrade::forward(&upstream, out, client, protocol).await;
        }
        let res = match unread {
            Some(stream) => upstream.send(out, stream).await?,
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
        let client_edits = std::mem::take(&mut io.client_header_edits);
        if !defined.contains(&Hook::ResponseModifier) {
            apply_client_edits(&mut rparts.headers, client_edits)?;
            return Ok(Response::from_parts(rparts, Either::Left(rbody)));
        }
        // Read only if the hook asks for it.
        let call = std::mem::take(&mut io.call);
        *io = Io {
            response_source: Some(LazyBody::new(rbody)),
            body_limit: modules.max_body(),
            route: Some(target.label.clone()),
            request_headers: sent_headers,
            response_headers: std::mem::take(&mut rparts.headers),
            call,
            client_header_edits: client_edits,
            ..Io::default()
        };
        let status = rparts.status.as_u16();
        let (r, mut io) = on_instance!(modules, target, loaded, response_modifier(status, io));
        let status = r.map_err(|e| module_failed(target, e))?;
        if let Some(stream) = io.take_unread_response::<UpstreamBody>() {
            // Body untouched: it streams from the upstream, under the hook's status and headers.
            let (status, mut headers) =
                module_head(status, std::mem::take(&mut io.response_headers))?;
            apply_client_edits(&mut headers, std::mem::take(&mut io.client_header_edits))?;
            let mut out = Response::new(Either::Left(stream));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            return Ok(out);
        }
        module_response(status, io)
    }
}

/// An instance of `loaded` for one hook call (see [`on_instance!`]).
async fn lease(loaded: &Loaded, target: &RouteTarget) -> Result<Lease, ProxyError> {
    loaded.take().await.map_err(|e| {
        if e.is_busy() {
            refused(target, e)
        } else {
            module_failed(target, e)
        }
    })
}

/// A call refused for want of room: 503 with `Retry-After`, counted apart from failures.
fn refused(target: &RouteTarget, e: CallError) -> ProxyError {
    let module = target.modules.first().map_or("", |m| m.name.as_str());
    tracing::debug!(namespace = %target.namespace, route = %target.name, module, error = %e, "module call refused");
    target.metrics.module_busy();
    ProxyError::new(ErrorKind::ModuleBusy, format!("module {module:?}: {e}"))
}

fn module_failed(target: &RouteTarget, e: CallError) -> ProxyError {
    let module = target.modules.first().map_or("", |m| m.name.as_str());
    tracing::warn!(namespace = %target.namespace, route = %target.name, module, error = %e,
        stack = js_stack(&e), "module failed");
    target.metrics.module_failure();
    ProxyError::new(ErrorKind::ModuleFailed, format!("module {module:?}: {e}"))
}

/// The JS stack of a throw, mapped back to the module's own source files.
fn js_stack(e: &CallError) -> Option<&str> {
    match e {
        CallError::Thrown {
            stack: Some(stack), ..
        } => Some(stack.trim_end()),
        _ => None,
    }
}

/// What hooks asked of the client's response before there was one (`ctx.response()` outside
/// the handlers), applied to the headers it has now.
fn apply_client_edits(
    headers: &mut HeaderMap,
    edits: Vec<crate::modules::HeaderEdit>,
) -> Result<(), ProxyError> {
    if edits.is_empty() {
        return Ok(());
    }
    crate::modules::apply_edits(headers, edits)
        .map_err(|e| ProxyError::new(ErrorKind::ModuleFailed, e.to_string()))?;
    strip_hop_by_hop(headers);
    Ok(())
}

/// A response a hook made: its status, and its headers and body from `io`.
fn module_response(status: u16, mut io: Box<Io>) -> Result<Response<RespBody>, ProxyError> {
    let body = bytes::Bytes::from(std::mem::take(&mut io.response_body));
    let (status, mut headers) = module_head(status, std::mem::take(&mut io.response_headers))?;
    apply_client_edits(&mut headers, std::mem::take(&mut io.client_header_edits))?;
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
