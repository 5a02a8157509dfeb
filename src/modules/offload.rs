//! Hook calls that run long leave the proxy's threads. A call starts where its request is (most
//! finish within their first poll, in microseconds); once it has spent [`SLICE`] of that
//! thread's time, it goes on on the hooks' own threads, which run at a lower priority. Calls
//! yield at every epoch tick (see `instance`), so a looping hook gives its thread up within a
//! tick and a module-free request on the same proxy thread waits at most that long.

use std::future::Future;
use std::sync::OnceLock;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Time a call may spend on a proxy thread before the rest of it moves.
pub const SLICE: Duration = Duration::from_millis(2);

/// The hooks' threads, started on first use.
pub struct Offload {
    threads: usize,
    runtime: OnceLock<Option<tokio::runtime::Runtime>>,
}

/// The hooks' threads are gone (the node is shutting down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the gateway is shutting down")]
pub struct Gone;

impl Offload {
    /// `threads` hook threads, started when a call first needs them.
    pub fn new(threads: usize) -> Offload {
        Offload {
            threads: threads.max(1),
            runtime: OnceLock::new(),
        }
    }

    fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(self.threads)
                    .thread_name("dgate-hooks")
                    .on_thread_start(lower_priority)
                    .enable_all()
                    .build()
                    .inspect_err(|e| tracing::error!(error = %e, "cannot start the hook threads; long calls stay on the proxy threads"))
                    .ok()
            })
            .as_ref()
            .map(|rt| rt.handle().clone())
    }

    /// Runs `task` on the hooks' threads (here when they cannot start).
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self.handle() {
            Some(handle) => {
                handle.spawn(task);
            }
            None => {
                tokio::spawn(task);
            }
        }
    }

    /// Runs `call` here until it has used [`SLICE`] of this thread; then on the hooks' threads.
    /// Dropping the returned future (the client left) stops the call at its next yield.
    ///
    /// The call is boxed at once (it may have to move to another thread), and the future
    /// returned holds only the box: an `async fn` would also keep `call` itself, unused, in its
    /// state, and every request's future on the module road would carry room for it.
    pub fn run<F>(&self, call: F) -> impl Future<Output = Result<F::Output, Gone>> + Send + '_
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.run_boxed(Box::pin(call))
    }

    async fn run_boxed<O: Send + 'static>(
        &self,
        mut call: std::pin::Pin<Box<dyn Future<Output = O> + Send>>,
    ) -> Result<O, Gone> {
        let mut spent = Duration::ZERO;
        let here = std::future::poll_fn(|cx| {
            let started = Instant::now();
            match call.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(Some(out)),
                // The time counts only for a call that goes on (most end in their first
                // poll, and a clock read costs 50-80 ns on a VM).
                Poll::Pending => {
                    spent += started.elapsed();
                    if spent >= SLICE {
                        Poll::Ready(None)
                    } else {
                        Poll::Pending
                    }
                }
            }
        })
        .await;
        if let Some(out) = here {
            return Ok(out);
        }
        let Some(handle) = self.handle() else {
            return Ok(call.await);
        };
        let mut task = AbortOnDrop(handle.spawn(call));
        match (&mut task.0).await {
            Ok(out) => Ok(out),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Gone),
        }
    }
}

impl Drop for Offload {
    fn drop(&mut self) {
        // Not waiting for calls still running: each ends at its own time limit anyway, and
        // waiting here could block a runtime's thread.
        if let Some(Some(rt)) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The hooks' threads yield the CPU to the proxy's when both want it.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority only reads its arguments; on Linux, PRIO_PROCESS with 0 is the
        // calling thread. A failure leaves the priority as it was, which is harmless.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
        }
    }
}

#[cfg(test)]
mod tests;
