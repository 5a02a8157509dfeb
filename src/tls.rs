//! Client-side TLS, shared by the proxy's upstream clients and modules' outbound `fetch`: one
//! crypto provider, the system roots read once, and the unverified config for `tlsSkipVerify`.

use std::sync::{Arc, LazyLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// The crypto provider every TLS config in dgate uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Client TLS verified against the system's root certificates. The roots are read once per
/// process; every caller shares the config.
pub fn client_config_with_system_roots() -> Arc<ClientConfig> {
    static CONFIG: LazyLock<Arc<ClientConfig>> = LazyLock::new(|| Arc::new(system_roots_config()));
    CONFIG.clone()
}

fn system_roots_config() -> ClientConfig {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "could not load some system root certificates");
    }
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("no system root certificates found: https upstreams will fail verification");
    }
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| {
            ClientConfig::builder()
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth()
        })
}

/// Client TLS without certificate verification (a service's `tlsSkipVerify`): encrypted, not
/// authenticated.
pub fn client_config_without_verification() -> Arc<ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(NoVerification(provider.clone()));
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| {
            Arc::new(
                b.dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth(),
            )
        })
        .unwrap_or_else(|_| client_config_with_system_roots())
}

#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The PEM certificates in `path` (at least one).
pub fn read_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject as _;
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// A certificate chain and its key from PEM files, checked to belong together.
pub fn read_identity(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::sign::CertifiedKey>, String> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    crate::resources::validate::certified_key(&read(cert)?, &read(key)?)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// The admin listener's TLS: `identity` shown to clients; with `client_ca`, every client must
/// show a certificate one of them signed (mutual TLS). HTTP/1.1, as the admin API speaks.
pub fn admin_server_config(
    identity: Arc<rustls::sign::CertifiedKey>,
    client_ca: Option<&[CertificateDer<'static>]>,
) -> Result<rustls::ServerConfig, String> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match client_ca {
        Some(cas) => {
            let mut roots = RootCertStore::empty();
            for ca in cas {
                roots
                    .add(ca.clone())
                    .map_err(|e| format!("a client CA certificate is not usable: {e}"))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots.into(),
                provider(),
            )
            .build()
            .map_err(|e| format!("cannot verify clients with that CA: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config =
        builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(identity)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Client TLS for talking to admin APIs (the CLI, and nodes to each other): the system roots
/// and `extra_roots` are trusted (nothing is checked when `verify` is false), and `identity`
/// is shown when the server asks for a client certificate.
pub fn admin_client_config(
    extra_roots: &[CertificateDer<'static>],
    identity: Option<Arc<rustls::sign::CertifiedKey>>,
    verify: bool,
) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if verify {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        for ca in extra_roots {
            roots
                .add(ca.clone())
                .map_err(|e| format!("a CA certificate is not usable: {e}"))?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    };
    Ok(match identity {
        Some(id) => {
            builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(id)))
        }
        None => builder.with_no_client_auth(),
    })
}

/// Makes ring the process's default crypto provider, as reqwest needs (it is built without
/// one of its own, so that dgate carries one TLS stack). Idempotent; call before building a
/// reqwest client.
pub fn install_default_provider() {
    // An error means one is installed already: ring, by an earlier call.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
