//! Field rules for each resource kind: pure checks on one resource, with one message per rule.
//!
//! [`resource`] also normalizes what has one obvious spelling: an empty namespace becomes
//! [`DEFAULT_NAMESPACE`], methods become upper case, a module's base64 loses its line breaks.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::Kind;
use super::types::*;
use crate::units::Millis;

/// A field that breaks a rule: `field: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for Invalid {}

type Result<T = ()> = std::result::Result<T, Invalid>;

pub const MAX_NAME_LEN: usize = 128;
pub const MAX_ID_LEN: usize = 256;
pub const MAX_TAGS: usize = 64;
pub const MAX_TAG_LEN: usize = 128;
pub const MAX_PATH_LEN: usize = 2048;
/// The list fields: long lists cost every snapshot rebuild and every match.
pub const MAX_URLS: usize = 256;
pub const MAX_PATHS: usize = 256;
pub const MAX_METHODS: usize = 16;
pub const MAX_ROUTE_MODULES: usize = 16;
pub const MAX_PATTERNS: usize = 64;
/// A domain pattern's text; a regular expression also compiles to at most [`MAX_REGEX_SIZE`].
pub const MAX_PATTERN_LEN: usize = 512;
pub const MAX_REGEX_SIZE: usize = 256 << 10;
/// The source files kept with a wasm module.
pub const MAX_SOURCE_FILES: usize = 64;
pub const MAX_RETRIES: u32 = 100;
/// Longest timeout a service may set; a longer one is almost always a unit mistake.
pub const MAX_TIMEOUT: Millis = Millis(3_600_000);
pub const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];

/// Checks one resource and normalizes its namespace and methods.
pub fn resource(r: &mut Resource) -> Result {
    match r {
        Resource::Namespace(ns) => {
            name("name", &ns.name)?;
            tags(&ns.tags)
        }
        Resource::Service(s) => {
            common(&s.name, &mut s.namespace, &s.tags)?;
            service(s)
        }
        Resource::Route(rt) => {
            common(&rt.name, &mut rt.namespace, &rt.tags)?;
            route(rt)
        }
        Resource::Module(m) => {
            common(&m.name, &mut m.namespace, &m.tags)?;
            // Base64 as `base64 < file` prints it, in lines.
            m.payload.retain(|c| !c.is_ascii_whitespace());
            module(m)
        }
        Resource::Domain(d) => {
            common(&d.name, &mut d.namespace, &d.tags)?;
            domain(d)
        }
        Resource::Collection(c) => {
            common(&c.name, &mut c.namespace, &c.tags)?;
            collection(c)
        }
        Resource::Document(d) => {
            default_namespace(&mut d.namespace)?;
            document_id("id", &d.id)?;
            name("collection", &d.collection)
        }
        Resource::Secret(s) => {
            common(&s.name, &mut s.namespace, &s.tags)?;
            if s.data.is_empty() {
                return Err(Invalid::new("data", "must not be empty"));
            }
            Ok(())
        }
    }
}

/// Checks a key named in a request (get or delete) the same way a stored resource's name is.
pub fn key(key: &mut ResourceKey) -> Result {
    if key.kind == Kind::Namespace {
        return name("name", &key.name);
    }
    default_namespace(&mut key.namespace)?;
    match (&key.kind, &key.collection) {
        (Kind::Document, Some(c)) => {
            name("collection", c)?;
            document_id("id", &key.name)
        }
        (Kind::Document, None) => Err(Invalid::new("collection", "is required for documents")),
        _ => name("name", &key.name),
    }
}

fn common(n: &str, namespace: &mut String, t: &[String]) -> Result {
    name("name", n)?;
    default_namespace(namespace)?;
    tags(t)
}

fn default_namespace(namespace: &mut String) -> Result {
    if namespace.is_empty() {
        *namespace = DEFAULT_NAMESPACE.to_string();
    }
    name("namespace", namespace)
}

/// Names: 1 to 128 characters of letters, digits, `_`, `-` and `.`, starting with a letter, digit
/// or `_`.
pub fn name(field: &str, value: &str) -> Result {
    if value.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(Invalid::new(
            field,
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    let mut chars = value.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(Invalid::new(
            field,
            format!(
                "{value:?} is not a valid name (letters, digits, '_', '-' and '.', starting with a letter, digit or '_')"
            ),
        ));
    }
    Ok(())
}

/// Document ids: like names, but up to 256 characters and also allowing `:` and `@`.
pub fn document_id(field: &str, value: &str) -> Result {
    if value.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(Invalid::new(
            field,
            format!("must be at most {MAX_ID_LEN} characters"),
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '@'))
    {
        return Err(Invalid::new(
            field,
            format!("{value:?} is not a valid id (letters, digits, '_', '-', '.', ':' and '@')"),
        ));
    }
    Ok(())
}

fn tags(tags: &[String]) -> Result {
    if tags.len() > MAX_TAGS {
        return Err(Invalid::new("tags", format!("at most {MAX_TAGS} tags")));
    }
    for (i, t) in tags.iter().enumerate() {
        if t.is_empty() || t.len() > MAX_TAG_LEN || t.chars().any(char::is_control) {
            return Err(Invalid::new(
                format!("tags[{i}]"),
                format!("must be 1 to {MAX_TAG_LEN} characters without control characters"),
            ));
        }
    }
    Ok(())
}

fn service(s: &Service) -> Result {
    if s.urls.is_empty() {
        return Err(Invalid::new(
            "urls",
            "at least one upstream URL is required",
        ));
    }
    if s.urls.len() > MAX_URLS {
        return Err(Invalid::new(
            "urls",
            format!("at most {MAX_URLS} upstream URLs"),
        ));
    }
    for (i, u) in s.urls.iter().enumerate() {
        upstream_url(&format!("urls[{i}]"), u)?;
    }
    if let Some(r) = s.retries
        && r > MAX_RETRIES
    {
        return Err(Invalid::new(
            "retries",
            format!("must be at most {MAX_RETRIES}"),
        ));
    }
    for (field, value) in [
        ("retryTimeout", s.retry_timeout),
        ("connectTimeout", s.connect_timeout),
        ("requestTimeout", s.request_timeout),
    ] {
        if let Some(v) = value
            && v > MAX_TIMEOUT
        {
            return Err(Invalid::new(
                field,
                format!("must be at most {MAX_TIMEOUT}"),
            ));
        }
    }
    Ok(())
}

/// An upstream URL: `http` or `https`, with a host, without credentials, query or fragment.
pub fn upstream_url(field: &str, value: &str) -> Result {
    let url = url::Url::parse(value)
        .map_err(|e| Invalid::new(field, format!("{value:?} is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Invalid::new(
            field,
            format!("{value:?} must use http or https"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Invalid::new(field, format!("{value:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid::new(
            field,
            format!("{value:?} must not carry credentials"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Invalid::new(
            field,
            format!("{value:?} must not have a query or fragment"),
        ));
    }
    Ok(())
}

fn route(r: &mut Route) -> Result {
    if r.paths.is_empty() {
        return Err(Invalid::new("paths", "at least one path is required"));
    }
    if r.paths.len() > MAX_PATHS {
        return Err(Invalid::new("paths", format!("at most {MAX_PATHS} paths")));
    }
    for (i, p) in r.paths.iter().enumerate() {
        path_pattern(&format!("paths[{i}]"), p)?;
    }
    if r.methods.is_empty() {
        return Err(Invalid::new(
            "methods",
            "at least one method (or \"*\") is required",
        ));
    }
    if r.methods.len() > MAX_METHODS {
        return Err(Invalid::new(
            "methods",
            format!("at most {MAX_METHODS} methods"),
        ));
    }
    for (i, m) in r.methods.iter_mut().enumerate() {
        let upper = m.to_ascii_uppercase();
        if upper != "*" && !METHODS.contains(&upper.as_str()) {
            return Err(Invalid::new(
                format!("methods[{i}]"),
                format!(
                    "{m:?} is not an HTTP method (use one of {} or \"*\")",
                    METHODS.join(", ")
                ),
            ));
        }
        *m = upper;
    }
    if let Some(s) = &r.service {
        name("service", s)?;
    }
    if r.modules.len() > MAX_ROUTE_MODULES {
        return Err(Invalid::new(
            "modules",
            format!("at most {MAX_ROUTE_MODULES} modules"),
        ));
    }
    for (i, m) in r.modules.iter().enumerate() {
        name(&format!("modules[{i}]"), m)?;
    }
    Ok(())
}

/// A route path: starts with `/`; segments are literal, `{param}`, or a final `*` wildcard.
pub fn path_pattern(field: &str, p: &str) -> Result {
    let bad = |reason: String| Invalid::new(field, reason);
    if !p.starts_with('/') {
        return Err(bad(format!("{p:?} must start with '/'")));
    }
    if p.len() > MAX_PATH_LEN {
        return Err(bad(format!("must be at most {MAX_PATH_LEN} characters")));
    }
    if let Some(c) = p
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'))
    {
        return Err(bad(format!("{p:?} must not contain {c:?}")));
    }
    if let Some(star) = p.find('*')
        && star != p.len() - 1
    {
        return Err(bad(format!("{p:?}: '*' is only allowed at the end")));
    }
    let mut params: Vec<&str> = Vec::new();
    for seg in p.split('/').skip(1) {
        if seg.contains(['{', '}']) {
            let inner = seg
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .ok_or_else(|| {
                    bad(format!(
                        "{p:?}: a parameter must be a whole segment such as {{id}}"
                    ))
                })?;
            // `{}` (as DGate, after chi, allows): one segment, not named.
            if inner.is_empty() {
                continue;
            }
            let ident_ok = inner
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ident_ok {
                return Err(bad(format!(
                    "{p:?}: {{{inner}}} is not a valid parameter name"
                )));
            }
            if params.contains(&inner) {
                return Err(bad(format!("{p:?}: parameter {{{inner}}} appears twice")));
            }
            params.push(inner);
        }
    }
    Ok(())
}

fn module(m: &Module) -> Result {
    let l = &m.limits;
    if l.fuel == Some(0) {
        return Err(Invalid::new("limits.fuel", "must be at least 1"));
    }
    if l.memory.is_some_and(|b| b.0 < 1 << 20 || b.0 > 4 << 30) {
        return Err(Invalid::new(
            "limits.memory",
            "must be between 1MiB and 4GiB",
        ));
    }
    if l.timeout.is_some_and(|t| t.0 == 0 || t.0 > 60_000) {
        return Err(Invalid::new(
            "limits.timeout",
            "must be between 1ms and 60s",
        ));
    }
    if m.payload.is_empty() {
        return Err(Invalid::new("payload", "must not be empty"));
    }
    let bytes = BASE64
        .decode(&m.payload)
        .map_err(|e| Invalid::new("payload", format!("is not valid base64: {e}")))?;
    match m.module_type {
        ModuleType::Javascript | ModuleType::Typescript => {
            if !m.sources.is_empty() {
                return Err(Invalid::new(
                    "sources",
                    "is for wasm modules built from source (a JS/TS payload is its own source)",
                ));
            }
            if m.component
                .as_deref()
                .is_some_and(|c| BASE64.decode(c).is_err())
            {
                return Err(Invalid::new("component", "is not valid base64"));
            }
            if std::str::from_utf8(&bytes).is_err() {
                return Err(Invalid::new(
                    "payload",
                    format!(
                        "a {} module must be UTF-8 source text",
                        m.module_type.as_str()
                    ),
                ));
            }
        }
        ModuleType::Wasm => {
            if m.sources.len() > MAX_SOURCE_FILES {
                return Err(Invalid::new(
                    "sources",
                    format!("at most {MAX_SOURCE_FILES} files"),
                ));
            }
            if let Some(name) = m
                .sources
                .keys()
                .find(|n| n.is_empty() || n.len() > MAX_ID_LEN || n.chars().any(char::is_control))
            {
                return Err(Invalid::new(
                    "sources",
                    format!("{name:?} is not a file name (1 to {MAX_ID_LEN} characters)"),
                ));
            }
            if m.component.is_some() {
                return Err(Invalid::new(
                    "component",
                    "is only for javascript and typescript modules (a wasm payload is the component)",
                ));
            }
            if !bytes.starts_with(b"\0asm") {
                return Err(Invalid::new(
                    "payload",
                    "a wasm module must be a WebAssembly binary (it does not start with \\0asm)",
                ));
            }
        }
    }
    Ok(())
}

fn domain(d: &Domain) -> Result {
    if d.patterns.is_empty() {
        return Err(Invalid::new("patterns", "at least one pattern is required"));
    }
    if d.patterns.len() > MAX_PATTERNS {
        return Err(Invalid::new(
            "patterns",
            format!("at most {MAX_PATTERNS} patterns"),
        ));
    }
    for (i, p) in d.patterns.iter().enumerate() {
        domain_pattern(&format!("patterns[{i}]"), p)?;
    }
    match (&d.cert, &d.key) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(Invalid::new("key", "is required when cert is set")),
        (None, Some(_)) => Err(Invalid::new("cert", "is required when key is set")),
        (Some(cert), Some(key)) => {
            // A key sent back as shown by the API keeps the stored one; the state machine checks
            // the pair once it has put the stored key back.
            if key == REDACTED {
                return pem_certificates(cert).map(|_| ());
            }
            certified_key(cert.as_bytes(), key.as_bytes()).map(|_| ())
        }
    }
}

fn pem_certificates(cert: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Invalid::new("cert", format!("is not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(Invalid::new("cert", "holds no PEM certificate"));
    }
    Ok(certs)
}

/// A PEM certificate chain and private key, checked to be usable together for TLS.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey> {
    let cert =
        std::str::from_utf8(cert_pem).map_err(|_| Invalid::new("cert", "is not PEM text"))?;
    let certs = pem_certificates(cert)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| Invalid::new("key", format!("is not a PEM private key: {e}")))?;
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| Invalid::new("key", format!("is not a usable private key: {e}")))?;
    let certified = CertifiedKey::new(certs, signing);
    certified
        .keys_match()
        .map_err(|e| Invalid::new("key", format!("does not belong to the certificate ({e})")))?;
    Ok(certified)
}

/// A domain pattern: `*`, `*.example.com`, `api.*`, `/regex/`, or an exact host name.
pub fn domain_pattern(field: &str, p: &str) -> Result {
    let bad = |reason: String| Invalid::new(field, reason);
    if p.is_empty() {
        return Err(bad("must not be empty".into()));
    }
    if p.len() > MAX_PATTERN_LEN {
        return Err(bad(format!("must be at most {MAX_PATTERN_LEN} characters")));
    }
    if p.len() >= 2 && p.starts_with('/') && p.ends_with('/') {
        let re = &p[1..p.len() - 1];
        if re.is_empty() {
            return Err(bad(format!(
                "{p:?} is an empty regular expression, which matches every host (write * for that)"
            )));
        }
        return regex::RegexBuilder::new(re)
            .case_insensitive(true)
            .size_limit(MAX_REGEX_SIZE)
            .build()
            .map(|_| ())
            .map_err(|e| bad(format!("{p:?} is not a valid regular expression: {e}")));
    }
    let mut glob = p.to_string();
    while glob.contains("**") {
        glob = glob.replace("**", "*");
    }
    if glob == "*" {
        return Ok(());
    }
    let host = glob.strip_prefix('*').unwrap_or(&glob);
    let host = host.strip_suffix('*').unwrap_or(host);
    if host.contains('*') {
        return Err(bad(format!(
            "{p:?}: '*' is only allowed at the start and the end (or use /regex/)"
        )));
    }
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return Err(bad(format!("{p:?} is not a host name pattern")));
    }
    Ok(())
}

fn collection(c: &Collection) -> Result {
    if !(c.schema.is_object() || c.schema.is_boolean()) {
        return Err(Invalid::new(
            "schema",
            "must be a JSON Schema object (or true/false)",
        ));
    }
    jsonschema::validator_for(&c.schema)
        .map(|_| ())
        .map_err(|e| Invalid::new("schema", format!("is not a valid JSON Schema: {e}")))
}

/// Checks a document's data against its collection's schema.
pub fn document_data(schema: &serde_json::Value, data: &serde_json::Value) -> Result {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| Invalid::new("schema", format!("the collection's schema is invalid: {e}")))?;
    if let Some(err) = validator.iter_errors(data).next() {
        let at = err.instance_path().to_string();
        let field = if at.is_empty() {
            "data".to_string()
        } else {
            format!("data{}", at.replace('/', "."))
        };
        return Err(Invalid::new(
            field,
            format!("does not match the collection's schema: {err}"),
        ));
    }
    Ok(())
}
