//! Compares the desired account with the observed one the way ARM means it.
//!
//! Only what the spec sets is compared; server defaults the spec leaves out are ignored. Tags
//! are compared as a whole map (names ignoring case, as Azure does), lists as sets (order never matters to ARM here), enum values and
//! ARM ids case-insensitively. Differences are reported per leaf field; a PATCH replaces whole
//! top-level units (`sku`, `tags`, `identity`, `properties.<name>`), which is how ARM merges.

use serde_json::{Map, Value};

/// A field whose observed value differs from the desired one.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDiff {
    /// Dotted path, e.g. `properties.networkAcls.defaultAction`.
    pub path: String,
    pub desired: Value,
    /// `Value::Null` when Azure has no value.
    pub observed: Value,
}

impl FieldDiff {
    /// The unit a PATCH replaces: `sku`, `tags`, `identity`, `kind` or `properties.<name>`.
    pub fn patch_unit(&self) -> &str {
        patch_unit(&self.path)
    }
}

fn patch_unit(path: &str) -> &str {
    let mut cut = path.match_indices('.').map(|(i, _)| i);
    let end = if path.starts_with("properties.") {
        cut.nth(1)
    } else {
        cut.next()
    };
    &path[..end.unwrap_or(path.len())]
}

/// String fields whose values are enums or names that ARM treats case-insensitively.
const CASE_INSENSITIVE: &[&str] = &[
    "kind",
    "sku.name",
    "sku.tier",
    "identity.type",
    "properties.publicNetworkAccess",
    "properties.customSubDomainName",
    "properties.networkAcls.defaultAction",
    "properties.networkAcls.bypass",
    "properties.encryption.keySource",
    "properties.locations.routingMethod",
];

/// Maps compared as whole maps (keys added behind our back are differences).
const WHOLE_MAPS: &[&str] = &["tags"];

/// Maps whose keys are ARM ids and whose values Azure fills: compared as sets of keys.
const KEYED_BY_ARM_ID: &[&str] = &["identity.userAssignedIdentities"];

/// Every difference between `desired` and `observed` (both account documents).
pub fn diff(desired: &Value, observed: &Value) -> Vec<FieldDiff> {
    let mut diffs = Vec::new();
    diff_at("", desired, observed, &mut diffs);
    diffs
}

fn diff_at(path: &str, desired: &Value, observed: &Value, out: &mut Vec<FieldDiff>) {
    match desired {
        Value::Null => {}
        Value::Object(fields)
            if !WHOLE_MAPS.contains(&path) && !KEYED_BY_ARM_ID.contains(&path) =>
        {
            for (key, value) in fields {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                diff_at(
                    &child,
                    value,
                    observed.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if covers(path, desired, observed) => {}
        _ => out.push(FieldDiff {
            path: path.to_string(),
            desired: desired.clone(),
            observed: observed.clone(),
        }),
    }
}

/// Whether `observed` satisfies everything `desired` asks for at `path`.
pub fn covers(path: &str, desired: &Value, observed: &Value) -> bool {
    match (desired, observed) {
        (Value::Null, _) => true,
        (Value::Object(d), Value::Object(o)) if WHOLE_MAPS.contains(&path) => same_tags(d, o),
        (Value::Object(d), Value::Object(o)) if KEYED_BY_ARM_ID.contains(&path) => {
            same_key_set(d, o)
        }
        (Value::Object(d), Value::Object(o)) => d.iter().all(|(key, value)| {
            let child = format!("{path}.{key}");
            covers(&child, value, o.get(key).unwrap_or(&Value::Null))
        }),
        (Value::Array(d), Value::Array(o)) => covers_as_set(path, d, o),
        (Value::String(d), Value::String(o)) => same_string(path, d, o),
        (Value::Number(d), Value::Number(o)) => d.as_f64() == o.as_f64(),
        (d, o) => d == o,
    }
}

/// Tag maps are the same when their names match ignoring case (Azure's rule, and it may keep
/// a name in the casing it first had) and their values exactly.
pub fn same_tags<'a, V: PartialEq + 'a>(
    desired: impl IntoIterator<Item = (&'a String, &'a V)>,
    observed: impl IntoIterator<Item = (&'a String, &'a V)>,
) -> bool {
    let folded = |tags: Vec<(&'a String, &'a V)>| {
        let mut tags: Vec<(String, &'a V)> = tags
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        tags
    };
    folded(desired.into_iter().collect()) == folded(observed.into_iter().collect())
}

fn same_key_set(desired: &Map<String, Value>, observed: &Map<String, Value>) -> bool {
    let lower = |m: &Map<String, Value>| {
        let mut keys: Vec<String> = m.keys().map(|k| k.to_ascii_lowercase()).collect();
        keys.sort();
        keys
    };
    lower(desired) == lower(observed)
}

/// Lists are sets: same length, and each desired element matched by a distinct observed one.
fn covers_as_set(path: &str, desired: &[Value], observed: &[Value]) -> bool {
    if desired.len() != observed.len() {
        return false;
    }
    let mut unmatched: Vec<&Value> = observed.iter().collect();
    desired.iter().all(
        |want| match unmatched.iter().position(|have| covers(path, want, have)) {
            Some(i) => {
                unmatched.swap_remove(i);
                true
            }
            None => false,
        },
    )
}

fn same_string(path: &str, desired: &str, observed: &str) -> bool {
    let insensitive = CASE_INSENSITIVE.contains(&path)
        || desired.starts_with("/subscriptions/")
        || path.ends_with("ipRules.value");
    if insensitive {
        desired.eq_ignore_ascii_case(observed)
    } else {
        desired == observed
    }
}

/// A PATCH body replacing every top-level unit that has a difference with its desired value.
pub fn patch_body(desired: &Value, diffs: &[FieldDiff]) -> (Value, Vec<String>) {
    let mut units: Vec<String> = diffs.iter().map(|d| d.patch_unit().to_string()).collect();
    units.sort();
    units.dedup();
    let mut body = Map::new();
    for unit in &units {
        let value = lookup(desired, unit).cloned().unwrap_or(Value::Null);
        match unit.strip_prefix("properties.") {
            Some(property) => {
                let properties = body
                    .entry("properties")
                    .or_insert_with(|| Value::Object(Map::new()));
                properties
                    .as_object_mut()
                    .expect("properties is an object")
                    .insert(property.to_string(), value);
            }
            None => {
                body.insert(unit.clone(), value);
            }
        }
    }
    (Value::Object(body), units)
}

/// Applies a PATCH body to an observed document the way ARM merges it (each unit replaced).
pub fn apply_patch(observed: &Value, patch: &Value) -> Value {
    let mut merged = observed.clone();
    let Some(patch) = patch.as_object() else {
        return merged;
    };
    let target = merged.as_object_mut().expect("accounts are objects");
    for (key, value) in patch {
        if key == "properties" {
            let properties = target
                .entry("properties")
                .or_insert_with(|| Value::Object(Map::new()));
            if let (Some(have), Some(set)) = (properties.as_object_mut(), value.as_object()) {
                for (name, v) in set {
                    have.insert(name.clone(), v.clone());
                }
            }
        } else {
            target.insert(key.clone(), value.clone());
        }
    }
    merged
}

fn lookup<'a>(document: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(document, |value, key| value.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_defaults_the_spec_leaves_out_are_ignored() {
        let desired = json!({"properties": {"publicNetworkAccess": "Enabled"}});
        let observed = json!({"properties": {"publicNetworkAccess": "Enabled", "endpoint": "https://x/", "dynamicThrottlingEnabled": false}});
        assert!(diff(&desired, &observed).is_empty());
    }

    #[test]
    fn enums_compare_case_insensitively_but_tag_values_do_not() {
        let desired =
            json!({"properties": {"publicNetworkAccess": "disabled"}, "tags": {"team": "A"}});
        let observed =
            json!({"properties": {"publicNetworkAccess": "Disabled"}, "tags": {"team": "a"}});
        let diffs = diff(&desired, &observed);
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].path, "tags");
    }

    #[test]
    fn tag_names_compare_case_insensitively_as_azure_does() {
        let desired = json!({"tags": {"team": "a", "cognitive-operator-owner": "x"}});
        let observed = json!({"tags": {"Team": "a", "Cognitive-Operator-Owner": "x"}});
        assert!(diff(&desired, &observed).is_empty());
        let other_value = json!({"tags": {"Team": "b", "Cognitive-Operator-Owner": "x"}});
        assert_eq!(diff(&desired, &other_value)[0].path, "tags");
    }

    #[test]
    fn tags_are_a_whole_map() {
        let desired = json!({"tags": {"a": "1"}});
        let observed = json!({"tags": {"a": "1", "added-by-hand": "x"}});
        assert_eq!(diff(&desired, &observed)[0].path, "tags");
    }

    #[test]
    fn ip_and_vnet_rules_are_sets() {
        let desired = json!({"properties": {"networkAcls": {
            "ipRules": [{"value": "1.1.1.1"}, {"value": "2.2.2.0/24"}],
            "virtualNetworkRules": [{"id": "/subscriptions/S/rg/x/subnets/a"}]
        }}});
        let observed = json!({"properties": {"networkAcls": {
            "ipRules": [{"value": "2.2.2.0/24"}, {"value": "1.1.1.1"}],
            "virtualNetworkRules": [{"id": "/subscriptions/s/RG/x/subnets/a", "state": "Succeeded"}]
        }}});
        assert!(diff(&desired, &observed).is_empty());
        let fewer = json!({"properties": {"networkAcls": {"ipRules": [{"value": "1.1.1.1"}]}}});
        let diffs = diff(&fewer, &observed);
        assert_eq!(diffs[0].path, "properties.networkAcls.ipRules");
        assert_eq!(diffs[0].patch_unit(), "properties.networkAcls");
    }

    #[test]
    fn a_patch_replaces_whole_units_and_converges() {
        let desired = json!({"sku": {"name": "S1"}, "tags": {"a": "1"},
            "properties": {"networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": "1.1.1.1"}]}, "disableLocalAuth": true}});
        let observed = json!({"sku": {"name": "S0"}, "tags": {"a": "1"},
            "properties": {"networkAcls": {"defaultAction": "Allow", "ipRules": [{"value": "1.1.1.1"}]}, "disableLocalAuth": true, "endpoint": "e"}});
        let diffs = diff(&desired, &observed);
        let (body, units) = patch_body(&desired, &diffs);
        assert_eq!(units, vec!["properties.networkAcls", "sku"]);
        assert_eq!(
            body,
            json!({"sku": {"name": "S1"}, "properties": {"networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": "1.1.1.1"}]}}})
        );
        assert!(diff(&desired, &apply_patch(&observed, &body)).is_empty());
    }

    #[test]
    fn user_assigned_identities_compare_by_id() {
        let desired = json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {"/subscriptions/s/ID": {}}}});
        let observed = json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {"/subscriptions/S/id": {"principalId": "p", "clientId": "c"}}}});
        assert!(diff(&desired, &observed).is_empty());
    }
}
