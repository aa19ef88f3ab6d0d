//! The account forms of the recorded profiles, as real Azure was recorded answering them
//! (spec/azure-recordings/): a create hands out Azure-AsyncOperation alone, at a signed
//! location-scoped `operationResults` URL of api-version 2017-04-18 that answers the status
//! document; a tags-only PUT is answered at once. Operations complete by polling; no sleeps.

mod support;

use std::collections::BTreeMap;

use arm_emulator::{ArmErrorBody, EmulatorConfig, Fault, Profile, ResourceGroupSeed};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::http::{Answer, Harness};

const SUB: &str = "00000000-0000-0000-0000-0000000000ec";
const RG: &str = "rg-recorded";

fn config(profile: Profile) -> EmulatorConfig {
    EmulatorConfig {
        resource_groups: vec![ResourceGroupSeed::new(SUB, RG, "eastus")],
        // Only polls complete operations: a create stays in flight until the test polls it.
        polls_to_complete: Some(2),
        operation_duration: None,
        retry_after_secs: 0,
        profile,
        ..EmulatorConfig::default()
    }
}

fn account_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/{name}"
    )
}

/// The create request of the recordings.
fn recorded_create() -> Value {
    json!({"identity": {"type": "SystemAssigned"}, "kind": "OpenAI", "location": "eastus",
        "properties": {"publicNetworkAccess": "Enabled"}, "sku": {"name": "S0"}})
}

fn operation_headers(answer: &Answer) -> Vec<&'static str> {
    ["azure-asyncoperation", "location", "retry-after"]
        .into_iter()
        .filter(|name| answer.header(name).is_some())
        .collect()
}

/// The path and query parameters of an operation URL.
fn parts(url: &str) -> (String, BTreeMap<String, String>) {
    let url = url::Url::parse(url).expect("an absolute URL");
    let query = url.query_pairs().into_owned().collect();
    (url.path().to_string(), query)
}

/// `url` with the query parameter `name` changed to `value` (`None`: removed).
fn with_parameter(url: &str, name: &str, value: Option<&str>) -> String {
    let mut url = url::Url::parse(url).expect("an absolute URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .filter(|(key, _)| key != name)
        .collect();
    let mut query = url.query_pairs_mut();
    query.clear();
    for (key, kept) in &pairs {
        query.append_pair(key, kept);
    }
    if let Some(value) = value {
        query.append_pair(name, value);
    }
    drop(query);
    url.to_string()
}

impl Harness {
    async fn recorded(profile: Profile) -> Self {
        Self::with(config(profile)).await
    }

    async fn put_account(&self, name: &str, body: &Value) -> Answer {
        self.call(Method::PUT, &account_path(name), Some(body))
            .await
    }

    /// Creates the account and polls its operation to the end.
    async fn created(&self, name: &str, body: &Value) -> Answer {
        let created = self.put_account(name, body).await;
        assert!(created.status.is_success(), "{}", created.body);
        assert_eq!(self.finish(&created).await["status"], "Succeeded");
        self.get(&account_path(name)).await
    }
}

#[tokio::test]
async fn a_create_hands_out_azures_operation_url_and_its_status_document() {
    let harness = Harness::recorded(Profile::Recorded).await;
    let created = harness.put_account("acct", &recorded_create()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.provisioning_state(), "Creating");
    assert_eq!(operation_headers(&created), ["azure-asyncoperation"]);
    assert_eq!(created.header("etag"), created.body["etag"].as_str());

    let url = created.header("azure-asyncoperation").unwrap().to_string();
    let (path, query) = parts(&url);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    assert_eq!(
        segments[..7],
        [
            "subscriptions",
            SUB,
            "providers",
            "Microsoft.CognitiveServices",
            "locations",
            "eastus",
            "operationResults"
        ]
    );
    let id = segments[7];
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let keys: Vec<&str> = query.keys().map(String::as_str).collect();
    assert_eq!(keys, ["api-version", "c", "h", "s", "t"]);
    assert_eq!(query["api-version"], "2017-04-18");
    assert!(query["t"].parse::<u64>().is_ok(), "t is a tick count");
    assert!(
        url.len() > 3000,
        "as long as Azure's: {} characters",
        url.len()
    );

    let running = harness.get_url(&url).await;
    assert_eq!(running.status, StatusCode::OK, "{}", running.body);
    assert_eq!(operation_headers(&running), Vec::<&str>::new());
    assert_eq!(running.body["status"], "Creating");
    assert_eq!(running.body["id"], path);
    assert_eq!(running.body["name"], id);
    assert!(running.body["startTime"].is_string());
    assert!(running.body.get("endTime").is_none());

    let done = harness.get_url(&url).await;
    assert_eq!(done.body["status"], "Succeeded");
    assert!(done.body["endTime"].is_string());
    let account = harness.get(&account_path("acct")).await;
    assert_eq!(account.provisioning_state(), "Succeeded");
}

#[tokio::test]
async fn an_operation_url_with_an_altered_or_missing_signature_is_not_found() {
    let harness = Harness::recorded(Profile::Recorded).await;
    let created = harness.put_account("acct", &recorded_create()).await;
    let url = created.header("azure-asyncoperation").unwrap().to_string();
    let id = parts(&url).0.rsplit('/').next().unwrap().to_string();
    let altered = [
        with_parameter(&url, "h", Some("forged")),
        with_parameter(&url, "s", None),
        url.split('?').next().unwrap().to_string() + "?api-version=2017-04-18",
        url.replace("/operationResults/", "/operationStatuses/"),
    ];
    for forged in &altered {
        let answer = harness.get_url(forged).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{forged}");
        assert_eq!(answer.error_code(), "OperationNotFound");
    }
    // None of them counted as a poll: two polls of the real URL are still needed.
    let polls = &harness.emulator.state()["operations"][0]["polls"];
    assert_eq!(polls, 0);
    assert_eq!(harness.get_url(&url).await.body["status"], "Creating");
    // The parameters may come in another order.
    let (_, query) = parts(&url);
    let reordered = format!(
        "{}?h={}&s={}&c={}&t={}&api-version=2017-04-18",
        url.split('?').next().unwrap(),
        query["h"],
        query["s"],
        query["c"],
        query["t"]
    );
    let done = harness.get_url(&reordered).await;
    assert_eq!(done.body["status"], "Succeeded");
    assert_eq!(done.body["name"], id);
}

#[tokio::test]
async fn recorded_accepted_answers_a_create_200_accepted_with_the_same_url() {
    let harness = Harness::recorded(Profile::RecordedAccepted).await;
    let created = harness.put_account("acct", &recorded_create()).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.provisioning_state(), "Accepted");
    assert_eq!(operation_headers(&created), ["azure-asyncoperation"]);
    let url = created.header("azure-asyncoperation").unwrap().to_string();
    assert_eq!(parts(&url).1["api-version"], "2017-04-18");
    assert_eq!(harness.get_url(&url).await.body["status"], "Accepted");
    assert_eq!(harness.get_url(&url).await.body["status"], "Succeeded");
}

#[tokio::test]
async fn a_tags_only_put_is_answered_at_once_and_other_puts_stay_long_running() {
    for profile in [Profile::Recorded, Profile::RecordedAccepted] {
        let harness = Harness::recorded(profile).await;
        let mut body = recorded_create();
        harness.created("acct", &body).await;
        body["tags"] = json!({"env": "test"});
        let tagged = harness.put_account("acct", &body).await;
        assert_eq!(
            tagged.status,
            StatusCode::OK,
            "{profile:?}: {}",
            tagged.body
        );
        assert_eq!(tagged.provisioning_state(), "Succeeded");
        assert_eq!(operation_headers(&tagged), Vec::<&str>::new());
        assert_eq!(tagged.body["tags"], json!({"env": "test"}));
        assert_eq!(tagged.header("etag"), tagged.body["etag"].as_str());

        // Nothing runs: the next write is not refused with 409, and a change beyond tags is
        // the contract's long-running update.
        body["properties"]["disableLocalAuth"] = json!(true);
        let updated = harness.put_account("acct", &body).await;
        assert_eq!(updated.status, StatusCode::CREATED, "{}", updated.body);
        assert_eq!(updated.provisioning_state(), "Accepted");
        assert_eq!(
            operation_headers(&updated),
            ["azure-asyncoperation", "location", "retry-after"]
        );
        let status_url = updated.header("azure-asyncoperation").unwrap();
        assert!(status_url.contains("/operationStatuses/"), "{status_url}");
    }
}

#[tokio::test]
async fn the_long_running_profile_keeps_the_contract_forms_for_accounts() {
    let harness = Harness::recorded(Profile::LongRunning).await;
    let created = harness.put_account("acct", &recorded_create()).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(
        operation_headers(&created),
        ["azure-asyncoperation", "location", "retry-after"]
    );
    let status_url = created.header("azure-asyncoperation").unwrap();
    assert!(status_url.contains("/operationStatuses/") && status_url.contains("2024-10-01"));
    harness.finish(&created).await;
    let mut body = recorded_create();
    body["tags"] = json!({"env": "test"});
    let tagged = harness.put_account("acct", &body).await;
    assert_eq!(tagged.status, StatusCode::CREATED);
    assert_eq!(tagged.provisioning_state(), "Accepted");
    harness.finish(&tagged).await;
    let deleted = harness
        .call(Method::DELETE, &account_path("acct"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_scripted_failure_of_a_create_shows_in_the_recorded_status_document() {
    let harness = Harness::recorded(Profile::Recorded).await;
    harness.emulator.add_fault(Fault {
        method: Some("PUT".into()),
        path_contains: Some("/accounts/acct".into()),
        operation_error: Some(ArmErrorBody {
            code: "InternalServerError".into(),
            message: "The account could not be provisioned.".into(),
        }),
        ..Fault::default()
    });
    let created = harness.put_account("acct", &recorded_create()).await;
    assert_eq!(operation_headers(&created), ["azure-asyncoperation"]);
    let status = harness.finish(&created).await;
    assert_eq!(status["status"], "Failed");
    assert_eq!(status["error"]["code"], "InternalServerError");
    let account = harness.get(&account_path("acct")).await;
    assert_eq!(account.provisioning_state(), "Failed");
}

#[tokio::test]
async fn restore_purge_and_patch_stay_long_running_in_the_recorded_profile() {
    let harness = Harness::recorded(Profile::Recorded).await;
    let body = recorded_create();
    harness.created("acct", &body).await;
    let patched = harness
        .call(
            Method::PATCH,
            &account_path("acct"),
            Some(&json!({"properties": {"disableLocalAuth": true}})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::ACCEPTED);
    assert_eq!(operation_headers(&patched).len(), 3);
    harness.finish(&patched).await;

    let deleted = harness
        .call(Method::DELETE, &account_path("acct"), None)
        .await;
    assert_eq!(
        deleted.status,
        StatusCode::OK,
        "deleted at once, as recorded"
    );
    let mut restore = body.clone();
    restore["properties"]["restore"] = json!(true);
    let restored = harness.put_account("acct", &restore).await;
    assert_eq!(restored.status, StatusCode::CREATED);
    assert_eq!(operation_headers(&restored).len(), 3);
    harness.finish(&restored).await;

    harness
        .call(Method::DELETE, &account_path("acct"), None)
        .await;
    let purge = format!(
        "/subscriptions/{SUB}/providers/Microsoft.CognitiveServices/locations/eastus/resourceGroups/{RG}/deletedAccounts/acct"
    );
    let purged = harness.call(Method::DELETE, &purge, None).await;
    assert_eq!(purged.status, StatusCode::ACCEPTED);
    assert_eq!(operation_headers(&purged).len(), 3);
}
