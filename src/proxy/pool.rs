//! A per-thread pool of HTTP/1.1 connections to plain-`http` upstreams.
//!
//! Each proxy worker thread runs its own runtime, so its connections and this pool stay on that
//! thread: no lock, no cross-thread hand-off. A request without a body (most of them) goes over a
//! connection of the pool's own, exchanged in the request's task ([`lean`]); a request with a body
//! goes over a hyper client connection, whose dispatcher reads an early answer while the body is
//! still being written. Either connection goes back to the pool when the response body it carried
//! has been read to the end (see [`UpstreamBody`]); one dropped mid-body is closed. `https` and
//! HTTP/2-only upstreams use hyper-util's shared client instead.

pub(super) mod h1;
mod lean;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{Method, Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::ReqBody;
pub use h1::{Added, Forwarded};
pub use lean::BodyError;
use lean::{Conn, LeanBody};

type Sender = SendRequest<ReqBody>;

/// Idle connections kept per upstream address and thread; more are closed when returned.
const MAX_IDLE_PER_HOST: usize = 1024;
/// An idle connection of the pool's own unused this long is closed rather than reused (the
/// shared client's idle timeout too).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How often returning a connection also sweeps this thread's pool of connections the upstream
/// closed or that idled out (a connection of the pool's own has no task to notice it).
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// One thread's idle connections.
#[derive(Default)]
struct Idle {
    /// Connections of the pool's own, with when each went idle.
    lean: Vec<(Box<Conn>, Instant)>,
    /// hyper client connections (for requests with a body).
    hyper: Vec<Sender>,
}

thread_local! {
    static IDLE: RefCell<HashMap<Key, Idle, BuildHasherDefault<KeyHasher>>> =
        RefCell::new(HashMap::default());
    static LAST_SWEEP: Cell<Option<Instant>> = const { Cell::new(None) };
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
    /// No response head by the request's time limit.
    Timeout,
    /// The connection failed while the request was in flight, or the answer was broken.
    Exchange(BodyError),
}

fn take_lean(key: &Key) -> Option<Box<Conn>> {
    IDLE.with(|p| {
        let mut pool = p.borrow_mut();
        let list = &mut pool.get_mut(key)?.lean;
        let now = crate::clock::coarse_now();
        while let Some((mut conn, since)) = list.pop() {
            if now.saturating_duration_since(since) < IDLE_TIMEOUT && conn.is_idle_open() {
                return Some(conn);
            }
        }
        None
    })
}

fn put_lean(conn: Box<Conn>) {
    let now = crate::clock::coarse_now();
    IDLE.with(|p| {
        let mut pool = p.borrow_mut();
        // Looked up first: the key is cloned only for an address new to this thread's pool.
        if !pool.contains_key(conn.key()) {
            pool.insert(conn.key().clone(), Idle::default());
        }
        let Some(idle) = pool.get_mut(conn.key()) else {
            return;
        };
        let list = &mut idle.lean;
        if list.len() < MAX_IDLE_PER_HOST {
            list.push((conn, now));
        }
        sweep(&mut pool, now);
    });
}

/// Every [`SWEEP_EVERY`], closes this thread's idle connections of the pool's own that the
/// upstream closed or that idled out, and forgets addresses left with nothing idle.
fn sweep(pool: &mut HashMap<Key, Idle, BuildHasherDefault<KeyHasher>>, now: Instant) {
    let due = LAST_SWEEP.with(|last| match last.get() {
        Some(t) if now.duration_since(t) < SWEEP_EVERY => false,
        _ => {
            last.set(Some(now));
            true
        }
    });
    if !due {
        return;
    }
    pool.retain(|_, idle| {
        idle.lean.retain_mut(|(conn, since)| {
            now.duration_since(*since) < IDLE_TIMEOUT && conn.is_idle_open()
        });
        idle.hyper.retain(|s| !s.is_closed());
        !(idle.lean.is_empty() && idle.hyper.is_empty())
    });
}

fn take_hyper(key: &Key) -> Option<Sender> {
    IDLE.with(|p| p.borrow_mut().get_mut(key).and_then(|i| i.hyper.pop()))
}

fn put_hyper(key: Key, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    IDLE.with(|p| {
        let mut pool = p.borrow_mut();
        let list = &mut pool.entry(key).or_default().hyper;
        if list.len() < MAX_IDLE_PER_HOST {
            list.push(sender);
        }
    });
}

async fn dial(authority: &Authority, timeout: Duration) -> Result<TcpStream, PoolError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(authority.as_str())).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(PoolError::Connect(e)),
        Err(_) => return Err(PoolError::ConnectTimeout),
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn connect_hyper(authority: &Authority, timeout: Duration) -> Result<Sender, PoolError> {
    let stream = dial(authority, timeout).await?;
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| PoolError::Exchange(e.into()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// Sends `req` (in origin form) with the fields `added` on an idle connection to `key`'s
/// address, or a new one; its response head must come by `limit`. A reused connection found
/// closed before the request was answered is replaced, transparently, when the request can go
/// again: no body, and for one of the pool's own connections an idempotent method.
///
/// Written as functions returning `async move` blocks, here and on the rest of the request's
/// road: an `async fn` copies each argument into a local of its own, so a request held by a few
/// nested calls was stored twice at each level (run → send_body → pool: 3.3 KiB of the
/// request's future, two thirds of it copies).
#[allow(clippy::manual_async_fn)] // an `async fn` would hold each argument twice
pub fn send(
    key: &Key,
    connect_timeout: Duration,
    mut req: Request<ReqBody>,
    added: &Added<'_>,
    limit: tokio::time::Instant,
) -> impl Future<Output = Result<Response<UpstreamBody>, PoolError>> + Send {
    async move {
        if req.body().is_end_stream() {
            // The body is empty: not kept across the exchange's awaits.
            let (parts, _) = req.into_parts();
            send_lean(key, connect_timeout, parts, added, limit).await
        } else {
            added.merge_into(req.headers_mut());
            // Boxed: the rarer road, whose state would make every request's future larger.
            let sent = Box::pin(tokio::time::timeout_at(
                limit,
                send_hyper(key, connect_timeout, req),
            ));
            sent.await.unwrap_or(Err(PoolError::Timeout))
        }
    }
}

#[allow(clippy::manual_async_fn)] // an `async fn` would hold each argument twice
fn send_lean(
    key: &Key,
    connect_timeout: Duration,
    parts: http::request::Parts,
    added: &Added<'_>,
    limit: tokio::time::Instant,
) -> impl Future<Output = Result<Response<UpstreamBody>, PoolError>> + Send {
    async move {
        let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let again = idempotent(&parts.method);
        let failed = |e: lean::ExchangeError| match e.error {
            BodyError::TimedOut => PoolError::Timeout,
            error => PoolError::Exchange(error),
        };
        loop {
            let (mut conn, reused) = match take_lean(key) {
                Some(conn) => (conn, true),
                None => {
                    // Boxed: a connect's state is kilobytes, and most requests find an idle
                    // connection.
                    let io = Box::pin(tokio::time::timeout_at(
                        limit,
                        dial(&key.authority, connect_timeout),
                    ))
                    .await
                    .unwrap_or(Err(PoolError::Timeout))?;
                    (Conn::new(io, key.clone()), false)
                }
            };
            match lean::exchange(&mut conn, &parts.method, path, &parts.headers, added, limit).await
            {
                Ok(head) => {
                    super::maps::give(parts.headers);
                    return Ok(lean::response(head, conn).map(UpstreamBody::lean));
                }
                Err(e) if reused && e.unanswered && again => {
                    tracing::debug!(error = %e.error, "idle upstream connection was closed; retrying");
                }
                Err(e) => return Err(failed(e)),
            }
        }
    }
}

async fn send_hyper(
    key: &Key,
    connect_timeout: Duration,
    mut req: Request<ReqBody>,
) -> Result<Response<UpstreamBody>, PoolError> {
    while let Some(mut sender) = take_hyper(key) {
        if sender.ready().await.is_err() {
            continue;
        }
        match sender.try_send_request(req).await {
            Ok(res) => return Ok(wrap(res, key, sender)),
            Err(mut e) => match e.take_message() {
                // Not written: the idle connection was stale. Try the next one.
                Some(back) => req = back,
                None => return Err(PoolError::Exchange(e.into_error().into())),
            },
        }
    }
    let mut sender = connect_hyper(&key.authority, connect_timeout).await?;
    match sender.send_request(req).await {
        Ok(res) => Ok(wrap(res, key, sender)),
        Err(e) => Err(PoolError::Exchange(e.into())),
    }
}

/// Whether a request with `method` may be sent again after an attempt whose outcome is unknown
/// (the idempotent methods of RFC 9110 §9.2.2).
pub fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

fn wrap(res: Response<Incoming>, key: &Key, sender: Sender) -> Response<UpstreamBody> {
    res.map(|inner| {
        UpstreamBody(Inner::Hyper(Box::new(HyperBody {
            inner,
            give_back: Some((key.clone(), sender)),
            home: Some(this_thread()),
        })))
    })
}

/// A response body from an upstream. When it came over a pooled connection, reading it to the end
/// returns the connection to this thread's pool.
pub struct UpstreamBody(Inner);

enum Inner {
    /// Over a connection of the pool's own.
    Lean(LeanBody),
    /// Over a hyper client connection: the pool's (with the connection to give back) or the
    /// shared client's. Boxed, as the rarer road (requests with a body, TLS and HTTP/2
    /// upstreams): inline, it made every response a hundred bytes larger to move.
    Hyper(Box<HyperBody>),
}

struct HyperBody {
    inner: Incoming,
    give_back: Option<(Key, Sender)>,
    /// The thread whose pool the connection belongs to: a body read to the end elsewhere (by a
    /// hook that moved to the hook threads) closes its connection instead.
    home: Option<std::thread::ThreadId>,
}

thread_local! {
    static THREAD_ID: std::thread::ThreadId = std::thread::current().id();
}

/// This thread's id, without `thread::current()`'s reference count traffic.
fn this_thread() -> std::thread::ThreadId {
    THREAD_ID
        .try_with(|id| *id)
        .unwrap_or_else(|_| std::thread::current().id())
}

/// Whether this is the thread `home`; false while the thread's locals are being torn down (a
/// connection given back then would go nowhere).
fn on_thread(home: std::thread::ThreadId) -> bool {
    THREAD_ID.try_with(|id| *id == home).unwrap_or(false)
}

impl UpstreamBody {
    /// A body from hyper-util's shared client (nothing to give back).
    pub fn unpooled(inner: Incoming) -> UpstreamBody {
        UpstreamBody(Inner::Hyper(Box::new(HyperBody {
            inner,
            give_back: None,
            home: None,
        })))
    }

    fn lean(body: LeanBody) -> UpstreamBody {
        UpstreamBody(Inner::Lean(body))
    }
}

impl Inner {
    fn release(&mut self) {
        if let Inner::Hyper(body) = self
            && let Some((key, sender)) = body.give_back.take()
            && body.home.is_some_and(on_thread)
        {
            put_hyper(key, sender);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut self.0;
        match this {
            Inner::Lean(body) => body.poll_frame(cx),
            Inner::Hyper(body) => {
                let polled = Pin::new(&mut body.inner).poll_frame(cx);
                match &polled {
                    Poll::Ready(None) => this.release(),
                    Poll::Ready(Some(Err(_))) => body.give_back = None,
                    _ => {}
                }
                polled.map(|f| f.map(|r| r.map_err(BodyError::from)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Lean(body) => body.is_end_stream(),
            Inner::Hyper(body) => body.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Lean(body) => body.size_hint(),
            Inner::Hyper(body) => body.inner.size_hint(),
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // An empty body (HEAD, 204, 304) may never be polled; it is complete all the same.
        // (A lean body's own `Drop` does the same.)
        if let Inner::Hyper(body) = &self.0
            && body.inner.is_end_stream()
        {
            self.0.release();
        }
    }
}

#[cfg(test)]
mod tests;
