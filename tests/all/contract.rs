//! The admin API's contract and the config's schema, against a real gateway: the OpenAPI
//! document it serves is valid (checked by an independent validator, scripts/openapi-check,
//! which needs Node.js and `npm ci` there: scripts/test.sh runs it), every operation it lists
//! reaches a handler, and what the gateway answers matches the schemas it documents. The JSON
//! Schema of dgate.yaml accepts what `dgate check` accepts and refuses what it refuses.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{Gateway, ok_put, write_file};

fn dgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dgate"))
}

/// Validates `file` with scripts/openapi-check (an OpenAPI 3.x validator built on Ajv).
fn independent_check(file: &Path) -> Result<String, String> {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/openapi-check");
    assert!(
        tool.join("node_modules").is_dir(),
        "run `npm ci` in scripts/openapi-check first (scripts/test.sh does)"
    );
    let out = Command::new("node")
        .arg(tool.join("check.mjs"))
        .arg(file)
        .output()
        .expect("node");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Whether `body` is what the admin API answers where it has no endpoint.
fn is_fallback(status: u16, body: &str) -> bool {
    (status == 404 && body.contains("no admin endpoint"))
        || (status == 405 && body.contains("is not allowed on"))
}

/// A validator for the schema at `pointer` inside `doc` (its `$ref`s resolve in `doc`).
fn schema_at(doc: &Value, pointer: &str) -> jsonschema::Validator {
    let mut root = doc.clone();
    // A URI fragment: the pointer's braces percent-encoded.
    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
    root["$ref"] = json!(format!("#{fragment}"));
    jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("{pointer}: {e}"))
}

fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

/// The answer to `method path` must match the schema the document gives for its `status`.
fn assert_matches(doc: &Value, method: &str, path_template: &str, status: u16, body: &Value) {
    let pointer = format!(
        "/paths/{}/{method}/responses/{status}/content/application~1json/schema",
        escape(path_template)
    );
    assert!(
        doc.pointer(&pointer).is_some(),
        "{method} {path_template} answered {status}, which the document does not list: {body}"
    );
    let validator = schema_at(doc, &pointer);
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path_template} ({status}) does not match its schema: {errors:?}\n{body:#}"
    );
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_covers_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let api = gw.client();
    let (status, doc) = api.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");

    // An independent validator accepts it, and refuses it with a required field taken out
    // (the check can fail).
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    independent_check(&file).unwrap_or_else(|e| panic!("invalid OpenAPI document: {e}"));
    let mut broken = doc.clone();
    broken["paths"]["/healthz"]["get"]["responses"]["200"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    std::fs::write(&file, broken.to_string()).unwrap();
    assert!(independent_check(&file).is_err());

    // `dgate schema openapi` prints the same document.
    let out = dgate().args(["schema", "openapi"]).output().unwrap();
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, doc);

    // Every operation reaches a handler: none gets the answer of a path or method that does
    // not exist. Every kind has list/put/delete/get.
    let http = crate::helpers::http();
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (template, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let path = template.replace("{name}", "missing");
            let query = if op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "collection"))
            {
                "?collection=none"
            } else {
                ""
            };
            let req = http.request(
                method.to_uppercase().parse().unwrap(),
                format!("{}{path}{query}", api.base()),
            );
            let req = if op.get("requestBody").is_some() {
                req.header("content-type", "application/json").body("{}")
            } else {
                req
            };
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            assert!(
                !is_fallback(status, &body),
                "{method} {template}: {status} {body}"
            );
            // Whatever it answers is in the document: a listed status.
            assert!(
                op["responses"].get(status.to_string()).is_some(),
                "{method} {template} answered {status}, not documented: {body}"
            );
        }
    }
    for kind in dgate::resources::Kind::ALL {
        let list = &paths[&format!("/api/v1/{kind}")];
        for m in ["get", "put", "delete"] {
            assert!(list.get(m).is_some(), "{m} /api/v1/{kind}");
        }
        assert!(
            paths[&format!("/api/v1/{kind}/{{name}}")]
                .get("get")
                .is_some()
        );
    }
    assert!(operations > 50, "{operations} operations");
    // A path the document does not have is the fallback.
    let res = http
        .get(format!("{}/api/v1/service/x/nothing", api.base()))
        .send()
        .await
        .unwrap();
    assert!(is_fallback(
        res.status().as_u16(),
        &res.text().await.unwrap()
    ));

    // What the gateway answers matches the documented schemas: every kind written, read one
    // by one and listed; history, rollback, module status, cluster, health.
    let bodies = [
        ("namespace", json!({"name": "ns1", "tags": ["t"]})),
        (
            "service",
            json!({"name": "svc", "namespace": "ns1", "urls": ["http://127.0.0.1:9"], "retries": 2, "requestTimeout": "5s"}),
        ),
        (
            "module",
            json!({"name": "mod1", "namespace": "ns1", "moduleType": "javascript", "limits": {"memory": "16MiB", "timeout": "50ms"},
                   "payload": "ZXhwb3J0IGNvbnN0IHJlcXVlc3RNb2RpZmllciA9ICgpID0+IHt9Ow=="}),
        ),
        (
            "route",
            json!({"name": "rt", "namespace": "ns1", "paths": ["/x/*"], "methods": ["GET"], "service": "svc", "modules": ["mod1"]}),
        ),
        (
            "domain",
            json!({"name": "dom", "namespace": "ns1", "patterns": ["*.example.com"], "priority": 5}),
        ),
        (
            "collection",
            json!({"name": "col", "namespace": "ns1", "schema": {"type": "object"}}),
        ),
        (
            "document",
            json!({"id": "doc1", "namespace": "ns1", "collection": "col", "data": {"k": "v"}}),
        ),
        (
            "secret",
            json!({"name": "sec", "namespace": "ns1", "data": "hunter2"}),
        ),
    ];
    for (kind, body) in &bodies {
        let (status, answer) = api.put(kind, body.clone()).await;
        assert_eq!(status, 201, "{kind}: {answer}");
        assert_matches(&doc, "put", &format!("/api/v1/{kind}"), status, &answer);
        let name = body
            .get("name")
            .or(body.get("id"))
            .unwrap()
            .as_str()
            .unwrap();
        let scope = match *kind {
            "namespace" => String::new(),
            "document" => "?namespace=ns1&collection=col".into(),
            _ => "?namespace=ns1".into(),
        };
        let (status, answer) = api.get(&format!("/api/v1/{kind}/{name}{scope}")).await;
        assert_eq!(status, 200, "{kind}: {answer}");
        assert_matches(
            &doc,
            "get",
            &format!("/api/v1/{kind}/{{name}}"),
            200,
            &answer,
        );
        let listing = if *kind == "document" {
            format!("{scope}&payload=true")
        } else {
            "?namespace=ns1&payload=true".to_string()
        };
        let (status, answer) = api.get(&format!("/api/v1/{kind}{listing}")).await;
        assert_eq!(status, 200, "{kind}: {answer}");
        assert_matches(&doc, "get", &format!("/api/v1/{kind}"), 200, &answer);
    }
    // The response schemas hold: a service answer with a wrong field type does not match.
    let (_, mut answer) = api.get("/api/v1/service/svc?namespace=ns1").await;
    answer["data"]["urls"] = json!(7);
    let get_service = schema_at(
        &doc,
        "/paths/~1api~1v1~1service~1{name}/get/responses/200/content/application~1json/schema",
    );
    assert!(!get_service.is_valid(&answer), "{answer}");
    // A second version of the route, its history, and a rollback.
    let mut route = bodies[3].1.clone();
    route["paths"] = json!(["/y/*"]);
    ok_put(&api, "route", route).await;
    let (status, answer) = api
        .get("/api/v1/route/rt/history?namespace=ns1&payload=true")
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_matches(&doc, "get", "/api/v1/route/{name}/history", 200, &answer);
    let (status, answer) = api
        .raw("POST", "/api/v1/route/rt/rollback?namespace=ns1", None)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_matches(&doc, "post", "/api/v1/route/{name}/rollback", 200, &answer);
    let (status, answer) = api.get("/api/v1/module/mod1/status?namespace=ns1").await;
    assert_eq!(status, 200, "{answer}");
    assert_matches(&doc, "get", "/api/v1/module/{name}/status", 200, &answer);
    for path in ["/api/v1/cluster", "/healthz", "/readyz", "/changelog"] {
        let (status, answer) = api.get(path).await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert_matches(&doc, "get", path, 200, &answer);
    }
    let batch = json!([
        {"kind": "namespace", "name": "ns2"},
        {"kind": "service", "name": "s2", "namespace": "ns2", "urls": ["http://127.0.0.1:9"]},
    ]);
    let (status, answer) = api
        .raw("PUT", "/api/v1/batch", Some(batch.to_string()))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_matches(&doc, "put", "/api/v1/batch", 200, &answer);
    // Failures: the documented error shape.
    let (status, answer) = api.get("/api/v1/service/none?namespace=ns1").await;
    assert_eq!(status, 404);
    let error = schema_at(
        &doc,
        "/components/responses/Error/content/application~1json/schema",
    );
    assert!(error.is_valid(&answer), "{answer}");
    // A request body the schema refuses is refused by the gateway too.
    let put_service = schema_at(
        &doc,
        "/paths/~1api~1v1~1service/put/requestBody/content/application~1json/schema",
    );
    let bad = json!({"name": "s3", "namespace": "ns1", "urls": "http://not-a-list"});
    assert!(!put_service.is_valid(&bad));
    let (status, answer) = api.put("service", bad).await;
    assert_eq!(status, 422, "{answer}");
    assert!(put_service.is_valid(&json!({"name": "s3", "urls": ["http://127.0.0.1:9"]})));
    gw.stop();
}

/// `dgate schema config` accepts the configs `dgate check` accepts and refuses the ones it
/// refuses for their shape.
#[test]
fn the_config_schema_agrees_with_dgate_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = dgate().args(["schema", "config"]).output().unwrap();
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let check = |yaml: &str| -> (bool, bool, String) {
        let file = write_file(dir.path(), "dgate.yaml", yaml);
        let out = dgate()
            .args(["check", "-c"])
            .arg(&file)
            .env("DGATE_ADMIN_KEY", "k")
            .output()
            .unwrap();
        let value: Value = serde_saphyr::from_str(yaml).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        (
            out.status.success(),
            errors.is_empty(),
            format!("{}{errors:?}", String::from_utf8_lossy(&out.stderr)),
        )
    };
    let packaged =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/dgate.yaml"))
            .unwrap();
    let good = [
        packaged.as_str(),
        "version: v1\n",
        "log_level: debug\nlog_format: json\nnode_id: n1\nstorage:\n  type: memory\n\
         proxy:\n  port: 18080\n  global_headers: {X-A: b}\n  redirect_https: ['*.example.com']\n\
         \x20 max_header_size: 16KiB\n  header_read_timeout: 5s\n\
         \x20 access_log: {enabled: true, fields: [method, path, status]}\n\
         admin:\n  port: 19080\n  allow_list: [127.0.0.1/32]\n  max_body_size: 4MiB\n\
         \x20 replication: {bootstrap_cluster: true, shared_key: s, raft_config: {heartbeat_interval: 200ms}}\n\
         modules:\n  fuel: 1000000\n  memory: 32MiB\n  timeout: 100ms\n  fetch: {allow: [10.0.0.0/8]}\n\
         \x20 build: {timeout: 30s}\n",
    ];
    for yaml in good {
        let (checked, valid, why) = check(yaml);
        assert!(checked && valid, "{yaml}\n{why}");
    }
    let bad = [
        "proxy:\n  prot: 8080\n",
        "admin:\n  port: nine\n",
        "log_level: loud\n",
        "modules:\n  memory: [1]\n",
        "storage:\n  type: cloud\n",
    ];
    for yaml in bad {
        let (checked, valid, why) = check(yaml);
        assert!(!checked && !valid, "{yaml}\n{why}");
    }
}
