//! `dgate server`: opens storage, joins (today: forms) the cluster, serves the admin API until
//! SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::admin::{self, Metrics};
use crate::cluster::Cluster;
use crate::config::{Config, StorageKind};
use crate::storage::Store;

/// A running server's bound addresses.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub admin: SocketAddr,
}

/// Opens the store the config names.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    match config.storage.kind {
        StorageKind::Memory => Store::open_memory().context("cannot open in-memory storage"),
        StorageKind::File => {
            let dir = &config.storage.dir;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create data dir {}", dir.display()))?;
            Store::open_dir(dir).with_context(|| {
                format!(
                    "cannot open storage in {} (is another dgate using it?)",
                    dir.display()
                )
            })
        }
    }
}

/// Runs the server until a shutdown signal. `on_ready` is called once the listeners are bound.
pub async fn run(config: Config, on_ready: impl FnOnce(Bound)) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    let cluster = Cluster::single_node(store).context("cannot initialize state")?;
    let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
    let app = admin::router(&config, cluster, metrics);

    let admin_addr = SocketAddr::new(config.admin_ip(), config.admin.port);
    let listener = TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("cannot listen on admin address {admin_addr}"))?;
    let bound = Bound {
        admin: listener.local_addr()?,
    };
    tracing::info!(admin = %bound.admin, node = config.node_name(), "admin API listening");
    on_ready(bound);

    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("admin server failed")?;
    tracing::info!("shut down");
    Ok(())
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
