//! docs/architecture.md's import table, checked against the sources: a module may use only the
//! modules of ours the table lists, and nothing imports `cli`.

use std::collections::BTreeSet;
use std::path::Path;

/// Module → the modules of ours it may import (docs/architecture.md).
const ALLOWED: &[(&str, &[&str])] = &[
    ("arm", &[]),
    ("tenancy", &[]),
    ("api", &["arm"]),
    ("planner", &["api", "arm"]),
    ("engine", &["api", "arm", "planner"]),
    (
        "controller",
        &["api", "arm", "engine", "planner", "tenancy"],
    ),
    (
        "cli",
        &["api", "arm", "controller", "engine", "planner", "tenancy"],
    ),
];

/// The crate-level items every module may use.
const COMMON: &[&str] = &["install_crypto_provider", "API_VERSION", "test_fixtures"];

fn sources(path: &Path) -> Vec<String> {
    if path.is_file() {
        return vec![std::fs::read_to_string(path).unwrap()];
    }
    let mut all = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        all.extend(sources(&entry.unwrap().path()));
    }
    all
}

/// The `crate::X` a module's source names.
fn imports(module: &str) -> BTreeSet<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let path = if src.join(module).is_dir() {
        src.join(module)
    } else {
        src.join(format!("{module}.rs"))
    };
    let mut found = BTreeSet::new();
    for text in sources(&path) {
        for (at, _) in text.match_indices("crate::") {
            let before = text[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `arm_emulator::`, not ours
            }
            let rest = &text[at + "crate::".len()..];
            // `crate::x::…`, or a group: `crate::{x::…, y}`.
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split(',')
                    .collect(),
                None => vec![rest],
            };
            for name in names {
                let name: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module && !COMMON.contains(&name.as_str()) {
                    found.insert(name);
                }
            }
        }
    }
    found
}

#[test]
fn each_module_imports_only_what_docs_architecture_allows() {
    for (module, allowed) in ALLOWED {
        let used = imports(module);
        let forbidden: Vec<&String> = used
            .iter()
            .filter(|name| !allowed.contains(&name.as_str()))
            .collect();
        assert!(
            forbidden.is_empty(),
            "src/{module} imports {forbidden:?}; docs/architecture.md allows {allowed:?}"
        );
    }
}

#[test]
fn the_table_names_every_module_of_the_crate() {
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    for line in lib.lines().filter(|l| l.starts_with("pub mod ")) {
        let module = line.trim_start_matches("pub mod ").trim_end_matches(';');
        assert!(
            ALLOWED.iter().any(|(m, _)| *m == module),
            "{module} is missing from the table (here and in docs/architecture.md)"
        );
    }
}
