//! DGate v0.11 compatibility, end to end: a config in DGate's shape (its keys, `init_resources`,
//! `test_server`), and the command lines of DGate's functional tests (`admin_tests`,
//! `raft_tests`) run unchanged but for the program name, against a real gateway whose upstream
//! is the gateway's own test server.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{BIN, Gateway, eventually, free_port, write_file};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dgate")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A config as DGate's own `config.dgate.yaml` is written: DGate keys dgate does not use, the
/// test server, and resources created at start.
fn dgate_config(dir: &Path, test_port: u16) -> String {
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = write_file(dir, "server.crt", &pair.cert.pem());
    let key = write_file(dir, "server.key", &pair.signing_key.serialize_pem());
    let text = format!(
        r#"version: v1
debug: true
modules: {{timeout: 10s}}
log_level: ${{LOG_LEVEL:-info}}
tags: [debug, local, test]
storage:
  type: file
  dir: {data}
test_server:
  port: {test_port}
  host: 127.0.0.1
  global_headers:
    X-Test-Header: ${{TEST_HEADER:-test}}
proxy:
  host: 127.0.0.1
  console_log_level: info
  transport:
    dns_prefer_go: true
  redirect_https: ["*.secure.test"]
  init_resources:
    namespaces:
      - name: "echo"
    modules:
      - name: "tagger"
        namespace: "echo"
        moduleType: "javascript"
        payload: "export const requestModifier = (ctx) => {{ ctx.request().headers.set('x-init', 'yes'); }};"
    services:
      - name: "echo-svc"
        namespace: "echo"
        urls:
          - "http://127.0.0.1:{test_port}"
    routes:
      - name: "echo-rt"
        paths: ["/*"]
        methods: ["*"]
        namespace: "echo"
        service: "echo-svc"
        modules: ["tagger"]
    domains:
      - name: "echo"
        namespace: "echo"
        patterns: ["echo.*"]
  tls:
    auto_generate: true
    port: {tls_port}
    cert_file: {cert}
    key_file: {key}
admin:
  host: 127.0.0.1
  allow_list:
    - "127.0.0.1/8"
    - "::1"
"#,
        data = dir.join("data").display(),
        tls_port = free_port(),
        cert = cert.display(),
        key = key.display(),
    );
    write_file(dir, "config.dgate.yaml", &text)
        .to_string_lossy()
        .into_owned()
}

async fn get(url: &str, host: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let client = crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client.get(url).header("host", host).send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dgate_config_starts_with_its_init_resources_and_test_server() {
    let dir = tempfile::tempdir().unwrap();
    let test_port = free_port();
    let config = dgate_config(dir.path(), test_port);
    let gw = Gateway::start(&dir.path().join("data"), &["--config", &config]);
    let api = gw.client();
    eventually("the init resources", Duration::from_secs(60), || async {
        let (s, v) = api.get("/api/v1/domain/echo?namespace=echo").await;
        s == 200 && v["data"]["patterns"][0] == "echo.*"
    })
    .await;
    // The init route, through its module, to the test server, which shows what it received.
    let (s, headers, body) = get(&format!("{}/hello?x=1", gw.proxy), "echo.local").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(headers["x-test-header"], "test");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status_code"], 200, "{v}");
    assert_eq!(v["data"]["method"], "GET");
    assert_eq!(v["data"]["path"], "/hello?x=1");
    assert_eq!(v["data"]["req_headers"]["X-Init"][0], "yes", "{v}");
    assert_eq!(v["data"]["global_headers"]["X-Test-Header"], "test");
    // `redirect_https` as DGate's list of host patterns.
    let (s, headers, _) = get(&format!("{}/a?b=c", gw.proxy), "x.secure.test").await;
    assert!(s == 301 || s == 308, "{s}");
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .starts_with("https://x.secure.test:"),
        "{headers:?}"
    );
    let logs = gw.logs();
    for key in [
        "tags",
        "proxy.console_log_level",
        "proxy.transport",
        "proxy.tls.auto_generate",
    ] {
        assert!(
            logs.contains(&format!("key={key}")),
            "no warning about {key}: {logs}"
        );
    }
}

/// `source` as `base64` prints it: lines of 76 characters.
fn base64_lines(source: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(source);
    b64.as_bytes()
        .chunks(76)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A gateway in DGate's debug mode with its test server (the upstream DGate's tests use) on a
/// free port: the data dir to keep, the gateway, and the test server's URL.
fn gateway_with_test_server() -> (tempfile::TempDir, Gateway, String) {
    let dir = tempfile::tempdir().unwrap();
    // Port 0: the ready line says which port the test server got. DGate has no time limit
    // per hook call; dgate's default (50 ms, documents' Raft writes included) is a production
    // setting that a loaded machine running a debug build can overrun. The modules' internet
    // services are local here, so loopback is opened to their fetches.
    let config = write_file(
        dir.path(),
        "test.yaml",
        "debug: true\ntest_server: {port: 0, host: 127.0.0.1}\n\
         modules: {timeout: 10s, fetch: {allow: [127.0.0.1]}}\n",
    );
    let gw = Gateway::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let test_url = gw.test_server.clone().expect("a test server");
    (dir, gw, test_url)
}

/// Runs `dgate` as DGate's scripts run `dgate-cli`: `DGATE_ADMIN_API` names the admin API.
fn dgate_cli(admin: &str, args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .env("DGATE_ADMIN_API", admin)
        .env_remove("DGATE_ADMIN_AUTH")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dgate");
    assert!(
        out.status.success(),
        "dgate {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// DGate's `admin_test.sh`, `raft_test.sh` (one node) and `url_shortener_test.sh`: their
/// `dgate-cli` lines with `dgate` for `dgate-cli`, and their checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgate_functional_admin_tests_pass() {
    let (_dir, gw, test_url) = gateway_with_test_server();
    let admin = gw.admin.as_str();

    // admin_test.sh
    let id = "X1234-5678-9012";
    dgate_cli(
        admin,
        &["-Vf", "namespace", "create", &format!("name=ns-{id}")],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "domain",
            "create",
            &format!("name=dm-{id}"),
            &format!("namespace=ns-{id}"),
            "priority:=12345",
            &format!("patterns={id}.example.com"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "service",
            "create",
            &format!("name=svc-{id}"),
            &format!("namespace=ns-{id}"),
            &format!("urls={test_url}/23456"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "module",
            "create",
            "name=module1",
            &format!("payload@={}", fixture("admin_test.ts")),
            &format!("namespace=ns-{id}"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "route",
            "create",
            &format!("name=rt-{id}"),
            &format!("service=svc-{id}"),
            &format!("namespace=ns-{id}"),
            &format!("paths=/,/{{id}},/{id},/{id}/{{id}}"),
            "methods=GET,POST,PUT",
            "modules=module1",
            "preserveHost:=false",
            "stripPath:=false",
        ],
    );
    let (s, _, _) = get(&format!("{admin}/readyz"), "localhost").await;
    assert_eq!(s, 200);
    let (s, _, body) = get(
        &format!("{}/{id}/34567", gw.proxy),
        &format!("{id}.example.com"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["path"], format!("/23456/{id}/34567"), "{v}");

    // raft_test.sh, on one node: the same with `/{}` among the paths and no module.
    let id = "X2222-3333-4444";
    dgate_cli(
        admin,
        &["-Vf", "namespace", "create", &format!("name=ns-{id}")],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "domain",
            "create",
            &format!("name=dm-{id}"),
            &format!("namespace=ns-{id}"),
            "priority:=777",
            &format!("patterns={id}.example.com"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "service",
            "create",
            &format!("name=svc-{id}"),
            &format!("namespace=ns-{id}"),
            &format!("urls={test_url}/777"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "route",
            "create",
            &format!("name=rt-{id}"),
            &format!("service=svc-{id}"),
            &format!("namespace=ns-{id}"),
            &format!("paths=/,/{{}},/{id},/{id}/{{id}}"),
            "methods=GET,POST,PUT",
            "preserveHost:=false",
            "stripPath:=false",
        ],
    );
    for j in 1..=3 {
        let (s, _, body) = get(
            &format!("{}/{id}/888-{j}", gw.proxy),
            &format!("{id}.example.com"),
        )
        .await;
        assert_eq!(s, 200, "{body}");
    }
    let (s, _, body) = get(
        &format!("{}/anything", gw.proxy),
        &format!("{id}.example.com"),
    )
    .await;
    assert_eq!(s, 200, "/{{}} matches one segment: {body}");

    // url_shortener_test.sh
    let ns = "url_shortener-ns";
    dgate_cli(
        admin,
        &["-Vf", "namespace", "create", &format!("name={ns}")],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "domain",
            "create",
            "name=url_shortener-dm",
            "patterns:=[\"url_shortener.example.com\"]",
            &format!("namespace={ns}"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "collection",
            "create",
            "schema:={\"type\":\"object\",\"properties\":{\"url\":{\"type\":\"string\"}}}",
            "name=short_link",
            "type=document",
            &format!("namespace={ns}"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "module",
            "create",
            "name=url_shortener-mod",
            &format!("payload@={}", fixture("url_shortener.ts")),
            &format!("namespace={ns}"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "route",
            "create",
            "name=base_rt",
            "paths:=[\"/\", \"/{id}\"]",
            "modules:=[\"url_shortener-mod\"]",
            "methods:=[\"GET\",\"POST\"]",
            "stripPath:=true",
            "preserveHost:=true",
            &format!("namespace={ns}"),
        ],
    );
    let client = crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let link = "https://dgate.io/6b3c1e22-1f0e-4d3a-9a53-5f3f0d1c2b7a";
    let res = client
        .post(format!("{}/", gw.proxy))
        .query(&[("url", link)])
        .header("host", "url_shortener.example.com")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let v: Value = res.json().await.unwrap();
    let short = v["id"].as_str().expect("an id").to_string();
    let (s, headers, body) = get(
        &format!("{}/{short}", gw.proxy),
        "url_shortener.example.com",
    )
    .await;
    assert!((300..400).contains(&s), "{s} {body}");
    assert_eq!(headers["location"], link);
}

/// DGate's `multi_module_test.sh` and `change_checker.sh`: a module written before the module it
/// imports, payloads as `base64` prints them (in lines), a route listing both, and a module
/// replaced under a live route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgate_functional_module_tests_pass() {
    let (dir, gw, test_url) = gateway_with_test_server();
    let admin = gw.admin.as_str();

    let ns = "multimod-test-ns";
    dgate_cli(
        admin,
        &["-Vf", "namespace", "create", &format!("name={ns}")],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "domain",
            "create",
            "name=multimod-test-dm",
            "patterns:=[\"multimod-test.example.com\"]",
            &format!("namespace={ns}"),
        ],
    );
    let first = "import { requestModifier } from './multimod2';\n\
                 import { responseModifier as resMod } from './multimod2';\n\
                 const responseModifier = async (ctx) => {\n\
                 \x20 console.log('responseModifier executed from multimod1');\n\
                 \x20 return resMod(ctx);\n\
                 };\n\
                 export { requestModifier, responseModifier };\n";
    let second = "const reqMod = (ctx) => ctx.request().writeJson({ a: 1 });\n\
                  const resMod = async (ctx) => ctx.upstream()?.writeJson({\n\
                  \x20 upstream_body: await ctx.upstream()?.readJson(),\n\
                  \x20 upstream_status: ctx.upstream()?.statusCode,\n\
                  });\n\
                  export { reqMod as requestModifier, resMod as responseModifier };\n";
    // multimod1 first: it imports multimod2, which does not exist yet.
    dgate_cli(
        admin,
        &[
            "-Vf",
            "module",
            "create",
            "name=multimod1",
            &format!("payload={}", base64_lines(first)),
            &format!("namespace={ns}"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "module",
            "create",
            "name=multimod2",
            &format!("payload={}", base64_lines(second)),
            &format!("namespace={ns}"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "service",
            "create",
            "name=base_svc",
            &format!("urls={test_url}/a,{test_url}/b,{test_url}/c"),
            &format!("namespace={ns}"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "route",
            "create",
            "name=base_rt",
            "paths=/,/multimod-test",
            "methods:=[\"GET\"]",
            "modules=multimod1,multimod2",
            "service=base_svc",
            "stripPath:=true",
            "preserveHost:=true",
            &format!("namespace={ns}"),
        ],
    );
    for path in ["/", "/multimod-test"] {
        let (s, _, body) = get(&format!("{}{path}", gw.proxy), "multimod-test.example.com").await;
        assert_eq!(s, 200, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        // The request body multimod2's requestModifier wrote reached the test server.
        assert_eq!(v["upstream_body"]["data"]["body"], "{\"a\":1}", "{v}");
        assert_eq!(v["upstream_status"], 200, "{v}");
    }

    // change_checker.sh: the module under a live route, replaced.
    let ns = "change_checker-ns";
    dgate_cli(
        admin,
        &["-Vf", "namespace", "create", &format!("name={ns}")],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "domain",
            "create",
            "name=change_checker-dm",
            "patterns:=[\"change_checker.example.com\"]",
            &format!("namespace={ns}"),
        ],
    );
    let checker = |n: u32| {
        write_file(
            dir.path(),
            &format!("change_checker_{n}.ts"),
            &format!(
                "export const requestHandler = async (ctx: any) => {{\n  ctx.response().status(201).json({{ mod: \"module{n}\" }});\n}}\n"
            ),
        )
    };
    for n in [1, 2] {
        dgate_cli(
            admin,
            &[
                "-Vf",
                "module",
                "create",
                "name=change_checker-mod",
                &format!("payload@={}", checker(n).display()),
                &format!("namespace={ns}"),
            ],
        );
        if n == 1 {
            dgate_cli(
                admin,
                &[
                    "-Vf",
                    "route",
                    "create",
                    "name=base_rt",
                    "paths:=[\"/\", \"/{id}\"]",
                    "modules:=[\"change_checker-mod\"]",
                    "methods:=[\"GET\",\"POST\"]",
                    "stripPath:=true",
                    "preserveHost:=true",
                    &format!("namespace={ns}"),
                ],
            );
        }
        let (s, _, body) = get(&format!("{}/", gw.proxy), "change_checker.example.com").await;
        assert_eq!(s, 201, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["mod"], format!("module{n}"));
    }
}

/// DGate's `iphash_load_balancer_test.sh`: fetchUpstream picks the service URL by a hash of the
/// client's address and sets response headers through `ctx.response()`; two clients, two URLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgate_functional_iphash_test_passes() {
    let (_dir, gw, test_url) = gateway_with_test_server();
    let admin = gw.admin.as_str();
    let ns = "test-lb-ns";
    dgate_cli(
        admin,
        &["-Vf", "namespace", "create", &format!("name={ns}")],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "domain",
            "create",
            "name=test-lb-dm",
            "patterns:=[\"test-lb.example.com\"]",
            &format!("namespace={ns}"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "module",
            "create",
            "name=printer",
            &format!("payload@={}", fixture("iphash_load_balancer.ts")),
            &format!("namespace={ns}"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "service",
            "create",
            "name=base_svc",
            &format!("urls={test_url}/a,{test_url}/b,{test_url}/c"),
            &format!("namespace={ns}"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "route",
            "create",
            "name=base_rt",
            "paths:=[\"/test-lb\",\"/hello\"]",
            "methods:=[\"GET\"]",
            "modules:=[\"printer\"]",
            "service=base_svc",
            "stripPath:=true",
            "preserveHost:=true",
            &format!("namespace={ns}"),
        ],
    );
    let client = crate::helpers::http();
    let mut paths = Vec::new();
    for forwarded in [None, Some("192.168.0.1")] {
        let mut req = client
            .get(format!("{}/test-lb", gw.proxy))
            .header("host", "test-lb.example.com");
        if let Some(ip) = forwarded {
            req = req.header("x-forwarded-for", ip);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        let remote = res.headers()["x-remote-address"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(remote, forwarded.unwrap_or("127.0.0.1"));
        assert!(res.headers()["x-hash"].to_str().unwrap().ends_with(" / 3"));
        let v: Value = res.json().await.unwrap();
        paths.push(v["data"]["path"].as_str().unwrap().to_string());
    }
    assert_ne!(
        paths[0], paths[1],
        "two clients, two upstream URLs: {paths:?}"
    );
}

/// Stands in for the internet services DGate's module tests call (httpbin, ip-api).
async fn external_service() -> (String, tokio::task::JoinHandle<()>) {
    use axum::routing::get as route_get;
    let app = axum::Router::new()
        .route(
            "/uuid",
            route_get(|| async { axum::Json(serde_json::json!({"uuid": "0f8fad5b-d9cb-469f-a165-70867728950e"})) }),
        )
        .route(
            "/headers",
            route_get(|headers: axum::http::HeaderMap| async move {
                let seen: serde_json::Map<String, Value> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::from(v.to_str().unwrap_or(""))))
                    .collect();
                axum::Json(serde_json::json!({"headers": seen}))
            }),
        )
        .route(
            "/user-agent",
            route_get(|| async { axum::Json(serde_json::json!({"user-agent": "dgate-test"})) }),
        )
        .route(
            "/json/{ip}",
            route_get(|axum::extract::Path(ip): axum::extract::Path<String>| async move {
                axum::Json(serde_json::json!({
                    "status": "success", "query": ip, "country": "Netherlands", "countryCode": "NL",
                    "city": "Amsterdam", "lat": 52.37, "lon": 4.89, "proxy": false
                }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (
        url,
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
    )
}

/// DGate's `performance_test_prep.sh`, `merge_responses_test.sh`, `modify_request_test.sh` and
/// `modify_response_test.sh`, with the modules' internet services pointed at a local one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgate_functional_fetching_module_tests_pass() {
    let (external, _external) = external_service().await;
    let (_dir, gw, test_url) = gateway_with_test_server();
    let admin = gw.admin.as_str();
    // `MOD_B64="$(base64 < file)"`, with EXTERNAL pointed at the local service.
    let payload = |name: &str| {
        let source = std::fs::read_to_string(fixture(name))
            .unwrap()
            .replace("EXTERNAL", &external);
        format!("payload={}", base64_lines(&source))
    };
    let cli = |args: &[&str]| {
        dgate_cli(admin, &[&["-Vf"], args].concat());
    };

    // performance_test_prep.sh
    cli(&["namespace", "create", "name=test-ns1"]);
    cli(&[
        "domain",
        "create",
        "name=test-dm",
        "patterns:=[\"performance.example.com\"]",
        "namespace=test-ns1",
        "priority:=100",
    ]);
    cli(&[
        "service",
        "create",
        "name=test-svc",
        &format!("urls={test_url}"),
        "namespace=test-ns1",
        "retries:=3",
        "retryTimeout=50ms",
    ]);
    cli(&[
        "module",
        "create",
        "name=test-mod",
        &payload("performance_test_prep.ts"),
        "namespace=test-ns1",
    ]);
    cli(&[
        "route",
        "create",
        "name=base-rt1",
        "service=test-svc",
        "methods:=[\"GET\"]",
        "paths:=[\"/svctest\"]",
        "preserveHost:=false",
        "stripPath:=true",
        "namespace=test-ns1",
    ]);
    cli(&[
        "route",
        "create",
        "name=test-rt2",
        "paths:=[\"/modtest\",\"/modview\"]",
        "methods:=[\"GET\"]",
        "modules:=[\"test-mod\"]",
        "stripPath:=false",
        "preserveHost:=false",
        "namespace=test-ns1",
    ]);
    cli(&[
        "route",
        "create",
        "name=test-rt3",
        "paths:=[\"/blank\"]",
        "methods:=[\"GET\"]",
        "stripPath:=false",
        "preserveHost:=false",
        "namespace=test-ns1",
    ]);
    for path in ["/svctest", "/modtest"] {
        let (s, _, body) = get(&format!("{}{path}", gw.proxy), "performance.example.com").await;
        assert!((200..300).contains(&s), "{path}: {s} {body}");
    }
    let (s, _, _) = get(&format!("{}/blank", gw.proxy), "performance.example.com").await;
    assert!(s >= 400, "a route with neither service nor module: {s}");

    // merge_responses_test.sh
    cli(&["namespace", "create", "name=test-ns"]);
    cli(&[
        "domain",
        "create",
        "name=test-dm",
        "patterns:=[\"test.example.com\"]",
        "namespace=test-ns",
    ]);
    cli(&[
        "module",
        "create",
        "name=printer",
        &payload("merge_responses.ts"),
        "namespace=test-ns",
    ]);
    cli(&[
        "route",
        "create",
        "name=base_rt",
        "paths:=[\"/test\",\"/hello\"]",
        "methods:=[\"GET\"]",
        "modules:=[\"printer\"]",
        "stripPath:=true",
        "preserveHost:=true",
        "namespace=test-ns",
    ]);
    let (s, _, body) = get(&format!("{}/hello", gw.proxy), "test.example.com").await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["uuid"], "0f8fad5b-d9cb-469f-a165-70867728950e", "{v}");
    assert_eq!(v["user-agent"], "dgate-test", "{v}");
    assert!(v["headers"].is_object(), "{v}");

    // modify_request_test.sh
    cli(&["namespace", "create", "name=modify_request_test-ns"]);
    cli(&[
        "domain",
        "create",
        "name=modify_request_test-dm",
        "patterns:=[\"modify_request_test.example.com\"]",
        "namespace=modify_request_test-ns",
    ]);
    cli(&[
        "module",
        "create",
        "name=printer",
        &payload("modify_request.ts"),
        "namespace=modify_request_test-ns",
    ]);
    cli(&[
        "service",
        "create",
        "name=base_svc",
        &format!("urls={test_url}"),
        "namespace=modify_request_test-ns",
    ]);
    cli(&[
        "route",
        "create",
        "name=base_rt",
        "paths:=[\"/modify_request_test\"]",
        "methods:=[\"GET\"]",
        "modules:=[\"printer\"]",
        "stripPath:=true",
        "preserveHost:=true",
        "namespace=modify_request_test-ns",
        "service=base_svc",
    ]);
    for _ in 0..2 {
        // The second time from the module's cache.
        let res = crate::helpers::http()
            .get(format!("{}/modify_request_test", gw.proxy))
            .header("host", "modify_request_test.example.com")
            .header("x-forwarded-for", "1.1.1.1")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let v: Value = res.json().await.unwrap();
        let seen = &v["data"]["req_headers"];
        assert_eq!(seen["X-Geo-Country"][0], "Netherlands", "{v}");
        assert_eq!(seen["X-Geo-Latitude"][0], "52.37", "{v}");
        assert_eq!(seen["X-Geo-Proxy"][0], "false", "{v}");
    }

    // modify_response_test.sh
    cli(&["namespace", "create", "name=test-ns2"]);
    cli(&[
        "domain",
        "create",
        "name=test-dm2",
        "patterns:=[\"test2.example.com\"]",
        "namespace=test-ns2",
    ]);
    cli(&[
        "module",
        "create",
        "name=printer",
        &payload("modify_response.ts"),
        "namespace=test-ns2",
    ]);
    cli(&[
        "service",
        "create",
        "name=base_svc",
        &format!("urls={test_url}"),
        "namespace=test-ns2",
    ]);
    cli(&[
        "route",
        "create",
        "name=base_rt",
        "paths:=[\"/test\",\"/hello\"]",
        "methods:=[\"GET\"]",
        "modules:=[\"printer\"]",
        "stripPath:=true",
        "preserveHost:=true",
        "namespace=test-ns2",
        "service=base_svc",
    ]);
    let (s, _, body) = get(&format!("{}/test", gw.proxy), "test2.example.com").await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"]["uuid"], "0f8fad5b-d9cb-469f-a165-70867728950e",
        "{v}"
    );
    assert_eq!(
        v["data"]["method"], "GET",
        "the test server's answer, changed: {v}"
    );
}

/// DGate's `raft_test.sh` on configs in the shape of its `raft_tests/test*.yaml`: every node lists
/// every node (scheme-less), no shared key, a watch-only node (`admin.watch_only`); writes through
/// the first node reach every proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgate_raft_test_on_dgate_shaped_configs() {
    let dir = tempfile::tempdir().unwrap();
    // Only the admin ports are fixed (every config lists every node); the proxies take free
    // ones, and the ready line says which.
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let cluster: String = ports
        .iter()
        .map(|admin| format!("      - \"localhost:{admin}\"\n"))
        .collect();
    let mut nodes = Vec::new();
    for (i, admin) in ports.iter().enumerate() {
        let n = i + 1;
        let watch = if n == 4 { "  watch_only: true\n" } else { "" };
        let test_server = if n == 1 {
            "test_server:\n  port: 0\n  host: 127.0.0.1\n".to_string()
        } else {
            String::new()
        };
        let text = format!(
            "version: v1\nlog_level: info\ndebug: true\ntags: [\"dev\", \"internal\"]\n\
             storage:\n  type: file\n  dir: {data}\n{test_server}\
             proxy:\n  port: 0\n  host: 127.0.0.1\n  redirect_https:\n    - /^(.+\\.)?example\\.(yyy|net)$/\n  allowed_domains:\n    - \"*local*\"\n    - /^(.+\\.)?example\\.(yyy|com|net)$/\n\
             admin:\n  port: {admin}\n  host: 127.0.0.1\n{watch}  replication:\n    id: \"test{n}\"\n    bootstrap_cluster: {boot}\n    advert_address: \"localhost:{admin}\"\n    cluster_address:\n{cluster}",
            data = dir.path().join(format!("data{n}")).display(),
            boot = n == 1,
        );
        let config = write_file(dir.path(), &format!("test{n}.yaml"), &text);
        let admin_port = admin.to_string();
        nodes.push(Gateway::start(
            &dir.path().join(format!("data{n}")),
            &[
                "--config",
                config.to_str().unwrap(),
                "--admin-port",
                &admin_port,
            ],
        ));
    }
    let first = nodes[0].client();
    eventually(
        "four members, one of them a learner",
        Duration::from_secs(60),
        || async {
            let (s, v) = first.get("/api/v1/cluster").await;
            let members = v["data"]["members"].as_array().cloned().unwrap_or_default();
            s == 200
                && members.len() == 4
                && members.iter().filter(|m| m["role"] == "learner").count() == 1
        },
    )
    .await;

    let admin = nodes[0].admin.as_str();
    let test_url = nodes[0].test_server.clone().expect("a test server");
    let id = "X4242-1717-2323";
    dgate_cli(
        admin,
        &["-Vf", "namespace", "create", &format!("name=ns-{id}")],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "domain",
            "create",
            &format!("name=dm-{id}"),
            &format!("namespace=ns-{id}"),
            "priority:=31337",
            &format!("patterns={id}.example.com"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "service",
            "create",
            &format!("name=svc-{id}"),
            &format!("namespace=ns-{id}"),
            &format!("urls={test_url}/4242"),
        ],
    );
    dgate_cli(
        admin,
        &[
            "-Vf",
            "route",
            "create",
            &format!("name=rt-{id}"),
            &format!("service=svc-{id}"),
            &format!("namespace=ns-{id}"),
            &format!("paths=/,/{{}},/{id},/{id}/{{id}}"),
            "methods=GET,POST,PUT",
            "preserveHost:=false",
            "stripPath:=false",
        ],
    );
    let (s, _, _) = get(&format!("{admin}/readyz"), "localhost").await;
    assert_eq!(s, 200);
    // Every node serves it, the watch-only one too.
    for (i, node) in nodes.iter().enumerate() {
        let url = format!("{}/{id}/5151-{i}", node.proxy);
        eventually(
            &format!("node {} to serve the route", i + 1),
            Duration::from_secs(60),
            || {
                let url = url.clone();
                async move { get(&url, &format!("{id}.example.com")).await.0 == 200 }
            },
        )
        .await;
    }
    // The watch-only node takes no part in votes but still answers reads.
    let (s, v) = nodes[3]
        .client()
        .get(&format!("/api/v1/route/rt-{id}?namespace=ns-{id}"))
        .await;
    assert_eq!(s, 200, "{v}");
}
