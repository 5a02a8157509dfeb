//! The engine: one wasmtime [`wasmtime::Engine`] with the pooling allocator (copy-on-write
//! memory images) and epoch interruption, the linker every module goes through, and loading a
//! component: checked, compiled once per node and cached on disk by content hash.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{DgateModule, DgateModulePre};
use super::host::Host;
use super::instance::Module;
use super::state::CallState;
use super::ticker::Ticker;
use super::{Limits, LoadError};
use crate::worker::Worker;

/// What a core module (not a component) is told.
pub(super) const NOT_A_COMPONENT: &str =
    "this is a core WebAssembly module, not a component: build it with `dgate build`";
pub(super) const NOT_WASM: &str = "this is not a WebAssembly component";

/// What an engine is configured with.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where compiled modules are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// How many instances may exist at once (the pool's size).
    pub max_instances: u32,
    /// The memory limit of the pool's slots; per-call limits can only be lower.
    pub max_memory: usize,
    /// A `dgate` binary to compile components in (`dgate __compile`), so cranelift's memory
    /// goes back to the system; `None` compiles in this process.
    pub compiler: Option<Worker>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_dir: None,
            max_instances: 256,
            max_memory: Limits::default().memory,
            compiler: None,
        }
    }
}

/// One wasmtime engine and the linker every module is instantiated through.
pub struct Engine {
    pub(super) engine: wasmtime::Engine,
    linker: Linker<CallState>,
    cache_dir: Option<PathBuf>,
    pub(super) compiler: Option<Worker>,
    /// What `dgate __compile` needs to configure an identical engine.
    pub(super) max_instances: u32,
    pub(super) max_memory: usize,
    /// Advances the epoch while calls run.
    pub(super) ticker: Arc<Ticker>,
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
        let ticker = Ticker::start(engine.clone())?;
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

    /// Compiles (or loads from the cache) a component and checks it against the world by
    /// starting it once under `limits`, the ones its calls will have (a module whose start
    /// needs more time than the default hook timeout runs where the config gives it that).
    pub async fn load(
        self: &Arc<Self>,
        bytes: &[u8],
        limits: Limits,
    ) -> Result<Arc<Module>, LoadError> {
        if !is_component(bytes) {
            return Err(LoadError::Invalid(if bytes.starts_with(b"\0asm") {
                NOT_A_COMPONENT.into()
            } else {
                NOT_WASM.into()
            }));
        }
        let hash = content_hash(bytes);
        let (component, cached) = self.compile(bytes, &hash).await?;
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
            cached,
            source: crate::build::SourceInfo::from_component(bytes).map(Arc::new),
        };
        let mut instance = module.instantiate(Host::local(), limits).await?;
        module.defined = instance.defined().await?;
        Ok(Arc::new(module))
    }

    /// The component's machine code, and whether it came from the disk cache.
    async fn compile(&self, bytes: &[u8], hash: &str) -> Result<(Component, bool), LoadError> {
        let path = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{hash}.cwasm")));
        if let Some(path) = path.as_ref().filter(|p| p.exists()) {
            // SAFETY: the file was written by `Component::serialize` of an engine with this
            // configuration (a different wasmtime or config is refused by deserialize), into a
            // directory only this process's user writes.
            match unsafe { Component::deserialize_file(&self.engine, path) } {
                Ok(c) => return Ok((c, true)),
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
                        .map_err(|e| LoadError::Serialize(format!("{e:#}")))?
                } else {
                    Vec::new()
                };
                (component, serialized)
            }
        };
        if let (Some(dir), Some(path)) = (&self.cache_dir, &path) {
            write_atomically(dir, path, &serialized).map_err(LoadError::Cache)?;
        }
        Ok((component, false))
    }
}

pub(super) fn wasm_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

pub(super) fn is_component(bytes: &[u8]) -> bool {
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
