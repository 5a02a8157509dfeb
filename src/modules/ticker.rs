//! The epoch ticker: advances an engine's epoch, the clock of the wall-time limit, every
//! [`TICK`] while calls may be running, and sleeps once none has run for [`IDLE_TICKS`], so an
//! idle gateway does not wake a thousand times a second.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// How often the epoch advances: the resolution of the wall-time limit.
pub const TICK: Duration = Duration::from_millis(1);
/// Ticks without a call after which the ticker parks until the next call.
const IDLE_TICKS: u32 = 100;

pub struct Ticker {
    engine: wasmtime::Engine,
    /// Calls (and instantiations) in flight.
    running: AtomicUsize,
    /// A call started since the ticker last looked.
    busy: AtomicBool,
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

    /// Marks a call running until the guard drops, waking the ticker if it sleeps.
    pub fn enter(&self) -> Running<'_> {
        self.running.fetch_add(1, SeqCst);
        if !self.busy.load(Relaxed) {
            self.busy.store(true, Relaxed);
        }
        // Paired with the ticker's store of `parked` before its last look at `running`: one
        // of the two sees the other's write.
        if self.parked.load(SeqCst)
            && self.parked.swap(false, SeqCst)
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
    let mut idle = 0;
    loop {
        let Some(t) = weak.upgrade() else { return };
        if t.running.load(SeqCst) > 0 || t.busy.swap(false, SeqCst) {
            idle = 0;
        } else {
            idle += 1;
        }
        if idle >= IDLE_TICKS {
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
            idle = 0;
            continue;
        }
        t.engine.increment_epoch();
        drop(t);
        std::thread::sleep(TICK);
    }
}
