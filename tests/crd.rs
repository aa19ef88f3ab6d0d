//! The CRD in crds/ is what the code generates, is a structural schema, and documents every field.

use cognitive_operator::api::{CRD_FILE, DEPLOYMENT_CRD_FILE, crd_yaml, deployment_crd_yaml};
use serde_json::Value;

fn crd_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crds")
        .join(CRD_FILE)
}

#[test]
fn crds_folder_matches_the_generated_crds() {
    let committed = std::fs::read_to_string(crd_path()).expect("crds/ holds the CRD");
    let stale = "is stale: run `cargo run -- crd --out-dir crds` and copy crds/ to charts/cognitive-operator/crds/ and deploy/crds/";
    assert!(committed == crd_yaml(), "crds/{CRD_FILE} {stale}");
    let deployments = crd_path().with_file_name(DEPLOYMENT_CRD_FILE);
    let committed = std::fs::read_to_string(deployments).expect("crds/ holds the deployment CRD");
    assert!(
        committed == deployment_crd_yaml(),
        "crds/{DEPLOYMENT_CRD_FILE} {stale}"
    );
}

fn schema() -> Value {
    schema_of(&crd_yaml())
}

fn deployment_schema() -> Value {
    schema_of(&deployment_crd_yaml())
}

fn schema_of(yaml: &str) -> Value {
    let crd: Value = serde_saphyr::from_str(yaml).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Walks every schema node with its path.
fn walk<'a>(path: String, node: &'a Value, visit: &mut dyn FnMut(&str, &'a Value)) {
    visit(&path, node);
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            walk(format!("{path}.{name}"), child, visit);
        }
    }
    if let Some(items) = node.get("items") {
        walk(format!("{path}[]"), items, visit);
    }
    if let Some(additional) = node.get("additionalProperties").filter(|a| a.is_object()) {
        walk(format!("{path}{{}}"), additional, visit);
    }
}

#[test]
fn the_schemas_are_structural() {
    assert_structural(&schema());
    assert_structural(&deployment_schema());
}

fn assert_structural(root: &Value) {
    let mut problems = Vec::new();
    walk(String::new(), root, &mut |path, node| {
        let typed = node.get("type").and_then(Value::as_str).is_some();
        let open = node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
            || node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
        if !typed && !open {
            problems.push(format!("{path}: no type"));
        }
        if node.get("type").and_then(Value::as_str) == Some("object")
            && node.get("properties").is_none()
            && node.get("additionalProperties").is_none()
            && !open
            && !path.is_empty()
        {
            problems.push(format!(
                "{path}: untyped object without x-kubernetes-preserve-unknown-fields"
            ));
        }
        for forbidden in ["anyOf", "oneOf", "allOf", "$ref"] {
            if node.get(forbidden).is_some() {
                problems.push(format!("{path}: uses {forbidden}"));
            }
        }
        if node.get("properties").is_some() && node.get("additionalProperties").is_some() {
            problems.push(format!("{path}: both properties and additionalProperties"));
        }
    });
    assert!(
        problems.is_empty(),
        "not structural:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_field_has_a_description() {
    assert_described(&schema(), 80);
    assert_described(&deployment_schema(), 15);
}

fn assert_described(root: &Value, at_least: usize) {
    let mut missing = Vec::new();
    let mut visited = 0;
    walk(
        String::new(),
        &root["properties"]["spec"],
        &mut |path, node| {
            visited += 1;
            let is_map_value = path.ends_with('}');
            let described = node
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.trim().is_empty());
            if !described && !is_map_value && !path.ends_with("[]") {
                missing.push(format!("spec{path}"));
            }
        },
    );
    walk(
        String::new(),
        &root["properties"]["status"],
        &mut |path, node| {
            let described = node
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.trim().is_empty());
            if !described && !path.ends_with('}') && !path.ends_with("[]") && !path.is_empty() {
                missing.push(format!("status{path}"));
            }
        },
    );
    assert!(visited > at_least, "the walk saw only {visited} spec nodes");
    assert!(
        missing.is_empty(),
        "fields without a description:\n{}",
        missing.join("\n")
    );
}

#[test]
fn immutable_fields_carry_cel_rules_with_guidance() {
    let spec = &schema()["properties"]["spec"];
    for field in [
        "azureName",
        "subscriptionId",
        "resourceGroup",
        "location",
        "kind",
    ] {
        let rules = spec["properties"][field]["x-kubernetes-validations"]
            .as_array()
            .unwrap_or_else(|| panic!("{field} has no CEL rule"));
        let rule = rules[0]["rule"].as_str().unwrap();
        assert!(rule.contains("oldSelf"), "{field}: {rule}");
        assert!(
            rules[0]["message"]
                .as_str()
                .unwrap()
                .contains("create a new resource"),
            "{field}"
        );
    }
    let kind_rule = spec["properties"]["kind"]["x-kubernetes-validations"][0]["rule"]
        .as_str()
        .unwrap();
    assert!(kind_rule.contains("AIServices"), "{kind_rule}");
    let spec_rules = spec["x-kubernetes-validations"].to_string();
    assert!(spec_rules.contains("customSubDomainName"), "{spec_rules}");
}

#[test]
fn policies_are_enums_with_defaults_and_status_is_a_subresource() {
    let crd: Value = serde_saphyr::from_str(&crd_yaml()).unwrap();
    let version = &crd["spec"]["versions"][0];
    assert!(version["subresources"]["status"].is_object());
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for (field, default, values) in [
        (
            "softDeletePolicy",
            "Restore",
            vec!["Restore", "Purge", "Fail"],
        ),
        (
            "deletionPolicy",
            "Delete",
            vec!["Delete", "DeleteAndPurge", "Orphan"],
        ),
        ("adoptionPolicy", "Never", vec!["Never", "Adopt"]),
        (
            "reconcilePolicy",
            "Manage",
            vec!["Manage", "Observe", "Pause"],
        ),
    ] {
        assert_eq!(spec[field]["default"], default, "{field}");
        assert_eq!(spec[field]["enum"], serde_json::json!(values), "{field}");
    }
    assert_eq!(
        crd["spec"]["names"]["shortNames"],
        serde_json::json!(["csa"])
    );
    assert_eq!(crd["spec"]["scope"], "Namespaced");
}

#[test]
fn deployment_fields_azure_cannot_change_are_immutable_with_guidance() {
    let spec = &deployment_schema()["properties"]["spec"]["properties"];
    for (field, node) in [
        ("accountRef", &spec["accountRef"]),
        ("azureName", &spec["azureName"]),
        ("model.format", &spec["model"]["properties"]["format"]),
        ("model.name", &spec["model"]["properties"]["name"]),
        ("sku.name", &spec["sku"]["properties"]["name"]),
    ] {
        let rule = &node["x-kubernetes-validations"][0];
        assert_eq!(rule["rule"], "self == oldSelf", "{field}");
        let message = rule["message"].as_str().unwrap();
        assert!(message.contains(&format!("spec.{field}")), "{message}");
        assert!(
            message.contains("create a new deployment resource"),
            "{message}"
        );
    }
    // Capacity and version may change.
    assert!(
        spec["sku"]["properties"]["capacity"]
            .get("x-kubernetes-validations")
            .is_none()
    );
    assert!(
        spec["model"]["properties"]["version"]
            .get("x-kubernetes-validations")
            .is_none()
    );
    let crd: Value = serde_saphyr::from_str(&deployment_crd_yaml()).unwrap();
    assert_eq!(
        crd["spec"]["names"]["shortNames"],
        serde_json::json!(["csd"])
    );
    let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "Ready", "Model", "Version", "SKU", "Capacity", "Account", "Age"
        ]
    );
}

#[test]
fn the_owner_tag_is_refused_by_a_cel_rule_on_both_kinds() {
    for (kind, root) in [("account", schema()), ("deployment", deployment_schema())] {
        let tags = &root["properties"]["spec"]["properties"]["tags"];
        let rule = &tags["x-kubernetes-validations"][0];
        let text = rule["rule"].as_str().unwrap_or_default();
        assert!(
            text.contains("lowerAscii()") && text.contains("'cognitive-operator-owner'"),
            "{kind}: {tags}"
        );
        let message = rule["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("spec.tags") && message.contains("any letter case"),
            "{kind}: {message}"
        );
        // Bounds the rule's cost for the API server's CEL budget: Azure's 50 tags, one ours.
        assert_eq!(tags["maxProperties"], 49, "{kind}: {tags}");
    }
}
