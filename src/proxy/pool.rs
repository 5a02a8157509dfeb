//! A per-thread pool of HTTP/1.1 connections to plain-`http` upstreams.
//!
//! Each proxy worker thread runs its own runtime, so its connections, their tasks and this pool stay
//! on that thread: no lock, no cross-thread hand-off. A connection goes back to the pool when the
//! response body it carried has been read to the end (see [`UpstreamBody`]); one dropped mid-body
//! is closed. `https` and HTTP/2-only upstreams use hyper-util's shared client instead.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::ReqBody;

type Sender = SendRequest<ReqBody>;

/// Idle connections kept per upstream address and thread; more are closed when returned.
const MAX_IDLE_PER_HOST: usize = 1024;

thread_local! {
    static IDLE: RefCell<HashMap<Key, Vec<Sender>, BuildHasherDefault<KeyHasher>>> =
        RefCell::new(HashMap::default());
}

/// An upstream address as the pool's key, hashed once when its service is loaded: `Authority`
/// hashes byte by byte (to fold case), which cost two SipHash runs over the address in every
/// request (checkout and return).
#[derive(Debug, Clone)]
pub struct Key {
    hash: u64,
    authority: Authority,
}

impl Key {
    pub fn new(authority: Authority) -> Key {
        let mut h = std::hash::DefaultHasher::new();
        authority.hash(&mut h);
        Key {
            hash: h.finish(),
            authority,
        }
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.hash == other.hash && self.authority == other.authority
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Passes a [`Key`]'s precomputed hash through.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `Key`; anything else still hashes, slowly.
        for &b in bytes {
            self.0 = self.0.rotate_left(5) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Why a pooled send failed.
pub enum PoolError {
    /// Could not connect (nothing was sent).
    Connect(std::io::Error),
    ConnectTimeout,
    /// The connection failed while the request was in flight.
    Http(hyper::Error),
}

fn take_idle(key: &Key) -> Option<Sender> {
    IDLE.with(|p| p.borrow_mut().get_mut(key).and_then(Vec::pop))
}

fn put_idle(key: Key, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    IDLE.with(|p| {
        let mut pool = p.borrow_mut();
        let list = pool.entry(key).or_default();
        if list.len() < MAX_IDLE_PER_HOST {
            list.push(sender);
        }
    });
}

async fn connect(authority: &Authority, timeout: Duration) -> Result<Sender, PoolError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(authority.as_str())).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(PoolError::Connect(e)),
        Err(_) => return Err(PoolError::ConnectTimeout),
    };
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(PoolError::Http)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// Sends `req` on an idle connection to `key`'s address (or a new one). A reused connection that
/// turns out closed before the request was written is replaced once, transparently.
pub async fn send(
    key: &Key,
    connect_timeout: Duration,
    mut req: Request<ReqBody>,
) -> Result<Response<UpstreamBody>, PoolError> {
    while let Some(mut sender) = take_idle(key) {
        if sender.ready().await.is_err() {
            continue;
        }
        match sender.try_send_request(req).await {
            Ok(res) => return Ok(wrap(res, key, sender)),
            Err(mut e) => match e.take_message() {
                // Not written: the idle connection was stale. Try the next one.
                Some(back) => req = back,
                None => return Err(PoolError::Http(e.into_error())),
            },
        }
    }
    // Boxed: a connect's state is kilobytes, and most requests find an idle connection.
    let mut sender = Box::pin(connect(&key.authority, connect_timeout)).await?;
    match sender.send_request(req).await {
        Ok(res) => Ok(wrap(res, key, sender)),
        Err(e) => Err(PoolError::Http(e)),
    }
}

fn wrap(res: Response<Incoming>, key: &Key, sender: Sender) -> Response<UpstreamBody> {
    res.map(|inner| UpstreamBody {
        inner,
        give_back: Some((key.clone(), sender)),
        home: Some(std::thread::current().id()),
    })
}

/// A response body from an upstream. When it came over a pooled connection, reading it to the end
/// returns the connection to this thread's pool.
pub struct UpstreamBody {
    inner: Incoming,
    give_back: Option<(Key, Sender)>,
    /// The thread whose pool the connection belongs to: a body read to the end elsewhere (by a
    /// hook that moved to the hook threads) closes its connection instead.
    home: Option<std::thread::ThreadId>,
}

impl UpstreamBody {
    /// A body from hyper-util's shared client (nothing to give back).
    pub fn unpooled(inner: Incoming) -> UpstreamBody {
        UpstreamBody {
            inner,
            give_back: None,
            home: None,
        }
    }

    fn release(&mut self) {
        if let Some((key, sender)) = self.give_back.take()
            && self.home == Some(std::thread::current().id())
        {
            put_idle(key, sender);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Err(_))) => self.give_back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // An empty body (HEAD, 204, 304) may never be polled; it is complete all the same.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests;
