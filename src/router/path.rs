//! Path patterns in a segment trie: literal segments (`/users`), parameters (`/{id}`) and a final
//! glob (`/static/*`, `/files*`). Lookup prefers literal over parameter over glob at every segment
//! and backtracks, so the most specific pattern that also allows the method wins.
//!
//! The trie is persistent: nodes are shared through `Arc`, and [`PathRouter::insert`] and
//! [`PathRouter::remove`] copy only the nodes on the changed pattern's path when a clone (a
//! published snapshot) still holds them; children are in a persistent map, so even a node with
//! thousands of children is copied in O(log children). One route change costs about
//! O(pattern depth × log fan-out), not O(routes).

use std::sync::Arc;

use http::Method;

/// Which methods an endpoint accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Methods {
    Any,
    Only(Vec<Method>),
}

impl Methods {
    /// From route method names as validated by the resources layer (`"*"` or upper-case names).
    pub fn from_names(names: &[String]) -> Methods {
        if names.iter().any(|m| m == "*") {
            return Methods::Any;
        }
        Methods::Only(
            names
                .iter()
                .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
                .collect(),
        )
    }

    fn allows(&self, m: &Method) -> bool {
        match self {
            Methods::Any => true,
            Methods::Only(list) => list.iter().any(|x| x == m),
        }
    }
}

#[derive(Debug, Clone)]
struct Endpoint<T> {
    methods: Methods,
    /// Who added it (a route name): orders ties and finds it again for removal.
    id: Arc<str>,
    params: Arc<[Box<str>]>,
    value: T,
}

#[derive(Debug, Clone)]
struct Glob<T> {
    prefix: Box<str>,
    endpoints: Vec<Endpoint<T>>,
}

#[derive(Debug, Clone)]
struct Node<T> {
    /// A persistent map, so that copying a node with thousands of children (a wide root) shares
    /// them rather than copying them.
    literal: imbl::HashMap<Arc<str>, Arc<Node<T>>>,
    param: Option<Arc<Node<T>>>,
    /// Longest prefix first.
    globs: Vec<Glob<T>>,
    endpoints: Vec<Endpoint<T>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            literal: imbl::HashMap::new(),
            param: None,
            globs: Vec::new(),
            endpoints: Vec::new(),
        }
    }
}

/// A successful lookup.
#[derive(Debug, PartialEq)]
pub struct PathMatch<'a, 'p, T> {
    pub value: &'a T,
    /// Parameter names and the raw (still percent-encoded) path segments they matched.
    pub params: Vec<(&'a str, &'p str)>,
    /// What a glob matched, without the glob's own literal prefix; `None` for patterns without one.
    pub rest: Option<&'p str>,
}

/// The path patterns of one namespace. Cloning is O(1).
#[derive(Debug, Clone)]
pub struct PathRouter<T> {
    root: Arc<Node<T>>,
    len: usize,
}

impl<T> Default for PathRouter<T> {
    fn default() -> Self {
        PathRouter {
            root: Arc::new(Node::default()),
            len: 0,
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.literal.is_empty()
            && self.param.is_none()
            && self.globs.is_empty()
            && self.endpoints.is_empty()
    }
}

/// Splits `/a/b` into `["a", "b"]`; `/` is `[""]`.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.strip_prefix('/').unwrap_or(path).split('/')
}

impl<T> PathRouter<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Finds the most specific pattern matching `path` that allows `method`.
    pub fn lookup<'a, 'p>(
        &'a self,
        method: &Method,
        path: &'p str,
    ) -> Option<PathMatch<'a, 'p, T>> {
        let body = path.strip_prefix('/').unwrap_or(path);
        let mut captured: Vec<&'p str> = Vec::new();
        find(&self.root, method, body, 0, &mut captured)
    }
}

impl<T: Clone> PathRouter<T> {
    /// Adds `pattern` (already validated: starts with `/`, `*` only at the end, `{name}` segments)
    /// for the route `id`. On one pattern, endpoints with explicit methods are tried before `*`
    /// ones, and ties go by `id`, so the result does not depend on the order of insertion.
    pub fn insert(&mut self, pattern: &str, methods: Methods, id: &str, value: T) {
        let mut node = Arc::make_mut(&mut self.root);
        let mut params = Vec::new();
        let segs: Vec<&str> = segments(pattern).collect();
        let last = segs.len() - 1;
        let endpoint = |params: Vec<Box<str>>| Endpoint {
            methods: methods.clone(),
            id: id.into(),
            params: params.into(),
            value: value.clone(),
        };
        for (i, seg) in segs.into_iter().enumerate() {
            if i == last
                && let Some(prefix) = seg.strip_suffix('*')
            {
                let at = match node.globs.iter().position(|g| &*g.prefix == prefix) {
                    Some(at) => at,
                    None => {
                        // Keep the longest prefix first.
                        let at = node
                            .globs
                            .iter()
                            .position(|g| g.prefix.len() < prefix.len())
                            .unwrap_or(node.globs.len());
                        node.globs.insert(
                            at,
                            Glob {
                                prefix: prefix.into(),
                                endpoints: Vec::new(),
                            },
                        );
                        at
                    }
                };
                push_endpoint(&mut node.globs[at].endpoints, endpoint(params));
                self.len += 1;
                return;
            }
            let child = if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
            {
                params.push(name.into());
                node.param.get_or_insert_with(Default::default)
            } else {
                node.literal.entry(seg.into()).or_default()
            };
            node = Arc::make_mut(child);
        }
        push_endpoint(&mut node.endpoints, endpoint(params));
        self.len += 1;
    }

    /// Removes what route `id` added for `pattern`; false when there was nothing. Nodes left
    /// empty are pruned.
    pub fn remove(&mut self, pattern: &str, id: &str) -> bool {
        let segs: Vec<&str> = segments(pattern).collect();
        let removed = remove_in(&mut self.root, &segs, id);
        if removed {
            self.len -= 1;
        }
        removed
    }
}

/// Removes `id`'s endpoint for the pattern `segs` under `node`.
fn remove_in<T: Clone>(node: &mut Arc<Node<T>>, segs: &[&str], id: &str) -> bool {
    let Some((seg, rest)) = segs.split_first() else {
        let Some(at) = node.endpoints.iter().position(|e| &*e.id == id) else {
            return false;
        };
        Arc::make_mut(node).endpoints.remove(at);
        return true;
    };
    if rest.is_empty()
        && let Some(prefix) = seg.strip_suffix('*')
    {
        let Some(g) = node.globs.iter().position(|g| &*g.prefix == prefix) else {
            return false;
        };
        let Some(at) = node.globs[g].endpoints.iter().position(|e| &*e.id == id) else {
            return false;
        };
        let n = Arc::make_mut(node);
        n.globs[g].endpoints.remove(at);
        if n.globs[g].endpoints.is_empty() {
            n.globs.remove(g);
        }
        return true;
    }
    if seg.starts_with('{') && seg.ends_with('}') {
        if node
            .param
            .as_ref()
            .is_none_or(|c| !has_endpoint(c, rest, id))
        {
            return false;
        }
        let n = Arc::make_mut(node);
        let child = n.param.as_mut().expect("checked above");
        let removed = remove_in(child, rest, id);
        if child.is_empty() {
            n.param = None;
        }
        return removed;
    }
    if node
        .literal
        .get(*seg)
        .is_none_or(|c| !has_endpoint(c, rest, id))
    {
        return false;
    }
    let n = Arc::make_mut(node);
    let child = n.literal.get_mut(*seg).expect("checked above");
    let removed = remove_in(child, rest, id);
    if child.is_empty() {
        n.literal.remove(*seg);
    }
    removed
}

/// Whether `id` has an endpoint for `segs` under `node` (checked before copying any node).
fn has_endpoint<T>(node: &Node<T>, segs: &[&str], id: &str) -> bool {
    let Some((seg, rest)) = segs.split_first() else {
        return node.endpoints.iter().any(|e| &*e.id == id);
    };
    if rest.is_empty()
        && let Some(prefix) = seg.strip_suffix('*')
    {
        return node
            .globs
            .iter()
            .any(|g| &*g.prefix == prefix && g.endpoints.iter().any(|e| &*e.id == id));
    }
    let child = if seg.starts_with('{') && seg.ends_with('}') {
        node.param.as_deref()
    } else {
        node.literal.get(*seg).map(|c| &**c)
    };
    child.is_some_and(|c| has_endpoint(c, rest, id))
}
fn push_endpoint<T>(list: &mut Vec<Endpoint<T>>, ep: Endpoint<T>) {
    // Explicit method lists before "*", then by id.
    let rank = |e: &Endpoint<T>| (e.methods == Methods::Any, e.id.clone());
    let key = rank(&ep);
    let at = list.partition_point(|e| rank(e) <= key);
    list.insert(at, ep);
}

fn matched<'a, 'p, T>(
    eps: &'a [Endpoint<T>],
    method: &Method,
    captured: &[&'p str],
    rest: Option<&'p str>,
) -> Option<PathMatch<'a, 'p, T>> {
    let ep = eps.iter().find(|e| e.methods.allows(method))?;
    Some(PathMatch {
        value: &ep.value,
        params: ep
            .params
            .iter()
            .map(|n| &**n)
            .zip(captured.iter().copied())
            // `{}` matches a segment without naming it.
            .filter(|(n, _)| !n.is_empty())
            .collect(),
        rest,
    })
}

/// `body` is the path without its leading `/`; `at` is where the current segment starts.
fn find<'a, 'p, T>(
    node: &'a Node<T>,
    method: &Method,
    body: &'p str,
    at: usize,
    captured: &mut Vec<&'p str>,
) -> Option<PathMatch<'a, 'p, T>> {
    let remaining = &body[at..];
    let (seg, next) = match remaining.find('/') {
        Some(i) => (&remaining[..i], Some(at + i + 1)),
        None => (remaining, None),
    };
    let child_result = |child: &'a Node<T>, captured: &mut Vec<&'p str>| match next {
        Some(n) => find(child, method, body, n, captured),
        None => matched(&child.endpoints, method, captured, None),
    };
    if let Some(child) = node.literal.get(seg)
        && let Some(m) = child_result(child, captured)
    {
        return Some(m);
    }
    if !seg.is_empty()
        && let Some(child) = &node.param
    {
        captured.push(seg);
        if let Some(m) = child_result(child, captured) {
            return Some(m);
        }
        captured.pop();
    }
    for glob in &node.globs {
        if let Some(rest) = remaining.strip_prefix(&*glob.prefix)
            && let Some(m) = matched(&glob.endpoints, method, captured, Some(rest))
        {
            return Some(m);
        }
    }
    None
}
