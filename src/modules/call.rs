//! What one hook call works on: the request or response in flight ([`Io`]), what a hook may ask
//! about it ([`CallInfo`], [`RouteInfo`]), bodies read only when a hook asks ([`LazyBody`]), and
//! applying a hook's header edits.

use std::sync::Arc;

use super::BoxFuture;
use super::bindings::{HeaderEdit, Hook, HostError};

/// A body the host reads only when a hook asks for it (`request-body`, `response-body`), so a
/// hook that never looks at bodies lets it stream through untouched: the proxy gets it back,
/// unread and in its own type, with [`Io::take_unread_request`] or [`Io::take_unread_response`].
pub struct LazyBody(Box<dyn ReadBody>);

impl LazyBody {
    /// Wraps a body not read yet.
    pub fn new<B>(body: B) -> LazyBody
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        LazyBody(Box::new(Unread(body)))
    }

    /// Reads the whole body, refusing more than `limit` bytes.
    pub(super) fn read(self, limit: usize) -> BoxFuture<Result<Vec<u8>, HostError>> {
        self.0.read(limit)
    }

    /// The body as it was given, if it is a `B`.
    fn take<B: 'static>(self) -> Option<B> {
        self.0.into_any().downcast::<Unread<B>>().ok().map(|u| u.0)
    }
}

/// The one implementation behind [`LazyBody`]: a body of any type, unread.
struct Unread<B>(B);

trait ReadBody: Send {
    fn read(self: Box<Self>, limit: usize) -> BoxFuture<Result<Vec<u8>, HostError>>;
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}

impl<B> ReadBody for Unread<B>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn read(self: Box<Self>, limit: usize) -> BoxFuture<Result<Vec<u8>, HostError>> {
        use http_body_util::BodyExt as _;
        Box::pin(async move {
            match http_body_util::Limited::new(self.0, limit).collect().await {
                Ok(c) => Ok(c.to_bytes().to_vec()),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    Err(HostError::Limit(format!(
                        "the message body is larger than the {limit} bytes a route with modules reads"
                    )))
                }
                Err(e) => Err(HostError::Failed(format!("reading the message body: {e}"))),
            }
        })
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// The bodies and headers of one hook call, and which hook it is.
#[derive(Default)]
pub struct Io {
    pub hook: Option<Hook>,
    /// The client's request body, once read (or as given).
    pub request_body: Vec<u8>,
    /// The request body not read yet; taken (and read) on a hook's first `request-body`.
    pub request_source: Option<LazyBody>,
    /// The upstream response body not read yet (in `response-modifier`).
    pub response_source: Option<LazyBody>,
    /// The most a lazy body may hold when read.
    pub body_limit: usize,
    /// The route the call is for, for log lines.
    pub route: Option<std::sync::Arc<str>>,
    /// True once a hook replaced the request body.
    pub request_body_set: bool,
    /// The response body: the upstream's in `response-modifier`, else what hooks wrote.
    pub response_body: Vec<u8>,
    /// True once a hook wrote the response body.
    pub response_body_set: bool,
    /// The request's headers: a hook reads them through `request-headers`, and its edits are
    /// applied here when it returns (in requestModifier).
    pub request_headers: ::http::HeaderMap,
    /// The response's headers: the upstream's in responseModifier, empty in the handlers; a
    /// hook's edits are applied here when it returns.
    pub response_headers: ::http::HeaderMap,
    /// The rest of what a hook may ask about the call.
    pub call: CallInfo,
    /// Changes to the client's response headers that hooks made before there was a response
    /// (`ctx.response()` outside the handlers), in order.
    pub client_header_edits: Vec<HeaderEdit>,
}

/// What a hook may ask about its route: the same for every request on it.
#[derive(Debug, Default, Clone)]
pub struct RouteInfo {
    pub namespace: String,
    pub route: String,
    pub service: Option<String>,
    /// The service's upstream URLs.
    pub service_urls: Vec<String>,
}

/// What a hook may ask about the call in flight (`http.call-field` and friends); none of it is
/// copied into the sandbox unless a hook reads it.
#[derive(Debug, Clone)]
pub struct CallInfo {
    pub route: Arc<RouteInfo>,
    pub method: ::http::Method,
    /// Path and query.
    pub uri: ::http::Uri,
    pub remote_address: Option<std::net::IpAddr>,
    /// The host the client asked for, without the port.
    pub host: compact_str::CompactString,
    pub tls: bool,
    /// The route pattern's parameters, decoded.
    pub path_params: Vec<(String, String)>,
    /// In errorHandler: why it is called.
    pub error_message: Option<String>,
}

impl Default for CallInfo {
    /// No call: what an idle instance's state holds. Shares one empty route rather than
    /// allocating one, since each call's end leaves a default behind.
    fn default() -> Self {
        static NO_ROUTE: std::sync::LazyLock<Arc<RouteInfo>> =
            std::sync::LazyLock::new(Default::default);
        CallInfo {
            route: NO_ROUTE.clone(),
            method: ::http::Method::default(),
            uri: ::http::Uri::default(),
            remote_address: None,
            host: Default::default(),
            tls: false,
            path_params: Vec::new(),
            error_message: None,
        }
    }
}

/// Headers as the module world has them: lower-case names, values as text.
pub fn header_pairs(headers: &::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The values of header `name` (in any case) joined with ", ", as a hook's `Headers.get` reads
/// them from [`header_pairs`]; `None` when there is none (or `name` is not a header name).
pub fn header_value(headers: &::http::HeaderMap, name: &str) -> Option<String> {
    // `from_bytes` lowercases the name.
    let name = ::http::HeaderName::from_bytes(name.as_bytes()).ok()?;
    let mut values = headers.get_all(name).iter();
    let mut out = String::from_utf8_lossy(values.next()?.as_bytes()).into_owned();
    for v in values {
        out.push_str(", ");
        out.push_str(&String::from_utf8_lossy(v.as_bytes()));
    }
    Some(out)
}

/// A header edit that is not valid HTTP.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("a header name that is not valid HTTP: {0:?}")]
    Name(String),
    #[error("a value of header {name:?} that is not valid HTTP: {value:?}")]
    Value { name: String, value: String },
    #[error("a value of header {0:?} that is not valid HTTP")]
    UnnamedValue(String),
    #[error("more headers than a message can hold")]
    TooMany,
}

/// Applies a hook's header edits, in order; a name or value that is not valid HTTP is refused.
pub fn apply_edits(map: &mut ::http::HeaderMap, edits: Vec<HeaderEdit>) -> Result<(), EditError> {
    use ::http::{HeaderName, HeaderValue};
    let name =
        |n: &str| HeaderName::from_bytes(n.as_bytes()).map_err(|_| EditError::Name(n.to_string()));
    // The value keeps the string lifted from the guest rather than copying it. It is checked
    // first (RFC 9110 field-value bytes: HTAB, SP, visible ASCII and obs-text, as `http`
    // checks), so that a bad one can still be named in the error.
    let value = |n: &str, v: String| {
        if !v.bytes().all(|b| b == b'\t' || (b >= b' ' && b != 0x7f)) {
            return Err(EditError::Value {
                name: n.to_string(),
                value: v,
            });
        }
        HeaderValue::from_maybe_shared(bytes::Bytes::from(v))
            .map_err(|_| EditError::UnnamedValue(n.to_string()))
    };
    // Grown at most once for the headers that may go in, rather than by doubling as they do.
    let adding = edits
        .iter()
        .filter(|e| matches!(e, HeaderEdit::Set(_) | HeaderEdit::Append(_)))
        .count();
    let _ = map.try_reserve(adding);
    for edit in edits {
        match edit {
            HeaderEdit::Clear => map.clear(),
            // `insert` and `append` would panic past the map's limit (32 Ki entries).
            HeaderEdit::Set((n, v)) => {
                let v = value(&n, v)?;
                map.try_insert(name(&n)?, v)
                    .map_err(|_| EditError::TooMany)?;
            }
            HeaderEdit::Append((n, v)) => {
                let v = value(&n, v)?;
                map.try_append(name(&n)?, v)
                    .map_err(|_| EditError::TooMany)?;
            }
            HeaderEdit::Remove(n) => {
                map.remove(name(&n)?);
            }
        }
    }
    Ok(())
}

impl Io {
    /// The client's request body, if no hook read or replaced it: a `B` as it was given.
    pub fn take_unread_request<B: 'static>(&mut self) -> Option<B> {
        unread(&mut self.request_source, self.request_body_set)
    }

    /// The upstream's response body, if no hook read or replaced it: a `B` as it was given.
    pub fn take_unread_response<B: 'static>(&mut self) -> Option<B> {
        unread(&mut self.response_source, self.response_body_set)
    }

    /// The same bodies, for a call of `hook`.
    pub fn for_hook(mut self: Box<Self>, hook: Hook) -> Box<Io> {
        self.hook = Some(hook);
        self
    }
}

/// Takes `source` out; the body as it was given if it is a `B` and no hook `replaced` it.
fn unread<B: 'static>(source: &mut Option<LazyBody>, replaced: bool) -> Option<B> {
    let source = source.take()?;
    if replaced {
        return None;
    }
    source.take()
}

#[cfg(test)]
mod tests;
