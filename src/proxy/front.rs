//! The client side's lean HTTP/1.1 path: a connection's requests without a body (most of them)
//! are read, handled and answered in the connection's own task, with no dispatcher, service
//! future or body channel between the socket and the pipeline. The first request that is
//! anything else (a body, an upgrade, HTTP/1.0, HTTP/2's preface, a head over a limit, a
//! malformed one) hands the connection, with the bytes already read, to hyper, which serves it
//! from then on and gives each of those cases its own answer.
//!
//! As hyper's server does: a head must arrive within `header_read_timeout` of when its read
//! began (an idle kept-alive connection included); a client that closes its connection while
//! its request is handled drops the request (a 499); a stopping proxy lets the request in
//! flight finish and closes the connection after it.

mod wire;

use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Method, Response};
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::Proxy;
use super::body::{ClientBody, RespBody};
use super::pipeline::{ADDED_UPSTREAM_HEADERS, ConnInfo};
use wire::{Framing, Limits, Parsed};

/// Read buffer room asked for before each read, and a connection's buffer when it is made.
/// Asking for the whole buffer also moves the next read back to its start once a request has
/// been consumed, so a connection reads into the same few cache lines each time rather than
/// walking a larger buffer (cold again at each turn when hundreds of connections take turns).
const READ_MIN: usize = 4 * 1024;
/// A connection's response head (and small body) buffer when it is made; it grows as needed.
const OUT_INITIAL: usize = 1024;
/// Body data up to this size is copied behind the head (or the previous data) and written with
/// it; larger data goes to the socket as it is.
const COPY_MAX: usize = 16 * 1024;

/// The proxy's settings the lean path reads, once per connection.
#[derive(Clone, Copy)]
pub(super) struct Front {
    limits: Limits,
    header_read_timeout: std::time::Duration,
}

impl Front {
    pub fn new(config: &crate::config::ProxyConfig) -> Front {
        Front {
            limits: Limits {
                max_head: usize::try_from(config.max_header_size.0)
                    .unwrap_or(usize::MAX)
                    .max(8192),
                max_headers: config.max_headers,
                spare_headers: ADDED_UPSTREAM_HEADERS,
            },
            header_read_timeout: config.header_read_timeout.as_duration(),
        }
    }
}

/// What ended a wait for a request head.
enum Wait {
    Read(io::Result<usize>),
    Stop,
    TimedOut,
}

impl Proxy {
    /// Serves an HTTP/1.x connection: lean while its requests have no body, then hyper's.
    pub(super) async fn serve_lean<I>(
        self: Arc<Self>,
        mut io: I,
        conn: ConnInfo,
        mut stop: watch::Receiver<bool>,
        watcher: Watcher,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Front {
            limits,
            header_read_timeout,
        } = self.front;
        let mut stop_signal = pin!(stop.changed());
        let mut stopping = false;
        // One timer for the connection, moved on only when it fires: see `poll_deadline`.
        let mut timer = pin!(tokio::time::sleep(header_read_timeout));
        let mut buf = BytesMut::with_capacity(READ_MIN);
        let mut out = Vec::with_capacity(OUT_INITIAL);
        loop {
            let began = crate::clock::coarse_tokio_now();
            let head = loop {
                match wire::parse_request(&buf, &limits) {
                    Parsed::Request(head) => break head,
                    Parsed::Hyper => {
                        let io = Rewind {
                            read: buf.freeze(),
                            io,
                        };
                        // Boxed: hyper's connection state is the rarer road's.
                        Box::pin(self.serve_connection(TokioIo::new(io), conn, watcher)).await;
                        return;
                    }
                    Parsed::Partial => {}
                }
                if stopping && buf.is_empty() {
                    return;
                }
                let deadline = began + header_read_timeout;
                let waited = std::future::poll_fn(|cx| {
                    if let Poll::Ready(r) = poll_fill(&mut io, &mut buf, cx) {
                        return Poll::Ready(Wait::Read(r));
                    }
                    if !stopping && stop_signal.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Wait::Stop);
                    }
                    poll_deadline(timer.as_mut(), deadline, cx)
                })
                .await;
                match waited {
                    Wait::Read(Ok(0) | Err(_)) | Wait::TimedOut => return,
                    Wait::Read(Ok(_)) => {}
                    Wait::Stop => stopping = true,
                }
            };
            buf.advance(head.len);
            let method = head.request.method().clone();
            let keep_alive = !head.close;
            let req = head.request.map(|()| ClientBody::Empty);
            // The request is handled while the connection is watched: a client that leaves
            // drops it. Bytes that arrive meanwhile (a pipelined request) wait in the buffer.
            let res = {
                let mut handling = pin!(self.handle(req, conn.clone()));
                let max_head = limits.max_head;
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(res) = handling.as_mut().poll(cx) {
                        return Poll::Ready(Some(res));
                    }
                    while buf.len() <= max_head {
                        match poll_fill(&mut io, &mut buf, cx) {
                            Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(None),
                            Poll::Ready(Ok(_)) => {}
                            Poll::Pending => break,
                        }
                    }
                    Poll::Pending
                })
                .await
            };
            let Some(res) = res else {
                return;
            };
            // Noticed here rather than by polling the signal while the request is handled.
            stopping |= self.stopping.load(Ordering::Relaxed);
            match write_response(&mut io, &mut out, res, &method, keep_alive && !stopping).await {
                Ok(true) if !stopping => {}
                Ok(_) => {
                    let _ = io.shutdown().await;
                    return;
                }
                Err(e) => {
                    tracing::debug!(peer = %conn.peer, error = %e, "response not written");
                    return;
                }
            }
        }
    }
}

/// Reads into `buf`; 0 at end of file.
fn poll_fill<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_MIN {
        buf.reserve(READ_MIN);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// Whether `deadline` has passed. The connection's one timer is set for an earlier deadline
/// (the first head's, or one that passed while a request was handled) and is moved on only when
/// it fires: a request costs no timer update.
fn poll_deadline(
    mut timer: Pin<&mut Sleep>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> Poll<Wait> {
    while timer.as_mut().poll(cx).is_ready() {
        if timer.deadline() >= deadline {
            return Poll::Ready(Wait::TimedOut);
        }
        timer.as_mut().reset(deadline);
    }
    Poll::Pending
}

/// Writes `res` to a request with `method`; whether the connection may carry another request.
/// Body data that is ready goes out with the head in one write; anything else is written as it
/// comes. A body that fails, or ends before its length, leaves the connection unusable: an error.
async fn write_response<I: AsyncWrite + Unpin>(
    io: &mut I,
    out: &mut Vec<u8>,
    res: Response<RespBody>,
    method: &Method,
    keep_alive: bool,
) -> io::Result<bool> {
    let (parts, mut body) = res.into_parts();
    let exact = if body.is_end_stream() {
        Some(0)
    } else {
        body.size_hint().exact()
    };
    out.clear();
    let plan = wire::encode_response(out, parts.status, &parts.headers, exact, method, keep_alive)
        .map_err(io::Error::other)?;
    super::maps::give(parts.headers);
    let mut left = match plan.framing {
        Framing::Length(0) => {
            drop(body);
            io.write_all(out).await?;
            return Ok(plan.keep_alive);
        }
        Framing::Length(n) => Some(n),
        Framing::Chunked => None,
    };
    let mut trailers: Option<HeaderMap> = None;
    loop {
        // The next frame; what is buffered goes out first if it is not ready.
        let ready = std::future::poll_fn(|cx| match Pin::new(&mut body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(Some(frame)),
            Poll::Pending if out.is_empty() => Poll::Pending,
            Poll::Pending => Poll::Ready(None),
        })
        .await;
        let frame = match ready {
            Some(frame) => frame,
            None => {
                io.write_all(out).await?;
                out.clear();
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => return Err(io::Error::other(e)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    trailers = frame.into_trailers().ok();
                    continue;
                }
            },
        };
        if data.is_empty() {
            continue;
        }
        if let Some(n) = &mut left {
            *n = n
                .checked_sub(data.len() as u64)
                .ok_or_else(|| io::Error::other("response body longer than its length"))?;
        } else {
            wire::chunk_head(out, data.len());
        }
        put(io, out, data).await?;
        if left.is_none() {
            out.extend_from_slice(b"\r\n");
        }
    }
    match left {
        Some(0) => {}
        Some(_) => return Err(io::Error::other("response body shorter than its length")),
        None => wire::chunked_end(out, trailers.as_ref(), plan.trailers.as_deref()),
    }
    io.write_all(out).await?;
    Ok(plan.keep_alive)
}

/// Adds `data` behind what `out` holds, or writes both when it is large.
async fn put<I: AsyncWrite + Unpin>(io: &mut I, out: &mut Vec<u8>, data: Bytes) -> io::Result<()> {
    if out.len() + data.len() <= COPY_MAX {
        out.extend_from_slice(&data);
        return Ok(());
    }
    io.write_all(out).await?;
    out.clear();
    io.write_all(&data).await
}

/// A connection handed to hyper, with the bytes the lean path had read and not consumed.
struct Rewind<I> {
    read: Bytes,
    io: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read.is_empty() {
            let n = self.read.len().min(buf.remaining());
            buf.put_slice(&self.read[..n]);
            self.read.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
