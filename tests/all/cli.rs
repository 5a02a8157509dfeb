//! The CLI against a live server: every kind created, listed, fetched and deleted.

use std::process::Output;

use serde_json::Value;

use crate::helpers::{Gateway, cli, write_file};

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_of(out: Output) -> Value {
    serde_json::from_str(&ok(out)).expect("JSON output")
}

fn fails(out: Output, code: i32, stderr_has: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(
        err.contains(stderr_has),
        "stderr {err:?} should contain {stderr_has:?}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err:?}");
}

#[test]
fn cli_manages_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&dir.path().join("data"), &[]);
    let a = gw.admin.as_str();
    let module = write_file(
        dir.path(),
        "m.js",
        "export function requestModifier(ctx) {}\n",
    );
    let payload = format!("payload@={}", module.display());

    let creates: Vec<Vec<&str>> = vec![
        vec!["ns", "create", "ns1"],
        vec![
            "svc",
            "mk",
            "svc1",
            "namespace=ns1",
            "urls=http://127.0.0.1:9,http://127.0.0.1:10",
        ],
        vec!["mod", "create", "m1", "namespace=ns1", &payload],
        vec![
            "rt",
            "create",
            "r1",
            "namespace=ns1",
            "paths=/x/*",
            "methods=GET,POST",
            "service=svc1",
            "modules=m1",
            "stripPath:=true",
        ],
        vec![
            "dom",
            "create",
            "d1",
            "namespace=ns1",
            "patterns=*.example.com",
            "priority:=3",
        ],
        vec![
            "col",
            "create",
            "c1",
            "namespace=ns1",
            "schema:={\"type\":\"object\"}",
        ],
        vec![
            "doc",
            "create",
            "doc1",
            "namespace=ns1",
            "collection=c1",
            "data:={\"a\":1}",
        ],
        vec!["sec", "create", "s1", "namespace=ns1", "data=hunter2"],
    ];
    for args in &creates {
        let mut full = vec!["-o", "json"];
        full.extend(args);
        let v = json_of(cli(a, &full));
        assert!(v.is_object(), "{args:?}: {v}");
    }
    let m = json_of(cli(a, &["-o", "json", "mod", "get", "m1", "namespace=ns1"]));
    assert_eq!(m["moduleType"], "javascript");
    assert_eq!(
        ok(cli(a, &["mod", "get", "m1", "namespace=ns1", "--source"])),
        "export function requestModifier(ctx) {}\n"
    );
    let r = json_of(cli(
        a,
        &["-o", "json", "route", "get", "r1", "namespace=ns1"],
    ));
    assert_eq!(r["methods"], serde_json::json!(["GET", "POST"]));
    assert_eq!(r["stripPath"], true);
    let s = json_of(cli(
        a,
        &["-o", "json", "secret", "get", "s1", "namespace=ns1"],
    ));
    assert_eq!(s["data"], "**redacted**");
    let d = json_of(cli(
        a,
        &[
            "-o",
            "json",
            "doc",
            "get",
            "doc1",
            "namespace=ns1",
            "collection=c1",
        ],
    ));
    assert_eq!(d["data"]["a"], 1);

    // Tables by default.
    let table = ok(cli(a, &["rt", "ls", "namespace=ns1"]));
    assert!(
        table.starts_with("NAME  NAMESPACE  PATHS  METHODS   SERVICE  MODULES\n"),
        "{table}"
    );
    assert!(
        table.contains("r1    ns1        /x/*   GET,POST  svc1     m1"),
        "{table}"
    );
    for kind in ["service", "module", "domain", "collection", "secret"] {
        let list = json_of(cli(a, &["-o", "json", kind, "list", "namespace=ns1"]));
        assert_eq!(list.as_array().unwrap().len(), 1, "{kind}: {list}");
    }
    // Module listings carry payloads only when asked.
    let list = json_of(cli(a, &["-o", "json", "mod", "ls", "namespace=ns1"]));
    assert!(list[0].get("payload").is_none(), "{list}");
    let list = json_of(cli(
        a,
        &["-o", "json", "mod", "ls", "namespace=ns1", "payload=true"],
    ));
    assert!(list[0]["payload"].is_string(), "{list}");
    let docs = json_of(cli(
        a,
        &["-o", "json", "doc", "ls", "namespace=ns1", "collection=c1"],
    ));
    assert_eq!(docs.as_array().unwrap().len(), 1);

    // A referenced service cannot go.
    fails(
        cli(a, &["svc", "rm", "svc1", "namespace=ns1"]),
        1,
        "still used by route \"r1\"",
    );

    let deletes: Vec<Vec<&str>> = vec![
        vec!["sec", "rm", "s1", "namespace=ns1"],
        vec!["doc", "delete", "doc1", "namespace=ns1", "collection=c1"],
        vec!["col", "rm", "c1", "namespace=ns1"],
        vec!["dom", "rm", "d1", "namespace=ns1"],
        vec!["rt", "delete", "r1", "namespace=ns1"],
        vec!["mod", "rm", "m1", "namespace=ns1"],
        vec!["svc", "rm", "svc1", "namespace=ns1"],
        vec!["ns", "rm", "ns1"],
    ];
    for args in &deletes {
        ok(cli(a, args));
    }
    let nss = json_of(cli(a, &["-o", "json", "ns", "ls"]));
    assert_eq!(nss.as_array().unwrap().len(), 1, "{nss}");
    gw.stop();
}

#[test]
fn cli_errors_are_one_line_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let a = gw.admin.as_str();
    fails(
        cli(a, &["svc", "get", "nope"]),
        1,
        "service \"nope\" in namespace \"default\" not found (HTTP 404)",
    );
    fails(
        cli(a, &["svc", "create", "s", "urls=ftp://x"]),
        1,
        "must use http or https (HTTP 422)",
    );
    fails(
        cli(a, &["svc", "create", "s", "retries:=x"]),
        2,
        "retries:= takes JSON",
    );
    fails(cli(a, &["svc", "get"]), 2, "which service?");
    fails(
        cli(a, &["svc", "ls", "bogus=1"]),
        2,
        "a service has no field \"bogus\"",
    );
    fails(
        cli("http://127.0.0.1:1", &["ns", "ls"]),
        1,
        "cannot reach the admin API at http://127.0.0.1:1",
    );
    fails(cli("not a url", &["ns", "ls"]), 2, "is not a URL");
    gw.stop();
}

#[test]
fn completions_are_printed() {
    for shell in ["bash", "zsh", "fish"] {
        let out = ok(cli("http://x", &["completions", shell]));
        assert!(out.contains("namespace"), "{shell}");
    }
}
