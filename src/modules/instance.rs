//! A compiled module ([`Module`]) and one instance of it ([`Instance`]): the per-call budgets
//! (fuel, memory, wall time), the five hook calls, and what a hook's result does to the call's
//! [`Io`]. Every failure of a call is a [`CallError`]; none is a panic, and a failed instance is
//! never reused.

use std::sync::Arc;

use wasmtime::{Store, Trap};

use super::bindings::{DgateModule, DgateModulePre, Hook, HookError, ResponseChanges};
use super::call::{Io, apply_edits};
use super::engine::Engine;
use super::host::Host;
use super::state::CallState;
use super::ticker::Ticker;
use super::{CallError, Limits};

/// A compiled component, ready to instantiate.
pub struct Module {
    pub(super) engine: Arc<Engine>,
    pub(super) pre: DgateModulePre<CallState>,
    /// The hooks the module defines.
    pub defined: Vec<Hook>,
    /// SHA-256 of the component.
    pub hash: String,
    /// The machine code came from the disk cache rather than a compile.
    pub cached: bool,
    /// The source map `dgate build` put in the component, to point errors into the source.
    pub(super) source: Option<Arc<crate::build::SourceInfo>>,
}

impl Module {
    /// A fresh instance (from the pool) whose host imports go to `host`.
    pub async fn instantiate(
        &self,
        host: Arc<Host>,
        limits: Limits,
    ) -> Result<Instance, CallError> {
        let mut store = Store::new(&self.engine.engine, CallState::new(host, limits));
        store.limiter(|s| &mut s.limiter);
        // The store's epoch deadline is always the next tick; whether the call overran is the
        // clock's answer (see `ticker`). A call still within its limit yields at each tick, so
        // a long one shares its thread (and `Offload` can move it off a proxy thread).
        store.epoch_deadline_callback(|cx| match cx.data().deadline {
            Some(deadline) if std::time::Instant::now() >= deadline => Err(Trap::Interrupt.into()),
            _ => Ok(wasmtime::UpdateDeadline::Yield(1)),
        });
        let _running = self.engine.ticker.enter(limits.wall);
        arm(&mut store, limits);
        let bindings = self.pre.instantiate_async(&mut store).await.map_err(|e| {
            match e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
                Some(full) => CallError::NoSlot(full.to_string()),
                None => match classify(&store, e, limits) {
                    CallError::Trap(m) => CallError::Instantiate(m),
                    other => other,
                },
            }
        })?;
        Ok(Instance {
            store,
            bindings,
            limits,
            poisoned: false,
            source: self.source.clone(),
            ticker: self.engine.ticker.clone(),
            last_call: std::time::Duration::ZERO,
        })
    }
}

/// Sets the per-call budgets, from now; returns now and the wall-time deadline (`None`: past
/// the clock's range, so none).
fn arm(
    store: &mut Store<CallState>,
    limits: Limits,
) -> (std::time::Instant, Option<std::time::Instant>) {
    // Fuel is always on in this engine's config, so this cannot fail.
    let _ = store.set_fuel(limits.fuel);
    let now = std::time::Instant::now();
    let deadline = now.checked_add(limits.wall);
    store.data_mut().deadline = deadline;
    store.set_epoch_deadline(1);
    (now, deadline)
}

fn classify(store: &Store<CallState>, e: wasmtime::Error, limits: Limits) -> CallError {
    if store.data().limiter.hit {
        return CallError::OutOfMemory(limits.memory);
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::OutOfFuel(limits.fuel),
        Some(Trap::Interrupt) => CallError::Timeout(limits.wall),
        _ => CallError::Trap(format!("{e:#}")),
    }
}

/// Runs `call` until `deadline`; `None` when it ran out. The timer is set only once the call
/// has to wait (a host call such as `fetch` pending): most hook calls finish in their first
/// poll, and the epoch deadline bounds the time they spend running.
async fn within<F: std::future::Future>(
    deadline: Option<std::time::Instant>,
    call: F,
) -> Option<F::Output> {
    let Some(deadline) = deadline.map(tokio::time::Instant::from_std) else {
        return Some(call.await);
    };
    let mut call = std::pin::pin!(call);
    let mut timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(out) = call.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(out));
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// One instance of a module. Calls run one at a time; after a failure other than a hook's own
/// error (a throw), the instance is poisoned and must be dropped.
pub struct Instance {
    store: Store<CallState>,
    bindings: DgateModule,
    limits: Limits,
    poisoned: bool,
    source: Option<Arc<crate::build::SourceInfo>>,
    ticker: Arc<Ticker>,
    /// How long the last call ran (for the metrics: one clock read serves them and the deadline).
    last_call: std::time::Duration,
}

impl Instance {
    /// False once a call trapped, ran out of a budget or was cancelled: drop it then.
    pub fn reusable(&self) -> bool {
        !self.poisoned
    }

    /// How long the last call ran, from its budgets being set to the hook's return.
    pub fn last_call_time(&self) -> std::time::Duration {
        self.last_call
    }

    /// The fuel the last call burnt.
    pub fn fuel_used(&self) -> u64 {
        self.limits
            .fuel
            .saturating_sub(self.store.get_fuel().unwrap_or(self.limits.fuel))
    }

    /// Runs one hook call with `io` as its bodies; returns the hook's result and the bodies.
    async fn call<T>(
        &mut self,
        mut io: Box<Io>,
        f: impl AsyncFnOnce(
            &DgateModule,
            &mut Store<CallState>,
        ) -> wasmtime::Result<Result<T, HookError>>,
    ) -> (Result<T, CallError>, Box<Io>) {
        self.last_call = std::time::Duration::ZERO;
        if self.poisoned {
            return (
                Err(CallError::Instantiate("the instance failed earlier".into())),
                io,
            );
        }
        let limits = self.limits;
        let _running = self.ticker.enter(limits.wall);
        let (started, deadline) = arm(&mut self.store, limits);
        self.store.data_mut().begin(&mut io);
        // Poisoned unless the call completes: a timeout drops the call mid-flight.
        self.poisoned = true;
        let outcome = within(deadline, f(&self.bindings, &mut self.store)).await;
        self.last_call = started.elapsed();
        self.store.data_mut().end(&mut io);
        let result = match outcome {
            None => Err(CallError::Timeout(limits.wall)),
            Some(Err(e)) => Err(classify(&self.store, e, limits)),
            Some(Ok(r)) => {
                self.poisoned = false;
                let remap = |text: String| match &self.source {
                    Some(info) => info.remap(&text),
                    None => text,
                };
                r.map_err(|e| match e {
                    HookError::Thrown(t) => CallError::Thrown {
                        message: remap(t.message),
                        stack: t.stack.map(remap),
                    },
                    HookError::InvalidResult(m) => CallError::InvalidResult(m),
                    HookError::Unsettled => CallError::Unsettled,
                    HookError::NotDefined => CallError::NotDefined("this hook"),
                })
            }
        };
        if self.store.data().limiter.hit {
            self.poisoned = true;
            return (Err(CallError::OutOfMemory(limits.memory)), io);
        }
        (result, io)
    }

    /// The hooks the module defines.
    pub async fn defined(&mut self) -> Result<Vec<Hook>, CallError> {
        let (r, _) = self
            .call(Box::default(), async |b, s| {
                b.dgate_module_hooks().call_defined(s).await.map(Ok)
            })
            .await;
        r
    }

    /// fetchUpstream: the URL the hook picked.
    pub async fn fetch_upstream(&mut self, io: Box<Io>) -> (Result<String, CallError>, Box<Io>) {
        self.call(io.for_hook(Hook::FetchUpstream), async |b, s| {
            b.dgate_module_hooks().call_fetch_upstream(s).await
        })
        .await
    }

    /// requestModifier: its changes are applied to `io` (method and path and query in
    /// `io.call`, headers in `io.request_headers`).
    pub async fn request_modifier(&mut self, io: Box<Io>) -> (Result<(), CallError>, Box<Io>) {
        let (r, mut io) = self
            .call(io.for_hook(Hook::RequestModifier), async |b, s| {
                b.dgate_module_hooks().call_request_modifier(s).await
            })
            .await;
        let r = r.and_then(|changes| {
            let bad = |what: &str, v: &str| {
                CallError::InvalidResult(format!("requestModifier set a bad {what} {v:?}"))
            };
            if let Some(m) = changes.method {
                io.call.method =
                    ::http::Method::from_bytes(m.as_bytes()).map_err(|_| bad("method", &m))?;
            }
            if let Some(u) = changes.uri {
                let uri: ::http::Uri = u.parse().map_err(|_| bad("path", &u))?;
                if uri.scheme().is_some() || !u.starts_with('/') {
                    return Err(bad("path", &u));
                }
                io.call.uri = uri;
            }
            apply_edits(&mut io.request_headers, changes.headers)
                .map_err(|e| CallError::InvalidResult(format!("requestModifier set {e}")))
        });
        (r, io)
    }

    /// responseModifier on the upstream's `status` and `io.response_headers`: the status the
    /// hook set; its header edits are applied to `io.response_headers`.
    pub async fn response_modifier(
        &mut self,
        status: u16,
        io: Box<Io>,
    ) -> (Result<u16, CallError>, Box<Io>) {
        let (r, io) = self
            .call(io.for_hook(Hook::ResponseModifier), async |b, s| {
                b.dgate_module_hooks()
                    .call_response_modifier(s, status)
                    .await
            })
            .await;
        respond(Hook::ResponseModifier, r, io)
    }

    /// errorHandler for a failure dgate would answer with `status` (the message is in
    /// `io.call.error_message`): the status of its answer; its headers are in
    /// `io.response_headers`.
    pub async fn error_handler(
        &mut self,
        status: u16,
        mut io: Box<Io>,
    ) -> (Result<u16, CallError>, Box<Io>) {
        io.response_headers.clear();
        let (r, io) = self
            .call(io.for_hook(Hook::ErrorHandler), async |b, s| {
                b.dgate_module_hooks().call_error_handler(s, status).await
            })
            .await;
        respond(Hook::ErrorHandler, r, io)
    }

    /// requestHandler: the status of its answer; its headers are in `io.response_headers`.
    pub async fn request_handler(&mut self, mut io: Box<Io>) -> (Result<u16, CallError>, Box<Io>) {
        io.response_headers.clear();
        let (r, io) = self
            .call(io.for_hook(Hook::RequestHandler), async |b, s| {
                b.dgate_module_hooks().call_request_handler(s).await
            })
            .await;
        respond(Hook::RequestHandler, r, io)
    }
}

/// A response hook's outcome: its status, with its header edits applied to the response's.
fn respond(
    hook: Hook,
    r: Result<ResponseChanges, CallError>,
    mut io: Box<Io>,
) -> (Result<u16, CallError>, Box<Io>) {
    let r = r.and_then(|changes| {
        apply_edits(&mut io.response_headers, changes.headers)
            .map_err(|e| CallError::InvalidResult(format!("{} set {e}", hook.js_name())))?;
        Ok(changes.status)
    });
    (r, io)
}
