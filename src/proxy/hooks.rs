//! Modules on the request path: compiling each route module once per node (the engine's disk
//! cache survives restarts), a pool of instances per module, and the calls the pipeline makes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::services::{Caches, GatewayServices};
use super::snapshot::ModuleSource;
use crate::cluster::Cluster;
use crate::modules::{Engine, EngineOptions, Instance, Limits, Module};
use crate::resources::ModuleLimits;

/// How many calls an instance serves before it is replaced (bounds what a module's globals
/// can accumulate).
const MAX_USES: u32 = 10_000;
/// Idle instances kept per module: about the peak number of requests in flight on it, so that
/// under load every call finds a warm instance instead of instantiating one.
const MAX_IDLE: usize = 64;

/// A module ready to run: compiled, with its services and idle instances.
pub struct Loaded {
    pub module: Arc<Module>,
    services: Arc<GatewayServices>,
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
    pub async fn take(&self) -> Result<Lease, crate::modules::CallError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some((instance, uses)) => Ok(Lease { instance, uses }),
            // Boxed: instantiation's state is large, and every call's future (and each hook
            // call on the proxy path) would carry room for it and copy it around.
            None => Ok(Lease {
                instance: Box::pin(self.module.instantiate(self.services.clone(), self.limits))
                    .await?,
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
type LoadCell = OnceCell<Result<Arc<Loaded>, String>>;

/// The modules of every route on this node.
pub struct Hooks {
    engine: Arc<Engine>,
    cluster: Cluster,
    caches: Caches,
    limits: Limits,
    fetch_timeout: Duration,
    max_body: usize,
    /// By namespace, name and content hash; a new payload is a new entry (in-flight requests
    /// keep the old one).
    loaded: Mutex<HashMap<ModuleKey, Arc<LoadCell>>>,
}

impl Hooks {
    pub fn new(
        cluster: Cluster,
        cache_dir: Option<PathBuf>,
        compiler: Option<PathBuf>,
        config: &crate::config::ModulesConfig,
    ) -> anyhow::Result<Hooks> {
        let memory = usize::try_from(config.memory.0).unwrap_or(usize::MAX);
        let engine = Engine::new(EngineOptions {
            cache_dir,
            compiler,
            max_memory: memory,
            ..EngineOptions::default()
        })?;
        Ok(Hooks {
            engine,
            cluster,
            caches: Caches::default(),
            limits: Limits {
                fuel: config.fuel,
                memory,
                wall: config.timeout.as_duration(),
                max_fetches: config.max_fetches,
            },
            fetch_timeout: config.fetch_timeout.as_duration(),
            max_body: usize::try_from(config.max_body_size.0).unwrap_or(usize::MAX),
            loaded: Mutex::default(),
        })
    }

    /// A module's limits: its own where it sets them, the config's elsewhere. Memory cannot
    /// exceed the config's, which is the size of the engine's instance slots.
    fn limits_for(&self, src: &ModuleSource) -> Limits {
        let own = &src.limits;
        let memory = match own.memory {
            Some(m) if m.0 > self.limits.memory as u64 => {
                tracing::warn!(
                    module = %src.name,
                    namespace = %src.namespace,
                    asked = %m,
                    allowed = self.limits.memory,
                    "module memory limit is above the gateway's modules.memory; using the gateway's"
                );
                self.limits.memory
            }
            Some(m) => m.0 as usize,
            None => self.limits.memory,
        };
        Limits {
            fuel: own.fuel.unwrap_or(self.limits.fuel),
            memory,
            wall: own.timeout.map_or(self.limits.wall, |t| t.as_duration()),
            max_fetches: own.max_fetches.unwrap_or(self.limits.max_fetches),
        }
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

    /// Largest body a module route reads into memory.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// The loaded module for `src`, compiling it on first use (once, however many requests ask).
    pub async fn get(&self, src: &Arc<ModuleSource>) -> Result<Arc<Loaded>, String> {
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
            let module = self
                .engine
                .load(&src.component)
                .await
                .map_err(|e| format!("module {:?} cannot be loaded: {e}", src.name))?;
            let services = Arc::new(GatewayServices::new(
                self.cluster.clone(),
                &src.namespace,
                &src.name,
                &self.caches,
                self.fetch_timeout,
            ));
            Ok(Arc::new(Loaded {
                module,
                services,
                idle: Mutex::default(),
                limits: self.limits_for(src),
            }))
        })
        .await
        .clone()
        .inspect(|loaded| {
            let _ = src.loaded.set(loaded.clone());
        })
    }
}
