//! Steps 2 and 3 of a build: the embedded runtime evaluates the JS under wizer and is snapshotted
//! into a core module, which wit-component wraps into a component with the WASI preview1
//! reactor adapter.

use super::{BuildError, RUNTIME};

/// Runs the runtime's init export with the modules on stdin, and snapshots the result. Stdin
/// is `module` or `library`, then `name\nbyte length\ncode` records: the importable modules,
/// then the module.
pub(super) fn wizen(
    name: &str,
    js: &str,
    libs: &[(String, String)],
    library: bool,
) -> Result<Vec<u8>, BuildError> {
    use wasmtime_wasi::WasiCtxBuilder;
    use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

    let internal = |e: wasmtime::Error| BuildError::Internal(format!("{e:#}"));
    let wizer = {
        let mut w = wasmtime_wizer::Wizer::new();
        w.init_func("wizer.initialize");
        w
    };
    // For work on the guest: `DGATE_RUNTIME_WASM=path` builds with another runtime than the one
    // compiled in (`toolchain/build.sh` output), without rebuilding dgate.
    let runtime = match std::env::var_os("DGATE_RUNTIME_WASM") {
        Some(path) => std::fs::read(&path).map_err(|e| {
            BuildError::Internal(format!("DGATE_RUNTIME_WASM {}: {e}", path.display()))
        })?,
        None => RUNTIME.to_vec(),
    };
    let (cx, instrumented) = wizer.instrument(&runtime).map_err(internal)?;
    let engine = wasmtime::Engine::new(&wasmtime::Config::new()).map_err(internal)?;
    let module = wasmtime::Module::new(&engine, &instrumented).map_err(internal)?;
    let stderr = MemoryOutputPipe::new(64 * 1024);
    let wasi = WasiCtxBuilder::new()
        .stdin(MemoryInputPipe::new({
            let mut input = String::from(if library { "library\n" } else { "module\n" });
            for (n, code) in libs
                .iter()
                .map(|(n, c)| (n.as_str(), c.as_str()))
                .chain([(name, js)])
            {
                input.push_str(&format!("{n}\n{}\n{code}", code.len()));
            }
            input
        }))
        .stderr(stderr.clone())
        .build_p1();
    let mut store = wasmtime::Store::new(&engine, wasi);
    let mut linker = wasmtime::Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |t| t).map_err(internal)?;
    // The host imports (log, fetch, documents, ...) cannot be called while building.
    linker
        .define_unknown_imports_as_traps(&module)
        .map_err(internal)?;
    // Wasmtime's async calls need a runtime; this one lives on its own thread so that `build`
    // can be called from inside another runtime too (blocking the caller, like any CPU work).
    let run = || -> Result<Vec<u8>, BuildError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| BuildError::Internal(e.to_string()))?;
        rt.block_on(async {
            let instance = linker
                .instantiate_async(&mut store, &module)
                .await
                .map_err(internal)?;
            if let Some(init) = instance.get_func(&mut store, "_initialize") {
                init.typed::<(), ()>(&store)
                    .map_err(internal)?
                    .call_async(&mut store, ())
                    .await
                    .map_err(internal)?;
            }
            let init = instance
                .get_typed_func::<(), ()>(&mut store, "wizer.initialize")
                .map_err(internal)?;
            if let Err(e) = init.call_async(&mut store, ()).await {
                let out = String::from_utf8_lossy(&stderr.contents())
                    .trim()
                    .to_string();
                return Err(match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                    Some(_) if !out.is_empty() => BuildError::Source(out),
                    _ => BuildError::Source(format!(
                        "{name}: the module failed while loading: {e:#}{}",
                        if out.is_empty() {
                            String::new()
                        } else {
                            format!("\n{out}")
                        }
                    )),
                });
            }
            let mut state = Snapshot {
                store: &mut store,
                instance,
            };
            wizer.snapshot(&cx, &mut state).await.map_err(internal)
        })
    };
    std::thread::scope(|s| s.spawn(run).join())
        .map_err(|_| BuildError::Internal("the build thread panicked".into()))?
}

/// What wizer reads from the initialized instance.
struct Snapshot<'a, T: 'static> {
    store: &'a mut wasmtime::Store<T>,
    instance: wasmtime::Instance,
}

impl<T: Send> wasmtime_wizer::InstanceState for Snapshot<'_, T> {
    async fn global_get(
        &mut self,
        name: &str,
        _: wasmparser::ValType,
    ) -> wasmtime_wizer::SnapshotVal {
        use wasmtime::Val;
        use wasmtime_wizer::SnapshotVal;
        let global = self
            .instance
            .get_global(&mut *self.store, name)
            .expect("wizer asks for exported globals");
        match global.get(&mut *self.store) {
            Val::I32(x) => SnapshotVal::I32(x),
            Val::I64(x) => SnapshotVal::I64(x),
            Val::F32(x) => SnapshotVal::F32(x),
            Val::F64(x) => SnapshotVal::F64(x),
            Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            other => panic!("global {name} has an unsupported type: {other:?}"),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        let memory = self
            .instance
            .get_memory(&mut *self.store, name)
            .expect("wizer asks for exported memories");
        contents(memory.data(&*self.store))
    }
}

/// Wraps the snapshotted core module into a component with the WASI preview1 adapter.
pub(super) fn componentize(core: &[u8]) -> Result<Vec<u8>, BuildError> {
    let internal = |e: anyhow::Error| BuildError::Internal(format!("{e:#}"));
    wit_component::ComponentEncoder::default()
        .module(core)
        .map_err(internal)?
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .map_err(internal)?
        .validate(true)
        .encode()
        .map_err(internal)
}
