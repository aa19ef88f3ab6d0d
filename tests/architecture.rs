//! docs/architecture.md's import table, checked against the sources: the table is read from the
//! doc itself, each module may use only the modules of ours its row lists, only `cli` uses the
//! emulator crate, and every module of the crate has a row.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate-level items every module may use.
const COMMON: &[&str] = &["install_crypto_provider", "API_VERSION", "test_fixtures"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Module → the modules it may import, from the doc's table ("everything" allows all).
fn allowed_by_the_doc() -> BTreeMap<String, Option<BTreeSet<String>>> {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let table = doc
        .split("## Modules of the operator")
        .nth(1)
        .expect("the modules section");
    let mut allowed = BTreeMap::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let module = cells[0]
            .trim_start_matches("| ")
            .trim_matches('`')
            .to_string();
        let imports = cells.last().unwrap().trim_end_matches(" |");
        let names = (!imports.starts_with("everything")).then(|| {
            imports
                .split(',')
                .filter_map(|part| part.trim().split('`').nth(1))
                .map(str::to_string)
                .collect()
        });
        allowed.insert(module, names);
    }
    assert!(allowed.len() >= 7, "the table was found: {allowed:?}");
    allowed
}

fn sources(path: &Path) -> Vec<(PathBuf, String)> {
    if path.is_file() {
        return vec![(path.to_path_buf(), std::fs::read_to_string(path).unwrap())];
    }
    let mut all = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        all.extend(sources(&entry.unwrap().path()));
    }
    all
}

fn module_sources(module: &str) -> Vec<(PathBuf, String)> {
    let src = root().join("src");
    if src.join(module).is_dir() {
        sources(&src.join(module))
    } else {
        sources(&src.join(format!("{module}.rs")))
    }
}

/// The first segments of the paths after `prefix`: `x` of `prefix x::…`, and of a group
/// `prefix {x::{…}, y}` each top-level member (`x`, `y`).
fn first_segments(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices(prefix) {
        let before = text[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `arm_emulator::` is not `emulator::`
        }
        let rest = &text[at + prefix.len()..];
        let members = match rest.strip_prefix('{') {
            Some(group) => top_level_members(group),
            None => vec![rest],
        };
        for member in members {
            let name: String = member
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// The members of `a::{b, c}, d}` up to the group's closing brace: `a::{b, c}` and `d`.
fn top_level_members(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut members) = (0, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                members.push(&group[start..i]);
                return members;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                members.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    members
}

/// The modules of ours a module's source names: `crate::x`, and in a top-level file
/// (`src/engine.rs`) also `super::x`, which is the same.
fn imports(module: &str) -> BTreeSet<String> {
    let top_level_file = root().join("src").join(format!("{module}.rs")).is_file();
    let mut found = BTreeSet::new();
    for (_, text) in module_sources(module) {
        found.extend(first_segments(&text, "crate::"));
        if top_level_file {
            found.extend(first_segments(&text, "super::"));
        }
    }
    found.retain(|name| name != module && !COMMON.contains(&name.as_str()));
    found
}

#[test]
fn each_module_imports_only_what_docs_architecture_allows() {
    for (module, allowed) in allowed_by_the_doc() {
        let Some(allowed) = allowed else { continue };
        let forbidden: Vec<String> = imports(&module).difference(&allowed).cloned().collect();
        assert!(
            forbidden.is_empty(),
            "src/{module} imports {forbidden:?}; docs/architecture.md allows {allowed:?}"
        );
    }
}

#[test]
fn only_the_cli_uses_the_emulator_crate() {
    for module in allowed_by_the_doc().keys().filter(|m| *m != "cli") {
        for (path, text) in module_sources(module) {
            assert!(
                !text.contains("arm_emulator"),
                "{} uses the emulator, which the image does not have",
                path.display()
            );
        }
    }
}

#[test]
fn the_table_names_every_module_of_the_crate() {
    let allowed = allowed_by_the_doc();
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    for line in lib.lines().filter(|l| l.starts_with("pub mod ")) {
        let module = line.trim_start_matches("pub mod ").trim_end_matches(';');
        assert!(
            allowed.contains_key(module),
            "{module} has no row in docs/architecture.md's module table"
        );
    }
}

#[test]
fn groups_and_nested_groups_are_read_member_by_member() {
    let text = "use crate::{api::{A, B}, arm};\nuse super::engine::X;";
    assert_eq!(
        first_segments(text, "crate::"),
        BTreeSet::from(["api".to_string(), "arm".to_string()])
    );
    assert_eq!(
        first_segments(text, "super::"),
        BTreeSet::from(["engine".to_string()])
    );
    assert!(first_segments("use arm_emulator::Emulator;", "emulator::").is_empty());
}

/// A folder's `mod.rs` declares and re-exports; the logic lives in files named for its step.
#[test]
fn every_mod_rs_only_declares_and_re_exports() {
    for (path, text) in sources(&root().join("src")) {
        if path.file_name().is_none_or(|name| name != "mod.rs") {
            continue;
        }
        let lines = text.lines().count();
        assert!(lines <= 150, "{} has {lines} lines", path.display());
        let code = text.lines().filter(|l| !l.trim_start().starts_with("//"));
        let logic: Vec<&str> = code
            .filter(|l| {
                let l = l.trim_start();
                l.starts_with("fn ") || l.starts_with("pub fn ") || l.starts_with("impl ")
            })
            .collect();
        assert!(
            logic.is_empty(),
            "{} holds logic: {logic:?}",
            path.display()
        );
    }
}
