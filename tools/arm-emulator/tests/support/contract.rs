//! The Azure contract the emulator answers to: `spec/azure-spec/2024-10-01` and a small Swagger
//! validator for it, strict about properties the contract does not declare.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// The 2024-10-01 contract: `cognitiveservices.json` and the official `examples/`.
pub fn spec_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/azure-spec/2024-10-01");
    assert!(
        dir.join("cognitiveservices.json").is_file() && dir.join("examples").is_dir(),
        "the Azure contract is missing: expected cognitiveservices.json and examples/ in {}",
        dir.display()
    );
    dir
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("parse {}: {error}", path.display()))
}

/// Which document a `$ref` resolves in.
#[derive(Clone, Copy, Debug)]
pub enum Doc {
    Provider,
    Common,
}

pub struct Swagger {
    pub provider: Value,
    pub common: Value,
}

/// The object view of a schema once `allOf` and `$ref`s are merged.
#[derive(Default)]
struct ObjectShape<'a> {
    properties: Vec<(String, Doc, &'a Value)>,
    required: Vec<String>,
    additional: Option<(Doc, &'a Value)>,
}

impl Swagger {
    pub fn load(dir: &Path) -> Self {
        Self {
            provider: read_json(&dir.join("cognitiveservices.json")),
            common: common_types(),
        }
    }

    /// Asserts `value` is a valid `definition` of the provider's swagger.
    pub fn assert_valid(&self, definition: &str, value: &Value, context: &str) {
        self.assert_definition(Doc::Provider, definition, value, context);
    }

    /// Asserts `value` is a valid `definition` of the common types (`ErrorResponse`, ...).
    pub fn assert_valid_common(&self, definition: &str, value: &Value, context: &str) {
        self.assert_definition(Doc::Common, definition, value, context);
    }

    fn assert_definition(&self, doc: Doc, definition: &str, value: &Value, context: &str) {
        let schema = json!({"$ref": format!("#/definitions/{definition}")});
        self.assert_schema(doc, &schema, value, &format!("{context} ({definition})"));
    }

    /// Asserts `value` matches `schema`, whose `$ref`s resolve in `doc`.
    pub fn assert_schema(&self, doc: Doc, schema: &Value, value: &Value, context: &str) {
        let mut errors = Vec::new();
        self.validate(doc, schema, value, "$", &mut errors);
        assert!(
            errors.is_empty(),
            "{context}: response does not match the swagger:\n{}\nbody: {value:#}",
            errors.join("\n")
        );
    }

    fn doc(&self, doc: Doc) -> &Value {
        match doc {
            Doc::Provider => &self.provider,
            Doc::Common => &self.common,
        }
    }

    /// Resolves a local (`#/...`) or common-types (`../types.json#/...`) reference.
    pub fn resolve(&self, from: Doc, reference: &str) -> (Doc, &Value) {
        let (file, pointer) = reference
            .split_once('#')
            .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
        let doc = match file {
            "" => from,
            file if file.ends_with("cognitiveservices.json") => Doc::Provider,
            _ => Doc::Common,
        };
        let target = self
            .doc(doc)
            .pointer(pointer)
            .unwrap_or_else(|| panic!("unresolved $ref {reference}"));
        (doc, target)
    }

    pub fn definition(&self, name: &str) -> (Doc, &Value) {
        self.resolve(Doc::Provider, &format!("#/definitions/{name}"))
    }

    /// Errors of `value` against `schema`, each naming the JSON path.
    pub fn validate(
        &self,
        doc: Doc,
        schema: &Value,
        value: &Value,
        path: &str,
        errors: &mut Vec<String>,
    ) {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let (doc, target) = self.resolve(doc, reference);
            return self.validate(doc, target, value, path, errors);
        }
        let object = self.object_shape(doc, schema);
        let declared_type = schema.get("type").and_then(Value::as_str);
        let is_object = declared_type == Some("object")
            || !object.properties.is_empty()
            || object.additional.is_some();
        if let Some(declared) = declared_type.or(is_object.then_some("object"))
            && !has_type(value, declared)
        {
            errors.push(format!("{path}: expected {declared}, got {value}"));
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            errors.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
        if schema.get("format").and_then(Value::as_str) == Some("date-time")
            && value
                .as_str()
                .is_none_or(|text| text.parse::<jiff::Timestamp>().is_err())
        {
            errors.push(format!("{path}: {value} is not a date-time"));
        }
        match value {
            Value::Array(items) => {
                let item_schema = schema.get("items").unwrap_or(&Value::Null);
                for (index, item) in items.iter().enumerate() {
                    self.validate(doc, item_schema, item, &format!("{path}[{index}]"), errors);
                }
            }
            Value::Object(members) if is_object => {
                self.validate_members(&object, members, path, errors)
            }
            _ => {}
        }
    }

    fn validate_members(
        &self,
        shape: &ObjectShape,
        members: &Map<String, Value>,
        path: &str,
        errors: &mut Vec<String>,
    ) {
        for required in &shape.required {
            if !members.contains_key(required) {
                errors.push(format!("{path}: required property '{required}' is missing"));
            }
        }
        for (key, member) in members {
            let member_path = format!("{path}.{key}");
            match shape.properties.iter().find(|(name, _, _)| name == key) {
                Some((_, doc, schema)) => self.validate(*doc, schema, member, &member_path, errors),
                None => match shape.additional {
                    Some((doc, schema)) => self.validate(doc, schema, member, &member_path, errors),
                    // Strict: a property the contract does not declare is a fidelity bug.
                    None => errors.push(format!("{member_path}: not declared by the schema")),
                },
            }
        }
    }

    /// Merges `properties`, `required` and `additionalProperties` over `allOf` and `$ref`s.
    fn object_shape<'a>(&'a self, doc: Doc, schema: &'a Value) -> ObjectShape<'a> {
        let mut shape = ObjectShape::default();
        self.collect_shape(doc, schema, &mut shape);
        shape
    }

    fn collect_shape<'a>(&'a self, doc: Doc, schema: &'a Value, shape: &mut ObjectShape<'a>) {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let (doc, target) = self.resolve(doc, reference);
            return self.collect_shape(doc, target, shape);
        }
        for parent in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.collect_shape(doc, parent, shape);
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                shape.properties.push((name.clone(), doc, property));
            }
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            shape.required.extend(
                required
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string),
            );
        }
        match schema.get("additionalProperties") {
            Some(Value::Bool(true)) => shape.additional = Some((doc, &Value::Null)),
            Some(additional @ Value::Object(_)) => shape.additional = Some((doc, additional)),
            _ => {}
        }
    }
}

fn has_type(value: &Value, declared: &str) -> bool {
    match declared {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unknown swagger type {other}"),
    }
}

/// The standard ARM shapes of `common-types/resource-management/v2` the contract refers to.
fn common_types() -> Value {
    let read_only_string = json!({"type": "string", "readOnly": true});
    let identity_type =
        json!({"type": "string", "enum": ["User", "Application", "ManagedIdentity", "Key"]});
    json!({"definitions": {
        "Resource": {"type": "object", "properties": {
            "id": read_only_string, "name": read_only_string, "type": read_only_string,
            "systemData": {"$ref": "#/definitions/systemData", "readOnly": true}
        }},
        "ProxyResource": {"type": "object", "allOf": [{"$ref": "#/definitions/Resource"}]},
        "AzureEntityResource": {"type": "object", "allOf": [{"$ref": "#/definitions/Resource"}],
            "properties": {"etag": read_only_string}},
        "systemData": {"type": "object", "readOnly": true, "properties": {
            "createdBy": {"type": "string"}, "createdByType": identity_type,
            "createdAt": {"type": "string", "format": "date-time"},
            "lastModifiedBy": {"type": "string"}, "lastModifiedByType": identity_type,
            "lastModifiedAt": {"type": "string", "format": "date-time"}
        }},
        "ErrorResponse": {"type": "object", "properties": {"error": {"$ref": "#/definitions/ErrorDetail"}}},
        "ErrorDetail": {"type": "object", "properties": {
            "code": read_only_string, "message": read_only_string, "target": read_only_string,
            "details": {"type": "array", "items": {"$ref": "#/definitions/ErrorDetail"}},
            "additionalInfo": {"type": "array", "items": {"$ref": "#/definitions/ErrorAdditionalInfo"}}
        }},
        "ErrorAdditionalInfo": {"type": "object", "properties": {
            "type": read_only_string, "info": {"type": "object", "additionalProperties": true}
        }},
        "PrivateEndpoint": {"type": "object", "properties": {"id": read_only_string}},
        "PrivateLinkServiceConnectionState": {"type": "object", "properties": {
            "status": {"type": "string"}, "description": {"type": "string"}, "actionsRequired": {"type": "string"}
        }},
        "PrivateEndpointConnectionProvisioningState": {"type": "string"}
    }})
}
