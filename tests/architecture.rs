//! The house rules, read off the sources: the top-level rooms of `src/` import one another
//! without a circle, nothing below `main.rs` reaches up into the command line or clap, and the
//! domain rooms know nothing of HTTP or FHIR.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments and its test module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Top-level room of each source file (`server` for `src/server/auth.rs`), with its code.
fn rooms() -> Vec<(String, PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let room = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
            (room != "lib" && room != "main").then(|| (room, p.clone(), code(&p)))
        })
        .collect()
}

fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

#[test]
fn rooms_import_one_another_without_a_circle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (room, _, code) in rooms() {
        let deps = graph.entry(room.clone()).or_default();
        deps.extend(imports(&code).into_iter().filter(|d| *d != room));
    }
    // Depth-first search for a back edge.
    fn visit(n: &str, graph: &BTreeMap<String, BTreeSet<String>>, state: &mut BTreeMap<String, u8>, path: &mut Vec<String>) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let from = path.iter().position(|p| p == n).unwrap();
                return Some(path[from..].iter().cloned().chain([n.to_owned()]).collect());
            }
            _ => {}
        }
        state.insert(n.to_owned(), 1);
        path.push(n.to_owned());
        for d in graph.get(n).into_iter().flatten() {
            if let Some(cycle) = visit(d, graph, state, path) {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if let Some(cycle) = visit(n, &graph, &mut state, &mut Vec::new()) {
            panic!("import circle: {}", cycle.join(" → "));
        }
    }
    assert!(graph.len() > 10, "rooms found: {:?}", graph.keys());
}

#[test]
fn only_main_knows_the_command_line() {
    for (room, path, code) in rooms() {
        if room == "cli" {
            continue;
        }
        assert!(!imports(&code).contains("cli"), "{} imports the command-line module", path.display());
        assert!(!code.contains("clap::") && !code.contains("use clap"), "{} uses clap", path.display());
    }
}

#[test]
fn the_domain_knows_nothing_of_http_or_fhir() {
    for (room, path, code) in rooms() {
        if !["pipeline", "agents", "record", "terminology", "eval"].contains(&room.as_str()) {
            continue;
        }
        let deps = imports(&code);
        for forbidden in ["server", "fhir", "cli", "app", "store"] {
            assert!(!deps.contains(forbidden), "{} ({room}) imports {forbidden}", path.display());
        }
        assert!(!code.contains("actix_web"), "{} uses actix", path.display());
    }
}
