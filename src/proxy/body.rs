//! Body types on the proxy path: streamed from a peer ([`ClientBody`], [`UpstreamBody`]) or
//! produced here (`Full`), with no boxing.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::pool::UpstreamBody;

/// A client's request body: streamed by hyper's connection, or none (a request the lean
/// HTTP/1.1 path took, which has no body by construction).
pub enum ClientBody {
    Hyper(Incoming),
    Empty,
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ClientBody::Hyper(body) => Pin::new(body).poll_frame(cx),
            ClientBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Hyper(body) => body.is_end_stream(),
            ClientBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Hyper(body) => body.size_hint(),
            ClientBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// What dgate sends upstream.
pub type ReqBody = Either<ClientBody, Full<Bytes>>;
/// What dgate answers the client.
pub type RespBody = Either<UpstreamBody, Full<Bytes>>;

pub fn full(bytes: Bytes) -> RespBody {
    Either::Right(Full::new(bytes))
}

pub fn empty_request() -> ReqBody {
    Either::Right(Full::new(Bytes::new()))
}
