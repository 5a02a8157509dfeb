//! Modules: `dgate build` on the sdk-ts examples and on broken modules, `dgate module run` with
//! fixtures, and the engine's limits, on the real runtime and wasmtime.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use dgate::modules::{CallError, Engine, EngineOptions, Host, Io, Limits};

use crate::helpers::{BIN, write_file};

/// Runs `dgate` with a private module cache.
fn dgate(cache: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .stdin(Stdio::null())
        .output()
        .expect("run dgate")
}

fn example(name: &str) -> String {
    format!("{}/sdk-ts/examples/{name}.ts", env!("CARGO_MANIFEST_DIR"))
}

fn ok_json(out: Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn header<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    headers
        .as_array()?
        .iter()
        .find(|p| p[0] == name)
        .and_then(|p| p[1].as_str())
}

/// Builds `source` into `dir` and returns the component's path.
fn build(dir: &Path, source: &str) -> PathBuf {
    let out = dir.join(
        Path::new(source)
            .with_extension("wasm")
            .file_name()
            .unwrap(),
    );
    let res = dgate(dir, &["build", source, "-o", out.to_str().unwrap()]);
    assert!(res.status.success(), "{source}: {}", stderr(&res));
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(size <= 2 << 20, "{source}: component is {size} bytes");
    out
}

#[test]
fn every_sdk_example_builds_and_its_hooks_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |wasm: &Path, hook: &str, files: &[(&str, Value)]| {
        let mut args = vec!["module", "run", wasm.to_str().unwrap(), "--hook", hook];
        let paths: Vec<(String, PathBuf)> = files
            .iter()
            .map(|(flag, v)| {
                let p = write_file(d, &format!("{hook}-{flag}.json"), &v.to_string());
                (format!("--{flag}"), p)
            })
            .collect();
        for (flag, p) in &paths {
            args.push(flag);
            args.push(p.to_str().unwrap());
        }
        dgate(d, &args)
    };

    // IP hash: the same client always gets the same upstream, always one of the service's.
    let wasm = build(d, &example("ip-hash"));
    let urls = json!(["http://a:1", "http://b:2", "http://c:3"]);
    let ctx = json!({"service": "s", "serviceUrls": urls});
    let mut seen = std::collections::HashSet::new();
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.1"] {
        let v = ok_json(run(
            &wasm,
            "fetchUpstream",
            &[
                ("request", json!({"remoteAddress": ip})),
                ("context", ctx.clone()),
            ],
        ));
        let up = v["upstream"].as_str().unwrap().to_string();
        assert!(urls.as_array().unwrap().contains(&json!(up)), "{v}");
        seen.insert((ip, up));
    }
    assert_eq!(seen.len(), 4, "one upstream per address: {seen:?}");
    // Single calls of every example (add-header and json-response only have those) are cases
    // under tests/modules; what needs several calls stays here.

    // URL shortener: POST stores a document, GET with its id redirects.
    let wasm = build(d, &example("url-shortener"));
    let v = ok_json(run(
        &wasm,
        "requestHandler",
        &[
            (
                "request",
                json!({"method": "POST", "path": "/?url=https://example.com/a"}),
            ),
            ("documents", json!({})),
        ],
    ));
    assert_eq!(v["response"]["status"], 201, "{v}");
    let id = serde_json::from_str::<Value>(v["response"]["body"].as_str().unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        v["documents"]["short_link"][&id],
        json!({"url": "https://example.com/a"})
    );
    let v = ok_json(run(
        &wasm,
        "requestHandler",
        &[
            ("documents", v["documents"].clone()),
            ("context", json!({"params": {"id": id}})),
        ],
    ));
    assert_eq!(v["response"]["status"], 302);
    assert_eq!(
        header(&v["response"]["headers"], "location"),
        Some("https://example.com/a")
    );
}

#[test]
fn build_errors_point_into_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        (
            "syntax.ts",
            "const a = 1;\nconst b = ;\n",
            "syntax.ts:2:11: Unexpected token",
        ),
        (
            "top.ts",
            "// loads, then throws\nconst n: number = 1;\nthrow new Error(`at load ${n}`);\nexport const requestModifier = () => {};\n",
            "top.ts:3:",
        ),
        (
            "none.js",
            "export const helper = 1;\n",
            "exports none of the hooks",
        ),
        (
            "imports.js",
            "import x from './x.js';\nexport const requestModifier = () => x;\n",
            "imports.js:1:15: cannot import \"./x.js\"",
        ),
        (
            "missing.js",
            "import { nope } from 'dgate/crypto';\nexport const requestModifier = () => nope();\n",
            "missing.js:1:10: Could not find export 'nope'",
        ),
    ];
    for (name, source, expected) in cases {
        let path = write_file(d, name, source);
        let out = dgate(d, &["build", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{name}: {err}");
        // A place in the source comes with a code frame: the line, and a caret under the column.
        let lines: Vec<&str> = err.trim().lines().collect();
        if expected.starts_with(name) {
            assert!(lines.len() >= 3, "{name}: a code frame: {err}");
            assert!(
                lines.last().unwrap().trim_end().ends_with('^'),
                "{name}: {err}"
            );
            assert!(
                lines[1..].iter().all(|l| l.contains(" | ")),
                "{name}: {err}"
            );
        } else {
            assert_eq!(lines.len(), 1, "{name}: one line: {err}");
        }
    }
    let out = dgate(d, &["build", "/nonexistent/m.ts"]);
    assert_eq!(out.status.code(), Some(2));
    let out = dgate(d, &["build", write_file(d, "m.txt", "x").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    // --target js prints the stripped JS.
    let path = write_file(
        d,
        "t.ts",
        "enum E { A = 2 }\nexport const requestModifier = (x: number = E.A): void => {};\n",
    );
    let out = dgate(d, &["build", path.to_str().unwrap(), "--target", "js"]);
    let js = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && js.contains("requestModifier") && !js.contains(": number"),
        "{js}"
    );
}

#[test]
fn module_run_refuses_what_is_not_a_dgate_component() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let garbage = write_file(d, "g.wasm", "not wasm at all");
    let out = dgate(
        d,
        &[
            "module",
            "run",
            garbage.to_str().unwrap(),
            "--hook",
            "requestModifier",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a WebAssembly component"),
        "{}",
        stderr(&out)
    );
    // The runtime itself is a core module, not a component.
    let core = format!(
        "{}/toolchain/dgate-runtime.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = dgate(d, &["module", "run", &core, "--hook", "requestModifier"]);
    assert!(
        stderr(&out).contains("core WebAssembly module, not a component"),
        "{}",
        stderr(&out)
    );
    let out = dgate(d, &["module", "run", &core, "--hook", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown hook \"nope\""));
}

const FAULTY: &str = include_str!("../fixtures/faulty.js");

/// `js` built into a component and loaded in an engine with the default options.
async fn load(name: &str, js: &str) -> Arc<dgate::modules::Module> {
    let component = dgate::build::build(name, js).unwrap();
    let engine = Engine::new(EngineOptions::default()).unwrap();
    engine.load(&component, Limits::default()).await.unwrap()
}

/// The call's I/O with the request header `x-mode: mode`.
fn io(mode: &str) -> Box<Io> {
    let mut io = Box::<Io>::default();
    io.request_headers.insert("x-mode", mode.parse().unwrap());
    io.request_headers.insert("x-keep", "k".parse().unwrap());
    io
}

/// Header edits made before the headers are read are recorded as made: names and values that
/// are not strings are converted when the list is loaded or the hook returns.
const CONVERTS: &str = include_str!("../fixtures/converts.js");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_edits_convert_what_is_not_a_string() {
    let module = load("converts.js", CONVERTS).await;
    let mut instance = module
        .instantiate(Host::local(), Limits::default())
        .await
        .unwrap();
    let at = |path: &str| {
        let mut io = Box::<Io>::default();
        io.call.uri = path.parse().unwrap();
        io
    };
    for _ in 0..2 {
        let (r, out) = instance.request_modifier(at("/number")).await;
        r.unwrap();
        assert_eq!(out.request_headers["x-num"], "42");
        assert_eq!(out.request_headers["x-obj"], "obj");
        let (r, out) = instance.request_modifier(at("/read")).await;
        r.unwrap();
        assert_eq!(out.request_headers["x-num"], "7");
        assert_eq!(out.request_headers["x-copy"], "7!");
        let (r, _) = instance.request_modifier(at("/symbol")).await;
        match r {
            Err(CallError::InvalidResult(m)) => assert!(m.contains("symbol"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(instance.reusable());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_allocations_and_throws_fail_only_their_call() {
    let component = dgate::build::build("faulty.js", FAULTY).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let engine = Engine::new(EngineOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..EngineOptions::default()
    })
    .unwrap();
    let module = engine.load(&component, Limits::default()).await.unwrap();
    let services = Host::local();
    let limits = Limits {
        fuel: 10_000_000_000,
        wall: Duration::from_millis(100),
        memory: 32 << 20,
        ..Limits::default()
    };
    let mut instance = module.instantiate(services.clone(), limits).await.unwrap();
    let (ok, out) = instance.request_modifier(io("ok")).await;
    ok.unwrap();
    assert_eq!(out.request_headers["ok"], "yes");
    let (late, out) = instance.request_modifier(io("async")).await;
    late.unwrap();
    assert_eq!(out.request_headers["late"], "yes");

    // Header edits reach the host in order, whether or not the hook read the headers first.
    let (r, out) = instance.request_modifier(io("edit")).await;
    r.unwrap();
    let h = &out.request_headers;
    let all = |n: &str| {
        h.get_all(n)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(all("x-a"), ["1", "2"]);
    assert_eq!(all("x-b"), ["1, 2"]);
    assert!(h.get("x-mode").is_none());
    assert_eq!(h["x-keep"], "k");
    let (r, out) = instance.request_modifier(io("replace")).await;
    r.unwrap();
    assert_eq!(out.request_headers.len(), 1);
    assert_eq!(out.request_headers["only"], "this");
    // Changes that are not valid HTTP fail the call (the instance stays usable).
    for (mode, expected) in [
        (
            "badheader",
            "a header name that is not valid HTTP: \"bad name\"",
        ),
        (
            "badvalue",
            "a value of header \"x-ok\" that is not valid HTTP: \"two\\nlines\"",
        ),
        ("badpath", "requestModifier set a bad path \"no-slash\""),
    ] {
        let (r, _) = instance.request_modifier(io(mode)).await;
        match r {
            Err(CallError::InvalidResult(m)) => assert!(m.contains(expected), "{mode}: {m}"),
            other => panic!("{mode}: {other:?}"),
        }
        assert!(instance.reusable(), "{mode}");
    }
    // A context kept past its call cannot read the next call's request, nor can a kept
    // ctx.response() change the next call's response.
    let (r, _) = instance.request_modifier(io("keep")).await;
    r.unwrap();
    for mode in ["stale", "stalebody", "staleresponse"] {
        let (r, _) = instance.request_modifier(io(mode)).await;
        match r {
            Err(CallError::Thrown { message, .. }) => {
                assert!(message.contains("has finished"), "{mode}: {message}")
            }
            other => panic!("{mode}: {other:?}"),
        }
    }

    // A throw fails the call; the instance stays usable.
    let (r, _) = instance.request_modifier(io("throw")).await;
    match r {
        Err(CallError::Thrown { message, stack }) => {
            assert_eq!(message, "boom");
            // The place is in the source, mapped back through the component's source map.
            let line = 1 + FAULTY
                .lines()
                .position(|l| l.contains("throw new Error(\"boom\")"))
                .unwrap();
            assert!(
                stack
                    .as_deref()
                    .is_some_and(|s| s.contains(&format!("faulty.js:{line}:"))),
                "{stack:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(instance.reusable());
    let (r, _) = instance.request_modifier(io("never")).await;
    assert!(matches!(r, Err(CallError::Unsettled)), "{r:?}");

    // Budgets: each failure poisons its instance; a fresh one from the same module works.
    for (mode, check) in [
        (
            "loop",
            (|e: &CallError| matches!(e, CallError::Timeout(_))) as fn(&CallError) -> bool,
        ),
        ("alloc", |e| matches!(e, CallError::OutOfMemory(_))),
        ("grow", |e| matches!(e, CallError::OutOfMemory(_))),
    ] {
        let started = std::time::Instant::now();
        let (r, _) = instance.request_modifier(io(mode)).await;
        let e = r.expect_err(mode);
        assert!(check(&e), "{mode}: {e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{mode} took {:?}",
            started.elapsed()
        );
        assert!(!instance.reusable(), "{mode}");
        instance = module.instantiate(services.clone(), limits).await.unwrap();
        let (ok, _) = instance.request_modifier(io("ok")).await;
        assert!(ok.is_ok(), "after {mode}");
    }

    // Fuel bounds CPU whatever the clock says.
    let tight = Limits {
        fuel: 5_000_000,
        wall: Duration::from_secs(10),
        ..limits
    };
    let mut instance = module.instantiate(services.clone(), tight).await.unwrap();
    let (r, _) = instance.request_modifier(io("loop")).await;
    assert!(matches!(r, Err(CallError::OutOfFuel(5_000_000))), "{r:?}");

    // The compiled module is cached on disk: loading it again skips compilation.
    let entries = std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(entries, 1);
    let started = std::time::Instant::now();
    let again = engine.load(&component, Limits::default()).await.unwrap();
    eprintln!("cached load took {:?}", started.elapsed());
    assert_eq!(again.hash, module.hash);
    // Loading starts the module once, under the limits it is given (those its calls will have,
    // not the defaults): one unit of fuel is not enough to start it.
    let starved = Limits {
        fuel: 1,
        ..Limits::default()
    };
    let e = engine.load(&component, starved).await.err().unwrap();
    assert!(e.to_string().contains("used up its fuel (1 units)"), "{e}");
}

/// The voluntary context switches of this process's epoch ticker threads.
fn ticker_wakeups() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "dgate-epoch" {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .map_or(0, |n| n.trim().parse::<u64>().unwrap());
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epoch_ticker_sleeps_when_idle_and_wakes_for_a_call() {
    let module = load("faulty.js", FAULTY).await;
    let limits = Limits {
        wall: Duration::from_millis(100),
        fuel: 100_000_000_000,
        ..Limits::default()
    };
    let mut instance = module.instantiate(Host::local(), limits).await.unwrap();
    // Idle: after about 100 ms without a call the ticker stops waking (it woke about every
    // millisecond before).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = ticker_wakeups();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let woke = ticker_wakeups() - before;
    assert!(woke < 10, "the idle ticker woke {woke} times in 300 ms");
    // A call wakes it: a loop still ends at the wall-time limit, not before.
    let started = std::time::Instant::now();
    let (r, _) = instance.request_modifier(io("loop")).await;
    assert!(matches!(r, Err(CallError::Timeout(_))), "{r:?}");
    let took = started.elapsed();
    assert!(
        took >= limits.wall && took < Duration::from_secs(2),
        "{took:?}"
    );
    // It ticks every eighth of the limit (12.5 ms) while the loop runs.
    assert!(ticker_wakeups() - before >= 5);

    // A call that runs across ticks but within its limit is not stopped: a tick only wakes
    // the call's check of the clock.
    let mut instance = module.instantiate(Host::local(), limits).await.unwrap();
    let (r, _) = instance.request_modifier(io("spin")).await;
    assert!(r.is_ok(), "{r:?}");
}

/// A module that tries to carry state from one call to the next through its context objects,
/// which an instance reuses while nothing else holds them.
const CARRIER: &str = include_str!("../fixtures/carrier.js");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_context_objects_carry_nothing_between_calls() {
    let module = load("carrier.js", CARRIER).await;
    let services = Host::local();
    let mut instance = module
        .instantiate(
            services,
            Limits {
                wall: Duration::from_secs(5),
                ..Limits::default()
            },
        )
        .await
        .unwrap();
    let report = async |instance: &mut dgate::modules::Instance| {
        let (r, out) = instance.request_modifier(io("report")).await;
        r.unwrap();
        assert!(out.request_headers.get("x-changed").is_none());
        let report: Value =
            serde_json::from_str(out.request_headers["x-report"].to_str().unwrap()).unwrap();
        report
    };
    let clean = json!({
        "seen": false, "marked": false, "held": false, "extra": null, "path": "/", "method": "GET"
    });

    let (r, out) = instance.request_modifier(io("change")).await;
    r.unwrap();
    assert_eq!(out.call.uri, "/changed?q=1");
    assert_eq!(out.call.method, "PUT");
    assert_eq!(out.request_headers["x-changed"], "1");
    assert_eq!(report(&mut instance).await, clean, "after a change");

    // The context objects are sealed.
    let (r, _) = instance.request_modifier(io("extend")).await;
    match r {
        Err(CallError::Thrown { message, .. }) => {
            assert!(message.contains("not extensible"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report(&mut instance).await, clean, "after extending");

    // Objects a hook keeps (weakly or not) or made read-only are not reused.
    for mode in ["weak", "hold", "readonly"] {
        let (r, _) = instance.request_modifier(io(mode)).await;
        r.unwrap();
        assert_eq!(report(&mut instance).await, clean, "after {mode}");
    }

    // A response's status and headers start over on each call.
    let (r, out) = instance.request_handler(io("teapot")).await;
    assert_eq!(r.unwrap(), 418);
    assert_eq!(out.response_headers["x-tea"], "1");
    let (r, out) = instance.request_handler(io("plain")).await;
    assert_eq!(r.unwrap(), 200);
    assert!(out.response_headers.get("x-tea").is_none());
    assert_eq!(out.response_body, b"plain");
    // Headers a hook replaced are not the response's next time.
    let (r, out) = instance.request_handler(io("swap")).await;
    assert_eq!(r.unwrap(), 200);
    assert_eq!(out.response_headers["x-swapped"], "1");
    let (r, out) = instance.request_handler(io("plain")).await;
    assert_eq!(r.unwrap(), 200);
    assert!(out.response_headers.get("x-swapped").is_none());
    // Strings are sent as UTF-8; JSON of what JSON cannot encode is an empty body.
    let (r, out) = instance.request_handler(io("unicode")).await;
    assert_eq!(r.unwrap(), 200);
    assert_eq!(out.response_body, "héllo ☃".as_bytes());
    let (r, out) = instance.request_handler(io("nojson")).await;
    assert_eq!(r.unwrap(), 200);
    assert_eq!(out.response_headers["content-type"], "application/json");
    assert!(out.response_body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_builds_uploads_and_attaches_a_module() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gw = crate::helpers::Gateway::start(&d.join("data"), &[]);
    let api = gw.client();
    api.put(
        "service",
        json!({"name": "s", "urls": ["http://127.0.0.1:9"]}),
    )
    .await;
    let (s, v) = api
        .put(
            "route",
            json!({"name": "r", "paths": ["/x"], "methods": ["GET"], "service": "s"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let deploy = |args: &[&str]| {
        let mut all = vec!["--admin", gw.admin.as_str(), "deploy"];
        all.extend_from_slice(args);
        dgate(d, &all)
    };

    let out = deploy(&[&example("add-header"), "--route", "r"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("route r now runs module add-header"),
        "{}",
        stderr(&out)
    );
    let (_, m) = api.get("/api/v1/module/add-header").await;
    assert_eq!(m["data"]["moduleType"], "wasm");
    let (_, r) = api.get("/api/v1/route/r").await;
    assert_eq!(r["data"]["modules"], json!(["add-header"]));
    assert!(stderr(&out).contains("built in "), "{}", stderr(&out));
    // The node has it compiled by the time the write is answered.
    let said = stderr(&out);
    let ready = said
        .lines()
        .find_map(|l| l.strip_prefix("ready on each node: dgate "))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(ready.ends_with(" ms"), "{said}");
    // Only a route's first module runs: another module for the route is refused (and nothing
    // is uploaded) unless --replace, which writes the module and the route in one change.
    let wasm = build(d, &example("json-response"));
    let out = deploy(&[wasm.to_str().unwrap(), "--name", "envelope", "--route", "r"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("route r runs module \"add-header\"")
            && stderr(&out).contains("--replace"),
        "{}",
        stderr(&out)
    );
    assert_eq!(api.get("/api/v1/module/envelope").await.0, 404);
    let out = deploy(&[
        wasm.to_str().unwrap(),
        "--name",
        "envelope",
        "--route",
        "r",
        "--replace",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, r) = api.get("/api/v1/route/r").await;
    assert_eq!(r["data"]["modules"], json!(["envelope"]));
    // `--wait 0s`: no readiness report; a wait that is not a duration is refused up front.
    let out = deploy(&[
        wasm.to_str().unwrap(),
        "--name",
        "envelope",
        "--route",
        "r",
        "--wait",
        "0s",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("route r already runs module envelope"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("ready on each node"),
        "{}",
        stderr(&out)
    );
    let out = deploy(&[wasm.to_str().unwrap(), "--wait", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid duration \"soon\""),
        "{}",
        stderr(&out)
    );

    // Failures: a build error (nothing uploaded), a missing route, a namespace that does not exist.
    let bad = write_file(
        d,
        "bad.ts",
        "export const requestModifier = (: void => {};\n",
    );
    let out = deploy(&[bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.ts:1:"), "{}", stderr(&out));
    assert_eq!(api.get("/api/v1/module/bad").await.0, 404);
    let out = deploy(&[&example("ip-hash"), "--route", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("(HTTP 404)"), "{}", stderr(&out));
    assert_eq!(
        api.get("/api/v1/module/ip-hash").await.0,
        404,
        "nothing left behind"
    );
    let out = deploy(&[&example("ip-hash"), "--namespace", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("namespace \"ghost\" does not exist"),
        "{}",
        stderr(&out)
    );

    // The module's own limits, and a module that imports the one next to it.
    write_file(
        d,
        "tag.ts",
        "export const tag = (s: string): string => \"tagged:\" + s;\n",
    );
    let main = write_file(
        d,
        "tagger.ts",
        "import { tag } from \"./tag\";\nexport const requestModifier = (ctx: any): void => { ctx.request().headers.set(\"x-tag\", tag(\"a\")); };\n",
    );
    let out = deploy(&[
        main.to_str().unwrap(),
        "--timeout",
        "20ms",
        "--fuel",
        "5000000",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, m) = api.get("/api/v1/module/tagger").await;
    assert_eq!(
        m["data"]["limits"],
        json!({"fuel": 5_000_000, "timeout": "20ms"}),
        "{m}"
    );
    // The files it was built from go with it and can be read back.
    let out = dgate(
        d,
        &[
            "--admin",
            gw.admin.as_str(),
            "module",
            "get",
            "tagger",
            "--source",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("// file: tag.ts\nexport const tag")
            && text.contains("// file: tagger.ts\nimport { tag } from \"./tag\";"),
        "{text}"
    );
    // A component uploaded alone has none to show.
    let out = dgate(
        d,
        &[
            "--admin",
            gw.admin.as_str(),
            "module",
            "get",
            "envelope",
            "--source",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("without its source"),
        "{}",
        stderr(&out)
    );
    let out = deploy(&[main.to_str().unwrap(), "--memory", "lots"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("\"lots\" is not a size"),
        "{}",
        stderr(&out)
    );
    let wasm = build(d, main.to_str().unwrap());
    let v = ok_json(dgate(
        d,
        &[
            "module",
            "run",
            wasm.to_str().unwrap(),
            "--hook",
            "requestModifier",
        ],
    ));
    assert_eq!(
        header(&v["request"]["headers"], "x-tag"),
        Some("tagged:a"),
        "{v}"
    );
}

/// `dgate build` of a project: a local file imported with a `.js` extension from a
/// subdirectory (as tsc writes it), an ES module package from `node_modules` through its
/// `exports` (with a relative import inside the package, and the Web Crypto global it calls),
/// a CommonJS package (its `require` of its own file, default and named exports), a package
/// that needs Node.js refused with the reason, a misspelt hook warned about, and the time each
/// step took (silenced by `--quiet`).
#[test]
fn builds_bundle_local_files_and_npm_packages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let project = d.join("project");
    let pkg = project.join("node_modules/@acme/ids");
    std::fs::create_dir_all(pkg.join("dist/esm")).unwrap();
    std::fs::create_dir_all(project.join("lib")).unwrap();
    write_file(
        &pkg,
        "package.json",
        r#"{"name": "@acme/ids", "type": "module", "main": "./dist/cjs/index.js",
            "exports": {".": {"node": {"require": "./dist/cjs/index.js"},
                              "browser": {"import": "./dist/esm/index.js"},
                              "default": "./dist/cjs/index.js"}}}"#,
    );
    write_file(
        &pkg.join("dist/esm"),
        "index.js",
        "export { id } from './id.js';\nexport const PREFIX = 'acme';\n",
    );
    write_file(
        &pkg.join("dist/esm"),
        "id.js",
        "export function id() {\n  const b = crypto.getRandomValues(new Uint8Array(4));\n  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');\n}\n",
    );
    let old = project.join("node_modules/old-style");
    std::fs::create_dir_all(&old).unwrap();
    write_file(
        &old,
        "package.json",
        r#"{"name": "old-style", "main": "index.js"}"#,
    );
    write_file(
        &old,
        "index.js",
        "const helper = require('./helper');\nexports.answer = helper.double(21);\nmodule.exports.label = 'old';\n",
    );
    write_file(
        &old,
        "helper.js",
        "module.exports = { double: (n) => n * 2 };\n",
    );
    let node = project.join("node_modules/needs-node");
    std::fs::create_dir_all(&node).unwrap();
    write_file(
        &node,
        "package.json",
        r#"{"name": "needs-node", "main": "index.js"}"#,
    );
    write_file(
        &node,
        "index.js",
        "const fs = require('fs');\nmodule.exports = fs;\n",
    );
    write_file(
        &project.join("lib"),
        "tag.ts",
        "import { PREFIX } from \"@acme/ids\";\nexport const tag = (s: string): string => `${PREFIX}:${s}`;\n",
    );
    let main = write_file(
        &project,
        "mod.ts",
        "import { id } from \"@acme/ids\";\nimport { tag } from \"./lib/tag.js\";\n\
         import old, { answer } from \"old-style\";\n\
         export const requestModifier = (ctx: any): void => { ctx.request().headers.set(\"x-id\", tag(id())); ctx.request().headers.set(\"x-old\", `${old.label}:${answer}`); };\n\
         export const responseModifer = (ctx: any): void => {};\n",
    );
    let out = dgate(d, &["build", main.to_str().unwrap()]);
    let said = stderr(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("mod.ts:5:14: warning: export \"responseModifer\" is not a hook; did you mean \"responseModifier\"?"),
        "{said}"
    );
    let summary = said
        .lines()
        .find(|l| l.starts_with("wrote "))
        .unwrap_or_else(|| panic!("{said}"));
    for step in ["parse ", "bundle ", "(5 modules)", "snapshot ", "encode "] {
        assert!(summary.contains(step), "{summary}");
    }
    let request = write_file(d, "req.json", r#"{"method": "GET", "path": "/"}"#);
    let wasm = project.join("mod.wasm");
    let v = ok_json(dgate(
        d,
        &[
            "module",
            "run",
            wasm.to_str().unwrap(),
            "--hook",
            "requestModifier",
            "--request",
            request.to_str().unwrap(),
        ],
    ));
    let id = header(&v["request"]["headers"], "x-id").unwrap_or_else(|| panic!("{v}"));
    assert!(
        id.starts_with("acme:") && id.len() == "acme:".len() + 8,
        "{v}"
    );

    // --quiet: warnings only.
    let out = dgate(d, &["build", main.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success());
    assert!(!stderr(&out).contains("wrote "), "{}", stderr(&out));

    // A CommonJS package, an uninstalled one and a missing file: refused, each with its reason.
    // Each error points at the file and place of the import that failed.
    for (source, expected, at) in [
        (
            "import n from \"needs-node\";",
            "\"fs\" is a Node.js module",
            "needs-node/index.js:1:20: ",
        ),
        (
            "import x from \"not-installed\";",
            "cannot import \"not-installed\"",
            "bad.ts:1:15: ",
        ),
        (
            "import { y } from \"./lib/nope.js\";",
            "no file ",
            "bad.ts:1:19: ",
        ),
    ] {
        let bad = write_file(
            &project,
            "bad.ts",
            &format!("{source}\nexport const requestModifier = (): void => {{}};\n"),
        );
        let out = dgate(d, &["build", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{source}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{source}: {err}");
        assert!(err.contains(at), "{source}: {err}");
        assert!(
            err.trim_end().ends_with('^'),
            "{source}: a code frame: {err}"
        );
    }
}
