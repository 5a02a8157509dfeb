//! Operating a gateway: the version history of modules and routes and rolling back to one, and
//! the log lines an operator reads (access log, admin changes, module compiles and failures).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::helpers::{Api, Gateway, cli, eventually, ok_put, write_file};

fn handler(text: &str) -> String {
    format!("export function requestHandler(ctx) {{ ctx.response().json({{ v: {text:?} }}); }}\n")
}

async fn put_module(api: &Api, text: &str) {
    ok_put(
        api,
        "module",
        json!({"name": "m", "payload": B64.encode(handler(text)), "moduleType": "javascript"}),
    )
    .await;
}

/// What the route `/hello` answers: its `v`, or the status when it fails.
async fn served(http: &reqwest::Client, gw: &Gateway, path: &str) -> String {
    let res = http
        .get(format!("{}{path}", gw.proxy))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    match body["v"].as_str() {
        Some(v) if status == 200 => v.to_string(),
        _ => status.to_string(),
    }
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Each write of a module or route is a version; `dgate history` lists them (who, when, which
/// is current), `dgate rollback` writes an earlier one again (a new version, served at once),
/// a deleted route comes back with a rollback, and the history survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_and_routes_roll_back_to_kept_versions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gw = Gateway::start(&data, &[]);
    let api = gw.client();
    let http = crate::helpers::http();
    put_module(&api, "one").await;
    ok_put(
        &api,
        "route",
        json!({"name": "hello", "paths": ["/hello"], "methods": ["GET"], "modules": ["m"]}),
    )
    .await;
    put_module(&api, "two").await;
    assert_eq!(served(&http, &gw, "/hello").await, "two");
    // Whether this node has the stored version ready (what `dgate deploy` asks each node).
    let (s, body) = api.get("/api/v1/module/m/status").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"]["ready"], true, "{body}");
    assert_eq!(body["data"]["node"], "dgate");
    assert_eq!(
        body["data"]["hash"].as_str().map(str::len),
        Some(64),
        "{body}"
    );
    assert_eq!(api.get("/api/v1/route/hello/status").await.0, 400);
    assert_eq!(api.get("/api/v1/module/nope/status").await.0, 404);

    let (s, body) = api.get("/api/v1/module/m/history").await;
    assert_eq!(s, 200, "{body}");
    let versions = body["data"].as_array().unwrap();
    assert_eq!(body["count"], 2);
    assert_eq!(versions[0]["version"], 2, "newest first: {body}");
    assert_eq!(versions[0]["current"], true);
    assert_eq!(versions[1]["current"], false);
    assert_eq!(versions[0]["by"], "anonymous");
    assert!(
        versions[0]["at"]
            .as_str()
            .is_some_and(|t| t.starts_with("20"))
    );
    assert!(
        versions[1]["resource"].get("payload").is_none(),
        "payloads only when asked: {body}"
    );
    let (_, full) = api.get("/api/v1/module/m/history?payload=true").await;
    assert_eq!(
        full["data"][1]["resource"]["payload"],
        json!(B64.encode(handler("one")))
    );

    // The CLI: a table, then a rollback to the version before the current one.
    let table = stdout(&cli(&gw.admin, &["history", "module", "m"]));
    assert!(table.lines().next().unwrap().contains("VERSION"), "{table}");
    assert!(
        table.lines().nth(1).unwrap().contains('*'),
        "the current version is marked: {table}"
    );
    let said = stdout(&cli(&gw.admin, &["rollback", "module", "m"]));
    assert_eq!(
        said.trim(),
        "module m restored to version 1 (now version 3)"
    );
    // The node that took the write compiled it before answering: served at once.
    assert_eq!(served(&http, &gw, "/hello").await, "one");
    let said = stdout(&cli(&gw.admin, &["rollback", "mod", "m", "--to", "2"]));
    assert!(
        said.contains("restored to version 2 (now version 4)"),
        "{said}"
    );
    assert_eq!(served(&http, &gw, "/hello").await, "two");

    // Refusals: a version not kept, the current version, a kind without history.
    let out = cli(&gw.admin, &["rollback", "module", "m", "--to", "99"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("version 99 of module"), "{err}");
    assert!(err.contains("kept: 1 to 4"), "{err}");
    let (s, body) = api
        .raw("POST", "/api/v1/module/m/rollback?to=4", None)
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("already at version 4"),
        "{body}"
    );
    let (s, body) = api.get("/api/v1/service/x/history").await;
    assert_eq!(s, 400, "{body}");
    let (s, body) = api.get("/api/v1/module/nope/history").await;
    assert_eq!(s, 404, "{body}");
    let (s, body) = api
        .raw("POST", "/api/v1/module/m/rollback?to=x", None)
        .await;
    assert_eq!(s, 400, "{body}");

    // A route: change its path, roll back; delete it, roll back to bring it back.
    ok_put(
        &api,
        "route",
        json!({"name": "hello", "paths": ["/hi"], "methods": ["GET"], "modules": ["m"]}),
    )
    .await;
    assert_eq!(served(&http, &gw, "/hi").await, "two");
    stdout(&cli(&gw.admin, &["rollback", "route", "hello"]));
    assert_eq!(served(&http, &gw, "/hello").await, "two");
    assert_eq!(served(&http, &gw, "/hi").await, "404");
    let (s, _) = api.raw("DELETE", "/api/v1/route/hello", None).await;
    assert_eq!(s, 204);
    assert_eq!(served(&http, &gw, "/hello").await, "404");
    let table = stdout(&cli(&gw.admin, &["history", "route", "hello"]));
    assert!(table.lines().nth(1).unwrap().contains("deleted"), "{table}");
    let (s, body) = api.raw("POST", "/api/v1/route/hello/rollback", None).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["data"]["restored"], 3);
    assert_eq!(body["data"]["version"], 5);
    assert_eq!(served(&http, &gw, "/hello").await, "two");
    // A rollback refused by the state's rules changes nothing: the module is in use.
    let (s, _) = api.raw("DELETE", "/api/v1/route/hello", None).await;
    assert_eq!(s, 204);
    let (s, _) = api.raw("DELETE", "/api/v1/module/m", None).await;
    assert_eq!(s, 204);
    let (s, body) = api
        .raw("POST", "/api/v1/route/hello/rollback?to=5", None)
        .await;
    assert_eq!(s, 422, "the route's module is gone: {body}");
    let (_, body) = api.get("/api/v1/route/hello/history").await;
    assert_eq!(body["data"][0]["version"], 6, "nothing was written: {body}");

    // Kept across a restart.
    gw.stop();
    let gw = Gateway::start(&data, &[]);
    let (s, body) = gw.client().get("/api/v1/module/m/history").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"][0]["version"], 5);
    assert_eq!(body["data"][0]["deleted"], true);
}

/// With `log_format: json` every line is one JSON object; the access log (when on) has one
/// line per request with the configured fields; each admin change has a line with who made it,
/// from where, and the version it made; each module compile a line with its time and size; a
/// module that throws a line with its namespace, route, module and the stack in its own source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tell_requests_changes_compiles_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "c.yaml",
        "log_format: json\n\
         admin:\n  auth_method: key\n  key_auth:\n    keys: [first, second]\n\
         proxy:\n  access_log:\n    enabled: true\n    fields: [method, path, query, status, route, module, user_agent, duration_ms]\n",
    );
    let gw = Gateway::start_env(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &[("RUST_LOG", "dgate=info")],
    );
    let api = gw.client().with_header("X-DGate-Key", "second");
    let source = "export function requestHandler(ctx) {\n  if (ctx.request().query.get(\"fail\")) {\n    throw new Error(\"boom\");\n  }\n  ctx.response().json({ ok: true });\n}\n";
    ok_put(
        &api,
        "module",
        json!({"name": "thrower", "payload": B64.encode(source), "moduleType": "javascript"}),
    )
    .await;
    ok_put(
        &api,
        "route",
        json!({"name": "t", "paths": ["/t"], "methods": ["GET"], "modules": ["thrower"]}),
    )
    .await;
    let http = crate::helpers::http();
    let ok = http
        .get(format!("{}/t?x=1", gw.proxy))
        .header("user-agent", "ops-test/1")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let failed = http
        .get(format!("{}/t?fail=1", gw.proxy))
        .send()
        .await
        .unwrap();
    assert!(failed.status().is_server_error(), "{}", failed.status());

    let lines = |logs: &str| -> Vec<Value> {
        logs.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect()
    };
    let with = |target: &'static str| move |l: &&Value| l["target"] == target;
    eventually("the access lines", Duration::from_secs(10), || {
        let n = lines(&gw.logs())
            .iter()
            .filter(with("dgate::access"))
            .count();
        async move { n >= 2 }
    })
    .await;
    let logs = lines(&gw.logs());

    let access: Vec<&Value> = logs.iter().filter(with("dgate::access")).collect();
    let first = access
        .iter()
        .find(|l| l["query"] == "x=1")
        .unwrap_or_else(|| panic!("{access:?}"));
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/t");
    assert_eq!(first["status"], 200);
    assert_eq!(first["route"], "t");
    assert_eq!(first["module"], "thrower");
    assert_eq!(first["user_agent"], "ops-test/1");
    assert!(first["duration_ms"].as_f64().is_some(), "{first}");
    assert!(
        first.get("client").is_none(),
        "only the configured fields: {first}"
    );
    assert!(first.get("host").is_none(), "{first}");

    let audit: Vec<&Value> = logs.iter().filter(with("dgate::audit")).collect();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["op"], "create");
    assert_eq!(audit[0]["kind"], "module");
    assert_eq!(audit[0]["name"], "thrower");
    assert_eq!(audit[0]["version"], 1);
    assert_eq!(audit[0]["span"]["who"], "key 1");
    assert_eq!(audit[0]["span"]["from"], "127.0.0.1");
    assert_eq!(audit[1]["kind"], "route");

    let compiled = logs
        .iter()
        .find(|l| l["target"] == "dgate::modules" && l["module"] == "thrower")
        .unwrap_or_else(|| panic!("no compile line: {logs:?}"));
    assert!(compiled["size"].as_u64().unwrap() > 1000, "{compiled}");
    assert!(compiled["took_ms"].as_u64().is_some(), "{compiled}");

    let failure = logs
        .iter()
        .find(|l| l["message"] == "module failed")
        .unwrap_or_else(|| panic!("no failure line: {logs:?}"));
    assert_eq!(failure["namespace"], "default");
    assert_eq!(failure["route"], "t");
    assert_eq!(failure["module"], "thrower");
    assert!(
        failure["error"].as_str().unwrap().contains("boom"),
        "{failure}"
    );
    // Line 3 of thrower.js, mapped back from the component.
    assert!(
        failure["stack"].as_str().unwrap().contains("thrower.js:3:"),
        "{failure}"
    );
}

/// Off by default: no access lines, and text lines otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_is_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_env(&dir.path().join("data"), &[], &[("RUST_LOG", "dgate=info")]);
    let http = crate::helpers::http();
    let res = http
        .get(format!("{}/nothing-here", gw.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    ok_put(&gw.client(), "namespace", json!({"name": "n"})).await;
    let logs = gw.stop_and_logs();
    assert!(!logs.contains("dgate::access"), "{logs}");
    let audit = logs
        .lines()
        .find(|l| l.contains("dgate::audit"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(audit.contains("who=anonymous"), "{audit}");
    assert!(audit.contains("op=\"create\""), "{audit}");
    assert!(!audit.starts_with('{'), "text by default: {audit}");
}
