//! Modules' outbound HTTP: one client per node (its connections and the system roots are reused
//! across calls), a timeout per request, and a cap on the body read.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::bindings::{FetchRequest, FetchResponse, HostError};
use super::call::header_pairs;
use super::egress::{Egress, EgressError, GuardedConnector, find_refusal};

pub struct Fetcher {
    client: Client<HttpsConnector<GuardedConnector>, Full<Bytes>>,
    timeout: Duration,
    max_body: usize,
}

impl Fetcher {
    /// Requests go only where `egress` allows and give up after `timeout`; response bodies
    /// over `max_body` bytes are refused.
    pub fn new(egress: Arc<Egress>, timeout: Duration, max_body: usize) -> Fetcher {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*crate::tls::client_config_with_system_roots()).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(GuardedConnector::new(egress));
        Fetcher {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            max_body,
        }
    }

    /// One request over HTTP or HTTPS (verified against the system roots).
    pub async fn fetch(&self, req: FetchRequest) -> Result<FetchResponse, HostError> {
        match tokio::time::timeout(self.timeout, self.send(req)).await {
            Ok(r) => r,
            Err(_) => Err(HostError::Failed(format!(
                "fetch: no response within {:?}",
                self.timeout
            ))),
        }
    }

    async fn send(&self, req: FetchRequest) -> Result<FetchResponse, HostError> {
        let uri: ::http::Uri = req
            .url
            .parse()
            .map_err(|e| HostError::Invalid(format!("fetch: {:?} is not a URL: {e}", req.url)))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(HostError::Invalid(format!(
                "fetch: {:?} is not an http(s) URL",
                req.url
            )));
        }
        let method = ::http::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| HostError::Invalid(format!("fetch: bad method {:?}", req.method)))?;
        let mut builder = ::http::Request::builder().method(method).uri(uri);
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(req.body.unwrap_or_default())))
            .map_err(|e| HostError::Invalid(format!("fetch: {e}")))?;
        let res = self
            .client
            .request(request)
            .await
            .map_err(|e| match find_refusal(&e) {
                Some(refused @ EgressError::Refused(_)) => {
                    HostError::NotAllowed(format!("fetch {}: {refused}", req.url))
                }
                Some(other) => HostError::Failed(format!("fetch {}: {other}", req.url)),
                None => HostError::Failed(format!("fetch {}: {e}", req.url)),
            })?;
        let status = res.status().as_u16();
        let headers = header_pairs(res.headers());
        let body = Limited::new(res.into_body(), self.max_body)
            .collect()
            .await
            .map_err(|e| HostError::Failed(format!("fetch {}: reading the body: {e}", req.url)))?
            .to_bytes()
            .to_vec();
        Ok(FetchResponse {
            status,
            headers,
            body,
        })
    }
}
