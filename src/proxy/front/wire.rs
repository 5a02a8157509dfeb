//! HTTP/1.1 on the wire for the client side's lean path (RFC 9112): a request head without a
//! body parsed, a response head written and its body framed, as hyper's server does. Pure: no
//! I/O here, so each rule is tested on bytes (`tests.rs`); `super` drives it over a connection.

use std::mem::MaybeUninit;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};

use super::super::pool::h1::{has_token, parse_decimal, put_field};

/// The most header fields the lean path parses; a request with more (when `max_headers` allows
/// them) goes to hyper.
const MAX_FIELDS: usize = 128;

/// What the lean path accepts, from `proxy.*`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `max_header_size`, and at least hyper's 8 KiB floor: the longest request head.
    pub max_head: usize,
    /// `max_headers`.
    pub max_headers: usize,
    /// Room for the headers the proxy adds upstream, reserved when the map is made.
    pub spare_headers: usize,
}

/// A request head the lean path serves.
#[derive(Debug)]
pub struct Head {
    pub request: Request<()>,
    /// The head's length in the buffer.
    pub len: usize,
    /// The client asked to close the connection after this exchange.
    pub close: bool,
}

/// What the start of a connection's buffer holds.
// Not boxed: it is returned once a parse and taken apart at once; a box would be an allocation
// for every request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    Request(Head),
    /// An incomplete head: read more.
    Partial,
    /// Anything else (a body, an upgrade, HTTP/1.0 or HTTP/2, a head over a limit, a malformed
    /// one): hyper serves the connection from here on, with its own answers to each case.
    Hyper,
}

/// Parses the request head at the start of `buf`. Only a plain HTTP/1.1 request without a body
/// is taken; the head's bytes are copied once, and the header values are slices of that copy.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Parsed {
    let mut raw = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let fields = &mut raw[..limits.max_headers.min(MAX_FIELDS)];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, fields) {
        Ok(httparse::Status::Complete(len)) if len <= limits.max_head => len,
        Ok(httparse::Status::Partial) if buf.len() <= limits.max_head => return Parsed::Partial,
        _ => return Parsed::Hyper,
    };
    if req.version != Some(1) {
        return Parsed::Hyper;
    }
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Parsed::Hyper;
    };
    // Origin form only: `*` and absolute forms are hyper's.
    if !path.starts_with('/') {
        return Parsed::Hyper;
    }
    let method = match method {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "DELETE" => Method::DELETE,
        "OPTIONS" => Method::OPTIONS,
        "CONNECT" => return Parsed::Hyper,
        other => match Method::from_bytes(other.as_bytes()) {
            Ok(m) => m,
            Err(_) => return Parsed::Hyper,
        },
    };
    let block = Bytes::copy_from_slice(&buf[..len]);
    let base = buf.as_ptr() as usize;
    let slice = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        block.slice(start..start + s.len())
    };
    let Ok(uri) = Uri::from_maybe_shared(slice(path.as_bytes())) else {
        return Parsed::Hyper;
    };
    let mut headers = super::super::maps::take(req.headers.len() + limits.spare_headers);
    let mut close = false;
    for h in req.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(h.name.as_bytes()) else {
            return Parsed::Hyper;
        };
        // A body, a switch of protocols or an interim answer: hyper's to handle.
        if name == header::TRANSFER_ENCODING
            || name == header::UPGRADE
            || name == header::EXPECT
            || (name == header::CONTENT_LENGTH && h.value != b"0")
        {
            return Parsed::Hyper;
        }
        let Ok(value) = HeaderValue::from_maybe_shared(slice(h.value)) else {
            return Parsed::Hyper;
        };
        if name == header::CONNECTION && has_token(&value, "close") {
            close = true;
        }
        headers.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Parsed::Request(Head {
        request,
        len,
        close,
    })
}

/// How a response's body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes (none for HEAD, 204 and 304).
    Length(u64),
    Chunked,
}

/// A response head as written.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub framing: Framing,
    /// Whether the connection carries another request after this one.
    pub keep_alive: bool,
    /// The trailer fields a chunked body may end with (those its `Trailer` header names).
    pub trailers: Option<Vec<HeaderName>>,
}

/// A response head hyper would refuse to write.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeadError(pub &'static str);

/// Writes the head of a response to a request with `method`, as hyper's HTTP/1.1 server does:
/// the length from the body when it knows it (`exact`) or from `Content-Length`, chunked
/// otherwise; `Content-Length: 0` for an empty body; no body for HEAD, 204 and 304; a `Date`
/// unless the response has one.
pub fn encode_response(
    dst: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    exact: Option<u64>,
    method: &Method,
    keep_alive: bool,
) -> Result<Plan, HeadError> {
    if status.is_informational() {
        return Err(HeadError("a 1xx status as a final response"));
    }
    let head_only = *method == Method::HEAD;
    let bodiless = matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED);
    if status == StatusCode::OK {
        dst.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        dst.extend_from_slice(b"HTTP/1.1 ");
        dst.extend_from_slice(status.as_str().as_bytes());
        dst.push(b' ');
        dst.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        dst.extend_from_slice(b"\r\n");
    }
    let mut keep_alive = keep_alive;
    let mut framing = None;
    let mut wrote_date = false;
    let mut trailers: Option<Vec<HeaderName>> = None;
    for (name, value) in headers {
        if *name == header::CONTENT_LENGTH {
            // No body to send (a 204, a 304, an empty one but for HEAD): the header goes, and an
            // empty body gets the implicit `Content-Length: 0` below.
            if bodiless || (exact == Some(0) && !head_only) {
                continue;
            }
            let len = match (exact, value.to_str().ok().and_then(parse_decimal)) {
                (Some(n), _) => n,
                (None, Some(n)) => n,
                (None, None) => return Err(HeadError("invalid content-length")),
            };
            match framing {
                Some(Framing::Length(prev)) if prev == len => continue,
                Some(_) => return Err(HeadError("conflicting content-length")),
                None => framing = Some(Framing::Length(len)),
            }
        } else if *name == header::TRANSFER_ENCODING {
            // The proxy's own framing decides; the upstream's was removed as hop-by-hop.
            continue;
        } else if *name == header::CONNECTION {
            if has_token(value, "close") {
                keep_alive = false;
            }
        } else if *name == header::DATE {
            wrote_date = true;
        } else if *name == header::TRAILER {
            if head_only || bodiless {
                continue;
            }
            if let Ok(text) = value.to_str() {
                trailers.get_or_insert_with(Vec::new).extend(
                    text.split(',')
                        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok()),
                );
            }
        }
        put_field(dst, name, value);
    }
    let framing = match framing {
        Some(f) => f,
        None if bodiless => Framing::Length(0),
        None => {
            let framing = match exact {
                Some(n) => Framing::Length(n),
                None if head_only => Framing::Length(0),
                None => Framing::Chunked,
            };
            match framing {
                Framing::Length(n) if !(head_only && n == 0) => {
                    dst.extend_from_slice(b"content-length: ");
                    dst.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                    dst.extend_from_slice(b"\r\n");
                }
                Framing::Length(_) => {}
                Framing::Chunked => dst.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            }
            framing
        }
    };
    if !wrote_date {
        dst.extend_from_slice(b"date: ");
        extend_date(dst);
        dst.extend_from_slice(b"\r\n");
    }
    dst.extend_from_slice(b"\r\n");
    let framing = if head_only || bodiless {
        Framing::Length(0)
    } else {
        framing
    };
    Ok(Plan {
        framing,
        keep_alive,
        trailers: if framing == Framing::Chunked {
            trailers
        } else {
            None
        },
    })
}

/// A chunk's size line.
pub fn chunk_head(dst: &mut Vec<u8>, len: usize) {
    use std::io::Write as _;
    let _ = write!(dst, "{len:x}\r\n");
}

/// The last chunk, with the `allowed` fields of `trailers` (if any), and the final CRLF.
pub fn chunked_end(
    dst: &mut Vec<u8>,
    trailers: Option<&HeaderMap>,
    allowed: Option<&[HeaderName]>,
) {
    dst.extend_from_slice(b"0\r\n");
    if let (Some(trailers), Some(allowed)) = (trailers, allowed) {
        for (name, value) in trailers {
            if allowed.contains(name) {
                put_field(dst, name, value);
            }
        }
    }
    dst.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The `Date` value for the current second, formatted once a second per thread.
    static DATE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

fn extend_date(dst: &mut Vec<u8>) {
    let now = crate::clock::coarse_system_now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != second {
            *date = (second, httpdate::fmt_http_date(now));
        }
        dst.extend_from_slice(date.1.as_bytes());
    });
}
