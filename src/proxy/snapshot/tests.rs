use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::resources::validate;

/// The served resources as a state machine holds them, applied to a model change by change.
#[derive(Default)]
struct Applier {
    state: Mutex<Vec<Resource>>,
}

impl Applier {
    fn put(
        &self,
        mut r: Resource,
        model: &Mutex<Model>,
        clients: &Clients,
        metrics: &ProxyMetrics,
    ) {
        validate::resource(&mut r).unwrap();
        let mut state = self.state.lock().unwrap();
        state.retain(|x| x.key() != r.key());
        state.push(r.clone());
        model
            .lock()
            .unwrap()
            .update(Applied::Put(&r), clients, metrics);
    }

    fn delete(
        &self,
        key: ResourceKey,
        model: &Mutex<Model>,
        clients: &Clients,
        metrics: &ProxyMetrics,
    ) {
        self.state.lock().unwrap().retain(|x| x.key() != key);
        model
            .lock()
            .unwrap()
            .update(Applied::Deleted(&key), clients, metrics);
    }

    /// Every served resource in the state machine's order: namespaces, then each namespace's
    /// services, modules, routes and domains.
    fn all(&self) -> Vec<Resource> {
        let state = self.state.lock().unwrap();
        let mut all: Vec<Resource> = state
            .iter()
            .filter(|r| r.kind() == Kind::Namespace)
            .cloned()
            .collect();
        let namespaces: Vec<String> = all.iter().map(|r| r.key().name).collect();
        for ns in namespaces {
            for kind in &SERVED[1..] {
                all.extend(
                    state
                        .iter()
                        .filter(|r| r.kind() == *kind && r.key().namespace == ns)
                        .cloned(),
                );
            }
        }
        all
    }
}

/// Everything the proxy serves from, one line per route and domain, in a fixed order.
fn describe(m: &Model) -> Vec<String> {
    let mut lines = vec![];
    for (ns, model) in &m.namespaces {
        lines.push(format!("namespace {ns}"));
        for (name, (rt, target)) in &model.routes {
            let upstream = target.upstream.as_ref().map(|u| u.describe());
            lines.push(format!("route {ns}/{name} {:?} -> {upstream:?}", rt.paths));
        }
        for (name, (d, cert)) in &model.domains {
            lines.push(format!(
                "domain {ns}/{name} {:?} cert={}",
                d.patterns,
                cert.is_some()
            ));
        }
    }
    // What the published table answers, not only what the model holds.
    let snapshot = m.snapshot();
    lines.push(format!("table len {}", snapshot.table.len()));
    for host in ["plain", "x.b.test"] {
        for path in ["/x", "/y/1", "/z", "/"] {
            let hit = snapshot
                .table
                .lookup(host, &http::Method::GET, path)
                .map(|m| {
                    let t = m.path.value;
                    (
                        m.namespace.to_string(),
                        t.name.clone(),
                        t.upstream.as_ref().map(|u| u.describe()),
                    )
                });
            lines.push(format!("lookup {host}{path} -> {hit:?}"));
        }
    }
    lines
}

/// Applies each change, keeping one model up to date change by change, and checks it against
/// a model read from scratch after every step.
#[test]
fn incremental_updates_match_a_full_read() {
    let sm = Applier::default();
    let clients = Clients::new();
    let metrics = ProxyMetrics::register(&prometheus::Registry::new()).unwrap();
    let incremental = Mutex::new(Model::new(false));
    let put = |kind, v: serde_json::Value| {
        let r = Resource::from_json(kind, v.to_string().as_bytes()).unwrap();
        sm.put(r, &incremental, &clients, &metrics);
    };
    let del = |kind, ns: &str, name: &str| {
        let mut key = ResourceKey::namespace(name);
        (key.kind, key.namespace) = (kind, ns.to_string());
        sm.delete(key, &incremental, &clients, &metrics);
    };
    let steps: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| put(Kind::Namespace, json!({"name": "default"}))),
        Box::new(|| put(Kind::Namespace, json!({"name": "b"}))),
        Box::new(|| {
            put(
                Kind::Service,
                json!({"name": "s", "namespace": "default", "urls": ["http://one:1"]}),
            )
        }),
        Box::new(|| {
            put(
                Kind::Service,
                json!({"name": "s", "namespace": "b", "urls": ["http://b:1"]}),
            )
        }),
        Box::new(|| {
            put(
                Kind::Route,
                json!({"name": "r1", "namespace": "default", "paths": ["/x"], "methods": ["GET"], "service": "s"}),
            )
        }),
        Box::new(|| {
            put(
                Kind::Route,
                json!({"name": "r2", "namespace": "default", "paths": ["/y/*"], "methods": ["GET"], "service": "s"}),
            )
        }),
        Box::new(|| {
            put(
                Kind::Route,
                json!({"name": "r1", "namespace": "b", "paths": ["/x"], "methods": ["GET"], "service": "s"}),
            )
        }),
        // A service update re-targets that service's routes in its namespace only.
        Box::new(|| {
            put(
                Kind::Service,
                json!({"name": "s", "namespace": "default", "urls": ["http://two:2"]}),
            )
        }),
        Box::new(|| {
            put(
                Kind::Domain,
                json!({"name": "d", "namespace": "b", "patterns": ["*.b.test"], "priority": 3}),
            )
        }),
        Box::new(|| {
            put(
                Kind::Route,
                json!({"name": "r1", "namespace": "default", "paths": ["/z"], "methods": ["GET"]}),
            )
        }),
        Box::new(|| {
            put(
                Kind::Collection,
                json!({"name": "c", "namespace": "default", "schema": {}}),
            )
        }),
        Box::new(|| del(Kind::Route, "default", "r2")),
        Box::new(|| del(Kind::Collection, "default", "c")),
        Box::new(|| del(Kind::Domain, "b", "d")),
        Box::new(|| del(Kind::Route, "b", "r1")),
        Box::new(|| del(Kind::Service, "b", "s")),
        Box::new(|| del(Kind::Namespace, "", "b")),
    ];
    for (i, step) in steps.iter().enumerate() {
        step();
        if i == 7 {
            let now = describe(&incremental.lock().unwrap());
            assert!(
                now.contains(&"route default/r2 [\"/y/*\"] -> Some(\"s: two:2\")".to_string()),
                "{now:?}"
            );
            assert!(
                now.contains(&"route b/r1 [\"/x\"] -> Some(\"s: b:1\")".to_string()),
                "{now:?}"
            );
            assert!(
                now.contains(
                    &"lookup plain/y/1 -> Ok((\"default\", \"r2\", Some(\"s: two:2\")))"
                        .to_string()
                ),
                "{now:?}"
            );
        }
        let mut full = Model::new(false);
        full.update(Applied::All(&sm.all()), &clients, &metrics);
        assert_eq!(
            describe(&incremental.lock().unwrap()),
            describe(&full),
            "after step {i}"
        );
    }
    assert_eq!(
        describe(&incremental.lock().unwrap()),
        [
            "namespace default",
            "route default/r1 [\"/z\"] -> None",
            "table len 1",
            "lookup plain/x -> Err(NoRoute)",
            "lookup plain/y/1 -> Err(NoRoute)",
            "lookup plain/z -> Ok((\"default\", \"r1\", None))",
            "lookup plain/ -> Err(NoRoute)",
            "lookup x.b.test/x -> Err(NoRoute)",
            "lookup x.b.test/y/1 -> Err(NoRoute)",
            "lookup x.b.test/z -> Ok((\"default\", \"r1\", None))",
            "lookup x.b.test/ -> Err(NoRoute)",
        ]
    );
}

/// A route whose module has no built component (data from before modules were built on
/// write) must not run without it.
#[test]
fn a_route_whose_module_has_no_component_is_not_served_without_it() {
    let sm = Applier::default();
    let clients = Clients::new();
    let metrics = ProxyMetrics::register(&prometheus::Registry::new()).unwrap();
    for (kind, v) in [
        (Kind::Namespace, json!({"name": "default"})),
        (
            Kind::Module,
            json!({"name": "auth", "payload": "ZXhwb3J0IHt9", "moduleType": "javascript"}),
        ),
        (
            Kind::Route,
            json!({"name": "r", "paths": ["/"], "methods": ["GET"], "modules": ["auth"]}),
        ),
    ] {
        let r = Resource::from_json(kind, v.to_string().as_bytes()).unwrap();
        sm.put(r, &Mutex::new(Model::new(false)), &clients, &metrics);
    }
    let mut model = Model::new(false);
    model.update(Applied::All(&sm.all()), &clients, &metrics);
    let snapshot = model.snapshot();
    let m = snapshot
        .table
        .lookup("localhost", &http::Method::GET, "/")
        .unwrap();
    assert!(m.path.value.modules.is_empty());
    assert_eq!(m.path.value.missing_module.as_deref(), Some("auth"));
}
