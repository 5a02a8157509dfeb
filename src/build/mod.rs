//! `dgate build`: a TypeScript or JavaScript module becomes a `dgate:module` component.
//!
//! 1. TS → JS in process with oxc (types stripped, enums compiled, `import type` dropped; imports
//!    of the `dgate/*` built-ins kept), with a source map so errors point into the user's file.
//! 2. JS → core module: the embedded runtime (`toolchain/dgate-runtime.wasm`, QuickJS built by
//!    `toolchain/build.sh`) runs its init export under wizer with the JS on stdin and is
//!    snapshotted, module evaluated and hooks found.
//! 3. Core module → component with wit-component and the WASI preview1 reactor adapter.

use std::path::Path;

use oxc::allocator::Allocator;
use oxc::codegen::{Codegen, CodegenOptions};
use oxc::parser::Parser;
use oxc::semantic::SemanticBuilder;
use oxc::span::SourceType;
use oxc::transformer::{TransformOptions, Transformer};

/// The JS runtime guest, built by `toolchain/build.sh` and committed.
pub const RUNTIME: &[u8] = include_bytes!("../../toolchain/dgate-runtime.wasm");

/// Why a build failed. `Source` errors carry `file:line:col: message` lines for the user.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Source(String),
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("internal build error: {0}")]
    Internal(String),
}

/// JS produced from a module's source, with what is needed to map positions back.
pub struct Js {
    pub code: String,
    map: Option<oxc_sourcemap::SourceMap<'static>>,
    /// The other modules it imports by name (not the built-ins).
    pub imports: Vec<String>,
}

/// Other modules a module may import by name: `name` → (file name, source). In the gateway,
/// the JS and TS modules of its namespace; on the command line, files next to it.
pub type Libraries<'a> = &'a dyn Fn(&str) -> Option<(String, String)>;

/// No modules to import besides the built-ins.
fn no_libraries(_: &str) -> Option<(String, String)> {
    None
}

/// `lib` and `./lib` name the module `lib`; anything else is not a module name.
fn library_name(specifier: &str) -> Option<&str> {
    let name = specifier.strip_prefix("./").unwrap_or(specifier);
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains('/')
        && !BUILTINS.contains(&name);
    ok.then_some(name)
}

/// The modules `source` imports by name (for finding which modules depend on another). A source
/// that does not parse imports nothing.
pub fn imports_of(file: &str, source: &str) -> Vec<String> {
    let source_type = SourceType::from_path(file)
        .unwrap_or_default()
        .with_module(true);
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, source_type).parse();
    imported(&parsed.program)
        .into_iter()
        .filter_map(|(spec, _)| library_name(&spec).map(str::to_string))
        .collect()
}

/// TS or JS (by `file`'s extension) to plain JS. Syntax and type-stripping errors come back as
/// `file:line:col: message`, one per line.
pub fn to_js(file: &str, source: &str) -> Result<Js, BuildError> {
    to_js_importing(file, source, &|_| false)
}

/// Like [`to_js`], allowing imports of the modules in `libs` (not included in the output).
pub fn to_js_with(file: &str, source: &str, libs: Libraries<'_>) -> Result<Js, BuildError> {
    to_js_importing(file, source, &|n| libs(n).is_some())
}

/// Like [`to_js`], allowing imports of the modules `known` says exist.
fn to_js_importing(
    file: &str,
    source: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<Js, BuildError> {
    let source_type = SourceType::from_path(file)
        .unwrap_or_default()
        .with_module(true);
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, source_type).parse();
    let located = |diags: Vec<oxc::diagnostics::OxcDiagnostic>| {
        let lines: Vec<String> = diags
            .iter()
            .map(|d| {
                let offset = d.labels.first().map_or(0, |l| l.offset());
                let (line, col) = line_col(source, offset as usize);
                format!("{file}:{line}:{col}: {}", d.message)
            })
            .collect();
        BuildError::Source(lines.join("\n"))
    };
    if parsed.panicked || parsed.diagnostics.has_errors() {
        return Err(located(parsed.diagnostics.errors().cloned().collect()));
    }
    let mut program = parsed.program;
    let imports = imported(&program);
    let mut libraries = Vec::new();
    let mut bad = Vec::new();
    for (spec, offset) in &imports {
        if BUILTINS.contains(&spec.as_str()) {
            continue;
        }
        match library_name(spec) {
            Some(name) if known(name) => {
                if !libraries.iter().any(|l| l == name) {
                    libraries.push(name.to_string());
                }
            }
            _ => {
                let (line, col) = line_col(source, *offset as usize);
                bad.push(format!(
                    "{file}:{line}:{col}: cannot import {spec:?}: a module may import the built-ins ({}) and other modules of its namespace by name",
                    BUILTINS.join(", ")
                ));
            }
        }
    }
    if !bad.is_empty() {
        return Err(BuildError::Source(bad.join("\n")));
    }
    let semantic = SemanticBuilder::new()
        .with_check_syntax_error(true)
        .with_enum_eval(true)
        .build(&program);
    if semantic.diagnostics.has_errors() {
        return Err(located(semantic.diagnostics.errors().cloned().collect()));
    }
    let scoping = semantic.semantic.into_scoping();
    let options = TransformOptions::default();
    let transformed = Transformer::new(&allocator, Path::new(file), &options)
        .build_with_scoping(scoping, &mut program);
    if transformed.diagnostics.has_errors() {
        return Err(located(transformed.diagnostics.errors().cloned().collect()));
    }
    let out = Codegen::new()
        .with_options(CodegenOptions {
            source_map_path: Some(file.into()),
            ..CodegenOptions::default()
        })
        .build(&program);
    Ok(Js {
        code: out.code,
        map: out.map.map(|m| m.into_owned()),
        imports: libraries,
    })
}

/// The modules a module may import: the runtime's built-ins.
pub const BUILTINS: [&str; 5] = [
    "dgate",
    "dgate/crypto",
    "dgate/http",
    "dgate/state",
    "dgate/storage",
];

/// Every static import and re-export: the specifier and where it is.
fn imported(program: &oxc::ast::ast::Program<'_>) -> Vec<(String, u32)> {
    use oxc::ast::ast::Statement;
    program
        .body
        .iter()
        .filter_map(|s| match s {
            Statement::ImportDeclaration(d) => Some(&d.source),
            Statement::ExportAllDeclaration(d) => Some(&d.source),
            Statement::ExportFromDeclaration(d) => Some(&d.source),
            _ => None,
        })
        .map(|src| (src.value.to_string(), src.span.start))
        .collect()
}

/// 1-based line and column of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

impl Js {
    fn remap(&self, file: &str, message: &str) -> String {
        match &self.map {
            Some(map) => remap_positions(map, file, message),
            None => message.to_string(),
        }
    }
}

/// Rewrites `file:line:col` positions in generated JS (1-based, as QuickJS prints them) into
/// positions in the source the map came from.
pub fn remap_positions(map: &oxc_sourcemap::SourceMap<'_>, file: &str, message: &str) -> String {
    let table = map.generate_lookup_table();
    let prefix = format!("{file}:");
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find(&prefix) {
        out.push_str(&rest[..at + prefix.len()]);
        rest = &rest[at + prefix.len()..];
        let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let l_end = digits(rest);
        let (Ok(line), true) = (rest[..l_end].parse::<u32>(), rest[l_end..].starts_with(':'))
        else {
            continue;
        };
        let after = &rest[l_end + 1..];
        let c_end = digits(after);
        let Ok(col) = after[..c_end].parse::<u32>() else {
            continue;
        };
        // The source map counts from 0.
        match map.lookup_token(&table, line.saturating_sub(1), col.saturating_sub(1)) {
            Some(t) => out.push_str(&format!("{}:{}", t.get_src_line() + 1, t.get_src_col() + 1)),
            None => out.push_str(&format!("{line}:{col}")),
        }
        rest = &after[c_end..];
    }
    out.push_str(rest);
    out
}

/// The custom section that carries a component's module name and source map, so errors at run
/// time point into the user's file: `{"file": "mod.ts", "map": <source map JSON>}`.
pub const SOURCE_MAP_SECTION: &str = "dgate:source-map";

/// Where a component's JS came from: its file name (as stack traces name it) and source map.
pub struct SourceInfo {
    pub file: String,
    map: oxc_sourcemap::SourceMap<'static>,
}

impl SourceInfo {
    /// Reads the [`SOURCE_MAP_SECTION`] of a component, if it has one that parses.
    pub fn from_component(component: &[u8]) -> Option<SourceInfo> {
        for payload in wasmparser::Parser::new(0).parse_all(component) {
            let Ok(wasmparser::Payload::CustomSection(section)) = payload else {
                continue;
            };
            if section.name() != SOURCE_MAP_SECTION {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(section.data()).ok()?;
            let file = v.get("file")?.as_str()?.to_string();
            let map = oxc_sourcemap::SourceMap::from_json_string(v.get("map")?.as_str()?)
                .ok()?
                .into_owned();
            return Some(SourceInfo { file, map });
        }
        None
    }

    /// `text` with positions in the generated JS turned into positions in the source.
    pub fn remap(&self, text: &str) -> String {
        remap_positions(&self.map, &self.file, text)
    }
}

/// Builds the component for the module `file` with `source`. CPU-bound for about a second: from
/// async code, call it on a blocking thread.
pub fn build(file: &str, source: &str) -> Result<Vec<u8>, BuildError> {
    build_with(file, source, &no_libraries, false)
}

/// Like [`build`], with the modules `libs` provides importable by name: each imported one (and
/// what it imports) is built into the component, declared under its name before the module.
/// A `library` may export no hook (it is there for other modules to import).
pub fn build_with(
    file: &str,
    source: &str,
    libs: Libraries<'_>,
    library: bool,
) -> Result<Vec<u8>, BuildError> {
    let known = |n: &str| libs(n).is_some();
    let js = to_js_importing(file, source, &known)?;
    // Dependencies first; a module imported twice (or in a cycle) is built once.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<String> = js.imports.iter().rev().cloned().collect();
    while let Some(lib) = stack.pop() {
        if !seen.insert(lib.clone()) {
            continue;
        }
        let (lib_file, lib_source) = libs(&lib).ok_or_else(|| {
            BuildError::Source(format!("{file}: the imported module {lib:?} disappeared"))
        })?;
        let lib_js = to_js_importing(&lib_file, &lib_source, &known)?;
        stack.extend(lib_js.imports.iter().rev().cloned());
        order.push((lib, lib_js.code));
    }
    let name = Path::new(file)
        .file_name()
        .map_or("module.js".into(), |n| n.to_string_lossy().into_owned());
    let core = wizen(&name, &js.code, &order, library).map_err(|e| match e {
        BuildError::Source(m) => BuildError::Source(
            js.remap(&name, &m)
                .replace(&format!("{name}:"), &format!("{file}:")),
        ),
        other => other,
    })?;
    let mut component = componentize(&core)?;
    if let Some(map) = &js.map {
        let info = serde_json::json!({"file": name, "map": map.to_json_string()});
        let section = wasm_encoder::CustomSection {
            name: SOURCE_MAP_SECTION.into(),
            data: info.to_string().into_bytes().into(),
        };
        wasm_encoder::ComponentSection::append_to_component(&section, &mut component);
    }
    Ok(component)
}

/// Runs the runtime's init export with the modules on stdin, and snapshots the result. Stdin
/// is `module` or `library`, then `name\nbyte length\ncode` records: the importable modules,
/// then the module.
fn wizen(
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
fn componentize(core: &[u8]) -> Result<Vec<u8>, BuildError> {
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

#[cfg(test)]
mod tests;

/// One build, as the gateway asks for it: a module, the modules it may import by name, and
/// whether it may be a library (no hooks).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct BuildRequest {
    pub file: String,
    pub source: String,
    /// Importable modules: name → (file name, source).
    pub libraries: std::collections::BTreeMap<String, (String, String)>,
    pub library: bool,
}

impl BuildRequest {
    fn run(&self) -> Result<Vec<u8>, BuildError> {
        build_with(
            &self.file,
            &self.source,
            &|n| self.libraries.get(n).cloned(),
            self.library,
        )
    }
}

/// The exit status of `dgate __build` for an error in the module's source (its message on
/// stderr); any other failure exits with 1.
pub const WORKER_SOURCE_ERROR: i32 = 65;

/// Where the gateway builds modules.
#[derive(Debug, Clone, Default)]
pub enum Builder {
    /// On a blocking thread of this process (tests, and where no `dgate` binary is at hand).
    #[default]
    InProcess,
    /// In a child process running `<binary> __build`: the memory a build takes (oxc, wizer,
    /// cranelift compiling the runtime) goes back to the system when it exits, and a build
    /// that crashes takes only itself down.
    Worker(std::path::PathBuf),
}

impl Builder {
    pub async fn build(&self, req: BuildRequest) -> Result<Vec<u8>, BuildError> {
        match self {
            Builder::InProcess => tokio::task::spawn_blocking(move || req.run())
                .await
                .map_err(|e| BuildError::Internal(format!("build task: {e}")))?,
            Builder::Worker(exe) => {
                use tokio::io::AsyncWriteExt as _;
                let input =
                    serde_json::to_vec(&req).map_err(|e| BuildError::Internal(e.to_string()))?;
                let spawned = tokio::process::Command::new(exe)
                    .arg("__build")
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true)
                    .spawn();
                let mut child = match spawned {
                    Ok(child) => child,
                    Err(e) => {
                        // The binary may have been replaced or removed (an upgrade in place).
                        tracing::warn!(exe = %exe.display(), error = %e, "cannot start the build worker; building in-process");
                        return Box::pin(Builder::InProcess.build(req)).await;
                    }
                };
                let mut stdin = child
                    .stdin
                    .take()
                    .ok_or_else(|| BuildError::Internal("the build worker has no stdin".into()))?;
                let writing = async move {
                    let r = stdin.write_all(&input).await;
                    drop(stdin);
                    r
                };
                let (written, out) = tokio::join!(writing, child.wait_with_output());
                let out = out.map_err(|e| BuildError::Internal(format!("build worker: {e}")))?;
                let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
                match out.status.code() {
                    Some(0) if written.is_ok() => Ok(out.stdout),
                    Some(WORKER_SOURCE_ERROR) => Err(BuildError::Source(stderr)),
                    _ => Err(BuildError::Internal(format!(
                        "the build worker failed ({}): {stderr}",
                        out.status
                    ))),
                }
            }
        }
    }
}

/// `dgate __build`: reads a [`BuildRequest`] as JSON on stdin, writes the component to stdout.
pub fn worker_main() -> i32 {
    use std::io::{Read as _, Write as _};
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("cannot read the build request: {e}");
        return 1;
    }
    let req: BuildRequest = match serde_json::from_slice(&input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("invalid build request: {e}");
            return 1;
        }
    };
    match req.run() {
        Ok(component) => match std::io::stdout().write_all(&component) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("cannot write the component: {e}");
                1
            }
        },
        Err(BuildError::Source(m)) => {
            eprintln!("{m}");
            WORKER_SOURCE_ERROR
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
