//! The admin API client the resource commands use.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::Method;
use serde_json::Value;

/// A failed command: one line for stderr and an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line itself is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The server answered with an error (exit 1).
    #[error("{message} (HTTP {status})")]
    Api { status: u16, message: String },
    /// The server could not be reached or answered nonsense (exit 1).
    #[error("{0}")]
    Transport(String),
    /// A local command failed: a build error, a failed hook (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Api { .. } | CliError::Transport(_) | CliError::Failed(_) => 1,
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Option<(String, String)>,
    verbose: bool,
}

/// TLS for https:// admin URLs: the system roots and `--ca`, or no verification with
/// `--insecure`; `--client-cert`/`--client-key` shown when the server asks for a certificate.
fn tls_config(cli: &super::Cli) -> Result<rustls::ClientConfig, CliError> {
    let extra = match &cli.ca {
        Some(path) => {
            crate::tls::read_certs(path).map_err(|e| CliError::Usage(format!("--ca: {e}")))?
        }
        None => vec![],
    };
    let identity = match (&cli.client_cert, &cli.client_key) {
        (Some(cert), Some(key)) => Some(
            crate::tls::read_identity(cert, key)
                .map_err(|e| CliError::Usage(format!("--client-cert/--client-key: {e}")))?,
        ),
        _ => None,
    };
    let mut config = crate::tls::admin_client_config(&extra, identity, !cli.insecure)
        .map_err(|e| CliError::Usage(format!("TLS: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The rustls error in `e`, looking inside io::Errors too (their source() skips the error
/// they wrap, and hyper wraps rustls's in two of them).
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    rustls_error(inner)
}

impl Client {
    /// `--auth`: `user:password` becomes basic auth, anything else a key in `--auth-header`.
    pub fn new(cli: &super::Cli) -> Result<Client, CliError> {
        let (base, auth, auth_header) = (&cli.admin, cli.auth.as_deref(), &cli.auth_header);
        let url = url::Url::parse(base)
            .map_err(|e| CliError::Usage(format!("--admin {base:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CliError::Usage(format!(
                "--admin {base:?}: an admin URL is http:// or https://"
            )));
        }
        let auth = auth.filter(|a| !a.is_empty()).map(|a| {
            if a.contains(':') {
                (
                    "authorization".to_string(),
                    format!("Basic {}", BASE64.encode(a)),
                )
            } else {
                (auth_header.to_string(), a.to_string())
            }
        });
        crate::tls::install_default_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .tls_backend_preconfigured(tls_config(cli)?)
            .build()
            .map_err(|e| CliError::Transport(format!("cannot build HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            auth,
            verbose: cli.verbose,
        })
    }

    /// The same client (credentials and all) for another node's admin API at `base`.
    pub fn at(&self, base: &str) -> Client {
        Client {
            http: self.http.clone(),
            base: base.trim_end_matches('/').to_string(),
            auth: self.auth.clone(),
            verbose: self.verbose,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request under `/api/v1`; returns the response's `data` (None for 204).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>, CliError> {
        let url = format!("{}/api/v1{path}", self.base);
        let shown = format!("{method} {url}");
        let mut req = self.http.request(method, &url).query(query);
        if let Some((h, v)) = &self.auth {
            req = req.header(h.as_str(), v.as_str());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| {
            // A TLS failure (an unknown CA, a refused client certificate) says which.
            let tls = std::iter::successors(std::error::Error::source(&e), |s| s.source())
                .find_map(rustls_error)
                .map(|t| {
                    let hint = match t {
                        rustls::Error::InvalidCertificate(_) => {
                            " (trust its CA with --ca FILE, or skip the check with --insecure)"
                        }
                        rustls::Error::AlertReceived(_) => {
                            " (if it asks for a client certificate: --client-cert and --client-key)"
                        }
                        _ => "",
                    };
                    format!("TLS: {t}{hint}")
                });
            let why = if let Some(tls) = tls {
                tls
            } else if e.is_connect() {
                "connection refused or unreachable".into()
            } else if e.is_timeout() {
                "timed out".into()
            } else {
                "request failed".into()
            };
            CliError::Transport(format!(
                "cannot reach the admin API at {}: {why}",
                self.base
            ))
        })?;
        let status = res.status();
        if self.verbose {
            eprintln!("{shown} -> {status}");
        }
        let text = res
            .text()
            .await
            .map_err(|e| CliError::Transport(format!("reading the response failed: {e}")))?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from))
                .unwrap_or_else(|| text.trim().chars().take(200).collect());
            return Err(CliError::Api {
                status: status.as_u16(),
                message,
            });
        }
        if text.trim().is_empty() {
            return Ok(None);
        }
        let v: Value = serde_json::from_str(&text).map_err(|_| {
            CliError::Transport(format!(
                "{url} did not answer JSON; is --admin a dgate admin API?"
            ))
        })?;
        Ok(Some(v.get("data").cloned().unwrap_or(v)))
    }
}
