//! Body types on the proxy path: streamed from a peer (`Incoming`, [`UpstreamBody`]) or produced
//! here (`Full`), with no boxing.

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use super::pool::UpstreamBody;

/// What dgate sends upstream.
pub type ReqBody = Either<Incoming, Full<Bytes>>;
/// What dgate answers the client.
pub type RespBody = Either<UpstreamBody, Full<Bytes>>;

pub fn full(bytes: Bytes) -> RespBody {
    Either::Right(Full::new(bytes))
}

pub fn empty_request() -> ReqBody {
    Either::Right(Full::new(Bytes::new()))
}
