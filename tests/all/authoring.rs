//! Writing modules as a new author would: `dgate new`, `npm install`, `npm test`; the SDK as
//! `npm pack` ships it, installed offline into a fresh project and type-checked with its preset,
//! with and without lib.dom. Needs Node.js and npm (scripts/setup.sh installs them; the SDK's
//! `npm ci` in scripts/test.sh puts TypeScript in npm's cache and in sdk-ts/node_modules).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::helpers::{BIN, write_file};

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk-ts")
}

/// Runs `program args` in `dir` with the dgate under test first on PATH.
fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env("npm_config_update_notifier", "false")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(what: &str, out: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what}: {text}");
    text
}

/// From an empty directory, each template: `dgate new`, `npm install`, `npm test` (which
/// type-checks with the SDK's preset, builds and runs the hook on the fixtures).
#[test]
fn new_projects_install_and_pass_their_tests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (template, expected) in [
        ("header", "\"x-api-version\""),
        ("handler", "\"status\": 201"),
        ("balancer", "\"upstream\": \"http://10.0.1."),
    ] {
        let name = format!("{template}-mod");
        ok(
            "dgate new",
            run(d, BIN, &["new", &name, "--template", template]),
        );
        let project = d.join(&name);
        for file in [
            "package.json",
            "tsconfig.json",
            "mod.ts",
            "fixtures/request.json",
        ] {
            assert!(project.join(file).is_file(), "{template}: {file}");
        }
        ok(
            "npm install",
            run(
                &project,
                "npm",
                &["install", "--prefer-offline", "--no-audit", "--no-fund"],
            ),
        );
        let said = ok("npm test", run(&project, "npm", &["test"]));
        assert!(said.contains(expected), "{template}: {said}");
    }

    // A type error fails `npm test` before anything is built.
    let project = d.join("header-mod");
    let module = std::fs::read_to_string(project.join("mod.ts")).unwrap();
    std::fs::write(
        project.join("mod.ts"),
        format!("{module}\nexport const answer: number = \"forty-two\";\n"),
    )
    .unwrap();
    let out = run(&project, "npm", &["test"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("type check failed"), "{said}");
    assert!(said.contains("TS2322"), "{said}");

    // Refusals: a directory that holds something, a name npm would refuse.
    let out = run(d, BIN, &["new", "header-mod"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let out = run(d, BIN, &["new", "Bad Name"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a usable package name"));
}

/// `npm pack` of sdk-ts ships what a user needs, installs without a registry into a fresh
/// project, and its preset type-checks a module using hooks, built-ins and globals; with
/// lib.dom instead of the SDK's globals nothing clashes.
#[test]
fn the_packed_sdk_installs_offline_and_type_checks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let packed = ok(
        "npm pack",
        run(
            &sdk_dir(),
            "npm",
            &["pack", "--json", "--pack-destination", d.to_str().unwrap()],
        ),
    );
    let start = packed.find('[').unwrap();
    let end = packed.rfind(']').unwrap();
    let info: serde_json::Value = serde_json::from_str(&packed[start..=end]).unwrap();
    let files: Vec<&str> = info[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    for f in [
        "README.md",
        "LICENSE",
        "index.d.ts",
        "globals.d.ts",
        "tsconfig.module.json",
        "package.json",
    ] {
        assert!(files.contains(&f), "{f} in {files:?}");
    }
    let tarball = d.join(info[0]["filename"].as_str().unwrap());

    let project = d.join("app");
    std::fs::create_dir_all(&project).unwrap();
    write_file(
        &project,
        "package.json",
        r#"{"name": "app", "private": true, "type": "module"}"#,
    );
    ok(
        "npm install --offline",
        run(
            &project,
            "npm",
            &[
                "install",
                "--offline",
                "--no-audit",
                "--no-fund",
                tarball.to_str().unwrap(),
            ],
        ),
    );
    write_file(
        &project,
        "util.ts",
        "export const tag = (s: string): string => `tag:${s}`;\n",
    );
    write_file(
        &project,
        "mod.ts",
        "import type { ModuleContext, UpstreamResponse } from \"dgate\";\n\
         import { randomUUID } from \"dgate/crypto\";\n\
         import { tag } from \"./util.js\";\n\
         export const requestModifier = async (ctx: ModuleContext): Promise<void> => {\n\
           const res = await fetch(\"http://auth.internal/check\", { headers: { \"x-id\": randomUUID() } });\n\
           console.log(res.status, new TextEncoder().encode(tag(\"a\")).length, crypto.randomUUID());\n\
           ctx.request().headers.set(\"x-checked\", String(res.ok));\n\
         };\n\
         export const responseModifier = (_ctx: ModuleContext, res: UpstreamResponse): void => {\n\
           res.headers.set(\"x-url\", new URL(\"/a?b=1\", \"http://h\").searchParams.get(\"b\") ?? \"\");\n\
         };\n",
    );
    let tsc = sdk_dir().join("node_modules/.bin/tsc");
    assert!(
        tsc.is_file(),
        "run `npm ci` in sdk-ts first (scripts/test.sh does)"
    );
    let tsc = tsc.to_str().unwrap();
    write_file(
        &project,
        "tsconfig.json",
        r#"{"extends": "@dgate/sdk/tsconfig", "include": ["*.ts"]}"#,
    );
    ok(
        "tsc with the preset",
        run(&project, tsc, &["-p", "tsconfig.json"]),
    );
    // A type error is one.
    write_file(
        &project,
        "bad.ts",
        "import type { ModuleContext } from \"dgate\";\nexport const requestModifier = (ctx: ModuleContext): void => { ctx.request().headers.set(1n, 2); };\n",
    );
    let out = run(&project, tsc, &["-p", "tsconfig.json"]);
    assert!(!out.status.success(), "the preset checks types");
    std::fs::remove_file(project.join("bad.ts")).unwrap();
    // lib.dom in place of the SDK's globals: no duplicate identifiers.
    write_file(
        &project,
        "tsconfig.dom.json",
        r#"{"compilerOptions": {"target": "es2022", "module": "preserve", "moduleResolution": "bundler",
            "lib": ["es2023", "dom"], "types": ["@dgate/sdk"], "strict": true, "noEmit": true,
            "allowImportingTsExtensions": true}, "include": ["*.ts"]}"#,
    );
    ok(
        "tsc with lib.dom",
        run(&project, tsc, &["-p", "tsconfig.dom.json"]),
    );
}
