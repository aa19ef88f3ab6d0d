//! Reading CognitiveServicesAccount manifests from files: multi-document YAML, directories,
//! errors that name the file, the document and the field.

use std::path::{Path, PathBuf};

use kube::ResourceExt;
use serde_json::Value;

use crate::api::CognitiveServicesAccount;

pub const API_VERSION: &str = "cognitive-operator.dev/v1alpha1";
pub const KIND: &str = "CognitiveServicesAccount";

/// A resource read from a manifest, with where it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// `path#document` (1-based), for messages.
    pub source: String,
    pub resource: CognitiveServicesAccount,
}

/// Bad input, with file, document and field.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {message}")]
    Unreadable { path: String, message: String },
    #[error("{source_ref}: {message}")]
    Invalid { source_ref: String, message: String },
    #[error("{0}: no CognitiveServicesAccount manifests found")]
    Empty(String),
}

/// Loads every CognitiveServicesAccount from the given files or directories (`-` is stdin).
/// Documents of other kinds are skipped; each one found is reported on stderr.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Loaded>, ManifestError> {
    let mut loaded = Vec::new();
    for path in paths {
        for file in files_in(path)? {
            let text = read(&file)?;
            loaded.extend(parse(&file.display().to_string(), &text)?);
        }
    }
    if loaded.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(ManifestError::Empty(names.join(", ")));
    }
    check_unique(&loaded)?;
    Ok(loaded)
}

fn files_in(path: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    if path.as_os_str() == "-" || path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| ManifestError::Unreadable {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

fn read(path: &Path) -> Result<String, ManifestError> {
    let result = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    result.map_err(|e| ManifestError::Unreadable {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Parses a multi-document YAML text.
pub fn parse(file: &str, text: &str) -> Result<Vec<Loaded>, ManifestError> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Unreadable {
            path: file.to_string(),
            message: format!("not valid YAML: {e}"),
        })?;
    let mut loaded = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        let source = format!("{file}#{}", index + 1);
        if document.is_null() {
            continue;
        }
        if document.get("kind").and_then(Value::as_str) != Some(KIND) {
            let kind = document
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("(no kind)");
            eprintln!("{source}: skipping {kind}");
            continue;
        }
        loaded.push(Loaded {
            resource: decode(&source, document)?,
            source,
        });
    }
    Ok(loaded)
}

fn decode(source: &str, document: Value) -> Result<CognitiveServicesAccount, ManifestError> {
    let invalid = |message: String| ManifestError::Invalid {
        source_ref: source.to_string(),
        message,
    };
    match document.get("apiVersion").and_then(Value::as_str) {
        Some(API_VERSION) => {}
        other => {
            return Err(invalid(format!(
                "apiVersion: expected {API_VERSION}, found {}",
                other.unwrap_or("nothing")
            )));
        }
    }
    let resource: CognitiveServicesAccount = serde_path_to_error::deserialize(document)
        .map_err(|e| invalid(format!("{}: {}", e.path(), e.inner())))?;
    let name = resource.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(invalid("metadata.name: is required".into()));
    }
    resource
        .spec
        .validate(&name)
        .map_err(|e| invalid(format!("{} ({name}): {}", e.field, e.message)))?;
    Ok(resource)
}

fn check_unique(loaded: &[Loaded]) -> Result<(), ManifestError> {
    for (i, a) in loaded.iter().enumerate() {
        for b in &loaded[..i] {
            let same = a.resource.name_any() == b.resource.name_any()
                && a.resource.namespace() == b.resource.namespace();
            if same {
                return Err(ManifestError::Invalid {
                    source_ref: a.source.clone(),
                    message: format!(
                        "{} is defined twice (also at {})",
                        a.resource.name_any(),
                        b.source
                    ),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: cognitive-operator.dev/v1alpha1
kind: CognitiveServicesAccount
metadata: {name: docs, namespace: team-a}
spec: {resourceGroup: rg, location: westus, kind: OpenAI, sku: {name: S0}}
";

    #[test]
    fn multi_document_files_skip_other_kinds() {
        let text = format!("{GOOD}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\n---\n");
        let loaded = parse("f.yaml", &text).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].source, "f.yaml#1");
    }

    #[test]
    fn errors_name_the_file_document_and_field() {
        let text = format!(
            "{GOOD}---\n{}",
            GOOD.replace("{name: S0}", "{tier: Basic}")
                .replace("docs", "other")
        );
        let err = parse("f.yaml", &text).unwrap_err().to_string();
        assert!(err.starts_with("f.yaml#2: spec.sku"), "{err}");
        assert!(err.contains("name"), "{err}");
        let err = parse("f.yaml", &GOOD.replace("westus", "''"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "f.yaml#1: spec.location (docs): is required");
        let err = parse("f.yaml", &GOOD.replace("v1alpha1", "v1"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("apiVersion"), "{err}");
        let err = parse(
            "f.yaml",
            &GOOD.replace("softDeletePolicy", "x").replace(
                "sku: {name: S0}",
                "sku: {name: S0}, softDeletePolicy: Sometimes",
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("spec.softDeletePolicy"), "{err}");
    }
}
