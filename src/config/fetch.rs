//! `modules.fetch.allow`: the entries that open non-public addresses to modules' outbound
//! requests. Parsed here (the config refuses a bad entry at load); applied by `modules::egress`.

use std::net::IpAddr;

use ipnet::IpNet;

/// One `modules.fetch.allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRule {
    pub target: FetchTarget,
    /// Only this port; `None`: any port.
    pub port: Option<u16>,
}

/// What a [`FetchRule`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchTarget {
    /// Addresses in this network (one address is a /32 or /128).
    Net(IpNet),
    /// URLs with exactly this host name (lower case).
    Host(String),
    /// URLs whose host name ends with `.` and this (`*.example.internal`; lower case).
    Suffix(String),
}

impl FetchRule {
    /// `127.0.0.1`, `10.0.0.0/8`, `::1`, `[::1]:8080`, `api.internal:443`, `*.svc.local`.
    pub fn parse(entry: &str) -> Result<FetchRule, &'static str> {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err("is empty");
        }
        if let Some(net) = net(entry) {
            return Ok(FetchRule {
                target: FetchTarget::Net(net),
                port: None,
            });
        }
        let (rest, port) = match entry.strip_prefix('[') {
            Some(bracketed) => {
                let (ip, after) = bracketed
                    .split_once(']')
                    .ok_or("has a '[' without its ']'")?;
                let port = match after {
                    "" => None,
                    p => Some(port(p.strip_prefix(':').ok_or("has text after ']'")?)?),
                };
                let ip: IpAddr = ip.parse().map_err(|_| "is not an IPv6 address in [...]")?;
                return Ok(FetchRule {
                    target: FetchTarget::Net(IpNet::from(ip)),
                    port,
                });
            }
            None => match entry.rsplit_once(':') {
                Some((rest, p)) => (rest, Some(port(p)?)),
                None => (entry, None),
            },
        };
        if let Some(net) = net(rest) {
            return Ok(FetchRule {
                target: FetchTarget::Net(net),
                port,
            });
        }
        let host = rest.to_ascii_lowercase();
        let (target, name) = match host.strip_prefix("*.") {
            Some(suffix) => (FetchTarget::Suffix(suffix.to_string()), suffix),
            None => (FetchTarget::Host(host.clone()), host.as_str()),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(
                "is not an IP address, CIDR, host name or *.domain (with an optional :port)",
            );
        }
        Ok(FetchRule { target, port })
    }
}

fn net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

fn port(s: &str) -> Result<u16, &'static str> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err("has a port that is not a number from 1 to 65535"),
    }
}
