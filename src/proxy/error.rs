//! One error type for the proxy path: what went wrong, on which side, its cause, and whether
//! another attempt may succeed. The kind decides the status; the answer is always
//! `{"error", "status"}` JSON.

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use super::body::{RespBody, full};

/// Which side of the proxy failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client sent something we will not serve.
    Downstream,
    /// The upstream could not be reached or misbehaved.
    Upstream,
    /// dgate itself.
    Internal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    HostNotAllowed,
    NoNamespace,
    NoRoute,
    NoHandler,
    BadRequest,
    UpstreamConnect,
    UpstreamTimeout,
    UpstreamProtocol,
    /// A module hook failed (threw, trapped, ran out of a budget) and no errorHandler answered.
    ModuleFailed,
    /// A module had no room for the call (its concurrency limit, the node's instance slots).
    ModuleBusy,
    Internal,
}

#[derive(Debug)]
pub struct ProxyError {
    pub kind: ErrorKind,
    pub side: Side,
    pub context: String,
    /// What failed underneath (hyper's error, say), for the log.
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ProxyError {
    pub fn new(kind: ErrorKind, context: impl Into<String>) -> ProxyError {
        let side = match kind {
            ErrorKind::HostNotAllowed
            | ErrorKind::NoNamespace
            | ErrorKind::NoRoute
            | ErrorKind::NoHandler
            | ErrorKind::BadRequest
            | ErrorKind::ModuleBusy => Side::Downstream,
            ErrorKind::UpstreamConnect
            | ErrorKind::UpstreamTimeout
            | ErrorKind::UpstreamProtocol => Side::Upstream,
            ErrorKind::ModuleFailed | ErrorKind::Internal => Side::Internal,
        };
        ProxyError {
            kind,
            side,
            context: context.into(),
            source: None,
        }
    }

    /// The same error, caused by `source`.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Whether the request may be sent again (to the next upstream URL) after this error: after a
    /// failed connection always, since nothing reached the upstream; after a timeout or a broken
    /// response only when repeating the request is harmless (`idempotent`).
    pub fn may_retry(&self, idempotent: bool) -> bool {
        match self.kind {
            ErrorKind::UpstreamConnect => true,
            ErrorKind::UpstreamTimeout | ErrorKind::UpstreamProtocol => idempotent,
            _ => false,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::HostNotAllowed => StatusCode::FORBIDDEN,
            ErrorKind::NoNamespace | ErrorKind::NoRoute => StatusCode::NOT_FOUND,
            ErrorKind::NoHandler => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::ModuleFailed => StatusCode::BAD_GATEWAY,
            ErrorKind::ModuleBusy => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::UpstreamConnect | ErrorKind::UpstreamProtocol => StatusCode::BAD_GATEWAY,
            ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON answer. Upstream and internal details go to the log, not to the client.
    pub fn into_response(self) -> Response<RespBody> {
        let status = self.status();
        let message = match self.side {
            Side::Downstream => self.context.as_str(),
            Side::Upstream | Side::Internal => {
                tracing::warn!(kind = ?self.kind, error = %self.context, "proxy error");
                match self.kind {
                    ErrorKind::UpstreamConnect => "upstream unreachable",
                    ErrorKind::UpstreamTimeout => "upstream timed out",
                    ErrorKind::UpstreamProtocol => "upstream failed",
                    ErrorKind::ModuleFailed => "module failed",
                    _ => "internal error",
                }
            }
        };
        let mut res = json_response(status, message);
        if self.kind == ErrorKind::ModuleBusy {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.context)
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// `{"error": message, "status": code}` with the right content type.
pub fn json_response(status: StatusCode, message: &str) -> Response<RespBody> {
    let body = serde_json::json!({ "error": message, "status": status.as_u16() }).to_string();
    let mut res = Response::new(full(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
