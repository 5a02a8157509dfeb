//! HTTP/1.1 on the wire for the pool's own exchanges (RFC 9112): a request head written, a
//! response head parsed, a response body's framing decoded. Pure: no I/O here, so each rule is
//! tested on bytes (`tests.rs`); `super::lean` drives it over a connection. The client side's
//! lean path (`proxy::front::wire`) shares the field-level rules: [`put_field`], [`has_token`],
//! [`parse_decimal`].

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

/// The longest response head (or chunk-size line, or trailer section) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header fields in a response head or trailer section (hyper's default too).
const MAX_HEADERS: usize = 100;
/// Body data up to this size is copied out of the connection's read buffer, which then stays
/// the connection's own (reused for the next response); larger data is split off without a copy.
const COPY_MAX: usize = 4096;

/// A response the upstream broke: named, for the log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub &'static str);

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The fields the proxy adds to a request on its way upstream, kept out of the request's map:
/// a connection of the pool's own writes them after the request's own fields ([`encode_head`]),
/// which costs no map insert (a hash and a probe each); hyper's connections get them merged
/// into the map first ([`Added::merge_into`]). A few bytes: a request's future holds it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Added<'a> {
    /// `Host`, sent in place of the map's.
    pub host: Option<&'a HeaderValue>,
    /// The forwarding fields, when the map holds none of their names and has a `Host`.
    pub forwarded: Option<Forwarded<'a>>,
    /// `Via` for a request that came in this version, sent after any the map holds.
    pub via: Option<Version>,
}

/// `X-Forwarded-For` and `X-Real-IP` (the client's IP), `X-Forwarded-Host` (the `Host` the
/// client sent) and `X-Forwarded-Proto`.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded<'a> {
    pub ip: &'a HeaderValue,
    pub https: bool,
}

/// `Via`'s value for a message that came in `version`.
pub fn via(version: Version) -> HeaderValue {
    HeaderValue::from_static(match version {
        Version::HTTP_10 => "1.0 dgate",
        Version::HTTP_2 => "2 dgate",
        Version::HTTP_3 => "3 dgate",
        _ => "1.1 dgate",
    })
}

impl Forwarded<'_> {
    /// The names it sets. A request that already carries one of them has the fields merged
    /// into its map instead: a previous `X-Forwarded-For` is kept in front of the client's IP.
    pub const NAMES: [&'static HeaderName; 4] = [
        &X_FORWARDED_FOR,
        &X_REAL_IP,
        &X_FORWARDED_HOST,
        &X_FORWARDED_PROTO,
    ];

    fn proto(&self) -> HeaderValue {
        HeaderValue::from_static(if self.https { "https" } else { "http" })
    }

    /// Sets the fields in `headers`, replacing theirs, with `X-Forwarded-Host` from `host`;
    /// `X-Forwarded-For` appends the client's IP to a previous value.
    pub fn merge_into(&self, headers: &mut HeaderMap, host: Option<&HeaderValue>) {
        let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            Some(prev) => {
                HeaderValue::from_str(&format!("{prev}, {}", self.ip.to_str().unwrap_or("")))
                    .unwrap_or_else(|_| self.ip.clone())
            }
            None => self.ip.clone(),
        };
        headers.insert(X_FORWARDED_FOR.clone(), xff);
        headers.insert(X_REAL_IP.clone(), self.ip.clone());
        if let Some(h) = host {
            headers.insert(X_FORWARDED_HOST.clone(), h.clone());
        }
        headers.insert(X_FORWARDED_PROTO.clone(), self.proto());
    }
}

impl Added<'_> {
    /// Puts the fields into `headers` (`Host` in place of the map's): what a connection that
    /// writes the map itself needs.
    pub fn merge_into(&self, headers: &mut HeaderMap) {
        if let Some(f) = &self.forwarded {
            let client_host = headers.get(header::HOST).cloned();
            f.merge_into(headers, client_host.as_ref());
        }
        if let Some(h) = self.host {
            headers.insert(header::HOST, h.clone());
        }
        if let Some(v) = self.via {
            headers.append(header::VIA, via(v));
        }
    }
}

/// Writes a request head without a body: the request line in origin form, `added`'s `Host` in
/// place of the map's when it has one, the map's fields, then the rest of `added`
/// (`X-Forwarded-Host` is the map's `Host`). `http`'s types have already refused CR, LF and NUL
/// in every part.
pub fn encode_head(
    dst: &mut Vec<u8>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    added: &Added<'_>,
) {
    let host = added.host;
    dst.extend_from_slice(method.as_str().as_bytes());
    dst.push(b' ');
    dst.extend_from_slice(path.as_bytes());
    dst.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(h) = host {
        put_field(dst, &header::HOST, h);
    }
    let mut client_host = None;
    for (name, value) in headers {
        if name == header::HOST {
            client_host = Some(value);
            if host.is_some() {
                continue;
            }
        }
        put_field(dst, name, value);
    }
    if let Some(f) = &added.forwarded {
        put_field(dst, &X_FORWARDED_FOR, f.ip);
        put_field(dst, &X_REAL_IP, f.ip);
        if let Some(h) = client_host {
            put_field(dst, &X_FORWARDED_HOST, h);
        }
        put_field(dst, &X_FORWARDED_PROTO, &f.proto());
    }
    if let Some(v) = added.via {
        put_field(dst, &header::VIA, &via(v));
    }
    dst.extend_from_slice(b"\r\n");
}

/// Writes one field line: `name: value` and CRLF.
pub fn put_field(dst: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
    dst.extend_from_slice(name.as_str().as_bytes());
    dst.extend_from_slice(b": ");
    dst.extend_from_slice(value.as_bytes());
    dst.extend_from_slice(b"\r\n");
}

/// How a response's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: HEAD, 1xx, 204, 304.
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    Eof,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// Whether the connection may carry another request once this body has been read.
    pub keep_alive: bool,
}

/// Parses a final response head at the start of `buf`, consuming it (and any interim 1xx
/// responses before it); `None` while the head is incomplete. The head's bytes are copied out, so
/// the header values do not hold `buf`'s block.
pub fn parse_response(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, WireError> {
    loop {
        let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut raw);
        let len = match res.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(WireError("response head too large"));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(WireError("too many response header fields"));
            }
            Err(_) => return Err(WireError("malformed response head")),
        };
        if len > MAX_HEAD {
            return Err(WireError("response head too large"));
        }
        let code = res.code.ok_or(WireError("malformed response head"))?;
        let status =
            StatusCode::from_u16(code).map_err(|_| WireError("invalid response status"))?;
        let version = if res.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        if status.is_informational() && code != 101 {
            // 100 Continue, 103 Early Hints: the final response follows.
            buf.advance(len);
            continue;
        }
        let block = Bytes::copy_from_slice(&buf[..len]);
        let base = buf.as_ptr() as usize;
        // Room for what the proxy adds on the way back (`Via`, a module's headers) without
        // growing the map, which moves every entry.
        let mut headers = super::super::maps::take(res.headers.len() + 4);
        let mut keep_alive = version == Version::HTTP_11;
        let mut close = false;
        for h in res.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| WireError("invalid response header name"))?;
            let start = h.value.as_ptr() as usize - base;
            let value = HeaderValue::from_maybe_shared(block.slice(start..start + h.value.len()))
                .map_err(|_| WireError("invalid response header value"))?;
            if name == header::CONNECTION {
                if has_token(&value, "close") {
                    close = true;
                } else if has_token(&value, "keep-alive") {
                    keep_alive = true;
                }
            }
            headers.append(name, value);
        }
        buf.advance(len);
        let framing = framing(status, method, version, &headers)?;
        let keep_alive = keep_alive && !close && code != 101 && framing != Framing::Eof;
        return Ok(Some(Head {
            status,
            version,
            headers,
            framing,
            keep_alive,
        }));
    }
}

/// Whether a comma-separated field value lists `token` (case-insensitive), as `Connection` does.
pub fn has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .to_str()
        .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// RFC 9112 §6.3, for a response to `method`.
fn framing(
    status: StatusCode,
    method: &Method,
    version: Version,
    headers: &HeaderMap,
) -> Result<Framing, WireError> {
    let code = status.as_u16();
    if code == 101 || code == 204 || code == 304 || *method == Method::HEAD {
        return Ok(Framing::Empty);
    }
    if *method == Method::CONNECT && status.is_success() {
        return Ok(Framing::Empty);
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        if version == Version::HTTP_10 {
            return Err(WireError("transfer-encoding in an HTTP/1.0 response"));
        }
        let last = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim);
        return Ok(match last {
            Some(coding) if coding.eq_ignore_ascii_case("chunked") => Framing::Chunked,
            _ => Framing::Eof,
        });
    }
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let text = value
            .to_str()
            .map_err(|_| WireError("invalid content-length"))?;
        for part in text.split(',') {
            let n = parse_decimal(part.trim()).ok_or(WireError("invalid content-length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(WireError("conflicting content-length values"));
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::Eof, Framing::Length))
}

/// A `Content-Length` value: ASCII digits only.
pub fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Where a chunked body's decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: the trailer section.
    Trailers,
}

/// What one step of decoding gave.
#[derive(Debug)]
pub enum Step {
    /// Body data.
    Data(Bytes),
    /// The body ended, with these trailer fields (for a chunked body that had any).
    End(Option<HeaderMap>),
    /// `buf` holds too little: read more and step again.
    More,
}

/// Takes up to `left` bytes of body data from `buf`.
pub fn take_data(buf: &mut BytesMut, left: u64) -> Bytes {
    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
    if n <= COPY_MAX {
        let data = Bytes::copy_from_slice(&buf[..n]);
        buf.advance(n);
        data
    } else {
        buf.split_to(n).freeze()
    }
}

/// One step of a chunked body (RFC 9112 §7.1): moves `state` on, consuming from `buf`.
pub fn step_chunked(buf: &mut BytesMut, state: &mut Chunk) -> Result<Step, WireError> {
    loop {
        match *state {
            Chunk::Size => {
                let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                    if buf.len() > MAX_HEAD {
                        return Err(WireError("chunk-size line too long"));
                    }
                    return Ok(Step::More);
                };
                let size = chunk_size(&buf[..end])?;
                buf.advance(end + 1);
                *state = if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(left) => {
                if buf.is_empty() {
                    return Ok(Step::More);
                }
                let data = take_data(buf, left);
                let left = left - data.len() as u64;
                *state = if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                };
                return Ok(Step::Data(data));
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    return Ok(Step::More);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(WireError("chunk data not followed by CRLF"));
                }
                buf.advance(2);
                *state = Chunk::Size;
            }
            Chunk::Trailers => {
                let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let (len, fields) = match httparse::parse_headers(buf, &mut raw) {
                    Ok(httparse::Status::Complete(done)) => done,
                    Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                        return Err(WireError("trailer section too large"));
                    }
                    Ok(httparse::Status::Partial) => return Ok(Step::More),
                    Err(_) => return Err(WireError("malformed trailer section")),
                };
                let trailers = if fields.is_empty() {
                    None
                } else {
                    let mut map = HeaderMap::with_capacity(fields.len());
                    for f in fields {
                        let name = HeaderName::from_bytes(f.name.as_bytes())
                            .map_err(|_| WireError("invalid trailer name"))?;
                        let value = HeaderValue::from_bytes(f.value)
                            .map_err(|_| WireError("invalid trailer value"))?;
                        map.append(name, value);
                    }
                    Some(map)
                };
                buf.advance(len);
                return Ok(Step::End(trailers));
            }
        }
    }
}

/// A chunk-size line without its LF: hex digits, optional extensions after `;`, then CR.
fn chunk_size(line: &[u8]) -> Result<u64, WireError> {
    let line = line
        .strip_suffix(b"\r")
        .ok_or(WireError("chunk-size line not ended by CRLF"))?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(WireError("invalid chunk size"));
    }
    let rest = &line[digits..];
    let rest = rest.trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') {
        return Err(WireError("invalid chunk size"));
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| WireError("invalid chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| WireError("invalid chunk size"))
}
