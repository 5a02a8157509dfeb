//! A gateway's resources kept in a file: `dgate apply` (one replicated change, idempotent,
//! `--dry-run`, `--prune`), `dgate diff`, `dgate export` (which `apply` takes back unchanged)
//! and `dgate check --file`, against a real gateway.

use serde_json::Value;

use crate::helpers::{Gateway, cli, write_file};

fn run(gw: &Gateway, args: &[&str]) -> (bool, String, String) {
    let out = cli(&gw.admin, args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn last_line(text: &str) -> &str {
    text.trim_end().lines().last().unwrap_or_default()
}

const FILE: &str = r#"namespaces:
  - name: shop
services:
  - {name: api, namespace: shop, urls: ["http://127.0.0.1:9"], retries: 2}
modules:
  - {name: hello, namespace: shop, payload_file: mods/hello.ts}
  - name: inline
    namespace: shop
    moduleType: javascript
    payload: |
      export const requestModifier = (ctx) => { ctx.request().headers.set("x-inline", "1"); };
routes:
  - {name: hello, namespace: shop, paths: ["/hello"], methods: ["GET"], modules: [hello]}
  - {name: api, namespace: shop, paths: ["/api/*"], methods: ["*"], service: api, modules: [inline]}
domains:
  - {name: shop, namespace: shop, patterns: ["*"]}
collections:
  - {name: links, namespace: shop, schema: {type: object, required: [url]}}
documents:
  - {id: d1, namespace: shop, collection: links, data: {url: "https://example.com"}}
secrets:
  - {name: token, namespace: shop, data: s3cret}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_diff_export_round_trip_on_a_real_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gw = Gateway::start(&d.join("data"), &[]);
    std::fs::create_dir_all(d.join("mods")).unwrap();
    write_file(
        &d.join("mods"),
        "greeting.ts",
        "export const greeting = (who: string): string => `hello, ${who}`;\n",
    );
    write_file(
        &d.join("mods"),
        "hello.ts",
        "import { greeting } from \"./greeting.js\";\nexport const requestHandler = (ctx: any): void => { ctx.response().json({ said: greeting(\"shop\") }); };\n",
    );
    let file = write_file(d, "gateway.yaml", FILE);
    let file = file.to_str().unwrap();

    // Checked without a gateway; a dry run writes nothing.
    let (ok, out, err) = run(&gw, &["check", "-f", file]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("{file}: ok (10 resources)"));
    let (ok, out, err) = run(&gw, &["apply", "-f", file, "--dry-run"]);
    assert!(ok, "{err}");
    assert!(out.contains("+ route shop/hello"), "{out}");
    assert_eq!(
        last_line(&out),
        "dry run, nothing written: 10 created, 0 updated, 0 deleted, 0 unchanged"
    );
    assert_eq!(gw.client().get("/api/v1/namespace/shop").await.0, 404);

    // Applied: all of it, served at once (the TS module built here with its local import).
    let (ok, out, err) = run(&gw, &["apply", "-f", file]);
    assert!(ok, "{err}");
    assert_eq!(
        last_line(&out),
        "10 created, 0 updated, 0 deleted, 0 unchanged"
    );
    let hello: Value = crate::helpers::get(format!("{}/hello", gw.proxy))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hello["said"], "hello, shop");
    // The history says who wrote it, as for any admin write.
    let (_, h) = gw
        .client()
        .get("/api/v1/route/hello/history?namespace=shop")
        .await;
    assert_eq!(h["count"], 1, "{h}");

    // Again: nothing changes but the secret, whose value cannot be compared (shown redacted).
    let (ok, out, err) = run(&gw, &["apply", "-f", file]);
    assert!(ok, "{err}");
    assert_eq!(out.trim().lines().count(), 2, "{out}");
    assert!(out.contains("~ secret shop/token (data)"), "{out}");
    assert_eq!(
        last_line(&out),
        "0 created, 1 updated, 0 deleted, 9 unchanged"
    );
    let (_, h) = gw
        .client()
        .get("/api/v1/route/hello/history?namespace=shop")
        .await;
    assert_eq!(h["count"], 1, "no new version of what did not change: {h}");

    // Export, and apply the export: nothing at all changes (the secret comes out redacted,
    // which keeps the stored value).
    let (ok, exported, err) = run(&gw, &["export", "-n", "shop"]);
    assert!(ok, "{err}");
    assert!(exported.contains("payload_base64:"), "{exported}");
    assert!(exported.contains("greeting.ts"), "its sources go with it");
    let exported_file = write_file(d, "exported.yaml", &exported);
    let (ok, out, err) = run(&gw, &["apply", "-f", exported_file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(
        last_line(&out),
        "0 created, 0 updated, 0 deleted, 10 unchanged",
        "{out}"
    );
    let (_, secret) = gw.client().get("/api/v1/secret/token?namespace=shop").await;
    assert_eq!(secret["data"]["data"], "**redacted**");

    // A change: diff names the field and writes nothing; apply writes it.
    let changed = write_file(
        d,
        "changed.yaml",
        &FILE.replace("http://127.0.0.1:9", "http://127.0.0.1:10"),
    );
    let changed = changed.to_str().unwrap();
    let (ok, out, _) = run(&gw, &["diff", "-f", changed]);
    assert!(ok);
    assert!(out.contains("~ service shop/api (urls)"), "{out}");
    let (_, svc) = gw.client().get("/api/v1/service/api?namespace=shop").await;
    assert_eq!(svc["data"]["urls"][0], "http://127.0.0.1:9");
    let (ok, out, err) = run(&gw, &["-o", "json", "apply", "-f", changed]);
    assert!(ok, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["updated"], 2, "the service and the secret: {plan}");
    let (_, svc) = gw.client().get("/api/v1/service/api?namespace=shop").await;
    assert_eq!(svc["data"]["urls"][0], "http://127.0.0.1:10");

    // --prune: what the file's namespaces hold and the file does not list goes.
    let smaller = write_file(
        d,
        "smaller.yaml",
        "namespaces:\n  - name: shop\nservices:\n  - {name: api, namespace: shop, urls: [\"http://127.0.0.1:10\"], retries: 2}\n",
    );
    let smaller = smaller.to_str().unwrap();
    let (ok, out, err) = run(&gw, &["apply", "-f", smaller, "--prune", "--dry-run"]);
    assert!(ok, "{err}");
    assert!(out.contains("- route shop/hello"), "{out}");
    assert_eq!(
        gw.client()
            .get("/api/v1/route/hello?namespace=shop")
            .await
            .0,
        200
    );
    let (ok, out, err) = run(&gw, &["apply", "-f", smaller, "--prune"]);
    assert!(ok, "{err}");
    assert_eq!(
        last_line(&out),
        "0 created, 0 updated, 8 deleted, 2 unchanged",
        "{out}"
    );
    assert_eq!(
        gw.client()
            .get("/api/v1/route/hello?namespace=shop")
            .await
            .0,
        404
    );
    assert_eq!(
        gw.client()
            .get("/api/v1/service/api?namespace=shop")
            .await
            .0,
        200
    );

    // Bad files: a clear line and exit 2, and nothing written.
    for (text, want) in [
        (
            "routes:\n  - {name: r, namespace: shop, paths: [\"/x\"]}\n",
            "routes[0]: missing field `methods`",
        ),
        ("services: [1, 2\n", "line 1 column 11: unclosed bracket"),
        (
            "modules:\n  - {name: m, namespace: shop, payload_file: nope.ts}\n",
            "modules[0]: payload_file: cannot read ",
        ),
    ] {
        let bad = write_file(d, "bad.yaml", text);
        let out = cli(&gw.admin, &["apply", "-f", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad.yaml: "), "{text}: {err}");
        assert!(
            err.to_lowercase().contains(&want.to_lowercase()),
            "{text}: {err}"
        );
    }
    assert_eq!(
        gw.client().get("/api/v1/route/r?namespace=shop").await.0,
        404
    );
}
