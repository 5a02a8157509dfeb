//! `admin.tls`: the admin listener (and Raft, which shares it) over HTTPS, optionally with
//! client certificates required.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{AdminTlsConfig, ConfigError};

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `admin.tls`'s files, read and checked before the server starts.
#[derive(Clone)]
pub struct AdminTls {
    pub identity: Arc<rustls::sign::CertifiedKey>,
    pub client_ca: Option<Vec<CertificateDer<'static>>>,
}

impl AdminTls {
    /// Reads `admin.tls`'s files, naming the key whose file is wrong.
    pub fn load(config: &AdminTlsConfig) -> Result<AdminTls, ConfigError> {
        let identity =
            crate::tls::read_identity(&config.cert_file, &config.key_file).map_err(|reason| {
                ConfigError::TlsFile {
                    key: "admin.tls",
                    reason,
                }
            })?;
        let client_ca = config
            .client_ca_file
            .as_deref()
            .map(crate::tls::read_certs)
            .transpose()
            .map_err(|reason| ConfigError::TlsFile {
                key: "admin.tls.client_ca_file",
                reason,
            })?;
        let tls = AdminTls {
            identity,
            client_ca,
        };
        // Whatever rustls would refuse at start is refused now, as a config error.
        tls.server_config().map_err(|reason| ConfigError::TlsFile {
            key: "admin.tls",
            reason,
        })?;
        Ok(tls)
    }

    pub fn server_config(&self) -> Result<rustls::ServerConfig, String> {
        crate::tls::admin_server_config(self.identity.clone(), self.client_ca.as_deref())
    }

    /// How this node talks to the others' admin listeners: it trusts the system roots and the
    /// client CA (the cluster's own), and shows its certificate when asked for one.
    pub fn peer_client_config(&self) -> Result<rustls::ClientConfig, String> {
        crate::tls::admin_client_config(
            self.client_ca.as_deref().unwrap_or_default(),
            Some(self.identity.clone()),
            true,
        )
    }
}

/// The admin listener's connections after their TLS handshake. Handshakes run in their own
/// tasks, so a slow client delays no other; one that fails is logged and dropped.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: rustls::ServerConfig) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    // The server stopped serving: stop taking connections.
                    () = tx.closed() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, say: wait instead of spinning.
                        tracing::warn!(error = %e, "admin listener cannot accept");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "admin TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "admin TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accepting task is gone: nothing more will arrive.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
