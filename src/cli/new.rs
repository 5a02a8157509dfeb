//! `dgate new NAME [--template ...]`: a ready module project. The SDK travels in the binary and is
//! written to `.dgate/sdk`, so the types match this dgate and `npm install` needs no registry for
//! them.

use std::path::Path;

use serde_json::json;

use super::client::CliError;
use super::{NewArgs, Template};

/// The SDK package's files, as `npm pack` would ship them (examples aside).
const SDK: [(&str, &str); 6] = [
    ("package.json", include_str!("../../sdk-ts/package.json")),
    ("index.d.ts", include_str!("../../sdk-ts/index.d.ts")),
    ("globals.d.ts", include_str!("../../sdk-ts/globals.d.ts")),
    (
        "tsconfig.module.json",
        include_str!("../../sdk-ts/tsconfig.module.json"),
    ),
    ("README.md", include_str!("../../sdk-ts/README.md")),
    ("LICENSE", include_str!("../../sdk-ts/LICENSE")),
];

/// A template: the module, the hook `npm test` runs, and its fixtures (flag → JSON).
struct Starter {
    module: &'static str,
    hook: &'static str,
    fixtures: &'static [(&'static str, &'static str)],
    about: &'static str,
}

fn starter(t: Template) -> Starter {
    match t {
        Template::Header => Starter {
            module: include_str!("../../sdk-ts/examples/add-header.ts"),
            hook: "requestModifier",
            fixtures: &[(
                "request",
                r#"{"method": "GET", "path": "/orders?v=2", "headers": {"cf-ipcountry": "NL"}}"#,
            )],
            about: "a requestModifier that edits request headers",
        },
        Template::Handler => Starter {
            module: include_str!("../../sdk-ts/examples/url-shortener.ts"),
            hook: "requestHandler",
            fixtures: &[
                (
                    "request",
                    r#"{"method": "POST", "path": "/?url=https://example.com/a"}"#,
                ),
                ("documents", "{}"),
            ],
            about: "a requestHandler that answers from documents (a URL shortener)",
        },
        Template::Balancer => Starter {
            module: include_str!("../../sdk-ts/examples/ip-hash.ts"),
            hook: "fetchUpstream",
            fixtures: &[
                (
                    "request",
                    r#"{"method": "GET", "path": "/", "remoteAddress": "10.0.0.7"}"#,
                ),
                (
                    "context",
                    r#"{"service": "backend", "serviceUrls": ["http://10.0.1.1:8080", "http://10.0.1.2:8080"]}"#,
                ),
            ],
            about: "a fetchUpstream load balancer (IP hash)",
        },
    }
}

/// Writes the project.
pub fn new_project(args: &NewArgs) -> Result<(), CliError> {
    let dir = &args.name;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let valid = !name.is_empty()
        && name.len() <= 214
        && !name.starts_with(['.', '_'])
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !valid {
        return Err(CliError::Usage(format!(
            "{name:?} is not a usable package name: lower-case letters, digits, '-', '_' and '.'"
        )));
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(CliError::Usage(format!(
            "{} already exists and is not empty",
            dir.display()
        )));
    }
    let s = starter(args.template);
    let mut run = format!("dgate module run mod.wasm --hook {}", s.hook);
    for (flag, _) in s.fixtures {
        run.push_str(&format!(" --{flag} fixtures/{flag}.json"));
    }
    let sdk = args.sdk.clone().unwrap_or_else(|| "file:.dgate/sdk".into());
    let package = json!({
        "name": name,
        "version": "0.1.0",
        "private": true,
        "type": "module",
        "description": s.about,
        "scripts": {
            "build": "dgate build mod.ts --check",
            "test": format!("dgate build mod.ts --check --quiet && {run}"),
            "deploy": "dgate deploy mod.ts",
        },
        "devDependencies": {
            "@dgate/sdk": sdk,
            "typescript": TYPESCRIPT,
        },
    });
    let tsconfig = json!({
        "extends": "@dgate/sdk/tsconfig",
        "include": ["*.ts", "src/**/*.ts"],
    });
    let pretty = |v: &serde_json::Value| {
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()) + "\n"
    };
    let mut files: Vec<(String, String)> = vec![
        ("package.json".into(), pretty(&package)),
        ("tsconfig.json".into(), pretty(&tsconfig)),
        ("mod.ts".into(), s.module.to_string()),
        (".gitignore".into(), "node_modules/\n*.wasm\n".into()),
        (
            "README.md".into(),
            format!(
                "# {name}\n\nA dgate module: {}.\n\n```sh\nnpm install\nnpm test          # type-check, build mod.wasm, run {} on fixtures/\nnpm run deploy -- --route ROUTE   # to the gateway at $DGATE_ADMIN_API\n```\n\nThe types and the tsconfig preset are `@dgate/sdk` (in `.dgate/sdk`, written by `dgate new`).\n",
                s.about, s.hook
            ),
        ),
    ];
    for (flag, text) in s.fixtures {
        files.push((format!("fixtures/{flag}.json"), format!("{text}\n")));
    }
    if args.sdk.is_none() {
        for (file, text) in SDK {
            files.push((format!(".dgate/sdk/{file}"), text.to_string()));
        }
    }
    for (file, text) in &files {
        write(&dir.join(file), text)?;
    }
    eprintln!(
        "created {} ({}): cd {} && npm install && npm test",
        dir.display(),
        s.about,
        dir.display()
    );
    Ok(())
}

/// The TypeScript the project type-checks with (the SDK's own, so an npm cache that has it
/// serves it).
const TYPESCRIPT: &str = "5.9.3";

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    let fail =
        |e: std::io::Error| CliError::Failed(format!("cannot write {}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, text).map_err(fail)
}
