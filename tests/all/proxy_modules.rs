//! Modules on the proxy path: the sdk-ts examples through a real gateway and real upstreams,
//! hot swap, failures that fail only their request, and host functions on the real state.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::helpers::{Api, Gateway, ok_put};
use crate::upstream;

fn example(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/sdk-ts/examples/{name}.ts",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn put_module(api: &Api, name: &str, source: &str, ty: &str) {
    ok_put(
        api,
        "module",
        json!({"name": name, "payload": B64.encode(source), "moduleType": ty}),
    )
    .await;
}

/// A gateway whose service `s` is one fresh upstream (`_dir` holds the gateway's data).
struct WithService {
    _dir: tempfile::TempDir,
    up: upstream::Upstream,
    gw: Gateway,
    api: Api,
    http: reqwest::Client,
}

async fn gateway_with_service() -> WithService {
    let up = upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    // Local upstreams stand in for remote ones: loopback is opened to modules' fetches.
    let config = crate::helpers::write_file(
        dir.path(),
        "c.yaml",
        "modules: {fetch: {allow: [127.0.0.1]}}\n",
    );
    let gw = Gateway::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let api = gw.client();
    ok_put(&api, "service", json!({"name": "s", "urls": [up.url()]})).await;
    WithService {
        _dir: dir,
        up,
        gw,
        api,
        http: crate::helpers::http(),
    }
}

/// GET `url` and parse the JSON answer.
async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_run_on_the_proxy_path() {
    let up_a = upstream::start("a").await;
    let up_b = upstream::start("b").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&dir.path().join("data"), &[]);
    let api = gw.client();
    let http = crate::helpers::http();
    ok_put(
        &api,
        "service",
        json!({"name": "s", "urls": [up_a.url(), up_b.url()]}),
    )
    .await;

    // Request modifier: the upstream sees the added headers and the moved query parameter.
    put_module(&api, "add-header", &example("add-header"), "typescript").await;
    ok_put(&api, "route", json!({"name": "mod", "paths": ["/mod/*"], "methods": ["*"], "service": "s", "modules": ["add-header"]})).await;
    let res = http
        .get(format!("{}/mod/x?v=3&keep=1", gw.proxy))
        .header("cf-ipcountry", "NL")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["headers"]["x-client-country"], "NL", "{v}");
    assert_eq!(v["headers"]["x-api-version"], "3", "{v}");
    assert_eq!(v["query"], "keep=1", "{v}");
    assert_eq!(
        v["headers"]["x-request-id"].as_str().map(str::len),
        Some(36),
        "{v}"
    );

    // Response modifier and error handler.
    put_module(&api, "envelope", &example("json-response"), "typescript").await;
    ok_put(&api, "route", json!({"name": "env", "paths": ["/env/*"], "methods": ["*"], "service": "s", "modules": ["envelope"]})).await;
    let res = http
        .get(format!("{}/env/thing", gw.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-wrapped"], "1");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["route"], "env");
    assert_eq!(v["data"]["path"], "/env/thing");
    ok_put(
        &api,
        "service",
        json!({"name": "down", "urls": ["http://127.0.0.1:9"]}),
    )
    .await;
    ok_put(&api, "route", json!({"name": "env-down", "paths": ["/down/*"], "methods": ["*"], "service": "down", "modules": ["envelope"]})).await;
    let res = http
        .get(format!("{}/down/x", gw.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["status"], 502);

    // fetchUpstream: one client always lands on the same upstream of the two.
    put_module(&api, "ip-hash", &example("ip-hash"), "typescript").await;
    ok_put(&api, "route", json!({"name": "lb", "paths": ["/lb"], "methods": ["GET"], "service": "s", "modules": ["ip-hash"]})).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        let v: Value = get_json(&http, format!("{}/lb", gw.proxy)).await;
        seen.insert(v["upstream"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 1, "{seen:?}");

    // Request handler with documents on the real state.
    ok_put(
        &api,
        "collection",
        json!({"name": "short_link", "schema": {"type": "object", "required": ["url"]}}),
    )
    .await;
    put_module(&api, "shortener", &example("url-shortener"), "typescript").await;
    ok_put(&api, "route", json!({"name": "short", "paths": ["/s", "/s/{id}"], "methods": ["GET", "POST"], "modules": ["shortener"]})).await;
    let res = http
        .post(format!("{}/s?url=https://example.com/page", gw.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, doc) = api
        .get(&format!("/api/v1/document/{id}?collection=short_link"))
        .await;
    assert_eq!(s, 200, "{doc}");
    assert_eq!(doc["data"]["data"]["url"], "https://example.com/page");
    let no_redirect = crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirect
        .get(format!("{}/s/{id}", gw.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "https://example.com/page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_fail_one_request_and_modules_swap_live() {
    let WithService {
        _dir,
        up: _up,
        gw,
        api,
        http,
    } = gateway_with_service().await;
    let faulty = include_str!("../fixtures/faulty-route.js");
    put_module(&api, "m", faulty, "javascript").await;
    ok_put(
        &api,
        "route",
        json!({"name": "r", "paths": ["/*"], "methods": ["*"], "service": "s", "modules": ["m"]}),
    )
    .await;
    for mode in ["loop", "alloc", "throw"] {
        let res = http
            .get(format!("{}/x", gw.proxy))
            .header("x-mode", mode)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 502, "{mode}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"], "module failed", "{mode}: {v}");
        // The next request on the route succeeds.
        let v: Value = get_json(&http, format!("{}/x", gw.proxy)).await;
        assert_eq!(v["headers"]["x-version"], "1", "after {mode}: {v}");
    }
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("dgate_module_failures_total{namespace=\"default\",route=\"r\"} 3"),
        "{metrics}"
    );

    // console.* goes to the gateway's log with the namespace, module and route.
    let res = http
        .get(format!("{}/logged", gw.proxy))
        .header("x-mode", "log")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // A new payload is live on the next request.
    put_module(
        &api,
        "m",
        &faulty.replace("\"x-version\", \"1\"", "\"x-version\", \"2\""),
        "javascript",
    )
    .await;
    let v: Value = get_json(&http, format!("{}/x", gw.proxy)).await;
    assert_eq!(v["headers"]["x-version"], "2", "{v}");
    let logs = gw.stop_and_logs();
    // The gateway compiled the module in its `dgate __compile` child, not in-process.
    assert!(!logs.contains("compiling in-process"), "{logs}");
    let line = logs
        .lines()
        .find(|l| l.contains("seen /logged"))
        .unwrap_or_else(|| panic!("no module log line in:\n{logs}"));
    assert!(
        line.contains("WARN")
            && line.contains("module=m")
            && line.contains("route=r")
            && line.contains("namespace=default"),
        "{line}"
    );
}

/// Hooks that never read a body let it stream: 64 MiB each way through a route whose module has a
/// request and a response modifier, past the 16 MiB a module route would read into memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_a_hook_never_reads_stream_through() {
    let WithService {
        _dir,
        up: _up,
        gw,
        api,
        http,
    } = gateway_with_service().await;
    let headers_only = "export const requestModifier = (ctx) => { ctx.request().headers.set('x-a', '1'); };\nexport const responseModifier = (ctx, res) => { res.headers.set('x-b', '2'); };\n";
    put_module(&api, "h", headers_only, "javascript").await;
    ok_put(
        &api,
        "route",
        json!({"name": "r", "paths": ["/*"], "methods": ["*"], "service": "s", "modules": ["h"]}),
    )
    .await;
    let size = 64u64 << 20;
    let res = http
        .post(format!("{}/upload", gw.proxy))
        .body(vec![7u8; size as usize])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-b"], "2");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["received"], size, "{v}");
    let res = http
        .get(format!("{}/big?bytes={size}", gw.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-b"], "2");
    assert_eq!(res.bytes().await.unwrap().len() as u64, size);
    // A hook that reads the body gets it, up to the limit: past it, the request fails with 502
    // (the hook's readBody throws) rather than buffering without bound.
    let reader = "export const requestModifier = (ctx) => { ctx.request().headers.set('x-len', String(ctx.request().readBody().length)); };\n";
    put_module(&api, "h", reader, "javascript").await;
    let v: Value = http
        .post(format!("{}/echo", gw.proxy))
        .body(vec![1u8; 1000])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["headers"]["x-len"], "1000", "{v}");
    assert_eq!(v["headers"]["content-length"], "1000", "{v}");
    let res = http
        .post(format!("{}/echo", gw.proxy))
        .body(vec![1u8; 17 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
}

/// A module's own `limits` replace the config's for its hooks only, and are checked on write; a
/// client that leaves mid-request is counted as a 499 and its upstream request is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_limits_and_clients_that_leave() {
    let WithService {
        _dir,
        up,
        gw,
        api,
        http,
    } = gateway_with_service().await;
    // About 200,000 loop iterations: well within the config's fuel, not within 1,000,000. The
    // wall-time limit is generous where the config's fuel is what is checked: on a loaded
    // machine the loop can outlast the default 50 ms.
    let spin = include_str!("../fixtures/spin.js");
    let module = |limits: Value| json!({"name": "spin", "payload": B64.encode(spin), "moduleType": "javascript", "limits": limits});
    ok_put(&api, "module", module(json!({"timeout": "10s"}))).await;
    ok_put(
        &api,
        "route",
        json!({"name": "r", "paths": ["/*"], "methods": ["*"], "service": "s", "modules": ["spin"]}),
    )
    .await;
    let v = get_json(&http, format!("{}/x", gw.proxy)).await;
    assert_eq!(v["headers"]["x-spin"], "19999900000", "{v}");

    ok_put(
        &api,
        "module",
        module(json!({"fuel": 1_000_000, "memory": "32MiB", "timeout": "20ms"})),
    )
    .await;
    let (_, shown) = api.get("/api/v1/module/spin").await;
    let shown = &shown["data"];
    assert_eq!(
        shown["limits"],
        json!({"fuel": 1_000_000, "memory": "32MiB", "timeout": "20ms"}),
        "{shown}"
    );
    let res = http.get(format!("{}/x", gw.proxy)).send().await.unwrap();
    assert_eq!(res.status(), 502);

    // Back to the config's fuel and memory: the same payload works again.
    ok_put(
        &api,
        "module",
        module(json!({"maxFetches": 2, "timeout": "10s"})),
    )
    .await;
    let v = get_json(&http, format!("{}/x", gw.proxy)).await;
    assert_eq!(v["headers"]["x-spin"], "19999900000", "{v}");

    for (limits, field) in [
        (json!({"fuel": 0}), "limits.fuel"),
        (json!({"memory": "512KiB"}), "limits.memory"),
        (json!({"timeout": "2m"}), "limits.timeout"),
        (json!({"cpu": 1}), "cpu"),
    ] {
        let (status, body) = api.put("module", module(limits.clone())).await;
        assert_eq!(status, 422, "{limits}: {body}");
        assert!(body["error"].as_str().unwrap().contains(field), "{body}");
    }

    // The wall-time limit also bounds a hook waiting on fetch (to another upstream, whose
    // cancelled requests this test does not count).
    let slow = upstream::start("b").await;
    let waits = format!(
        "export async function requestModifier(ctx) {{ await fetch(\"{}/hang\"); }}\n",
        slow.url()
    );
    ok_put(
        &api,
        "module",
        json!({"name": "waits", "payload": B64.encode(&waits), "moduleType": "javascript",
               "limits": {"timeout": "200ms"}}),
    )
    .await;
    ok_put(
        &api,
        "route",
        json!({"name": "w", "paths": ["/w/*"], "methods": ["*"], "service": "s", "modules": ["waits"]}),
    )
    .await;
    // The first request also waits for the module's compile; the second measures the limit.
    let res = http.get(format!("{}/w/x", gw.proxy)).send().await.unwrap();
    assert_eq!(res.status(), 502);
    let started = std::time::Instant::now();
    let res = http.get(format!("{}/w/x", gw.proxy)).send().await.unwrap();
    assert_eq!(res.status(), 502);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );

    // A client that gives up while the upstream is still working.
    let impatient = crate::helpers::http_builder()
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    assert!(
        impatient
            .get(format!("{}/hang", gw.proxy))
            .send()
            .await
            .is_err()
    );
    // The upstream sees its connection close when the proxy drops the request: on a busy
    // machine that can take a while.
    let mut metrics = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        metrics = gw.metrics().await;
        if metrics
            .contains(r#"dgate_proxy_requests_total{namespace="default",route="r",status="4xx"} 1"#)
            && up.cancelled.load(std::sync::atomic::Ordering::SeqCst) == 1
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        metrics.contains(
            r#"dgate_proxy_requests_total{namespace="default",route="r",status="4xx"} 1"#
        ),
        "{metrics}"
    );
    assert_eq!(up.cancelled.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A module imports the other JS/TS modules of its namespace by name (DGate's multi-module
/// routes); changing an imported module rebuilds its importers, and a change that would break
/// one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_import_other_modules_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&dir.path().join("data"), &[]);
    let api = gw.client();
    let http = crate::helpers::http();
    let lib = |word: &str| {
        format!("export const greet = (name: string): string => \"{word} \" + name;\n")
    };
    put_module(&api, "lib", &lib("hello"), "typescript").await;
    put_module(
        &api,
        "main",
        r#"import { greet } from "./lib";
export function requestHandler(ctx) { ctx.response().json({ msg: greet(ctx.pathParam("who")) }); }
"#,
        "javascript",
    )
    .await;
    ok_put(
        &api,
        "route",
        json!({"name": "hi", "paths": ["/hi/{who}"], "methods": ["GET"], "modules": ["main", "lib"]}),
    )
    .await;
    let v = get_json(&http, format!("{}/hi/ann", gw.proxy)).await;
    assert_eq!(v["msg"], "hello ann", "{v}");

    // A new version of the imported module is live in its importer on the next request.
    put_module(&api, "lib", &lib("bye"), "typescript").await;
    let v = get_json(&http, format!("{}/hi/ann", gw.proxy)).await;
    assert_eq!(v["msg"], "bye ann", "{v}");

    // A version that would break an importer is refused, and nothing changes.
    let (status, body) = api
        .put(
            "module",
            json!({"name": "lib", "moduleType": "typescript", "payload": B64.encode("export const other = 1;\n")}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("\"main\"") && msg.contains("greet"), "{msg}");
    let v = get_json(&http, format!("{}/hi/ann", gw.proxy)).await;
    assert_eq!(v["msg"], "bye ann", "{v}");

    // A module may be written before the module it imports, as in DGate: it is stored unbuilt
    // (its route answers 502), and built when that module is written, in the same write.
    put_module(
        &api,
        "early",
        "import { word } from \"./later\";\nexport function requestHandler(ctx) { ctx.response().json({ word }); }\n",
        "javascript",
    )
    .await;
    ok_put(
        &api,
        "route",
        json!({"name": "early", "paths": ["/early"], "methods": ["GET"], "modules": ["early"]}),
    )
    .await;
    let res = http
        .get(format!("{}/early", gw.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    put_module(
        &api,
        "later",
        "export const word = \"now\";\n",
        "javascript",
    )
    .await;
    let v = get_json(&http, format!("{}/early", gw.proxy)).await;
    assert_eq!(v["word"], "now", "{v}");

    // Only the built-ins and modules of the namespace, by name, can be imported.
    let (status, body) = api
        .put(
            "module",
            json!({"name": "bad", "moduleType": "javascript",
                   "payload": B64.encode("import { x } from \"./dir/nowhere\";\nexport const requestHandler = () => x;\n")}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("cannot import \"./dir/nowhere\""),
        "{body}"
    );
}
