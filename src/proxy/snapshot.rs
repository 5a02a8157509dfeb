//! The proxy's view of the state: an immutable snapshot rebuilt from each applied change and
//! swapped in atomically. Requests read whichever snapshot was current when they arrived.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use super::metrics::{ProxyMetrics, RouteMetrics};
use super::upstream::{Clients, Upstream};
use crate::modules::{ModuleSource, RouteInfo};
use crate::resources::{Applied, Domain, Kind, Resource, ResourceKey, Route, SERVED};
use crate::router::{DomainPattern, DomainSpec, RouteTable};

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
    pub info: Arc<RouteInfo>,
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
/// changes only that resource's entries in the route table (a service change re-targets that
/// service's routes). Publishing is then a cheap clone: the cost of a change does not grow with
/// the number of routes.
pub struct Model {
    namespaces: BTreeMap<String, NamespaceModel>,
    table: RouteTable<Arc<RouteTarget>>,
    certs: Certs,
    strict: bool,
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
        }
    }

    /// Brings the model up to date with what the state machine applied. Returns false when the
    /// change cannot affect the proxy (documents, secrets, ...), so the caller can skip publishing.
    pub fn update(
        &mut self,
        applied: Applied<'_>,
        clients: &Clients,
        metrics: &ProxyMetrics,
    ) -> bool {
        match applied {
            Applied::All(all) => {
                *self = Model::new(self.strict);
                for r in all {
                    self.put(r, clients, metrics);
                }
                self.refresh_domains();
                true
            }
            Applied::Put(r) => {
                let kind = r.kind();
                if !SERVED.contains(&kind) {
                    return false;
                }
                self.put(r, clients, metrics);
                if matches!(kind, Kind::Namespace | Kind::Domain) {
                    self.refresh_domains();
                }
                true
            }
            Applied::Deleted(key) => {
                if !SERVED.contains(&key.kind) {
                    return false;
                }
                self.remove(key, metrics);
                if matches!(key.kind, Kind::Namespace | Kind::Domain) {
                    self.refresh_domains();
                }
                true
            }
        }
    }

    fn put(&mut self, r: &Resource, clients: &Clients, metrics: &ProxyMetrics) {
        match r {
            Resource::Namespace(n) => {
                self.namespaces.entry(n.name.clone()).or_default();
            }
            r => self.set(&r.key().namespace, r.clone(), clients, metrics),
        }
    }

    fn set(&mut self, ns: &str, r: Resource, clients: &Clients, metrics: &ProxyMetrics) {
        let model = self.namespaces.entry(ns.to_string()).or_default();
        match r {
            Resource::Module(m) => {
                match ModuleSource::from_resource(&m) {
                    Some(src) => {
                        // Until this node has loaded the new version, its routes run the old.
                        if let Some(old) = model.modules.get(&m.name) {
                            src.replaces(old);
                        }
                        model.modules.insert(m.name.clone(), Arc::new(src));
                    }
                    None => {
                        tracing::warn!(module = %m.name, namespace = %ns, "module has no usable component (it waits for a module it imports, or write it again to build it); its routes answer 502");
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
        // The certificates by SNI, on the patterns the table just compiled.
        let table = &self.table;
        self.certs = domains
            .iter()
            .filter_map(|(d, cert)| {
                Some((
                    d.patterns
                        .iter()
                        .filter_map(|p| table.compiled(p).cloned())
                        .collect(),
                    cert.clone()?,
                ))
            })
            .collect();
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

    /// The modules this node has not loaded yet.
    pub fn unloaded_modules(&self) -> Vec<Arc<ModuleSource>> {
        self.namespaces
            .values()
            .flat_map(|n| n.modules.values())
            .filter(|m| m.loaded.get().is_none())
            .cloned()
            .collect()
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
            info: Arc::new(RouteInfo {
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
    match crate::resources::validate::certified_key(cert.as_bytes(), key.as_bytes()) {
        Ok(k) => Some(Arc::new(k)),
        Err(e) => {
            tracing::error!(domain = %d.name, error = %e, "domain certificate not usable");
            None
        }
    }
}

#[cfg(test)]
mod tests;
