//! Proxy metrics: requests by namespace, route and status class, and latency by route. Handles are
//! resolved once per route when the snapshot is built, so the hot path only touches atomics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

/// Route handles by (namespace, route name).
type RouteCache = HashMap<(String, String), Arc<RouteMetrics>>;

#[derive(Clone)]
pub struct ProxyMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
    module_failures: IntCounterVec,
    module_busy: IntCounterVec,
    /// Resolved handles by (namespace, route), kept across snapshots: resolving six label sets
    /// per route on every rebuild would dominate the rebuild.
    routes: Arc<Mutex<RouteCache>>,
}

/// One route's counters: index 0 is 1xx … index 4 is 5xx.
pub struct RouteMetrics {
    by_class: [IntCounter; 5],
    latency: Histogram,
    module_failures: IntCounter,
    module_busy: IntCounter,
}

impl ProxyMetrics {
    pub fn register(registry: &Registry) -> Result<ProxyMetrics, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "dgate_proxy_requests_total",
                "Proxied requests by route and status class",
            ),
            &["namespace", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "dgate_proxy_request_duration_seconds",
                "Time from request to response headers, by route",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ]),
            &["namespace", "route"],
        )?;
        let module_failures = IntCounterVec::new(
            Opts::new(
                "dgate_module_failures_total",
                "Module hook calls that threw, trapped or ran out of a budget, by route",
            ),
            &["namespace", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        let module_busy = IntCounterVec::new(
            Opts::new(
                "dgate_module_busy_total",
                "Module hook calls refused with 503 (the module at its max_concurrency, or no instance slot free), by route",
            ),
            &["namespace", "route"],
        )?;
        registry.register(Box::new(module_failures.clone()))?;
        registry.register(Box::new(module_busy.clone()))?;
        Ok(ProxyMetrics {
            requests,
            latency,
            module_failures,
            module_busy,
            routes: Arc::default(),
        })
    }

    /// The handles for one route, resolved once.
    pub fn route(&self, namespace: &str, route: &str) -> Arc<RouteMetrics> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes
            .entry((namespace.to_string(), route.to_string()))
            .or_insert_with(|| Arc::new(self.resolve(namespace, route)))
            .clone()
    }

    fn resolve(&self, namespace: &str, route: &str) -> RouteMetrics {
        let class = |c: &str| self.requests.with_label_values(&[namespace, route, c]);
        RouteMetrics {
            by_class: [
                class("1xx"),
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
            ],
            latency: self.latency.with_label_values(&[namespace, route]),
            module_failures: self.module_failures.with_label_values(&[namespace, route]),
            module_busy: self.module_busy.with_label_values(&[namespace, route]),
        }
    }
}

impl RouteMetrics {
    pub fn module_failure(&self) {
        self.module_failures.inc();
    }

    pub fn module_busy(&self) {
        self.module_busy.inc();
    }

    pub fn observe(&self, status: u16, seconds: f64) {
        let i = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[i].inc();
        self.latency.observe(seconds);
    }
}
