//! The admin Router in-process (no sockets), through `tower::ServiceExt::oneshot`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::*;
use crate::config::{AuthMethod, BasicAuthConfig, BasicUser, KeyAuthConfig};
use crate::storage::Store;
use crate::units::ByteSize;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

async fn app_with(config: Config, peer: [u8; 4]) -> Router {
    let cluster = Cluster::single_node(Store::open_memory().unwrap(), "http://127.0.0.1:9080")
        .await
        .unwrap();
    router(
        &config,
        cluster,
        Arc::new(Metrics::new().unwrap()),
        crate::build::Builder::InProcess,
    )
    .layer(MockConnectInfo(SocketAddr::from((peer, 40000))))
}

async fn app() -> Router {
    app_with(Config::default(), [127, 0, 0, 1]).await
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
    call_with(app, Request::builder().method(method).uri(uri), body).await
}

async fn call_with(
    app: &Router,
    req: axum::http::request::Builder,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, v)
}

async fn put(app: &Router, kind: &str, body: Value) -> (StatusCode, Value) {
    call(
        app,
        "PUT",
        &format!("/api/v1/{kind}"),
        Some(&body.to_string()),
    )
    .await
}

async fn assert_error(resp: (StatusCode, Value), status: StatusCode, contains: &str) {
    let (got, body) = resp;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains(contains),
        "error {msg:?} should contain {contains:?}"
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let app = app().await;
    let (s, body) = call(&app, "GET", "/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let (s, body) = call(&app, "GET", "/readyz", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn namespace_service_route_crud() {
    let app = app().await;
    let (s, body) = put(&app, "namespace", json!({"name": "ns1"})).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["name"], "ns1");
    let (s, _) = put(&app, "namespace", json!({"name": "ns1", "tags": ["a"]})).await;
    assert_eq!(s, StatusCode::OK);

    let (s, body) = put(
        &app,
        "service",
        json!({"name": "svc", "namespace": "ns1", "urls": ["http://127.0.0.1:8081"]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = put(
        &app,
        "route",
        json!({"name": "rt", "namespace": "ns1", "paths": ["/x/*"], "methods": ["GET"], "service": "svc"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    let (s, body) = call(&app, "GET", "/api/v1/route?namespace=ns1", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["status_code"], 200);
    assert_eq!(body["count"], 1);
    assert_eq!(body["data"][0]["service"], "svc");
    let (s, body) = call(&app, "GET", "/api/v1/route/rt?namespace=ns1", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["data"]["paths"], json!(["/x/*"]));

    let (s, body) = call(&app, "GET", "/api/v1/namespace", None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<_> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].clone())
        .collect();
    assert_eq!(names, [json!("default"), json!("ns1")]);

    // The route keeps the service alive.
    assert_error(
        call(
            &app,
            "DELETE",
            "/api/v1/service",
            Some(r#"{"name":"svc","namespace":"ns1"}"#),
        )
        .await,
        StatusCode::CONFLICT,
        "still used by route \"rt\"",
    )
    .await;
    let (s, _) = call(
        &app,
        "DELETE",
        "/api/v1/route",
        Some(r#"{"name":"rt","namespace":"ns1"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&app, "DELETE", "/api/v1/service/svc?namespace=ns1", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_error(
        call(&app, "GET", "/api/v1/service/svc?namespace=ns1", None).await,
        StatusCode::NOT_FOUND,
        "service \"svc\" in namespace \"ns1\" not found",
    )
    .await;
}

#[tokio::test]
async fn documents_secrets_domains_modules_collections() {
    let app = app().await;
    let (s, body) = put(
        &app,
        "collection",
        json!({"name": "links", "schema": {"type": "object", "required": ["url"]}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["namespace"], "default");
    assert_eq!(body["data"]["visibility"], "public");

    let (s, body) = put(
        &app,
        "document",
        json!({"id": "a", "collection": "links", "data": {"url": "http://x"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert!(body["data"]["createdAt"].is_string());
    assert_error(
        put(
            &app,
            "document",
            json!({"id": "b", "collection": "links", "data": {}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "does not match the collection's schema",
    )
    .await;
    let (s, body) = call(&app, "GET", "/api/v1/document/a?collection=links", None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["data"]["url"], "http://x");
    let (_, body) = call(&app, "GET", "/api/v1/document?collection=links", None).await;
    assert_eq!(body["count"], 1);
    let (s, _) = call(
        &app,
        "DELETE",
        "/api/v1/document",
        Some(r#"{"id":"a","collection":"links"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    let (s, body) = put(&app, "secret", json!({"name": "token", "data": "hunter2"})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(body["data"]["data"], "**redacted**");
    let (_, body) = call(&app, "GET", "/api/v1/secret/token", None).await;
    assert_eq!(body["data"]["data"], "**redacted**");
    let (_, body) = call(&app, "GET", "/api/v1/secret", None).await;
    assert_eq!(body["data"][0]["data"], "**redacted**");

    let (s, body) = put(
        &app,
        "domain",
        json!({"name": "d", "patterns": ["*.example.com"], "priority": 10}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = put(
        &app,
        "module",
        json!({"name": "m", "payload": B64.encode("export const requestModifier = () => {};"), "moduleType": "javascript"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    // Module listings leave payloads out unless asked; one module shows its own.
    let (_, list) = call(&app, "GET", "/api/v1/module", None).await;
    assert_eq!(list["count"], 1, "{list}");
    assert!(list["data"][0].get("payload").is_none(), "{list}");
    assert_eq!(list["data"][0]["name"], "m", "{list}");
    let (_, list) = call(&app, "GET", "/api/v1/module?payload=true", None).await;
    assert!(list["data"][0]["payload"].is_string(), "{list}");
    let (_, one) = call(&app, "GET", "/api/v1/module/m", None).await;
    assert!(one["data"]["payload"].is_string(), "{one}");

    // A batch is one change: a module and the route that runs it, or neither.
    let module = json!({"kind": "module", "name": "m2", "moduleType": "javascript",
                        "payload": B64.encode("export const requestModifier = () => {};")});
    let bad_route = json!({"kind": "route", "name": "r2", "paths": ["/b"], "methods": ["GET"],
                           "modules": ["m2"], "service": "missing"});
    let batch = Value::Array(vec![module.clone(), bad_route]).to_string();
    let (s, body) = call(&app, "PUT", "/api/v1/batch", Some(&batch)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("\"missing\""),
        "{body}"
    );
    assert_eq!(
        call(&app, "GET", "/api/v1/module/m2", None).await.0,
        StatusCode::NOT_FOUND
    );
    let route = json!({"kind": "route", "name": "r2", "paths": ["/b"], "methods": ["GET"],
                       "modules": ["m2"]});
    let batch = Value::Array(vec![module, route]).to_string();
    let (s, body) = call(&app, "PUT", "/api/v1/batch", Some(&batch)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 2, "{body}");
    assert_eq!(body["data"][1]["modules"], json!(["m2"]), "{body}");
    for bad in ["{}", "[]", "[{\"name\": \"x\"}]", "[{\"kind\": \"nope\"}]"] {
        let (s, body) = call(&app, "PUT", "/api/v1/batch", Some(bad)).await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {s} {body}"
        );
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
}

#[tokio::test]
async fn bad_input_gets_4xx_json_and_changes_nothing() {
    let app = app().await;
    assert_error(
        put(&app, "namespace", json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing field `name`",
    )
    .await;
    assert_error(
        put(&app, "namespace", json!({"name": 5})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid type: integer `5`, expected a string",
    )
    .await;
    assert_error(
        call(&app, "PUT", "/api/v1/namespace", Some("{\"name\": ")).await,
        StatusCode::BAD_REQUEST,
        "malformed JSON",
    )
    .await;
    assert_error(
        call(&app, "PUT", "/api/v1/namespace", None).await,
        StatusCode::BAD_REQUEST,
        "request body is empty",
    )
    .await;
    assert_error(
        put(
            &app,
            "route",
            json!({"name": "r", "paths": ["/"], "methods": ["GET"], "service": "ghost"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "service \"ghost\" does not exist in namespace \"default\"",
    )
    .await;
    assert_error(
        put(
            &app,
            "service",
            json!({"name": "s", "urls": ["gopher://x"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "urls[0]: \"gopher://x\" must use http or https",
    )
    .await;
    assert_error(
        call(&app, "GET", "/api/v1/widget", None).await,
        StatusCode::NOT_FOUND,
        "unknown resource kind \"widget\"",
    )
    .await;
    assert_error(
        call(&app, "GET", "/api/v1/service?namespace=nowhere", None).await,
        StatusCode::NOT_FOUND,
        "namespace \"nowhere\" not found",
    )
    .await;
    assert_error(
        call(&app, "POST", "/api/v1/service", Some("{}")).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "POST is not allowed",
    )
    .await;
    assert_error(
        call(&app, "GET", "/nothing/here", None).await,
        StatusCode::NOT_FOUND,
        "no admin endpoint at /nothing/here",
    )
    .await;
    assert_error(
        call(&app, "DELETE", "/api/v1/route", Some(r#"{"name":"nope"}"#)).await,
        StatusCode::NOT_FOUND,
        "route \"nope\" in namespace \"default\" not found",
    )
    .await;
    assert_error(
        call(
            &app,
            "DELETE",
            "/api/v1/route",
            Some(r#"{"namespace":"default"}"#),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "name: is required",
    )
    .await;
    // Only the bootstrap namespace exists.
    let (_, body) = call(&app, "GET", "/api/v1/namespace", None).await;
    assert_eq!(body["count"], 1);
    let (_, body) = call(&app, "GET", "/api/v1/route", None).await;
    assert_eq!(body["count"], 0);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let mut config = Config::default();
    config.admin.max_body_size = ByteSize(64);
    let app = app_with(config, [127, 0, 0, 1]).await;
    let big = json!({"name": "x", "tags": ["a".repeat(100)]}).to_string();
    assert_error(
        call(&app, "PUT", "/api/v1/namespace", Some(&big)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than the limit of 64 bytes",
    )
    .await;
    let (_, body) = call(&app, "GET", "/api/v1/namespace", None).await;
    assert_eq!(body["count"], 1);
}

#[tokio::test]
async fn key_auth() {
    let mut config = Config::default();
    config.admin.auth_method = AuthMethod::Key;
    config.admin.key_auth = Some(KeyAuthConfig {
        keys: vec!["s3cret".into()],
        header_name: "X-DGate-Key".into(),
    });
    let app = app_with(config, [127, 0, 0, 1]).await;
    assert_error(
        call(&app, "GET", "/api/v1/namespace", None).await,
        StatusCode::UNAUTHORIZED,
        "missing key",
    )
    .await;
    let wrong = Request::builder()
        .uri("/api/v1/namespace")
        .header("x-dgate-key", "nope");
    assert_error(
        call_with(&app, wrong, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid key",
    )
    .await;
    let right = Request::builder()
        .uri("/api/v1/namespace")
        .header("x-dgate-key", "s3cret");
    assert_eq!(call_with(&app, right, None).await.0, StatusCode::OK);
    // Probes stay open; metrics do not.
    assert_eq!(call(&app, "GET", "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(
        call(&app, "GET", "/metrics", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn basic_auth() {
    let mut config = Config::default();
    config.admin.auth_method = AuthMethod::Basic;
    config.admin.basic_auth = Some(BasicAuthConfig {
        users: vec![BasicUser {
            username: "admin".into(),
            password: "pw".into(),
        }],
    });
    let app = app_with(config, [127, 0, 0, 1]).await;
    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/api/v1/namespace")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()[header::WWW_AUTHENTICATE],
        "Basic realm=\"dgate\""
    );
    // base64("admin:bad") and base64("admin:pw")
    let bad = Request::builder()
        .uri("/api/v1/namespace")
        .header("authorization", "Basic YWRtaW46YmFk");
    assert_error(
        call_with(&app, bad, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid username or password",
    )
    .await;
    let good = Request::builder()
        .uri("/api/v1/namespace")
        .header("authorization", "Basic YWRtaW46cHc=");
    assert_eq!(call_with(&app, good, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn allow_list() {
    let mut config = Config::default();
    config.admin.allow_list = vec!["10.0.0.0/8".into()];
    let outside = app_with(config.clone(), [192, 168, 1, 1]).await;
    assert_error(
        call(&outside, "GET", "/healthz", None).await,
        StatusCode::FORBIDDEN,
        "192.168.1.1 is not in the admin allow list",
    )
    .await;
    let inside = app_with(config, [10, 1, 2, 3]).await;
    assert_eq!(
        call(&inside, "GET", "/api/v1/namespace", None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = app().await;
    call(&app, "GET", "/api/v1/namespace", None).await;
    call(&app, "GET", "/api/v1/service/missing", None).await;
    // Made-up methods share one label, so they cannot grow /metrics without bound.
    for i in 0..50 {
        call(&app, &format!("MADEUP{i}"), "/api/v1/namespace", None).await;
    }
    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        text.contains(
            r#"dgate_admin_requests_total{method="GET",route="/api/v1/{kind}",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"dgate_admin_requests_total{method="GET",route="/api/v1/{kind}/{name}",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("dgate_admin_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(!text.contains("MADEUP"), "{text}");
    assert!(
        text.contains(
            r#"dgate_admin_requests_total{method="OTHER",route="/api/v1/{kind}",status="405"} 50"#
        ),
        "{text}"
    );
    // The process and the build.
    let gauge = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name}: {text}"))
    };
    assert!(gauge("process_resident_memory_bytes") > 1e6, "{text}");
    assert!(gauge("process_threads") >= 1.0, "{text}");
    assert!(gauge("process_open_fds") >= 1.0, "{text}");
    assert!(gauge("process_cpu_seconds_total") >= 0.0, "{text}");
    assert!(
        text.contains(&format!(
            "dgate_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
}

#[tokio::test]
async fn module_writes_build_or_check_the_component() {
    let cluster = Cluster::single_node(Store::open_memory().unwrap(), "http://127.0.0.1:9080")
        .await
        .unwrap();
    let app = router(
        &Config::default(),
        cluster.clone(),
        Arc::new(Metrics::new().unwrap()),
        crate::build::Builder::InProcess,
    )
    .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let put = |body: Value| {
        let app = app.clone();
        async move { call(&app, "PUT", "/api/v1/module", Some(&body.to_string())).await }
    };
    let ts = "const tag: string = 'x';\nexport const requestModifier = (ctx: any): void => { ctx.request().headers.set('x-tag', tag); };\n";
    let (s, v) =
        put(json!({"name": "m", "payload": B64.encode(ts), "moduleType": "typescript"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The API shows what was sent, never the component; the stored resource has it.
    assert!(v["data"].get("component").is_none(), "{v}");
    assert_eq!(v["data"]["payload"], B64.encode(ts));
    let key = crate::resources::ResourceKey {
        kind: crate::resources::Kind::Module,
        namespace: "default".into(),
        collection: None,
        name: "m".into(),
    };
    let Some(crate::resources::Resource::Module(stored)) = cluster.store().get(&key).unwrap()
    else {
        panic!("module not stored")
    };
    let component = B64.decode(stored.component.unwrap()).unwrap();
    crate::modules::check_component(&component).unwrap();
    let (_, got) = call(&app, "GET", "/api/v1/module/m", None).await;
    assert!(got["data"].get("component").is_none(), "{got}");

    // A component sent as wasm is checked against the world; the one just built passes.
    let (s, v) =
        put(json!({"name": "w", "payload": B64.encode(&component), "moduleType": "wasm"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Refused with 422 and a message; nothing stored.
    let empty_component = [0u8, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    let core_module = [0u8, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    for (body, message) in [
        (
            json!({"name": "b", "payload": B64.encode("const x = ;"), "moduleType": "javascript"}),
            "payload: b.js:1:11: Unexpected token",
        ),
        (
            // A module imports the built-ins and other modules by name, nothing else.
            json!({"name": "b", "payload": B64.encode("import { y } from \"./dir/other\";\nexport const x = y;"), "moduleType": "javascript"}),
            "b.js:1:19: cannot import \"./dir/other\"",
        ),
        (
            json!({"name": "b", "payload": B64.encode(core_module), "moduleType": "wasm"}),
            "core WebAssembly module, not a component",
        ),
        (
            json!({"name": "b", "payload": B64.encode(empty_component), "moduleType": "wasm"}),
            "does not export dgate:module/hooks@0.1.0",
        ),
        (
            json!({"name": "b", "payload": B64.encode(b"\0asm garbage"), "moduleType": "wasm"}),
            "payload: ",
        ),
    ] {
        let (s, v) = put(body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(v["error"].as_str().unwrap().contains(message), "{v}");
    }
    assert_eq!(
        call(&app, "GET", "/api/v1/module/b", None).await.0,
        StatusCode::NOT_FOUND
    );
}

/// What DGate's own clients send, and what they expect back (DGate v0.11's admin routes).
#[tokio::test]
async fn dgate_payloads_are_taken_as_dgate_takes_them() {
    let app = app().await;
    // Fields we do not model are ignored; `""` means none for a certificate and a visibility.
    let (s, body) = put(
        &app,
        "namespace",
        json!({"name": "ns", "tags": null, "x": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = put(
        &app,
        "domain",
        json!({"name": "d", "namespace": "ns", "patterns": ["a.example.com"], "priority": 7, "cert": "", "key": ""}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert!(body["data"].get("cert").is_none(), "{body}");
    // Durations as Go's time.Duration: nanoseconds in, nanoseconds out; strings too.
    let (s, body) = put(
        &app,
        "service",
        json!({"name": "s", "namespace": "ns", "urls": ["http://127.0.0.1:1"], "retries": 2,
               "retryTimeout": 2_000_000_000u64, "requestTimeout": "1.5s", "connectTimeout": null}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["retryTimeout"], 2_000_000_000u64);
    assert_eq!(body["data"]["requestTimeout"], 1_500_000_000u64);
    // A module with no type is TypeScript; its base64 may come in lines (`base64 < file`).
    let source = "export const requestModifier = (ctx: any): void => { ctx.request().headers.set('x-a', '1'); };\n";
    let wrapped: String = B64
        .encode(source)
        .as_bytes()
        .chunks(76)
        .map(|l| format!("{}\n", std::str::from_utf8(l).unwrap()))
        .collect();
    let (s, body) = put(
        &app,
        "module",
        json!({"name": "m", "namespace": "ns", "payload": wrapped}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["moduleType"], "typescript");
    assert_eq!(body["data"]["payload"], B64.encode(source));
    // `/{}` matches a segment, as in DGate's raft test.
    let (s, body) = put(
        &app,
        "route",
        json!({"name": "r", "namespace": "ns", "service": "s", "paths": ["/", "/{}", "/x/{id}"],
               "methods": ["GET", "POST"], "preserveHost": false, "stripPath": false, "modules": ["m"]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    // Collections: DGate's `type` and an empty visibility (public, as DGate reads it).
    let (s, body) = put(
        &app,
        "collection",
        json!({"name": "c", "namespace": "ns", "type": "document", "visibility": "", "schema": null}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["type"], "document");
    assert_eq!(body["data"]["visibility"], "public");
    // A document written as DGate does: the id in the path, the data as the body.
    for (id, data) in [("a", json!({"url": "x"})), ("b", json!([1, 2]))] {
        let (s, body) = call(
            &app,
            "PUT",
            &format!("/api/v1/document/{id}?namespace=ns&collection=c"),
            Some(&data.to_string()),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        assert_eq!(body["data"]["data"], data);
        assert_eq!(body["data"]["collection"], "c");
    }
    let (s, body) = call(
        &app,
        "GET",
        "/api/v1/document/a?namespace=ns&collection=c",
        None,
    )
    .await;
    assert_eq!(
        (s, body["data"]["data"]["url"].clone()),
        (StatusCode::OK, json!("x"))
    );
    assert_error(
        call(&app, "GET", "/api/v1/document?namespace=ns", None).await,
        StatusCode::BAD_REQUEST,
        "collection is required",
    )
    .await;
    assert_error(
        call(&app, "PUT", "/api/v1/document/z?namespace=ns", Some("{}")).await,
        StatusCode::BAD_REQUEST,
        "collection is required",
    )
    .await;
    assert_error(
        call(&app, "PUT", "/api/v1/route/z", Some("{}")).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "only for documents",
    )
    .await;
    // DELETE /document with no id: all of the collection's documents.
    let (s, _) = call(
        &app,
        "GET",
        "/api/v1/document?namespace=ns&collection=c",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = call(
        &app,
        "DELETE",
        "/api/v1/document?namespace=ns&collection=c",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let (_, body) = call(
        &app,
        "GET",
        "/api/v1/document?namespace=ns&collection=c",
        None,
    )
    .await;
    assert_eq!(body["count"], 0, "{body}");
    assert_error(
        call(
            &app,
            "DELETE",
            "/api/v1/document?namespace=ns&collection=nope",
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    // A private collection's documents are for modules only.
    let (s, _) = put(
        &app,
        "collection",
        json!({"name": "p", "namespace": "ns", "visibility": "private"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = call(
        &app,
        "PUT",
        "/api/v1/document/k?namespace=ns&collection=p",
        Some("1"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    for uri in [
        "/api/v1/document?namespace=ns&collection=p",
        "/api/v1/document/k?namespace=ns&collection=p",
    ] {
        assert_error(
            call(&app, "GET", uri, None).await,
            StatusCode::FORBIDDEN,
            "private",
        )
        .await;
    }
    // DGate's delete body is the resource; what it has besides the name is ignored.
    let (s, body) = call(
        &app,
        "DELETE",
        "/api/v1/route",
        Some(
            &json!({"name": "r", "namespace": "ns", "paths": ["/"], "stripPath": false})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");

    // `GET /` answers as DGate's does.
    let res = app
        .clone()
        .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-dgate-raft-state"], "Leader");
    assert_eq!(res.headers()["x-dgate-watchonly"], "false");
    let hash = res.headers()["x-dgate-changehash"]
        .to_str()
        .unwrap()
        .to_string();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], b"DGate Admin API");
    // /readyz carries DGate's Raft headers.
    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/readyz")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-raft-state"], "Leader");
    assert_eq!(res.headers()["x-raft-leader"], "http://127.0.0.1:9080");
    // /changelog moves with every change, and agrees with GET /.
    let (s, before) = call(&app, "GET", "/changelog", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        before["hash"],
        base36(hash.parse().unwrap()),
        "{before} vs {hash}"
    );
    let (s, _) = put(&app, "namespace", json!({"name": "another"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, after) = call(&app, "GET", "/changelog", None).await;
    assert!(
        after["count"].as_u64() > before["count"].as_u64(),
        "{before} {after}"
    );
    assert_ne!(after["hash"], before["hash"]);
    assert_ne!(after["latest"], before["latest"]);
}

/// `disable_default_namespace: true`: every request names its namespace, as in DGate.
#[tokio::test]
async fn without_the_default_namespace_requests_name_theirs() {
    let config = Config {
        disable_default_namespace: true,
        ..Config::default()
    };
    let app = app_with(config, [127, 0, 0, 1]).await;
    let (s, _) = put(&app, "namespace", json!({"name": "ns"})).await;
    assert_eq!(s, StatusCode::CREATED);
    for (method, uri, body) in [
        (
            "PUT",
            "/api/v1/service",
            Some(json!({"name": "s", "urls": ["http://x"]})),
        ),
        ("GET", "/api/v1/service", None),
        ("GET", "/api/v1/service/s", None),
        ("DELETE", "/api/v1/service", Some(json!({"name": "s"}))),
        ("DELETE", "/api/v1/service/s", None),
    ] {
        let body = body.map(|b| b.to_string());
        assert_error(
            call(&app, method, uri, body.as_deref()).await,
            StatusCode::BAD_REQUEST,
            "namespace is required",
        )
        .await;
    }
    let (s, body) = put(
        &app,
        "service",
        json!({"name": "s", "namespace": "ns", "urls": ["http://x"]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, _) = call(&app, "GET", "/api/v1/service?namespace=ns", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&app, "GET", "/api/v1/namespace", None).await;
    assert_eq!(s, StatusCode::OK, "namespaces themselves are not in one");
}
