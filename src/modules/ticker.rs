//! The epoch ticker: advances an engine's epoch while calls may be running, and sleeps once
//! none has run for [`IDLE`], so an idle gateway does not wake at all.
//!
//! The epoch is only the alarm clock of the wall-time limit. A store's deadline is always the
//! next tick, and its callback (see `arm` in the parent module) compares the real time with the
//! call's own deadline: a tick can never stop a call early, only notice late that it overran.
//! How late is at most one tick, so the tick follows the smallest limit in use
//! ([`period`]): an eighth of it, between [`MIN_TICK`] and [`MAX_TICK`]. With the default
//! 50 ms limit that is about 160 wake-ups a second rather than a thousand, each of which took
//! the proxy's core from a request.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

/// The shortest tick: the resolution of the smallest wall-time limits.
pub const MIN_TICK: Duration = Duration::from_millis(1);
/// The longest tick, whatever the limits.
pub const MAX_TICK: Duration = Duration::from_millis(10);
/// Time without a call after which the ticker parks until the next call.
const IDLE: Duration = Duration::from_millis(100);
/// How long the smallest limit seen is remembered: a limit counts for this window and the next.
const WINDOW: Duration = Duration::from_secs(1);

/// The tick for calls whose smallest wall-time limit is `smallest`: a call overruns its limit
/// by at most one tick, an eighth of the limit where the bounds allow.
pub fn period(smallest: Duration) -> Duration {
    (smallest / 8).clamp(MIN_TICK, MAX_TICK)
}

pub struct Ticker {
    engine: wasmtime::Engine,
    /// Calls (and instantiations) in flight.
    running: AtomicUsize,
    /// A call started since the ticker last looked.
    busy: AtomicBool,
    /// The smallest wall-time limit (µs) of the calls started in this window.
    smallest: AtomicU64,
    /// The ticker is parked, or about to: the next call wakes it.
    parked: AtomicBool,
    thread: OnceLock<std::thread::Thread>,
}

/// Marks a call running while it lives.
pub struct Running<'a>(&'a Ticker);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, SeqCst);
    }
}

impl Ticker {
    /// Starts the ticker thread of `engine`; it ends once the ticker is dropped.
    pub fn start(engine: wasmtime::Engine) -> std::io::Result<Arc<Ticker>> {
        let ticker = Arc::new(Ticker {
            engine,
            running: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            smallest: AtomicU64::new(u64::MAX),
            parked: AtomicBool::new(false),
            thread: OnceLock::new(),
        });
        let weak = Arc::downgrade(&ticker);
        let thread = std::thread::Builder::new()
            .name("dgate-epoch".into())
            .spawn(move || tick(weak))?;
        let _ = ticker.thread.set(thread.thread().clone());
        Ok(ticker)
    }

    /// Marks a call with the wall-time limit `wall` running until the guard drops, waking the
    /// ticker if it sleeps.
    pub fn enter(&self, wall: Duration) -> Running<'_> {
        self.running.fetch_add(1, SeqCst);
        if !self.busy.load(Relaxed) {
            self.busy.store(true, Relaxed);
        }
        let wall = u64::try_from(wall.as_micros()).unwrap_or(u64::MAX);
        // Read first: the usual call has the limit already seen, and a store to this shared
        // line from every call would bounce it between the proxy's cores.
        let shorter =
            wall < self.smallest.load(Relaxed) && self.smallest.fetch_min(wall, Relaxed) > wall;
        // Paired with the ticker's store of `parked` before its last look at `running`: one
        // of the two sees the other's write. A limit shorter than any this window also wakes
        // it, so that its tick shortens now rather than after the one it is sleeping.
        let parked = self.parked.load(SeqCst) && self.parked.swap(false, SeqCst);
        if (parked || shorter)
            && let Some(t) = self.thread.get()
        {
            t.unpark();
        }
        Running(self)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        // Let a parked ticker thread see that it is done.
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
}

fn tick(weak: Weak<Ticker>) {
    let mut last_call = Instant::now();
    let mut window = Instant::now();
    // The smallest limit of the last whole window.
    let mut before = u64::MAX;
    loop {
        let Some(t) = weak.upgrade() else { return };
        let now = Instant::now();
        if t.running.load(SeqCst) > 0 || t.busy.swap(false, SeqCst) {
            last_call = now;
        }
        if now.duration_since(last_call) >= IDLE {
            t.parked.store(true, SeqCst);
            let quiet = t.running.load(SeqCst) == 0;
            // Not holding the ticker while parked: dropping it is what ends this thread.
            drop(t);
            if quiet {
                std::thread::park();
            }
            if let Some(t) = weak.upgrade() {
                t.parked.store(false, SeqCst);
            }
            last_call = Instant::now();
            continue;
        }
        if now.duration_since(window) >= WINDOW {
            before = t.smallest.swap(u64::MAX, Relaxed);
            window = now;
        }
        let smallest = before.min(t.smallest.load(Relaxed));
        t.engine.increment_epoch();
        drop(t);
        // Woken early by a call with a shorter limit (or spuriously): that is one more tick.
        std::thread::park_timeout(period(Duration::from_micros(smallest)));
    }
}

#[cfg(test)]
mod tests;
