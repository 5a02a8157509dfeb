//! Protocol upgrades (WebSocket, as DGate's `ws_tests` use them): the client's handshake goes to
//! the upstream on a connection of its own; when the upstream switches (101), the client gets
//! its answer and the two connections are joined byte for byte until either side closes.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::BodyExt as _;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::body::{RespBody, full};
use super::error::{ErrorKind, ProxyError};
use super::pipeline::to_client;
use super::upstream::{Outgoing, Upstream};

/// Whether `req` asks to switch protocols (`Connection: upgrade` and an `Upgrade` header, over
/// HTTP/1.1).
pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && connection_has(req.headers(), "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Takes what the upgrade needs from the client's request before it is taken apart: the
/// pending upgrade of its connection and the protocol asked for.
pub fn take<B>(req: &mut Request<B>) -> (OnUpgrade, Option<HeaderValue>) {
    let protocol = req.headers().get(header::UPGRADE).cloned();
    (hyper::upgrade::on(req), protocol)
}

/// Sends the handshake `out` (hop-by-hop headers already gone) with the upgrade asked for, and
/// answers the client: the upstream's 101 with the connections joined, or whatever else it said.
pub async fn forward(
    upstream: &Upstream,
    out: Outgoing<'_>,
    client: OnUpgrade,
    protocol: Option<HeaderValue>,
) -> Result<Response<RespBody>, ProxyError> {
    // Boxed: the handshake's state (a connect, maybe TLS) is kilobytes, and every request's
    // future would otherwise carry room for it (and hyper moves that future once a request).
    Box::pin(forward_boxed(upstream, out, client, protocol)).await
}

async fn forward_boxed(
    upstream: &Upstream,
    mut out: Outgoing<'_>,
    client: OnUpgrade,
    protocol: Option<HeaderValue>,
) -> Result<Response<RespBody>, ProxyError> {
    out.headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(p) = protocol {
        out.headers.insert(header::UPGRADE, p);
    }
    let mut res = upstream.send_upgrade(out).await?;
    if res.status() != StatusCode::SWITCHING_PROTOCOLS {
        // No switch: an ordinary answer, read whole (a refused handshake is short).
        let (mut parts, body) = res.into_parts();
        let body = body.collect().await.map_err(|e| {
            ProxyError::new(ErrorKind::UpstreamProtocol, e.to_string()).caused_by(e)
        })?;
        to_client(&mut parts, upstream.hide_dgate_headers);
        return Ok(Response::from_parts(parts, full(body.to_bytes())));
    }
    let server = hyper::upgrade::on(&mut res);
    tokio::spawn(async move {
        let (client, server) = match tokio::try_join!(client, server) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(error = %e, "an upgrade did not complete");
                return;
            }
        };
        let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
            tracing::debug!(error = %e, "an upgraded connection ended with an error");
        }
    });
    // The 101 keeps its Connection and Upgrade headers: they are the switch.
    let (parts, _) = res.into_parts();
    Ok(Response::from_parts(parts, full(bytes::Bytes::new())))
}
