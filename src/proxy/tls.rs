//! The TLS listener: a certificate per SNI name from the current snapshot, so domain certificate
//! changes are live without a restart. (Client-side TLS, for upstreams and module fetches, is
//! [`crate::tls`].)

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::snapshot::Snapshot;

/// Chooses the certificate for a handshake: the first domain (by priority) whose pattern matches
/// the SNI name and that has a certificate, else the `proxy.tls` default.
#[derive(Debug)]
pub struct SniResolver {
    snapshot: Arc<ArcSwap<Snapshot>>,
    fallback: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    pub fn new(snapshot: Arc<ArcSwap<Snapshot>>, fallback: Option<Arc<CertifiedKey>>) -> Self {
        SniResolver { snapshot, fallback }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            let host = name.to_ascii_lowercase();
            if let Some(key) = self.snapshot.load().cert_for(&host) {
                return Some(key);
            }
        }
        self.fallback.clone()
    }
}

/// The TLS listener's config: SNI-resolved certificates, ALPN h2 and http/1.1.
pub fn server_config(resolver: SniResolver) -> Result<ServerConfig, rustls::Error> {
    let mut cfg = ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
