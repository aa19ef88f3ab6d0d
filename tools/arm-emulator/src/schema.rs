//! The writable request shapes of the 2024-10-01 contract (and what 2025-06-01 adds), and the check that turns a client's
//! JSON into the part the emulator keeps: wrong types and unknown enum values are refused with the
//! field path, unknown and read-only properties are dropped (Azure ignores them, never echoes them).

use serde_json::{Map, Value};

use super::error::ArmError;

/// What a JSON value must look like.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape {
    String,
    Boolean,
    Integer,
    Number,
    /// A string from a fixed set, matched case-insensitively and stored in the listed casing.
    Enum(&'static [&'static str]),
    /// An object with known fields; other keys are dropped.
    Object(&'static [Field]),
    /// An object with known fields whose other keys are kept as sent (`apiProperties`).
    OpenObject(&'static [Field]),
    ArrayOf(&'static Shape),
    MapOf(&'static Shape),
    /// One value of the shape or an array of them (`networkInjections`: an array in the REST
    /// spec's types, one object in the Go SDK's model).
    OneOrMany(&'static Shape),
}

/// Which api-version's shapes a request is read in and answered in: 2024-10-01's below
/// 2025-06-01, with 2025-06-01's additions from it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ApiShape {
    V2024_10_01,
    V2025_06_01,
}

impl ApiShape {
    pub(crate) fn of(api_version: &str) -> Self {
        // Same-length ISO dates compare correctly as strings.
        if api_version >= "2025-06-01" {
            Self::V2025_06_01
        } else {
            Self::V2024_10_01
        }
    }

    pub(crate) fn has_2025_06_01_properties(self) -> bool {
        self >= Self::V2025_06_01
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub shape: Shape,
    pub required: bool,
}

const fn opt(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: false,
    }
}

const fn req(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: true,
    }
}

pub(crate) const SKU: Shape = Shape::Object(&[
    req("name", Shape::String),
    opt(
        "tier",
        Shape::Enum(&["Free", "Basic", "Standard", "Premium", "Enterprise"]),
    ),
    opt("size", Shape::String),
    opt("family", Shape::String),
    opt("capacity", Shape::Integer),
]);

/// `principalId`/`clientId` of a user-assigned identity are read-only: nothing of it is kept.
const USER_ASSIGNED_IDENTITY: Shape = Shape::Object(&[]);

pub(crate) const IDENTITY_TYPES: &[&str] = &[
    "None",
    "SystemAssigned",
    "UserAssigned",
    "SystemAssigned, UserAssigned",
];

pub(crate) const IDENTITY: Shape = Shape::Object(&[
    opt("type", Shape::Enum(IDENTITY_TYPES)),
    opt(
        "userAssignedIdentities",
        Shape::MapOf(&USER_ASSIGNED_IDENTITY),
    ),
]);

const NETWORK_RULE_SET: Shape = Shape::Object(&[
    opt("defaultAction", Shape::Enum(&["Allow", "Deny"])),
    opt("bypass", Shape::Enum(&["None", "AzureServices"])),
    opt(
        "ipRules",
        Shape::ArrayOf(&Shape::Object(&[req("value", Shape::String)])),
    ),
    opt(
        "virtualNetworkRules",
        Shape::ArrayOf(&Shape::Object(&[
            req("id", Shape::String),
            opt("state", Shape::String),
            opt("ignoreMissingVnetServiceEndpoint", Shape::Boolean),
        ])),
    ),
]);

const ENCRYPTION: Shape = Shape::Object(&[
    opt(
        "keyVaultProperties",
        Shape::Object(&[
            opt("keyName", Shape::String),
            opt("keyVersion", Shape::String),
            opt("keyVaultUri", Shape::String),
            opt("identityClientId", Shape::String),
        ]),
    ),
    opt(
        "keySource",
        Shape::Enum(&["Microsoft.CognitiveServices", "Microsoft.KeyVault"]),
    ),
]);

const RESOURCE_REFERENCE: Shape = Shape::Object(&[
    opt("resourceId", Shape::String),
    opt("identityClientId", Shape::String),
]);

const API_PROPERTIES: Shape = Shape::OpenObject(&[
    opt("qnaRuntimeEndpoint", Shape::String),
    opt("qnaAzureSearchEndpointKey", Shape::String),
    opt("qnaAzureSearchEndpointId", Shape::String),
    opt("statisticsEnabled", Shape::Boolean),
    opt("eventHubConnectionString", Shape::String),
    opt("storageAccountConnectionString", Shape::String),
    opt("aadClientId", Shape::String),
    opt("aadTenantId", Shape::String),
    opt("superUser", Shape::String),
    opt("websiteName", Shape::String),
]);

const MULTI_REGION_SETTINGS: Shape = Shape::Object(&[
    opt(
        "routingMethod",
        Shape::Enum(&["Priority", "Weighted", "Performance"]),
    ),
    opt(
        "regions",
        Shape::ArrayOf(&Shape::Object(&[
            opt("name", Shape::String),
            opt("value", Shape::Number),
            opt("customsubdomain", Shape::String),
        ])),
    ),
]);

/// The writable `properties` of an account (`restore` is write-only and never stored).
pub(crate) const ACCOUNT_PROPERTIES: Shape = Shape::Object(&[
    opt("migrationToken", Shape::String),
    opt("customSubDomainName", Shape::String),
    opt("networkAcls", NETWORK_RULE_SET),
    opt("encryption", ENCRYPTION),
    opt("userOwnedStorage", Shape::ArrayOf(&RESOURCE_REFERENCE)),
    opt("amlWorkspace", RESOURCE_REFERENCE),
    opt("publicNetworkAccess", Shape::Enum(&["Enabled", "Disabled"])),
    opt("apiProperties", API_PROPERTIES),
    opt("dynamicThrottlingEnabled", Shape::Boolean),
    opt("restrictOutboundNetworkAccess", Shape::Boolean),
    opt("allowedFqdnList", Shape::ArrayOf(&Shape::String)),
    opt("disableLocalAuth", Shape::Boolean),
    opt("restore", Shape::Boolean),
    opt("locations", MULTI_REGION_SETTINGS),
    opt(
        "raiMonitorConfig",
        Shape::Object(&[
            opt("adxStorageResourceId", Shape::String),
            opt("identityClientId", Shape::String),
        ]),
    ),
]);

/// `networkInjections` entries, kept as sent (their other keys included).
const NETWORK_INJECTION: Shape = Shape::OpenObject(&[
    opt("scenario", Shape::String),
    opt("subnetArmId", Shape::String),
    opt("useMicrosoftManagedNetwork", Shape::Boolean),
]);

/// The writable account `properties` api-version 2025-06-01 adds (projects are not emulated:
/// the names are stored and echoed).
pub(crate) const ACCOUNT_PROPERTIES_SINCE_2025_06_01: Shape = Shape::Object(&[
    opt("allowProjectManagement", Shape::Boolean),
    opt("associatedProjects", Shape::ArrayOf(&Shape::String)),
    opt("defaultProject", Shape::String),
    opt("networkInjections", Shape::OneOrMany(&NETWORK_INJECTION)),
]);

/// The writable deployment `properties` api-version 2025-06-01 adds.
pub(crate) const DEPLOYMENT_PROPERTIES_SINCE_2025_06_01: Shape =
    Shape::Object(&[opt("spilloverDeploymentName", Shape::String)]);

/// The field names of an object shape.
pub(crate) fn field_names(shape: &Shape) -> impl Iterator<Item = &'static str> {
    let fields: &'static [Field] = match shape {
        Shape::Object(fields) | Shape::OpenObject(fields) => fields,
        _ => &[],
    };
    fields.iter().map(|field| field.name)
}

/// The writable top level of an account body (PUT and PATCH).
pub(crate) const ACCOUNT: Shape = Shape::Object(&[
    opt("location", Shape::String),
    opt("kind", Shape::String),
    opt("sku", SKU),
    opt("tags", Shape::MapOf(&Shape::String)),
    opt("identity", IDENTITY),
    opt("properties", ACCOUNT_PROPERTIES),
]);

pub(crate) const REGENERATE_KEY: Shape =
    Shape::Object(&[req("keyName", Shape::Enum(&["Key1", "Key2"]))]);

pub(crate) const CHECK_DOMAIN_AVAILABILITY: Shape = Shape::Object(&[
    req("subdomainName", Shape::String),
    req("type", Shape::String),
    opt("kind", Shape::String),
]);

/// `DeploymentModel` as a client sends it (`publisher`, `source`, `sourceAccount` are not emulated).
const DEPLOYMENT_MODEL: Shape = Shape::Object(&[
    req("format", Shape::String),
    req("name", Shape::String),
    opt("version", Shape::String),
]);

pub(crate) const VERSION_UPGRADE_OPTIONS: &[&str] = &[
    "OnceNewDefaultVersionAvailable",
    "OnceCurrentVersionExpired",
    "NoAutoUpgrade",
];

/// The writable `DeploymentProperties` the emulator keeps (the deprecated `scaleSettings` and the
/// internal `capacitySettings` are dropped).
const DEPLOYMENT_PROPERTIES: Shape = Shape::Object(&[
    req("model", DEPLOYMENT_MODEL),
    opt("raiPolicyName", Shape::String),
    opt("versionUpgradeOption", Shape::Enum(VERSION_UPGRADE_OPTIONS)),
]);

/// A deployment PUT body.
pub(crate) const DEPLOYMENT: Shape = Shape::Object(&[
    opt("sku", SKU),
    opt("tags", Shape::MapOf(&Shape::String)),
    req("properties", DEPLOYMENT_PROPERTIES),
]);

/// A deployment PATCH body (`PatchResourceTagsAndSku`): the SKU's name may be left out.
pub(crate) const DEPLOYMENT_PATCH: Shape = Shape::Object(&[
    opt(
        "sku",
        Shape::Object(&[opt("name", Shape::String), opt("capacity", Shape::Integer)]),
    ),
    opt("tags", Shape::MapOf(&Shape::String)),
]);

/// Parses a request body that must be a JSON object.
pub(crate) fn parse_object(body: &[u8]) -> Result<Value, ArmError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ArmError::invalid_content(
            "The request content was empty.".to_string(),
            None,
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        ArmError::invalid_content(
            format!("The request content was invalid and could not be deserialized: '{error}'."),
            None,
        )
    })?;
    if !value.is_object() {
        return Err(ArmError::invalid_content(
            "The request content was invalid and could not be deserialized: expected a JSON object.".to_string(),
            None,
        ));
    }
    Ok(value)
}

/// Checks `value` against `shape` and returns what the emulator keeps of it. `null` object
/// members are kept as `null` (PATCH uses them to remove a property); callers strip them.
pub(crate) fn sanitize(value: &Value, shape: &Shape, path: &str) -> Result<Value, ArmError> {
    match shape {
        Shape::String => expect(value.is_string(), value, path, "a string"),
        Shape::Boolean => expect(value.is_boolean(), value, path, "a boolean"),
        Shape::Integer => expect(value.is_i64() || value.is_u64(), value, path, "an integer"),
        Shape::Number => expect(value.is_number(), value, path, "a number"),
        Shape::Enum(allowed) => sanitize_enum(value, allowed, path),
        Shape::Object(fields) => sanitize_object(value, fields, false, path),
        Shape::OpenObject(fields) => sanitize_object(value, fields, true, path),
        Shape::ArrayOf(item) => sanitize_array(value, item, path),
        Shape::MapOf(item) => sanitize_map(value, item, path),
        Shape::OneOrMany(item) if value.is_array() => sanitize_array(value, item, path),
        Shape::OneOrMany(item) => sanitize(value, item, path),
    }
}

fn expect(ok: bool, value: &Value, path: &str, expected: &str) -> Result<Value, ArmError> {
    if ok {
        return Ok(value.clone());
    }
    Err(ArmError::invalid_content(
        format!(
            "The request content was invalid and could not be deserialized: the value of '{path}' must be {expected}, not {}.",
            json_type(value)
        ),
        Some(path),
    ))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn sanitize_enum(value: &Value, allowed: &[&'static str], path: &str) -> Result<Value, ArmError> {
    let Some(text) = value.as_str() else {
        return expect(false, value, path, "a string");
    };
    match allowed
        .iter()
        .find(|candidate| candidate.eq_ignore_ascii_case(text))
    {
        Some(canonical) => Ok(Value::String(canonical.to_string())),
        None => Err(ArmError::bad_request(
            format!(
                "The value '{text}' is not valid for property '{path}'. Allowed values are: {}.",
                allowed.join(", ")
            ),
            path,
        )),
    }
}

fn sanitize_object(
    value: &Value,
    fields: &[Field],
    keep_unknown: bool,
    path: &str,
) -> Result<Value, ArmError> {
    let Some(object) = value.as_object() else {
        return expect(false, value, path, "an object");
    };
    let mut kept = Map::new();
    for field in fields {
        let field_path = join(path, field.name);
        match object.get(field.name) {
            None | Some(Value::Null) if field.required => {
                return Err(ArmError::bad_request(
                    format!("The '{field_path}' property is required."),
                    &field_path,
                ));
            }
            None => {}
            Some(Value::Null) => {
                kept.insert(field.name.to_string(), Value::Null);
            }
            Some(member) => {
                kept.insert(
                    field.name.to_string(),
                    sanitize(member, &field.shape, &field_path)?,
                );
            }
        }
    }
    if keep_unknown {
        for (key, member) in object {
            if !fields.iter().any(|field| field.name == key) {
                kept.insert(key.clone(), member.clone());
            }
        }
    }
    Ok(Value::Object(kept))
}

fn sanitize_array(value: &Value, item: &Shape, path: &str) -> Result<Value, ArmError> {
    let Some(items) = value.as_array() else {
        return expect(false, value, path, "an array");
    };
    let sanitized = items
        .iter()
        .enumerate()
        .map(|(index, member)| sanitize(member, item, &format!("{path}[{index}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Array(sanitized))
}

fn sanitize_map(value: &Value, item: &Shape, path: &str) -> Result<Value, ArmError> {
    let Some(object) = value.as_object() else {
        return expect(false, value, path, "an object");
    };
    let mut kept = Map::new();
    for (key, member) in object {
        kept.insert(key.clone(), sanitize(member, item, &join(path, key))?);
    }
    Ok(Value::Object(kept))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Removes `null` members at every depth (a stored body never holds `null`).
pub(crate) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(object) => {
            object.retain(|_, member| !member.is_null());
            object.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drops_unknown_and_read_only_properties() {
        let body = json!({"location": "westus", "etag": "x", "properties": {"endpoint": "e", "disableLocalAuth": true}});
        let kept = sanitize(&body, &ACCOUNT, "").unwrap();
        assert_eq!(
            kept,
            json!({"location": "westus", "properties": {"disableLocalAuth": true}})
        );
    }

    #[test]
    fn names_the_field_of_a_bad_enum_value() {
        let body = json!({"properties": {"networkAcls": {"defaultAction": "Maybe"}}});
        let error = sanitize(&body, &ACCOUNT, "").unwrap_err();
        assert_eq!(error.target(), Some("properties.networkAcls.defaultAction"));
        assert!(
            error
                .to_string()
                .contains("properties.networkAcls.defaultAction")
        );
    }

    #[test]
    fn names_the_field_of_a_wrong_type() {
        let body = json!({"properties": {"networkAcls": {"ipRules": [{"value": 1}]}}});
        let error = sanitize(&body, &ACCOUNT, "").unwrap_err();
        assert_eq!(error.code(), "InvalidRequestContent");
        assert_eq!(
            error.target(),
            Some("properties.networkAcls.ipRules[0].value")
        );
    }

    #[test]
    fn network_injections_are_one_object_or_an_array_of_them() {
        let entry = json!({"scenario": "agent", "subnetArmId": "/x", "extra": 1});
        let shape = &ACCOUNT_PROPERTIES_SINCE_2025_06_01;
        for sent in [json!([entry.clone()]), entry.clone()] {
            let body = json!({"networkInjections": sent.clone()});
            assert_eq!(sanitize(&body, shape, "properties").unwrap(), body);
        }
        let wrong = json!({"networkInjections": [{"useMicrosoftManagedNetwork": "yes"}]});
        let error = sanitize(&wrong, shape, "properties").unwrap_err();
        assert_eq!(
            error.target(),
            Some("properties.networkInjections[0].useMicrosoftManagedNetwork")
        );
    }

    #[test]
    fn api_versions_from_2025_06_01_on_have_its_shapes() {
        assert_eq!(ApiShape::of("2024-10-01"), ApiShape::V2024_10_01);
        assert_eq!(ApiShape::of("2017-04-18"), ApiShape::V2024_10_01);
        assert!(ApiShape::of("2025-06-01").has_2025_06_01_properties());
        assert!(ApiShape::of("2026-09-01").has_2025_06_01_properties());
    }

    #[test]
    fn canonicalises_enum_casing() {
        let kept = sanitize(&json!({"type": "systemassigned"}), &IDENTITY, "identity").unwrap();
        assert_eq!(kept, json!({"type": "SystemAssigned"}));
    }
}
