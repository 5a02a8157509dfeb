//! Domain patterns: which namespace serves a host.

use compact_str::CompactString;
use regex::Regex;

/// One compiled domain pattern. Matching ignores ASCII case.
#[derive(Debug, Clone)]
pub enum DomainPattern {
    /// `*`
    Any,
    /// `*.example.com`: the host ends with the text after `*`.
    Suffix(String),
    /// `api.*`: the host starts with the text before `*`.
    Prefix(String),
    /// `*local*`: the host contains the text between the two `*`.
    Contains(String),
    /// `/regex/`
    Regex(Regex),
    /// `example.com`
    Exact(String),
}

impl DomainPattern {
    /// Compiles a pattern the resources layer validated. Returns `None` for an invalid regex.
    pub fn parse(p: &str) -> Option<DomainPattern> {
        if p.len() >= 2 && p.starts_with('/') && p.ends_with('/') {
            return regex::RegexBuilder::new(&p[1..p.len() - 1])
                .case_insensitive(true)
                .size_limit(crate::resources::validate::MAX_REGEX_SIZE)
                .build()
                .ok()
                .map(DomainPattern::Regex);
        }
        let mut p = p.to_ascii_lowercase();
        // As DGate reads them, `**` is `*`.
        while p.contains("**") {
            p = p.replace("**", "*");
        }
        Some(if p == "*" {
            DomainPattern::Any
        } else if let Some(s) = p.strip_prefix('*').and_then(|s| s.strip_suffix('*')) {
            DomainPattern::Contains(s.to_string())
        } else if let Some(s) = p.strip_prefix('*') {
            DomainPattern::Suffix(s.to_string())
        } else if let Some(s) = p.strip_suffix('*') {
            DomainPattern::Prefix(s.to_string())
        } else {
            DomainPattern::Exact(p)
        })
    }

    /// `host` must already be lower case and without a port.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            DomainPattern::Any => true,
            DomainPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
            DomainPattern::Prefix(s) => host.len() > s.len() && host.starts_with(s.as_str()),
            DomainPattern::Contains(s) => host.contains(s.as_str()),
            DomainPattern::Regex(r) => r.is_match(host),
            DomainPattern::Exact(s) => host == s,
        }
    }
}

/// The host part of a `Host` header or `:authority`, lower-cased, without port or brackets' port.
pub fn normalize_host(authority: &str) -> CompactString {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        // [v6]:port
        match rest.find(']') {
            Some(end) => &a[..end + 2],
            None => a,
        }
    } else {
        match a.rfind(':') {
            Some(i) if a[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &a[..i],
            _ => a,
        }
    };
    let mut host = CompactString::from(host.trim_end_matches('.'));
    host.make_ascii_lowercase();
    host
}
