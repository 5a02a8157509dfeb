//! Step 1 of a build: TS or JS to plain JS with oxc, in process: types stripped, enums compiled,
//! `import type` dropped, imports of the built-ins and of other modules by name kept; a source
//! map so errors point into the user's file.

use std::path::Path;

use oxc::allocator::Allocator;
use oxc::codegen::{Codegen, CodegenOptions};
use oxc::parser::Parser;
use oxc::semantic::SemanticBuilder;
use oxc::span::SourceType;
use oxc::transformer::{TransformOptions, Transformer};

use super::{BuildError, Libraries};

/// JS produced from a module's source, with what is needed to map positions back.
pub struct Js {
    pub code: String,
    pub(super) map: Option<oxc_sourcemap::SourceMap<'static>>,
    /// The other modules it imports (not the built-ins), by id: what each import was rewritten to.
    pub imports: Vec<String>,
    /// Those modules as the resolver found them, in the order they are first imported.
    pub(super) found: Vec<Resolved>,
    /// The names the module exports itself, with where each is (line, column).
    pub exports: Vec<(String, usize, usize)>,
}

/// The hooks a module may export.
pub const HOOKS: [&str; 5] = [
    "fetchUpstream",
    "requestModifier",
    "responseModifier",
    "errorHandler",
    "requestHandler",
];

/// Warnings about exports that look like a misspelt hook (`requestModifer`, `RequestHandler`):
/// they would build, and never run. `file:line:col: warning: ...`.
pub fn hook_warnings(file: &str, js: &Js) -> Vec<String> {
    js.exports
        .iter()
        .filter(|(name, _, _)| !HOOKS.contains(&name.as_str()))
        .filter_map(|(name, line, col)| {
            let lower = name.to_ascii_lowercase();
            let hook = HOOKS.iter().find(|h| {
                let h = h.to_ascii_lowercase();
                h == lower || edit_distance(&h, &lower) <= 2
            })?;
            Some(format!(
                "{file}:{line}:{col}: warning: export {name:?} is not a hook; did you mean {hook:?}? (only fetchUpstream, requestModifier, responseModifier, errorHandler and requestHandler run)"
            ))
        })
        .collect()
}

/// Levenshtein distance between two short ASCII strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A module an import names: its id (its name in the component, which the import is rewritten
/// to; never starting with `.`), its file name for messages and its source.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub id: String,
    pub file: String,
    pub source: String,
}

/// Finds the module that `specifier` names when the module with id `from` imports it: `Ok(None)`
/// when there is none, `Err` with why when there is one that cannot be used.
pub type Resolver<'a> = &'a dyn Fn(&str, &str) -> Result<Option<Resolved>, String>;

/// No modules to import besides the built-ins.
pub(super) fn no_libraries(_: &str) -> Option<(String, String)> {
    None
}

/// `lib`, `./lib`, `./lib.js` and `./lib.ts` name the module `lib`; anything else is not a
/// module name.
pub(super) fn library_name(specifier: &str) -> Option<&str> {
    let name = specifier.strip_prefix("./").unwrap_or(specifier);
    let name = [".ts", ".mts", ".js", ".mjs"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(name);
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains('/')
        && !BUILTINS.contains(&name);
    ok.then_some(name)
}

/// Imports by name from `libs`, as a gateway namespace's modules import each other.
pub(super) fn by_name(
    libs: Libraries<'_>,
) -> impl Fn(&str, &str) -> Result<Option<Resolved>, String> + '_ {
    move |_, specifier| {
        Ok(library_name(specifier).and_then(|name| {
            libs(name).map(|(file, source)| Resolved {
                id: name.to_string(),
                file,
                source,
            })
        }))
    }
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
pub(super) fn to_js_importing(
    file: &str,
    source: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<Js, BuildError> {
    let resolve = |_: &str, spec: &str| {
        Ok(library_name(spec).filter(|n| known(n)).map(|n| Resolved {
            id: n.to_string(),
            file: String::new(),
            source: String::new(),
        }))
    };
    to_js_resolving(file, file, source, &resolve)
}

/// TS or JS to plain JS, each import of another module rewritten to the id `resolve` finds for
/// it (`id` is this module's own, for relative imports).
pub fn to_js_resolving(
    file: &str,
    id: &str,
    source: &str,
    resolve: Resolver<'_>,
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
                format!(
                    "{file}:{line}:{col}: {}\n{}",
                    d.message,
                    code_frame(source, line, col)
                )
            })
            .collect();
        BuildError::Source(lines.join("\n"))
    };
    if parsed.panicked || parsed.diagnostics.has_errors() {
        return Err(located(parsed.diagnostics.errors().cloned().collect()));
    }
    let exports = parsed
        .module_record
        .local_export_entries
        .iter()
        .filter_map(|e| match &e.export_name {
            oxc::syntax::module_record::ExportExportName::Name(n) => {
                let (line, col) = line_col(source, n.span.start as usize);
                Some((n.name.to_string(), line, col))
            }
            _ => None,
        })
        .collect();
    let mut program = parsed.program;
    let commonjs = is_commonjs(&program, source);
    let mut cjs = CommonJs::default();
    if commonjs {
        use oxc::ast_visit::Visit as _;
        cjs.visit_program(&program);
    }
    let mut imports = imported(&program);
    // A CommonJS module's `require("x")` calls are its imports.
    imports.extend(
        cjs.requires
            .iter()
            .filter(|(spec, _)| !BUILTINS.contains(&spec.as_str()))
            .cloned(),
    );
    let mut libraries: Vec<String> = Vec::new();
    let mut found: Vec<Resolved> = Vec::new();
    let mut rewrite = std::collections::HashMap::new();
    let mut bad = Vec::new();
    for (spec, offset) in &imports {
        if BUILTINS.contains(&spec.as_str()) {
            continue;
        }
        let at = |why: String| {
            let (line, col) = line_col(source, *offset as usize);
            format!(
                "{file}:{line}:{col}: cannot import {spec:?}: {why}\n{}",
                code_frame(source, line, col)
            )
        };
        match resolve(id, spec) {
            Ok(Some(r)) => {
                if !libraries.contains(&r.id) {
                    libraries.push(r.id.clone());
                    found.push(r.clone());
                }
                rewrite.insert(spec.clone(), r.id);
            }
            Ok(None) => bad.push(at(format!(
                "a module may import the built-ins ({}), other modules (of its namespace, or files next to it) and ES module packages from node_modules",
                BUILTINS.join(", ")
            ))),
            Err(why) => bad.push(at(why)),
        }
    }
    if !bad.is_empty() {
        return Err(BuildError::Source(bad.join("\n")));
    }
    rewrite_imports(&mut program, &allocator, &rewrite);
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
    let mut map = out.map.map(|m| m.into_owned());
    let code = if commonjs {
        let required: Vec<(String, String)> = cjs
            .requires
            .iter()
            .filter_map(|(spec, _)| rewrite.get(spec).map(|id| (spec.clone(), id.clone())))
            .collect();
        let (prefix, code) = as_es_module(&out.code, &required, &cjs.exports);
        map = map.map(|m| shift_first_line(m, prefix));
        code
    } else {
        out.code
    };
    Ok(Js {
        code,
        map,
        imports: libraries,
        found,
        exports,
    })
}

/// Points each import in `rewrite` at the id it resolved to.
fn rewrite_imports<'a>(
    program: &mut oxc::ast::ast::Program<'a>,
    allocator: &'a Allocator,
    rewrite: &std::collections::HashMap<String, String>,
) {
    use oxc::ast::ast::Statement;
    for s in program.body.iter_mut() {
        let source = match s {
            Statement::ImportDeclaration(d) => &mut d.source,
            Statement::ExportAllDeclaration(d) => &mut d.source,
            Statement::ExportFromDeclaration(d) => &mut d.source,
            _ => continue,
        };
        if let Some(id) = rewrite.get(source.value.as_str()) {
            source.value = allocator.alloc_str(id).into();
        }
    }
}

/// The source line `line` (1-based) with the one before it and a caret under column `col`,
/// as compilers print them.
pub(super) fn code_frame(source: &str, line: usize, col: usize) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let width = (line + 1).to_string().len();
    let mut out = String::new();
    for n in line.saturating_sub(1).max(1)..=line {
        if let Some(text) = lines.get(n - 1) {
            out.push_str(&format!("{n:>width$} | {text}\n"));
        }
    }
    let pad = lines
        .get(line.wrapping_sub(1))
        .map(|l| {
            l.chars()
                .take(col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect::<String>()
        })
        .unwrap_or_default();
    out.push_str(&format!("{:>width$} | {pad}^", ""));
    out
}

/// `map` for code that got `by` more characters at the start of its first line.
pub(super) fn shift_first_line(
    map: oxc_sourcemap::SourceMap<'static>,
    by: usize,
) -> oxc_sourcemap::SourceMap<'static> {
    let by = u32::try_from(by).unwrap_or(u32::MAX);
    let mut parts = map.into_parts();
    parts.tokens = parts
        .tokens
        .iter()
        .map(|t| {
            let col = if t.get_dst_line() == 0 {
                t.get_dst_col().saturating_add(by)
            } else {
                t.get_dst_col()
            };
            oxc_sourcemap::Token::new(
                t.get_dst_line(),
                col,
                t.get_src_line(),
                t.get_src_col(),
                t.get_source_id(),
                t.get_name_id(),
            )
        })
        .collect();
    // Chunks only speed up encoding; they describe the tokens as they were.
    parts.token_chunks = None;
    oxc_sourcemap::SourceMap::from_parts(parts)
}

/// Whether a module is CommonJS (DGate runs those): no `import` or `export` of its own, and
/// `module.exports` or `exports.` in its text.
fn is_commonjs(program: &oxc::ast::ast::Program<'_>, source: &str) -> bool {
    !program.body.iter().any(|s| s.is_module_declaration())
        && (source.contains("module.exports") || source.contains("exports."))
}

/// A CommonJS module's code as an ES module: `module`, `exports` and a `require` of the
/// built-ins and of `required` (specifier → id, what its `require("...")` calls name) around it,
/// its hooks and `names` (what it assigns to `exports.NAME`) exported from `module.exports`, and
/// `module.exports` as the default export. What comes before the code is on its first line, so
/// the source map's lines still hold; returns its length too.
fn as_es_module(code: &str, required: &[(String, String)], names: &[String]) -> (usize, String) {
    let mut out = String::new();
    let mut table = String::new();
    let specs = BUILTINS
        .iter()
        .map(|b| (b.to_string(), b.to_string()))
        .chain(required.iter().cloned());
    for (i, (spec, id)) in specs.enumerate() {
        out.push_str(&format!("import * as __dgate_m{i} from {id:?}; "));
        // A CommonJS module required is its module.exports; an ES module, its namespace.
        table.push_str(&format!(
            "{spec:?}: (__dgate_m{i}.__dgate_commonjs ? __dgate_m{i}.default : __dgate_m{i}), "
        ));
    }
    out.push_str(&format!(
        "const module = {{ exports: {{}} }}; let exports = module.exports; \
         const require = (name) => {{ const m = {{ {table}}}[name]; \
         if (m === undefined) throw new Error(\"require(\" + JSON.stringify(name) + \"): a module may require the built-ins ({}) and the modules dgate build found for it\"); \
         return m; }}; ",
        BUILTINS.join(", ")
    ));
    let prefix = out.len();
    out.push_str(code);
    out.push_str("\nconst __dgate_cjs = module.exports;\n");
    // Under other names: the module's own top level may declare the hooks' names.
    let mut exported = Vec::new();
    let wanted = HOOKS.iter().map(|h| h.to_string()).chain(
        names
            .iter()
            .filter(|n| !HOOKS.contains(&n.as_str()))
            .cloned(),
    );
    for (i, name) in wanted.enumerate() {
        out.push_str(&format!("const __dgate_h{i} = __dgate_cjs.{name};\n"));
        exported.push(format!("__dgate_h{i} as {name}"));
    }
    out.push_str(&format!(
        "export {{ {} }};\nexport default __dgate_cjs;\nexport const __dgate_commonjs = true;\n",
        exported.join(", ")
    ));
    (prefix, out)
}

/// What a CommonJS module requires (string literals only) and the names it assigns to
/// `exports.NAME`, `module.exports.NAME` or lists in `module.exports = { ... }`.
#[derive(Default)]
struct CommonJs {
    requires: Vec<(String, u32)>,
    exports: Vec<String>,
}

impl<'a> oxc::ast_visit::Visit<'a> for CommonJs {
    fn visit_call_expression(&mut self, it: &oxc::ast::ast::CallExpression<'a>) {
        use oxc::ast::ast::{Argument, Expression};
        if let (Expression::Identifier(callee), [Argument::StringLiteral(spec)]) =
            (&it.callee, it.arguments.as_slice())
            && callee.name == "require"
            && !self.requires.iter().any(|(s, _)| s == spec.value.as_str())
        {
            self.requires
                .push((spec.value.to_string(), spec.span.start));
        }
        oxc::ast_visit::walk::walk_call_expression(self, it);
    }

    fn visit_assignment_expression(&mut self, it: &oxc::ast::ast::AssignmentExpression<'a>) {
        use oxc::ast::ast::{AssignmentTarget, Expression, ObjectPropertyKind, PropertyKey};
        let is_exports = |e: &Expression<'_>| match e {
            Expression::Identifier(id) => id.name == "exports",
            Expression::StaticMemberExpression(m) => {
                m.property.name == "exports"
                    && matches!(&m.object, Expression::Identifier(id) if id.name == "module")
            }
            _ => false,
        };
        let mut add = |name: &str| {
            let usable = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name != "default";
            if usable && !self.exports.iter().any(|n| n == name) {
                self.exports.push(name.to_string());
            }
        };
        match &it.left {
            AssignmentTarget::StaticMemberExpression(m) if is_exports(&m.object) => {
                add(m.property.name.as_str());
            }
            AssignmentTarget::StaticMemberExpression(m)
                if m.property.name == "exports"
                    && matches!(&m.object, Expression::Identifier(id) if id.name == "module") =>
            {
                if let Expression::ObjectExpression(o) = &it.right {
                    for p in &o.properties {
                        if let ObjectPropertyKind::ObjectProperty(p) = p
                            && let PropertyKey::StaticIdentifier(k) = &p.key
                        {
                            add(k.name.as_str());
                        }
                    }
                }
            }
            _ => {}
        }
        oxc::ast_visit::walk::walk_assignment_expression(self, it);
    }
}

/// The modules a module may import: the runtime's built-ins.
pub const BUILTINS: [&str; 6] = [
    "dgate",
    "dgate/crypto",
    "dgate/http",
    "dgate/state",
    "dgate/storage",
    "dgate/util",
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
pub(super) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

impl Js {
    pub(super) fn remap(&self, file: &str, message: &str) -> String {
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
