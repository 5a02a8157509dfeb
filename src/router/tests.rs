use http::Method;

use super::*;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// A router over route names; each entry is (pattern, methods).
fn router(entries: &[(&str, &[&str], &'static str)]) -> PathRouter<&'static str> {
    let mut r = PathRouter::default();
    for (p, m, v) in entries {
        r.insert(p, Methods::from_names(&s(m)), v, *v);
    }
    r
}

fn hit(r: &PathRouter<&'static str>, m: Method, path: &str) -> Option<&'static str> {
    r.lookup(&m, path).map(|x| *x.value)
}

#[test]
fn exact_params_and_globs() {
    let r = router(&[
        ("/", &["*"], "root"),
        ("/users", &["GET"], "users"),
        ("/users/{id}", &["GET"], "user"),
        ("/users/{id}/posts/{post}", &["GET"], "post"),
        ("/users/me", &["GET"], "me"),
        ("/static/*", &["GET"], "static"),
        ("/files*", &["GET"], "files"),
    ]);
    assert_eq!(hit(&r, Method::GET, "/"), Some("root"));
    assert_eq!(hit(&r, Method::GET, "/users"), Some("users"));
    assert_eq!(hit(&r, Method::GET, "/users/42"), Some("user"));
    assert_eq!(
        hit(&r, Method::GET, "/users/me"),
        Some("me"),
        "literal beats param"
    );
    assert_eq!(hit(&r, Method::GET, "/users/1/posts/2"), Some("post"));
    assert_eq!(hit(&r, Method::GET, "/static/a/b.css"), Some("static"));
    assert_eq!(hit(&r, Method::GET, "/static/"), Some("static"));
    assert_eq!(
        hit(&r, Method::GET, "/static"),
        None,
        "/static/* needs the slash"
    );
    assert_eq!(hit(&r, Method::GET, "/files"), Some("files"));
    assert_eq!(hit(&r, Method::GET, "/files.tar.gz"), Some("files"));
    assert_eq!(
        hit(&r, Method::GET, "/users/"),
        None,
        "an empty segment is no parameter"
    );
    assert_eq!(hit(&r, Method::GET, "/nope"), None);
    assert_eq!(hit(&r, Method::GET, "/users/1/posts"), None);
}

#[test]
fn params_and_rest_are_captured() {
    let r = router(&[
        ("/users/{id}/posts/{post}", &["GET"], "p"),
        ("/a/{x}/*", &["*"], "g"),
    ]);
    let m = r.lookup(&Method::GET, "/users/7/posts/x%20y").unwrap();
    assert_eq!(m.params, vec![("id", "7"), ("post", "x%20y")]);
    assert_eq!(m.rest, None);
    let m = r.lookup(&Method::DELETE, "/a/b/c/d").unwrap();
    assert_eq!(m.params, vec![("x", "b")]);
    assert_eq!(m.rest, Some("c/d"));
}

#[test]
fn an_unnamed_parameter_matches_a_segment_as_dgate_does() {
    let r = router(&[("/{}", &["GET"], "any"), ("/x/{}/{id}", &["GET"], "two")]);
    let m = r.lookup(&Method::GET, "/abc").unwrap();
    assert_eq!(*m.value, "any");
    assert!(m.params.is_empty());
    let m = r.lookup(&Method::GET, "/x/a/b").unwrap();
    assert_eq!(m.params, vec![("id", "b")]);
    assert_eq!(r.lookup(&Method::GET, "/abc/def").map(|m| *m.value), None);
}

#[test]
fn most_specific_wins_then_backtracks_on_method() {
    let r = router(&[
        ("/api/*", &["*"], "catch-all"),
        ("/api/users/{id}", &["GET"], "get-user"),
        ("/api/users/*", &["POST"], "post-users"),
        ("/api/users/{id}", &["*"], "any-user"),
    ]);
    assert_eq!(hit(&r, Method::GET, "/api/users/1"), Some("get-user"));
    assert_eq!(hit(&r, Method::PUT, "/api/users/1"), Some("any-user"));
    assert_eq!(hit(&r, Method::POST, "/api/users/1"), Some("any-user"));
    assert_eq!(hit(&r, Method::POST, "/api/users/1/x"), Some("post-users"));
    assert_eq!(hit(&r, Method::GET, "/api/users/1/x"), Some("catch-all"));
    assert_eq!(hit(&r, Method::GET, "/api"), None);
}

#[test]
fn longer_glob_prefix_wins_and_explicit_methods_beat_star() {
    let r = router(&[
        ("/*", &["*"], "all"),
        ("/static/img/*", &["GET"], "img"),
        ("/static/*", &["GET"], "static"),
        ("/x", &["*"], "x-any"),
        ("/x", &["GET"], "x-get"),
    ]);
    assert_eq!(hit(&r, Method::GET, "/static/img/a.png"), Some("img"));
    assert_eq!(hit(&r, Method::GET, "/static/a.png"), Some("static"));
    assert_eq!(hit(&r, Method::POST, "/static/a.png"), Some("all"));
    assert_eq!(hit(&r, Method::GET, "/x"), Some("x-get"));
    assert_eq!(hit(&r, Method::HEAD, "/x"), Some("x-any"));
    assert_eq!(hit(&r, Method::GET, "/"), Some("all"));
}

#[test]
fn method_lists() {
    let r = router(&[("/m", &["GET", "POST"], "m")]);
    assert_eq!(hit(&r, Method::POST, "/m"), Some("m"));
    assert_eq!(hit(&r, Method::DELETE, "/m"), None);
    assert_eq!(r.len(), 1);
}

#[test]
fn domain_patterns() {
    let p = |x: &str| DomainPattern::parse(x).unwrap();
    assert!(p("*").matches("anything"));
    assert!(p("*.example.com").matches("a.example.com"));
    assert!(p("*.example.com").matches("a.b.example.com"));
    assert!(!p("*.example.com").matches("example.com"));
    assert!(!p("*.example.com").matches("badexample.com"));
    assert!(p("api.*").matches("api.example.com"));
    assert!(!p("api.*").matches("www.api.com"));
    assert!(p("Example.COM").matches("example.com"));
    assert!(!p("example.com").matches("www.example.com"));
    assert!(p("/^(a|b)\\.test$/").matches("b.test"));
    assert!(p("/^(a|b)\\.test$/").matches("A.TEST".to_ascii_lowercase().as_str()));
    assert!(!p("/^(a|b)\\.test$/").matches("c.test"));
    assert!(DomainPattern::parse("/(/").is_none());
    // DGate's forms: `*x*` is "contains", `**` is `*`.
    assert!(p("*local*").matches("localhost"));
    assert!(p("*local*").matches("my.local.dev"));
    assert!(!p("*local*").matches("example.com"));
    assert!(p("**.dgate.dev").matches("a.dgate.dev"));
}

#[test]
fn host_normalization() {
    assert_eq!(normalize_host("Example.com:8080"), "example.com");
    assert_eq!(normalize_host("example.com."), "example.com");
    assert_eq!(normalize_host("[::1]:80"), "[::1]");
    assert_eq!(normalize_host("[::1]"), "[::1]");
    assert_eq!(normalize_host("127.0.0.1"), "127.0.0.1");
}

fn table(namespaces: &[&str], domains: Vec<DomainSpec>, strict: bool) -> RouteTable<&'static str> {
    let routes = namespaces
        .iter()
        .map(|ns| RouteSpec {
            namespace: ns,
            name: ns,
            paths: Box::leak(Box::new(s(&["/*"]))),
            methods: Box::leak(Box::new(s(&["*"]))),
            value: Box::leak(ns.to_string().into_boxed_str()) as &'static str,
        })
        .collect();
    RouteTable::build(namespaces, domains, routes, strict)
}

fn pats(v: &[&str]) -> &'static [String] {
    Box::leak(Box::new(s(v)))
}

#[test]
fn namespace_choice() {
    // No domains, one namespace: it serves everything.
    let t = table(&["only"], vec![], false);
    assert_eq!(t.namespace_for("x.com"), Some("only"));
    // No domains, several namespaces: default.
    let t = table(&["default", "other"], vec![], false);
    assert_eq!(t.namespace_for("x.com"), Some("default"));
    // No domains, several namespaces, no default: nothing.
    let t = table(&["a", "b"], vec![], false);
    assert_eq!(t.namespace_for("x.com"), None);
    assert_eq!(
        t.lookup("x.com", &Method::GET, "/").unwrap_err(),
        Miss::NoNamespace
    );

    let domains = || {
        vec![
            DomainSpec {
                name: "low",
                namespace: "a",
                priority: 1,
                patterns: pats(&["*.example.com"]),
            },
            DomainSpec {
                name: "high",
                namespace: "b",
                priority: 10,
                patterns: pats(&["api.*"]),
            },
            DomainSpec {
                name: "any",
                namespace: "c",
                priority: -5,
                patterns: pats(&["/^c[0-9]+\\.test$/"]),
            },
        ]
    };
    let t = table(&["default", "a", "b", "c"], domains(), false);
    assert_eq!(t.namespace_for("www.example.com"), Some("a"));
    assert_eq!(
        t.namespace_for("api.example.com"),
        Some("b"),
        "higher priority wins"
    );
    assert_eq!(t.namespace_for("c12.test"), Some("c"));
    assert_eq!(t.namespace_for("unknown.org"), Some("default"));
    let m = t.lookup("api.example.com", &Method::GET, "/x").unwrap();
    assert_eq!((m.namespace, *m.path.value), ("b", "b"));
    // Strict: a host no domain matches is not served.
    let t = table(&["default", "a", "b", "c"], domains(), true);
    assert_eq!(t.namespace_for("unknown.org"), None);
    assert_eq!(t.namespace_for("www.example.com"), Some("a"));
}

#[test]
fn a_namespace_without_routes_misses_by_route() {
    let t: RouteTable<&str> = RouteTable::build(&["default"], vec![], vec![], false);
    assert_eq!(t.lookup("h", &Method::GET, "/").unwrap_err(), Miss::NoRoute);
    assert!(t.is_empty());
}

#[test]
fn remove_undoes_insert_and_clones_keep_their_state() {
    let mut r = router(&[
        ("/users/{id}", &["GET"], "user"),
        ("/users/me", &["GET"], "me"),
        ("/static/*", &["GET"], "static"),
        ("/", &["*"], "root"),
    ]);
    let published = r.clone();
    assert!(r.remove("/users/me", "me"));
    assert!(r.remove("/static/*", "static"));
    assert!(!r.remove("/static/*", "static"), "already gone");
    assert!(!r.remove("/users/{id}", "someone-else"));
    assert!(!r.remove("/nope/deeper", "user"));
    assert_eq!(hit(&r, Method::GET, "/users/me"), Some("user"));
    assert_eq!(hit(&r, Method::GET, "/static/a.css"), None);
    assert_eq!(r.len(), 2);
    // The clone taken before the removals still answers as it did.
    assert_eq!(hit(&published, Method::GET, "/users/me"), Some("me"));
    assert_eq!(
        hit(&published, Method::GET, "/static/a.css"),
        Some("static")
    );
    assert_eq!(published.len(), 4);
    r.insert("/users/me", Methods::Any, "me2", "me2");
    assert_eq!(hit(&r, Method::POST, "/users/me"), Some("me2"));
    assert_eq!(hit(&published, Method::POST, "/users/me"), None);
    assert!(r.remove("/users/{id}", "user"));
    assert!(r.remove("/users/me", "me2"));
    assert!(r.remove("/", "root"));
    assert!(r.is_empty());
    assert_eq!(hit(&r, Method::GET, "/"), None);
}

#[test]
fn same_pattern_ties_go_by_route_name_not_insertion_order() {
    let ab = router(&[("/x", &["GET"], "a"), ("/x", &["GET"], "b")]);
    let ba = router(&[("/x", &["GET"], "b"), ("/x", &["GET"], "a")]);
    assert_eq!(hit(&ab, Method::GET, "/x"), Some("a"));
    assert_eq!(hit(&ba, Method::GET, "/x"), Some("a"));
    // Explicit methods still come before "*", whatever the names.
    let any_first = router(&[("/x", &["*"], "a"), ("/x", &["GET"], "z")]);
    assert_eq!(hit(&any_first, Method::GET, "/x"), Some("z"));
    assert_eq!(hit(&any_first, Method::PUT, "/x"), Some("a"));
}

mod normalize {
    use crate::router::{HiddenDotSegment, normalize_path};

    #[test]
    fn dot_segments_are_removed_as_rfc_3986_says() {
        for (path, want) in [
            ("/a/b/c", "/a/b/c"),
            ("/public/../admin/x", "/admin/x"),
            ("/public/%2e%2e/admin/x", "/admin/x"),
            ("/public/%2E%2e/admin/x", "/admin/x"),
            ("/public/.%2e/admin", "/admin"),
            ("/a/./b", "/a/b"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/.hidden/..x/b.", "/a/.hidden/..x/b."),
            ("/a%20b/%2ex", "/a%20b/%2ex"),
            ("/", "/"),
        ] {
            assert_eq!(normalize_path(path).unwrap(), want, "{path}");
        }
    }

    #[test]
    fn a_dot_segment_behind_an_encoded_slash_is_refused() {
        for path in [
            "/public/..%2fadmin/x",
            "/public/..%2Fadmin",
            "/public/%2e%2e%2fadmin",
            "/public/.%5c..%5cadmin",
        ] {
            assert_eq!(normalize_path(path), Err(HiddenDotSegment), "{path}");
        }
        // An encoded slash alone is data (an id with a slash in it).
        assert_eq!(
            normalize_path("/repos/group%2Fproject").unwrap(),
            "/repos/group%2Fproject"
        );
    }
}
