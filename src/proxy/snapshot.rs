//! The proxy's view of the state: an immutable snapshot built from the store after every change and
//! swapped in atomically. Requests read whichever snapshot was current when they arrived.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use super::metrics::{ProxyMetrics, RouteMetrics};
use super::tls;
use super::upstream::{Clients, Upstream};
use crate::cluster::Changed;
use crate::resources::{Domain, Kind, Resource, ResourceKey, Route};
use crate::router::{DomainPattern, DomainSpec, RouteTable};
use crate::storage::{StorageError, Store};

/// What a matched route leads to.
pub struct RouteTarget {
    pub namespace: String,
    pub name: String,
    /// The name again, shared with module calls for their log lines.
    pub label: Arc<str>,
    pub upstream: Option<Arc<Upstream>>,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub metrics: Arc<RouteMetrics>,
    /// The route's modules in its order (the first is the entry); empty for a plain route.
    pub modules: Vec<Arc<ModuleSource>>,
    /// A module the route lists that has no usable component: the route answers 502 rather than
    /// run without it (it may be the route's auth check).
    pub missing_module: Option<String>,
    /// What a module hook may ask about the route (names, the service's URLs).
    pub info: Arc<crate::modules::RouteInfo>,
}

/// A module's component as the cluster stores it, identified by namespace, name and content.
pub struct ModuleSource {
    pub namespace: String,
    pub name: String,
    /// SHA-256 of the component: a new payload is a new module to the engine.
    pub hash: String,
    pub component: Vec<u8>,
    /// The module's own limits (the rest come from the config).
    pub limits: crate::resources::ModuleLimits,
    /// The module once this node has loaded it: what the requests of this snapshot use, without
    /// looking it up in [`super::hooks::Hooks`] each time.
    pub loaded: std::sync::OnceLock<Arc<super::hooks::Loaded>>,
}

impl ModuleSource {
    fn from_resource(m: &crate::resources::Module) -> Option<ModuleSource> {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD as BASE64;
        let encoded = match m.module_type {
            crate::resources::ModuleType::Wasm => &m.payload,
            _ => m.component.as_ref()?,
        };
        let component = BASE64.decode(encoded.trim()).ok()?;
        let hash = crate::modules::content_hash(&component);
        Some(ModuleSource {
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            hash,
            component,
            limits: m.limits,
            loaded: std::sync::OnceLock::new(),
        })
    }
}

pub struct Snapshot {
    pub table: RouteTable<Arc<RouteTarget>>,
    /// Domains with a certificate, by descending priority.
    certs: Certs,
}

type Certs = Arc<[(Vec<DomainPattern>, Arc<CertifiedKey>)]>;

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("routes", &self.table.len())
            .field("certs", &self.certs.len())
            .finish()
    }
}

impl Snapshot {
    /// Serves nothing: used until the first build.
    pub fn empty() -> Snapshot {
        Snapshot {
            table: RouteTable::new(false),
            certs: Arc::from([]),
        }
    }

    /// The certificate of the highest-priority domain that matches `host` and has one.
    pub fn cert_for(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.certs
            .iter()
            .find(|(patterns, _)| patterns.iter().any(|p| p.matches(host)))
            .map(|(_, key)| key.clone())
    }
}

/// The proxy's copy of the resources it serves, kept between changes so that one applied change
/// re-reads only the resource it names and changes only that resource's entries in the route table
/// (a service change re-targets that service's routes). Publishing is then a cheap clone: the cost
/// of a change does not grow with the number of routes.
pub struct Model {
    namespaces: BTreeMap<String, NamespaceModel>,
    table: RouteTable<Arc<RouteTarget>>,
    certs: Certs,
    strict: bool,
    /// A read failed part-way: the next update reads everything.
    pub stale: bool,
}

#[derive(Default)]
struct NamespaceModel {
    /// Usable upstreams by service name; a service with an unusable URL is absent (its routes 501).
    upstreams: HashMap<String, Arc<Upstream>>,
    /// Service URLs by service name.
    service_urls: HashMap<String, Vec<String>>,
    /// Modules with a usable component, by name.
    modules: HashMap<String, Arc<ModuleSource>>,
    routes: BTreeMap<String, (Route, Arc<RouteTarget>)>,
    domains: BTreeMap<String, (Domain, Option<Arc<CertifiedKey>>)>,
}

impl Model {
    /// An empty model; `strict` is the proxy's `strict_mode`.
    pub fn new(strict: bool) -> Model {
        Model {
            namespaces: BTreeMap::new(),
            table: RouteTable::new(strict),
            certs: Arc::from([]),
            strict,
            stale: false,
        }
    }

    /// Brings the model up to date with `store` after `changed`. Returns false when the change
    /// cannot affect the proxy (documents, secrets, ...), so the caller can skip publishing.
    pub fn update(
        &mut self,
        store: &Store,
        changed: Changed<'_>,
        clients: &Clients,
        metrics: &ProxyMetrics,
    ) -> Result<bool, StorageError> {
        let changed = if self.stale { Changed::All } else { changed };
        let key = match changed {
            Changed::All => {
                *self = Model::new(self.strict);
                // If a read fails below, the caller resets the model and marks it stale.
                for r in store.list(Kind::Namespace, "", None)? {
                    let ns = r.key().name;
                    self.namespaces.entry(ns.clone()).or_default();
                    for kind in [Kind::Service, Kind::Module, Kind::Route, Kind::Domain] {
                        for r in store.list(kind, &ns, None)? {
                            self.set(&ns, r, clients, metrics);
                        }
                    }
                }
                self.refresh_domains();
                return Ok(true);
            }
            Changed::One(key) => key,
        };
        if !matches!(
            key.kind,
            Kind::Namespace | Kind::Service | Kind::Route | Kind::Domain | Kind::Module
        ) {
            return Ok(false);
        }
        match store.get(key)? {
            Some(Resource::Namespace(n)) => {
                self.namespaces.entry(n.name).or_default();
            }
            Some(r) => self.set(&key.namespace, r, clients, metrics),
            None => self.remove(key, metrics),
        }
        if matches!(key.kind, Kind::Namespace | Kind::Domain) {
            self.refresh_domains();
        }
        Ok(true)
    }

    fn set(&mut self, ns: &str, r: Resource, clients: &Clients, metrics: &ProxyMetrics) {
        let model = self.namespaces.entry(ns.to_string()).or_default();
        match r {
            Resource::Module(m) => {
                match ModuleSource::from_resource(&m) {
                    Some(src) => {
                        model.modules.insert(m.name.clone(), Arc::new(src));
                    }
                    None => {
                        tracing::error!(module = %m.name, namespace = %ns, "module has no usable component (write it again to build it); its routes answer 502");
                        model.modules.remove(&m.name);
                    }
                }
                model.retarget_module(&mut self.table, &m.name, metrics);
            }
            Resource::Service(s) => {
                model.service_urls.insert(s.name.clone(), s.urls.clone());
                match Upstream::from_service(&s, clients) {
                    Some(u) => {
                        model.upstreams.insert(s.name.clone(), Arc::new(u));
                    }
                    None => {
                        tracing::error!(service = %s.name, namespace = %ns, "service has an unusable URL; its routes answer 501");
                        model.upstreams.remove(&s.name);
                    }
                }
                model.retarget(&mut self.table, &s.name, metrics);
            }
            Resource::Route(rt) => {
                let target = model.target(&rt, metrics);
                if let Some((old, _)) = model.routes.get(&rt.name) {
                    self.table.remove(ns, &old.paths, &old.name);
                }
                self.table
                    .insert(ns, &rt.paths, &rt.methods, &rt.name, target.clone());
                model.routes.insert(rt.name.clone(), (rt, target));
            }
            Resource::Domain(d) => {
                let cert = domain_cert(&d);
                model.domains.insert(d.name.clone(), (d, cert));
            }
            _ => {}
        }
    }

    fn remove(&mut self, key: &ResourceKey, metrics: &ProxyMetrics) {
        if key.kind == Kind::Namespace {
            self.namespaces.remove(&key.name);
            return;
        }
        let Some(model) = self.namespaces.get_mut(&key.namespace) else {
            return;
        };
        match key.kind {
            Kind::Service => {
                model.upstreams.remove(&key.name);
                model.service_urls.remove(&key.name);
                model.retarget(&mut self.table, &key.name, metrics);
            }
            Kind::Module => {
                model.modules.remove(&key.name);
                model.retarget_module(&mut self.table, &key.name, metrics);
            }
            Kind::Route => {
                if let Some((old, _)) = model.routes.remove(&key.name) {
                    self.table.remove(&key.namespace, &old.paths, &old.name);
                }
            }
            Kind::Domain => {
                model.domains.remove(&key.name);
            }
            _ => {}
        }
    }

    /// Recomputes what depends on the set of namespaces and domains: namespace choice by host and
    /// the certificates by SNI.
    fn refresh_domains(&mut self) {
        let mut domains: Vec<&(Domain, Option<Arc<CertifiedKey>>)> = self
            .namespaces
            .values()
            .flat_map(|m| m.domains.values())
            .collect();
        domains.sort_by(|(a, _), (b, _)| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
        self.certs = domains
            .iter()
            .filter_map(|(d, cert)| {
                Some((
                    d.patterns
                        .iter()
                        .filter_map(|p| DomainPattern::parse(p))
                        .collect(),
                    cert.clone()?,
                ))
            })
            .collect();
        let ns_refs: Vec<&str> = self.namespaces.keys().map(String::as_str).collect();
        self.table.set_domains(
            &ns_refs,
            domains
                .iter()
                .map(|(d, _)| DomainSpec {
                    name: &d.name,
                    namespace: &d.namespace,
                    priority: d.priority,
                    patterns: &d.patterns,
                })
                .collect(),
        );
    }

    /// Whether the module `name` of `namespace` with content `hash` and `limits` is still
    /// served (for dropping what the proxy compiled for modules that were deleted or replaced).
    pub fn has_module(
        &self,
        namespace: &str,
        name: &str,
        hash: &str,
        limits: &crate::resources::ModuleLimits,
    ) -> bool {
        self.namespaces
            .get(namespace)
            .and_then(|n| n.modules.get(name))
            .is_some_and(|m| m.hash == hash && &m.limits == limits)
    }

    /// The snapshot the proxy serves from: shares everything with the model's current state.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            table: self.table.clone(),
            certs: self.certs.clone(),
        }
    }
}

impl NamespaceModel {
    fn target(&self, rt: &Route, metrics: &ProxyMetrics) -> Arc<RouteTarget> {
        Arc::new(RouteTarget {
            namespace: rt.namespace.clone(),
            name: rt.name.clone(),
            label: Arc::from(rt.name.as_str()),
            upstream: rt
                .service
                .as_ref()
                .and_then(|s| self.upstreams.get(s).cloned()),
            strip_path: rt.strip_path,
            preserve_host: rt.preserve_host,
            metrics: metrics.route(&rt.namespace, &rt.name),
            modules: rt
                .modules
                .iter()
                .filter_map(|m| self.modules.get(m).cloned())
                .collect(),
            missing_module: rt
                .modules
                .iter()
                .find(|m| !self.modules.contains_key(*m))
                .cloned(),
            info: Arc::new(crate::modules::RouteInfo {
                namespace: rt.namespace.clone(),
                route: rt.name.clone(),
                service: rt.service.clone(),
                service_urls: rt
                    .service
                    .as_ref()
                    .and_then(|s| self.service_urls.get(s).cloned())
                    .unwrap_or_default(),
            }),
        })
    }

    /// Points the routes that use `module` at its current component.
    fn retarget_module(
        &mut self,
        table: &mut RouteTable<Arc<RouteTarget>>,
        module: &str,
        metrics: &ProxyMetrics,
    ) {
        let names: Vec<String> = self
            .routes
            .iter()
            .filter(|(_, (rt, _))| rt.modules.iter().any(|m| m == module))
            .map(|(name, _)| name.clone())
            .collect();
        self.retarget_named(table, names, metrics);
    }

    /// Points the routes of `service` at its current upstream, in the model and in `table`.
    fn retarget(
        &mut self,
        table: &mut RouteTable<Arc<RouteTarget>>,
        service: &str,
        metrics: &ProxyMetrics,
    ) {
        let names: Vec<String> = self
            .routes
            .iter()
            .filter(|(_, (rt, _))| rt.service.as_deref() == Some(service))
            .map(|(name, _)| name.clone())
            .collect();
        self.retarget_named(table, names, metrics);
    }

    fn retarget_named(
        &mut self,
        table: &mut RouteTable<Arc<RouteTarget>>,
        names: Vec<String>,
        metrics: &ProxyMetrics,
    ) {
        for name in names {
            let rt = self.routes[&name].0.clone();
            let target = self.target(&rt, metrics);
            table.remove(&rt.namespace, &rt.paths, &rt.name);
            table.insert(
                &rt.namespace,
                &rt.paths,
                &rt.methods,
                &rt.name,
                target.clone(),
            );
            self.routes.insert(name, (rt, target));
        }
    }
}

fn domain_cert(d: &Domain) -> Option<Arc<CertifiedKey>> {
    let (cert, key) = (d.cert.as_ref()?, d.key.as_ref()?);
    match tls::certified_key(cert.as_bytes(), key.as_bytes()) {
        Ok(k) => Some(Arc::new(k)),
        Err(e) => {
            tracing::error!(domain = %d.name, error = %e, "domain certificate not usable");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::cluster::StateMachine;
    use crate::resources::ChangeCommand;

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
        let sm = StateMachine::new(Store::open_memory().unwrap());
        let clients = Arc::new(Clients::new());
        let metrics = ProxyMetrics::register(&prometheus::Registry::new()).unwrap();
        let incremental = Arc::new(Mutex::new(Model::new(false)));
        let (m, c, mt) = (incremental.clone(), clients.clone(), metrics.clone());
        sm.observe(Box::new(move |store, changed| {
            m.lock().unwrap().update(store, changed, &c, &mt).unwrap();
        }));
        let put = |kind, v: serde_json::Value| {
            let r = Resource::from_json(kind, v.to_string().as_bytes()).unwrap();
            sm.apply(ChangeCommand::put(r)).unwrap();
        };
        let del = |kind, ns: &str, name: &str| {
            let mut key = ResourceKey::namespace(name);
            (key.kind, key.namespace) = (kind, ns.to_string());
            sm.apply(ChangeCommand::delete(key)).unwrap();
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
            full.update(sm.store(), Changed::All, &clients, &metrics)
                .unwrap();
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
}

#[cfg(test)]
mod module_tests {
    use serde_json::json;

    use super::*;
    use crate::cluster::StateMachine;
    use crate::resources::ChangeCommand;

    /// A route whose module has no built component (data from before modules were built on
    /// write) must not run without it.
    #[test]
    fn a_route_whose_module_has_no_component_is_not_served_without_it() {
        let sm = StateMachine::new(Store::open_memory().unwrap());
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
            sm.apply(ChangeCommand::put(r)).unwrap();
        }
        let mut model = Model::new(false);
        model
            .update(sm.store(), Changed::All, &clients, &metrics)
            .unwrap();
        let snapshot = model.snapshot();
        let m = snapshot
            .table
            .lookup("localhost", &http::Method::GET, "/")
            .unwrap();
        assert!(m.path.value.modules.is_empty());
        assert_eq!(m.path.value.missing_module.as_deref(), Some("auth"));
    }
}
