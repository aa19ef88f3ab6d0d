//! The emulator's Azure semantics, exercised through real HTTP like a client would see them.

mod support;

use std::time::Duration;

use arm_emulator::{
    ArmErrorBody, BucketConfig, EmulatorConfig, Fault, Profile, ResourceGroupSeed, ThrottleConfig,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::http::{API, Answer, Harness};

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const OTHER_SUB: &str = "00000000-0000-0000-0000-000000000002";
const RG: &str = "rg-one";

fn config() -> EmulatorConfig {
    EmulatorConfig {
        resource_groups: vec![
            ResourceGroupSeed {
                subscription_id: SUB.into(),
                name: RG.into(),
                location: "westus".into(),
            },
            ResourceGroupSeed {
                subscription_id: SUB.into(),
                name: "rg-two".into(),
                location: "eastus".into(),
            },
            ResourceGroupSeed {
                subscription_id: OTHER_SUB.into(),
                name: RG.into(),
                location: "westus".into(),
            },
        ],
        retry_after_secs: 0,
        // The behaviours here are those of the contract's long-running forms (tests/recorded.rs
        // covers the recorded ones).
        profile: Profile::LongRunning,
        ..EmulatorConfig::default()
    }
}

fn account_path(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{name}"
    )
}

fn deleted_path(sub: &str, location: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/providers/Microsoft.CognitiveServices/locations/{location}/resourceGroups/{rg}/deletedAccounts/{name}"
    )
}

fn account_body(kind: &str, subdomain: Option<&str>) -> Value {
    let mut body =
        json!({"location": "westus", "kind": kind, "sku": {"name": "S0"}, "properties": {}});
    if let Some(subdomain) = subdomain {
        body["properties"]["customSubDomainName"] = json!(subdomain);
    }
    body
}

impl Harness {
    async fn start() -> Self {
        Self::with(config()).await
    }

    async fn create(&self, name: &str, body: &Value) -> Answer {
        let created = self
            .call(Method::PUT, &account_path(SUB, RG, name), Some(body))
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "create {name}: {}",
            created.body
        );
        assert_eq!(self.finish(&created).await["status"], "Succeeded");
        self.get(&account_path(SUB, RG, name)).await
    }

    async fn delete(&self, name: &str) {
        let deleted = self
            .call(Method::DELETE, &account_path(SUB, RG, name), None)
            .await;
        assert_eq!(deleted.status, StatusCode::ACCEPTED);
        assert_eq!(self.finish(&deleted).await["status"], "Succeeded");
    }
}

#[tokio::test]
async fn unknown_resource_group_answers_resource_group_not_found() {
    let harness = Harness::start().await;
    let answer = harness.get(&account_path(SUB, "nope", "acct")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error_code(), "ResourceGroupNotFound");
    assert_eq!(
        answer.error_message(),
        "Resource group 'nope' could not be found."
    );
    let put = harness
        .call(
            Method::PUT,
            &account_path(SUB, "nope", "acct"),
            Some(&account_body("Face", None)),
        )
        .await;
    assert_eq!(put.error_code(), "ResourceGroupNotFound");

    harness.emulator.seed_resource_group(SUB, "nope", "westus");
    assert_eq!(
        harness
            .get(&account_path(SUB, "nope", "acct"))
            .await
            .error_code(),
        "ResourceNotFound"
    );
}

#[tokio::test]
async fn missing_account_answers_resource_not_found() {
    let harness = Harness::start().await;
    let answer = harness.get(&account_path(SUB, RG, "ghost")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error_code(), "ResourceNotFound");
    assert_eq!(
        answer.error_message(),
        "The Resource 'Microsoft.CognitiveServices/accounts/ghost' under resource group 'rg-one' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    );
    // As recorded: ARM's front door answers it.
    assert_eq!(answer.header("x-ms-failure-cause"), Some("gateway"));
    let patch = harness
        .call(
            Method::PATCH,
            &account_path(SUB, RG, "ghost"),
            Some(&json!({"tags": {}})),
        )
        .await;
    assert_eq!(patch.error_code(), "ResourceNotFound");
    let keys = harness
        .call(
            Method::POST,
            &format!("{}/listKeys", account_path(SUB, RG, "ghost")),
            None,
        )
        .await;
    assert_eq!(keys.error_code(), "ResourceNotFound");
}

#[tokio::test]
async fn api_version_must_be_present_and_stable() {
    let harness = Harness::start().await;
    let base = format!(
        "{}{}",
        harness.emulator.base_url(),
        account_path(SUB, RG, "acct")
    );
    let missing = harness.get_url(&base).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.error_code(), "MissingApiVersionParameter");
    for version in ["2024-10-01-preview", "2015-01-01", "2027-01-01", "banana"] {
        let answer = harness
            .get_url(&format!("{base}?api-version={version}"))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{version}");
        assert_eq!(
            answer.error_code(),
            "InvalidApiVersionParameter",
            "{version}"
        );
    }
    for version in ["2021-04-30", "2023-05-01", "2025-06-01", "2026-09-01"] {
        let answer = harness
            .get_url(&format!("{base}?api-version={version}"))
            .await;
        assert_eq!(
            answer.error_code(),
            "ResourceNotFound",
            "{version} is accepted"
        );
    }
}

#[tokio::test]
async fn requests_need_a_bearer_token_and_the_required_one_when_set() {
    let harness = Harness::start().await;
    let url = harness.url(&account_path(SUB, RG, "acct"));
    for auth in [None, Some("Basic abc"), Some("Bearer "), Some("Bearer")] {
        let answer = harness.raw(Method::GET, &url, None, auth).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(answer.error_code(), "AuthenticationFailed");
    }
    assert_eq!(
        harness
            .raw(Method::GET, &url, None, Some("bearer any"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    harness.emulator.require_token(Some("secret".into()));
    assert_eq!(
        harness
            .raw(Method::GET, &url, None, Some("Bearer other"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        harness
            .raw(Method::GET, &url, None, Some("Bearer secret"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    harness.emulator.require_token(None);
    assert_eq!(
        harness
            .raw(Method::GET, &url, None, Some("Bearer other"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn account_names_follow_the_contract_rule() {
    let harness = Harness::start().await;
    let long = "a".repeat(65);
    for name in ["a", "-leading", "_x", "has!bang", long.as_str()] {
        let answer = harness
            .call(
                Method::PUT,
                &account_path(SUB, RG, name),
                Some(&account_body("Face", None)),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(answer.error_code(), "InvalidResourceName");
        assert!(
            answer.error_message().contains(name),
            "message names '{name}': {}",
            answer.error_message()
        );
    }
    let fine = harness
        .call(
            Method::PUT,
            &account_path(SUB, RG, "ok.name_1-x"),
            Some(&account_body("Face", None)),
        )
        .await;
    assert_eq!(fine.status, StatusCode::CREATED);
}

#[tokio::test]
async fn invalid_bodies_are_refused_naming_the_field() {
    let harness = Harness::start().await;
    let path = account_path(SUB, RG, "acct");
    let cases = [
        (json!({"kind": "Face", "sku": {"name": "S0"}}), "location"),
        (json!({"location": "westus", "sku": {"name": "S0"}}), "kind"),
        (json!({"location": "westus", "kind": "Face"}), "sku"),
        (
            json!({"location": "westus", "kind": "Face", "sku": {}}),
            "sku.name",
        ),
        (
            json!({"location": "westus", "kind": "Face", "sku": {"name": "S0", "tier": "Gold"}}),
            "sku.tier",
        ),
        (
            with_property("publicNetworkAccess", json!("Maybe")),
            "properties.publicNetworkAccess",
        ),
        (
            with_property("networkAcls", json!({"defaultAction": "Perhaps"})),
            "properties.networkAcls.defaultAction",
        ),
        (
            with_property("networkAcls", json!({"bypass": "Everything"})),
            "properties.networkAcls.bypass",
        ),
        (
            with_property("encryption", json!({"keySource": "Vault"})),
            "properties.encryption.keySource",
        ),
        (
            with_property("disableLocalAuth", json!("yes")),
            "properties.disableLocalAuth",
        ),
        (
            with_property("allowedFqdnList", json!("a.com")),
            "properties.allowedFqdnList",
        ),
        (
            json!({"location": "westus", "kind": "Face", "sku": {"name": "S0"}, "identity": {"type": "Both"}}),
            "identity.type",
        ),
        (
            json!({"location": 7, "kind": "Face", "sku": {"name": "S0"}}),
            "location",
        ),
    ];
    for (body, field) in cases {
        let answer = harness.call(Method::PUT, &path, Some(&body)).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{field}: {}",
            answer.body
        );
        assert_eq!(answer.body["error"]["target"], field, "{}", answer.body);
        assert!(
            answer.error_message().contains(field),
            "message names {field}: {}",
            answer.error_message()
        );
    }

    let malformed = harness
        .http
        .put(harness.url(&path))
        .header("Authorization", "Bearer t")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidRequestContent");

    harness.create("acct", &account_body("Face", None)).await;
    let regenerate = format!("{path}/regenerateKey");
    let bad_key = harness
        .call(Method::POST, &regenerate, Some(&json!({"keyName": "Key3"})))
        .await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_key.body["error"]["target"], "keyName");
    let no_key = harness
        .call(Method::POST, &regenerate, Some(&json!({})))
        .await;
    assert_eq!(no_key.body["error"]["target"], "keyName");
}

fn with_property(name: &str, value: Value) -> Value {
    let mut body = account_body("Face", None);
    body["properties"][name] = value;
    body
}

#[tokio::test]
async fn create_runs_as_a_long_running_operation() {
    let harness = Harness::start().await;
    let path = account_path(SUB, RG, "acct");
    let created = harness
        .call(
            Method::PUT,
            &path,
            Some(&account_body("OpenAI", Some("acct-sub"))),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.provisioning_state(), "Creating");
    assert_eq!(created.header("retry-after"), Some("0"));
    let base = harness.emulator.base_url();
    let status_url = created.header("azure-asyncoperation").unwrap().to_string();
    let result_url = created.header("location").unwrap().to_string();
    let prefix = format!(
        "{base}/subscriptions/{SUB}/providers/Microsoft.CognitiveServices/locations/westus/"
    );
    assert!(
        status_url.starts_with(&format!("{prefix}operationStatuses/")),
        "{status_url}"
    );
    assert!(
        result_url.starts_with(&format!("{prefix}operationResults/")),
        "{result_url}"
    );
    assert!(status_url.ends_with("?api-version=2024-10-01"));

    // While it runs, writes conflict.
    let conflict = harness
        .call(Method::PATCH, &path, Some(&json!({"tags": {"a": "b"}})))
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.error_code(), "RequestConflict");
    assert_eq!(
        conflict.error_message(),
        format!(
            "Cannot modify resource with id '{path}' because the resource entity provisioning state is not terminal. Please wait for the provisioning state to become terminal and then retry the request."
        )
    );
    for (method, url) in [
        (Method::PUT, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::POST, format!("{path}/regenerateKey")),
    ] {
        let body = json!({"keyName": "Key1", "location": "westus", "kind": "OpenAI", "sku": {"name": "S0"}});
        let answer = harness.call(method.clone(), &url, Some(&body)).await;
        assert_eq!(answer.error_code(), "RequestConflict", "{method} {url}");
    }

    // First look (status URL): still running. A GET of the account is a look too (a client
    // may follow the operation by the account's provisioningState): the second finds it done.
    let first = harness.get_url(&status_url).await;
    assert_eq!(first.body["status"], "InProgress");
    assert!(first.body["startTime"].is_string());
    assert!(first.body["endTime"].is_null());
    assert_eq!(harness.get(&path).await.provisioning_state(), "Succeeded");
    let second = harness.get_url(&result_url).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.provisioning_state(), "Succeeded");
    let done = harness.get_url(&status_url).await;
    assert_eq!(done.body["status"], "Succeeded");
    assert!(done.body["endTime"].is_string());
    assert_eq!(harness.get(&path).await.provisioning_state(), "Succeeded");
}

#[tokio::test]
async fn location_url_answers_202_while_running() {
    let harness = Harness::start().await;
    let created = harness
        .call(
            Method::PUT,
            &account_path(SUB, RG, "acct"),
            Some(&account_body("Face", None)),
        )
        .await;
    let result_url = created.header("location").unwrap().to_string();
    let running = harness.get_url(&result_url).await;
    assert_eq!(running.status, StatusCode::ACCEPTED);
    assert_eq!(running.header("location"), Some(result_url.as_str()));
    assert!(running.header("retry-after").is_some());
    assert_eq!(harness.get_url(&result_url).await.status, StatusCode::OK);
}

#[tokio::test]
async fn accounts_show_azure_read_only_fields_and_defaults() {
    let harness = Harness::start().await;
    let mut body = account_body("OpenAI", Some("My-Sub"));
    body["tags"] = json!({"team": "ai"});
    body["identity"] = json!({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {"/subscriptions/x/uami": {}}});
    body["properties"]["unknownThing"] = json!(1);
    body["properties"]["encryption"] = json!({"keyVaultProperties": {"keyName": "k"}});
    body["properties"]["endpoint"] = json!("https://ignored/");
    let account = harness.create("acct", &body).await.body;
    assert_eq!(account["id"], account_path(SUB, RG, "acct"));
    assert_eq!(account["type"], "Microsoft.CognitiveServices/accounts");
    assert_eq!(account["tags"], json!({"team": "ai"}));
    let properties = &account["properties"];
    assert_eq!(properties["endpoint"], "https://my-sub.openai.azure.com/");
    assert_eq!(
        properties["endpoints"]["OpenAI Language Model Instance API"],
        "https://my-sub.openai.azure.com/"
    );
    assert_eq!(properties["publicNetworkAccess"], "Enabled");
    assert_eq!(properties["encryption"]["keySource"], "Microsoft.KeyVault");
    assert_eq!(properties["isMigrated"], false);
    // As recorded for an OpenAI account.
    assert_eq!(properties["apiProperties"], json!({}));
    assert_eq!(properties["privateEndpointConnections"], json!([]));
    let rules = properties["callRateLimit"]["rules"].as_array().unwrap();
    assert_eq!(rules.last().unwrap()["key"], "default");
    assert_eq!(properties["endpoints"].as_object().unwrap().len(), 8);
    assert!(properties.get("unknownThing").is_none());
    assert!(properties.get("restore").is_none());
    assert!(properties.get("networkAcls").is_none());
    assert!(properties.get("disableLocalAuth").is_none());
    let internal_id = properties["internalId"].as_str().unwrap();
    assert!(internal_id.len() == 32 && internal_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(properties["dateCreated"].is_string());
    assert!(
        properties["capabilities"]
            .as_array()
            .is_some_and(|caps| !caps.is_empty())
    );
    let identity = &account["identity"];
    assert!(uuid::Uuid::parse_str(identity["principalId"].as_str().unwrap()).is_ok());
    assert!(uuid::Uuid::parse_str(identity["tenantId"].as_str().unwrap()).is_ok());
    assert!(identity["userAssignedIdentities"]["/subscriptions/x/uami"]["clientId"].is_string());
    let etag = account["etag"].as_str().unwrap();
    assert!(
        etag.starts_with("W/\"datetime'") && etag.contains("%3A"),
        "{etag}"
    );
    for field in [
        "createdBy",
        "createdByType",
        "createdAt",
        "lastModifiedBy",
        "lastModifiedByType",
        "lastModifiedAt",
    ] {
        assert!(
            account["systemData"][field].is_string(),
            "systemData.{field}"
        );
    }

    let regional = harness
        .create(
            "plain",
            &json!({"location": "West US 2", "kind": "Face", "sku": {"name": "F0"}}),
        )
        .await;
    assert_eq!(
        regional.body["properties"]["endpoint"],
        "https://westus2.api.cognitive.microsoft.com/"
    );
    assert!(
        regional.body.get("tags").is_none(),
        "no tags key when none were set"
    );
    assert_eq!(
        regional.header("etag"),
        regional.body["etag"].as_str(),
        "the ETag header repeats the body's etag"
    );
    assert_eq!(
        regional.body["properties"]["endpoints"]["Cognitive Services"],
        "https://westus2.api.cognitive.microsoft.com/"
    );
    let services = harness
        .create("svc", &account_body("Face", Some("svc-sub")))
        .await;
    assert_eq!(
        services.body["properties"]["endpoint"],
        "https://svc-sub.cognitiveservices.azure.com/"
    );
}

#[tokio::test]
async fn patch_changes_are_long_running_but_tags_only_is_synchronous() {
    let harness = Harness::start().await;
    let path = account_path(SUB, RG, "acct");
    let before = harness
        .create("acct", &account_body("Face", None))
        .await
        .body;

    let tags = harness
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"tags": {"env": "test"}})),
        )
        .await;
    assert_eq!(tags.status, StatusCode::OK);
    assert!(tags.header("azure-asyncoperation").is_none());
    assert_eq!(tags.body["tags"], json!({"env": "test"}));
    assert_eq!(tags.provisioning_state(), "Succeeded");
    assert_ne!(
        tags.body["etag"], before["etag"],
        "every write changes the etag"
    );
    let nothing = harness
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"properties": {"publicNetworkAccess": "Enabled"}})),
        )
        .await;
    assert_eq!(
        nothing.status,
        StatusCode::OK,
        "a PATCH that changes nothing is synchronous"
    );

    let update = json!({"sku": {"name": "F0"}, "properties": {"disableLocalAuth": true}});
    let patched = harness.call(Method::PATCH, &path, Some(&update)).await;
    assert_eq!(patched.status, StatusCode::ACCEPTED);
    assert_eq!(patched.provisioning_state(), "Accepted");
    assert_eq!(patched.body["sku"]["name"], "F0");
    assert!(patched.header("location").is_some());
    assert_eq!(harness.get(&path).await.provisioning_state(), "Accepted");
    let conflict = harness
        .call(Method::PATCH, &path, Some(&json!({"tags": {}})))
        .await;
    assert_eq!(conflict.error_code(), "RequestConflict");
    assert_eq!(harness.finish(&patched).await["status"], "Succeeded");
    let after = harness.get(&path).await.body;
    assert_eq!(after["properties"]["provisioningState"], "Succeeded");
    assert_eq!(after["properties"]["disableLocalAuth"], true);
    assert_eq!(
        after["tags"],
        json!({"env": "test"}),
        "tags not in the PATCH are kept"
    );
    assert_eq!(
        after["properties"]["publicNetworkAccess"], "Enabled",
        "properties not in the PATCH are kept"
    );

    let removed = harness
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"properties": {"disableLocalAuth": null}})),
        )
        .await;
    assert_eq!(removed.status, StatusCode::ACCEPTED);
    assert!(
        removed.body["properties"].get("disableLocalAuth").is_none(),
        "null removes a property"
    );
}

#[tokio::test]
async fn tag_names_are_case_insensitive_and_keep_their_stored_casing() {
    let harness = Harness::start().await;
    let path = account_path(SUB, RG, "acct");
    let mut body = account_body("Face", None);
    body["tags"] = json!({"Team": "search"});
    harness.create("acct", &body).await;

    let twice = harness
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"tags": {"env": "1", "ENV": "2"}})),
        )
        .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "{}", twice.body);
    assert_eq!(twice.error_target(), "tags");
    assert!(twice.error_message().contains("'env'"), "{}", twice.body);
    body["tags"] = json!({"a": "1", "A": "2"});
    let put = harness.call(Method::PUT, &path, Some(&body)).await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST, "{}", put.body);

    let renamed = harness
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"tags": {"team": "ai", "new": "x"}})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(
        harness.get(&path).await.body["tags"],
        json!({"Team": "ai", "new": "x"}),
        "one tag, under the name it was stored with"
    );
}

#[tokio::test]
async fn put_on_an_existing_account_is_a_full_update() {
    let harness = Harness::start().await;
    let path = account_path(SUB, RG, "acct");
    let mut first = account_body("Face", Some("acct-sub"));
    first["tags"] = json!({"a": "1"});
    first["properties"]["disableLocalAuth"] = json!(true);
    let created = harness.create("acct", &first).await.body;

    let replacement =
        json!({"location": "westus", "kind": "Face", "sku": {"name": "F0"}, "properties": {}});
    let updated = harness.call(Method::PUT, &path, Some(&replacement)).await;
    assert_eq!(updated.status, StatusCode::CREATED);
    assert_eq!(updated.provisioning_state(), "Accepted");
    assert!(updated.header("azure-asyncoperation").is_some());
    harness.finish(&updated).await;
    let after = harness.get(&path).await.body;
    assert_eq!(after["sku"]["name"], "F0");
    assert!(
        after.get("tags").is_none(),
        "a PUT without tags removes them"
    );
    assert!(after["properties"].get("disableLocalAuth").is_none());
    assert_eq!(
        after["properties"]["customSubDomainName"], "acct-sub",
        "the subdomain cannot be removed"
    );
    assert_eq!(
        after["properties"]["internalId"],
        created["properties"]["internalId"]
    );
}

#[tokio::test]
async fn immutable_properties_cannot_change_except_openai_to_aiservices() {
    let harness = Harness::start().await;
    let path = account_path(SUB, RG, "acct");
    harness
        .create("acct", &account_body("OpenAI", Some("acct-sub")))
        .await;
    let cases = [
        (json!({"kind": "Face"}), "kind"),
        (json!({"location": "eastus"}), "location"),
        (
            json!({"properties": {"customSubDomainName": "other-sub"}}),
            "properties.customSubDomainName",
        ),
    ];
    for (patch, property) in cases {
        let answer = harness.call(Method::PATCH, &path, Some(&patch)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{property}");
        assert_eq!(answer.error_code(), "PropertyChangeNotAllowed");
        assert_eq!(answer.body["error"]["target"], property);
        assert_eq!(
            answer.error_message(),
            format!("Changing property '{property}' is not allowed.")
        );
    }
    let put_kind = harness
        .call(
            Method::PUT,
            &path,
            Some(&account_body("Face", Some("acct-sub"))),
        )
        .await;
    assert_eq!(put_kind.body["error"]["target"], "kind");
    let same_location = harness
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"location": "West US", "tags": {}})),
        )
        .await;
    assert_eq!(
        same_location.status,
        StatusCode::OK,
        "the same location spelled differently is no change"
    );

    let upgraded = harness
        .call(Method::PATCH, &path, Some(&json!({"kind": "AIServices"})))
        .await;
    assert_eq!(upgraded.status, StatusCode::ACCEPTED);
    harness.finish(&upgraded).await;
    let account = harness.get(&path).await.body;
    assert_eq!(account["kind"], "AIServices");
    assert_eq!(
        account["properties"]["endpoint"],
        "https://acct-sub.cognitiveservices.azure.com/"
    );
    let back = harness
        .call(Method::PATCH, &path, Some(&json!({"kind": "OpenAI"})))
        .await;
    assert_eq!(back.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn delete_soft_deletes_into_deleted_accounts() {
    let harness = Harness::start().await;
    let path = account_path(SUB, RG, "acct");
    let mut body = account_body("Face", None);
    body["tags"] = json!({"keep": "me"});
    harness.create("acct", &body).await;

    let deleting = harness.call(Method::DELETE, &path, None).await;
    assert_eq!(deleting.status, StatusCode::ACCEPTED);
    assert!(deleting.body.is_null(), "DELETE answers an empty body");
    assert!(
        deleting.header("azure-asyncoperation").is_some() && deleting.header("location").is_some()
    );
    assert_eq!(
        harness.call(Method::DELETE, &path, None).await.error_code(),
        "RequestConflict"
    );
    let result_url = deleting.header("location").unwrap().to_string();
    assert_eq!(
        harness.get_url(&result_url).await.status,
        StatusCode::ACCEPTED
    );
    // The second look, here a GET of the account, ends the deletion: the account is gone.
    assert_eq!(harness.get(&path).await.error_code(), "ResourceNotFound");
    assert_eq!(
        harness.get_url(&result_url).await.status,
        StatusCode::NO_CONTENT
    );

    assert_eq!(harness.get(&path).await.error_code(), "ResourceNotFound");
    let listed = harness.get(&format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts")).await;
    assert_eq!(listed.body["value"], json!([]));

    let deleted = harness.get(&deleted_path(SUB, "westus", RG, "acct")).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["id"], deleted_path(SUB, "westus", RG, "acct"));
    assert_eq!(deleted.body["tags"], json!({"keep": "me"}));
    let deletion = deleted.body["properties"]["deletionDate"].as_str().unwrap();
    let purge = deleted.body["properties"]["scheduledPurgeDate"]
        .as_str()
        .unwrap();
    let deletion: jiff::Timestamp = deletion.parse().unwrap();
    let purge: jiff::Timestamp = purge.parse().unwrap();
    assert_eq!(
        purge.duration_since(deletion),
        jiff::SignedDuration::from_hours(48)
    );

    let all = harness
        .get(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.CognitiveServices/deletedAccounts"
        ))
        .await;
    let ids: Vec<&Value> = all.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|account| &account["id"])
        .collect();
    assert_eq!(ids, vec![&json!(deleted_path(SUB, "westus", RG, "acct"))]);

    let again = harness.call(Method::DELETE, &path, None).await;
    assert_eq!(
        again.status,
        StatusCode::NO_CONTENT,
        "deleting a missing account is idempotent"
    );
}

#[tokio::test]
async fn soft_deleted_accounts_are_purged_after_48_hours() {
    let harness = Harness::start().await;
    harness
        .create("acct", &account_body("Face", Some("acct-sub")))
        .await;
    harness.delete("acct").await;
    let deleted = deleted_path(SUB, "westus", RG, "acct");
    harness
        .emulator
        .advance_clock(Duration::from_secs(47 * 3600));
    assert_eq!(harness.get(&deleted).await.status, StatusCode::OK);
    harness
        .emulator
        .advance_clock(Duration::from_secs(3600 + 1));
    assert_eq!(harness.get(&deleted).await.error_code(), "ResourceNotFound");
    let reused = harness
        .call(
            Method::PUT,
            &account_path(SUB, RG, "other"),
            Some(&account_body("Face", Some("acct-sub"))),
        )
        .await;
    assert_eq!(
        reused.status,
        StatusCode::CREATED,
        "the purged account's subdomain is free again"
    );
}

#[tokio::test]
async fn purge_is_long_running_and_frees_the_subdomain() {
    let harness = Harness::start().await;
    harness
        .create("acct", &account_body("Face", Some("acct-sub")))
        .await;
    harness.delete("acct").await;
    let deleted = deleted_path(SUB, "westus", RG, "acct");
    let purging = harness.call(Method::DELETE, &deleted, None).await;
    assert_eq!(purging.status, StatusCode::ACCEPTED);
    assert!(purging.body.is_null());
    let result_url = purging.header("location").unwrap().to_string();
    assert!(result_url.contains("/locations/westus/operationResults/"));
    assert_eq!(
        harness.get_url(&result_url).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        harness.get_url(&result_url).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(harness.get(&deleted).await.error_code(), "ResourceNotFound");
    let fresh = harness
        .call(
            Method::PUT,
            &account_path(SUB, RG, "acct"),
            Some(&account_body("Face", Some("acct-sub"))),
        )
        .await;
    assert_eq!(
        fresh.status,
        StatusCode::CREATED,
        "after purge the name and subdomain can be created anew"
    );
}

#[tokio::test]
async fn purge_while_the_delete_runs_conflicts() {
    let harness = Harness::start().await;
    harness.create("acct", &account_body("Face", None)).await;
    let deleting = harness
        .call(Method::DELETE, &account_path(SUB, RG, "acct"), None)
        .await;
    let purge = harness
        .call(
            Method::DELETE,
            &deleted_path(SUB, "westus", RG, "acct"),
            None,
        )
        .await;
    assert_eq!(purge.status, StatusCode::CONFLICT);
    assert_eq!(purge.error_code(), "RequestConflict");
    harness.finish(&deleting).await;
    assert_eq!(
        harness
            .call(
                Method::DELETE,
                &deleted_path(SUB, "westus", RG, "acct"),
                None
            )
            .await
            .status,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn purge_without_permission_is_forbidden() {
    let harness = Harness::start().await;
    harness
        .emulator
        .seed_deleted_account(SUB, RG, "acct", account_body("Face", None));
    harness.emulator.set_purge_permission(false);
    let denied = harness
        .call(
            Method::DELETE,
            &deleted_path(SUB, "westus", RG, "acct"),
            None,
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.error_code(), "AuthorizationFailed");
    assert!(denied.error_message().contains(
        "does not have authorization to perform action 'Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/delete' over scope '/subscriptions/00000000-0000-0000-0000-000000000001'"
    ));
    assert_eq!(
        harness
            .get(&deleted_path(SUB, "westus", RG, "acct"))
            .await
            .status,
        StatusCode::OK
    );
    harness.emulator.set_purge_permission(true);
    assert_eq!(
        harness
            .call(
                Method::DELETE,
                &deleted_path(SUB, "westus", RG, "acct"),
                None
            )
            .await
            .status,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn purge_of_nothing_is_204_and_of_the_wrong_location_404() {
    let harness = Harness::start().await;
    let nothing = harness
        .call(
            Method::DELETE,
            &deleted_path(SUB, "westus", RG, "never"),
            None,
        )
        .await;
    assert_eq!(nothing.status, StatusCode::NO_CONTENT);
    harness
        .emulator
        .seed_deleted_account(SUB, RG, "acct", account_body("Face", None));
    let wrong = harness
        .call(
            Method::DELETE,
            &deleted_path(SUB, "eastus", RG, "acct"),
            None,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    assert_eq!(wrong.error_code(), "ResourceNotFound");
    assert_eq!(
        harness
            .get(&deleted_path(SUB, "eastus", RG, "acct"))
            .await
            .error_code(),
        "ResourceNotFound"
    );
}

#[tokio::test]
async fn operation_error_fault_makes_the_create_fail() {
    let harness = Harness::start().await;
    harness.emulator.add_fault(Fault {
        method: Some("PUT".into()),
        path_contains: Some("accounts/doomed".into()),
        operation_error: Some(ArmErrorBody {
            code: "InsufficientQuota".into(),
            message: "No quota left.".into(),
        }),
        ..Fault::default()
    });
    let path = account_path(SUB, RG, "doomed");
    let created = harness
        .call(Method::PUT, &path, Some(&account_body("Face", None)))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let status = harness.finish(&created).await;
    assert_eq!(status["status"], "Failed");
    assert_eq!(
        status["error"],
        json!({"code": "InsufficientQuota", "message": "No quota left."})
    );
    let result = harness.get_url(created.header("location").unwrap()).await;
    assert!(result.status.is_client_error());
    assert_eq!(result.error_code(), "InsufficientQuota");
    assert_eq!(harness.get(&path).await.provisioning_state(), "Failed");
    let retry = harness
        .call(Method::PUT, &path, Some(&account_body("Face", None)))
        .await;
    assert!(
        retry.status.is_success(),
        "a Failed account accepts writes again"
    );
}

#[tokio::test]
async fn failed_update_restores_the_previous_values() {
    let harness = Harness::start().await;
    let path = account_path(SUB, RG, "acct");
    harness.create("acct", &account_body("Face", None)).await;
    harness.emulator.add_fault(Fault {
        method: Some("PATCH".into()),
        operation_error: Some(ArmErrorBody {
            code: "Boom".into(),
            message: "boom".into(),
        }),
        ..Fault::default()
    });
    let patched = harness
        .call(Method::PATCH, &path, Some(&json!({"sku": {"name": "F0"}})))
        .await;
    assert_eq!(harness.finish(&patched).await["status"], "Failed");
    let account = harness.get(&path).await;
    assert_eq!(account.provisioning_state(), "Failed");
    assert_eq!(account.body["sku"]["name"], "S0");
}

#[tokio::test]
async fn create_over_a_soft_deleted_name_needs_restore() {
    let harness = Harness::start().await;
    harness
        .emulator
        .seed_deleted_account(SUB, RG, "acct", account_body("Face", None));
    let path = account_path(SUB, RG, "acct");
    let mut elsewhere = account_body("Face", None);
    elsewhere["location"] = json!("eastus");
    for body in [account_body("Face", None), elsewhere] {
        let answer = harness.call(Method::PUT, &path, Some(&body)).await;
        assert_eq!(answer.status, StatusCode::CONFLICT);
        assert_eq!(answer.error_code(), "FlagMustBeSetForRestore");
        assert_eq!(
            answer.error_message(),
            format!(
                "An existing resource with ID '{path}' has been soft-deleted. To restore the resource, you must specify 'restore' to be 'true' in the property. If you don't want to restore existing resource, please purge it first."
            )
        );
    }
}

#[tokio::test]
async fn restore_brings_back_keys_endpoint_and_tags() {
    let harness = Harness::start().await;
    let path = account_path(SUB, RG, "acct");
    let mut body = account_body("OpenAI", Some("acct-sub"));
    body["tags"] = json!({"owner": "me"});
    let original = harness.create("acct", &body).await.body;
    let keys = harness
        .call(Method::POST, &format!("{path}/listKeys"), None)
        .await
        .body;
    harness.delete("acct").await;

    let restore = json!({"location": "westus", "kind": "Face", "sku": {"name": "F0"}, "tags": {"x": "y"}, "properties": {"restore": true}});
    let restored = harness.call(Method::PUT, &path, Some(&restore)).await;
    assert_eq!(restored.status, StatusCode::CREATED);
    assert_eq!(restored.provisioning_state(), "Creating");
    assert!(restored.body["properties"].get("restore").is_none());
    assert_eq!(harness.finish(&restored).await["status"], "Succeeded");
    let account = harness.get(&path).await.body;
    assert_eq!(account["properties"]["provisioningState"], "Succeeded");
    for pointer in [
        "/kind",
        "/sku",
        "/tags",
        "/properties/endpoint",
        "/properties/dateCreated",
        "/properties/internalId",
        "/properties/customSubDomainName",
    ] {
        assert_eq!(
            account.pointer(pointer),
            original.pointer(pointer),
            "{pointer} is kept"
        );
    }
    assert_eq!(
        harness
            .call(Method::POST, &format!("{path}/listKeys"), None)
            .await
            .body,
        keys
    );
    assert_eq!(
        harness
            .get(&deleted_path(SUB, "westus", RG, "acct"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn restore_of_nothing_is_refused() {
    let harness = Harness::start().await;
    let mut body = account_body("Face", None);
    body["properties"]["restore"] = json!(true);
    let path = account_path(SUB, RG, "acct");
    let answer = harness.call(Method::PUT, &path, Some(&body)).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.error_code(), "CanNotRestoreANonExistingResource");
    assert_eq!(
        answer.error_message(),
        format!(
            "Could not locate a resource to restore. The resource with ID '{path}' doesn't exist or it is already purged."
        )
    );
}

#[tokio::test]
async fn restore_into_another_location_or_group_is_refused() {
    let harness = Harness::start().await;
    harness
        .emulator
        .seed_deleted_account(SUB, RG, "acct", account_body("Face", None));
    let restore = |location: &str| json!({"location": location, "properties": {"restore": true}});
    let other_location = harness
        .call(
            Method::PUT,
            &account_path(SUB, RG, "acct"),
            Some(&restore("eastus")),
        )
        .await;
    assert_eq!(other_location.status, StatusCode::BAD_REQUEST);
    assert_eq!(other_location.error_code(), "InvalidResourceLocation");
    assert!(
        other_location.error_message().contains("'westus'")
            && other_location.error_message().contains("'eastus'")
    );
    let other_group = harness
        .call(
            Method::PUT,
            &account_path(SUB, "rg-two", "acct"),
            Some(&restore("westus")),
        )
        .await;
    assert_eq!(
        other_group.error_code(),
        "CanNotRestoreANonExistingResource"
    );
    assert_eq!(
        harness
            .get(&deleted_path(SUB, "westus", RG, "acct"))
            .await
            .status,
        StatusCode::OK,
        "copy untouched"
    );
}

#[tokio::test]
async fn custom_subdomains_are_unique_across_subscriptions_and_soft_deleted_accounts() {
    let harness = Harness::start().await;
    harness
        .create("first", &account_body("Face", Some("taken-sub")))
        .await;
    let other_sub = account_path(OTHER_SUB, RG, "second");
    let clash = harness
        .call(
            Method::PUT,
            &other_sub,
            Some(&account_body("Face", Some("Taken-Sub"))),
        )
        .await;
    assert_eq!(clash.status, StatusCode::CONFLICT);
    assert_eq!(clash.error_code(), "CustomDomainInUse");
    assert!(clash.error_message().starts_with(
        "Please pick a different name. The subdomain name 'Taken-Sub' is not available as it's already used by a resource."
    ));

    harness.emulator.seed_deleted_account(
        SUB,
        RG,
        "gone",
        account_body("Face", Some("deleted-sub")),
    );
    let clash = harness
        .call(
            Method::PUT,
            &other_sub,
            Some(&account_body("Face", Some("deleted-sub"))),
        )
        .await;
    assert_eq!(clash.error_code(), "CustomDomainInUse");
    let existing = account_path(SUB, RG, "first");
    let patch = harness
        .call(
            Method::PATCH,
            &existing,
            Some(&json!({"properties": {"customSubDomainName": "taken-sub"}})),
        )
        .await;
    assert_eq!(
        patch.status,
        StatusCode::OK,
        "an account keeps its own subdomain"
    );
}

#[tokio::test]
async fn check_domain_availability_reports_taken_and_free_names() {
    let harness = Harness::start().await;
    harness
        .create("first", &account_body("Face", Some("taken-sub")))
        .await;
    let path = format!(
        "/subscriptions/{OTHER_SUB}/providers/Microsoft.CognitiveServices/checkDomainAvailability"
    );
    let ask =
        |name: &str| json!({"subdomainName": name, "type": "Microsoft.CognitiveServices/accounts"});
    let taken = harness
        .call(Method::POST, &path, Some(&ask("taken-sub")))
        .await;
    assert_eq!(taken.status, StatusCode::OK);
    assert_eq!(taken.body["isSubdomainAvailable"], false);
    assert!(taken.body["reason"].is_string());
    let free = harness
        .call(Method::POST, &path, Some(&ask("free-sub")))
        .await;
    assert_eq!(free.body["isSubdomainAvailable"], true);
    assert_eq!(free.body["subdomainName"], "free-sub");
    assert_eq!(free.body["type"], "Microsoft.CognitiveServices/accounts");
    let invalid = harness.call(Method::POST, &path, Some(&ask("-bad-"))).await;
    assert_eq!(invalid.body["isSubdomainAvailable"], false);
    let missing = harness
        .call(Method::POST, &path, Some(&json!({"type": "x"})))
        .await;
    assert_eq!(missing.body["error"]["target"], "subdomainName");
}

#[tokio::test]
async fn lists_page_with_next_links() {
    let harness = Harness::with(EmulatorConfig {
        page_size: 2,
        ..config()
    })
    .await;
    for name in ["a1", "a2", "a3", "a4", "a5"] {
        harness
            .emulator
            .seed_account(SUB, RG, name, account_body("Face", None));
    }
    harness
        .emulator
        .seed_account(SUB, "rg-two", "b1", account_body("Face", None));
    harness
        .emulator
        .seed_account(OTHER_SUB, RG, "c1", account_body("Face", None));

    let by_group = format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts"
    );
    assert_eq!(
        collect(&harness, &by_group).await,
        ["a1", "a2", "a3", "a4", "a5"]
    );
    let by_subscription =
        format!("/subscriptions/{SUB}/providers/Microsoft.CognitiveServices/accounts");
    assert_eq!(
        collect(&harness, &by_subscription).await,
        ["a1", "a2", "a3", "a4", "a5", "b1"]
    );

    let first = harness.get(&by_group).await;
    let next = first.body["nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("{}{by_group}?", harness.emulator.base_url())),
        "{next}"
    );
    assert!(next.contains("$skipToken=2"), "{next}");
}

/// Follows nextLinks and returns the names listed.
async fn collect(harness: &Harness, path: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut url = harness.url(path);
    for _ in 0..10 {
        let page = harness.get_url(&url).await;
        assert_eq!(page.status, StatusCode::OK);
        let value = page.body["value"].as_array().unwrap();
        assert!(value.len() <= 2, "page size respected");
        names.extend(
            value
                .iter()
                .map(|account| account["name"].as_str().unwrap().to_string()),
        );
        match page.body["nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => return names,
        }
    }
    panic!("too many pages");
}

#[tokio::test]
async fn regenerate_key_changes_only_that_key() {
    let harness = Harness::start().await;
    let path = account_path(SUB, RG, "acct");
    harness.create("acct", &account_body("Face", None)).await;
    let keys = harness
        .call(Method::POST, &format!("{path}/listKeys"), None)
        .await
        .body;
    let (key1, key2) = (
        keys["key1"].as_str().unwrap(),
        keys["key2"].as_str().unwrap(),
    );
    assert!(!key1.is_empty() && key1 != key2);
    let after = harness
        .call(
            Method::POST,
            &format!("{path}/regenerateKey"),
            Some(&json!({"keyName": "Key2"})),
        )
        .await
        .body;
    assert_eq!(after["key1"], key1);
    assert_ne!(after["key2"], key2);
    assert_eq!(
        harness
            .call(Method::POST, &format!("{path}/listKeys"), None)
            .await
            .body,
        after
    );
    let skus = harness.get(&format!("{path}/skus")).await;
    assert_eq!(skus.status, StatusCode::OK);
    assert!(
        skus.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|sku| sku["sku"]["name"] == "S0")
    );
}

#[tokio::test]
async fn empty_bucket_answers_429_with_retry_after() {
    let throttling = ThrottleConfig {
        reads: BucketConfig {
            capacity: 3.0,
            refill_per_sec: 0.01,
        },
        ..ThrottleConfig::azure()
    };
    let harness = Harness::with(EmulatorConfig {
        throttling: Some(throttling),
        ..config()
    })
    .await;
    let path = account_path(SUB, RG, "acct");
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let answer = harness.get(&path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        remaining.push(
            answer
                .header("x-ms-ratelimit-remaining-subscription-reads")
                .unwrap()
                .to_string(),
        );
        assert_eq!(
            answer.header("x-ms-ratelimit-remaining-subscription-writes"),
            Some("200")
        );
        assert_eq!(
            answer.header("x-ms-ratelimit-remaining-subscription-deletes"),
            Some("200")
        );
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let throttled = harness.get(&path).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.error_code(), "SubscriptionRequestsThrottled");
    let retry_after: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(
        throttled.error_message(),
        format!(
            "Number of 'read' requests for subscription '{SUB}' actor '00000000-0000-0000-0000-0000000ca11e' exceeded. Please try again after '{retry_after}' seconds."
        )
    );
    assert_eq!(
        throttled.header("x-ms-ratelimit-remaining-subscription-reads"),
        Some("0")
    );
    assert_eq!(harness.emulator.throttled_count(), 1);
    let write = harness
        .call(Method::PUT, &path, Some(&account_body("Face", None)))
        .await;
    assert_eq!(
        write.status,
        StatusCode::CREATED,
        "writes have their own bucket"
    );
    let other = harness.get(&account_path(OTHER_SUB, RG, "acct")).await;
    assert_eq!(
        other.status,
        StatusCode::NOT_FOUND,
        "other subscriptions have their own buckets"
    );
    let log = harness.emulator.requests();
    assert_eq!(
        log.iter().filter(|request| request.status == 429).count(),
        1,
        "throttled requests are logged"
    );
}

#[tokio::test]
async fn responses_carry_request_ids() {
    let harness = Harness::start().await;
    let url = harness.url(&account_path(SUB, RG, "acct"));
    let response = harness
        .http
        .get(&url)
        .header("Authorization", "Bearer t")
        .header("x-ms-client-request-id", "my-correlation")
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-ms-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(request_id).is_ok());
    assert_eq!(
        response.headers()["x-ms-client-request-id"],
        "my-correlation"
    );
    let other = harness.get(&account_path(SUB, RG, "acct")).await;
    assert_ne!(other.header("x-ms-request-id"), Some(request_id));
}

#[tokio::test]
async fn status_fault_answers_the_scripted_error_the_given_times() {
    let harness = Harness::start().await;
    harness
        .emulator
        .seed_account(SUB, RG, "acct", account_body("Face", None));
    harness.emulator.add_fault(Fault {
        method: Some("GET".into()),
        path_contains: Some("accounts/acct".into()),
        status: Some(429),
        code: Some("SubscriptionRequestsThrottled".into()),
        message: Some("slow down".into()),
        retry_after: Some(7),
        times: Some(2),
        ..Fault::default()
    });
    let path = account_path(SUB, RG, "acct");
    for _ in 0..2 {
        let answer = harness.get(&path).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.header("retry-after"), Some("7"));
        assert_eq!(
            answer.body,
            json!({"error": {"code": "SubscriptionRequestsThrottled", "message": "slow down"}})
        );
    }
    assert_eq!(harness.get(&path).await.status, StatusCode::OK);
    assert_eq!(harness.emulator.throttled_count(), 2);

    harness.emulator.add_fault(Fault {
        status: Some(500),
        times: Some(0),
        ..Fault::default()
    });
    assert_eq!(
        harness.get(&path).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    harness.emulator.clear_faults();
    assert_eq!(harness.get(&path).await.status, StatusCode::OK);
}

#[tokio::test]
async fn delay_fault_answers_late_but_normally() {
    let harness = Harness::start().await;
    harness
        .emulator
        .seed_account(SUB, RG, "acct", account_body("Face", None));
    harness.emulator.add_fault(Fault {
        path_contains: Some("accounts/acct".into()),
        delay_ms: Some(50),
        ..Fault::default()
    });
    assert_eq!(
        harness.get(&account_path(SUB, RG, "acct")).await.status,
        StatusCode::OK
    );
    let log = harness.emulator.requests();
    assert_eq!(log.last().map(|request| request.status), Some(200));
}

#[tokio::test]
async fn drop_fault_closes_the_connection_without_an_answer() {
    let harness = Harness::start().await;
    harness
        .emulator
        .seed_account(SUB, RG, "acct", account_body("Face", None));
    harness.emulator.add_fault(Fault {
        method: Some("GET".into()),
        drop: Some(true),
        ..Fault::default()
    });
    let url = harness.url(&account_path(SUB, RG, "acct"));
    let sent = harness
        .http
        .get(&url)
        .header("Authorization", "Bearer t")
        .send()
        .await;
    assert!(sent.is_err(), "send fails when the connection is dropped");
    assert_eq!(
        harness
            .emulator
            .requests()
            .last()
            .map(|request| request.status),
        Some(0)
    );
    assert_eq!(
        harness.get(&account_path(SUB, RG, "acct")).await.status,
        StatusCode::OK,
        "next request is served"
    );
}

#[tokio::test]
async fn request_log_records_resource_provider_requests_only() {
    let harness = Harness::start().await;
    let path = account_path(SUB, RG, "acct");
    harness
        .call(Method::PUT, &path, Some(&account_body("Face", None)))
        .await;
    harness.get(&path).await;
    let admin = harness
        .http
        .get(format!("{}/_emulator/state", harness.emulator.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);

    let log = harness.emulator.requests();
    assert_eq!(log.len(), 2, "admin calls are not logged");
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str(), log[0].status),
        ("PUT", path.as_str(), 201)
    );
    assert_eq!(log[0].query, API);
    assert_eq!(log[0].request_body.as_ref().unwrap()["kind"], "Face");
    assert_eq!(
        (log[1].method.as_str(), log[1].status, &log[1].request_body),
        ("GET", 200, &None)
    );

    let over_http: Vec<Value> = harness
        .http
        .get(format!(
            "{}/_emulator/requests",
            harness.emulator.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http[0]["requestBody"]["kind"], "Face");
    assert_eq!(over_http[1]["status"], 200);
    harness
        .http
        .delete(format!(
            "{}/_emulator/requests",
            harness.emulator.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert!(harness.emulator.requests().is_empty());
    harness.get(&path).await;
    harness.emulator.clear_requests();
    assert!(harness.emulator.requests().is_empty());
}

#[tokio::test]
async fn request_feed_streams_recorded_requests() {
    let harness = Harness::start().await;
    let mut feed = harness.emulator.subscribe_requests();
    harness.get(&account_path(SUB, RG, "acct")).await;
    let seen = feed.recv().await.unwrap();
    assert_eq!((seen.method.as_str(), seen.status), ("GET", 404));
}

#[tokio::test]
async fn operation_duration_is_measured_on_the_injectable_clock() {
    let harness = Harness::with(EmulatorConfig {
        polls_to_complete: None,
        operation_duration: Some(Duration::from_secs(30)),
        ..config()
    })
    .await;
    let created = harness
        .call(
            Method::PUT,
            &account_path(SUB, RG, "acct"),
            Some(&account_body("Face", None)),
        )
        .await;
    let status_url = created.header("azure-asyncoperation").unwrap().to_string();
    for _ in 0..3 {
        assert_eq!(
            harness.get_url(&status_url).await.body["status"],
            "InProgress"
        );
    }
    harness.emulator.advance_clock(Duration::from_secs(31));
    assert_eq!(
        harness.get_url(&status_url).await.body["status"],
        "Succeeded"
    );
}

#[tokio::test]
async fn an_operation_nobody_polls_completes_when_its_duration_passes() {
    let harness = Harness::with(EmulatorConfig {
        polls_to_complete: Some(5),
        operation_duration: Some(Duration::from_secs(30)),
        ..config()
    })
    .await;
    let path = account_path(SUB, RG, "acct");
    harness
        .call(Method::PUT, &path, Some(&account_body("Face", None)))
        .await;
    assert_eq!(harness.get(&path).await.provisioning_state(), "Creating");
    harness.emulator.advance_clock(Duration::from_secs(31));
    assert_eq!(
        harness.get(&path).await.provisioning_state(),
        "Succeeded",
        "Azure runs the operation on its own: reading the account alone sees it finish"
    );
}

#[tokio::test]
async fn operation_urls_expire_some_time_after_the_operation_ends() {
    let harness = Harness::with(EmulatorConfig {
        polls_to_complete: Some(1),
        operation_retention: Some(Duration::from_secs(60)),
        ..config()
    })
    .await;
    let created = harness
        .call(
            Method::PUT,
            &account_path(SUB, RG, "acct"),
            Some(&account_body("Face", None)),
        )
        .await;
    let status_url = created.header("azure-asyncoperation").unwrap().to_string();
    assert_eq!(
        harness.get_url(&status_url).await.body["status"],
        "Succeeded"
    );
    harness.emulator.advance_clock(Duration::from_secs(59));
    assert_eq!(
        harness.get_url(&status_url).await.body["status"],
        "Succeeded"
    );
    harness.emulator.advance_clock(Duration::from_secs(2));
    let expired = harness.get_url(&status_url).await;
    assert_eq!(expired.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn operations_nobody_polls_are_forgotten_once_their_urls_expire() {
    let harness = Harness::with(EmulatorConfig {
        polls_to_complete: None,
        operation_duration: Some(Duration::from_secs(10)),
        operation_retention: Some(Duration::from_secs(60)),
        ..config()
    })
    .await;
    for name in ["one", "two", "three"] {
        harness
            .call(
                Method::PUT,
                &account_path(SUB, RG, name),
                Some(&account_body("Face", None)),
            )
            .await;
    }
    let operations = |harness: &Harness| {
        harness.emulator.state()["operations"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(operations(&harness), 3);
    harness.emulator.advance_clock(Duration::from_secs(10 + 59));
    assert_eq!(operations(&harness), 3, "still within the retention");
    harness.emulator.advance_clock(Duration::from_secs(16));
    assert_eq!(
        operations(&harness),
        0,
        "memory follows what can still be polled"
    );
}

#[tokio::test]
async fn with_zero_polls_a_read_of_the_account_completes_the_operation() {
    let harness = Harness::with(EmulatorConfig {
        polls_to_complete: Some(0),
        ..config()
    })
    .await;
    let path = account_path(SUB, RG, "acct");
    let created = harness
        .call(Method::PUT, &path, Some(&account_body("Face", None)))
        .await;
    assert_eq!(created.provisioning_state(), "Creating");
    assert_eq!(harness.get(&path).await.provisioning_state(), "Succeeded");
}

#[tokio::test]
async fn unknown_routes_answer_arm_errors() {
    let harness = Harness::start().await;
    let unknown_type = harness
        .get(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.CognitiveServices/widgets"
        ))
        .await;
    assert_eq!(unknown_type.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_type.error_code(), "InvalidResourceType");
    let other_provider = harness
        .get(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.Storage/storageAccounts"
        ))
        .await;
    assert_eq!(other_provider.error_code(), "NoRegisteredProviderFound");
    let unknown_operation =
        harness.get(&format!("/subscriptions/{SUB}/providers/Microsoft.CognitiveServices/locations/westus/operationStatuses/nope")).await;
    assert_eq!(unknown_operation.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_api_drives_the_emulator_over_http() {
    let harness = Harness::start().await;
    let admin = |path: &str| format!("{}/_emulator/{path}", harness.emulator.base_url());
    let seeded = harness
        .http
        .post(admin("resourceGroups"))
        .json(&json!({"subscriptionId": SUB, "name": "rg-admin", "location": "westus"}))
        .send()
        .await
        .unwrap();
    assert!(seeded.status().is_success());
    assert_eq!(
        harness
            .get(&account_path(SUB, "rg-admin", "x"))
            .await
            .error_code(),
        "ResourceNotFound"
    );

    let before = harness.emulator.now();
    let advanced = harness
        .http
        .post(admin("clock/advance"))
        .json(&json!({"seconds": 3600}))
        .send()
        .await
        .unwrap();
    assert!(advanced.status().is_success());
    assert!(harness.emulator.now().duration_since(before) >= jiff::SignedDuration::from_hours(1));

    let fault = json!({"method": "GET", "pathContains": "accounts/x", "status": 503, "times": 1});
    harness
        .http
        .post(admin("faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(
        harness
            .get(&account_path(SUB, "rg-admin", "x"))
            .await
            .status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    harness
        .http
        .post(admin("faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    harness.http.delete(admin("faults")).send().await.unwrap();
    assert_eq!(
        harness
            .get(&account_path(SUB, "rg-admin", "x"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    harness
        .http
        .post(admin("permissions"))
        .json(&json!({"purge": false}))
        .send()
        .await
        .unwrap();
    let denied = harness
        .call(Method::DELETE, &deleted_path(SUB, "westus", RG, "x"), None)
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    harness
        .http
        .post(admin("auth"))
        .json(&json!({"token": "only"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        harness.get(&account_path(SUB, RG, "x")).await.status,
        StatusCode::UNAUTHORIZED
    );
    harness
        .http
        .post(admin("auth"))
        .json(&json!({"token": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        harness.get(&account_path(SUB, RG, "x")).await.status,
        StatusCode::NOT_FOUND
    );

    let seed = json!({"subscriptionId": SUB, "resourceGroup": RG, "name": "old", "account": account_body("Face", None)});
    harness
        .http
        .post(admin("deletedAccounts"))
        .json(&seed)
        .send()
        .await
        .unwrap();
    harness
        .emulator
        .seed_account(SUB, RG, "live", account_body("Face", None));
    let state: Value = harness
        .http
        .get(admin("state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["accounts"][0]["name"], "live");
    assert_eq!(state["deletedAccounts"][0]["name"], "old");
    assert!(
        state["resourceGroups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|group| group["name"] == "rg-admin")
    );
    assert!(state["operations"].is_array());
    let created = harness
        .call(
            Method::PUT,
            &account_path(SUB, RG, "fresh"),
            Some(&account_body("Face", None)),
        )
        .await;
    let state = harness.emulator.state();
    let operation = state["operations"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(operation["kind"], "Create");
    assert_eq!(operation["status"], "InProgress");
    assert_eq!(
        operation["statusUrl"].as_str(),
        created.header("azure-asyncoperation")
    );
    assert_eq!(
        operation["locationUrl"].as_str(),
        created.header("location")
    );
    let over_http: Value = harness
        .http
        .get(admin("state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http, harness.emulator.state());
}
