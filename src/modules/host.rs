//! The host side of a call: the store's data ([`CallState`]), the bodies of the request in
//! flight ([`Io`]), and the host imports, which go to a [`Services`] implementation (the proxy's
//! real state, or [`LocalServices`] for `dgate module run`).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::dgate::module::{cache, documents, http, types};
use super::{Cache, Document, FetchRequest, FetchResponse, Hook, HostError, Limits, LogLevel};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What the host imports reach outside the sandbox.
pub trait Services: Send + Sync + 'static {
    /// A `console.*` line from a hook running for `route` (when the caller said which).
    fn log(&self, level: LogLevel, route: Option<&str>, message: &str);
    fn fetch(&self, req: FetchRequest) -> BoxFuture<Result<FetchResponse, HostError>>;
    fn get_document(
        &self,
        collection: String,
        id: String,
    ) -> BoxFuture<Result<Option<Document>, HostError>>;
    fn set_document(
        &self,
        collection: String,
        id: String,
        data: String,
    ) -> BoxFuture<Result<(), HostError>>;
    fn delete_document(&self, collection: String, id: String)
    -> BoxFuture<Result<bool, HostError>>;
    fn list_documents(
        &self,
        collection: String,
        limit: u32,
        offset: u32,
    ) -> BoxFuture<Result<Vec<Document>, HostError>>;
    fn cache(&self) -> &Cache;
}

/// The bodies of one hook call, and which hook it is.
/// A body the host reads only when a hook asks for it (`request-body`, `response-body`), so a
/// hook that never looks at bodies lets them stream through untouched.
pub trait LazyBody: Send {
    /// Reads the whole body, refusing more than `limit` bytes.
    fn read(self: Box<Self>, limit: usize) -> BoxFuture<Result<Vec<u8>, HostError>>;
    /// The source itself, unread, for the code that made it to take back (by downcasting).
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}

#[derive(Default)]
pub struct Io {
    pub hook: Option<Hook>,
    /// The client's request body, once read (or as given).
    pub request_body: Vec<u8>,
    /// The request body not read yet; taken (and read) on a hook's first `request-body`.
    pub request_source: Option<Box<dyn LazyBody>>,
    /// The upstream response body not read yet (in `response-modifier`).
    pub response_source: Option<Box<dyn LazyBody>>,
    /// The most a lazy body may hold when read.
    pub body_limit: usize,
    /// The route the call is for, for log lines.
    pub route: Option<std::sync::Arc<str>>,
    /// True once a hook replaced the request body.
    pub request_body_set: bool,
    /// The response body: the upstream's in `response-modifier`, else what hooks wrote.
    pub response_body: Vec<u8>,
    /// True once a hook wrote the response body.
    pub response_body_set: bool,
    /// The request's headers: a hook reads them through `request-headers`, and its edits are
    /// applied here when it returns (in requestModifier).
    pub request_headers: ::http::HeaderMap,
    /// The response's headers: the upstream's in responseModifier, empty in the handlers; a
    /// hook's edits are applied here when it returns.
    pub response_headers: ::http::HeaderMap,
    /// The rest of what a hook may ask about the call.
    pub call: CallInfo,
}

/// What a hook may ask about its route: the same for every request on it.
#[derive(Debug, Default, Clone)]
pub struct RouteInfo {
    pub namespace: String,
    pub route: String,
    pub service: Option<String>,
    /// The service's upstream URLs.
    pub service_urls: Vec<String>,
}

/// What a hook may ask about the call in flight (`http.call-field` and friends); none of it is
/// copied into the sandbox unless a hook reads it.
#[derive(Debug, Clone)]
pub struct CallInfo {
    pub route: Arc<RouteInfo>,
    pub method: ::http::Method,
    /// Path and query.
    pub uri: ::http::Uri,
    pub remote_address: Option<std::net::IpAddr>,
    /// The host the client asked for, without the port.
    pub host: String,
    pub tls: bool,
    /// The route pattern's parameters, decoded.
    pub path_params: Vec<(String, String)>,
    /// In errorHandler: why it is called.
    pub error_message: Option<String>,
}

impl Default for CallInfo {
    /// No call: what an idle instance's state holds. Shares one empty route rather than
    /// allocating one, since each call's end leaves a default behind.
    fn default() -> Self {
        static NO_ROUTE: std::sync::LazyLock<Arc<RouteInfo>> =
            std::sync::LazyLock::new(Default::default);
        CallInfo {
            route: NO_ROUTE.clone(),
            method: ::http::Method::default(),
            uri: ::http::Uri::default(),
            remote_address: None,
            host: String::new(),
            tls: false,
            path_params: Vec::new(),
            error_message: None,
        }
    }
}

/// Headers as the module world has them: lower-case names, values as text.
pub fn header_pairs(headers: &::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Applies a hook's header edits, in order; a name or value that is not valid HTTP is refused.
pub fn apply_edits(
    map: &mut ::http::HeaderMap,
    edits: Vec<types::HeaderEdit>,
) -> Result<(), String> {
    use ::http::{HeaderName, HeaderValue};
    use types::HeaderEdit;
    let name = |n: &str| {
        HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| format!("a header name that is not valid HTTP: {n:?}"))
    };
    // The value keeps the string lifted from the guest rather than copying it. It is checked
    // first (RFC 9110 field-value bytes: HTAB, SP, visible ASCII and obs-text, as `http`
    // checks), so that a bad one can still be named in the error.
    let value = |n: &str, v: String| {
        if !v.bytes().all(|b| b == b'\t' || (b >= b' ' && b != 0x7f)) {
            return Err(format!(
                "a value of header {n:?} that is not valid HTTP: {v:?}"
            ));
        }
        HeaderValue::from_maybe_shared(bytes::Bytes::from(v))
            .map_err(|_| format!("a value of header {n:?} that is not valid HTTP"))
    };
    for edit in edits {
        match edit {
            HeaderEdit::Clear => map.clear(),
            HeaderEdit::Set((n, v)) => {
                let v = value(&n, v)?;
                map.insert(name(&n)?, v);
            }
            HeaderEdit::Append((n, v)) => {
                let v = value(&n, v)?;
                map.append(name(&n)?, v);
            }
            HeaderEdit::Remove(n) => {
                map.remove(name(&n)?);
            }
        }
    }
    Ok(())
}

impl Io {
    /// The same bodies, for a call of `hook`.
    pub fn for_hook(mut self: Box<Self>, hook: Hook) -> Box<Io> {
        self.hook = Some(hook);
        self
    }
}

/// Denies memory growth past the call's limit and remembers that it did.
pub struct Limiter {
    memory: usize,
    pub hit: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// A store's data: WASI (no files, no environment, no sockets), limits, and the call's I/O.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    /// The call's I/O while a call runs, else an empty one. Boxed: it is swapped in and out
    /// for every call, and moving the struct itself (half a KiB) through each call's futures
    /// showed up as `memmove` under load.
    io: Box<Io>,
    services: Arc<dyn Services>,
    fetches: u32,
    limits: Limits,
    /// When the call in flight runs out of wall time (`None`: never).
    pub(crate) deadline: Option<std::time::Instant>,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl CallState {
    pub(crate) fn new(services: Arc<dyn Services>, limits: Limits) -> CallState {
        CallState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                memory: limits.memory,
                hit: false,
            },
            io: Box::default(),
            services,
            fetches: 0,
            limits,
            deadline: None,
        }
    }

    /// Swaps the call's I/O in: `io` gets the empty one back until [`CallState::end`].
    pub(crate) fn begin(&mut self, io: &mut Box<Io>) {
        std::mem::swap(&mut self.io, io);
        self.fetches = 0;
        self.limiter.hit = false;
    }

    /// Swaps the call's I/O out again, into `io`.
    pub(crate) fn end(&mut self, io: &mut Box<Io>) {
        std::mem::swap(&mut self.io, io);
    }

    fn in_hook(&self, allowed: &[Hook]) -> bool {
        self.io.hook.is_some_and(|h| allowed.contains(&h))
    }
}

impl types::Host for CallState {}

impl http::Host for CallState {
    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        self.services.log(level, self.io.route.as_deref(), &message);
        Ok(())
    }

    fn call_field(&mut self, f: types::Field) -> wasmtime::Result<Option<String>> {
        use types::Field;
        let c = &self.io.call;
        Ok(match f {
            Field::Namespace => Some(c.route.namespace.clone()),
            Field::Route => Some(c.route.route.clone()),
            Field::Service => c.route.service.clone(),
            Field::Method => Some(c.method.as_str().to_string()),
            Field::Uri => Some(
                c.uri
                    .path_and_query()
                    .map_or("/", |pq| pq.as_str())
                    .to_string(),
            ),
            Field::RemoteAddress => c.remote_address.map(|a| a.to_string()),
            Field::Host => Some(c.host.clone()),
            Field::Proto => Some(if c.tls { "https" } else { "http" }.to_string()),
            Field::ErrorMessage => c.error_message.clone(),
        })
    }

    fn service_urls(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.io.call.route.service_urls.clone())
    }

    fn path_params(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.io.call.path_params.clone())
    }

    fn request_headers(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(header_pairs(&self.io.request_headers))
    }

    fn response_headers(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(header_pairs(&self.io.response_headers))
    }

    async fn request_body(&mut self) -> Result<Vec<u8>, HostError> {
        if let Some(src) = self.io.request_source.take() {
            self.io.request_body = src.read(self.io.body_limit).await?;
        }
        Ok(self.io.request_body.clone())
    }

    fn set_request_body(&mut self, body: Vec<u8>) -> wasmtime::Result<Result<(), HostError>> {
        if !self.in_hook(&[Hook::RequestModifier]) {
            return Ok(Err(HostError::NotAllowed(
                "the request body can only be replaced in requestModifier".into(),
            )));
        }
        self.io.request_body = body;
        self.io.request_body_set = true;
        Ok(Ok(()))
    }

    async fn response_body(&mut self) -> Result<Vec<u8>, HostError> {
        if let Some(src) = self.io.response_source.take() {
            self.io.response_body = src.read(self.io.body_limit).await?;
        }
        Ok(self.io.response_body.clone())
    }

    fn set_response_body(&mut self, body: Vec<u8>) -> wasmtime::Result<Result<(), HostError>> {
        if !self.in_hook(&[
            Hook::ResponseModifier,
            Hook::ErrorHandler,
            Hook::RequestHandler,
        ]) {
            return Ok(Err(HostError::NotAllowed(
                "the response body can only be written in responseModifier, errorHandler or requestHandler".into(),
            )));
        }
        self.io.response_body = body;
        self.io.response_body_set = true;
        Ok(Ok(()))
    }

    async fn fetch(&mut self, request: FetchRequest) -> Result<FetchResponse, HostError> {
        if self.fetches >= self.limits.max_fetches {
            return Err(HostError::Limit(format!(
                "at most {} fetches per call",
                self.limits.max_fetches
            )));
        }
        self.fetches += 1;
        self.services.fetch(request).await
    }
}

impl documents::Host for CallState {
    async fn get(&mut self, collection: String, id: String) -> Result<Option<Document>, HostError> {
        self.services.get_document(collection, id).await
    }

    async fn set(&mut self, collection: String, id: String, data: String) -> Result<(), HostError> {
        self.services.set_document(collection, id, data).await
    }

    async fn delete(&mut self, collection: String, id: String) -> Result<bool, HostError> {
        self.services.delete_document(collection, id).await
    }

    async fn list(
        &mut self,
        collection: String,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Document>, HostError> {
        self.services
            .list_documents(collection, limit, offset)
            .await
    }
}

impl cache::Host for CallState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.services.cache().get(&key))
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> wasmtime::Result<()> {
        self.services
            .cache()
            .set(&key, value, ttl_ms.map(Duration::from_millis));
        Ok(())
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.services.cache().delete(&key);
        Ok(())
    }
}

/// Largest response body a module's fetch reads.
const MAX_FETCH_BODY: usize = 16 << 20;

/// Services for running a module on its own (`dgate module run`): documents and the cache in
/// memory, real outbound HTTP(S), logs on stderr.
pub struct LocalServices {
    documents: Mutex<BTreeMap<(String, String), String>>,
    cache: Cache,
    fetch_timeout: Duration,
    /// Log lines, kept for whoever ran the module.
    pub logs: Mutex<Vec<(LogLevel, String)>>,
    /// Also print log lines on stderr.
    pub echo: bool,
}

impl Default for LocalServices {
    fn default() -> Self {
        LocalServices {
            documents: Mutex::default(),
            cache: Cache::default(),
            fetch_timeout: Duration::from_secs(10),
            logs: Mutex::default(),
            echo: false,
        }
    }
}

impl LocalServices {
    /// Seeds documents: `{"collection": {"id": <data>, ...}, ...}`.
    pub fn with_documents(self, seed: &serde_json::Value) -> Result<Self, String> {
        let Some(collections) = seed.as_object() else {
            return Err("documents must be an object of collections".into());
        };
        {
            let mut docs = self.documents.lock().unwrap_or_else(|p| p.into_inner());
            for (collection, items) in collections {
                let Some(items) = items.as_object() else {
                    return Err(format!(
                        "collection {collection:?} must be an object of documents by id"
                    ));
                };
                for (id, data) in items {
                    docs.insert((collection.clone(), id.clone()), data.to_string());
                }
            }
        }
        Ok(self)
    }

    /// Every document, as `{"collection": {"id": data}}`.
    pub fn documents(&self) -> serde_json::Value {
        let docs = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = serde_json::Map::new();
        for ((c, id), data) in docs.iter() {
            let entry = out
                .entry(c.clone())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let Some(o) = entry.as_object_mut() {
                o.insert(
                    id.clone(),
                    serde_json::from_str(data).unwrap_or(serde_json::Value::Null),
                );
            }
        }
        serde_json::Value::Object(out)
    }
}

fn ready<T: Send + 'static>(v: T) -> BoxFuture<T> {
    Box::pin(std::future::ready(v))
}

impl Services for LocalServices {
    fn log(&self, level: LogLevel, _route: Option<&str>, message: &str) {
        if self.echo {
            eprintln!("[{}] {message}", level_name(level));
        }
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((level, message.to_string()));
    }

    fn fetch(&self, req: FetchRequest) -> BoxFuture<Result<FetchResponse, HostError>> {
        Box::pin(fetch_with_timeout(req, self.fetch_timeout))
    }

    fn get_document(
        &self,
        collection: String,
        id: String,
    ) -> BoxFuture<Result<Option<Document>, HostError>> {
        let docs = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        let found = docs
            .get(&(collection.clone(), id.clone()))
            .map(|data| Document {
                id,
                collection,
                data: data.clone(),
            });
        ready(Ok(found))
    }

    fn set_document(
        &self,
        collection: String,
        id: String,
        data: String,
    ) -> BoxFuture<Result<(), HostError>> {
        if serde_json::from_str::<serde_json::Value>(&data).is_err() {
            return ready(Err(HostError::Invalid("document data must be JSON".into())));
        }
        if collection.is_empty() || id.is_empty() {
            return ready(Err(HostError::Invalid(
                "collection and id must not be empty".into(),
            )));
        }
        self.documents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((collection, id), data);
        ready(Ok(()))
    }

    fn delete_document(
        &self,
        collection: String,
        id: String,
    ) -> BoxFuture<Result<bool, HostError>> {
        let removed = self
            .documents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(collection, id))
            .is_some();
        ready(Ok(removed))
    }

    fn list_documents(
        &self,
        collection: String,
        limit: u32,
        offset: u32,
    ) -> BoxFuture<Result<Vec<Document>, HostError>> {
        let docs = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        let list = docs
            .iter()
            .filter(|((c, _), _)| *c == collection)
            .skip(offset as usize)
            .take(limit as usize)
            .map(|((c, id), data)| Document {
                id: id.clone(),
                collection: c.clone(),
                data: data.clone(),
            })
            .collect();
        ready(Ok(list))
    }

    fn cache(&self) -> &Cache {
        &self.cache
    }
}

pub fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

/// [`outbound`], giving up after `timeout`.
pub(crate) async fn fetch_with_timeout(
    req: FetchRequest,
    timeout: Duration,
) -> Result<FetchResponse, HostError> {
    match tokio::time::timeout(timeout, outbound(req)).await {
        Ok(r) => r,
        Err(_) => Err(HostError::Failed(format!(
            "fetch: no response within {timeout:?}"
        ))),
    }
}

/// One outbound request over HTTP or HTTPS (system roots).
async fn outbound(req: FetchRequest) -> Result<FetchResponse, HostError> {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

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
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(crate::proxy::tls::client_config_with_system_roots())
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let res = client
        .request(request)
        .await
        .map_err(|e| HostError::Failed(format!("fetch {}: {e}", req.url)))?;
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = Limited::new(res.into_body(), MAX_FETCH_BODY)
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
