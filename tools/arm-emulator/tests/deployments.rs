//! Deployments, the model catalogue, quota and the billing meter, through real HTTP as a client
//! sees them. Operations complete by polling (`polls_to_complete`), time moves only with
//! `advance_clock`: no sleeps.

mod support;

use std::time::Duration;

use arm_emulator::{ArmErrorBody, EmulatorConfig, Fault, Profile, ResourceGroupSeed};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::contract::{Doc, Swagger, spec_dir};
use support::http::{Answer, Harness};

const SUB: &str = "00000000-0000-0000-0000-00000000d001";
const RG: &str = "rg-models";
const ACCOUNT: &str = "acct";

fn config() -> EmulatorConfig {
    EmulatorConfig {
        resource_groups: vec![ResourceGroupSeed::new(SUB, RG, "westus")],
        polls_to_complete: Some(2),
        // Only polls complete operations, so a write stays in flight until the test polls it.
        operation_duration: None,
        retry_after_secs: 0,
        // Most tests here are about the operations deployment writes start.
        profile: Profile::LongRunning,
        ..EmulatorConfig::default()
    }
}

fn account_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/{name}"
    )
}

fn deployment_path(account: &str, name: &str) -> String {
    format!("{}/deployments/{name}", account_path(account))
}

fn provider_path(rest: &str) -> String {
    format!("/subscriptions/{SUB}/providers/Microsoft.CognitiveServices/{rest}")
}

fn openai_account() -> Value {
    json!({"location": "westus", "kind": "OpenAI", "sku": {"name": "S0"}})
}

/// A deployment body: model name and version (None: the default), SKU and capacity.
fn deployment(model: &str, version: Option<&str>, sku: &str, capacity: u32) -> Value {
    let mut model = json!({"format": "OpenAI", "name": model});
    if let Some(version) = version {
        model["version"] = json!(version);
    }
    json!({"sku": {"name": sku, "capacity": capacity}, "properties": {"model": model}})
}

fn close(actual: &Value, expected: f64) -> bool {
    // The emulator clock is real time plus the advances: a test takes milliseconds of it.
    actual
        .as_f64()
        .is_some_and(|actual| (actual - expected).abs() < 0.05)
}

impl Harness {
    async fn start() -> Self {
        Self::seeded(config()).await
    }

    /// An emulator with `config` and the OpenAI account ACCOUNT in it.
    async fn seeded(config: EmulatorConfig) -> Self {
        let harness = Self::with(config).await;
        harness
            .emulator
            .seed_account(SUB, RG, ACCOUNT, openai_account());
        harness
    }

    async fn put_deployment(&self, name: &str, body: &Value) -> Answer {
        self.call(Method::PUT, &deployment_path(ACCOUNT, name), Some(body))
            .await
    }

    /// Creates a deployment through the API and waits until it is Succeeded.
    async fn create_deployment(&self, name: &str, body: &Value) {
        let created = self.put_deployment(name, body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        assert_eq!(self.finish(&created).await["status"], "Succeeded");
    }

    /// `currentValue` and `limit` of a usage of the subscription in westus.
    async fn usage(&self, name: &str) -> (f64, f64) {
        let usages = self.get(&provider_path("locations/westus/usages")).await;
        let usage = usages.body["value"]
            .as_array()
            .and_then(|value| value.iter().find(|usage| usage["name"]["value"] == name))
            .unwrap_or_else(|| panic!("no usage {name} in {}", usages.body))
            .clone();
        (
            usage["currentValue"].as_f64().unwrap(),
            usage["limit"].as_f64().unwrap(),
        )
    }

    /// The billing entry of a deployment.
    fn meter(&self, name: &str) -> Value {
        let billing = self.emulator.billing();
        let suffix = format!("/deployments/{name}");
        billing["deployments"]
            .as_array()
            .and_then(|entries| {
                entries
                    .iter()
                    .find(|entry| entry["id"].as_str().is_some_and(|id| id.ends_with(&suffix)))
            })
            .unwrap_or_else(|| panic!("no meter for {name}: {billing}"))
            .clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Create, read, list, update
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_create_runs_an_operation_and_fills_the_server_defaults() {
    let harness = Harness::start().await;
    let body = json!({"properties": {"model": {"format": "OpenAI", "name": "gpt-4o"}}});
    let created = harness.put_deployment("chat", &body).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.provisioning_state(), "Creating");
    assert!(created.header("azure-asyncoperation").is_some());
    assert!(created.header("location").is_some());
    assert_eq!(created.header("retry-after"), Some("0"));

    assert_eq!(harness.finish(&created).await["status"], "Succeeded");
    let result = harness
        .send(Method::GET, created.header("location").unwrap(), None)
        .await;
    assert_eq!(result.status, StatusCode::OK);
    assert_eq!(result.provisioning_state(), "Succeeded");

    let read = harness.get(&deployment_path(ACCOUNT, "chat")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["id"], deployment_path(ACCOUNT, "chat"));
    assert_eq!(
        read.body["type"],
        "Microsoft.CognitiveServices/accounts/deployments"
    );
    assert_eq!(read.body["sku"], json!({"name": "Standard", "capacity": 1}));
    let properties = &read.body["properties"];
    assert_eq!(
        properties["model"],
        json!({"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20", "publisher": "OpenAI"})
    );
    // As recorded: no tags key, no raiPolicyName when the PUT sets none, the version's capabilities.
    assert!(read.body.get("tags").is_none(), "{}", read.body);
    assert!(properties.get("raiPolicyName").is_none(), "{properties}");
    assert_eq!(properties["capabilities"]["responses"], "true");
    assert!(properties["capabilities"].get("maxOutputToken").is_none());
    assert_eq!(
        properties["versionUpgradeOption"],
        "OnceNewDefaultVersionAvailable"
    );
    assert_eq!(
        properties["rateLimits"],
        json!([
            {"key": "request", "renewalPeriod": 10, "count": 1},
            {"key": "token", "renewalPeriod": 60, "count": 1000}
        ])
    );
    assert_eq!(properties["currentCapacity"], 1);
}

#[tokio::test]
async fn names_are_case_insensitive_and_missing_things_answer_404() {
    let harness = Harness::start().await;
    harness
        .create_deployment(
            "Chat",
            &deployment("gpt-4o-mini", None, "GlobalStandard", 5),
        )
        .await;
    let path = "/SUBSCRIPTIONS/00000000-0000-0000-0000-00000000d001/resourcegroups/RG-MODELS/providers/microsoft.cognitiveservices/ACCOUNTS/ACCT/Deployments/CHAT";
    let read = harness.get(path).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["name"], "Chat");

    let missing = harness.get(&deployment_path(ACCOUNT, "nope")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "NotFound");
    assert_eq!(
        missing.error_message(),
        format!(
            "Specified resource '{}' cannot be found.",
            deployment_path(ACCOUNT, "nope")
        )
    );

    let orphan = harness.get(&deployment_path("no-account", "chat")).await;
    assert_eq!(orphan.status, StatusCode::NOT_FOUND);
    assert_eq!(orphan.error_code(), "ParentResourceNotFound");
    let orphan_put = harness
        .call(
            Method::PUT,
            &deployment_path("no-account", "chat"),
            Some(&deployment("gpt-4o", None, "Standard", 1)),
        )
        .await;
    assert_eq!(orphan_put.error_code(), "ParentResourceNotFound");

    let gone = harness
        .call(Method::DELETE, &deployment_path(ACCOUNT, "nope"), None)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_list_is_paged_with_next_links() {
    let harness = Harness::seeded(EmulatorConfig {
        page_size: 2,
        ..config()
    })
    .await;
    for name in ["gamma", "alpha", "beta"] {
        let body = deployment("gpt-4o", None, "GlobalStandard", 10);
        harness
            .emulator
            .seed_deployment(SUB, RG, ACCOUNT, name, body);
    }
    let first = harness
        .get(&format!("{}/deployments", account_path(ACCOUNT)))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let names = |answer: &Answer| -> Vec<String> {
        answer.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&first), ["alpha", "beta"]);
    let next = first.body["nextLink"]
        .as_str()
        .expect("a nextLink")
        .to_string();
    let second = harness.send(Method::GET, &next, None).await;
    assert_eq!(names(&second), ["gamma"]);
    assert!(second.body.get("nextLink").is_none());
}

#[tokio::test]
async fn patch_scales_capacity_in_an_operation_and_changes_tags_at_once() {
    let harness = Harness::start().await;
    let body = deployment("gpt-4o", None, "GlobalStandard", 10);
    harness
        .emulator
        .seed_deployment(SUB, RG, ACCOUNT, "chat", body);
    let path = deployment_path(ACCOUNT, "chat");

    let scaled = harness
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"sku": {"capacity": 20}})),
        )
        .await;
    assert_eq!(scaled.status, StatusCode::ACCEPTED);
    assert_eq!(scaled.body, Value::Null, "the contract's 202 has no body");
    assert!(scaled.header("location").is_some());
    let during = harness.get(&path).await;
    assert_eq!(during.body["sku"]["capacity"], 20);
    assert_eq!(during.provisioning_state(), "Accepted");
    assert_eq!(harness.finish(&scaled).await["status"], "Succeeded");
    let after = harness.get(&path).await;
    assert_eq!(after.provisioning_state(), "Succeeded");
    assert_eq!(after.body["properties"]["rateLimits"][1]["count"], 20_000);
    assert_eq!(harness.usage("OpenAI.GlobalStandard.gpt-4o").await.0, 20.0);

    let tagged = harness
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"tags": {"team": "search"}})),
        )
        .await;
    assert_eq!(tagged.status, StatusCode::OK);
    assert_eq!(tagged.body["tags"], json!({"team": "search"}));
    assert_eq!(tagged.provisioning_state(), "Succeeded");
    assert_ne!(tagged.body["etag"], after.body["etag"]);

    let resku = harness
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"sku": {"name": "Standard"}})),
        )
        .await;
    assert_eq!(resku.status, StatusCode::BAD_REQUEST);
    assert_eq!(resku.error_code(), "InvalidResourceProperties");
    assert_eq!(resku.error_target(), "sku.name");

    let other = harness
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"properties": {"raiPolicyName": "x"}})),
        )
        .await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST);
    assert_eq!(other.error_target(), "properties");
    assert!(other.error_message().contains("'properties'"));
}

#[tokio::test]
async fn deployment_tag_names_are_case_insensitive_and_keep_their_stored_casing() {
    let harness = Harness::start().await;
    let mut body = deployment("gpt-4o", None, "GlobalStandard", 10);
    body["tags"] = json!({"Team": "search"});
    harness
        .emulator
        .seed_deployment(SUB, RG, ACCOUNT, "chat", body.clone());
    let path = deployment_path(ACCOUNT, "chat");

    let twice = harness
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"tags": {"a": "1", "A": "2"}})),
        )
        .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "{}", twice.body);
    assert_eq!(twice.error_target(), "tags");
    body["tags"] = json!({"x": "1", "X": "2"});
    let put = harness.put_deployment("chat", &body).await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST, "{}", put.body);

    let retagged = harness
        .call(Method::PATCH, &path, Some(&json!({"tags": {"TEAM": "ai"}})))
        .await;
    assert_eq!(retagged.status, StatusCode::OK, "{}", retagged.body);
    assert_eq!(harness.get(&path).await.body["tags"], json!({"Team": "ai"}));
}

#[tokio::test]
async fn a_put_over_a_deployment_updates_it_in_an_operation() {
    let harness = Harness::start().await;
    let body = deployment("gpt-4o", Some("2024-08-06"), "GlobalStandard", 10);
    harness
        .emulator
        .seed_deployment(SUB, RG, ACCOUNT, "chat", body);
    let upgrade = deployment("gpt-4o", Some("2024-11-20"), "GlobalStandard", 10);
    let updated = harness.put_deployment("chat", &upgrade).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.provisioning_state(), "Accepted");
    assert_eq!(updated.body["properties"]["model"]["version"], "2024-11-20");
    assert_eq!(harness.finish(&updated).await["status"], "Succeeded");
    let read = harness.get(&deployment_path(ACCOUNT, "chat")).await;
    assert_eq!(read.provisioning_state(), "Succeeded");
}

// ---------------------------------------------------------------------------------------------
// Requests refused at once
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn requests_that_cannot_succeed_are_refused_at_once_with_400() {
    let harness = Harness::start().await;
    harness
        .emulator
        .set_quota(SUB, "westus", "gpt-4o", "GlobalStandard", 30);
    let body = deployment("gpt-4o", None, "GlobalStandard", 20);
    harness
        .emulator
        .seed_deployment(SUB, RG, ACCOUNT, "chat", body);

    let unknown = harness
        .put_deployment(
            "new",
            &deployment("gpt-5", Some("2030-01-01"), "Standard", 1),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.error_code(), "DeploymentModelNotSupported");
    assert!(
        unknown
            .error_message()
            .contains("'gpt-5' version '2030-01-01'")
    );

    let renamed = harness
        .put_deployment(
            "chat",
            &deployment("gpt-4o-mini", None, "GlobalStandard", 20),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::BAD_REQUEST);
    assert_eq!(renamed.error_code(), "InvalidResourceProperties");
    assert!(renamed.error_message().contains("'OpenAI/gpt-4o'"));
    assert!(renamed.error_message().contains("'OpenAI/gpt-4o-mini'"));
    assert!(
        renamed
            .error_message()
            .contains("model name and format cannot change")
    );

    let greedy = harness
        .put_deployment("more", &deployment("gpt-4o", None, "GlobalStandard", 15))
        .await;
    assert_eq!(greedy.status, StatusCode::BAD_REQUEST);
    assert_eq!(greedy.error_code(), "InsufficientQuota");
    assert_eq!(
        greedy.error_message(),
        "This operation require 15 new capacity in quota OpenAI.GlobalStandard.gpt-4o, which is bigger than the current available capacity 10. The current quota usage is 20 and the quota limit is 30 for quota OpenAI.GlobalStandard.gpt-4o."
    );

    // None of them started anything.
    assert_eq!(harness.emulator.state()["operations"], json!([]));
    let absent = harness.get(&deployment_path(ACCOUNT, "more")).await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    assert_eq!(
        harness.usage("OpenAI.GlobalStandard.gpt-4o").await,
        (20.0, 30.0)
    );
}

#[tokio::test]
async fn skus_capacities_deprecated_versions_and_account_kinds_are_checked() {
    let harness = Harness::start().await;
    let embedding = deployment("text-embedding-3-small", None, "ProvisionedManaged", 15);
    let refused = harness.put_deployment("emb", &embedding).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code(), "InvalidResourceProperties");
    assert_eq!(refused.error_target(), "sku.name");

    let tiny = harness
        .put_deployment("ptu", &deployment("gpt-4o", None, "ProvisionedManaged", 5))
        .await;
    assert_eq!(tiny.error_code(), "InvalidResourceProperties");
    assert_eq!(tiny.error_target(), "sku.capacity");
    assert!(tiny.error_message().contains("from 15 to 1000"));

    let old = harness
        .put_deployment(
            "old",
            &deployment("gpt-4o", Some("2024-05-13"), "Standard", 1),
        )
        .await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST);
    assert_eq!(old.error_code(), "ServiceModelDeprecated");

    harness.emulator.seed_account(
        SUB,
        RG,
        "language",
        json!({"location": "westus", "kind": "TextAnalytics", "sku": {"name": "S0"}}),
    );
    let wrong_kind = harness
        .call(
            Method::PUT,
            &deployment_path("language", "chat"),
            Some(&deployment("gpt-4o", None, "Standard", 1)),
        )
        .await;
    assert_eq!(wrong_kind.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_kind.error_code(), "DeploymentModelNotSupported");
    assert!(wrong_kind.error_message().contains("TextAnalytics"));
}

#[tokio::test]
async fn a_deployment_on_a_deprecated_version_can_be_kept_but_not_chosen_again() {
    let harness = Harness::start().await;
    let body = deployment("gpt-4o", Some("2024-05-13"), "Standard", 5);
    harness
        .emulator
        .seed_deployment(SUB, RG, ACCOUNT, "legacy", body);
    let mut retagged = deployment("gpt-4o", Some("2024-05-13"), "Standard", 5);
    retagged["tags"] = json!({"kept": "yes"});
    let kept = harness.put_deployment("legacy", &retagged).await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.body);
    harness.finish(&kept).await;

    let current = deployment("gpt-4o", Some("2024-08-06"), "Standard", 5);
    harness
        .emulator
        .seed_deployment(SUB, RG, ACCOUNT, "current", current);
    let downgrade = harness
        .put_deployment(
            "current",
            &deployment("gpt-4o", Some("2024-05-13"), "Standard", 5),
        )
        .await;
    assert_eq!(downgrade.error_code(), "ServiceModelDeprecated");
}

#[tokio::test]
async fn capacity_and_model_version_cannot_change_in_one_put() {
    let harness = Harness::start().await;
    let body = deployment("gpt-4o", Some("2024-08-06"), "GlobalStandard", 10);
    harness
        .emulator
        .seed_deployment(SUB, RG, ACCOUNT, "chat", body);
    let both = harness
        .put_deployment(
            "chat",
            &deployment("gpt-4o", Some("2024-11-20"), "GlobalStandard", 20),
        )
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert_eq!(both.error_code(), "InvalidResourceProperties");
    assert!(
        both.error_message()
            .contains("capacity and model version cannot change in one request")
    );
    let read = harness.get(&deployment_path(ACCOUNT, "chat")).await;
    assert_eq!(read.body["sku"]["capacity"], 10);
    assert_eq!(read.body["properties"]["model"]["version"], "2024-08-06");
}

// ---------------------------------------------------------------------------------------------
// One write at a time per account
// ---------------------------------------------------------------------------------------------

fn busy_message() -> String {
    format!(
        "Another operation is being performed on the parent resource '{}'. Please try again later.",
        account_path(ACCOUNT)
    )
}

#[tokio::test]
async fn writes_wait_while_a_sibling_deployment_is_being_written() {
    let harness = Harness::start().await;
    let first = harness
        .put_deployment("first", &deployment("gpt-4o", None, "GlobalStandard", 10))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);

    let second = harness
        .put_deployment(
            "second",
            &deployment("gpt-4o-mini", None, "GlobalStandard", 10),
        )
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.error_code(), "RequestConflict");
    assert_eq!(second.error_message(), busy_message());
    let delete_first = harness
        .call(Method::DELETE, &deployment_path(ACCOUNT, "first"), None)
        .await;
    assert_eq!(delete_first.status, StatusCode::CONFLICT);
    let account_patch = harness
        .call(
            Method::PATCH,
            &account_path(ACCOUNT),
            Some(&json!({"properties": {"disableLocalAuth": true}})),
        )
        .await;
    assert_eq!(account_patch.status, StatusCode::CONFLICT);
    assert_eq!(account_patch.error_message(), busy_message());
    let account_delete = harness
        .call(Method::DELETE, &account_path(ACCOUNT), None)
        .await;
    assert_eq!(account_delete.status, StatusCode::CONFLICT);
    // Reads go on.
    let read = harness.get(&deployment_path(ACCOUNT, "first")).await;
    assert_eq!(read.provisioning_state(), "Creating");

    assert_eq!(harness.finish(&first).await["status"], "Succeeded");
    let retried = harness
        .put_deployment(
            "second",
            &deployment("gpt-4o-mini", None, "GlobalStandard", 10),
        )
        .await;
    assert_eq!(retried.status, StatusCode::CREATED);
}

#[tokio::test]
async fn deployment_writes_wait_until_the_account_is_created() {
    let harness = Harness::start().await;
    let account = harness
        .call(Method::PUT, &account_path("fresh"), Some(&openai_account()))
        .await;
    assert_eq!(account.status, StatusCode::CREATED);
    let path = deployment_path("fresh", "chat");
    let body = deployment("gpt-4o", None, "Standard", 1);

    let early = harness.call(Method::PUT, &path, Some(&body)).await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(early.error_code(), "RequestConflict");
    assert!(early.error_message().contains(&account_path("fresh")));

    assert_eq!(harness.finish(&account).await["status"], "Succeeded");
    let created = harness.call(Method::PUT, &path, Some(&body)).await;
    assert_eq!(created.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_failed_create_leaves_the_deployment_failed_and_the_account_writable() {
    let harness = Harness::start().await;
    harness.emulator.add_fault(Fault {
        method: Some("PUT".into()),
        path_contains: Some("/deployments/chat".into()),
        operation_error: Some(ArmErrorBody {
            code: "InternalServerError".into(),
            message: "The deployment could not be provisioned.".into(),
        }),
        ..Fault::default()
    });
    let created = harness
        .put_deployment("chat", &deployment("gpt-4o", None, "Standard", 1))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let status = harness.finish(&created).await;
    assert_eq!(status["status"], "Failed");
    assert_eq!(status["error"]["code"], "InternalServerError");
    let read = harness.get(&deployment_path(ACCOUNT, "chat")).await;
    assert_eq!(read.provisioning_state(), "Failed");

    let deleted = harness
        .call(Method::DELETE, &deployment_path(ACCOUNT, "chat"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    harness.finish(&deleted).await;
    let gone = harness.get(&deployment_path(ACCOUNT, "chat")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

/// The recorded profile answers as real Azure was recorded doing (spec/azure-recordings/).
#[tokio::test]
async fn recorded_azure_writes_deployments_and_deletes_at_once() {
    let harness = Harness::seeded(EmulatorConfig {
        profile: Profile::Recorded,
        ..config()
    })
    .await;
    let created = harness
        .put_deployment("chat", &deployment("gpt-4o", None, "Standard", 1))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.provisioning_state(), "Succeeded");
    assert!(created.header("azure-asyncoperation").is_none());
    assert!(created.header("location").is_none());
    // Nothing is in flight: the next write on the account is not refused with 409.
    let updated = harness
        .put_deployment("chat", &deployment("gpt-4o", None, "Standard", 2))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.provisioning_state(), "Succeeded");
    assert_eq!(updated.body["sku"]["capacity"], 2);

    let deleted = harness
        .call(Method::DELETE, &deployment_path(ACCOUNT, "chat"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(deleted.header("azure-asyncoperation").is_none());
    let gone = harness.get(&deployment_path(ACCOUNT, "chat")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let account = harness
        .call(Method::DELETE, &account_path(ACCOUNT), None)
        .await;
    assert_eq!(account.status, StatusCode::OK);
    let deleted_copy = harness
        .get(&provider_path(&format!(
            "locations/westus/resourceGroups/{RG}/deletedAccounts/{ACCOUNT}"
        )))
        .await;
    assert_eq!(deleted_copy.status, StatusCode::OK, "soft-deleted at once");
}

/// A scripted failure needs an operation to fail in: that one write stays long-running.
#[tokio::test]
async fn recorded_azure_keeps_an_operation_for_a_scripted_failure() {
    let harness = Harness::seeded(EmulatorConfig {
        profile: Profile::Recorded,
        ..config()
    })
    .await;
    harness.emulator.add_fault(Fault {
        method: Some("PUT".into()),
        path_contains: Some("/deployments/chat".into()),
        operation_error: Some(ArmErrorBody {
            code: "InternalServerError".into(),
            message: "The deployment could not be provisioned.".into(),
        }),
        ..Fault::default()
    });
    let created = harness
        .put_deployment("chat", &deployment("gpt-4o", None, "Standard", 1))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(harness.finish(&created).await["status"], "Failed");
}

#[tokio::test]
async fn a_failed_scale_puts_the_old_capacity_back_and_marks_the_deployment_failed() {
    let harness = Harness::start().await;
    let body = deployment("gpt-4o", None, "ProvisionedManaged", 20);
    harness
        .emulator
        .seed_deployment(SUB, RG, ACCOUNT, "ptu", body);
    harness.emulator.add_fault(Fault {
        method: Some("PATCH".into()),
        path_contains: Some("/deployments/ptu".into()),
        operation_error: Some(ArmErrorBody {
            code: "CapacityNotAvailable".into(),
            message: "No capacity for this SKU in the region.".into(),
        }),
        ..Fault::default()
    });
    let path = deployment_path(ACCOUNT, "ptu");
    let scaled = harness
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"sku": {"capacity": 40}})),
        )
        .await;
    assert_eq!(scaled.status, StatusCode::ACCEPTED);
    assert_eq!(
        harness.meter("ptu")["capacity"],
        40,
        "billed as scaled while it runs"
    );
    assert_eq!(harness.finish(&scaled).await["status"], "Failed");
    let read = harness.get(&path).await;
    assert_eq!(read.provisioning_state(), "Failed");
    assert_eq!(read.body["sku"]["capacity"], 20);
    assert_eq!(harness.meter("ptu")["capacity"], 20);
    assert_eq!(
        harness.usage("OpenAI.ProvisionedManaged.gpt-4o").await.0,
        20.0
    );
}

// ---------------------------------------------------------------------------------------------
// Soft delete, restore, purge; quota
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn soft_delete_keeps_deployments_restore_brings_them_back_and_purge_releases_quota() {
    let harness = Harness::start().await;
    let body = deployment("gpt-4o", None, "GlobalStandard", 100);
    harness
        .emulator
        .seed_deployment(SUB, RG, ACCOUNT, "chat", body);
    let before = harness.get(&deployment_path(ACCOUNT, "chat")).await;

    let deleted = harness
        .call(Method::DELETE, &account_path(ACCOUNT), None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    harness.finish(&deleted).await;
    let hidden = harness.get(&deployment_path(ACCOUNT, "chat")).await;
    assert_eq!(hidden.error_code(), "ParentResourceNotFound");
    let list = harness
        .get(&format!("{}/deployments", account_path(ACCOUNT)))
        .await;
    assert_eq!(list.status, StatusCode::NOT_FOUND);
    let cannot_delete = harness
        .call(Method::DELETE, &deployment_path(ACCOUNT, "chat"), None)
        .await;
    assert_eq!(cannot_delete.status, StatusCode::NOT_FOUND);
    assert_eq!(harness.usage("OpenAI.GlobalStandard.gpt-4o").await.0, 100.0);
    let state = harness.emulator.state();
    assert_eq!(state["deployments"], json!([]));
    assert_eq!(state["deletedAccountDeployments"][0]["name"], "chat");

    let restore = json!({"location": "westus", "properties": {"restore": true}});
    let restored = harness
        .call(Method::PUT, &account_path(ACCOUNT), Some(&restore))
        .await;
    assert_eq!(restored.status, StatusCode::CREATED);
    harness.finish(&restored).await;
    let back = harness.get(&deployment_path(ACCOUNT, "chat")).await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(back.body, before.body, "restored as it was");

    let deleted = harness
        .call(Method::DELETE, &account_path(ACCOUNT), None)
        .await;
    harness.finish(&deleted).await;
    let purge_path = provider_path(&format!(
        "locations/westus/resourceGroups/{RG}/deletedAccounts/{ACCOUNT}"
    ));
    let purged = harness.call(Method::DELETE, &purge_path, None).await;
    assert_eq!(purged.status, StatusCode::ACCEPTED);
    harness.finish(&purged).await;
    assert_eq!(harness.usage("OpenAI.GlobalStandard.gpt-4o").await.0, 0.0);
    assert_eq!(
        harness.emulator.state()["deletedAccountDeployments"],
        json!([])
    );

    let recreated = harness
        .call(Method::PUT, &account_path(ACCOUNT), Some(&openai_account()))
        .await;
    harness.finish(&recreated).await;
    let list = harness
        .get(&format!("{}/deployments", account_path(ACCOUNT)))
        .await;
    assert_eq!(
        list.body["value"],
        json!([]),
        "a new account has no deployments"
    );
}

#[tokio::test]
async fn quota_counts_every_account_of_the_subscription_in_the_location() {
    let harness = Harness::start().await;
    harness
        .emulator
        .seed_account(SUB, RG, "second", openai_account());
    harness.emulator.seed_account(
        SUB,
        RG,
        "elsewhere",
        json!({"location": "eastus", "kind": "AIServices", "sku": {"name": "S0"}}),
    );
    for account in [ACCOUNT, "second", "elsewhere"] {
        let body = deployment("gpt-4o-mini", None, "Standard", 40);
        harness
            .emulator
            .seed_deployment(SUB, RG, account, "mini", body);
    }
    assert_eq!(
        harness.usage("OpenAI.Standard.gpt-4o-mini").await,
        (80.0, 1000.0)
    );
    assert_eq!(
        harness.usage("OpenAI.ProvisionedManaged.gpt-4o").await,
        (0.0, 100.0)
    );

    let admin = harness
        .http
        .put(format!("{}/_emulator/quota", harness.emulator.base_url()))
        .json(&json!({"subscriptionId": SUB, "location": "West US", "model": "gpt-4o-mini", "sku": "Standard", "limit": 90}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        harness.usage("OpenAI.Standard.gpt-4o-mini").await,
        (80.0, 90.0)
    );
    let scale = harness
        .call(
            Method::PATCH,
            &deployment_path(ACCOUNT, "mini"),
            Some(&json!({"sku": {"capacity": 60}})),
        )
        .await;
    assert_eq!(scale.error_code(), "InsufficientQuota");
    assert!(scale.error_message().contains("require 20 new capacity"));
    assert!(scale.error_message().contains("available capacity 10"));
}

// ---------------------------------------------------------------------------------------------
// Billing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn provisioned_deployments_bill_on_the_clock_also_while_soft_deleted_until_purge() {
    let harness = Harness::start().await;
    let emulator = &harness.emulator;
    emulator.seed_deployment(
        SUB,
        RG,
        ACCOUNT,
        "ptu",
        deployment("gpt-4o", None, "ProvisionedManaged", 20),
    );
    emulator.seed_deployment(
        SUB,
        RG,
        ACCOUNT,
        "paygo",
        deployment("gpt-4o", None, "Standard", 50),
    );
    emulator.advance_clock(Duration::from_secs(2 * 3600));
    let billing = emulator.billing();
    assert_eq!(billing["billingCapacity"], 20);
    assert!(close(&billing["accruedCapacityHours"], 40.0), "{billing}");
    let paygo = harness.meter("paygo");
    assert_eq!(paygo["billing"], false);
    assert_eq!(paygo["accruedCapacityHours"], 0.0);

    let deleted = harness
        .call(Method::DELETE, &account_path(ACCOUNT), None)
        .await;
    harness.finish(&deleted).await;
    emulator.advance_clock(Duration::from_secs(3600));
    let held = harness.meter("ptu");
    assert_eq!(held["billing"], true);
    assert_eq!(held["accountSoftDeleted"], true);
    assert!(close(&held["accruedCapacityHours"], 60.0), "{held}");

    let purge_path = provider_path(&format!(
        "locations/westus/resourceGroups/{RG}/deletedAccounts/{ACCOUNT}"
    ));
    let purged = harness.call(Method::DELETE, &purge_path, None).await;
    harness.finish(&purged).await;
    emulator.advance_clock(Duration::from_secs(5 * 3600));
    let stopped = harness.meter("ptu");
    assert_eq!(stopped["billing"], false);
    assert_eq!(stopped["deleted"], true);
    assert!(close(&stopped["accruedCapacityHours"], 60.0), "{stopped}");
    assert_eq!(emulator.billing()["billingCapacity"], 0);
}

#[tokio::test]
async fn the_automatic_purge_after_48_hours_stops_the_meter_and_releases_quota() {
    let harness = Harness::start().await;
    let body = deployment("gpt-4o", None, "ProvisionedManaged", 20);
    harness
        .emulator
        .seed_deployment(SUB, RG, ACCOUNT, "ptu", body);
    let deleted = harness
        .call(Method::DELETE, &account_path(ACCOUNT), None)
        .await;
    harness.finish(&deleted).await;
    harness
        .emulator
        .advance_clock(Duration::from_secs(50 * 3600));
    assert_eq!(
        harness.usage("OpenAI.ProvisionedManaged.gpt-4o").await.0,
        0.0
    );
    let meter = harness.meter("ptu");
    assert_eq!(meter["billing"], false);
    // Billed from the seed until the scheduled purge, 48 h after the delete: not 50 h.
    assert!(close(&meter["accruedCapacityHours"], 960.0), "{meter}");
}

#[tokio::test]
async fn deleting_a_provisioned_deployment_stops_its_meter_and_keeps_what_it_accrued() {
    let harness = Harness::start().await;
    let body = deployment("gpt-4o-mini", None, "GlobalProvisionedManaged", 15);
    harness.create_deployment("ptu", &body).await;
    harness.emulator.advance_clock(Duration::from_secs(3600));
    let scaled = harness
        .call(
            Method::PATCH,
            &deployment_path(ACCOUNT, "ptu"),
            Some(&json!({"sku": {"capacity": 30}})),
        )
        .await;
    harness.finish(&scaled).await;
    harness.emulator.advance_clock(Duration::from_secs(3600));
    assert!(close(&harness.meter("ptu")["accruedCapacityHours"], 45.0));

    let deleted = harness
        .call(Method::DELETE, &deployment_path(ACCOUNT, "ptu"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    harness.finish(&deleted).await;
    harness
        .emulator
        .advance_clock(Duration::from_secs(10 * 3600));
    let billing = harness
        .http
        .get(format!("{}/_emulator/billing", harness.emulator.base_url()))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(billing["billingCapacity"], 0);
    assert!(close(&billing["accruedCapacityHours"], 45.0), "{billing}");
    assert_eq!(billing["deployments"][0]["deleted"], true);
}

// ---------------------------------------------------------------------------------------------
// Auto-upgrade and seeding through the admin API
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn auto_upgrade_moves_deployments_to_the_new_default_unless_they_opted_out() {
    let harness = Harness::start().await;
    let emulator = &harness.emulator;
    let mut pinned = deployment("gpt-4o", Some("2024-08-06"), "Standard", 1);
    pinned["properties"]["versionUpgradeOption"] = json!("NoAutoUpgrade");
    emulator.seed_deployment(SUB, RG, ACCOUNT, "pinned", pinned);
    emulator.seed_deployment(
        SUB,
        RG,
        ACCOUNT,
        "follows",
        deployment("gpt-4o", Some("2024-08-06"), "Standard", 1),
    );
    let before = harness.get(&deployment_path(ACCOUNT, "follows")).await;

    assert!(emulator.auto_upgrade(SUB, RG, ACCOUNT, "follows", "2024-11-20"));
    assert!(!emulator.auto_upgrade(SUB, RG, ACCOUNT, "pinned", "2024-11-20"));
    let follows = harness.get(&deployment_path(ACCOUNT, "follows")).await;
    assert_eq!(follows.body["properties"]["model"]["version"], "2024-11-20");
    assert_ne!(follows.body["etag"], before.body["etag"]);
    let pinned = harness.get(&deployment_path(ACCOUNT, "pinned")).await;
    assert_eq!(pinned.body["properties"]["model"]["version"], "2024-08-06");

    let admin = harness
        .http
        .post(format!("{}/_emulator/deployments/autoUpgrade", emulator.base_url()))
        .json(&json!({"subscriptionId": SUB, "resourceGroup": RG, "account": ACCOUNT, "name": "follows", "version": "2024-08-06"}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
    assert_eq!(
        admin.json::<Value>().await.unwrap(),
        json!({"upgraded": true})
    );
}

#[tokio::test]
async fn the_admin_api_seeds_deployments_and_the_state_shows_them() {
    let harness = Harness::start().await;
    let seeded = harness
        .http
        .post(format!("{}/_emulator/deployments", harness.emulator.base_url()))
        .json(&json!({"subscriptionId": SUB, "resourceGroup": RG, "account": ACCOUNT, "name": "unmanaged",
            "deployment": deployment("text-embedding-3-large", None, "Standard", 30)}))
        .send()
        .await
        .unwrap();
    assert_eq!(seeded.status(), StatusCode::CREATED);
    let state = harness.emulator.state();
    assert_eq!(state["deployments"][0]["name"], "unmanaged");
    assert_eq!(
        state["deployments"][0]["properties"]["provisioningState"],
        "Succeeded"
    );

    let refused = harness
        .http
        .post(format!(
            "{}/_emulator/deployments",
            harness.emulator.base_url()
        ))
        .json(
            &json!({"subscriptionId": SUB, "resourceGroup": RG, "account": "missing", "name": "chat",
            "deployment": deployment("gpt-4o", None, "Standard", 1)}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "ParentResourceNotFound");
}

// ---------------------------------------------------------------------------------------------
// The contract: every body validates against cognitiveservices.json
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn responses_validate_against_the_contract() {
    let harness = Harness::start().await;
    let swagger = Swagger::load(&spec_dir());
    let mut tagged = deployment("gpt-4o", None, "ProvisionedManaged", 50);
    tagged["tags"] = json!({"owner": "tests"});
    let created = harness.put_deployment("chat", &tagged).await;
    swagger.assert_valid("Deployment", &created.body, "PUT deployment");
    harness.finish(&created).await;
    let legacy = deployment("gpt-4o", Some("2024-05-13"), "Standard", 1);
    harness
        .emulator
        .seed_deployment(SUB, RG, ACCOUNT, "legacy", legacy);

    let deployments = format!("{}/deployments", account_path(ACCOUNT));
    let checks = [
        (deployment_path(ACCOUNT, "chat"), "Deployment"),
        (deployments, "DeploymentListResult"),
        (
            format!("{}/skus", deployment_path(ACCOUNT, "chat")),
            "DeploymentSkuListResult",
        ),
        (provider_path("locations/westus/models"), "ModelListResult"),
        (
            format!("{}/models", account_path(ACCOUNT)),
            "AccountModelListResult",
        ),
        (provider_path("locations/westus/usages"), "UsageListResult"),
    ];
    for (path, definition) in checks {
        let answer = harness.get(&path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
        swagger.assert_valid(definition, &answer.body, &path);
    }

    let models = harness.get(&provider_path("locations/westus/models")).await;
    let gpt4o: Vec<&Value> = models.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| &item["model"])
        .filter(|model| model["name"] == "gpt-4o")
        .collect();
    assert_eq!(gpt4o.len(), 3);
    let deprecated = gpt4o
        .iter()
        .find(|model| model["version"] == "2024-05-13")
        .unwrap();
    assert_eq!(deprecated["lifecycleStatus"], "Deprecated");
    let default = gpt4o
        .iter()
        .find(|model| model["isDefaultVersion"] == true)
        .unwrap();
    assert_eq!(default["version"], "2024-11-20");
    let ptu = default["skus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sku| sku["name"] == "ProvisionedManaged")
        .unwrap();
    assert_eq!(ptu["usageName"], "OpenAI.ProvisionedManaged.gpt-4o");
    assert_eq!(ptu["capacity"]["minimum"], 15);

    let skus = harness
        .get(&format!("{}/skus", deployment_path(ACCOUNT, "chat")))
        .await;
    let names: Vec<&str> = skus.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|sku| sku["sku"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Standard",
            "GlobalStandard",
            "ProvisionedManaged",
            "GlobalProvisionedManaged"
        ]
    );

    let errors = harness
        .put_deployment("x", &deployment("gpt-5", None, "Standard", 1))
        .await;
    swagger.assert_valid_common("ErrorResponse", &errors.body, "error");
}

#[test]
fn the_validator_rejects_what_the_contract_forbids() {
    let swagger = Swagger::load(&spec_dir());
    let mut errors = Vec::new();
    let schema = json!({"$ref": "#/definitions/Deployment"});
    let body = json!({"name": "d", "properties": {"provisioningState": "Updating", "bogus": 1}});
    swagger.validate(Doc::Provider, &schema, &body, "$", &mut errors);
    assert_eq!(errors.len(), 2, "{errors:?}");
}
