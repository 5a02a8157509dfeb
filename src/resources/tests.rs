use serde_json::json;

use super::validate;
use super::*;
use crate::units::Millis;

fn parse(kind: Kind, v: serde_json::Value) -> Resource {
    Resource::from_json(kind, v.to_string().as_bytes()).expect("parses")
}

/// Parses and validates `v`, returning the error message.
fn invalid(kind: Kind, v: serde_json::Value) -> String {
    let mut r = parse(kind, v);
    validate::resource(&mut r)
        .expect_err("must be invalid")
        .to_string()
}

fn valid(kind: Kind, v: serde_json::Value) -> Resource {
    let mut r = parse(kind, v);
    validate::resource(&mut r).expect("must be valid");
    r
}

/// A self-signed certificate and its key, in PEM.
fn cert_and_key(name: &str) -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

#[test]
fn names_are_checked() {
    assert_eq!(
        invalid(Kind::Namespace, json!({"name": ""})),
        "name: must not be empty"
    );
    assert_eq!(
        invalid(Kind::Namespace, json!({"name": "a b"})),
        "name: \"a b\" is not a valid name (letters, digits, '_', '-' and '.', starting with a letter, digit or '_')"
    );
    assert_eq!(
        invalid(Kind::Namespace, json!({"name": "-x"})),
        "name: \"-x\" is not a valid name (letters, digits, '_', '-' and '.', starting with a letter, digit or '_')"
    );
    assert_eq!(
        invalid(Kind::Namespace, json!({"name": "x".repeat(129)})),
        "name: must be at most 128 characters"
    );
    assert_eq!(
        invalid(Kind::Namespace, json!({"name": "ok", "tags": [""]})),
        "tags[0]: must be 1 to 128 characters without control characters"
    );
    valid(Kind::Namespace, json!({"name": "a_b-c.1", "tags": ["t"]}));
}

#[test]
fn namespace_defaults_to_default() {
    match valid(Kind::Secret, json!({"name": "s", "data": "x"})) {
        Resource::Secret(s) => assert_eq!(s.namespace, "default"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        invalid(
            Kind::Secret,
            json!({"name": "s", "namespace": "bad ns", "data": "x"})
        ),
        "namespace: \"bad ns\" is not a valid name (letters, digits, '_', '-' and '.', starting with a letter, digit or '_')"
    );
    assert_eq!(
        invalid(Kind::Secret, json!({"name": "s", "data": ""})),
        "data: must not be empty"
    );
}

#[test]
fn service_urls_and_limits() {
    let svc = |extra: serde_json::Value| {
        let mut v = json!({"name": "s", "urls": ["http://127.0.0.1:8081"]});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    assert_eq!(
        invalid(Kind::Service, svc(json!({"urls": []}))),
        "urls: at least one upstream URL is required"
    );
    assert_eq!(
        invalid(Kind::Service, svc(json!({"urls": ["not a url"]}))),
        "urls[0]: \"not a url\" is not a valid URL: relative URL without a base"
    );
    assert_eq!(
        invalid(Kind::Service, svc(json!({"urls": ["http://a", "ftp://x"]}))),
        "urls[1]: \"ftp://x\" must use http or https"
    );
    assert_eq!(
        invalid(Kind::Service, svc(json!({"urls": ["http://u:p@h"]}))),
        "urls[0]: \"http://u:p@h\" must not carry credentials"
    );
    assert_eq!(
        invalid(Kind::Service, svc(json!({"urls": ["http://h/?q=1"]}))),
        "urls[0]: \"http://h/?q=1\" must not have a query or fragment"
    );
    assert_eq!(
        invalid(Kind::Service, svc(json!({"retries": 101}))),
        "retries: must be at most 100"
    );
    assert_eq!(
        invalid(Kind::Service, svc(json!({"requestTimeout": "2h"}))),
        "requestTimeout: must be at most 1h"
    );
    match valid(
        Kind::Service,
        svc(
            json!({"retries": 3, "retryTimeout": "1s 500ms", "connectTimeout": 250_000_000, "hideDGateHeaders": true}),
        ),
    ) {
        Resource::Service(s) => {
            assert_eq!(s.retry_timeout, Some(Millis(1500)));
            assert_eq!(s.connect_timeout, Some(Millis(250)));
            assert!(s.hide_dgate_headers);
            let shown = Resource::Service(s).to_public_json();
            // Go's time.Duration in JSON, as DGate answers: nanoseconds.
            assert_eq!(shown["retryTimeout"], 1_500_000_000u64);
            assert_eq!(shown["connectTimeout"], 250_000_000u64);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn durations_refuse_garbage_and_negatives() {
    let bad = Resource::from_json(
        Kind::Service,
        br#"{"name":"s","urls":["http://h"],"retryTimeout":"soon"}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(bad.starts_with("invalid duration \"soon\""), "{bad}");
    let neg = Resource::from_json(
        Kind::Service,
        br#"{"name":"s","urls":["http://h"],"retryTimeout":-5}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(neg.starts_with("a duration cannot be negative"), "{neg}");
}

#[test]
fn route_paths_and_methods() {
    let rt = |paths: serde_json::Value, methods: serde_json::Value| json!({"name": "r", "paths": paths, "methods": methods});
    assert_eq!(
        invalid(Kind::Route, rt(json!([]), json!(["GET"]))),
        "paths: at least one path is required"
    );
    assert_eq!(
        invalid(Kind::Route, rt(json!(["x"]), json!(["GET"]))),
        "paths[0]: \"x\" must start with '/'"
    );
    assert_eq!(
        invalid(Kind::Route, rt(json!(["/a/*/b"]), json!(["GET"]))),
        "paths[0]: \"/a/*/b\": '*' is only allowed at the end"
    );
    assert_eq!(
        invalid(Kind::Route, rt(json!(["/a/x{id}"]), json!(["GET"]))),
        "paths[0]: \"/a/x{id}\": a parameter must be a whole segment such as {id}"
    );
    assert_eq!(
        invalid(Kind::Route, rt(json!(["/a/{1d}"]), json!(["GET"]))),
        "paths[0]: \"/a/{1d}\": {1d} is not a valid parameter name"
    );
    assert_eq!(
        invalid(Kind::Route, rt(json!(["/{id}/{id}"]), json!(["GET"]))),
        "paths[0]: \"/{id}/{id}\": parameter {id} appears twice"
    );
    assert_eq!(
        invalid(Kind::Route, rt(json!(["/a b"]), json!(["GET"]))),
        "paths[0]: \"/a b\" must not contain ' '"
    );
    assert_eq!(
        invalid(Kind::Route, rt(json!(["/a"]), json!([]))),
        "methods: at least one method (or \"*\") is required"
    );
    assert_eq!(
        invalid(Kind::Route, rt(json!(["/a"]), json!(["FETCH"]))),
        "methods[0]: \"FETCH\" is not an HTTP method (use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE or \"*\")"
    );
    match valid(
        Kind::Route,
        rt(
            json!(["/users/{id}", "/static/*", "/"]),
            json!(["get", "*"]),
        ),
    ) {
        Resource::Route(r) => assert_eq!(r.methods, ["GET", "*"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn module_payloads() {
    let m = |payload: &str, t: &str| json!({"name": "m", "payload": payload, "moduleType": t});
    assert_eq!(
        invalid(Kind::Module, m("", "javascript")),
        "payload: must not be empty"
    );
    assert_eq!(
        invalid(Kind::Module, m("!!!", "javascript")),
        "payload: is not valid base64: Invalid symbol 33, offset 0."
    );
    // base64 of the bytes ff fe.
    assert_eq!(
        invalid(Kind::Module, m("//4=", "typescript")),
        "payload: a typescript module must be UTF-8 source text"
    );
    // base64 of "hello".
    assert_eq!(
        invalid(Kind::Module, m("aGVsbG8=", "wasm")),
        "payload: a wasm module must be a WebAssembly binary (it does not start with \\0asm)"
    );
    let unknown_type = Resource::from_json(
        Kind::Module,
        br#"{"name":"m","payload":"aGVsbG8=","moduleType":"lua"}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        unknown_type.starts_with("unknown variant `lua`"),
        "{unknown_type}"
    );
    valid(Kind::Module, m("ZXhwb3J0IHt9", "javascript"));
    valid(Kind::Module, m("AGFzbQEAAAA=", "wasm"));
}

#[test]
fn domain_patterns_and_tls() {
    let d = |patterns: serde_json::Value| json!({"name": "d", "patterns": patterns});
    assert_eq!(
        invalid(Kind::Domain, d(json!([]))),
        "patterns: at least one pattern is required"
    );
    assert_eq!(
        invalid(Kind::Domain, d(json!(["a.*.com"]))),
        "patterns[0]: \"a.*.com\": '*' is only allowed at the start and the end (or use /regex/)"
    );
    assert_eq!(
        invalid(Kind::Domain, d(json!(["//"]))),
        "patterns[0]: \"//\" is an empty regular expression, which matches every host (write * for that)"
    );
    assert_eq!(
        invalid(Kind::Domain, d(json!(["/(/"])))
            .lines()
            .next()
            .unwrap(),
        "patterns[0]: \"/(/\" is not a valid regular expression: regex parse error:"
    );
    assert_eq!(
        invalid(Kind::Domain, d(json!(["exa mple.com"]))),
        "patterns[0]: \"exa mple.com\" is not a host name pattern"
    );
    valid(
        Kind::Domain,
        d(json!([
            "*",
            "*.example.com",
            "api.*",
            "/^(a|b)\\.test$/",
            "example.com"
        ])),
    );
    let (cert, key) = cert_and_key("example.com");
    let (_, other_key) = cert_and_key("other.com");
    let mut with_cert = d(json!(["example.com"]));
    with_cert["cert"] = json!(cert);
    assert_eq!(
        invalid(Kind::Domain, with_cert.clone()),
        "key: is required when cert is set"
    );
    with_cert["key"] = json!("not pem");
    assert!(invalid(Kind::Domain, with_cert.clone()).starts_with("key: is not a PEM private key"),);
    with_cert["key"] = json!(other_key);
    assert!(
        invalid(Kind::Domain, with_cert.clone())
            .starts_with("key: does not belong to the certificate"),
    );
    with_cert["key"] = json!(key);
    let shown = valid(Kind::Domain, with_cert).to_public_json();
    assert_eq!(shown["key"], REDACTED);
    assert_eq!(shown["cert"], cert.as_str());
}

#[test]
fn collections_need_a_valid_schema_and_documents_must_match() {
    assert_eq!(
        invalid(Kind::Collection, json!({"name": "c", "schema": 5})),
        "schema: must be a JSON Schema object (or true/false)"
    );
    assert!(
        invalid(
            Kind::Collection,
            json!({"name": "c", "schema": {"type": "nope"}})
        )
        .starts_with("schema: is not a valid JSON Schema"),
    );
    let schema =
        json!({"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}});
    valid(
        Kind::Collection,
        json!({"name": "c", "schema": schema, "visibility": "public"}),
    );
    assert!(validate::document_data(&schema, &json!({"url": "x"})).is_ok());
    let err = validate::document_data(&schema, &json!({"url": 5})).unwrap_err();
    assert_eq!(err.field, "data.url");
    assert!(
        err.reason
            .starts_with("does not match the collection's schema"),
        "{err}"
    );
    let err = validate::document_data(&schema, &json!({})).unwrap_err();
    assert_eq!(err.field, "data");
}

#[test]
fn document_ids() {
    assert_eq!(
        invalid(Kind::Document, json!({"id": "a/b", "collection": "c"})),
        "id: \"a/b\" is not a valid id (letters, digits, '_', '-', '.', ':' and '@')"
    );
    assert_eq!(
        invalid(Kind::Document, json!({"id": "d", "collection": ""})),
        "collection: must not be empty"
    );
    valid(
        Kind::Document,
        json!({"id": "user:1@x", "collection": "c", "data": {"a": 1}}),
    );
}

#[test]
fn wrong_types_do_not_parse_and_unknown_fields_are_ignored() {
    for (kind, body) in [
        (Kind::Namespace, json!({"name": 5})),
        (
            Kind::Route,
            json!({"name": "r", "paths": "/x", "methods": ["GET"]}),
        ),
        (Kind::Service, json!({"name": "s"})),
    ] {
        assert!(
            Resource::from_json(kind, body.to_string().as_bytes()).is_err(),
            "{kind} {body} should not parse"
        );
    }
    // As DGate's JSON decoding does.
    let r = Resource::from_json(
        Kind::Namespace,
        json!({"name": "x", "colour": "red"}).to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(r.spec_json(), json!({"name": "x"}));
}

#[test]
fn secrets_are_redacted_when_shown() {
    let r = valid(Kind::Secret, json!({"name": "s", "data": "hunter2"}));
    assert_eq!(r.to_public_json()["data"], REDACTED);
    assert_eq!(r.spec_json()["data"], "hunter2");
}

#[test]
fn commands_round_trip_through_json() {
    let cmd = ChangeCommand::put(valid(
        Kind::Route,
        json!({"name": "r", "paths": ["/"], "methods": ["*"]}),
    ));
    let back: ChangeCommand = serde_json::from_str(&serde_json::to_string(&cmd).unwrap()).unwrap();
    assert_eq!(back, cmd);
    let del = ChangeCommand::delete(ResourceKey::document("ns", "c", "d"));
    let back: ChangeCommand = serde_json::from_str(&serde_json::to_string(&del).unwrap()).unwrap();
    assert_eq!(back, del);
}

/// Every list field has a cap, and a domain regex a size limit: a write cannot make each
/// rebuild and each match arbitrarily slow.
#[test]
fn list_fields_are_capped() {
    let many = |n: usize, f: &dyn Fn(usize) -> String| {
        serde_json::Value::from((0..n).map(f).collect::<Vec<_>>())
    };
    assert_eq!(
        invalid(
            Kind::Service,
            json!({"name": "s", "urls": many(257, &|i| format!("http://h{i}"))})
        ),
        "urls: at most 256 upstream URLs"
    );
    assert_eq!(
        invalid(
            Kind::Route,
            json!({"name": "r", "paths": many(257, &|i| format!("/p{i}")), "methods": ["GET"]})
        ),
        "paths: at most 256 paths"
    );
    assert_eq!(
        invalid(
            Kind::Route,
            json!({"name": "r", "paths": ["/"], "methods": many(17, &|_| "GET".into())})
        ),
        "methods: at most 16 methods"
    );
    assert_eq!(
        invalid(
            Kind::Route,
            json!({"name": "r", "paths": ["/"], "methods": ["GET"], "modules": many(17, &|i| format!("m{i}"))})
        ),
        "modules: at most 16 modules"
    );
    assert_eq!(
        invalid(
            Kind::Domain,
            json!({"name": "d", "patterns": many(65, &|i| format!("h{i}.example.com"))})
        ),
        "patterns: at most 64 patterns"
    );
    assert_eq!(
        invalid(
            Kind::Domain,
            json!({"name": "d", "patterns": [format!("/{}/", "a".repeat(600))]})
        ),
        "patterns[0]: must be at most 512 characters"
    );
    // A short regex that compiles to a huge program.
    let err = invalid(
        Kind::Domain,
        json!({"name": "d", "patterns": ["/\\w{200}\\w{200}/"]}),
    );
    assert!(err.contains("is not a valid regular expression"), "{err}");
    assert!(err.contains("size limit"), "{err}");
}
