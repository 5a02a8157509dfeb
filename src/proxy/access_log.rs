//! The access log (`proxy.access_log`): one event per answered request, under the log target
//! `dgate::access`, with the configured fields, in the server's log format (text or JSON). Off
//! by default, and then nothing is captured per request.

use http::{HeaderMap, Method, Request, Version, header};

use super::pipeline::Ctx;
use crate::config::{AccessField, AccessLogConfig};

/// The configured fields, as a bit set.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog(u32);

fn bit(f: AccessField) -> u32 {
    1 << (f as u32)
}

impl AccessLog {
    /// The log `config` asks for; `None` when it is off.
    pub fn from_config(config: &AccessLogConfig) -> Option<AccessLog> {
        config
            .enabled
            .then(|| AccessLog(config.fields.iter().fold(0, |m, f| m | bit(*f))))
    }

    fn has(self, f: AccessField) -> bool {
        self.0 & bit(f) != 0
    }

    /// What the line needs from the request, taken before the request is used up.
    pub fn capture<B>(self, req: &Request<B>) -> Box<Captured> {
        let header = |h: &header::HeaderName| {
            header_text(req.headers(), h).map(|v| v.chars().take(512).collect())
        };
        Box::new(Captured {
            log: self,
            method: self.has(AccessField::Method).then(|| req.method().clone()),
            path: self
                .has(AccessField::Path)
                .then(|| req.uri().path().to_string()),
            query: self
                .has(AccessField::Query)
                .then(|| req.uri().query().map(str::to_string))
                .flatten(),
            version: req.version(),
            user_agent: self
                .has(AccessField::UserAgent)
                .then(|| header(&header::USER_AGENT))
                .flatten(),
            referer: self
                .has(AccessField::Referer)
                .then(|| header(&header::REFERER))
                .flatten(),
        })
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A request's part of its access log line.
#[derive(Debug)]
pub struct Captured {
    log: AccessLog,
    method: Option<Method>,
    path: Option<String>,
    query: Option<String>,
    version: Version,
    user_agent: Option<String>,
    referer: Option<String>,
}

impl Captured {
    /// Writes the line for the request of `ctx`, answered with `status`.
    pub fn write(&self, ctx: &Ctx, status: u16) {
        let has = |f| self.log.has(f);
        let target = ctx.target.as_deref();
        let elapsed_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            target: "dgate::access",
            client = has(AccessField::Client).then(|| display(ctx.conn.peer.ip())),
            method = self.method.as_ref().map(Method::as_str),
            host = has(AccessField::Host)
                .then_some(ctx.host.as_str())
                .filter(|h| !h.is_empty()),
            path = self.path.as_deref(),
            query = self.query.as_deref(),
            protocol = has(AccessField::Protocol).then(|| version_str(self.version)),
            status = has(AccessField::Status).then_some(status),
            duration_ms = has(AccessField::DurationMs).then_some((elapsed_ms * 1000.0).round() / 1000.0),
            namespace = target
                .filter(|_| has(AccessField::Namespace))
                .map(|t| t.namespace.as_str()),
            route = target
                .filter(|_| has(AccessField::Route))
                .map(|t| t.name.as_str()),
            service = target
                .filter(|_| has(AccessField::Service))
                .and_then(|t| t.info.service.as_deref()),
            module = target
                .filter(|_| has(AccessField::Module))
                .and_then(|t| t.modules.first())
                .map(|m| m.name.as_str()),
            user_agent = self.user_agent.as_deref(),
            referer = self.referer.as_deref()
        );
    }
}

fn version_str(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}
