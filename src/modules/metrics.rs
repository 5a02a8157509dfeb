//! Metrics per module: hook calls by hook, their duration, the fuel they burnt, failures by
//! kind, and live instances. Labels are the module's namespace and name (bounded by the
//! resources); each module's handles are resolved once, when it is loaded.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use super::CallError;
use super::bindings::Hook;

/// The families, registered once per node.
#[derive(Clone)]
pub struct ModuleMetrics {
    calls: IntCounterVec,
    duration: HistogramVec,
    fuel: IntCounterVec,
    failures: IntCounterVec,
    instances: IntGaugeVec,
}

/// One module's handles.
pub struct ModuleHandles {
    /// By hook, in [`HOOKS`] order.
    calls: [IntCounter; 5],
    duration: Histogram,
    fuel: IntCounter,
    failures: [IntCounter; FAILURE_KINDS.len()],
    pub(super) instances: IntGauge,
}

const HOOKS: [Hook; 5] = [
    Hook::FetchUpstream,
    Hook::RequestModifier,
    Hook::ResponseModifier,
    Hook::ErrorHandler,
    Hook::RequestHandler,
];

const FAILURE_KINDS: [&str; 7] = [
    "trap", "timeout", "fuel", "memory", "throw", "invalid", "busy",
];

/// The `kind` label of a failed call.
fn failure_kind(e: &CallError) -> usize {
    match e {
        CallError::Trap(_) | CallError::Instantiate(_) => 0,
        CallError::Timeout(_) => 1,
        CallError::OutOfFuel(_) => 2,
        CallError::OutOfMemory(_) => 3,
        CallError::Thrown { .. } => 4,
        CallError::InvalidResult(_) | CallError::Unsettled | CallError::NotDefined(_) => 5,
        CallError::Busy(_) | CallError::NoSlot(_) | CallError::ShuttingDown => 6,
    }
}

impl ModuleMetrics {
    pub fn register(registry: &Registry) -> Result<ModuleMetrics, prometheus::Error> {
        let labels = ["namespace", "module"];
        let calls = IntCounterVec::new(
            Opts::new("dgate_module_calls_total", "Module hook calls, by hook"),
            &["namespace", "module", "hook"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "dgate_module_call_duration_seconds",
                "Wall time of module hook calls",
            )
            .buckets(vec![
                0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                0.025, 0.05, 0.1, 0.25, 1.0, 10.0,
            ]),
            &labels,
        )?;
        let fuel = IntCounterVec::new(
            Opts::new(
                "dgate_module_fuel_consumed_total",
                "Wasm fuel (about one unit per instruction) burnt by module hook calls",
            ),
            &labels,
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "dgate_module_call_failures_total",
                "Module hook calls that failed, by kind (trap, timeout, fuel, memory, throw, invalid, busy)",
            ),
            &["namespace", "module", "kind"],
        )?;
        let instances = IntGaugeVec::new(
            Opts::new(
                "dgate_module_instances",
                "Module instances alive (idle or in a call)",
            ),
            &labels,
        )?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(fuel.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(instances.clone()))?;
        Ok(ModuleMetrics {
            calls,
            duration,
            fuel,
            failures,
            instances,
        })
    }

    /// The handles of module `name` in `namespace`.
    pub fn module(&self, namespace: &str, name: &str) -> ModuleHandles {
        let labels = [namespace, name];
        ModuleHandles {
            calls: HOOKS.map(|h| {
                self.calls
                    .with_label_values(&[namespace, name, h.js_name()])
            }),
            duration: self.duration.with_label_values(&labels),
            fuel: self.fuel.with_label_values(&labels),
            failures: FAILURE_KINDS.map(|k| self.failures.with_label_values(&[namespace, name, k])),
            instances: self.instances.with_label_values(&labels),
        }
    }
}

impl ModuleHandles {
    /// One finished call of `hook`: its time, its fuel and how it ended.
    pub fn record(&self, hook: Hook, seconds: f64, fuel: u64, failure: Option<&CallError>) {
        if let Some(i) = HOOKS.iter().position(|h| *h == hook) {
            self.calls[i].inc();
        }
        self.duration.observe(seconds);
        self.fuel.inc_by(fuel);
        if let Some(e) = failure {
            self.failures[failure_kind(e)].inc();
        }
    }

    /// A call refused before it ran (no permit, no slot).
    pub fn refused(&self, e: &CallError) {
        self.failures[failure_kind(e)].inc();
    }
}

/// Counts an instance alive while it lives.
pub struct Live(IntGauge);

impl Live {
    pub fn new(gauge: &IntGauge) -> Live {
        gauge.inc();
        Live(gauge.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.dec();
    }
}
