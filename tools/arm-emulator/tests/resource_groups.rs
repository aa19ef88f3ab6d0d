//! Microsoft.Resources resource groups as Azure's SDKs drive them: a synchronous PUT, GET, HEAD
//! (CheckExistence), and a DELETE that soft-deletes the group's accounts and is followed through
//! its Location URL; at Microsoft.Resources' own api-versions.

mod support;

use std::time::Duration;

use arm_emulator::{EmulatorConfig, ResourceGroupSeed};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::http::{Answer, Harness};

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const RETRY_AFTER: u64 = 15;

fn config() -> EmulatorConfig {
    EmulatorConfig {
        resource_groups: vec![ResourceGroupSeed::new(SUB, "rg-seeded", "eastus")],
        retry_after_secs: RETRY_AFTER,
        throttling: None,
        ..EmulatorConfig::default()
    }
}

fn group_url(harness: &Harness, name: &str, api_version: &str) -> String {
    format!(
        "{}/subscriptions/{SUB}/resourceGroups/{name}?api-version={api_version}",
        harness.base
    )
}

async fn group(harness: &Harness, method: Method, name: &str, body: Option<&Value>) -> Answer {
    harness
        .send(method, &group_url(harness, name, "2020-06-01"), body)
        .await
}

fn account_path(group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.CognitiveServices/accounts/{name}"
    )
}

fn account_body() -> Value {
    json!({"location": "westus2", "kind": "OpenAI", "sku": {"name": "S0"}, "properties": {}})
}

#[tokio::test]
async fn a_group_is_created_updated_read_and_checked_synchronously() {
    let harness = Harness::with_tls(config()).await;
    let body = json!({"location": "West US 2", "name": "rg-new", "tags": {"CreatedAt": "2001-02-03T04:05:06Z"}});
    let created = group(&harness, Method::PUT, "rg-new", Some(&body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.body,
        json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/rg-new"),
            "name": "rg-new",
            "type": "Microsoft.Resources/resourceGroups",
            "location": "westus2",
            "tags": {"CreatedAt": "2001-02-03T04:05:06Z"},
            "properties": {"provisioningState": "Succeeded"},
        })
    );
    assert!(
        created.header("location").is_none() && created.header("azure-asyncoperation").is_none()
    );
    let retagged = group(
        &harness,
        Method::PUT,
        "RG-NEW",
        Some(&json!({"location": "westus2", "tags": {"team": "a"}})),
    )
    .await;
    assert_eq!(retagged.status, StatusCode::OK);
    assert_eq!(retagged.body["tags"], json!({"team": "a"}));
    let read = group(&harness, Method::GET, "rg-new", None).await;
    assert_eq!(read.body, retagged.body);
    assert_eq!(
        group(&harness, Method::HEAD, "rg-new", None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        group(&harness, Method::HEAD, "rg-none", None).await.status,
        StatusCode::NOT_FOUND
    );

    let moved = group(
        &harness,
        Method::PUT,
        "rg-new",
        Some(&json!({"location": "eastus"})),
    )
    .await;
    assert_eq!(moved.status, StatusCode::CONFLICT);
    assert_eq!(moved.error_code(), "InvalidResourceGroupLocation");
    let absent = group(&harness, Method::GET, "rg-none", None).await;
    assert_eq!(
        (absent.status, absent.error_code()),
        (StatusCode::NOT_FOUND, "ResourceGroupNotFound")
    );
    let nowhere = group(&harness, Method::PUT, "rg-x", Some(&json!({"tags": {}}))).await;
    assert_eq!(
        (nowhere.status, nowhere.error_code()),
        (StatusCode::BAD_REQUEST, "LocationRequired")
    );
    // A created group takes accounts like a seeded one.
    let account = harness
        .call(
            Method::PUT,
            &account_path("rg-new", "acct"),
            Some(&account_body()),
        )
        .await;
    assert_eq!(account.status, StatusCode::CREATED, "{}", account.body);
    let logged: Vec<_> = harness
        .emulator
        .requests()
        .into_iter()
        .filter(|r| {
            r.path
                .to_ascii_lowercase()
                .ends_with("/resourcegroups/rg-new")
        })
        .collect();
    assert_eq!(logged.len(), 5, "every group request is in the request log");
}

#[tokio::test]
async fn deleting_a_group_soft_deletes_its_accounts_and_ends_through_its_location() {
    let harness = Harness::with_tls(config()).await;
    let put = group(
        &harness,
        Method::PUT,
        "rg-doomed",
        Some(&json!({"location": "westus2"})),
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED);
    harness
        .emulator
        .seed_account(SUB, "rg-doomed", "acct", account_body());
    let deployment = json!({"sku": {"name": "GlobalStandard", "capacity": 10}, "properties": {"model": {"format": "OpenAI", "name": "gpt-4o"}}});
    harness
        .emulator
        .seed_deployment(SUB, "rg-doomed", "acct", "chat", deployment);

    let deleted = group(&harness, Method::DELETE, "rg-doomed", None).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert_eq!(deleted.header("retry-after"), Some("15"));
    let location = deleted.header("location").unwrap().to_string();
    let prefix = format!(
        "{}/subscriptions/{SUB}/operationresults/",
        harness.emulator.tls_base_url().unwrap()
    );
    assert!(
        location.starts_with(&prefix) && location.ends_with("?api-version=2020-06-01"),
        "{location}"
    );

    let running = harness.get_url(&location).await;
    assert_eq!(running.status, StatusCode::ACCEPTED);
    assert_eq!(running.header("location"), Some(location.as_str()));
    let deleting = group(&harness, Method::GET, "rg-doomed", None).await;
    assert_eq!(deleting.provisioning_state(), "Deleting");
    let new_account = harness
        .call(
            Method::PUT,
            &account_path("rg-doomed", "late"),
            Some(&account_body()),
        )
        .await;
    assert_eq!(new_account.error_code(), "ResourceGroupNotFound");
    let recreate = group(
        &harness,
        Method::PUT,
        "rg-doomed",
        Some(&json!({"location": "westus2"})),
    )
    .await;
    assert_eq!(
        (recreate.status, recreate.error_code()),
        (StatusCode::CONFLICT, "ResourceGroupBeingDeleted")
    );
    let state = harness.emulator.state();
    assert_eq!(state["deletedAccounts"][0]["name"], "acct");
    assert_eq!(state["accounts"], json!([]));
    assert_eq!(
        state["deletedAccountDeployments"],
        json!([]),
        "the deployments went with the group"
    );

    // A client waits the Retry-After it was given: by then the deletion is over.
    harness
        .emulator
        .advance_clock(Duration::from_secs(RETRY_AFTER));
    let done = harness.get_url(&location).await;
    assert_eq!(
        (done.status, done.body.clone()),
        (StatusCode::OK, Value::Null)
    );
    let gone = group(&harness, Method::GET, "rg-doomed", None).await;
    assert_eq!(gone.error_code(), "ResourceGroupNotFound");
    let again = group(&harness, Method::DELETE, "rg-doomed", None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let recreated = group(
        &harness,
        Method::PUT,
        "rg-doomed",
        Some(&json!({"location": "westus2"})),
    )
    .await;
    assert_eq!(recreated.status, StatusCode::CREATED);
    let deleted_list = harness
        .get(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.CognitiveServices/deletedAccounts"
        ))
        .await;
    assert_eq!(
        deleted_list.body["value"][0]["name"], "acct",
        "the account stays soft-deleted, to restore or purge"
    );
}

#[tokio::test]
async fn a_deletion_url_expires_with_the_operation_retention() {
    let harness = Harness::with(config()).await;
    let deleted = group(&harness, Method::DELETE, "rg-seeded", None).await;
    let location = deleted.header("location").unwrap().to_string();
    assert!(location.starts_with("http://"), "{location}");
    harness
        .emulator
        .advance_clock(Duration::from_secs(RETRY_AFTER));
    assert_eq!(harness.get_url(&location).await.status, StatusCode::OK);
    harness.emulator.advance_clock(Duration::from_secs(16 * 60));
    let expired = harness.get_url(&location).await;
    assert_eq!(
        (expired.status, expired.error_code()),
        (StatusCode::NOT_FOUND, "OperationNotFound")
    );
}

#[tokio::test]
async fn microsoft_resources_has_its_own_api_versions() {
    let harness = Harness::with(config()).await;
    for version in [
        "2016-09-01",
        "2020-06-01",
        "2021-04-01",
        "2024-11-01",
        "2025-04-01",
    ] {
        let answer = harness
            .get_url(&group_url(&harness, "rg-seeded", version))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{version}: {}", answer.body);
    }
    for version in ["2015-11-01", "2021-04-01-preview", "banana"] {
        let answer = harness
            .get_url(&group_url(&harness, "rg-seeded", version))
            .await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::BAD_REQUEST, "InvalidApiVersionParameter"),
            "{version}"
        );
    }
    let bare = harness
        .get_url(&format!(
            "{}/subscriptions/{SUB}/resourceGroups/rg-seeded",
            harness.base
        ))
        .await;
    assert_eq!(bare.error_code(), "MissingApiVersionParameter");
    // A Microsoft.Resources version is no CognitiveServices one.
    let account = harness
        .get_url(&format!(
            "{}{}?api-version=2020-06-01",
            harness.base,
            account_path("rg-seeded", "a")
        ))
        .await;
    assert_eq!(account.error_code(), "InvalidApiVersionParameter");
}

#[tokio::test]
async fn seeded_groups_are_groups_like_any_other() {
    let harness = Harness::with(config()).await;
    let seeded = group(&harness, Method::GET, "rg-seeded", None).await;
    assert_eq!(
        (
            seeded.body["location"].as_str(),
            seeded.body["tags"].clone()
        ),
        (Some("eastus"), json!({}))
    );
    let admin = harness
        .http
        .post(format!("{}/_emulator/resourceGroups", harness.base))
        .json(&json!({"subscriptionId": SUB, "name": "rg-admin", "location": "westeurope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::CREATED);
    let put = group(
        &harness,
        Method::PUT,
        "rg-admin",
        Some(&json!({"location": "westeurope"})),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let list = harness
        .get_url(&format!(
            "{}/subscriptions/{SUB}/resourceGroups?api-version=2021-04-01",
            harness.base
        ))
        .await;
    assert_eq!(
        (list.status, list.error_code()),
        (StatusCode::NOT_FOUND, "NoRegisteredProviderFound"),
        "listing groups is not emulated"
    );
    let patch = group(
        &harness,
        Method::PATCH,
        "rg-admin",
        Some(&json!({"tags": {}})),
    )
    .await;
    assert_eq!(
        patch.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "PATCH is not emulated"
    );
}
