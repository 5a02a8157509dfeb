//! `dgate build`: a TypeScript or JavaScript module becomes a `dgate:module` component.
//!
//! 1. TS → JS in process with oxc (types stripped, enums compiled, `import type` dropped; imports
//!    of the `dgate/*` built-ins kept), with a source map so errors point into the user's file.
//! 2. JS → core module: the embedded runtime (`toolchain/dgate-runtime.wasm`, QuickJS built by
//!    `toolchain/build.sh`) runs its init export under wizer with the JS on stdin and is
//!    snapshotted, module evaluated and hooks found.
//! 3. Core module → component with wit-component and the WASI preview1 reactor adapter.

//!
//! Files: `ts.rs` (step 1), `snapshot.rs` (steps 2 and 3), `source_map.rs` (pointing run-time
//! errors back into the source), `worker.rs` (builds in a child process for the gateway).

mod resolve;
mod snapshot;
mod source_map;
mod ts;
mod worker;

use std::path::Path;
use std::time::{Duration, Instant};

pub use resolve::project;
pub use source_map::{SOURCE_MAP_SECTION, SourceInfo};
pub use ts::{
    BUILTINS, HOOKS, Js, Resolved, Resolver, hook_warnings, imports_of, remap_positions, to_js,
    to_js_resolving, to_js_with,
};
pub use worker::{BuildLimits, BuildRequest, Builder, worker_main};

use snapshot::{componentize, wizen};
use ts::{by_name, no_libraries};

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
    /// The node runs its limit of builds at once and none ended in time.
    #[error("this node is running its limit of {0} module builds; try again shortly")]
    Busy(usize),
    /// The build went past its time or memory limit (a top level that loops or allocates).
    #[error("the build was stopped: {0}")]
    Limit(String),
}

/// Other modules a module may import by name: `name` → (file name, source). In the gateway,
/// the JS and TS modules of its namespace; on the command line, files next to it.
pub type Libraries<'a> = &'a dyn Fn(&str) -> Option<(String, String)>;

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
    build_resolving(file, source, &by_name(libs), library, &mut Steps::default())
}

/// Where `source` imports the name a "Could not find export 'x'" message is about: the first
/// `import` line that names it.
fn unlinked_import(message: &str, source: &str) -> Option<(usize, usize)> {
    let rest = message.split("Could not find export '").nth(1)?;
    let export = rest.split('\'').next()?;
    source.lines().enumerate().find_map(|(i, l)| {
        if !l.trim_start().starts_with("import") {
            return None;
        }
        l.match_indices(export)
            .find(|(at, _)| {
                let before = l[..*at].chars().last();
                let after = l[at + export.len()..].chars().next();
                let word = |c: Option<char>| {
                    c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
                };
                !word(before) && !word(after)
            })
            .map(|(at, _)| (i + 1, l[..at].chars().count() + 1))
    })
}

/// The first `name:line:col` in `message`.
fn first_position(message: &str, name: &str) -> Option<(usize, usize)> {
    let prefix = format!("{name}:");
    message.match_indices(&prefix).find_map(|(at, _)| {
        let rest = &message[at + prefix.len()..];
        let (line, rest) = rest.split_once(':')?;
        let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some((line.parse().ok()?, col.parse().ok()?))
    })
}

/// `globalThis.crypto` as the Web Crypto API has it (`getRandomValues`, `randomUUID`), over
/// `dgate/crypto`: what npm packages such as uuid and nanoid call.
const WEB_SHIM: (&str, &str) = (
    "dgate:web",
    "import { randomBytes, randomUUID } from \"dgate/crypto\";\n\
     if (typeof globalThis.crypto === \"undefined\") {\n\
       globalThis.crypto = {\n\
         getRandomValues(array) {\n\
           const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);\n\
           bytes.set(randomBytes(bytes.length));\n\
           return array;\n\
         },\n\
         randomUUID,\n\
       };\n\
     }\n",
);

/// Appends `dep` to `order` after what it imports (depth first; each module once).
fn declare_after_imports(
    dep: Resolved,
    resolve: Resolver<'_>,
    seen: &mut std::collections::HashSet<String>,
    order: &mut Vec<(String, String)>,
) -> Result<(), BuildError> {
    if !seen.insert(dep.id.clone()) {
        return Ok(());
    }
    let js = to_js_resolving(&dep.file, &dep.id, &dep.source, resolve)?;
    for next in js.found.iter().cloned() {
        declare_after_imports(next, resolve, seen, order)?;
    }
    order.push((dep.id, js.code));
    Ok(())
}

/// How long each step of a build took, how many modules went into it, and what looked wrong.
#[derive(Debug, Default, Clone)]
pub struct Steps {
    /// TS → JS of the module itself.
    pub parse: Duration,
    /// Finding, reading and converting what it imports.
    pub bundle: Duration,
    /// Evaluating it all in the runtime and snapshotting the result (wizer).
    pub snapshot: Duration,
    /// Making the component.
    pub encode: Duration,
    /// Modules built in besides the module itself.
    pub modules: usize,
    /// `file:line:col: warning: ...` lines (exports that look like misspelt hooks).
    pub warnings: Vec<String>,
}

/// Like [`build_with`], with imports found by `resolve` (files, packages) and the time each
/// step took in `steps`.
pub fn build_resolving(
    file: &str,
    source: &str,
    resolve: Resolver<'_>,
    library: bool,
    steps: &mut Steps,
) -> Result<Vec<u8>, BuildError> {
    let name = Path::new(file)
        .file_name()
        .map_or("module.js".into(), |n| n.to_string_lossy().into_owned());
    let started = Instant::now();
    let js = to_js_resolving(file, &name, source, resolve)?;
    steps.parse = started.elapsed();
    steps.warnings = hook_warnings(file, &js);
    let started = Instant::now();
    // Each module once, however often it is imported, after the modules it imports: the
    // runtime links a module's imports when it is declared.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::from([name.clone()]);
    for dep in js.found.iter().cloned() {
        declare_after_imports(dep, resolve, &mut seen, &mut order)?;
    }
    steps.bundle = started.elapsed();
    steps.modules = order.len();
    // Web APIs packages from npm expect, imported first (on the first line, so the source map
    // only shifts along it).
    order.insert(0, (WEB_SHIM.0.to_string(), WEB_SHIM.1.to_string()));
    let prefix = format!("import \"{}\"; ", WEB_SHIM.0);
    let mut js = js;
    js.code.insert_str(0, &prefix);
    js.map = js.map.map(|m| ts::shift_first_line(m, prefix.len()));
    let started = Instant::now();
    let core = wizen(&name, &js.code, &order, library).map_err(|e| match e {
        BuildError::Source(m) => {
            let mut m = js.remap(&name, &m);
            // The runtime names no place for an import it cannot link: the import's own.
            if let Some((line, col)) = unlinked_import(&m, source)
                && let Some(rest) = m.strip_prefix(&format!("{name}: "))
            {
                m = format!("{name}:{line}:{col}: {rest}");
            }
            let frame = first_position(&m, &name)
                .map(|(line, col)| format!("\n{}", ts::code_frame(source, line, col)))
                .unwrap_or_default();
            BuildError::Source(m.replace(&format!("{name}:"), &format!("{file}:")) + &frame)
        }
        other => other,
    })?;
    steps.snapshot = started.elapsed();
    let started = Instant::now();
    let mut component = componentize(&core)?;
    if let Some(map) = &js.map {
        let info = serde_json::json!({"file": name, "map": map.to_json_string()});
        let section = wasm_encoder::CustomSection {
            name: SOURCE_MAP_SECTION.into(),
            data: info.to_string().into_bytes().into(),
        };
        wasm_encoder::ComponentSection::append_to_component(&section, &mut component);
    }
    steps.encode = started.elapsed();
    Ok(component)
}

#[cfg(test)]
mod tests;
