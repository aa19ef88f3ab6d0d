//! What the bodies say in every profile: api-version 2025-06-01's additions (echoed at that
//! version, hidden at 2024-10-01), the account usages list, and the 400s for an account kind or
//! SKU Azure does not have.

mod support;

use arm_emulator::{EmulatorConfig, ResourceGroupSeed};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::http::{Answer, Harness};

const SUB: &str = "00000000-0000-0000-0000-0000000000e5";
const RG: &str = "rg-shapes";
const NEW: &str = "2025-06-01";
const OLD: &str = "2024-10-01";

fn config() -> EmulatorConfig {
    EmulatorConfig {
        resource_groups: vec![ResourceGroupSeed::new(SUB, RG, "westus3")],
        // Any request completes a running operation: these tests are about bodies.
        polls_to_complete: Some(0),
        retry_after_secs: 0,
        ..EmulatorConfig::default()
    }
}

fn account_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/{name}"
    )
}

fn openai(properties: Value) -> Value {
    json!({"location": "westus3", "kind": "OpenAI", "sku": {"name": "S0"}, "properties": properties})
}

impl Harness {
    async fn start() -> Self {
        Self::with(config()).await
    }

    /// A request at api-version `version`.
    async fn at(&self, version: &str, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let url = format!("{}{path}?api-version={version}", self.emulator.base_url());
        self.send(method, &url, body).await
    }
}

#[tokio::test]
async fn an_account_at_2025_06_01_echoes_its_properties_and_2024_10_01_hides_them() {
    let harness = Harness::start().await;
    let sent = json!({
        "allowProjectManagement": true,
        "associatedProjects": ["one", "two"],
        "defaultProject": "one",
        "networkInjections": [{"scenario": "agent", "subnetArmId": "/subnets/a", "useMicrosoftManagedNetwork": false}],
    });
    let path = account_path("projects");
    let created = harness
        .at(NEW, Method::PUT, &path, Some(&openai(sent.clone())))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let read = harness.at(NEW, Method::GET, &path, None).await;
    for (name, value) in sent.as_object().unwrap() {
        assert_eq!(&read.body["properties"][name], value, "{name}");
    }
    let old = harness.at(OLD, Method::GET, &path, None).await;
    for name in sent.as_object().unwrap().keys() {
        assert!(
            old.body["properties"].get(name).is_none(),
            "{name} at {OLD}"
        );
    }

    // A full PUT at 2024-10-01 cannot name them, so it keeps them.
    let tagged =
        json!({"location": "westus3", "kind": "OpenAI", "sku": {"name": "S0"}, "tags": {"a": "b"}});
    let replaced = harness.at(OLD, Method::PUT, &path, Some(&tagged)).await;
    assert!(replaced.status.is_success(), "{}", replaced.body);
    let read = harness.at(NEW, Method::GET, &path, None).await;
    assert_eq!(read.body["properties"]["defaultProject"], "one");
    assert_eq!(read.body["tags"], json!({"a": "b"}));

    // At 2024-10-01 the 2025-06-01 properties are unknown ones: dropped, never echoed.
    let plain = account_path("plain");
    let ignored = harness
        .at(OLD, Method::PUT, &plain, Some(&openai(sent)))
        .await;
    assert!(ignored.body["properties"].get("defaultProject").is_none());
    let read = harness.at(NEW, Method::GET, &plain, None).await;
    assert_eq!(
        read.body["properties"]["allowProjectManagement"], false,
        "always in 2025-06-01 answers, as recorded"
    );
    assert!(read.body["properties"].get("defaultProject").is_none());
}

#[tokio::test]
async fn network_injections_may_be_one_object() {
    let harness = Harness::start().await;
    let injection = json!({"scenario": "agent", "subnetArmId": "/subnets/a"});
    let body = openai(json!({"networkInjections": injection.clone()}));
    let path = account_path("one");
    let created = harness.at(NEW, Method::PUT, &path, Some(&body)).await;
    assert_eq!(created.body["properties"]["networkInjections"], injection);
    let wrong = openai(json!({"networkInjections": "agent"}));
    let refused = harness
        .at(NEW, Method::PUT, &account_path("two"), Some(&wrong))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_target(), "properties.networkInjections");
}

#[tokio::test]
async fn a_deployment_at_2025_06_01_echoes_its_spillover_and_its_rai_policy_when_set() {
    let harness = Harness::start().await;
    harness
        .emulator
        .seed_account(SUB, RG, "acct", openai(json!({})));
    let path = format!("{}/deployments/chat", account_path("acct"));
    let body = json!({"sku": {"name": "Standard", "capacity": 1}, "properties": {
        "model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-08-06"},
        "raiPolicyName": "Microsoft.Default", "spilloverDeploymentName": "backup"}});
    let created = harness.at(NEW, Method::PUT, &path, Some(&body)).await;
    assert!(created.status.is_success(), "{}", created.body);
    let properties = &created.body["properties"];
    assert_eq!(properties["spilloverDeploymentName"], "backup");
    assert_eq!(properties["raiPolicyName"], "Microsoft.Default");
    assert_eq!(properties["model"]["publisher"], "OpenAI");
    // The recorded capabilities of gpt-4o 2024-08-06.
    assert_eq!(properties["capabilities"]["maxOutputToken"], "16384");
    assert_eq!(properties["capabilities"]["area"], "US");
    assert_eq!(created.header("etag"), created.body["etag"].as_str());
    let old = harness.at(OLD, Method::GET, &path, None).await;
    assert!(
        old.body["properties"]
            .get("spilloverDeploymentName")
            .is_none()
    );
    assert_eq!(old.body["properties"]["raiPolicyName"], "Microsoft.Default");
}

#[tokio::test]
async fn account_usages_count_the_capacity_of_that_account_only() {
    let harness = Harness::start().await;
    for name in ["mine", "other"] {
        harness
            .emulator
            .seed_account(SUB, RG, name, openai(json!({})));
    }
    let chat = |capacity: u32| {
        json!({"sku": {"name": "GlobalStandard", "capacity": capacity},
            "properties": {"model": {"format": "OpenAI", "name": "gpt-4o"}}})
    };
    harness
        .emulator
        .seed_deployment(SUB, RG, "mine", "chat-a", chat(10));
    harness
        .emulator
        .seed_deployment(SUB, RG, "mine", "chat-b", chat(5));
    harness
        .emulator
        .seed_deployment(SUB, RG, "other", "chat-c", chat(7));
    harness
        .emulator
        .set_quota(SUB, "westus3", "gpt-4o", "GlobalStandard", 30);

    let usages = harness
        .get(&format!("{}/usages", account_path("mine")))
        .await;
    assert_eq!(usages.status, StatusCode::OK, "{}", usages.body);
    assert!(usages.body.get("nextLink").is_none(), "not pageable");
    let value = usages.body["value"].as_array().unwrap();
    let usage = |name: &str| {
        value
            .iter()
            .find(|usage| usage["name"]["value"] == name)
            .unwrap_or_else(|| panic!("no {name} in {value:?}"))
    };
    let held = usage("OpenAI.GlobalStandard.gpt-4o");
    assert_eq!(held["currentValue"], 15);
    assert_eq!(held["limit"], 30);
    assert_eq!(held["unit"], "Count");
    assert_eq!(usage("OpenAI.Standard.gpt-4o")["currentValue"], 0);

    harness.emulator.seed_account(
        SUB,
        RG,
        "face",
        json!({"location": "westus3", "kind": "Face", "sku": {"name": "S0"}}),
    );
    let none = harness
        .get(&format!("{}/usages", account_path("face")))
        .await;
    assert_eq!(none.body, json!({"value": []}));
    let missing = harness
        .get(&format!("{}/usages", account_path("ghost")))
        .await;
    assert_eq!(missing.error_code(), "ResourceNotFound");
}

#[tokio::test]
async fn an_unknown_kind_or_sku_is_refused_and_retired_kinds_of_the_examples_are_kept() {
    let harness = Harness::start().await;
    let body =
        |kind: &str, sku: &str| json!({"location": "westus3", "kind": kind, "sku": {"name": sku}});
    let unknown = harness
        .call(
            Method::PUT,
            &account_path("refused"),
            Some(&body("Holograms", "S0")),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.error_code(), "InvalidApiSetId");
    assert_eq!(
        unknown.error_message(),
        "The account type 'Holograms' is either invalid or unavailable in given region."
    );
    let sku = harness
        .call(
            Method::PUT,
            &account_path("refused"),
            Some(&body("Face", "S9")),
        )
        .await;
    assert_eq!(sku.status, StatusCode::BAD_REQUEST);
    assert_eq!(sku.error_code(), "InvalidSkuId");
    assert!(
        sku.error_message().contains("'S9'"),
        "{}",
        sku.error_message()
    );
    assert!(harness.get(&account_path("refused")).await.status == StatusCode::NOT_FOUND);

    for (name, kind) in [
        ("emotion", "Emotion"),
        ("bing", "Bing.Search"),
        ("speech", "speechservices"),
    ] {
        let created = harness
            .call(Method::PUT, &account_path(name), Some(&body(kind, "S1")))
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{kind}: {}",
            created.body
        );
    }
    let patched = harness
        .call(
            Method::PATCH,
            &account_path("emotion"),
            Some(&json!({"sku": {"name": "Gold"}})),
        )
        .await;
    assert_eq!(patched.error_code(), "InvalidSkuId");
}
