//! Replays every official 2024-10-01 example against the emulator and validates each response
//! body against the swagger (cognitiveservices.json), plus the keys the example's response has.

mod support;

use arm_emulator::{Emulator, EmulatorConfig, Profile};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::contract::{Doc, Swagger, read_json, spec_dir};
use support::http::{Answer, Harness};

// ---------------------------------------------------------------------------------------------
// What the examples show beyond the swagger
// ---------------------------------------------------------------------------------------------

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

/// The emulator an example is replayed against: throttling as by default, no Retry-After wait,
/// the contract's long-running forms (the examples show Location URLs).
async fn replay_harness() -> Harness {
    Harness::with(EmulatorConfig {
        retry_after_secs: 0,
        profile: Profile::LongRunning,
        ..EmulatorConfig::default()
    })
    .await
}

async fn replay_example(swagger: &Swagger, file: &str, example: &Value) {
    let operation = operation_for(swagger, file);
    let context = format!("{file} ({})", operation.id);
    let replay = replay_harness().await;
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
    if operation.is_long_running() && answer.header("azure-asyncoperation").is_some() {
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
        Some(schema) => swagger.assert_schema(Doc::Provider, schema, &answer.body, context),
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
    replay: &Harness,
    operation: &Operation<'_>,
    started: &Answer,
    example: &Value,
    context: &str,
) {
    let status_url = started
        .header("azure-asyncoperation")
        .expect("Azure-AsyncOperation")
        .to_string();
    let mut status = Value::Null;
    for _ in 0..10 {
        let polled = replay.send(Method::GET, &status_url, None).await;
        assert_eq!(polled.status, StatusCode::OK, "{context}: status poll");
        swagger.assert_schema(
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
    let location = started
        .header("location")
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
    let replay = replay_harness().await;
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
    swagger.assert_schema(doc, schema, &listed.body, "DeletedAccounts_List");
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
        swagger.assert_schema(doc, schema, &error.body, "ErrorResponse");
        assert!(
            error.body["error"]["code"].is_string() && error.body["error"]["message"].is_string()
        );
    }
}

#[tokio::test]
async fn account_usages_match_the_contract() {
    let swagger = Swagger::load(&spec_dir());
    let operation = swagger.provider["paths"]
        .as_object()
        .expect("swagger paths")
        .iter()
        .find_map(|(_, methods)| {
            methods
                .get("get")
                .filter(|get| get["operationId"] == "Accounts_ListUsages")
        })
        .expect("Accounts_ListUsages in the swagger");
    assert!(
        operation.get("x-ms-pageable").is_none(),
        "the contract's account usages are not pageable"
    );
    let replay = replay_harness().await;
    let (subscription, group) = ("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", "myResourceGroup");
    let mut account = default_account("westus");
    account["kind"] = json!("OpenAI");
    replay
        .emulator
        .seed_account(subscription, group, "myAccount", account);
    replay.emulator.seed_deployment(
        subscription,
        group,
        "myAccount",
        "chat",
        json!({"sku": {"name": "Standard", "capacity": 3},
            "properties": {"model": {"format": "OpenAI", "name": "gpt-4o"}}}),
    );
    let url = format!(
        "{}/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.CognitiveServices/accounts/myAccount/usages?api-version=2024-10-01",
        replay.emulator.base_url()
    );
    let usages = replay.send(Method::GET, &url, None).await;
    assert_eq!(usages.status, StatusCode::OK, "{}", usages.body);
    let (doc, schema) = swagger.definition("UsageListResult");
    swagger.assert_schema(doc, schema, &usages.body, "Accounts_ListUsages");
    assert!(
        usages.body["value"]
            .as_array()
            .is_some_and(|value| value.iter().any(|usage| usage["currentValue"] == 3))
    );
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
