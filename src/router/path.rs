//! Path patterns in a segment trie: literal segments (`/users`), parameters (`/{id}`) and a final
//! glob (`/static/*`, `/files*`). Lookup prefers literal over parameter over glob at every segment
//! and backtracks, so the most specific pattern that also allows the method wins.

use std::collections::HashMap;

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

#[derive(Debug)]
struct Endpoint<T> {
    methods: Methods,
    params: Vec<Box<str>>,
    value: T,
}

#[derive(Debug)]
struct Glob<T> {
    prefix: Box<str>,
    endpoints: Vec<Endpoint<T>>,
}

#[derive(Debug)]
struct Node<T> {
    literal: HashMap<Box<str>, Node<T>>,
    param: Option<Box<Node<T>>>,
    /// Longest prefix first.
    globs: Vec<Glob<T>>,
    endpoints: Vec<Endpoint<T>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            literal: HashMap::new(),
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

/// The path patterns of one namespace.
#[derive(Debug)]
pub struct PathRouter<T> {
    root: Node<T>,
    len: usize,
}

impl<T> Default for PathRouter<T> {
    fn default() -> Self {
        PathRouter {
            root: Node::default(),
            len: 0,
        }
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

    /// Adds `pattern` (already validated: starts with `/`, `*` only at the end, `{name}` segments).
    /// Endpoints with explicit methods are tried before `*` ones on the same pattern; otherwise
    /// insertion order decides.
    pub fn insert(&mut self, pattern: &str, methods: Methods, value: T) {
        let mut node = &mut self.root;
        let mut params = Vec::new();
        let segs: Vec<&str> = segments(pattern).collect();
        let last = segs.len() - 1;
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
                let glob = &mut node.globs[at];
                push_endpoint(&mut glob.endpoints, methods, params, value);
                self.len += 1;
                return;
            }
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                params.push(name.into());
                node = node.param.get_or_insert_with(Default::default);
            } else {
                node = node.literal.entry(seg.into()).or_default();
            }
        }
        push_endpoint(&mut node.endpoints, methods, params, value);
        self.len += 1;
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

fn push_endpoint<T>(
    list: &mut Vec<Endpoint<T>>,
    methods: Methods,
    params: Vec<Box<str>>,
    value: T,
) {
    let ep = Endpoint {
        methods,
        params,
        value,
    };
    // Explicit method lists before "*", stable otherwise.
    let at = if ep.methods == Methods::Any {
        list.len()
    } else {
        list.iter()
            .position(|e| e.methods == Methods::Any)
            .unwrap_or(list.len())
    };
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
