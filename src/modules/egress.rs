//! Where modules' outbound requests (`fetch`, and a `fetchUpstream` URL that is not one of its
//! service's) may go. Loopback, private, link-local and other non-public addresses, and this
//! node's own admin listener (which also carries Raft), are refused unless `modules.fetch.allow`
//! opens them. Names are resolved here and the connection goes to the address that was checked,
//! so a name cannot change its answer between the check and the connect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;

use super::host::BoxFuture;
use crate::config::{FetchConfig, FetchRule, FetchTarget};

/// Why a module may not reach an address.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EgressError {
    #[error("{0} (modules.fetch.allow can open it)")]
    Refused(String),
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
}

/// The policy of one node.
#[derive(Debug, Default)]
pub struct Egress {
    rules: Vec<FetchRule>,
    /// This node's listeners that modules must not reach (the admin API and Raft).
    own: Vec<SocketAddr>,
    /// Everything allowed (`dgate module run`, on the author's own machine).
    unrestricted: bool,
}

impl Egress {
    /// The policy of `config` (validated), refusing `own` listeners too.
    pub fn new(config: &FetchConfig, own: Vec<SocketAddr>) -> Egress {
        Egress {
            rules: config
                .allow
                .iter()
                .filter_map(|e| FetchRule::parse(e).ok())
                .collect(),
            own,
            unrestricted: false,
        }
    }

    /// No refusals.
    pub fn unrestricted() -> Egress {
        Egress {
            unrestricted: true,
            ..Egress::default()
        }
    }

    /// Whether a URL with host `host` may connect to `addr`.
    pub fn check(&self, host: &str, addr: SocketAddr) -> Result<(), EgressError> {
        if self.unrestricted {
            return Ok(());
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let ip = canonical(addr.ip());
        let names = |rule: &FetchRule| match &rule.target {
            FetchTarget::Net(net) => net.contains(&ip),
            FetchTarget::Host(h) => *h == host,
            FetchTarget::Suffix(s) => {
                host.len() > s.len()
                    && host.ends_with(s.as_str())
                    && host.as_bytes()[host.len() - s.len() - 1] == b'.'
            }
        };
        // A rule naming this very port opens even the node's own listeners.
        if self
            .rules
            .iter()
            .any(|r| r.port == Some(addr.port()) && names(r))
        {
            return Ok(());
        }
        if self.is_own(ip, addr.port()) {
            return Err(EgressError::Refused(format!(
                "{host} ({}) is this gateway's own admin API",
                SocketAddr::new(ip, addr.port())
            )));
        }
        if self.rules.iter().any(|r| r.port.is_none() && names(r)) {
            return Ok(());
        }
        match non_public(ip) {
            Some(kind) => Err(EgressError::Refused(format!(
                "{host} is {ip}, a {kind} address"
            ))),
            None => Ok(()),
        }
    }

    /// The addresses of `host` (a name or an IP) on `port` that modules may reach, in the
    /// resolver's order; refused when there is none.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let found: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| EgressError::Resolve {
                    host: bare.to_string(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        let mut refused = None;
        let mut allowed = Vec::with_capacity(found.len());
        for addr in found {
            match self.check(bare, addr) {
                Ok(()) => allowed.push(addr),
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        match refused {
            Some(e) if allowed.is_empty() => Err(e),
            _ if allowed.is_empty() => Err(EgressError::Resolve {
                host: bare.to_string(),
                reason: "no address".into(),
            }),
            _ => Ok(allowed),
        }
    }

    fn is_own(&self, ip: IpAddr, port: u16) -> bool {
        self.own.iter().any(|own| {
            own.port() == port
                && (canonical(own.ip()) == ip || (own.ip().is_unspecified() && is_local(ip)))
        })
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is one of this machine's: a listener on the unspecified address answers there.
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        // Binding succeeds only on an address that one of this host's interfaces has.
        || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// What kind of non-public address `ip` is; `None` for a public one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = if ip.is_loopback() {
        "loopback"
    } else if a == 0 {
        "this-network"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local"
    } else if a == 100 && (b & 0xc0) == 64 {
        "shared (carrier-grade NAT)"
    } else if a == 192 && b == 0 && c == 0 {
        "IETF protocol"
    } else if a == 198 && (b & 0xfe) == 18 {
        "benchmarking"
    } else if ip.is_multicast() || ip.is_broadcast() {
        "multicast or broadcast"
    } else if a >= 240 {
        "reserved"
    } else {
        return None;
    };
    Some(kind)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let kind = if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "unique-local (private)"
    } else if (s[0] & 0xffc0) == 0xfe80 {
        "link-local"
    } else if (s[0] & 0xffc0) == 0xfec0 {
        "site-local (private)"
    } else if (s[0] & 0xff00) == 0xff00 {
        "multicast"
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..6] == [0; 6] {
        // NAT64 (64:ff9b::/96) and IPv4-compatible (::a.b.c.d) addresses carry an IPv4 one.
        let [_, _, _, _, _, _, hi, lo] = s;
        return non_public_v4(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ));
    } else {
        return None;
    };
    Some(kind)
}

/// The TCP connector of modules' `fetch`: connects only to addresses [`Egress`] allows.
#[derive(Clone)]
pub struct GuardedConnector {
    inner: HttpConnector,
    egress: Arc<Egress>,
}

impl GuardedConnector {
    pub fn new(egress: Arc<Egress>) -> GuardedConnector {
        let mut inner = HttpConnector::new();
        inner.enforce_http(false);
        inner.set_nodelay(true);
        GuardedConnector { inner, egress }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<Uri> for GuardedConnector {
    type Response = <HttpConnector as tower::Service<Uri>>::Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        // The HTTP connector is always ready; each call clones it.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut inner = self.inner.clone();
        let egress = self.egress.clone();
        Box::pin(async move {
            let host = uri.host().ok_or("the URL has no host")?;
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                });
            let addrs = egress.resolve(host, port).await?;
            let mut last: Option<BoxError> = None;
            for addr in addrs {
                // The checked address itself: no second lookup.
                let to: Uri = format!("http://{addr}/").parse()?;
                match tower::Service::call(&mut inner, to).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) => last = Some(e.into()),
                }
            }
            Err(last.unwrap_or_else(|| "no address to connect to".into()))
        })
    }
}

/// The [`EgressError`] somewhere in `e`'s chain of sources.
pub fn find_refusal<'a>(mut e: &'a (dyn std::error::Error + 'static)) -> Option<&'a EgressError> {
    loop {
        if let Some(found) = e.downcast_ref::<EgressError>() {
            return Some(found);
        }
        e = e.source()?;
    }
}

#[cfg(test)]
mod tests;
