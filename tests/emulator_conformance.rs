//! Replays every official 2024-10-01 example against the emulator and validates each response
//! body against the swagger (cognitiveservices.json), plus the keys the example's response has.

use std::path::{Path, PathBuf};

use arm_emulator::{Emulator, EmulatorConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

fn spec_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/azure-spec/2024-10-01");
    assert!(
        dir.join("cognitiveservices.json").is_file() && dir.join("examples").is_dir(),
        "the Azure contract is missing: expected cognitiveservices.json and examples/ in {}",
        dir.display()
    );
    dir
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("parse {}: {error}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Swagger validator
// ---------------------------------------------------------------------------------------------

/// Which document a `$ref` resolves in.
#[derive(Clone, Copy, Debug)]
enum Doc {
    Provider,
    Common,
}

struct Swagger {
    provider: Value,
    common: Value,
}

/// The object view of a schema once `allOf` and `$ref`s are merged.
#[derive(Default)]
struct ObjectShape<'a> {
    properties: Vec<(String, Doc, &'a Value)>,
    required: Vec<String>,
    additional: Option<(Doc, &'a Value)>,
}

impl Swagger {
    fn load(dir: &Path) -> Self {
        Self {
            provider: read_json(&dir.join("cognitiveservices.json")),
            common: common_types(),
        }
    }

    fn doc(&self, doc: Doc) -> &Value {
        match doc {
            Doc::Provider => &self.provider,
            Doc::Common => &self.common,
        }
    }

    /// Resolves a local (`#/...`) or common-types (`../types.json#/...`) reference.
    fn resolve(&self, from: Doc, reference: &str) -> (Doc, &Value) {
        let (file, pointer) = reference
            .split_once('#')
            .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
        let doc = if file.is_empty() {
            from
        } else if file.ends_with("cognitiveservices.json") {
            Doc::Provider
        } else {
            Doc::Common
        };
        let target = self
            .doc(doc)
            .pointer(pointer)
            .unwrap_or_else(|| panic!("unresolved $ref {reference}"));
        (doc, target)
    }

    fn definition(&self, name: &str) -> (Doc, &Value) {
        self.resolve(Doc::Provider, &format!("#/definitions/{name}"))
    }

    /// Errors of `value` against `schema`, each naming the JSON path.
    fn validate(
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

/// The ARM async status document (not part of the provider's swagger).
fn operation_status_schema() -> Value {
    json!({"type": "object", "required": ["id", "name", "status", "startTime"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "status": {"type": "string", "enum": ["InProgress", "Succeeded", "Failed", "Canceled"]},
        "startTime": {"type": "string", "format": "date-time"},
        "endTime": {"type": "string", "format": "date-time"},
        "error": {"$ref": "#/definitions/ErrorDetail"}
    }})
}

fn assert_valid(swagger: &Swagger, doc: Doc, schema: &Value, value: &Value, context: &str) {
    let mut errors = Vec::new();
    swagger.validate(doc, schema, value, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{context}: response does not match the swagger:\n{}\nbody: {value:#}",
        errors.join("\n")
    );
}

/// Every key of `expected` (recursively through objects and arrays) is present in `actual`.
fn assert_has_keys(expected: &Value, actual: &Value, path: &str, context: &str) {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, value) in expected {
                let member = actual.get(key).unwrap_or_else(|| {
                    panic!("{context}: response lacks '{path}.{key}' that the example has")
                });
                assert_has_keys(value, member, &format!("{path}.{key}"), context);
            }
        }
        (Value::Array(expected), Value::Array(actual)) => {
            for (index, item) in expected.iter().enumerate() {
                let counterpart = match item.get("name") {
                    Some(name) => actual
                        .iter()
                        .find(|candidate| candidate.get("name") == Some(name)),
                    None => actual.get(index),
                };
                let counterpart = counterpart.unwrap_or_else(|| {
                    panic!("{context}: response lacks item {path}[{index}] = {item}")
                });
                assert_has_keys(item, counterpart, &format!("{path}[{index}]"), context);
            }
        }
        (Value::Object(_), other) | (Value::Array(_), other) => {
            panic!("{context}: '{path}' should be like {expected}, got {other}")
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Example replay
// ---------------------------------------------------------------------------------------------

/// The operation an example belongs to, found through the swagger's `x-ms-examples`.
struct Operation<'a> {
    id: String,
    method: Method,
    path_template: String,
    definition: &'a Value,
}

fn operation_for<'a>(swagger: &'a Swagger, example_file: &str) -> Operation<'a> {
    let reference = format!("./examples/{example_file}");
    let paths = swagger.provider["paths"]
        .as_object()
        .expect("swagger paths");
    for (path_template, methods) in paths {
        for (method, definition) in methods.as_object().into_iter().flatten() {
            let examples = definition.get("x-ms-examples").and_then(Value::as_object);
            if examples
                .into_iter()
                .flatten()
                .any(|(_, example)| example["$ref"] == reference)
            {
                return Operation {
                    id: definition["operationId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    method: method.to_uppercase().parse().expect("HTTP method"),
                    path_template: path_template.clone(),
                    definition,
                };
            }
        }
    }
    panic!("no operation of the swagger references {reference}");
}

impl Operation<'_> {
    fn url(&self, base: &str, parameters: &Value) -> String {
        let mut path = self.path_template.clone();
        for (name, value) in parameters.as_object().into_iter().flatten() {
            if let Some(value) = value.as_str() {
                path = path.replace(&format!("{{{name}}}"), value);
            }
        }
        assert!(
            !path.contains('{'),
            "{}: unfilled path parameter in {path}",
            self.id
        );
        format!(
            "{base}{path}?api-version={}",
            parameters["api-version"].as_str().expect("api-version")
        )
    }

    /// The example's request body (the operation's `in: body` parameter).
    fn body<'p>(&self, swagger: &Swagger, parameters: &'p Value) -> Option<&'p Value> {
        let declared = self.definition["parameters"].as_array()?;
        declared.iter().find_map(|parameter| {
            let parameter = match parameter.get("$ref").and_then(Value::as_str) {
                Some(reference) if reference.starts_with('#') => {
                    swagger.resolve(Doc::Provider, reference).1
                }
                Some(_) => return None,
                None => parameter,
            };
            let name = parameter["name"].as_str()?;
            (parameter["in"] == "body").then(|| &parameters[name])
        })
    }

    fn response_schema(&self, status: StatusCode) -> Option<&Value> {
        self.definition["responses"]
            .get(status.as_str())?
            .get("schema")
    }

    fn is_long_running(&self) -> bool {
        self.definition["x-ms-long-running-operation"] == true
    }
}

/// `/subscriptions/{s}/resourceGroups/{rg}/providers/.../accounts/{name}` → (s, rg, name).
fn parse_account_id(id: &str) -> (String, String, String) {
    let segments: Vec<&str> = id.split('/').collect();
    (
        segments[2].to_string(),
        segments[4].to_string(),
        segments[8].to_string(),
    )
}

fn default_account(location: &str) -> Value {
    json!({"location": location, "kind": "Emotion", "sku": {"name": "S0"}, "properties": {}})
}

/// The first success body the example shows, if any.
fn example_success_body(example: &Value) -> Option<&Value> {
    let responses = example["responses"].as_object()?;
    ["200", "201", "202"]
        .iter()
        .find_map(|status| responses.get(*status)?.get("body"))
}

/// Puts into the emulator what the example's request presupposes.
fn seed_for(emulator: &Emulator, operation: &Operation, example: &Value) {
    let parameters = &example["parameters"];
    let text = |name: &str| parameters[name].as_str().unwrap_or_default().to_string();
    let (subscription, group, name) = (
        text("subscriptionId"),
        text("resourceGroupName"),
        text("accountName"),
    );
    let shown = example_success_body(example)
        .filter(|body| body.get("kind").is_some())
        .cloned();
    match operation.id.as_str() {
        "Accounts_Create" => emulator.seed_resource_group(&subscription, &group, "westus"),
        "Accounts_ListByResourceGroup" | "Accounts_List" => {
            emulator.seed_resource_group(&subscription, &group, "westus");
            let listed = example_success_body(example)
                .and_then(|body| body["value"].as_array())
                .expect("listed accounts");
            for account in listed {
                let (subscription, group, name) =
                    parse_account_id(account["id"].as_str().expect("id"));
                emulator.seed_account(&subscription, &group, &name, account.clone());
            }
        }
        "DeletedAccounts_Get" | "DeletedAccounts_Purge" => {
            let mut account = shown.unwrap_or_else(|| default_account(&text("location")));
            account["location"] = json!(text("location"));
            emulator.seed_deleted_account(&subscription, &group, &name, account);
        }
        "CheckDomainAvailability" => {
            let asked = &parameters["parameters"];
            let example_says_taken = example_success_body(example)
                .is_some_and(|body| body["isSubdomainAvailable"] == false);
            if example_says_taken {
                let mut account = default_account("westus");
                account["properties"]["customSubDomainName"] = asked["subdomainName"].clone();
                emulator.seed_account(&subscription, "taken-by", "owner", account);
            }
        }
        "Accounts_Update" => {
            // Seed a different SKU than the example sets, so the PATCH is a real (long-running) change.
            let mut account = shown.unwrap_or_else(|| default_account("westus"));
            let requested = operation_request_sku(example);
            account["sku"] = json!({"name": if requested == "S0" { "F0" } else { "S0" }});
            emulator.seed_account(&subscription, &group, &name, account);
        }
        _ => {
            let account = shown.unwrap_or_else(|| default_account("westus"));
            emulator.seed_account(&subscription, &group, &name, account);
        }
    }
}

fn operation_request_sku(example: &Value) -> String {
    example["parameters"]["account"]["sku"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

struct Replay {
    emulator: Emulator,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Replay {
    async fn start() -> Self {
        cognitive_operator::install_crypto_provider();
        let config = EmulatorConfig {
            retry_after_secs: 0,
            ..EmulatorConfig::default()
        };
        Self {
            emulator: Emulator::start(config).await.expect("emulator starts"),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: Method, url: &str, body: Option<&Value>) -> Answer {
        let mut request = self.http.request(method, url).bearer_auth("conformance");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request is answered");
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        Answer {
            status,
            headers,
            body,
        }
    }
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

async fn replay_example(swagger: &Swagger, file: &str, example: &Value) {
    let operation = operation_for(swagger, file);
    let context = format!("{file} ({})", operation.id);
    let replay = Replay::start().await;
    seed_for(&replay.emulator, &operation, example);
    let parameters = &example["parameters"];
    let url = operation.url(&replay.emulator.base_url(), parameters);
    let answer = replay
        .send(
            operation.method.clone(),
            &url,
            operation.body(swagger, parameters),
        )
        .await;

    let responses = example["responses"].as_object().expect("example responses");
    assert!(
        responses.contains_key(answer.status.as_str()),
        "{context}: status {} is not one the example lists ({:?}); body {}",
        answer.status,
        responses.keys().collect::<Vec<_>>(),
        answer.body
    );
    eprintln!("{context}: {} {}", operation.method, answer.status);
    let shown = &responses[answer.status.as_str()];
    check_response(swagger, &operation, &answer, shown.get("body"), &context);
    for name in shown
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, _)| name)
    {
        assert!(
            answer
                .headers
                .contains_key(name.to_ascii_lowercase().as_str()),
            "{context}: header {name} missing"
        );
    }
    if operation.is_long_running() && header(&answer, "azure-asyncoperation").is_some() {
        finish_operation(swagger, &replay, &operation, &answer, example, &context).await;
    }
}

fn check_response(
    swagger: &Swagger,
    operation: &Operation,
    answer: &Answer,
    shown: Option<&Value>,
    context: &str,
) {
    match operation.response_schema(answer.status) {
        Some(schema) => assert_valid(swagger, Doc::Provider, schema, &answer.body, context),
        None => assert!(
            answer.body.is_null(),
            "{context}: status {} has no body in the contract",
            answer.status
        ),
    }
    if let Some(shown) = shown {
        assert_has_keys(shown, &answer.body, "$", context);
    }
}

/// Polls the async-operation URL to success, then reads the Location URL's final answer.
async fn finish_operation(
    swagger: &Swagger,
    replay: &Replay,
    operation: &Operation<'_>,
    started: &Answer,
    example: &Value,
    context: &str,
) {
    let status_url = header(started, "azure-asyncoperation")
        .expect("Azure-AsyncOperation")
        .to_string();
    let mut status = Value::Null;
    for _ in 0..10 {
        let polled = replay.send(Method::GET, &status_url, None).await;
        assert_eq!(polled.status, StatusCode::OK, "{context}: status poll");
        assert_valid(
            swagger,
            Doc::Common,
            &operation_status_schema(),
            &polled.body,
            context,
        );
        status = polled.body;
        if status["status"] != "InProgress" {
            break;
        }
    }
    assert_eq!(
        status["status"], "Succeeded",
        "{context}: operation did not succeed: {status}"
    );
    let location = header(started, "location")
        .expect("Location header")
        .to_string();
    let done = replay.send(Method::GET, &location, None).await;
    let responses = example["responses"].as_object().expect("example responses");
    assert!(
        responses.contains_key(done.status.as_str()),
        "{context}: final status {}",
        done.status
    );
    check_response(
        swagger,
        operation,
        &done,
        responses[done.status.as_str()].get("body"),
        context,
    );
    if operation.definition["responses"]
        .get("200")
        .and_then(|ok| ok.get("schema"))
        .is_some()
    {
        assert_eq!(
            done.status,
            StatusCode::OK,
            "{context}: a finished create/update answers the resource"
        );
        assert_eq!(done.body["properties"]["provisioningState"], "Succeeded");
    }
}

#[tokio::test]
async fn every_official_example_replays_against_the_emulator() {
    let dir = spec_dir();
    let swagger = Swagger::load(&dir);
    let mut files: Vec<String> = std::fs::read_dir(dir.join("examples"))
        .expect("examples folder")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 13,
        "expected the 13 examples of the contract, found {files:?}"
    );
    for file in &files {
        let example = read_json(&dir.join("examples").join(file));
        replay_example(&swagger, file, &example).await;
    }
}

#[tokio::test]
async fn deleted_accounts_list_and_errors_match_the_contract() {
    let swagger = Swagger::load(&spec_dir());
    let replay = Replay::start().await;
    let (subscription, group) = ("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", "myResourceGroup");
    replay
        .emulator
        .seed_resource_group(subscription, group, "westus");
    replay
        .emulator
        .seed_deleted_account(subscription, group, "gone", default_account("westus"));
    let base = format!(
        "{}/subscriptions/{subscription}",
        replay.emulator.base_url()
    );

    let listed = replay
        .send(Method::GET, &format!("{base}/providers/Microsoft.CognitiveServices/deletedAccounts?api-version=2024-10-01"), None)
        .await;
    let (doc, schema) = swagger.definition("AccountListResult");
    assert_valid(&swagger, doc, schema, &listed.body, "DeletedAccounts_List");
    assert_eq!(
        listed.body["value"][0]["id"],
        format!(
            "/subscriptions/{subscription}/providers/Microsoft.CognitiveServices/locations/westus/resourceGroups/{group}/deletedAccounts/gone"
        )
    );

    let account =
        format!("{base}/resourceGroups/{group}/providers/Microsoft.CognitiveServices/accounts");
    let errors = [
        replay
            .send(
                Method::GET,
                &format!("{account}/missing?api-version=2024-10-01"),
                None,
            )
            .await,
        replay
            .send(Method::GET, &format!("{account}/missing"), None)
            .await,
        replay
            .send(
                Method::PUT,
                &format!("{account}/gone?api-version=2024-10-01"),
                Some(&default_account("westus")),
            )
            .await,
        replay
            .send(
                Method::PUT,
                &format!("{account}/x?api-version=2024-10-01"),
                Some(&json!({"kind": "Face"})),
            )
            .await,
    ];
    let (doc, schema) = swagger.resolve(Doc::Common, "#/definitions/ErrorResponse");
    for error in errors {
        assert!(error.status.is_client_error());
        assert_valid(&swagger, doc, schema, &error.body, "ErrorResponse");
        assert!(
            error.body["error"]["code"].is_string() && error.body["error"]["message"].is_string()
        );
    }
}

#[test]
fn the_validator_rejects_what_the_contract_forbids() {
    let swagger = Swagger::load(&spec_dir());
    let (doc, schema) = swagger.definition("Account");
    let mut errors = Vec::new();
    let bad = json!({
        "id": "x", "sku": {"tier": "Gold"}, "undeclared": 1,
        "properties": {"publicNetworkAccess": "Maybe", "isMigrated": "no"},
        "systemData": {"createdAt": "yesterday"}
    });
    swagger.validate(doc, schema, &bad, "$", &mut errors);
    let expected = [
        "$.undeclared",
        "$.sku: required property 'name'",
        "$.sku.tier",
        "$.properties.publicNetworkAccess",
        "$.properties.isMigrated",
        "$.systemData.createdAt",
    ];
    for fragment in expected {
        assert!(
            errors.iter().any(|error| error.starts_with(fragment)),
            "no error for {fragment}: {errors:#?}"
        );
    }
}
