//! The reference pages in docs/ checked against the code, so that they stay true:
//!
//! - every field of both CRDs (spec and status, all the way down) has a row in its kind's page
//!   (docs/reference-account.md, docs/reference-deployment.md), or is named in its parent's row;
//! - every metric the operator serves has a row in docs/operations.md's metrics table;
//! - every condition reason the code sets has a row in the reasons table of its kind's page.
//!
//! Fields come from the CRDs the code generates (`api::crds()`, which tests/crd.rs keeps equal
//! to crds/), metrics from the registry's own exposition, reasons from a scan of src/.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cognitive_operator::arm::client::RequestLabels;
use cognitive_operator::controller::metrics::{Metrics, ReconcileResult};
use cognitive_operator::planner::status::{self, Summary};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

const ACCOUNT_PAGE: &str = "docs/reference-account.md";
const DEPLOYMENT_PAGE: &str = "docs/reference-deployment.md";
const OPERATIONS_PAGE: &str = "docs/operations.md";

// ---------------------------------------------------------------------------------------------
// Markdown: sections, table rows, code spans.

/// The lines of a page's `## {heading}` section (its `###` subsections included).
fn section<'a>(page: &'a str, file: &str, heading: &str) -> Vec<&'a str> {
    let title = format!("## {heading}");
    let mut lines = page.lines().skip_while(|l| l.trim_end() != title);
    assert!(
        lines.next().is_some(),
        "{file} has no `{title}` section; the docs_reference test reads that section"
    );
    lines.take_while(|l| !l.starts_with("## ")).collect()
}

/// The body rows of the tables among `lines` (header and separator rows left out), as cells.
/// Cells are split on `|` outside code spans.
fn table_rows(lines: &[&str]) -> Vec<Vec<String>> {
    let is_separator = |l: &str| l.starts_with("|-") || l.starts_with("| -") || l == "|";
    let mut rows = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        let next_is_separator = lines.get(i + 1).is_some_and(|n| is_separator(n.trim()));
        if !line.starts_with('|') || is_separator(line) || next_is_separator {
            continue;
        }
        let mut cells = vec![String::new()];
        let mut in_code = false;
        for c in line.trim_matches('|').chars() {
            match c {
                '`' => {
                    in_code = !in_code;
                    cells.last_mut().unwrap().push(c);
                }
                '|' if !in_code => cells.push(String::new()),
                _ => cells.last_mut().unwrap().push(c),
            }
        }
        rows.push(cells);
    }
    rows
}

/// The text inside backticks.
fn code_spans(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// A code span read as a field path relative to `spec` or `status`: `networkAcls.ipRules[].value`
/// → `networkAcls`, `ipRules`, `value`. `None` for spans that are not field paths.
fn span_path(span: &str) -> Option<Vec<String>> {
    let span = span.replace("[]", "");
    let span = span.strip_suffix(".*").unwrap_or(&span);
    let span = span
        .strip_prefix("spec.")
        .or_else(|| span.strip_prefix("status."))
        .unwrap_or(span);
    let parts: Vec<String> = span.split('.').map(str::to_string).collect();
    let identifier = |p: &String| {
        p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    parts.iter().all(identifier).then_some(parts)
}

// ---------------------------------------------------------------------------------------------
// 1. CRD fields.

/// A field of a CRD's schema: `components` without array and map steps, for matching; `shown`
/// with them (`spec.properties.networkAcls.ipRules[].value`), for messages.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Field {
    components: Vec<String>,
    shown: String,
}

/// Every field under `node`, depth first: object properties, array items (`[]`), map values
/// (`.*`) and the alternatives of `allOf`/`anyOf`/`oneOf`.
fn walk_fields(node: &Value, components: &mut Vec<String>, shown: &str, out: &mut BTreeSet<Field>) {
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            components.push(name.clone());
            let shown = format!("{shown}.{name}");
            out.insert(Field {
                components: components.clone(),
                shown: shown.clone(),
            });
            walk_fields(child, components, &shown, out);
            components.pop();
        }
    }
    match node.get("items") {
        Some(Value::Array(items)) => {
            for item in items {
                walk_fields(item, components, &format!("{shown}[]"), out);
            }
        }
        Some(item) => walk_fields(item, components, &format!("{shown}[]"), out),
        None => {}
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        walk_fields(values, components, &format!("{shown}.*"), out);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for alternative in node
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk_fields(alternative, components, shown, out);
        }
    }
}

/// The fields of one root (`spec` or `status`) of a CRD, in every served version.
fn crd_fields(crd: &Value, root_name: &str) -> BTreeSet<Field> {
    let mut fields = BTreeSet::new();
    let versions = crd["spec"]["versions"].as_array().expect("CRD versions");
    for version in versions {
        let schema = &version["schema"]["openAPIV3Schema"]["properties"][root_name];
        assert!(
            schema.is_object(),
            "the CRD's openAPIV3Schema has no {root_name}"
        );
        walk_fields(schema, &mut Vec::new(), root_name, &mut fields);
    }
    fields
}

/// How a row's first-cell path relates to a field (both relative to spec/status).
#[derive(Debug, PartialEq)]
enum Relation {
    /// The row names the field itself, or one of its descendants (`accountRef.name` for
    /// `accountRef`).
    Names,
    /// The row names an ancestor of the field (`encryption.keyVaultProperties` for
    /// `encryption.keyVaultProperties.keyName`): the field's name must appear in the row.
    Ancestor,
}

/// Whether a row path is a window onto the field's path: the row path may start at any depth
/// of the field's (the `spec.properties` table writes `networkAcls.defaultAction`).
fn relation(row_path: &[String], field: &[String]) -> Option<Relation> {
    let mut found = None;
    for start in 0..field.len() {
        let rest = &field[start..];
        if row_path.len() >= rest.len() {
            if row_path[..rest.len()] == *rest {
                return Some(Relation::Names);
            }
        } else if rest[..row_path.len()] == *row_path {
            found = Some(Relation::Ancestor);
        }
    }
    found
}

/// Whether the rows document the field: a row names it (or a descendant), or a row names an
/// ancestor and mentions the field's own name in a code span.
fn documented(rows: &[Vec<String>], field: &[String]) -> bool {
    let leaf = field.last().expect("a field has a name");
    rows.iter().any(|row| {
        let first = code_spans(&row[0]).filter_map(span_path);
        let relations: Vec<Relation> = first.filter_map(|p| relation(&p, field)).collect();
        relations.contains(&Relation::Names)
            || (relations.contains(&Relation::Ancestor)
                && row.iter().any(|cell| {
                    code_spans(cell)
                        .filter_map(span_path)
                        .any(|p| p.last() == Some(leaf))
                }))
    })
}

/// The reference page of a CRD's kind.
fn page_of_kind(kind: &str) -> &'static str {
    match kind {
        "CognitiveServicesAccount" => ACCOUNT_PAGE,
        "CognitiveServicesDeployment" => DEPLOYMENT_PAGE,
        other => panic!(
            "a CRD of kind {other} has no reference page: write docs/reference-<kind>.md and add it to page_of_kind in tests/docs_reference.rs"
        ),
    }
}

#[test]
fn every_crd_field_is_documented_in_its_kinds_reference_page() {
    let mut missing = Vec::new();
    let mut counts = Vec::new();
    for (file, crd) in cognitive_operator::api::crds() {
        let crd = serde_json::to_value(&crd).expect("a CRD serializes");
        let kind = crd["spec"]["names"]["kind"].as_str().expect("CRD kind");
        let page_file = page_of_kind(kind);
        let page = read(page_file);
        for (root_name, heading) in [("spec", "Spec fields"), ("status", "Status fields")] {
            let rows = table_rows(&section(&page, page_file, heading));
            let fields = crd_fields(&crd, root_name);
            assert!(
                !fields.is_empty(),
                "crds/{file}: no {root_name} fields found"
            );
            counts.push(format!("{kind}.{root_name}: {}", fields.len()));
            for field in fields {
                if !documented(&rows, &field.components) {
                    let leaf = field.components.last().unwrap();
                    let or_parent = if field.components.len() > 1 {
                        format!(", or name `{leaf}` in the row of its parent")
                    } else {
                        String::new()
                    };
                    missing.push(format!(
                        "{} (crds/{file}) is not documented in {page_file}: add a row `{}` to the table under `## {heading}`{or_parent}",
                        field.shown,
                        field.components.join(".")
                    ));
                }
            }
        }
    }
    eprintln!("CRD fields checked: {}", counts.join(", "));
    assert!(
        missing.is_empty(),
        "CRD fields missing from the reference pages:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_field_rule_reads_rows_as_the_pages_write_them() {
    let lines = [
        "| spec field | default |",
        "|---|---|",
        "| `sku.size`, `sku.family` | unset |",
        "| `locations` | routing: `routingMethod` and `regions[]` (`name`, `value`) |",
        "| `accountRef.name` | required |",
        "| `properties` | writable properties, below |",
    ];
    let rows = table_rows(&lines);
    assert_eq!(rows.len(), 4, "the header row is not a field row: {rows:?}");
    let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
    assert!(documented(&rows, &path("sku.family")));
    assert!(
        documented(&rows, &path("sku")),
        "a child's row names its parent"
    );
    assert!(documented(&rows, &path("accountRef")));
    assert!(documented(
        &rows,
        &path("properties.locations.routingMethod")
    ));
    assert!(documented(
        &rows,
        &path("properties.locations.regions.name")
    ));
    assert!(!documented(&rows, &path("sku.tier")), "not in any row");
    assert!(
        !documented(&rows, &path("properties.migrationToken")),
        "the `properties` row names no children"
    );
    assert!(
        !documented(&rows, &path("properties.locations.regions.weight")),
        "an ancestor's row must name the field"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Metrics.

/// The metrics a scrape shows, from `# TYPE` lines (counters with their `_total`), each with the
/// label names of its samples (a histogram's `le` left out).
fn served_metrics(exposition: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut served = BTreeMap::new();
    for line in exposition.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let mut words = declared.split_whitespace();
            let name = words.next().expect("a metric name");
            let name = match words.next() {
                Some("counter") if !name.ends_with("_total") => format!("{name}_total"),
                _ => name.to_string(),
            };
            served.insert(name, BTreeSet::new());
        } else if !line.starts_with('#')
            && let Some((name, rest)) = line.split_once('{')
            && let Some(labels) = served.get_mut(name)
        {
            let inside = rest.split_once('}').map_or(rest, |(inside, _)| inside);
            labels.extend(
                inside
                    .split(',')
                    .filter_map(|pair| pair.split_once('=').map(|(label, _)| label.to_string())),
            );
        }
    }
    served
}

/// A metrics table entry: `name{label,label}` → the name and its label names.
fn metric_entry(span: &str) -> (String, BTreeSet<String>) {
    match span.split_once('{') {
        Some((name, labels)) => (
            name.to_string(),
            labels
                .trim_end_matches('}')
                .split(',')
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
        ),
        None => (span.to_string(), BTreeSet::new()),
    }
}

#[test]
fn every_metric_is_documented_in_operations_md() {
    // A family shows in the exposition once it has a sample: give the labelled ones one each.
    let metrics = Metrics::default();
    metrics.record_reconcile(ReconcileResult::Ready, Duration::from_millis(5));
    let request = RequestLabels {
        operation: "GetAccount".into(),
        status: "200".into(),
    };
    metrics.arm().requests.get_or_create(&request).inc();
    let served = served_metrics(&metrics.encode());
    assert!(
        served.len() >= 2,
        "Metrics::encode() shows no metric families: the scan of its exposition is out of date"
    );
    // Metrics registered in src/ on some other registry (or families without a sample above)
    // would not show: find every `registry.register("name", "help", metric)` call too.
    let sources = sources();
    let mut registered = BTreeMap::new();
    for source in &sources {
        for call in calls(&source.clean, "register") {
            if call.args.len() == 3
                && let Some(name) = string_literal(&call.args[0])
            {
                registered.insert(name, source.at(call.position));
            }
        }
    }
    assert!(
        !registered.is_empty(),
        "no `.register(\"name\", \"help\", metric)` call found in src/: the scan is out of date"
    );

    let page = read(OPERATIONS_PAGE);
    let documented: BTreeMap<String, BTreeSet<String>> =
        table_rows(&section(&page, OPERATIONS_PAGE, "Metrics and health"))
            .iter()
            .flat_map(|row| code_spans(&row[0]).map(metric_entry).collect::<Vec<_>>())
            .collect();
    let mut missing = Vec::new();
    for (name, labels) in &served {
        let shown = |labels: &BTreeSet<String>| {
            let names: Vec<&str> = labels.iter().map(String::as_str).collect();
            if names.is_empty() {
                format!("`{name}`")
            } else {
                format!("`{name}{{{}}}`", names.join(","))
            }
        };
        match documented.get(name) {
            None => missing.push(format!(
                "metric {name} (served by cognitive_operator::controller::metrics::Metrics) is not in {OPERATIONS_PAGE}: add a row {} to the table under `## Metrics and health`",
                shown(labels)
            )),
            Some(written) if written != labels => missing.push(format!(
                "metric {name} is served with labels {labels:?}, but {OPERATIONS_PAGE}'s table under `## Metrics and health` writes {written:?}: write it as {}",
                shown(labels)
            )),
            Some(_) => {}
        }
    }
    for (name, at) in &registered {
        let total = format!("{name}_total");
        let known = |set: &dyn Fn(&str) -> bool| set(name) || set(&total);
        if !known(&|n| served.contains_key(n)) && !known(&|n| documented.contains_key(n)) {
            missing.push(format!(
                "metric {name} (registered at {at}) is not in {OPERATIONS_PAGE}: add a row `{name}` (`{total}` for a counter) to the table under `## Metrics and health`"
            ));
        }
    }
    eprintln!(
        "metrics checked: {} served, {} registration calls in src/",
        served.len(),
        registered.len()
    );
    assert!(
        missing.is_empty(),
        "metrics missing from {OPERATIONS_PAGE}:\n{}",
        missing.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Condition reasons: a scan of src/.
//
// A reason reaches a condition through a *sink*: the constructors of `Summary` (in
// src/planner/status.rs), a `Verdict::{Progressing,Stalled,Observed} { reason, .. }`, or any
// function that hands its own `reason` parameter on to a sink (`Plan::act`, `stall_before_arm`,
// ...), found to a fixpoint. At each call of a sink, the reason argument is a string literal, a
// local binding (`let (reason, what) = match kind { .. ("Creating", ..) .. }`, followed one step
// through `if let Some((reason, _)) = stop`), or an ARM error's `code()`, whose fixed codes
// (`ArmUnavailable`, ...) count; codes ARM itself sends are passed through and need no row (nor
// do the HTTP-status names that stand in for a code ARM left out, `BadRequest` and the like).
// Added to those: the reasons `status::conditions` sets by itself (`Succeeded`, `...Cleared`),
// taken from running it. Whose table a reason belongs in follows from its file (`kinds_of`).

/// One source file of src/, with comments blanked and inline test modules removed.
struct Source {
    path: String,
    clean: String,
}

impl Source {
    fn at(&self, position: usize) -> String {
        let line = self.clean[..position].matches('\n').count() + 1;
        format!("{}:{line}", self.path)
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The operator's sources, test code left out (test-only files and `#[cfg(test)] mod x { .. }`).
fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files.sort();
    let mut sources = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if name == "tests.rs" || name.ends_with("_tests.rs") || name == "test_fixtures.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let path = file
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        sources.push(Source {
            path,
            clean: without_test_modules(&blank_comments(&text)),
        });
    }
    assert!(
        sources.len() > 20,
        "src/ was found: {} files",
        sources.len()
    );
    sources
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// If a string, raw string or char literal starts at `i`, the index just after it.
fn literal_end(text: &str, i: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let after_ident = i > 0 && is_ident_byte(bytes[i - 1]);
    match bytes[i] {
        b'"' => {
            let mut j = i + 1;
            while j < bytes.len() {
                match bytes[j] {
                    b'\\' => j += 2,
                    b'"' => return Some(j + 1),
                    _ => j += 1,
                }
            }
            Some(bytes.len())
        }
        b'r' if !after_ident
            || (i > 0 && bytes[i - 1] == b'b' && (i < 2 || !is_ident_byte(bytes[i - 2]))) =>
        {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] == b'#' {
                j += 1;
            }
            if j >= bytes.len() || bytes[j] != b'"' {
                return None;
            }
            let closing = format!("\"{}", "#".repeat(j - i - 1));
            let end = text[j + 1..].find(&closing)?;
            Some(j + 1 + end + closing.len())
        }
        b'\'' => {
            let rest = &text[i + 1..];
            if rest.starts_with('\\') {
                return rest[2..].find('\'').map(|e| i + 1 + 2 + e + 1);
            }
            let c = rest.chars().next()?;
            rest[c.len_utf8()..]
                .starts_with('\'')
                .then(|| i + 1 + c.len_utf8() + 1)
        }
        _ => None,
    }
}

/// The text with every comment replaced by spaces (so positions and line numbers stay).
fn blank_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(end) = literal_end(text, i) {
            i = end;
        } else if bytes[i..].starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                out[i] = b' ';
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < bytes.len() {
                if bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    i += 2;
                } else if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if bytes[i] != b'\n' {
                        out[i] = b' ';
                    }
                    i += 1;
                }
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).expect("only whole comments were blanked")
}

/// The index just after the bracket that closes the one at `open`, literals skipped.
fn matching(text: &str, open: usize) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        if let Some(end) = literal_end(text, i) {
            i = end;
            continue;
        }
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// `text` without its `#[cfg(test)] mod name { .. }` blocks (blanked, positions kept).
fn without_test_modules(text: &str) -> String {
    let mut out = text.to_string();
    let mut from = 0;
    while let Some(found) = out[from..].find("#[cfg(test)]") {
        let start = from + found;
        let rest = out[start + "#[cfg(test)]".len()..].trim_start();
        let after = out.len() - rest.len();
        from = start + 1;
        let Some(module) = rest.strip_prefix("mod ") else {
            continue;
        };
        let Some(brace) = module.find(['{', ';']) else {
            continue;
        };
        if module.as_bytes()[brace] != b'{' {
            continue;
        }
        let open = after + "mod ".len() + brace;
        let end = matching(&out, open);
        let blank: String = out[start..end]
            .bytes()
            .map(|b| if b == b'\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(start..end, &blank);
    }
    out
}

/// Splits a bracket's contents at its top-level commas; `angles` counts `<>` too (for types).
fn split_top(text: &str, angles: bool) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(end) = literal_end(text, i) {
            i = end;
            continue;
        }
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b'<' if angles => depth += 1,
            b'>' if angles && !(i > 0 && (bytes[i - 1] == b'-' || bytes[i - 1] == b'=')) => {
                depth -= 1
            }
            b',' if depth == 0 => {
                parts.push(text[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let last = text[start..].trim();
    if !last.is_empty() {
        parts.push(last.to_string());
    }
    parts
}

/// The value of a string literal expression (`"Creating"`, `"Creating".into()`).
fn string_literal(expression: &str) -> Option<String> {
    let e = expression.trim();
    let e = e
        .strip_suffix(".into()")
        .or_else(|| e.strip_suffix(".to_string()"))
        .unwrap_or(e);
    let inner = e.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"') && !inner.contains('\\')).then(|| inner.to_string())
}

/// An expression that is just a variable, borrowed or converted (`&reason`, `reason.into()`).
fn variable(expression: &str) -> Option<&str> {
    let mut e = expression.trim().trim_start_matches('&');
    for suffix in [".into()", ".to_string()", ".clone()", ".as_str()"] {
        e = e.strip_suffix(suffix).unwrap_or(e);
    }
    (!e.is_empty() && e.bytes().all(is_ident_byte) && !e.as_bytes()[0].is_ascii_digit())
        .then_some(e)
}

fn reason_like(literal: &str) -> bool {
    literal.starts_with(|c: char| c.is_ascii_uppercase())
        && literal.chars().all(|c| c.is_ascii_alphanumeric())
}

/// One call `name(args)` (or `.name(args)`, `Type::name(args)`), not a definition.
struct Call {
    position: usize,
    args: Vec<String>,
}

fn calls(text: &str, name: &str) -> Vec<Call> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(name) {
        let start = from + at;
        let end = start + name.len();
        from = end;
        if (start > 0 && is_ident_byte(bytes[start - 1])) || bytes.get(end) != Some(&b'(') {
            continue;
        }
        if text[..start].trim_end().ends_with("fn") {
            continue;
        }
        let close = matching(text, end);
        found.push(Call {
            position: start,
            args: split_top(&text[end + 1..close - 1], false),
        });
    }
    found
}

/// A function definition: its parameters other than `self`, and its body's byte range.
struct Function {
    name: String,
    params: Vec<String>,
    body: (usize, usize),
}

fn functions(text: &str) -> Vec<Function> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("fn ") {
        let start = from + at;
        from = start + 3;
        if start > 0 && is_ident_byte(bytes[start - 1]) {
            continue;
        }
        let name: String = text[start + 3..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let Some(open) = text[start..].find('(').map(|o| start + o) else {
            continue;
        };
        let close = matching(text, open);
        let params = split_top(&text[open + 1..close - 1], true)
            .iter()
            .filter_map(|p| {
                let (pattern, _) = p.split_once(':')?;
                Some(pattern.trim().trim_start_matches("mut ").trim().to_string())
            })
            .collect();
        // The body: the first `{` after the parameters, outside brackets; none for a `;`.
        let mut i = close;
        let mut body = None;
        while i < bytes.len() {
            if let Some(end) = literal_end(text, i) {
                i = end;
                continue;
            }
            match bytes[i] {
                b'(' | b'[' => {
                    i = matching(text, i);
                    continue;
                }
                b'{' => {
                    body = Some((i, matching(text, i)));
                    break;
                }
                b';' => break,
                _ => {}
            }
            i += 1;
        }
        if let Some(body) = body {
            found.push(Function { name, params, body });
        }
    }
    found
}

/// Whether `text` holds `word` as a whole identifier.
fn has_word(text: &str, word: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(word).any(|(i, _)| {
        (i == 0 || !is_ident_byte(bytes[i - 1]))
            && bytes.get(i + word.len()).is_none_or(|b| !is_ident_byte(*b))
    })
}

/// The string literals in `text`, in order.
fn literals(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if let Some(end) = literal_end(text, i) {
            if text.as_bytes()[i] == b'"' {
                found.push(text[i + 1..end - 1].to_string());
            }
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

/// Where a variable's value comes from: the reason-like literals of the binding of `name` last
/// before `before` in `body` (`let`, `if let`), and whether that binding holds an ARM error's
/// `code()`. In a tuple pattern, the literals in that position of the expression's tuples.
fn bound_values(
    body: &str,
    before: usize,
    name: &str,
    shape: Option<usize>,
) -> (Vec<String>, bool) {
    let head = &body[..before];
    let bytes = head.as_bytes();
    let mut binding = None;
    for (at, _) in head.match_indices("let ") {
        if at > 0 && is_ident_byte(bytes[at - 1]) {
            continue;
        }
        // The pattern runs to the first `=` that is not part of `==`, `=>`, `!=`, `<=`, `>=`.
        let rest = &bytes[at + 4..];
        let Some(eq) = (0..rest.len()).find(|&i| {
            rest[i] == b'='
                && !matches!(rest.get(i + 1), Some(b'=' | b'>'))
                && !(i > 0 && matches!(rest[i - 1], b'=' | b'!' | b'<' | b'>'))
        }) else {
            continue;
        };
        let pattern = head[at + 4..at + 4 + eq].split(": ").next().unwrap();
        if has_word(pattern, name) {
            let before_let = head[..at].trim_end();
            let conditional = before_let.ends_with("if") || before_let.ends_with("while");
            binding = Some((pattern.to_string(), at, at + 4 + eq + 1, conditional));
        }
    }
    let Some((pattern, let_at, value_start, conditional)) = binding else {
        return (Vec::new(), false);
    };
    // The expression: to the `;` (a `let`) or the `{` (an `if let`) at depth 0.
    let rest = &body[value_start..];
    let rbytes = rest.as_bytes();
    let mut i = 0;
    while i < rest.len() {
        if let Some(end) = literal_end(rest, i) {
            i = end;
            continue;
        }
        match rbytes[i] {
            b'{' if conditional => break,
            b'(' | b'[' | b'{' => {
                i = matching(rest, i);
                continue;
            }
            b';' => break,
            _ => {}
        }
        i += 1;
    }
    let expression = &rest[..i];
    // The position of `name` in the pattern's innermost tuple, if it sits in one.
    let shape = shape.or_else(|| {
        let at = pattern.find(name)?;
        let open = pattern[..at].rfind('(')?;
        let close = open + matching(&pattern[open..], 0);
        let parts = split_top(&pattern[open + 1..close - 1], false);
        (parts.len() > 1).then(|| parts.iter().position(|p| has_word(p, name)))?
    });
    if let Some(other) = variable(expression)
        && other != name
    {
        return bound_values(body, let_at, other, shape);
    }
    let values = match shape {
        None => literals(expression)
            .into_iter()
            .filter(|l| reason_like(l))
            .collect(),
        Some(k) => {
            let mut values = Vec::new();
            for (open, _) in expression.match_indices('(') {
                let close = matching(expression, open);
                let parts = split_top(&expression[open + 1..close - 1], false);
                if parts.len() > 1
                    && let Some(value) = parts.get(k).and_then(|p| string_literal(p))
                    && reason_like(&value)
                {
                    values.push(value);
                }
            }
            values
        }
    };
    (values, expression.contains(".code()"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Account,
    Deployment,
}

/// Whose reasons a file sets, by its path: the deployment's (planner/deployment.rs,
/// engine/deployment/, reconciler/deployment/), the account's (the rest of the planner,
/// engine/account/, reconciler/account/), or both (shared code).
fn kinds_of(path: &str) -> Vec<Kind> {
    if path.contains("deployment") {
        vec![Kind::Deployment]
    } else if path.contains("account")
        || (path.starts_with("src/planner/")
            && !path.ends_with("/status.rs")
            && !path.ends_with("/mod.rs"))
    {
        vec![Kind::Account]
    } else {
        vec![Kind::Account, Kind::Deployment]
    }
}

/// Reasons found, by kind, with one place each comes from; and how many each route found.
#[derive(Default)]
struct Reasons {
    found: BTreeMap<Kind, BTreeMap<String, String>>,
    routes: BTreeMap<&'static str, usize>,
}

impl Reasons {
    fn add(&mut self, route: &'static str, reason: &str, kinds: &[Kind], at: &str) {
        *self.routes.entry(route).or_default() += 1;
        for kind in kinds {
            self.found
                .entry(*kind)
                .or_default()
                .entry(reason.to_string())
                .or_insert_with(|| at.to_string());
        }
    }
}

/// The fixed codes `ArmError::code()` gives errors that ARM did not answer (src/arm/error.rs).
fn fixed_arm_codes(sources: &[Source]) -> Vec<String> {
    let source = sources
        .iter()
        .find(|s| s.path == "src/arm/error.rs")
        .expect("src/arm/error.rs");
    let code = functions(&source.clean)
        .into_iter()
        .find(|f| f.name == "code")
        .expect("ArmError::code in src/arm/error.rs");
    let body = &source.clean[code.body.0..code.body.1];
    let codes: Vec<String> = body
        .split("=>")
        .skip(1)
        .filter_map(|arm| string_literal(arm.split(',').next().unwrap()))
        .collect();
    assert!(
        !codes.is_empty(),
        "ArmError::code() has no fixed codes any more: the scan is out of date"
    );
    codes
}

/// The fields of every `Verdict::Variant { .. }` in `text` (literals and patterns alike), with
/// the position of each `Verdict::`.
fn verdict_fields(text: &str) -> Vec<(usize, String)> {
    let mut fields = Vec::new();
    for (at, _) in text.match_indices("Verdict::") {
        let rest = &text[at + "Verdict::".len()..];
        let variant = rest.bytes().take_while(|b| is_ident_byte(*b)).count();
        let after = rest[variant..].trim_start();
        if !after.starts_with('{') {
            continue;
        }
        let open = text.len() - after.len();
        let close = matching(text, open);
        for field in split_top(&text[open + 1..close - 1], false) {
            fields.push((at, field));
        }
    }
    fields
}

fn scan_reasons(sources: &[Source]) -> Reasons {
    // Sinks: function name → positions of its `reason` argument (self not counted).
    let all: Vec<(usize, Function)> = sources
        .iter()
        .enumerate()
        .flat_map(|(i, s)| functions(&s.clean).into_iter().map(move |f| (i, f)))
        .collect();
    let reason_index = |f: &Function| f.params.iter().position(|p| p == "reason");
    let builds_verdict = |text: &str| {
        verdict_fields(text).iter().any(|(_, field)| {
            field == "reason" || field.strip_prefix("reason:").and_then(variable) == Some("reason")
        })
    };
    let mut sinks: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for (file, f) in &all {
        if let Some(i) = reason_index(f) {
            let body = &sources[*file].clean[f.body.0..f.body.1];
            if sources[*file].path == "src/planner/status.rs" || builds_verdict(body) {
                sinks.entry(f.name.clone()).or_default().insert(i);
            }
        }
    }
    assert!(
        ["progressing", "stalled"]
            .iter()
            .all(|s| sinks.contains_key(*s)),
        "Summary::progressing/stalled (src/planner/status.rs) take a `reason` no more: the scan is out of date; sinks {sinks:?}"
    );
    loop {
        let mut grown = false;
        for (file, f) in &all {
            let Some(i) = reason_index(f) else { continue };
            if sinks.get(&f.name).is_some_and(|s| s.contains(&i)) {
                continue;
            }
            let body = &sources[*file].clean[f.body.0..f.body.1];
            let passes_on = sinks.iter().any(|(name, positions)| {
                calls(body, name).iter().any(|call| {
                    positions
                        .iter()
                        .any(|p| call.args.get(*p).and_then(|a| variable(a)) == Some("reason"))
                })
            });
            if passes_on {
                sinks.entry(f.name.clone()).or_default().insert(i);
                grown = true;
            }
        }
        if !grown {
            break;
        }
    }

    let arm_codes = fixed_arm_codes(sources);
    let mut reasons = Reasons::default();
    for (file, f) in &all {
        let source = &sources[*file];
        let kinds = kinds_of(&source.path);
        let body = &source.clean[f.body.0..f.body.1];
        // The reason expressions of this function: sink arguments and Verdict fields.
        let mut expressions: Vec<(usize, String)> = Vec::new();
        for (name, positions) in &sinks {
            for call in calls(body, name) {
                for p in positions {
                    if let Some(arg) = call.args.get(*p) {
                        expressions.push((call.position, arg.clone()));
                    }
                }
            }
        }
        for (at, field) in verdict_fields(body) {
            if field == "reason" {
                expressions.push((at, field));
            } else if let Some(value) = field.strip_prefix("reason:") {
                expressions.push((at, value.trim().to_string()));
            }
        }
        for (at, expression) in expressions {
            let place = source.at(f.body.0 + at);
            if let Some(reason) = string_literal(&expression) {
                reasons.add("literal", &reason, &kinds, &place);
            } else if expression.trim().ends_with(".code()") {
                for code in &arm_codes {
                    reasons.add(
                        "ArmError::code()",
                        code,
                        &kinds,
                        &format!("{place} (ArmError::code)"),
                    );
                }
            } else if let Some(name) = variable(&expression)
                && !f.params.iter().any(|p| p == name)
            {
                let (values, code) = bound_values(body, at, name, None);
                for value in values {
                    reasons.add("binding", &value, &kinds, &place);
                }
                if code {
                    for code in &arm_codes {
                        reasons.add(
                            "ArmError::code()",
                            code,
                            &kinds,
                            &format!("{place} (ArmError::code)"),
                        );
                    }
                }
            }
        }
    }
    // The reasons the condition builder sets itself: Ready's `Succeeded`, and those of a
    // Reconciling or Stalled condition that is False.
    for summary in [
        Summary::ready(),
        Summary::progressing("X", "m"),
        Summary::stalled("X", "m"),
    ] {
        for condition in status::conditions(&summary, None, &[], "t") {
            if condition.reason != "X" {
                reasons.add(
                    "status::conditions",
                    &condition.reason,
                    &[Kind::Account, Kind::Deployment],
                    "src/planner/status.rs (status::conditions)",
                );
            }
        }
    }
    reasons
}

/// The reasons a page's `## Conditions and reasons` table lists (code spans of first cells).
fn reasons_table(file: &str) -> BTreeSet<String> {
    let page = read(file);
    let reasons: BTreeSet<String> = table_rows(&section(&page, file, "Conditions and reasons"))
        .iter()
        .flat_map(|row| code_spans(&row[0]).map(str::to_string).collect::<Vec<_>>())
        .collect();
    assert!(
        reasons.len() > 5,
        "{file}: the reasons table under `## Conditions and reasons` was not found"
    );
    reasons
}

#[test]
fn every_condition_reason_is_in_its_kinds_reasons_table() {
    let reasons = scan_reasons(&sources());
    for route in [
        "literal",
        "binding",
        "ArmError::code()",
        "status::conditions",
    ] {
        assert!(
            reasons.routes.get(route).is_some_and(|n| *n > 0),
            "the reason scan found nothing through {route}: src/ changed shape, and the scan in tests/docs_reference.rs needs updating (routes: {:?})",
            reasons.routes
        );
    }
    let mut missing = Vec::new();
    let mut counts = Vec::new();
    for (kind, found) in &reasons.found {
        let file = match kind {
            Kind::Account => ACCOUNT_PAGE,
            Kind::Deployment => DEPLOYMENT_PAGE,
        };
        let table = reasons_table(file);
        counts.push(format!("{kind:?}: {}", found.len()));
        for (reason, at) in found {
            if !table.contains(reason) {
                missing.push(format!(
                    "condition reason {reason} (set at {at}) is not in {file}: add `{reason}` to the table under `## Conditions and reasons`"
                ));
            }
        }
    }
    eprintln!("condition reasons checked: {}", counts.join(", "));
    assert!(
        reasons.found.len() == 2,
        "reasons were found for both kinds: {:?}",
        reasons.found.keys()
    );
    assert!(
        missing.is_empty(),
        "condition reasons missing from the reference pages:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_reason_scan_follows_sinks_and_bindings() {
    let text = r#"
        // Summary::stalled("InAComment", m)
        fn stall(&self, resource: &R, reason: &str, message: &str) {
            let s = Summary::stalled(reason, message);
        }
        fn plan(kind: K) {
            let (reason, what) = match kind { A => ("Creating", "creating"), _ => ("Updating", "x") };
            Plan::verdict(Verdict::Progressing { reason, message: format!("{what}") });
            let stop = match check { Denied(m) => Some(("ScopeNotAllowed", m)), _ => None };
            if let Some((reason, message)) = stop {
                self.stall(resource, reason, &message);
            }
            self.stall(resource, "AccountInvalid", "m");
            self.publish(resource, "EventOnly", "m");
        }
        #[cfg(test)]
        mod tests { fn t() { Summary::stalled("OnlyInATest", "m"); } }
    "#;
    let clean = without_test_modules(&blank_comments(text));
    assert!(!clean.contains("InAComment") && !clean.contains("OnlyInATest"));
    let status = Source {
        path: "src/planner/status.rs".into(),
        clean: "fn stalled(reason: &str, m: &str) -> S { s() }\nfn progressing(reason: &str, m: &str) -> S { s() }\n".into(),
    };
    let error = Source {
        path: "src/arm/error.rs".into(),
        clean: "fn code(&self) -> &str { match self { A => \"ArmUnavailable\", } }".into(),
    };
    let example = Source {
        path: "src/controller/reconciler/deployment/example.rs".into(),
        clean,
    };
    let reasons = scan_reasons(&[status, error, example]);
    let deployment: BTreeSet<&str> = reasons.found[&Kind::Deployment]
        .keys()
        .map(String::as_str)
        .collect();
    for reason in ["Creating", "Updating", "ScopeNotAllowed", "AccountInvalid"] {
        assert!(deployment.contains(reason), "{reason} in {deployment:?}");
    }
    assert!(!deployment.contains("EventOnly"), "{deployment:?}");
    assert!(!reasons.found[&Kind::Account].contains_key("Creating"));
}
