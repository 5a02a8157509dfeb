//! The layering rules of the source tree, checked on the source itself: `modules` knows neither
//! `proxy` nor `cluster` (nor the composition root), `proxy` touches neither `cluster` nor
//! `storage`, the pure cores do no I/O, and no two top-level modules import each other, directly
//! or around a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `crate::<top>` a top-level module of `src/` names, by module.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let tops: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
        .filter(|n| n != "lib" && n != "main")
        .collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if !tops.contains(&top) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, _) in text.match_indices("crate::") {
                let name: String = text[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != top && tops.contains(&name) {
                    deps.entry(top.clone()).or_default().insert(name);
                }
            }
        }
    }
    deps
}

#[test]
fn each_layer_depends_only_inward() {
    let deps = dependencies();
    let uses = |from: &str, to: &str| deps.get(from).is_some_and(|d| d.contains(to));
    for (from, to) in [
        ("modules", "proxy"),
        ("modules", "cluster"),
        ("modules", "server"),
        ("modules", "admin"),
        ("proxy", "cluster"),
        ("proxy", "storage"),
        ("proxy", "server"),
        ("proxy", "admin"),
        ("cluster", "proxy"),
        ("cluster", "modules"),
    ] {
        assert!(!uses(from, to), "src/{from} uses crate::{to}: {deps:?}");
    }
    // The pure cores: no storage, cluster, network or engine.
    for core in ["resources", "router", "units", "config"] {
        for io in ["storage", "cluster", "proxy", "modules", "admin", "server"] {
            assert!(!uses(core, io), "src/{core} uses crate::{io}");
        }
    }
}

#[test]
fn no_circle_between_top_level_modules() {
    let deps = dependencies();
    // Depth-first search for a path back to where it started.
    fn reaches(
        deps: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        target: &str,
        path: &mut Vec<String>,
    ) -> bool {
        for next in deps.get(from).into_iter().flatten() {
            if next == target {
                path.push(next.clone());
                return true;
            }
            if !path.contains(next) {
                path.push(next.clone());
                if reaches(deps, next, target, path) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    for top in deps.keys() {
        let mut path = vec![top.clone()];
        assert!(
            !reaches(&deps, top, top, &mut path),
            "import circle: {}",
            path.join(" -> ")
        );
    }
}
