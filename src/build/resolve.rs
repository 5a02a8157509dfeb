//! How `dgate build` finds what a module on disk imports: files by relative path (with or
//! without `.js`/`.ts` extensions, as `tsc` under `nodenext` or `bundler` writes them), modules
//! next to it by name (as a gateway namespace's modules import each other), and ES module
//! packages from `node_modules` (their `exports`, `module` or `main` entry; CommonJS files are
//! wrapped, with the `require("...")` calls they make with a literal resolved the same way).
//!
//! Each module found gets an id: its path relative to the entry's directory (an absolute path
//! when it lies outside), which is what its imports are rewritten to and its name in the
//! component.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::ts::{BUILTINS, Resolved};

/// Extensions tried, in order, for an import without one.
const EXTENSIONS: [&str; 4] = ["ts", "mts", "js", "mjs"];

/// The `exports` conditions dgate's runtime meets, by preference: it is neither Node.js nor a
/// CommonJS loader, and it has the web APIs a browser build expects.
const CONDITIONS: [&str; 6] = ["dgate", "worker", "browser", "import", "module", "default"];

/// The resolver for the module `entry` on disk.
pub fn project(entry: &Path) -> impl Fn(&str, &str) -> Result<Option<Resolved>, String> + use<> {
    let root = entry
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    move |from, specifier| {
        let importer = path_of(&root, from);
        let dir = importer.parent().unwrap_or(&root).to_path_buf();
        let path = if specifier.starts_with("./") || specifier.starts_with("../") {
            match file_at(&dir.join(specifier)) {
                Some(p) => p,
                None => {
                    return Err(format!(
                        "no file {} (tried the extensions {})",
                        dir.join(specifier).display(),
                        EXTENSIONS.join(", ")
                    ));
                }
            }
        } else if specifier.starts_with('/') {
            return Err("absolute paths are not importable: use a relative one".into());
        } else if let Some(p) = sibling(&dir, specifier) {
            // A module next to the importer, by name, as in a gateway namespace.
            p
        } else {
            match package(&dir, specifier)? {
                Some(p) => p,
                None if is_node_builtin(specifier) => {
                    return Err(format!(
                        "{specifier:?} is a Node.js module: the dgate runtime has no Node.js APIs (see the dgate/* built-ins)"
                    ));
                }
                None => return Ok(None),
            }
        };
        let source = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let id = id_of(&root, &path);
        Ok(Some(Resolved {
            id,
            file: path.display().to_string(),
            source,
        }))
    }
}

/// The file a module id stands for.
fn path_of(root: &Path, id: &str) -> PathBuf {
    if Path::new(id).is_absolute() {
        PathBuf::from(id)
    } else {
        root.join(id)
    }
}

/// A path's id: relative to `root` when inside it, else absolute; never starting with `.`
/// (the runtime would take it as relative to its importer).
fn id_of(root: &Path, path: &Path) -> String {
    let path = normalize(path);
    let root = normalize(root);
    match path.strip_prefix(&root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
        _ => std::path::absolute(&path)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned(),
    }
}

/// `a/./b/../c` → `a/c`, without touching the disk.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` as a module file: itself, with an extension added, a `.js` written for a `.ts` file
/// (as TypeScript's own imports are), or a directory's `index`.
fn file_at(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    let text = path.to_string_lossy();
    for (written, actual) in [(".js", ".ts"), (".mjs", ".mts"), (".js", ".tsx")] {
        if let Some(stem) = text.strip_suffix(written) {
            let p = PathBuf::from(format!("{stem}{actual}"));
            if p.is_file() {
                return Some(p);
            }
        }
    }
    EXTENSIONS
        .iter()
        .map(|ext| PathBuf::from(format!("{text}.{ext}")))
        .chain(
            EXTENSIONS
                .iter()
                .map(|ext| path.join(format!("index.{ext}"))),
        )
        .find(|p| p.is_file())
}

/// `name` as a module next to the importer: `name.ts`, `.mts`, `.js` or `.mjs` in `dir`.
fn sibling(dir: &Path, name: &str) -> Option<PathBuf> {
    if name.contains('/') || BUILTINS.contains(&name) {
        return None;
    }
    EXTENSIONS
        .iter()
        .map(|ext| dir.join(format!("{name}.{ext}")))
        .find(|p| p.is_file())
}

/// The file a bare import names in a `node_modules` of `dir` or above: `None` when no such
/// package is installed, `Err` when it is but names nothing dgate can bundle.
fn package(dir: &Path, specifier: &str) -> Result<Option<PathBuf>, String> {
    let mut parts = specifier.splitn(if specifier.starts_with('@') { 3 } else { 2 }, '/');
    let name = if specifier.starts_with('@') {
        match (parts.next(), parts.next()) {
            (Some(scope), Some(n)) => format!("{scope}/{n}"),
            _ => return Ok(None),
        }
    } else {
        parts.next().unwrap_or_default().to_string()
    };
    let subpath = parts.next().map(|s| format!("./{s}"));
    let Some(pkg) = dir
        .ancestors()
        .map(|d| d.join("node_modules").join(&name))
        .find(|p| p.is_dir())
    else {
        return Ok(None);
    };
    let manifest: Value = match std::fs::read_to_string(pkg.join("package.json")) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("{}/package.json: {e}", pkg.display()))?,
        Err(_) => Value::Null,
    };
    let wanted = subpath.as_deref().unwrap_or(".");
    if let Some(exports) = manifest.get("exports") {
        let target = export_target(exports, wanted).ok_or_else(|| {
            format!(
                "package {name} exports no ES module entry for {wanted:?} (the conditions dgate meets: {})",
                CONDITIONS.join(", ")
            )
        })?;
        return file_at(&pkg.join(&target))
            .map(Some)
            .ok_or_else(|| format!("package {name}: {target} does not exist"));
    }
    let entry = match &subpath {
        Some(sub) => sub.clone(),
        None => ["module", "main"]
            .iter()
            .find_map(|f| manifest.get(*f).and_then(Value::as_str))
            .unwrap_or("index")
            .to_string(),
    };
    file_at(&pkg.join(&entry))
        .map(Some)
        .ok_or_else(|| format!("package {name}: {entry} does not exist"))
}

/// What a package's `exports` maps `subpath` (`.` or `./x`) to, under [`CONDITIONS`].
fn export_target(exports: &Value, subpath: &str) -> Option<String> {
    let is_map = exports
        .as_object()
        .is_some_and(|o| o.keys().any(|k| k.starts_with('.')));
    if !is_map {
        return (subpath == ".")
            .then(|| conditional(exports, None))
            .flatten();
    }
    let map = exports.as_object()?;
    if let Some(v) = map.get(subpath) {
        return conditional(v, None);
    }
    // `"./features/*": "./src/features/*.js"`: the longest matching prefix wins.
    map.iter()
        .filter_map(|(k, v)| {
            let (prefix, suffix) = k.split_once('*')?;
            let star = subpath.strip_prefix(prefix)?.strip_suffix(suffix)?;
            Some((prefix.len(), v, star))
        })
        .max_by_key(|(len, _, _)| *len)
        .and_then(|(_, v, star)| conditional(v, Some(star)))
}

/// A target under the conditions dgate meets, with `*` replaced by `star`.
fn conditional(v: &Value, star: Option<&str>) -> Option<String> {
    match v {
        Value::String(s) => Some(match star {
            Some(star) => s.replace('*', star),
            None => s.clone(),
        }),
        Value::Array(options) => options.iter().find_map(|o| conditional(o, star)),
        Value::Object(by) => CONDITIONS
            .iter()
            .find_map(|c| by.get(*c).and_then(|t| conditional(t, star))),
        _ => None,
    }
}

/// Node.js's own modules, which no `node_modules` holds.
fn is_node_builtin(specifier: &str) -> bool {
    const NODE: [&str; 24] = [
        "assert",
        "buffer",
        "child_process",
        "cluster",
        "crypto",
        "dgram",
        "dns",
        "events",
        "fs",
        "http",
        "http2",
        "https",
        "net",
        "os",
        "path",
        "perf_hooks",
        "process",
        "querystring",
        "readline",
        "stream",
        "string_decoder",
        "tls",
        "url",
        "zlib",
    ];
    let name = specifier.split('/').next().unwrap_or(specifier);
    specifier.starts_with("node:") || NODE.contains(&name)
}
