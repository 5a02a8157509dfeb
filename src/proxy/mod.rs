//! The proxy: hyper server (HTTP/1.1 keep-alive, h2c, HTTP/2 over TLS) in front of pooled upstream
//! clients. The hot path reads the current [`Snapshot`] (one atomic load) and takes no lock; the
//! [`Proxy::observer`] builds a new snapshot from each applied change and swaps it in.
//!
//! The proxy knows neither storage nor Raft: it is told what was applied, and runs route modules
//! through [`crate::modules`]. The admin API is never served here.

mod access_log;
mod body;
mod error;
mod front;
mod maps;
mod metrics;
mod module_route;
mod pipeline;
mod pool;
mod snapshot;
mod tls;
mod upgrade;
mod upstream;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

pub use pipeline::ConnInfo;
use snapshot::Model;
pub use snapshot::Snapshot;

use crate::config::ProxyConfig;
use crate::modules::{ModuleSet, Services};
use crate::resources::Applied;
use crate::router::DomainPattern;
use crate::worker::Worker;
use metrics::{ProxyMetrics, RouteMetrics};
use upstream::Clients;

/// How long a stopping proxy waits for requests in flight.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Proxy settings from `proxy.*`, parsed once.
pub struct Settings {
    pub strict_mode: bool,
    pub allowed_domains: Vec<DomainPattern>,
    /// Where plain HTTP is redirected, when `redirect_https` is on.
    pub redirect_https: Option<Redirect>,
    pub disable_x_forwarded_headers: bool,
    pub global_headers: HeaderMap,
    /// Also bounds the wait for a new connection's first byte and its TLS handshake.
    pub header_read_timeout: Duration,
    /// `proxy.access_log`, when on.
    pub access_log: Option<access_log::AccessLog>,
}

/// `redirect_https`: the TLS port, and the hosts it is for (`None`: every host).
pub struct Redirect {
    pub port: u16,
    pub hosts: Option<Vec<DomainPattern>>,
}

pub struct Proxy {
    snapshot: Arc<ArcSwap<Snapshot>>,
    clients: Clients,
    metrics: ProxyMetrics,
    unmatched: Arc<RouteMetrics>,
    settings: Settings,
    http: auto::Builder<TokioExecutor>,
    /// The lean HTTP/1.1 path's settings.
    front: front::Front,
    /// Set once the proxy is stopping: a connection closes after the request it is serving.
    stopping: std::sync::atomic::AtomicBool,
    /// Runs route modules; set once by the server with [`Proxy::enable_modules`].
    modules: std::sync::OnceLock<Arc<ModuleSet>>,
}

impl Proxy {
    /// The node's modules, once enabled.
    pub fn modules(&self) -> Option<&Arc<ModuleSet>> {
        self.modules.get()
    }

    /// Lets routes run modules with `config`'s limits: their documents are `services`, compiled
    /// modules are cached in `cache_dir`, `compiler` compiles them in a child process, and
    /// `egress` says where their outbound requests may go.
    pub fn enable_modules(
        &self,
        services: Arc<dyn Services>,
        cache_dir: Option<std::path::PathBuf>,
        compiler: Option<Worker>,
        config: &crate::config::ModulesConfig,
        egress: crate::modules::Egress,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<()> {
        let modules = ModuleSet::new(services, cache_dir, compiler, config, egress, registry)?;
        let _ = self.modules.set(Arc::new(modules));
        Ok(())
    }

    /// A proxy for a validated `config`, registering its metrics in `registry`. `tls_port` is the
    /// bound TLS port, where plain HTTP is redirected with `redirect_https`.
    pub fn new(
        config: &ProxyConfig,
        tls_port: Option<u16>,
        registry: &Registry,
    ) -> Result<Arc<Proxy>, prometheus::Error> {
        let metrics = ProxyMetrics::register(registry)?;
        let mut global_headers = HeaderMap::new();
        for (k, v) in &config.global_headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                global_headers.insert(k, v);
            }
        }
        let settings = Settings {
            strict_mode: config.strict_mode,
            allowed_domains: config
                .allowed_domains
                .iter()
                .filter_map(|p| DomainPattern::parse(p))
                .collect(),
            redirect_https: match &config.redirect_https {
                crate::config::RedirectHttps::All(false) => None,
                crate::config::RedirectHttps::All(true) => {
                    tls_port.map(|port| Redirect { port, hosts: None })
                }
                crate::config::RedirectHttps::Hosts(hosts) => Some(Redirect {
                    port: tls_port.unwrap_or(443),
                    hosts: Some(
                        hosts
                            .iter()
                            .filter_map(|p| DomainPattern::parse(p))
                            .collect(),
                    ),
                }),
            },
            disable_x_forwarded_headers: config.disable_x_forwarded_headers,
            global_headers,
            header_read_timeout: config.header_read_timeout.as_duration(),
            access_log: access_log::AccessLog::from_config(&config.access_log),
        };
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout.as_duration())
            // hyper's floor for its read buffer is 8 KiB.
            .max_buf_size(
                usize::try_from(config.max_header_size.0)
                    .unwrap_or(usize::MAX)
                    .max(8192),
            )
            .max_headers(config.max_headers);
        http.http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(config.max_header_size.0).unwrap_or(u32::MAX))
            .keep_alive_interval(Some(Duration::from_secs(30)));
        Ok(Arc::new(Proxy {
            snapshot: Arc::new(ArcSwap::from_pointee(Snapshot::empty())),
            clients: Clients::new(),
            // "-" is no valid name: no route's series can be confused with it.
            unmatched: metrics.route("-", "-"),
            metrics,
            settings,
            http,
            front: front::Front::new(config),
            stopping: std::sync::atomic::AtomicBool::new(false),
            modules: std::sync::OnceLock::new(),
        }))
    }

    /// The snapshot cell, shared with the TLS certificate resolver.
    pub fn snapshot(&self) -> Arc<ArcSwap<Snapshot>> {
        self.snapshot.clone()
    }

    /// The observer of applied changes that brings the proxy's model up to date and publishes a
    /// new snapshot after every change that can affect it.
    pub fn observer(self: &Arc<Self>) -> Box<dyn Fn(Applied<'_>) + Send + Sync> {
        let proxy = self.clone();
        let model = Mutex::new(Model::new(self.settings.strict_mode));
        Box::new(move |applied| {
            let started = std::time::Instant::now();
            // Only the state machine's critical section calls this, so the lock is never contended.
            let mut model = model.lock().unwrap_or_else(|p| p.into_inner());
            if !model.update(applied, &proxy.clients, &proxy.metrics) {
                return;
            }
            let s = model.snapshot();
            tracing::debug!(routes = s.table.len(), took = ?started.elapsed(), "proxy snapshot published");
            proxy.snapshot.store(Arc::new(s));
            if let Some(modules) = proxy.modules.get() {
                // Modules deleted or replaced give back their instances' pool slots.
                modules.retain(|ns, name, hash, limits| model.has_module(ns, name, hash, limits));
                // New versions load in the background; their routes run the old ones meanwhile.
                for src in model.unloaded_modules() {
                    modules.prepare(&src);
                }
            }
        })
    }

    /// Accepts connections until `shutdown` changes, then lets requests in flight finish (up to
    /// [`DRAIN_TIMEOUT`]) while kept-alive connections close. With `tls`, every connection is TLS.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let graceful = GracefulShutdown::new();
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => {
                    self.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
                    break;
                }
            };
            let _ = stream.set_nodelay(true);
            let proxy = self.clone();
            let tls = tls.clone();
            let watcher = graceful.watcher();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                // hyper's header timer starts only once it knows the protocol: a client that
                // connects and sends nothing (or stalls in the TLS handshake) is dropped here.
                let limit = proxy.settings.header_read_timeout;
                let mut first = [0u8; 1];
                match tokio::time::timeout(limit, stream.peek(&mut first)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return,
                }
                match tls {
                    Some(acceptor) => match tokio::time::timeout(limit, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(s)) => {
                            let conn = ConnInfo::new(peer, true);
                            // HTTP/2 (by ALPN) is hyper's; HTTP/1.x starts on the lean path.
                            if s.get_ref().1.alpn_protocol() == Some(b"h2") {
                                proxy.serve_connection(TokioIo::new(s), conn, watcher).await
                            } else {
                                proxy.serve_lean(s, conn, stop, watcher).await
                            }
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    },
                    None => {
                        let conn = ConnInfo::new(peer, false);
                        proxy.serve_lean(stream, conn, stop, watcher).await
                    }
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; closing them");
        }
    }

    /// Serves a connection with hyper: HTTP/2, and HTTP/1.x from the first request the lean
    /// path (`front.rs`) does not take.
    async fn serve_connection<I>(self: Arc<Self>, io: I, conn: ConnInfo, watcher: Watcher)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let peer = conn.peer;
        let proxy = self.clone();
        let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let proxy = proxy.clone();
            let conn = conn.clone();
            let req = req.map(body::ClientBody::Hyper);
            async move { Ok::<_, Infallible>(proxy.handle(req, conn).await) }
        });
        // With upgrades: a WebSocket handshake's connection is handed over once answered 101.
        let conn = self.http.serve_connection_with_upgrades(io, service);
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// Serves `listener` on one thread per available core, each running its own single-threaded
/// runtime: connections and their upstream calls stay on one thread, with no work stealing or
/// cross-thread wake-ups on the hot path. The threads end when `stop` changes.
pub fn spawn_workers(
    proxy: &Arc<Proxy>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    stop: &watch::Receiver<bool>,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let listener = listener.into_std()?;
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let listener = listener.try_clone()?;
        let (proxy, tls, stop) = (proxy.clone(), tls.clone(), stop.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        handles.push(
            std::thread::Builder::new()
                .name(format!("dgate-proxy-{i}"))
                .spawn(move || {
                    rt.block_on(async move {
                        match TcpListener::from_std(listener) {
                            Ok(l) => proxy.serve(l, tls, stop).await,
                            Err(e) => tracing::error!(error = %e, "proxy worker cannot listen"),
                        }
                    })
                })?,
        );
    }
    Ok(handles)
}

/// The TLS acceptor for `proxy.tls`: certificates by SNI from the snapshot, `fallback` otherwise.
pub fn tls_acceptor(
    proxy: &Proxy,
    fallback: Option<rustls::sign::CertifiedKey>,
) -> Result<TlsAcceptor, rustls::Error> {
    let resolver = tls::SniResolver::new(proxy.snapshot(), fallback.map(Arc::new));
    Ok(TlsAcceptor::from(Arc::new(tls::server_config(resolver)?)))
}

/// Loads `proxy.tls`'s certificate and key, naming the config key that is wrong.
pub fn load_tls_files(
    tls_config: &crate::config::ProxyTlsConfig,
) -> Result<rustls::sign::CertifiedKey, crate::config::ConfigError> {
    use crate::config::ConfigError;
    let read = |key: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| ConfigError::TlsFile {
            key,
            reason: format!("cannot read {}: {e}", path.display()),
        })
    };
    let cert = read("proxy.tls.cert_file", &tls_config.cert_file)?;
    let key = read("proxy.tls.key_file", &tls_config.key_file)?;
    crate::resources::validate::certified_key(&cert, &key).map_err(|e| ConfigError::TlsFile {
        key: "proxy.tls",
        reason: e.to_string(),
    })
}
