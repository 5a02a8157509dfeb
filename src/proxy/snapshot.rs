//! The proxy's view of the state: an immutable snapshot built from the store after every change and
//! swapped in atomically. Requests read whichever snapshot was current when they arrived.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::sign::CertifiedKey;

use super::metrics::{ProxyMetrics, RouteMetrics};
use super::tls;
use super::upstream::{Clients, Upstream};
use crate::resources::{Kind, Resource};
use crate::router::{DomainPattern, DomainSpec, RouteSpec, RouteTable};
use crate::storage::{StorageError, Store};

/// What a matched route leads to.
pub struct RouteTarget {
    pub namespace: String,
    pub name: String,
    pub upstream: Option<Arc<Upstream>>,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub metrics: Arc<RouteMetrics>,
}

pub struct Snapshot {
    pub table: RouteTable<Arc<RouteTarget>>,
    /// Domains with a certificate, by descending priority.
    certs: Vec<(Vec<DomainPattern>, Arc<CertifiedKey>)>,
}

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
            table: RouteTable::build(&[], vec![], vec![], false),
            certs: vec![],
        }
    }

    /// The certificate of the highest-priority domain that matches `host` and has one.
    pub fn cert_for(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.certs
            .iter()
            .find(|(patterns, _)| patterns.iter().any(|p| p.matches(host)))
            .map(|(_, key)| key.clone())
    }

    /// Reads the whole state and builds the snapshot.
    pub fn build(
        store: &Store,
        clients: &Clients,
        metrics: &ProxyMetrics,
        strict: bool,
    ) -> Result<Snapshot, StorageError> {
        let namespaces: Vec<String> = store
            .list(Kind::Namespace, "", None)?
            .into_iter()
            .map(|r| r.key().name)
            .collect();
        let mut routes = Vec::new();
        let mut domains = Vec::new();
        for ns in &namespaces {
            let mut upstreams: HashMap<String, Arc<Upstream>> = HashMap::new();
            for r in store.list(Kind::Service, ns, None)? {
                if let Resource::Service(s) = r {
                    match Upstream::from_service(&s, clients) {
                        Some(u) => {
                            upstreams.insert(s.name.clone(), Arc::new(u));
                        }
                        None => {
                            tracing::error!(service = %s.name, namespace = %ns, "service has an unusable URL; its routes answer 501")
                        }
                    }
                }
            }
            for r in store.list(Kind::Route, ns, None)? {
                if let Resource::Route(rt) = r {
                    let target = RouteTarget {
                        namespace: ns.clone(),
                        name: rt.name.clone(),
                        upstream: rt.service.as_ref().and_then(|s| upstreams.get(s).cloned()),
                        strip_path: rt.strip_path,
                        preserve_host: rt.preserve_host,
                        metrics: metrics.route(ns, &rt.name),
                    };
                    routes.push((rt, Arc::new(target)));
                }
            }
            for r in store.list(Kind::Domain, ns, None)? {
                if let Resource::Domain(d) = r {
                    domains.push(d);
                }
            }
        }
        domains.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
        let certs = domains
            .iter()
            .filter_map(|d| {
                let (cert, key) = (d.cert.as_ref()?, d.key.as_ref()?);
                match tls::certified_key(cert.as_bytes(), key.as_bytes()) {
                    Ok(k) => Some((
                        d.patterns.iter().filter_map(|p| DomainPattern::parse(p)).collect(),
                        Arc::new(k),
                    )),
                    Err(e) => {
                        tracing::error!(domain = %d.name, error = %e, "domain certificate not usable");
                        None
                    }
                }
            })
            .collect();
        let ns_refs: Vec<&str> = namespaces.iter().map(String::as_str).collect();
        let table = RouteTable::build(
            &ns_refs,
            domains
                .iter()
                .map(|d| DomainSpec {
                    name: &d.name,
                    namespace: &d.namespace,
                    priority: d.priority,
                    patterns: &d.patterns,
                })
                .collect(),
            routes
                .iter()
                .map(|(rt, target)| RouteSpec {
                    namespace: &rt.namespace,
                    paths: &rt.paths,
                    methods: &rt.methods,
                    value: target.clone(),
                })
                .collect(),
            strict,
        );
        Ok(Snapshot { table, certs })
    }
}
