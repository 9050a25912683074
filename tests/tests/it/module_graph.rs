//! `runtime/src` has no import cycle: at every level of the module tree, the
//! sibling modules under one parent depend on each other without a circle.
//! An edge A → B means some file under A names a path under B (`crate::…`
//! or `super::…`); doc comments and unit tests do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;
use regsync_tests::repo_root;

type ModulePath = Vec<String>;

/// Every module of the crate with its code (comments and `#[cfg(test)]` tail removed).
fn modules(src: &Path) -> BTreeMap<ModulePath, String> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<ModulePath, String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, src, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: ModulePath = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: Vec<&str> = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
            out.insert(parts, code.join("\n"));
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// The module paths a file names, resolved to absolute paths (not yet to modules).
fn named_paths(module: &ModulePath, code: &str) -> Vec<ModulePath> {
    let path = r"[a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*";
    let absolute = Regex::new(&format!(r"\bcrate::(\{{[^;]*?\}}|{path})")).unwrap();
    let relative = Regex::new(&format!(r"\b((?:super::)+)(\{{[^;]*?\}}|{path})")).unwrap();
    let item = Regex::new(&format!(r"^\s*({path})")).unwrap();
    let expand = |base: &[String], tail: &str| -> Vec<ModulePath> {
        let items: Vec<&str> =
            if let Some(group) = tail.strip_prefix('{') { group.split(',').collect() } else { vec![tail] };
        items
            .into_iter()
            .filter_map(|i| item.captures(i))
            .map(|c| base.iter().cloned().chain(c[1].split("::").map(str::to_string)).collect())
            .collect()
    };
    let mut out = Vec::new();
    for c in absolute.captures_iter(code) {
        out.extend(expand(&[], &c[1]));
    }
    for c in relative.captures_iter(code) {
        let up = c[1].matches("super::").count();
        let base = &module[..module.len().saturating_sub(up)];
        out.extend(expand(base, &c[2]));
    }
    out
}

/// Edges between siblings, keyed by their parent.
fn sibling_edges(mods: &BTreeMap<ModulePath, String>) -> BTreeMap<ModulePath, BTreeMap<String, BTreeSet<String>>> {
    let mut edges: BTreeMap<ModulePath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (from, code) in mods {
        for named in named_paths(from, code) {
            // The longest prefix that is a module.
            let mut to = named;
            while !to.is_empty() && !mods.contains_key(&to) {
                to.pop();
            }
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common < from.len() && common < to.len() {
                edges
                    .entry(from[..common].to_vec())
                    .or_default()
                    .entry(from[common].clone())
                    .or_default()
                    .insert(to[common].clone());
            }
        }
    }
    edges
}

/// A cycle in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn runtime_modules_have_no_import_cycle() {
    let mods = modules(&repo_root().join("runtime/src"));
    assert!(mods.len() > 40, "read the crate: {} modules", mods.len());
    let edges = sibling_edges(&mods);
    let top = edges.get(&Vec::new()).map_or(0, |g| g.values().map(BTreeSet::len).sum::<usize>());
    assert!(top > 20, "found the top-level imports ({top} edges)");
    let cycles: Vec<String> = edges
        .iter()
        .filter_map(|(parent, graph)| {
            let cycle = find_cycle(graph)?;
            let under = if parent.is_empty() { "crate".to_string() } else { parent.join("::") };
            Some(format!("under {under}: {}", cycle.join(" -> ")))
        })
        .collect();
    assert_eq!(cycles, Vec::<String>::new());
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let mut mods = BTreeMap::new();
    let m = |p: &str| p.split("::").map(str::to_string).collect::<ModulePath>();
    mods.insert(Vec::new(), String::new());
    mods.insert(m("a"), "use crate::b::Thing;".to_string());
    mods.insert(m("b"), "use crate::c::{self, Other};".to_string());
    mods.insert(m("c"), String::new());
    mods.insert(m("c::d"), "fn f() -> super::super::a::X { todo!() }".to_string());
    let edges = sibling_edges(&mods);
    assert_eq!(find_cycle(&edges[&Vec::new()]), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}
