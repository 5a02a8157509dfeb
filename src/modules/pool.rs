//! Modules on the request path: each route module compiled once per node (the engine's disk
//! cache survives restarts), a pool of idle instances per module, and dropping what is no longer
//! served.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::OnceCell;

use super::egress::Egress;
use super::engine::{Engine, EngineOptions, content_hash};
use super::host::{Host, HostEnv, LogTo, Services};
use super::instance::{Instance, Module};
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
        let hash = content_hash(&component);
        Some(ModuleSource {
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            hash,
            component,
            limits: m.limits,
            loaded: OnceLock::new(),
        })
    }
}

/// How many calls an instance serves before it is replaced (bounds what a module's globals
/// can accumulate).
const MAX_USES: u32 = 10_000;
/// Idle instances kept per module: about the peak number of requests in flight on it, so that
/// under load every call finds a warm instance instead of instantiating one.
const MAX_IDLE: usize = 64;

/// A module ready to run: compiled, with its services and idle instances.
pub struct Loaded {
    pub module: Arc<Module>,
    host: Arc<Host>,
    idle: Mutex<Vec<(Instance, u32)>>,
    limits: Limits,
}

/// An instance on loan from a module's pool; give it back with [`Loaded::give_back`].
pub struct Lease {
    pub instance: Instance,
    uses: u32,
}

impl Loaded {
    /// An idle instance, or a fresh one from the engine's pool.
    pub async fn take(&self) -> Result<Lease, CallError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some((instance, uses)) => Ok(Lease { instance, uses }),
            // Boxed: instantiation's state is large, and every call's future (and each hook
            // call on the proxy path) would carry room for it and copy it around.
            None => Ok(Lease {
                instance: Box::pin(self.module.instantiate(self.host.clone(), self.limits)).await?,
                uses: 0,
            }),
        }
    }

    /// Returns an instance after a call; one that failed or is worn out is dropped.
    pub fn give_back(&self, lease: Lease) {
        let uses = lease.uses + 1;
        if !lease.instance.reusable() || uses >= MAX_USES {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((lease.instance, uses));
        }
    }
}

/// Namespace, name, content hash and limits of a module.
type ModuleKey = (String, String, String, ModuleLimits);
/// A module being (or done being) compiled; every request that needs it waits on the same one.
type LoadCell = OnceCell<Result<Arc<Loaded>, Arc<LoadError>>>;

/// The modules of every route on this node.
pub struct ModuleSet {
    engine: Arc<Engine>,
    env: Arc<HostEnv>,
    limits: Limits,
    max_body: usize,
    /// By namespace, name and content hash; a new payload is a new entry (in-flight requests
    /// keep the old one).
    loaded: Mutex<HashMap<ModuleKey, Arc<LoadCell>>>,
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
    ) -> anyhow::Result<ModuleSet> {
        let limits = Limits::from_config(config);
        let engine = Engine::new(EngineOptions {
            cache_dir,
            compiler,
            max_memory: limits.memory,
            ..EngineOptions::default()
        })?;
        Ok(ModuleSet {
            engine,
            env: HostEnv::new(services, config, egress, LogTo::Tracing),
            limits,
            max_body: usize::try_from(config.max_body_size.0).unwrap_or(usize::MAX),
            loaded: Mutex::default(),
        })
    }

    /// Drops the modules `keep` says are no longer served; requests still running one finish
    /// with it, and its idle instances go with the last of them.
    pub fn retain(&self, keep: impl Fn(&str, &str, &str, &ModuleLimits) -> bool) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        loaded.retain(|(ns, name, hash, limits), _| keep(ns, name, hash, limits));
    }

    /// How many module versions are loaded.
    #[cfg(test)]
    pub fn loaded_count(&self) -> usize {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Where modules' outbound requests may go.
    pub fn egress(&self) -> &Egress {
        self.env.egress()
    }

    /// Largest body a module route reads into memory.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// The loaded module for `src`, compiling it on first use (once, however many requests ask).
    pub async fn get(&self, src: &Arc<ModuleSource>) -> Result<Arc<Loaded>, Arc<LoadError>> {
        if let Some(loaded) = src.loaded.get() {
            return Ok(loaded.clone());
        }
        let key = (
            src.namespace.clone(),
            src.name.clone(),
            src.hash.clone(),
            src.limits,
        );
        let cell = {
            let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
            // Older versions of this module go: requests holding them finish with their Arc.
            loaded.retain(|(ns, name, hash, limits), _| {
                !(ns == &key.0 && name == &key.1 && (hash != &key.2 || limits != &key.3))
            });
            loaded.entry(key).or_default().clone()
        };
        cell.get_or_init(|| async {
            let module = self.engine.load(&src.component).await.map_err(Arc::new)?;
            Ok(Arc::new(Loaded {
                module,
                host: self.env.host(&src.namespace, &src.name),
                idle: Mutex::default(),
                limits: self
                    .limits
                    .for_module(&src.name, &src.namespace, &src.limits),
            }))
        })
        .await
        .clone()
        .inspect(|loaded| {
            let _ = src.loaded.set(loaded.clone());
        })
    }
}
