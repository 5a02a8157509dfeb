//! `dgate server`, the composition root: opens storage, starts this node's part of the cluster,
//! wires the proxy to it (applied changes in, module documents through [`GatewayServices`]), and
//! serves the proxy and the admin API until SIGINT/SIGTERM.

mod admin_tls;
pub mod init;
mod services;
mod test_server;

pub use services::GatewayServices;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::{self, Metrics};
use crate::cluster::{Cluster, ClusterOptions};
use crate::config::{Config, ConfigError, StorageKind};
use crate::proxy::{self, Proxy};
use crate::resources::Resource;
use crate::storage::Store;
use crate::worker::Worker;

/// A running server's bound addresses.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub admin: SocketAddr,
    pub proxy: SocketAddr,
    /// Whether the admin listener speaks HTTPS (`admin.tls`).
    pub admin_https: bool,
    pub proxy_tls: Option<SocketAddr>,
    /// DGate's test server, when it runs (`test_server:` with `debug: true`).
    pub test_server: Option<SocketAddr>,
}

impl Bound {
    /// The admin API's URL: `https://` with `admin.tls`.
    pub fn admin_url(&self) -> String {
        let scheme = if self.admin_https { "https" } else { "http" };
        format!("{scheme}://{}", self.admin)
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "admin={} proxy=http://{}", self.admin_url(), self.proxy)?;
        if let Some(tls) = self.proxy_tls {
            write!(f, " proxy_tls=https://{tls}")?;
        }
        if let Some(test) = self.test_server {
            write!(f, " test_server=http://{test}")?;
        }
        Ok(())
    }
}

/// What the server needs besides the config, loaded before it starts so that a bad file is a
/// config error (exit 2) rather than a runtime one.
pub struct Prepared {
    pub config: Config,
    pub tls_key: Option<rustls::sign::CertifiedKey>,
    /// `admin.tls`'s certificate, key and client CA.
    pub admin_tls: Option<admin_tls::AdminTls>,
    /// `proxy.init_resources`, read and checked.
    pub init: Vec<Resource>,
}

impl Prepared {
    pub fn new(config: Config) -> Result<Prepared, ConfigError> {
        let tls_key = config
            .proxy
            .tls
            .as_ref()
            .map(proxy::load_tls_files)
            .transpose()?;
        let admin_tls = config
            .admin
            .tls
            .as_ref()
            .map(admin_tls::AdminTls::load)
            .transpose()?;
        let init = match &config.proxy.init_resources {
            Some(i) => init::read(i)?,
            None => vec![],
        };
        Ok(Prepared {
            config,
            tls_key,
            admin_tls,
            init,
        })
    }
}

/// Where compiled modules are cached: next to the data (`<data dir>/module-cache`), or nowhere
/// for in-memory storage.
fn module_cache_dir(config: &Config) -> Option<std::path::PathBuf> {
    match config.storage.kind {
        StorageKind::Memory => None,
        StorageKind::File => Some(config.storage.dir.join("module-cache")),
    }
}

/// Opens the store the config names.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    match config.storage.kind {
        StorageKind::Memory => Store::open_memory().context("cannot open in-memory storage"),
        StorageKind::File => {
            let dir = &config.storage.dir;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create data dir {}", dir.display()))?;
            Store::open_dir(dir).map_err(|e| {
                // RocksDB says "While lock file: .../LOCK: Resource temporarily unavailable".
                let hint = if e.to_string().contains("lock file") {
                    " (another process, another dgate say, holds its lock)"
                } else {
                    ""
                };
                anyhow::Error::new(e)
                    .context(format!("cannot open storage in {}{hint}", dir.display()))
            })
        }
    }
}

/// Runs the server until a shutdown signal. `on_ready` is called once the listeners are bound.
pub async fn run(prepared: Prepared, on_ready: impl FnOnce(Bound)) -> anyhow::Result<()> {
    let Prepared {
        config,
        tls_key,
        admin_tls,
        init,
    } = prepared;
    warn_about(&config);
    let store = open_store(&config)?;
    let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);

    let bind = |ip, port, what: &'static str| async move {
        let addr = SocketAddr::new(ip, port);
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {what} address {addr}"))
    };
    let admin_listener = bind(config.admin_ip(), config.admin.port, "admin").await?;
    let proxy_listener = bind(config.proxy_ip(), config.proxy.port, "proxy").await?;
    let tls_listener = match &config.proxy.tls {
        Some(t) => Some(bind(config.proxy_ip(), t.port, "proxy TLS").await?),
        None => None,
    };
    let test_listener = match &config.test_server {
        Some(t) if config.debug => {
            let ip = crate::config::parse_host("test_server.host", &t.host)?;
            Some(bind(ip, t.port, "test server").await?)
        }
        _ => None,
    };
    let bound = Bound {
        admin: admin_listener.local_addr()?,
        proxy: proxy_listener.local_addr()?,
        admin_https: admin_tls.is_some(),
        proxy_tls: tls_listener.as_ref().map(|l| l.local_addr()).transpose()?,
        test_server: test_listener.as_ref().map(|l| l.local_addr()).transpose()?,
    };

    let advert = bound.admin_url();
    let mut options = match &config.admin.replication {
        None => ClusterOptions::single(config.node_name(), &advert),
        Some(r) => ClusterOptions {
            name: r
                .id
                .clone()
                .unwrap_or_else(|| config.node_name().to_string()),
            advert: r.advert_address.clone().unwrap_or(advert),
            shared_key: r.shared_key.clone(),
            bootstrap: r.bootstrap_cluster,
            join: r.cluster_address.clone(),
            voter: !r.watch_only,
            timings: r.raft_config.clone(),
            history: 0,
            peer_tls: None,
        },
    };
    options.history = config.storage.history;
    if let Some(tls) = &admin_tls {
        options.peer_tls = Some(
            tls.peer_client_config()
                .map_err(anyhow::Error::msg)
                .context("cannot set up TLS to the other nodes")?,
        );
    }
    let cluster = Cluster::start(store, options)
        .await
        .context("cannot initialize state")?;
    // Without the default namespace (DGate's switch), hosts no domain matches are not served.
    let mut proxy_config = config.proxy.clone();
    proxy_config.strict_mode |= config.disable_default_namespace;
    let proxy = Proxy::new(
        &proxy_config,
        bound.proxy_tls.map(|a| a.port()),
        metrics.registry(),
    )
    .context("cannot register proxy metrics")?;
    // Module builds (`dgate __build`) and compiles (`dgate __compile`) run in child processes
    // of this binary, so their memory goes back to the system when they finish.
    let worker = Worker::current();
    proxy
        .enable_modules(
            Arc::new(GatewayServices::new(cluster.clone())),
            module_cache_dir(&config),
            worker.clone(),
            &config.modules,
            // The admin listener also carries Raft; the test server is DGate's debug aid.
            crate::modules::Egress::new(&config.modules.fetch, vec![bound.admin]),
            metrics.registry(),
        )
        .context("cannot start the module engine")?;
    cluster
        .observe(proxy.observer())
        .context("cannot read the state to serve")?;
    let builder = match worker {
        Some(w) => crate::build::Builder::Worker(
            w,
            crate::build::BuildLimits::from_config(&config.modules.build),
        ),
        None => crate::build::Builder::InProcess,
    };
    let admin_state = admin::AdminState::new(&config, cluster.clone(), metrics, builder);
    let admin_state = match proxy.modules() {
        Some(modules) => admin_state
            .warming(warmer(modules.clone()))
            .reporting(module_status(modules.clone())),
        None => admin_state,
    };
    let app = admin::routes(&config, admin_state.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = proxy::spawn_workers(&proxy, proxy_listener, None, &stop_rx)
        .context("cannot start proxy workers")?;
    if let Some(listener) = tls_listener {
        let acceptor = proxy::tls_acceptor(&proxy, tls_key).context("cannot set up TLS")?;
        workers.extend(
            proxy::spawn_workers(&proxy, listener, Some(acceptor), &stop_rx)
                .context("cannot start proxy TLS workers")?,
        );
    }
    if let (Some(listener), Some(t)) = (test_listener, &config.test_server) {
        let app = test_server::router(t).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    if !init.is_empty() {
        tokio::spawn(write_init_resources(admin_state, init));
    }
    tracing::info!(%bound, node = config.node_name(), "listening");
    on_ready(bound);

    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let served = match admin_tls {
        Some(tls) => {
            use axum::serve::ListenerExt as _;
            let config = tls
                .server_config()
                .map_err(anyhow::Error::msg)
                .context("cannot set up admin TLS")?;
            // `tap_io` gives the listener axum's ConnectInfo<SocketAddr>.
            let listener = admin_tls::TlsListener::new(admin_listener, config)?.tap_io(|_| {});
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
        None => {
            axum::serve(admin_listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
    };
    let _ = stop_tx.send(true);
    // The workers stop accepting at once; joining them ends their open connections.
    let _ = tokio::task::spawn_blocking(move || {
        for w in workers {
            let _ = w.join();
        }
    })
    .await;
    cluster.shutdown().await;
    served.context("admin server failed")?;
    tracing::info!("shut down");
    Ok(())
}

/// Compiles a module written through this node's admin API into the proxy's module set.
fn warmer(modules: Arc<crate::modules::ModuleSet>) -> admin::Warmer {
    Arc::new(move |m| {
        let modules = modules.clone();
        let src = crate::modules::ModuleSource::from_resource(m).map(Arc::new);
        Box::pin(async move {
            match src {
                Some(src) => modules.warm(&src).await,
                // Stored unbuilt (it waits for a module it imports): nothing to compile yet.
                None => Ok(()),
            }
        })
    })
}

/// Whether this node has a stored module's component ready to run.
fn module_status(modules: Arc<crate::modules::ModuleSet>) -> admin::ModuleStatus {
    Arc::new(move |m| {
        let src = crate::modules::ModuleSource::from_resource(m)?;
        let ready = modules.status(&src.namespace, &src.name, &src.hash);
        Some((src.hash, ready))
    })
}

/// Warnings about a config that starts but may not do what its author meant.
fn warn_about(config: &Config) {
    for key in &config.unused_dgate_keys {
        tracing::warn!(key = %key, "DGate config key not used by dgate; ignored");
    }
    if config
        .admin
        .replication
        .as_ref()
        .is_some_and(|r| r.shared_key.is_empty())
    {
        tracing::warn!(
            "admin.replication.shared_key is empty: anyone who reaches the admin port can take part in Raft"
        );
    }
    if config.test_server.is_some() && !config.debug {
        tracing::warn!("test_server runs only with debug: true (as in DGate); not started");
    }
}

/// Writes `proxy.init_resources` through the admin API's own path, in order. A write that
/// finds no leader yet (a node joining its cluster) is tried again for up to a minute; one the
/// cluster refuses is logged and the next one goes on.
async fn write_init_resources(state: admin::AdminState, init: Vec<Resource>) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    for resource in init {
        let key = resource.key();
        loop {
            match admin::write(&state, resource.clone()).await {
                Ok(_) => {
                    tracing::info!(%key, "init resource written");
                    break;
                }
                Err(admin::AppError::Unavailable(why))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tracing::debug!(%key, %why, "init resource waits for the cluster");
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                Err(e) => {
                    tracing::error!(%key, error = %e, "init resource not written");
                    break;
                }
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
