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

mod snapshot;
mod source_map;
mod ts;
mod worker;

use std::path::Path;

pub use source_map::{SOURCE_MAP_SECTION, SourceInfo};
pub use ts::{BUILTINS, Js, imports_of, remap_positions, to_js, to_js_with};
pub use worker::{BuildLimits, BuildRequest, Builder, worker_main};

use snapshot::{componentize, wizen};
use ts::{no_libraries, to_js_importing};

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

#[cfg(test)]
mod tests;
