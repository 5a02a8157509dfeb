//! Request matching, pure: host → namespace through domain patterns, then the namespace's routes by
//! path and method. A published [`RouteTable`] is only read; the next one is a cheap clone changed
//! route by route (see [`PathRouter`]).
//!
//! Namespace choice: the highest-priority domain whose pattern matches the host picks it; with no
//! domains at all and exactly one namespace, that namespace serves; otherwise `default` (unless the
//! table is strict, in which case a host that no domain matches is not served).

mod domain;
mod normalize;
mod path;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use http::Method;

pub use domain::{DomainPattern, normalize_host};
pub use normalize::{HiddenDotSegment, normalize_path};
pub use path::{Methods, PathMatch, PathRouter};

use crate::resources::DEFAULT_NAMESPACE;

#[derive(Debug)]
struct DomainEntry {
    patterns: Vec<DomainPattern>,
    namespace: String,
}

/// Why a request matched nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// No namespace serves this host.
    NoNamespace,
    /// The namespace has no route for this path and method.
    NoRoute,
}

/// A match: the namespace and what the route's path pattern matched.
#[derive(Debug)]
pub struct RouteMatch<'a, 'p, T> {
    pub namespace: &'a str,
    pub path: PathMatch<'a, 'p, T>,
}

/// Every namespace's routes plus the domain patterns that choose between them. Cloning costs
/// O(namespaces).
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    /// By descending priority, then name.
    domains: Arc<[DomainEntry]>,
    strict: bool,
    namespaces: HashMap<String, PathRouter<T>>,
    /// The namespace that serves hosts no domain matches.
    fallback: Option<String>,
    /// Every domain pattern in use, compiled: a change to one domain compiles only its own
    /// (a regular expression can take a millisecond).
    compiled: Arc<HashMap<String, DomainPattern>>,
}

/// Input for one domain.
pub struct DomainSpec<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub priority: i64,
    pub patterns: &'a [String],
}

/// Input for one route: its namespace, patterns and methods, and the value a match returns.
pub struct RouteSpec<'a, T> {
    pub namespace: &'a str,
    /// The route's name: orders routes with the same pattern and methods.
    pub name: &'a str,
    pub paths: &'a [String],
    pub methods: &'a [String],
    pub value: T,
}

impl<T: Clone> RouteTable<T> {
    /// Builds a table. `namespaces` lists every namespace (routes or not); `strict` refuses hosts
    /// that no domain matches instead of falling back.
    pub fn build<'a>(
        namespaces: &[&'a str],
        domains: Vec<DomainSpec<'a>>,
        routes: Vec<RouteSpec<'a, T>>,
        strict: bool,
    ) -> RouteTable<T> {
        let mut table = RouteTable::new(strict);
        table.set_domains(namespaces, domains);
        for r in routes {
            table.insert(r.namespace, r.paths, r.methods, r.name, r.value);
        }
        table
    }

    /// An empty table.
    pub fn new(strict: bool) -> RouteTable<T> {
        RouteTable {
            domains: Arc::from([]),
            strict,
            namespaces: HashMap::new(),
            fallback: None,
            compiled: Arc::default(),
        }
    }

    /// The compiled form of a pattern of the domains last set.
    pub fn compiled(&self, pattern: &str) -> Option<&DomainPattern> {
        self.compiled.get(pattern)
    }

    /// Replaces the namespaces and domains. Routes of namespaces that remain are kept.
    pub fn set_domains(&mut self, namespaces: &[&str], domains: Vec<DomainSpec<'_>>) {
        let mut domains = domains;
        domains.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(b.name)));
        let mut compiled = HashMap::new();
        for p in domains.iter().flat_map(|d| d.patterns) {
            if compiled.contains_key(p) {
                continue;
            }
            let pattern = match self.compiled.get(p) {
                Some(done) => Some(done.clone()),
                None => DomainPattern::parse(p),
            };
            if let Some(pattern) = pattern {
                compiled.insert(p.clone(), pattern);
            }
        }
        self.domains = domains
            .iter()
            .map(|d| DomainEntry {
                patterns: d
                    .patterns
                    .iter()
                    .filter_map(|p| compiled.get(p).cloned())
                    .collect(),
                namespace: d.namespace.to_string(),
            })
            .collect();
        self.compiled = Arc::new(compiled);
        self.namespaces
            .retain(|n, _| namespaces.contains(&n.as_str()));
        for n in namespaces {
            self.namespaces.entry(n.to_string()).or_default();
        }
        self.fallback = if self.strict && !self.domains.is_empty() {
            None
        } else if self.domains.is_empty() && namespaces.len() == 1 {
            Some(namespaces[0].to_string())
        } else if self.namespaces.contains_key(DEFAULT_NAMESPACE) {
            Some(DEFAULT_NAMESPACE.to_string())
        } else {
            None
        };
    }

    /// Adds route `name` of `namespace` (which need not be known yet).
    pub fn insert(
        &mut self,
        namespace: &str,
        paths: &[String],
        methods: &[String],
        name: &str,
        value: T,
    ) {
        let router = match self.namespaces.get_mut(namespace) {
            Some(r) => r,
            None => self.namespaces.entry(namespace.to_string()).or_default(),
        };
        let methods = Methods::from_names(methods);
        for p in paths {
            router.insert(p, methods.clone(), name, value.clone());
        }
    }

    /// Removes what [`RouteTable::insert`] added for route `name` with these `paths`.
    pub fn remove(&mut self, namespace: &str, paths: &[String], name: &str) {
        if let Some(router) = self.namespaces.get_mut(namespace) {
            for p in paths {
                router.remove(p, name);
            }
        }
    }
}

impl<T> RouteTable<T> {
    /// The namespace that serves `host` (lower case, no port).
    pub fn namespace_for(&self, host: &str) -> Option<&str> {
        self.domains
            .iter()
            .find(|d| d.patterns.iter().any(|p| p.matches(host)))
            .map(|d| d.namespace.as_str())
            .or(self.fallback.as_deref())
    }

    /// Matches a request. `host` must be normalized with [`normalize_host`].
    pub fn lookup<'a, 'p>(
        &'a self,
        host: &str,
        method: &Method,
        path: &'p str,
    ) -> Result<RouteMatch<'a, 'p, T>, Miss> {
        let namespace = self.namespace_for(host).ok_or(Miss::NoNamespace)?;
        let (namespace, router) = self
            .namespaces
            .get_key_value(namespace)
            .ok_or(Miss::NoNamespace)?;
        let path = router.lookup(method, path).ok_or(Miss::NoRoute)?;
        Ok(RouteMatch {
            namespace: namespace.as_str(),
            path,
        })
    }

    /// How many route paths the table holds.
    pub fn len(&self) -> usize {
        self.namespaces.values().map(PathRouter::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
