//! The pool's own HTTP/1.1 exchange, for a request without a body (most proxied requests): the
//! head is written and the response read in the request's own task. hyper's client connection
//! puts a connection task, a request channel, a oneshot and a body channel between the request
//! and its socket, and reallocates its 8 KiB read buffer for every response whose header values
//! still hold the previous one; here there is none of that, and the read buffer is the
//! connection's own from one response to the next. Requests with a body still go through hyper
//! (`super::send`), whose dispatcher reads an early answer while the body is being written.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Response};
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::Key;
use super::h1::{self, Added, Chunk, Framing, Head, Step, WireError};

/// Read buffer room for a response head, and the least a body read asks for: the connection's
/// whole buffer at first, so a read after a consumed response begins at its start again
/// (`BytesMut::reserve` takes back the consumed front when nothing unread is left).
const READ_MIN: usize = 4 * 1024;
/// The most one body read asks for.
const READ_MAX: usize = 64 * 1024;

/// A connection of the pool's own: idle in the pool, or carrying one exchange. Boxed once, when
/// made: a response moves through the proxy many times, and its body holds the connection.
pub struct Conn {
    io: TcpStream,
    /// The address it goes to: its place in the pool.
    key: Key,
    /// Bytes read and not yet consumed; empty between exchanges.
    buf: BytesMut,
    /// The request head being written, kept for its capacity.
    out: Vec<u8>,
    /// Keeps each exchange's time limit (see [`exchange`]); made by the first.
    timer: Option<Pin<Box<Sleep>>>,
}

/// Why an exchange failed, and whether the upstream answered anything before it did.
#[derive(Debug)]
pub struct ExchangeError {
    pub error: BodyError,
    /// Nothing came back: on a reused connection, most likely one the upstream closed while it
    /// was idle, so the request can go again on a new connection when its method allows.
    pub unanswered: bool,
}

/// What can break a response from one of the pool's connections.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("{0}")]
    Hyper(#[from] hyper::Error),
    #[error("no response in time")]
    TimedOut,
}

impl Conn {
    pub fn new(io: TcpStream, key: Key) -> Box<Conn> {
        Box::new(Conn {
            io,
            key,
            buf: BytesMut::with_capacity(READ_MIN),
            out: Vec::with_capacity(512),
            timer: None,
        })
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Whether an idle connection is still open with nothing to read. The reactor has already
    /// marked a connection the upstream closed as readable (end of file), so this costs a system
    /// call only when the last read left the readiness set.
    pub fn is_idle_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut probe),
            Poll::Pending
        )
    }

    /// Reads into the buffer, asking for at least `want` bytes of room; 0 at end of file.
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < want {
            self.buf.reserve(want);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
    }
}

/// Writes a request without a body (its fields and `added`) on `conn` and reads the response
/// head, which must have come by `limit` (then the connection, in an unknown state, is not to
/// be used again).
///
/// The limit is kept by the connection's one timer, moved on only when it fires (at most once
/// a request timeout, for a connection in steady use): setting and clearing a timer for each
/// request cost two visits to the runtime's timer wheel, each under its lock.
pub async fn exchange(
    conn: &mut Conn,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    added: &Added<'_>,
    limit: Instant,
) -> Result<Head, ExchangeError> {
    let unanswered = |error: BodyError| ExchangeError {
        error,
        unanswered: true,
    };
    let timed_out = || ExchangeError {
        error: BodyError::TimedOut,
        unanswered: false,
    };
    let mut timer = conn
        .timer
        .take()
        .unwrap_or_else(|| Box::pin(tokio::time::sleep_until(limit)));
    if timer.deadline() > limit {
        // Set for a request of a service with a longer timeout.
        timer.as_mut().reset(limit);
    }
    conn.out.clear();
    h1::encode_head(&mut conn.out, method, path, headers, added);
    let mut written = 0;
    std::future::poll_fn(|cx| {
        while written < conn.out.len() {
            match Pin::new(&mut conn.io).poll_write(cx, &conn.out[written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(unanswered(
                        io::Error::from(io::ErrorKind::WriteZero).into(),
                    )));
                }
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(unanswered(e.into()))),
                Poll::Pending if expired(&mut timer, limit, cx) => {
                    return Poll::Ready(Err(timed_out()));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    })
    .await?;
    let mut answered = false;
    loop {
        match h1::parse_response(&mut conn.buf, method) {
            Ok(Some(head)) => {
                // The timer stays set while the connection waits in the pool: it is to hold no
                // waker of this request's task (a finished task's memory stays while one does).
                let _ = timer.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                conn.timer = Some(timer);
                return Ok(head);
            }
            Ok(None) => {}
            Err(e) => {
                return Err(ExchangeError {
                    error: e.into(),
                    unanswered: false,
                });
            }
        }
        let read = std::future::poll_fn(|cx| match conn.poll_fill(cx, READ_MIN) {
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending if expired(&mut timer, limit, cx) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await
        .ok_or_else(timed_out)?;
        match read {
            Ok(0) if !answered && conn.buf.is_empty() => {
                return Err(unanswered(
                    WireError("connection closed before a response").into(),
                ));
            }
            Ok(0) => {
                return Err(ExchangeError {
                    error: WireError("connection closed in the response head").into(),
                    unanswered: false,
                });
            }
            Ok(_) => answered = true,
            Err(e) => {
                return Err(ExchangeError {
                    error: e.into(),
                    unanswered: !answered,
                });
            }
        }
    }
}

/// Whether `limit` has passed. The connection's timer may be set for an earlier limit (a
/// previous request's): then it is moved on to this one when it fires.
fn expired(timer: &mut Pin<Box<Sleep>>, limit: Instant, cx: &mut Context<'_>) -> bool {
    while timer.as_mut().poll(cx).is_ready() {
        if timer.deadline() >= limit {
            return true;
        }
        timer.as_mut().reset(limit);
    }
    false
}

/// Where a body's decoding stands.
#[derive(Debug, Clone, Copy)]
enum State {
    Length(u64),
    Chunked(Chunk),
    Eof,
    Done,
}

/// A response body read from one of the pool's connections, which goes back to the pool once
/// the body has been read to its end (on the thread whose pool it came from).
pub struct LeanBody {
    conn: Option<Box<Conn>>,
    state: State,
    keep_alive: bool,
    home: std::thread::ThreadId,
}

/// The response for `head`, its body read from `conn`.
pub fn response(head: Head, conn: Box<Conn>) -> Response<LeanBody> {
    let state = match head.framing {
        Framing::Empty => State::Length(0),
        Framing::Length(n) => State::Length(n),
        Framing::Chunked => State::Chunked(Chunk::Size),
        Framing::Eof => State::Eof,
    };
    let mut res = Response::new(LeanBody {
        conn: Some(conn),
        state,
        keep_alive: head.keep_alive,
        home: super::this_thread(),
    });
    *res.status_mut() = head.status;
    *res.version_mut() = head.version;
    *res.headers_mut() = head.headers;
    res
}

impl LeanBody {
    /// The body ended: its connection goes back to the pool if it can carry another exchange.
    fn finish(&mut self) {
        self.state = State::Done;
        if let Some(conn) = self.conn.take()
            && self.keep_alive
            && conn.buf.is_empty()
            && super::on_thread(self.home)
        {
            super::put_lean(conn);
        }
    }

    /// The body broke: its connection is closed.
    fn fail(&mut self, e: impl Into<BodyError>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.state = State::Done;
        self.conn = None;
        Poll::Ready(Some(Err(e.into())))
    }

    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let step = match &mut self.state {
                State::Done => return Poll::Ready(None),
                State::Length(0) => Step::End(None),
                State::Length(_) if conn.buf.is_empty() => Step::More,
                State::Length(left) => {
                    let data = h1::take_data(&mut conn.buf, *left);
                    *left -= data.len() as u64;
                    Step::Data(data)
                }
                State::Chunked(chunk) => match h1::step_chunked(&mut conn.buf, chunk) {
                    Ok(step) => step,
                    Err(e) => return self.fail(e),
                },
                State::Eof if conn.buf.is_empty() => Step::More,
                State::Eof => Step::Data(h1::take_data(&mut conn.buf, u64::MAX)),
            };
            match step {
                Step::Data(data) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Step::End(trailers) => {
                    self.finish();
                    return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                }
                Step::More => {
                    let want = match self.state {
                        State::Length(left) | State::Chunked(Chunk::Data(left)) => {
                            usize::try_from(left).map_or(READ_MAX, |l| l.clamp(READ_MIN, READ_MAX))
                        }
                        _ => READ_MIN,
                    };
                    match ready!(conn.poll_fill(cx, want)) {
                        Ok(0) if matches!(self.state, State::Eof) => {
                            // A close-delimited body ends with its connection.
                            self.state = State::Done;
                            self.conn = None;
                            return Poll::Ready(None);
                        }
                        Ok(0) => {
                            return self.fail(WireError(
                                "upstream closed the connection before the body ended",
                            ));
                        }
                        Ok(_) => {}
                        Err(e) => return self.fail(e),
                    }
                }
            }
        }
    }

    pub fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done | State::Length(0))
    }

    pub fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for LeanBody {
    fn drop(&mut self) {
        // An empty body (HEAD, 204, 304) may never be polled; it is complete all the same.
        if matches!(self.state, State::Length(0)) {
            self.finish();
        }
    }
}
