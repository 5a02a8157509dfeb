//! A store's data ([`CallState`]): WASI with nothing in it (no files, no environment, no
//! sockets), the call's limits and I/O, and the host imports of the module world, which read the
//! call's [`Io`] or go to the module's [`Host`].

use std::sync::Arc;
use std::time::Duration;

use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::bindings::dgate::module::{cache, documents, http, types};
use super::bindings::{
    Document, FetchRequest, FetchResponse, HeaderEdit, Hook, HostError, LogLevel,
};
use super::call::{Io, header_pairs, header_value};
use super::host::Host;
use super::limits::{Limiter, Limits};

/// Changes a request's hooks may make to the client's response headers before it exists.
const MAX_CLIENT_HEADER_EDITS: usize = 256;

/// A store's data: WASI (no files, no environment, no sockets), limits, and the call's I/O.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    /// The call's I/O while a call runs, else an empty one. Boxed: it is swapped in and out
    /// for every call, and moving the struct itself (half a KiB) through each call's futures
    /// showed up as `memmove` under load.
    io: Box<Io>,
    host: Arc<Host>,
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
    pub(crate) fn new(host: Arc<Host>, limits: Limits) -> CallState {
        CallState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limiter: Limiter {
                memory: limits.memory,
                hit: false,
            },
            io: Box::default(),
            host,
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
        self.host.log(level, self.io.route.as_deref(), &message);
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
            Field::Host => Some(c.host.to_string()),
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

    fn path_param(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self
            .io
            .call
            .path_params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone()))
    }

    fn header(&mut self, response: bool, name: String) -> wasmtime::Result<Option<String>> {
        let headers = if response {
            &self.io.response_headers
        } else {
            &self.io.request_headers
        };
        Ok(header_value(headers, &name))
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
        self.host.fetch(request).await
    }

    fn client_header_edit(&mut self, edit: HeaderEdit) -> wasmtime::Result<Result<(), HostError>> {
        if !self.in_hook(&[
            Hook::FetchUpstream,
            Hook::RequestModifier,
            Hook::ResponseModifier,
        ]) {
            return Ok(Err(HostError::NotAllowed(
                "ctx.response() edits the response itself in requestHandler and errorHandler"
                    .into(),
            )));
        }
        if self.io.client_header_edits.len() >= MAX_CLIENT_HEADER_EDITS {
            return Ok(Err(HostError::Limit(format!(
                "at most {MAX_CLIENT_HEADER_EDITS} changes to the response's headers per request"
            ))));
        }
        // Checked now, so that the hook that made a bad one hears of it.
        if let Err(e) = super::call::apply_edits(&mut ::http::HeaderMap::new(), vec![edit.clone()])
        {
            return Ok(Err(HostError::Invalid(e.to_string())));
        }
        self.io.client_header_edits.push(edit);
        Ok(Ok(()))
    }

    async fn sleep(&mut self, ms: u32) {
        // The call's wall-time limit ends it if the sleep outlasts it.
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(ms))).await;
    }
}

impl documents::Host for CallState {
    async fn get_collection(&mut self, name: String) -> Result<Option<String>, HostError> {
        Ok(self.host.get_collection(name).await?.map(|c| c.to_string()))
    }

    async fn set_collection(&mut self, collection: String) -> Result<(), HostError> {
        self.host.set_collection(collection).await
    }

    async fn delete_collection(&mut self, name: String) -> Result<bool, HostError> {
        self.host.delete_collection(name).await
    }

    async fn get(&mut self, collection: String, id: String) -> Result<Option<Document>, HostError> {
        self.host.get_document(collection, id).await
    }

    async fn set(&mut self, collection: String, id: String, data: String) -> Result<(), HostError> {
        self.host.set_document(collection, id, data).await
    }

    async fn delete(&mut self, collection: String, id: String) -> Result<bool, HostError> {
        self.host.delete_document(collection, id).await
    }

    async fn list(
        &mut self,
        collection: String,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Document>, HostError> {
        self.host.list_documents(collection, limit, offset).await
    }
}

impl cache::Host for CallState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.host.cache().get(&key))
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> wasmtime::Result<()> {
        self.host
            .cache()
            .set(&key, value, ttl_ms.map(Duration::from_millis));
        Ok(())
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.host.cache().delete(&key);
        Ok(())
    }
}
