//! The layering rule of this crate (README, "Architecture"), checked on the sources: every
//! `crate::` path (and every `super::` path naming a sibling module) outside comments and test
//! modules is a dependency, and
//! * a top-level module depends only on modules of a lower layer in [`LAYERS`];
//! * the submodules of one module (`auth::jwt`, `auth::jwks`, ...) form no cycle;
//! * every exception in [`KNOWN_EXCEPTIONS`] still occurs, so fixing one fails this test
//!   until its line is removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules from the bottom up. A module may use only modules of a lower layer: the
/// domain knows nothing else; HTTP knows only HTTP; the store and Stripe adapters know the
/// domain and configuration (and metrics, which writes through telemetry's log lines); sync
/// joins them; the entry points (authorizer, webhook, API, jobs) sit on top, and `runtime`
/// wires a function together.
const LAYERS: &[&[&str]] = &[
    &["domain"],
    &[
        "config",
        "routes",
        "openapi",
        "outbound",
        "http",
        "round_trips",
    ],
    &["telemetry", "store"],
    &["metrics"],
    &["stripe"],
    &["sync"],
    &["auth", "webhook", "catalog_sync"],
    &["api", "reconcile"],
    &["runtime"],
];

/// Dependencies that break the rule today: (from module, to module, why it is still here).
/// Remove a line together with the dependency.
const KNOWN_EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "metrics",
    "stripe",
    "metrics counts StripeApiError kinds while the Stripe client reports to metrics",
)];

/// `src/a/b.rs` → `a::b`; `src/a/mod.rs` and `src/a.rs` → `a`; `src/lib.rs` → none.
fn module_path(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        return None;
    }
    Some(parts.join("::"))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The identifiers a path continues with: `a::...` → `a`, `{a, b::c}` → `a`, `b`.
fn leading_names(rest: &str) -> Vec<&str> {
    let names: Vec<&str> = match rest.strip_prefix('{') {
        Some(group) => group[..group.find('}').unwrap_or(group.len())]
            .split(',')
            .map(|n| first_ident(n.trim()))
            .collect(),
        None => vec![first_ident(rest)],
    };
    names.into_iter().filter(|n| !n.is_empty()).collect()
}

fn first_ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The identifiers right after each occurrence of `prefix` (`crate::a`, `crate::{a, b}`).
fn names_after<'a>(line: &'a str, prefix: &str) -> Vec<&'a str> {
    line.match_indices(prefix)
        .flat_map(|(at, _)| leading_names(&line[at + prefix.len()..]))
        .collect()
}

/// Module → the modules it depends on, read from the sources under `src`.
fn dependencies(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeMap<String, std::path::PathBuf> = files
        .iter()
        .filter_map(|f| Some((module_path(src, f)?, f.clone())))
        // This test's own examples are not dependencies.
        .filter(|(module, _)| module != "layering")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        let parent = module.rsplit_once("::").map(|(p, _)| p);
        for line in text.lines() {
            let line = line.trim_start();
            // Test modules close every file here; tests may reach anywhere.
            if line.starts_with("#[cfg(test)]") {
                break;
            }
            if line.starts_with("//") {
                continue;
            }
            for top in names_after(line, "crate::") {
                // `crate::a::b`: the submodule when there is one, else the module.
                let nested = line
                    .split(&format!("crate::{top}::"))
                    .skip(1)
                    .flat_map(leading_names)
                    .map(|sub| format!("{top}::{sub}"))
                    .find(|path| modules.contains_key(path));
                deps.insert(nested.unwrap_or_else(|| top.to_owned()));
            }
            if let Some(parent) = parent {
                for sibling in names_after(line, "super::") {
                    let path = format!("{parent}::{sibling}");
                    if modules.contains_key(&path) {
                        deps.insert(path);
                    }
                }
            }
        }
        deps.retain(|d| d != module);
    }
    graph
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top(module)))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer of LAYERS"))
}

fn excepted(from: &str, to: &str) -> bool {
    KNOWN_EXCEPTIONS
        .iter()
        .any(|(f, t, _)| (*f == from || *f == top(from)) && (*t == to || *t == top(to)))
}

/// Every sibling cycle in `edges`, as the module where the search met it again.
fn sibling_cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        found: &mut Vec<String>,
    ) {
        state.insert(node.to_owned(), 1);
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => found.push(format!("{node} -> {next}")),
                Some(_) => {}
                None => visit(next, edges, state, found),
            }
        }
        state.insert(node.to_owned(), 2);
    }
    let mut state = BTreeMap::new();
    let mut found = Vec::new();
    for node in edges.keys() {
        if !state.contains_key(node.as_str()) {
            visit(node, edges, &mut state, &mut found);
        }
    }
    found
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = dependencies(&src);
    let mut violations = Vec::new();
    let mut seen_exceptions = BTreeSet::new();
    let mut siblings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, deps) in &graph {
        for to in deps {
            let exception = excepted(from, to);
            if exception {
                seen_exceptions.insert((top(from).to_owned(), top(to).to_owned()));
                seen_exceptions.insert((from.clone(), to.clone()));
            }
            if top(from) == top(to) {
                let is_child_or_parent = from.starts_with(&format!("{to}::"))
                    || to.starts_with(&format!("{from}::"))
                    || !from.contains("::")
                    || !to.contains("::");
                if !is_child_or_parent && !exception {
                    siblings.entry(from.clone()).or_default().insert(to.clone());
                }
            } else if layer(to) >= layer(from) && !exception {
                violations.push(format!(
                    "{from} (layer {}) uses {to} (layer {})",
                    layer(from),
                    layer(to)
                ));
            }
        }
    }
    violations.extend(
        sibling_cycles(&siblings)
            .into_iter()
            .map(|c| format!("cycle between submodules: {c}")),
    );
    assert!(violations.is_empty(), "{violations:#?}");
    for (from, to, why) in KNOWN_EXCEPTIONS {
        assert!(
            seen_exceptions.contains(&((*from).to_owned(), (*to).to_owned())),
            "{from} no longer uses {to} ({why}): remove the exception"
        );
    }
}

#[test]
fn every_top_level_module_has_a_layer() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for line in lib.lines() {
        let declared = line
            .trim_start_matches("pub ")
            .strip_prefix("mod ")
            .and_then(|rest| rest.strip_suffix(';'));
        if let Some(module) = declared.filter(|m| *m != "layering") {
            layer(module);
        }
    }
}

#[test]
fn the_scanner_sees_the_forms_this_crate_uses() {
    assert_eq!(
        names_after("use crate::store::{A, B};", "crate::"),
        ["store"]
    );
    assert_eq!(
        names_after("use crate::{api, http};", "crate::"),
        ["api", "http"]
    );
    assert_eq!(
        names_after("x(crate::metrics::f(), crate::domain::T)", "crate::"),
        ["metrics", "domain"]
    );
    let edges = BTreeMap::from([
        ("a::x".to_owned(), BTreeSet::from(["a::y".to_owned()])),
        ("a::y".to_owned(), BTreeSet::from(["a::x".to_owned()])),
    ]);
    assert_eq!(sibling_cycles(&edges).len(), 1);
}
