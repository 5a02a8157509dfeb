//! Modules on the request path: each route module compiled once per node (the engine's disk
//! cache survives restarts), a pool of idle instances per module, and dropping what is no longer
//! served.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::OnceCell;

use super::bindings::Hook;
use super::egress::Egress;
use super::engine::{Engine, EngineOptions, content_hash};
use super::host::{Host, HostEnv, LogTo, Services};
use super::instance::{Instance, Module};
use super::metrics::{Live, ModuleHandles, ModuleMetrics};
use super::offload::Offload;
use super::{CallError, Limits, LoadError};
use crate::config::ModulesConfig;
use crate::resources::ModuleLimits;
use crate::worker::Worker;

/// A module's component as the cluster stores it, identified by namespace, name and content.
pub struct ModuleSource {
    pub namespace: String,
    pub name: String,
    /// SHA-256 of the component: a new payload is a new module to the engine.
    pub hash: String,
    pub component: Vec<u8>,
    /// The module's own limits (the rest come from the config).
    pub limits: ModuleLimits,
    /// The module once this node has loaded it: what the requests of a snapshot use, without
    /// looking it up in the [`ModuleSet`] each time.
    pub loaded: OnceLock<Arc<Loaded>>,
    /// Why this node cannot load it, once it tried.
    failed: OnceLock<Arc<LoadError>>,
    /// The version this one replaces, served until this one is loaded.
    previous: Mutex<Option<Arc<ModuleSource>>>,
    /// A load is under way (see [`ModuleSet::prepare`]).
    loading: AtomicBool,
}

/// What a request can run of a module now.
pub enum Readiness {
    /// This version, or the one it replaces while this one loads.
    Ready(Arc<Loaded>),
    /// This node cannot load it.
    Failed(Arc<LoadError>),
    /// Not loaded yet, and no earlier version to serve meanwhile.
    Loading,
}

impl ModuleSource {
    /// The component of a module resource; `None` when it has no usable one.
    pub fn from_resource(m: &crate::resources::Module) -> Option<ModuleSource> {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD as BASE64;
        let encoded = match m.module_type {
            crate::resources::ModuleType::Wasm => &m.payload,
            _ => m.component.as_ref()?,
        };
        let component = BASE64.decode(encoded.trim()).ok()?;
        Some(ModuleSource::new(
            &m.namespace,
            &m.name,
            component,
            m.limits,
        ))
    }

    /// A module not loaded yet.
    pub fn new(
        namespace: &str,
        name: &str,
        component: Vec<u8>,
        limits: ModuleLimits,
    ) -> ModuleSource {
        ModuleSource {
            namespace: namespace.to_string(),
            name: name.to_string(),
            hash: content_hash(&component),
            component,
            limits,
            loaded: OnceLock::new(),
            failed: OnceLock::new(),
            previous: Mutex::new(None),
            loading: AtomicBool::new(false),
        }
    }

    /// This version replaces `old`: until it is loaded, requests run `old` (or what `old`
    /// itself was standing in for).
    pub fn replaces(&self, old: &Arc<ModuleSource>) {
        if self.hash == old.hash && self.limits == old.limits {
            // The same module: what was loaded for it still is.
            if let Some(l) = old.loaded.get() {
                let _ = self.loaded.set(l.clone());
                return;
            }
        }
        let stand_in = if old.loaded.get().is_some() {
            Some(old.clone())
        } else {
            old.previous
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        };
        *self.previous.lock().unwrap_or_else(|p| p.into_inner()) = stand_in;
    }

    /// What a request can run now; never waits.
    pub fn readiness(&self) -> Readiness {
        if let Some(l) = self.loaded.get() {
            return Readiness::Ready(l.clone());
        }
        if let Some(e) = self.failed.get() {
            return Readiness::Failed(e.clone());
        }
        let previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        match previous.as_ref().and_then(|p| p.loaded.get()) {
            Some(l) => Readiness::Ready(l.clone()),
            None => Readiness::Loading,
        }
    }

    /// Loaded or failed: the version it replaced is no longer needed.
    fn settle(&self) {
        self.previous
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

/// How many calls an instance serves before it is replaced (bounds what a module's globals
/// can accumulate).
const MAX_USES: u32 = 10_000;

/// A module ready to run: compiled, with its services and idle instances.
pub struct Loaded {
    pub module: Arc<Module>,
    host: Arc<Host>,
    /// Idle instances: at most as many as the module may run at once.
    idle: Mutex<Vec<(Box<Instance>, u32, Live)>>,
    limits: Limits,
    /// One permit per call the module may run at once (`modules.max_concurrency`).
    calls: Arc<tokio::sync::Semaphore>,
    max_calls: u32,
    /// Every module of the node, to take idle instances from when the slots run out.
    peers: Weak<Mutex<LoadedMap>>,
    metrics: ModuleHandles,
}

/// An instance on loan from a module's pool, and the module's permit for the call; give it
/// back with [`Loaded::give_back`].
pub struct Lease {
    /// Boxed once, when made: a hook call's future holds its lease, and with the instance in
    /// it that future is past the 1 KiB up to which the allocator serves a box from its
    /// per-thread cache.
    pub instance: Box<Instance>,
    uses: u32,
    live: Live,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Loaded {
    /// An idle instance, or a fresh one from the engine's pool. Refused at once (not queued)
    /// when the module runs its limit of calls, or when every slot of the node is taken even
    /// after the idle instances of every module were let go.
    pub async fn take(&self) -> Result<Lease, CallError> {
        let permit = self.calls.clone().try_acquire_owned().map_err(|_| {
            let e = CallError::Busy(self.max_calls);
            self.metrics.refused(&e);
            e
        })?;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some((instance, uses, live)) = idle {
            return Ok(Lease {
                instance,
                uses,
                live,
                _permit: permit,
            });
        }
        // Boxed: instantiation's state is large, and every call's future (and each hook call
        // on the proxy path) would carry room for it and copy it around.
        let instance =
            match Box::pin(self.module.instantiate(self.host.clone(), self.limits)).await {
                Err(CallError::NoSlot(_)) => {
                    self.release_idle_everywhere();
                    Box::pin(self.module.instantiate(self.host.clone(), self.limits)).await
                }
                other => other,
            }
            .inspect_err(|e| self.metrics.refused(e))?;
        Ok(Lease {
            instance: Box::new(instance),
            uses: 0,
            live: Live::new(&self.metrics.instances),
            _permit: permit,
        })
    }

    /// Counts the call of `hook` that `instance` has just finished.
    pub fn record(&self, hook: Option<Hook>, instance: &Instance, failure: Option<&CallError>) {
        if let Some(hook) = hook {
            self.metrics.record(
                hook,
                instance.last_call_time().as_secs_f64(),
                instance.fuel_used(),
                failure,
            );
        }
    }

    /// Returns an instance after a call; one that failed or is worn out is dropped.
    pub fn give_back(&self, lease: Lease) {
        let uses = lease.uses + 1;
        if !lease.instance.reusable() || uses >= MAX_USES {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_calls as usize {
            idle.push((lease.instance, uses, lease.live));
        }
    }

    /// Drops the idle instances of every module of the node, freeing their slots.
    fn release_idle_everywhere(&self) {
        if let Some(peers) = self.peers.upgrade() {
            release_idle(&peers);
        }
    }
}

/// Drops the idle instances of every module in `map`, freeing their slots.
fn release_idle(map: &Mutex<LoadedMap>) {
    let all: Vec<Arc<Loaded>> = map
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .filter_map(|cell| cell.get()?.as_ref().ok().cloned())
        .collect();
    let mut released = 0;
    for loaded in all {
        let idle = std::mem::take(&mut *loaded.idle.lock().unwrap_or_else(|p| p.into_inner()));
        released += idle.len();
    }
    tracing::debug!(
        released,
        "module instance slots ran out; idle instances let go"
    );
}

/// Namespace, name, content hash and limits of a module.
type ModuleKey = (String, String, String, ModuleLimits);

/// The key of `src`'s versions in the map.
fn load_key(src: &ModuleSource) -> ModuleKey {
    (
        src.namespace.clone(),
        src.name.clone(),
        src.hash.clone(),
        src.limits,
    )
}

/// The longest pause between a node's own tries to load a module whose start ran past its
/// time limit: it tries again after 0.25, 0.5, 1, 2 and 4 s, then leaves it to a request.
const MAX_SLOW_START_PAUSE: std::time::Duration = std::time::Duration::from_secs(4);

/// A module being (or done being) compiled; every request that needs it waits on the same one.
type LoadCell = OnceCell<Result<Arc<Loaded>, Arc<LoadError>>>;
/// The modules of a node, by namespace, name, content hash and limits.
type LoadedMap = HashMap<ModuleKey, Arc<LoadCell>>;

/// The modules of every route on this node.
pub struct ModuleSet {
    engine: Arc<Engine>,
    env: Arc<HostEnv>,
    limits: Limits,
    max_body: usize,
    /// By namespace, name and content hash; a new payload is a new entry (in-flight requests
    /// keep the old one).
    loaded: Arc<Mutex<LoadedMap>>,
    /// The version of each module compiled ahead of its write, kept until it is applied.
    warmed: Mutex<HashMap<(String, String), (String, ModuleLimits)>>,
    /// Calls of one module at once.
    max_calls: u32,
    metrics: ModuleMetrics,
    /// Where long calls go on.
    offload: Offload,
}

impl ModuleSet {
    /// The modules of a node with `config`'s limits, whose documents are `services`; compiled
    /// modules are cached in `cache_dir`, and compiled in `compiler` when there is one.
    pub fn new(
        services: Arc<dyn Services>,
        cache_dir: Option<PathBuf>,
        compiler: Option<Worker>,
        config: &ModulesConfig,
        egress: Egress,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<ModuleSet> {
        let limits = Limits::from_config(config);
        let engine = Engine::new(EngineOptions {
            cache_dir,
            compiler,
            max_memory: limits.memory,
            max_instances: config.max_instances,
        })?;
        Ok(ModuleSet {
            engine,
            env: HostEnv::new(services, config, egress, LogTo::Tracing),
            limits,
            max_body: usize::try_from(config.max_body_size.0).unwrap_or(usize::MAX),
            metrics: ModuleMetrics::register(registry)?,
            loaded: Arc::default(),
            warmed: Mutex::default(),
            max_calls: config.max_concurrency,
            offload: Offload::new(std::thread::available_parallelism().map_or(1, |n| n.get())),
        })
    }

    /// Drops the modules `keep` says are no longer served; requests still running one finish
    /// with it, and its idle instances go with the last of them.
    /// Modules compiled ahead of their write ([`ModuleSet::warm`]) stay until it is applied.
    pub fn retain(&self, keep: impl Fn(&str, &str, &str, &ModuleLimits) -> bool) {
        let warmed = self.warmed.lock().unwrap_or_else(|p| p.into_inner());
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        loaded.retain(|(ns, name, hash, limits), _| {
            keep(ns, name, hash, limits)
                || warmed
                    .get(&(ns.clone(), name.clone()))
                    .is_some_and(|(h, l)| h == hash && l == limits)
        });
    }

    /// Compiles and loads `src` ahead of its write, so that its routes run it as soon as the
    /// write is applied here: what the admin API does before writing a module. A start past
    /// the time limit is tried once more, and refused the second time (a busy machine may
    /// delay one start; a module that cannot start in time is not written).
    pub async fn warm(&self, src: &Arc<ModuleSource>) -> Result<(), Arc<LoadError>> {
        self.warmed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                (src.namespace.clone(), src.name.clone()),
                (src.hash.clone(), src.limits),
            );
        let mut loaded = self.get(src).await;
        if matches!(&loaded, Err(e) if e.is_timeout()) {
            loaded = self.get(src).await;
        }
        match loaded {
            Err(e) if e.is_timeout() => Err(Arc::new(LoadError::Invalid(e.to_string()))),
            loaded => loaded.map(|_| ()),
        }
    }

    /// Whether this node has the version `hash` of a module ready to run: `Ok(true)` once
    /// compiled and loaded, `Ok(false)` before (or before the write reached it), `Err` with
    /// why when it cannot load it.
    pub fn status(&self, namespace: &str, name: &str, hash: &str) -> Result<bool, String> {
        let loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let mut ready = Ok(false);
        for ((ns, n, h, _), cell) in loaded.iter() {
            if ns != namespace || n != name || h != hash {
                continue;
            }
            match cell.get() {
                Some(Ok(_)) => return Ok(true),
                Some(Err(e)) => ready = Err(e.to_string()),
                None => {}
            }
        }
        ready
    }

    /// How many module versions are loaded.
    #[cfg(test)]
    pub fn loaded_count(&self) -> usize {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Where long hook calls go on (see [`Offload`]).
    pub fn offload(&self) -> &Offload {
        &self.offload
    }

    /// Where modules' outbound requests may go.
    pub fn egress(&self) -> &Egress {
        self.env.egress()
    }

    /// Largest body a module route reads into memory.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Starts loading `src` on the hooks' threads unless it is loaded, failed or under way;
    /// when this node already has it (the admin API compiled it before writing it), it is
    /// ready at once.
    pub fn prepare(self: &Arc<Self>, src: &Arc<ModuleSource>) {
        if src.loaded.get().is_some() || src.failed.get().is_some() {
            return;
        }
        {
            let mut warmed = self.warmed.lock().unwrap_or_else(|p| p.into_inner());
            let key = (src.namespace.clone(), src.name.clone());
            if warmed
                .get(&key)
                .is_some_and(|(h, l)| *h == src.hash && *l == src.limits)
            {
                warmed.remove(&key);
            }
        }
        if let Some(done) = self.cell(src).get() {
            match done {
                Ok(loaded) => {
                    let _ = src.loaded.set(loaded.clone());
                }
                Err(e) => {
                    let _ = src.failed.set(e.clone());
                }
            }
            src.settle();
            return;
        }
        if src.loading.swap(true, Ordering::AcqRel) {
            return;
        }
        let (set, src) = (self.clone(), src.clone());
        self.offload.spawn(async move {
            // A start past its time limit (a busy moment) is tried again here a few times, so
            // that the module becomes ready without waiting for a request (`deploy --wait`).
            let mut pause = std::time::Duration::from_millis(250);
            loop {
                match set.get(&src).await {
                    Ok(_) => src.settle(),
                    Err(e)
                        if e.is_timeout()
                            && pause <= MAX_SLOW_START_PAUSE
                            && set.wants(&src) =>
                    {
                        tracing::warn!(module = %src.name, namespace = %src.namespace, error = %e, "module not loaded; trying again in {pause:?}");
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                        continue;
                    }
                    Err(e) if e.is_transient() => {
                        tracing::warn!(module = %src.name, namespace = %src.namespace, error = %e, "module not loaded; the next request tries again");
                        src.loading.store(false, Ordering::Release);
                    }
                    Err(e) => {
                        tracing::error!(module = %src.name, namespace = %src.namespace, error = %e, "module cannot be loaded on this node");
                        let _ = src.failed.set(e);
                        src.settle();
                    }
                }
                return;
            }
        });
    }

    /// Whether `src` is still a version this node's state has (not replaced or deleted since).
    fn wants(&self, src: &ModuleSource) -> bool {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&load_key(src))
    }

    /// The map's cell for `src`, made if new; older versions of the module leave the map
    /// (requests holding them finish with their `Arc`).
    fn cell(&self, src: &ModuleSource) -> Arc<LoadCell> {
        let key = load_key(src);
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        loaded.retain(|(ns, name, hash, limits), _| {
            !(ns == &key.0 && name == &key.1 && (hash != &key.2 || limits != &key.3))
        });
        loaded.entry(key).or_default().clone()
    }

    /// The loaded module for `src`, compiling it on first use (once, however many requests ask).
    pub async fn get(&self, src: &Arc<ModuleSource>) -> Result<Arc<Loaded>, Arc<LoadError>> {
        if let Some(loaded) = src.loaded.get() {
            return Ok(loaded.clone());
        }
        let cell = self.cell(src);
        // A load that failed for want of room is not remembered: the next request tries again.
        let loaded = cell
            .get_or_try_init(|| async {
                let started = std::time::Instant::now();
                let limits = self
                    .limits
                    .for_module(&src.name, &src.namespace, &src.limits);
                let module = match self.engine.load(&src.component, limits).await {
                    Err(LoadError::NoSlot(_)) => {
                        release_idle(&self.loaded);
                        self.engine.load(&src.component, limits).await
                    }
                    other => other,
                };
                if let Ok(module) = &module {
                    tracing::info!(
                        target: "dgate::modules",
                        namespace = %src.namespace,
                        module = %src.name,
                        hash = &module.hash[..12],
                        size = src.component.len(),
                        from_cache = module.cached,
                        took_ms = started.elapsed().as_millis() as u64,
                        "{}",
                        if module.cached {
                            "module loaded (compiled earlier, from the disk cache)"
                        } else {
                            "module compiled"
                        }
                    );
                }
                match module {
                    Ok(module) => Ok(Ok(Arc::new(Loaded {
                        module,
                        host: self.env.host(&src.namespace, &src.name),
                        idle: Mutex::default(),
                        calls: Arc::new(tokio::sync::Semaphore::new(self.max_calls as usize)),
                        max_calls: self.max_calls,
                        peers: Arc::downgrade(&self.loaded),
                        metrics: self.metrics.module(&src.namespace, &src.name),
                        limits,
                    }))),
                    Err(e) if e.is_transient() => Err(Arc::new(e)),
                    Err(e) => Ok(Err(Arc::new(e))),
                }
            })
            .await?
            .clone()?;
        let _ = src.loaded.set(loaded.clone());
        Ok(loaded)
    }
}
