//! Reading CognitiveServicesAccount and CognitiveServicesDeployment manifests from files:
//! multi-document YAML, directories, errors that name the file, the document and the field.
//!
//! Strict, as an API server with strict field validation is: a field the schema does not
//! know (a typo such as `deletionPolcy`, which would otherwise fall back to the default) and
//! an unknown kind of our group are errors. Other kinds are skipped.

use std::path::{Path, PathBuf};

use kube::ResourceExt;
use serde_json::Value;

use serde::de::DeserializeOwned;

use crate::api::{CognitiveServicesAccount, CognitiveServicesDeployment};

pub const API_VERSION: &str = "cognitive-operator.dev/v1alpha1";
pub const KIND: &str = "CognitiveServicesAccount";
pub const DEPLOYMENT_KIND: &str = "CognitiveServicesDeployment";
const GROUP: &str = "cognitive-operator.dev";

/// A resource read from a manifest, with where it came from.
#[derive(Clone, Debug)]
pub struct Loaded<R = CognitiveServicesAccount> {
    /// `path#document` (1-based), for messages.
    pub source: String,
    pub resource: R,
}

/// Everything the manifests hold, in their order.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    pub accounts: Vec<Loaded>,
    pub deployments: Vec<Loaded<CognitiveServicesDeployment>>,
}

impl Manifests {
    /// The account resource a deployment's `spec.accountRef` names, within the manifests.
    pub fn account_of(&self, deployment: &CognitiveServicesDeployment) -> Option<&Loaded> {
        self.accounts.iter().find(|a| {
            a.resource.namespace() == deployment.namespace()
                && a.resource.name_any() == deployment.spec.account_ref.name
        })
    }
}

/// Bad input, with file, document and field.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {message}")]
    Unreadable { path: String, message: String },
    #[error("{source_ref}: {message}")]
    Invalid { source_ref: String, message: String },
    #[error("{0}: no CognitiveServicesAccount or CognitiveServicesDeployment manifests found")]
    Empty(String),
}

/// Loads every account and deployment from the given files or directories (`-` is stdin).
/// Documents of other kinds are skipped; each one found is reported on stderr. Every
/// deployment's `spec.accountRef` must name an account of the manifests.
pub fn load(paths: &[PathBuf]) -> Result<Manifests, ManifestError> {
    let mut manifests = Manifests::default();
    for path in paths {
        for file in files_in(path)? {
            let text = read(&file)?;
            let parsed = parse_all(&file.display().to_string(), &text)?;
            manifests.accounts.extend(parsed.accounts);
            manifests.deployments.extend(parsed.deployments);
        }
    }
    if manifests.accounts.is_empty() && manifests.deployments.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(ManifestError::Empty(names.join(", ")));
    }
    check_unique(&manifests.accounts)?;
    check_unique(&manifests.deployments)?;
    for deployment in &manifests.deployments {
        if manifests.account_of(&deployment.resource).is_none() {
            return Err(ManifestError::Invalid {
                source_ref: deployment.source.clone(),
                message: format!(
                    "spec.accountRef.name ({}): no CognitiveServicesAccount {} in namespace {} among the manifests",
                    deployment.resource.name_any(),
                    deployment.resource.spec.account_ref.name,
                    deployment
                        .resource
                        .namespace()
                        .unwrap_or_else(|| "default".into())
                ),
            });
        }
    }
    Ok(manifests)
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
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        })
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

/// Parses a multi-document YAML text's accounts (the other kinds are skipped).
pub fn parse(file: &str, text: &str) -> Result<Vec<Loaded>, ManifestError> {
    Ok(parse_all(file, text)?.accounts)
}

/// Parses a multi-document YAML text.
pub fn parse_all(file: &str, text: &str) -> Result<Manifests, ManifestError> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Unreadable {
            path: file.to_string(),
            message: format!("not valid YAML: {e}"),
        })?;
    let mut manifests = Manifests::default();
    for (index, document) in with_list_items(documents).into_iter().enumerate() {
        let source = format!("{file}#{}", index + 1);
        if document.is_null() {
            continue;
        }
        let kind = document
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("(no kind)")
            .to_string();
        match kind.as_str() {
            KIND => {
                let resource: CognitiveServicesAccount = decode(&source, document)?;
                validated(&source, &resource.metadata, |name| {
                    resource.spec.validate(name)
                })?;
                manifests.accounts.push(Loaded { resource, source });
            }
            DEPLOYMENT_KIND => {
                let resource: CognitiveServicesDeployment = decode(&source, document)?;
                validated(&source, &resource.metadata, |name| {
                    resource.spec.validate(name)
                })?;
                manifests.deployments.push(Loaded { resource, source });
            }
            _ if of_our_group(&document) => {
                return Err(ManifestError::Invalid {
                    source_ref: source,
                    message: format!(
                        "kind: {kind} is not a kind of {GROUP} (expected {KIND} or {DEPLOYMENT_KIND})"
                    ),
                });
            }
            _ => eprintln!("{source}: skipping {kind}"),
        }
    }
    Ok(manifests)
}

/// The documents with each `kind: List` (as `kubectl get -o json` and `import -o json` write)
/// replaced by its items; JSON is YAML, so a `.json` file of one List reads as one document.
fn with_list_items(documents: Vec<Value>) -> Vec<Value> {
    documents
        .into_iter()
        .flat_map(
            |document| match document.get("kind").and_then(Value::as_str) {
                Some("List") => document
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                _ => vec![document],
            },
        )
        .collect()
}

fn of_our_group(document: &Value) -> bool {
    document
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| v.split('/').next() == Some(GROUP))
}

/// Deserializes one of our resources, refusing fields its schema does not know.
fn decode<R: DeserializeOwned>(source: &str, document: Value) -> Result<R, ManifestError> {
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
    let mut unknown = Vec::new();
    let mut note_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let tracked = serde_ignored::Deserializer::new(document, &mut note_unknown);
    let resource: R = serde_path_to_error::deserialize(tracked)
        .map_err(|e| invalid(format!("{}: {}", e.path(), e.inner())))?;
    // `apiVersion` and `kind` are checked above (the resource type does not keep them), and
    // `status` is the operator's to write; everything else must be known.
    unknown.retain(|path| {
        !matches!(path.as_str(), "apiVersion" | "kind" | "status") && !path.starts_with("status.")
    });
    if let Some(field) = unknown.first() {
        return Err(invalid(format!(
            "{field}: unknown field (misspelt? see kubectl explain)"
        )));
    }
    Ok(resource)
}

fn validated(
    source: &str,
    metadata: &kube::api::ObjectMeta,
    validate: impl FnOnce(&str) -> Result<(), crate::api::FieldError>,
) -> Result<(), ManifestError> {
    let invalid = |message: String| ManifestError::Invalid {
        source_ref: source.to_string(),
        message,
    };
    let name = metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(invalid("metadata.name: is required".into()));
    }
    validate(&name).map_err(|e| invalid(format!("{} ({name}): {}", e.field, e.message)))
}

fn check_unique<R: ResourceExt>(loaded: &[Loaded<R>]) -> Result<(), ManifestError> {
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

    const DEPLOYMENT: &str = "apiVersion: cognitive-operator.dev/v1alpha1
kind: CognitiveServicesDeployment
metadata: {name: chat, namespace: team-a}
spec:
  accountRef: {name: docs}
  model: {format: OpenAI, name: gpt-4o}
  sku: {name: GlobalStandard, capacity: 10}
";

    #[test]
    fn accounts_and_deployments_are_read_together() {
        let parsed = parse_all(
            "f.yaml",
            &format!(
                "{GOOD}---
{DEPLOYMENT}"
            ),
        )
        .unwrap();
        assert_eq!(parsed.accounts.len(), 1);
        assert_eq!(parsed.deployments.len(), 1);
        let deployment = &parsed.deployments[0].resource;
        assert_eq!(parsed.account_of(deployment).unwrap().source, "f.yaml#1");
    }

    #[test]
    fn a_list_is_read_as_its_items() {
        let account: Value = serde_saphyr::from_str(GOOD).unwrap();
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [account]});
        let parsed = parse_all("f.json", &list.to_string()).unwrap();
        assert_eq!(parsed.accounts.len(), 1);
        assert_eq!(parsed.accounts[0].source, "f.json#1");
    }

    #[test]
    fn unknown_fields_and_kinds_of_our_group_are_errors() {
        let err = parse(
            "f.yaml",
            &GOOD.replace("sku: {name: S0}", "sku: {name: S0}, bogusField: 1"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "f.yaml#1: spec.bogusField: unknown field (misspelt? see kubectl explain)"
        );
        let misspelt = format!(
            "{DEPLOYMENT}  deletionPolcy: Orphan
"
        );
        let err = parse_all("f.yaml", &misspelt).unwrap_err().to_string();
        assert!(
            err.starts_with("f.yaml#1: spec.deletionPolcy: unknown field"),
            "{err}"
        );
        let err = parse_all(
            "f.yaml",
            &GOOD.replace(
                "kind: CognitiveServicesAccount",
                "kind: CognitiveServicesAcount",
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("kind: CognitiveServicesAcount is not a kind of cognitive-operator.dev"),
            "{err}"
        );
        // A status (say, from kubectl get -o yaml) is not an error.
        assert!(
            parse(
                "f.yaml",
                &format!(
                    "{GOOD}status: {{endpoint: x}}
"
                )
            )
            .is_ok()
        );
    }
}
