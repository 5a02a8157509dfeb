//! The module engine, shared by `dgate module run` and the proxy: one wasmtime [`Engine`] with
//! the pooling allocator (copy-on-write memory images) and epoch interruption, components
//! compiled once and cached on disk by content hash, an `InstancePre` per module, and hard
//! limits per call (fuel, memory, wall time). Every failure of a call is a [`CallError`]; none
//! is a panic, and a failed instance is never reused.

mod cache;
pub mod host;
#[cfg(test)]
mod tests;
mod ticker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

pub use cache::Cache;
pub use host::{
    CallInfo, CallState, Io, LocalServices, RouteInfo, Services, apply_edits, header_pairs,
};

wasmtime::component::bindgen!({
    path: "wit",
    world: "dgate-module",
    imports: {
        "dgate:module/http.fetch": async,
        "dgate:module/http.request-body": async,
        "dgate:module/http.response-body": async,
        "dgate:module/documents": async,
        default: trappable,
    },
    exports: { default: async },
});

pub use dgate::module::documents::Document;
pub use dgate::module::http::{FetchRequest, FetchResponse};
pub use dgate::module::types::{
    Field, HeaderEdit, Hook, HookError, HostError, LogLevel, RequestChanges, ResponseChanges,
};

/// Per-call limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wasm fuel: about one unit per instruction.
    pub fuel: u64,
    /// Linear memory (all memories of the instance together).
    pub memory: usize,
    /// Wall time for one hook call, including time spent waiting on `fetch`.
    pub wall: Duration,
    /// Outbound requests per call.
    pub max_fetches: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 1_000_000_000,
            memory: 64 << 20,
            wall: Duration::from_millis(50),
            max_fetches: 8,
        }
    }
}

/// Why a hook call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the module used up its fuel ({0} units)")]
    OutOfFuel(u64),
    #[error("the module ran past its time limit of {0:?}")]
    Timeout(Duration),
    #[error("the module reached its memory limit of {0} bytes")]
    OutOfMemory(usize),
    #[error("the module trapped: {0}")]
    Trap(String),
    #[error("the hook threw: {message}")]
    Thrown {
        message: String,
        stack: Option<String>,
    },
    #[error("the hook returned something unusable: {0}")]
    InvalidResult(String),
    #[error("the hook's promise never settled")]
    Unsettled,
    #[error("the module does not define {0}")]
    NotDefined(&'static str),
    #[error("cannot start the module: {0}")]
    Instantiate(String),
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not a component of the `dgate:module` world (a core module, another world, garbage).
    #[error("{0}")]
    Invalid(String),
    #[error("module cache: {0}")]
    Cache(String),
}

/// What an engine is configured with.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where compiled modules are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// How many instances may exist at once (the pool's size).
    pub max_instances: u32,
    /// The memory limit of the pool's slots; per-call limits can only be lower.
    pub max_memory: usize,
    /// A `dgate` binary to compile components in a child process (`dgate __compile`), so
    /// cranelift's memory goes back to the system; `None` compiles in this process.
    pub compiler: Option<PathBuf>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_dir: None,
            max_instances: 256,
            max_memory: 64 << 20,
            compiler: None,
        }
    }
}

/// One wasmtime engine and the linker every module is instantiated through.
pub struct Engine {
    engine: wasmtime::Engine,
    linker: Linker<CallState>,
    cache_dir: Option<PathBuf>,
    compiler: Option<PathBuf>,
    /// What `dgate __compile` needs to configure an identical engine.
    max_instances: u32,
    max_memory: usize,
    /// Advances the epoch while calls run.
    ticker: Arc<ticker::Ticker>,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> anyhow::Result<Arc<Engine>> {
        let mut pool = PoolingAllocationConfig::default();
        // A component from `dgate build`: the runtime, the WASI adapter and its shims.
        pool.total_component_instances(opts.max_instances)
            .total_core_instances(opts.max_instances * 8)
            .total_memories(opts.max_instances * 2)
            .total_tables(opts.max_instances * 4)
            .max_memories_per_component(4)
            .max_tables_per_component(8)
            .max_core_instances_per_component(16)
            .max_memory_size(opts.max_memory)
            .total_stacks(opts.max_instances)
            // A fresh instance was dominated by page faults (the slot's pages were dropped with
            // madvise, then faulted back in by the next call). Keep up to 8 MiB of each slot
            // resident and, where the kernel has PAGEMAP_SCAN (6.7+), restore only the pages
            // the last instance dirtied.
            .linear_memory_keep_resident(8 << 20)
            .table_keep_resident(1 << 20)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .memory_init_cow(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // `DGATE_WASM_PERFMAP=1` names the guest's functions for `perf` (/tmp/perf-PID.map).
        if std::env::var_os("DGATE_WASM_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = wasmtime::Engine::new(&config).map_err(wasm_error)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(wasm_error)?;
        DgateModule::add_to_linker::<CallState, wasmtime::component::HasSelf<CallState>>(
            &mut linker,
            |s| s,
        )
        .map_err(wasm_error)?;
        let ticker = ticker::Ticker::start(engine.clone())?;
        Ok(Arc::new(Engine {
            engine,
            ticker,
            linker,
            cache_dir: opts.cache_dir,
            compiler: opts.compiler,
            max_instances: opts.max_instances,
            max_memory: opts.max_memory,
        }))
    }

    /// Compiles (or loads from the cache) a component and checks it against the world.
    pub async fn load(self: &Arc<Self>, bytes: &[u8]) -> Result<Arc<Module>, LoadError> {
        if !wasmparser_is_component(bytes) {
            return Err(LoadError::Invalid(if bytes.starts_with(b"\0asm") {
                "this is a core WebAssembly module, not a component: build it with `dgate build`"
                    .into()
            } else {
                "this is not a WebAssembly component".into()
            }));
        }
        let hash = content_hash(bytes);
        let component = self.compile(bytes, &hash).await?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            LoadError::Invalid(format!("the component does not fit dgate's world: {e:#}"))
        })?;
        let pre = DgateModulePre::new(pre).map_err(|e| {
            LoadError::Invalid(format!(
                "the component does not export dgate:module/hooks@0.1.0: {e:#}"
            ))
        })?;
        let mut module = Module {
            engine: self.clone(),
            pre,
            defined: vec![],
            hash,
            source: crate::build::SourceInfo::from_component(bytes).map(Arc::new),
        };
        let mut instance = module
            .instantiate(Arc::new(LocalServices::default()), Limits::default())
            .await
            .map_err(|e| LoadError::Invalid(e.to_string()))?;
        module.defined = instance
            .defined()
            .await
            .map_err(|e| LoadError::Invalid(e.to_string()))?;
        Ok(Arc::new(module))
    }

    async fn compile(&self, bytes: &[u8], hash: &str) -> Result<Component, LoadError> {
        let path = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{hash}.cwasm")));
        if let Some(path) = path.as_ref().filter(|p| p.exists()) {
            // SAFETY: the file was written by `Component::serialize` of an engine with this
            // configuration (a different wasmtime or config is refused by deserialize), into a
            // directory only this process's user writes.
            match unsafe { Component::deserialize_file(&self.engine, path) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "recompiling a module whose cache entry cannot be used")
                }
            }
        }
        let (component, serialized) = match self.compile_in_child(bytes).await {
            Some(r) => r?,
            None => {
                let component = Component::new(&self.engine, bytes)
                    .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
                let serialized = if path.is_some() {
                    component
                        .serialize()
                        .map_err(|e| LoadError::Cache(e.to_string()))?
                } else {
                    Vec::new()
                };
                (component, serialized)
            }
        };
        if let (Some(dir), Some(path)) = (&self.cache_dir, &path) {
            write_atomically(dir, path, &serialized)
                .map_err(|e| LoadError::Cache(e.to_string()))?;
        }
        Ok(component)
    }

    /// Compiles in `dgate __compile` when a compiler binary is configured: `None` when there is
    /// none or it could not run (the caller compiles in-process).
    async fn compile_in_child(
        &self,
        bytes: &[u8],
    ) -> Option<Result<(Component, Vec<u8>), LoadError>> {
        use tokio::io::AsyncWriteExt as _;
        let exe = self.compiler.as_ref()?;
        let mut child = tokio::process::Command::new(exe)
            .arg("__compile")
            .arg(self.max_instances.to_string())
            .arg(self.max_memory.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| tracing::warn!(error = %e, "cannot start the module compiler; compiling in-process"))
            .ok()?;
        let mut stdin = child.stdin.take()?;
        let input = bytes.to_vec();
        let writing = async move {
            let r = stdin.write_all(&input).await;
            drop(stdin);
            r
        };
        let (written, out) = tokio::join!(writing, child.wait_with_output());
        let out = out.ok()?;
        match out.status.code() {
            Some(0) if written.is_ok() => {
                // SAFETY: the bytes are `Component::serialize` output of this same binary with
                // an engine configured from the same options (deserialize refuses others).
                let c = unsafe { Component::deserialize(&self.engine, &out.stdout) };
                match c {
                    Ok(c) => Some(Ok((c, out.stdout))),
                    Err(e) => {
                        tracing::warn!(error = %e, "the module compiler's output cannot be used; compiling in-process");
                        None
                    }
                }
            }
            Some(COMPILE_INVALID) => Some(Err(LoadError::Invalid(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))),
            _ => {
                tracing::warn!(status = %out.status, stderr = %String::from_utf8_lossy(&out.stderr).trim(), "the module compiler failed; compiling in-process");
                None
            }
        }
    }
}

/// The exit status of `dgate __compile` for bytes that are not a usable component.
const COMPILE_INVALID: i32 = 65;

/// `dgate __compile MAX_INSTANCES MAX_MEMORY`: compiles the component on stdin with an engine
/// configured like the gateway's and writes the serialized code to stdout.
pub fn compiler_main(args: &[String]) -> i32 {
    use std::io::{Read as _, Write as _};
    let (Some(Ok(max_instances)), Some(Ok(max_memory))) = (
        args.first().map(|a| a.parse::<u32>()),
        args.get(1).map(|a| a.parse::<usize>()),
    ) else {
        eprintln!("usage: dgate __compile MAX_INSTANCES MAX_MEMORY < component.wasm");
        return 2;
    };
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("cannot read the component: {e}");
        return 1;
    }
    let engine = match Engine::new(EngineOptions {
        max_instances,
        max_memory,
        ..EngineOptions::default()
    }) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot start the engine: {e:#}");
            return 1;
        }
    };
    let serialized = Component::new(&engine.engine, &bytes).and_then(|c| c.serialize());
    match serialized {
        Ok(out) => match std::io::stdout().write_all(&out) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("cannot write the compiled module: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("{e:#}");
            COMPILE_INVALID
        }
    }
}

fn wasm_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn wasmparser_is_component(bytes: &[u8]) -> bool {
    // The binary header: magic, then version 0x0d with layer 1 for components.
    bytes.len() >= 8 && bytes.starts_with(b"\0asm") && bytes[6..8] == [1, 0]
}

/// SHA-256 of a component, in hex: its identity in the disk cache and on the proxy.
pub fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A compiled component, ready to instantiate.
pub struct Module {
    engine: Arc<Engine>,
    pre: DgateModulePre<CallState>,
    /// The hooks the module defines.
    pub defined: Vec<Hook>,
    /// SHA-256 of the component.
    pub hash: String,
    /// The source map `dgate build` put in the component, to point errors into the source.
    source: Option<Arc<crate::build::SourceInfo>>,
}

impl Module {
    /// A fresh instance (from the pool) whose host imports go to `services`.
    pub async fn instantiate(
        &self,
        services: Arc<dyn Services>,
        limits: Limits,
    ) -> Result<Instance, CallError> {
        let mut store = Store::new(&self.engine.engine, CallState::new(services, limits));
        store.limiter(|s| &mut s.limiter);
        // The store's epoch deadline is always the next tick; whether the call overran is the
        // clock's answer (see `ticker`).
        store.epoch_deadline_callback(|cx| match cx.data().deadline {
            Some(deadline) if std::time::Instant::now() >= deadline => Err(Trap::Interrupt.into()),
            _ => Ok(wasmtime::UpdateDeadline::Continue(1)),
        });
        let _running = self.engine.ticker.enter(limits.wall);
        arm(&mut store, limits);
        let bindings = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| classify(&store, e, limits))
            .map_err(|e| match e {
                CallError::Trap(m) => CallError::Instantiate(m),
                other => other,
            })?;
        Ok(Instance {
            store,
            bindings,
            limits,
            poisoned: false,
            source: self.source.clone(),
            ticker: self.engine.ticker.clone(),
        })
    }
}

/// Sets the per-call budgets, from now; returns the wall-time deadline (`None`: past the
/// clock's range, so none).
fn arm(store: &mut Store<CallState>, limits: Limits) -> Option<std::time::Instant> {
    // Fuel is always on in this engine's config, so this cannot fail.
    let _ = store.set_fuel(limits.fuel);
    let deadline = std::time::Instant::now().checked_add(limits.wall);
    store.data_mut().deadline = deadline;
    store.set_epoch_deadline(1);
    deadline
}

fn classify(store: &Store<CallState>, e: wasmtime::Error, limits: Limits) -> CallError {
    if store.data().limiter.hit {
        return CallError::OutOfMemory(limits.memory);
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::OutOfFuel(limits.fuel),
        Some(Trap::Interrupt) => CallError::Timeout(limits.wall),
        _ => CallError::Trap(format!("{e:#}")),
    }
}

/// Runs `call` until `deadline`; `None` when it ran out. The timer is set only once the call
/// has to wait (a host call such as `fetch` pending): most hook calls finish in their first
/// poll, and the epoch deadline bounds the time they spend running.
async fn within<F: std::future::Future>(
    deadline: Option<std::time::Instant>,
    call: F,
) -> Option<F::Output> {
    let Some(deadline) = deadline.map(tokio::time::Instant::from_std) else {
        return Some(call.await);
    };
    let mut call = std::pin::pin!(call);
    let mut timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(out) = call.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(out));
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// One instance of a module. Calls run one at a time; after a failure other than a hook's own
/// error (a throw), the instance is poisoned and must be dropped.
pub struct Instance {
    store: Store<CallState>,
    bindings: DgateModule,
    limits: Limits,
    poisoned: bool,
    source: Option<Arc<crate::build::SourceInfo>>,
    ticker: Arc<ticker::Ticker>,
}

impl Instance {
    /// False once a call trapped, ran out of a budget or was cancelled: drop it then.
    pub fn reusable(&self) -> bool {
        !self.poisoned
    }

    /// Runs one hook call with `io` as its bodies; returns the hook's result and the bodies.
    async fn call<T>(
        &mut self,
        mut io: Box<Io>,
        f: impl AsyncFnOnce(
            &DgateModule,
            &mut Store<CallState>,
        ) -> wasmtime::Result<Result<T, HookError>>,
    ) -> (Result<T, CallError>, Box<Io>) {
        if self.poisoned {
            return (
                Err(CallError::Instantiate("the instance failed earlier".into())),
                io,
            );
        }
        let limits = self.limits;
        let _running = self.ticker.enter(limits.wall);
        let deadline = arm(&mut self.store, limits);
        self.store.data_mut().begin(&mut io);
        // Poisoned unless the call completes: a timeout drops the call mid-flight.
        self.poisoned = true;
        let outcome = within(deadline, f(&self.bindings, &mut self.store)).await;
        self.store.data_mut().end(&mut io);
        let result = match outcome {
            None => Err(CallError::Timeout(limits.wall)),
            Some(Err(e)) => Err(classify(&self.store, e, limits)),
            Some(Ok(r)) => {
                self.poisoned = false;
                let remap = |text: String| match &self.source {
                    Some(info) => info.remap(&text),
                    None => text,
                };
                r.map_err(|e| match e {
                    HookError::Thrown(t) => CallError::Thrown {
                        message: remap(t.message),
                        stack: t.stack.map(remap),
                    },
                    HookError::InvalidResult(m) => CallError::InvalidResult(m),
                    HookError::Unsettled => CallError::Unsettled,
                    HookError::NotDefined => CallError::NotDefined("this hook"),
                })
            }
        };
        if self.store.data().limiter.hit {
            self.poisoned = true;
            return (Err(CallError::OutOfMemory(limits.memory)), io);
        }
        (result, io)
    }

    /// The hooks the module defines.
    pub async fn defined(&mut self) -> Result<Vec<Hook>, CallError> {
        let (r, _) = self
            .call(Box::default(), async |b, s| {
                b.dgate_module_hooks().call_defined(s).await.map(Ok)
            })
            .await;
        r
    }

    /// fetchUpstream: the URL the hook picked.
    pub async fn fetch_upstream(&mut self, io: Box<Io>) -> (Result<String, CallError>, Box<Io>) {
        self.call(io.for_hook(Hook::FetchUpstream), async |b, s| {
            b.dgate_module_hooks().call_fetch_upstream(s).await
        })
        .await
    }

    /// requestModifier: its changes are applied to `io` (method and path and query in
    /// `io.call`, headers in `io.request_headers`).
    pub async fn request_modifier(&mut self, io: Box<Io>) -> (Result<(), CallError>, Box<Io>) {
        let (r, mut io) = self
            .call(io.for_hook(Hook::RequestModifier), async |b, s| {
                b.dgate_module_hooks().call_request_modifier(s).await
            })
            .await;
        let r = r.and_then(|changes| {
            let bad = |what: &str, v: &str| {
                CallError::InvalidResult(format!("requestModifier set a bad {what} {v:?}"))
            };
            if let Some(m) = changes.method {
                io.call.method =
                    ::http::Method::from_bytes(m.as_bytes()).map_err(|_| bad("method", &m))?;
            }
            if let Some(u) = changes.uri {
                let uri: ::http::Uri = u.parse().map_err(|_| bad("path", &u))?;
                if uri.scheme().is_some() || !u.starts_with('/') {
                    return Err(bad("path", &u));
                }
                io.call.uri = uri;
            }
            apply_edits(&mut io.request_headers, changes.headers)
                .map_err(|e| CallError::InvalidResult(format!("requestModifier set {e}")))
        });
        (r, io)
    }

    /// responseModifier on the upstream's `status` and `io.response_headers`: the status the
    /// hook set; its header edits are applied to `io.response_headers`.
    pub async fn response_modifier(
        &mut self,
        status: u16,
        io: Box<Io>,
    ) -> (Result<u16, CallError>, Box<Io>) {
        let (r, io) = self
            .call(io.for_hook(Hook::ResponseModifier), async |b, s| {
                b.dgate_module_hooks()
                    .call_response_modifier(s, status)
                    .await
            })
            .await;
        respond(Hook::ResponseModifier, r, io)
    }

    /// errorHandler for a failure dgate would answer with `status` (the message is in
    /// `io.call.error_message`): the status of its answer; its headers are in
    /// `io.response_headers`.
    pub async fn error_handler(
        &mut self,
        status: u16,
        mut io: Box<Io>,
    ) -> (Result<u16, CallError>, Box<Io>) {
        io.response_headers.clear();
        let (r, io) = self
            .call(io.for_hook(Hook::ErrorHandler), async |b, s| {
                b.dgate_module_hooks().call_error_handler(s, status).await
            })
            .await;
        respond(Hook::ErrorHandler, r, io)
    }

    /// requestHandler: the status of its answer; its headers are in `io.response_headers`.
    pub async fn request_handler(&mut self, mut io: Box<Io>) -> (Result<u16, CallError>, Box<Io>) {
        io.response_headers.clear();
        let (r, io) = self
            .call(io.for_hook(Hook::RequestHandler), async |b, s| {
                b.dgate_module_hooks().call_request_handler(s).await
            })
            .await;
        respond(Hook::RequestHandler, r, io)
    }
}

/// A response hook's outcome: its status, with its header edits applied to the response's.
fn respond(
    hook: Hook,
    r: Result<ResponseChanges, CallError>,
    mut io: Box<Io>,
) -> (Result<u16, CallError>, Box<Io>) {
    let r = r.and_then(|changes| {
        apply_edits(&mut io.response_headers, changes.headers)
            .map_err(|e| CallError::InvalidResult(format!("{} set {e}", hook.js_name())))?;
        Ok(changes.status)
    });
    (r, io)
}

impl Hook {
    /// The JS export name.
    pub fn js_name(self) -> &'static str {
        match self {
            Hook::FetchUpstream => "fetchUpstream",
            Hook::RequestModifier => "requestModifier",
            Hook::ResponseModifier => "responseModifier",
            Hook::ErrorHandler => "errorHandler",
            Hook::RequestHandler => "requestHandler",
        }
    }

    pub fn from_js_name(name: &str) -> Option<Hook> {
        [
            Hook::FetchUpstream,
            Hook::RequestModifier,
            Hook::ResponseModifier,
            Hook::ErrorHandler,
            Hook::RequestHandler,
        ]
        .into_iter()
        .find(|h| h.js_name() == name)
    }
}

/// Checks, without compiling it, that `bytes` is a component of the `dgate:module` world: it must
/// export `dgate:module/hooks@0.1.0` and import nothing but dgate's interfaces and WASI (which
/// the preview1 adapter brings). Cheap enough for the admin API to run on every module write.
pub fn check_component(bytes: &[u8]) -> Result<(), String> {
    use wit_component::DecodedWasm;
    if !bytes.starts_with(b"\0asm") {
        return Err("this is not a WebAssembly component".into());
    }
    if !wasmparser_is_component(bytes) {
        return Err(
            "this is a core WebAssembly module, not a component: build it with `dgate build`"
                .into(),
        );
    }
    let decoded = wit_component::decode(bytes)
        .map_err(|e| format!("this is not a valid component: {e:#}"))?;
    let DecodedWasm::Component(resolve, world) = decoded else {
        return Err("this is a WIT package, not a component".into());
    };
    let world = &resolve.worlds[world];
    let name = |key: &wit_parser::WorldKey, item: &wit_parser::WorldItem| match item {
        wit_parser::WorldItem::Interface { id, .. } => resolve
            .id_of(*id)
            .unwrap_or_else(|| resolve.name_world_key(key)),
        _ => resolve.name_world_key(key),
    };
    let exports: Vec<String> = world.exports.iter().map(|(k, i)| name(k, i)).collect();
    if !exports.iter().any(|e| e == "dgate:module/hooks@0.1.0") {
        return Err(format!(
            "the component does not export dgate:module/hooks@0.1.0 (it exports {})",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        ));
    }
    for (k, i) in &world.imports {
        if matches!(i, wit_parser::WorldItem::Type { .. }) {
            continue;
        }
        let n = name(k, i);
        let known = n.starts_with("wasi:")
            || ["types", "http", "documents", "cache"]
                .iter()
                .any(|i| n == format!("dgate:module/{i}@0.1.0"));
        if !known {
            return Err(format!(
                "the component imports {n}, which dgate does not provide"
            ));
        }
    }
    Ok(())
}
