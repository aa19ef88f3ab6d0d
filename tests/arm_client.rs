//! The ARM client against the emulator over real HTTP: every operation, both long-running
//! operation protocols, failures, resuming a stored handle, exact PATCH bodies, error
//! classification, rate limiting and fault handling.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arm_emulator::{
    ArmErrorBody, BucketConfig, Emulator, EmulatorConfig, Fault, Profile, ThrottleConfig,
};
use cognitive_operator::arm::error::codes;
use cognitive_operator::arm::models::{AccountProperties, AccountWritableProperties, Sku};
use cognitive_operator::arm::{
    Account, AccountRef, ArmClient, ArmClientConfig, ArmError, BucketShape, Credential,
    DeletedAccountRef, Deployment, DeploymentRef, KeyName, OperationKind, PendingOperation,
    PollMethod, PollStatus, RateLimits, RetryPolicy,
};
use common::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn account_body(subdomain: Option<&str>) -> Account {
    Account {
        location: Some(LOCATION.into()),
        kind: Some("OpenAI".into()),
        sku: Some(Sku {
            name: "S0".into(),
            ..Default::default()
        }),
        tags: Some([("team".to_string(), "a".to_string())].into()),
        properties: Some(AccountProperties {
            writable: AccountWritableProperties {
                custom_sub_domain_name: subdomain.map(str::to_string),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn target(name: &str) -> AccountRef {
    AccountRef::new(SUB, RG, name)
}

fn deleted(name: &str) -> DeletedAccountRef {
    DeletedAccountRef {
        subscription_id: SUB.into(),
        location: LOCATION.into(),
        resource_group: RG.into(),
        name: name.into(),
    }
}

async fn create(client: &ArmClient, name: &str) -> Account {
    let started = client
        .create_account(&target(name), &account_body(Some(name)))
        .await
        .unwrap();
    client
        .wait(&started.operation.expect("create is long-running"), WAIT)
        .await
        .unwrap();
    client
        .get_account(&target(name))
        .await
        .unwrap()
        .expect("created")
}

fn fault(method: &str, path_contains: &str) -> Fault {
    Fault {
        method: Some(method.into()),
        path_contains: Some(path_contains.into()),
        times: Some(1),
        ..Fault::default()
    }
}

fn expect_api_error(result: Result<impl std::fmt::Debug, ArmError>, code: &str) -> ArmError {
    let error = result.expect_err("an ARM error");
    assert!(error.has_code(code), "expected {code}, got {error}");
    error
}

// ----- operations -----------------------------------------------------------------------------

/// Deletes an account and waits for it to be gone: Azure was recorded answering 200 at once,
/// the contract also allows a 202 operation (the long-running profile).
async fn delete(client: &ArmClient, name: &str) {
    if let Some(deleting) = client.delete_account(&target(name)).await.unwrap() {
        client.wait(&deleting, WAIT).await.unwrap();
    }
}

#[tokio::test]
async fn create_get_update_list_keys_delete_purge_round_trip() {
    let emulator = emulator().await;
    let client = client(&emulator);
    assert_eq!(client.get_account(&target("acct")).await.unwrap(), None);

    let account = create(&client, "acct").await;
    assert_eq!(account.provisioning_state(), Some("Succeeded"));
    assert_eq!(account.endpoint(), Some("https://acct.openai.azure.com/"));

    let keys = client.list_keys(&target("acct")).await.unwrap();
    let rotated = client
        .regenerate_key(&target("acct"), KeyName::Key2)
        .await
        .unwrap();
    assert_eq!(rotated.key1, keys.key1, "Key1 must not change");
    assert_ne!(rotated.key2, keys.key2, "Key2 must change");

    let listed = client
        .list_accounts_by_resource_group(SUB, RG)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    delete(&client, "acct").await;
    assert_eq!(client.get_account(&target("acct")).await.unwrap(), None);
    let copy = client
        .get_deleted_account(&deleted("acct"))
        .await
        .unwrap()
        .expect("soft-deleted copy");
    assert!(copy.properties.unwrap().scheduled_purge_date.is_some());
    let all = client.list_deleted_accounts(SUB).await.unwrap();
    assert_eq!(
        DeletedAccountRef::parse_id(all[0].id.as_deref().unwrap()),
        Some(deleted("acct"))
    );

    let purge = client
        .purge_deleted_account(&deleted("acct"))
        .await
        .unwrap()
        .expect("purge is long-running");
    client.wait(&purge, WAIT).await.unwrap();
    assert_eq!(
        client.get_deleted_account(&deleted("acct")).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn restore_brings_back_the_account_with_its_keys() {
    let emulator = emulator().await;
    let client = client(&emulator);
    create(&client, "restored").await;
    let keys = client.list_keys(&target("restored")).await.unwrap();
    delete(&client, "restored").await;

    let restore = client
        .restore_account(&target("restored"), LOCATION)
        .await
        .unwrap();
    client
        .wait(&restore.operation.expect("restore is long-running"), WAIT)
        .await
        .unwrap();
    let account = client
        .get_account(&target("restored"))
        .await
        .unwrap()
        .expect("restored");
    assert_eq!(
        account.endpoint(),
        Some("https://restored.openai.azure.com/")
    );
    assert_eq!(client.list_keys(&target("restored")).await.unwrap(), keys);
    let put = emulator
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(
        put.request_body,
        Some(json!({"location": LOCATION, "properties": {"restore": true}}))
    );
}

#[tokio::test]
async fn lists_follow_next_link_across_pages() {
    let config = EmulatorConfig {
        page_size: 2,
        throttling: None,
        ..EmulatorConfig::default()
    };
    cognitive_operator::install_crypto_provider();
    let emulator = Emulator::start(config).await.unwrap();
    emulator.seed_resource_group(SUB, RG, LOCATION);
    for i in 0..5 {
        emulator.seed_account(
            SUB,
            RG,
            &format!("paged-{i}"),
            json!({"location": LOCATION, "kind": "TextAnalytics", "sku": {"name": "S0"}}),
        );
    }
    let client = client(&emulator);
    let mut names: Vec<String> = client
        .list_accounts_by_resource_group(SUB, RG)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|a| a.name)
        .collect();
    names.sort();
    assert_eq!(
        names,
        (0..5).map(|i| format!("paged-{i}")).collect::<Vec<_>>()
    );
    let pages = emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/accounts"))
        .count();
    assert_eq!(pages, 3, "5 accounts in pages of 2");
}

#[tokio::test]
async fn patch_bodies_carry_exactly_the_requested_fields() {
    let emulator = emulator().await;
    let client = client(&emulator);
    create(&client, "patched").await;
    emulator.clear_requests();
    let patch = json!({"tags": {"team": "b"}, "properties": {"publicNetworkAccess": "Disabled"}});
    let outcome = client
        .update_account(&target("patched"), &patch)
        .await
        .unwrap();
    client
        .wait(
            &outcome
                .operation
                .expect("a property change is long-running"),
            WAIT,
        )
        .await
        .unwrap();
    let sent: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].request_body, Some(patch));
    // Tags alone: ARM answers synchronously.
    let outcome = client
        .update_account(&target("patched"), &json!({"tags": {"team": "c"}}))
        .await
        .unwrap();
    assert!(outcome.operation.is_none());
    assert_eq!(outcome.account.unwrap().tags.unwrap()["team"], "c");
}

// ----- long-running operations ------------------------------------------------------------------

/// The handle of a create as a client following its status URL would hold it (the client
/// itself follows a create by reading the account).
fn by_status_url(created: PendingOperation) -> PendingOperation {
    PendingOperation {
        poll: PollMethod::AzureAsyncOperation,
        ..created
    }
}

#[tokio::test]
async fn a_create_is_followed_by_reading_the_account_and_a_failure_keeps_arm_s_error() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let started = client
        .create_account(&target("watched"), &account_body(None))
        .await
        .unwrap();
    emulator.clear_requests();
    client
        .wait(&started.operation.unwrap(), WAIT)
        .await
        .unwrap();
    let reads: Vec<String> = emulator
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        reads.iter().all(|r| r.ends_with("/accounts/watched")),
        "only the account is read: {reads:?}"
    );
    emulator.add_fault(Fault {
        operation_error: Some(ArmErrorBody {
            code: "QuotaExceeded".into(),
            message: "no more accounts of this kind".into(),
        }),
        ..fault("PUT", "/accounts/failing")
    });
    let started = client
        .create_account(&target("failing"), &account_body(None))
        .await
        .unwrap();
    let error = client
        .wait(&started.operation.unwrap(), WAIT)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "QuotaExceeded", "{error}");
}

#[tokio::test]
async fn the_location_protocol_is_followed_when_there_is_no_status_url() {
    // The contract's form: an account create answered with Location (and a status URL).
    let emulator = emulator_in(Profile::LongRunning).await;
    let client = client(&emulator);
    let started = client
        .create_account(&target("by-location"), &account_body(None))
        .await
        .unwrap();
    // A create is followed by reading the account, and keeps the status URL for a failure.
    let created = started.operation.unwrap();
    assert_eq!(created.poll, PollMethod::ProvisioningState);
    assert!(
        created.url.contains("/operationStatuses/"),
        "{}",
        created.url
    );
    let via_status = by_status_url(created);
    // Azure sends both headers; a handle built from the Location header alone must work too.
    let location = emulator.state()["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|op| {
            op["locationUrl"]
                .as_str()
                .or(op["location_url"].as_str())
                .map(str::to_string)
        });
    let url = location.unwrap_or_else(|| {
        via_status
            .url
            .replace("operationStatuses", "operationResults")
    });
    let by_location = PendingOperation {
        poll: PollMethod::Location,
        url,
        ..via_status
    };
    assert!(matches!(
        client.poll(&by_location).await.unwrap(),
        PollStatus::Running { .. }
    ));
    client.wait(&by_location, WAIT).await.unwrap();
    let polls: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("operationResults"))
        .collect();
    assert!(polls.len() >= 2, "polled the Location URL: {polls:?}");
    assert_eq!(
        client
            .get_account(&target("by-location"))
            .await
            .unwrap()
            .unwrap()
            .provisioning_state(),
        Some("Succeeded")
    );
}

#[tokio::test]
async fn an_operation_that_ends_failed_reports_the_arm_error() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let mut failing = fault("PUT", "accounts/doomed");
    failing.operation_error = Some(ArmErrorBody {
        code: "InternalServerError".into(),
        message: "capacity exhausted".into(),
    });
    emulator.add_fault(failing);
    let started = client
        .create_account(&target("doomed"), &account_body(None))
        .await
        .unwrap();
    let error = client
        .wait(&started.operation.unwrap(), WAIT)
        .await
        .unwrap_err();
    assert!(matches!(error, ArmError::OperationFailed { .. }), "{error}");
    assert_eq!(error.code(), "InternalServerError");
    assert!(error.message().contains("capacity exhausted"));
    assert!(
        error.is_retryable(),
        "a failed operation is re-planned, not given up"
    );
}

#[tokio::test]
async fn a_stored_handle_is_resumed_by_a_new_client() {
    let emulator = emulator_with(3).await;
    let stored = {
        let first = client(&emulator);
        let started = first
            .create_account(&target("resumed"), &account_body(None))
            .await
            .unwrap();
        serde_json::to_string(&started.operation.unwrap()).unwrap()
    };
    let handle: PendingOperation = serde_json::from_str(&stored).unwrap();
    let second = client(&emulator);
    second.wait(&handle, WAIT).await.unwrap();
    assert_eq!(
        second
            .get_account(&target("resumed"))
            .await
            .unwrap()
            .unwrap()
            .provisioning_state(),
        Some("Succeeded")
    );
    assert_eq!(
        count(&emulator.requests(), "PUT"),
        1,
        "resuming never re-sends the write"
    );
}

/// Operations last 10 s on the emulator clock, and their URLs expire as they end.
async fn emulator_whose_operation_urls_expire_at_once() -> Emulator {
    cognitive_operator::install_crypto_provider();
    let emulator = Emulator::start(EmulatorConfig {
        polls_to_complete: None,
        operation_duration: Some(Duration::from_secs(10)),
        operation_retention: Some(Duration::ZERO),
        retry_after_secs: 0,
        throttling: None,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    emulator.seed_resource_group(SUB, RG, LOCATION);
    emulator
}

#[tokio::test]
async fn an_expired_operation_url_falls_back_to_reading_the_account() {
    let emulator = emulator_whose_operation_urls_expire_at_once().await;
    let client = client(&emulator);
    let started = client
        .create_account(&target("expired"), &account_body(None))
        .await
        .unwrap();
    let handle = by_status_url(started.operation.unwrap());
    emulator.advance_clock(Duration::from_secs(11));
    match client.poll(&handle).await.unwrap() {
        PollStatus::Succeeded(Some(account)) => {
            assert_eq!(account.provisioning_state(), Some("Succeeded"))
        }
        other => panic!("expected success read from the account, got {other:?}"),
    }
    let polled: Vec<String> = emulator
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.status))
        .collect();
    assert_eq!(polled, ["PUT 201", "GET 404", "GET 200"]);
}

#[tokio::test]
async fn an_expired_operation_url_with_the_account_gone_says_the_outcome_is_unknown() {
    let emulator = emulator_whose_operation_urls_expire_at_once().await;
    let client = client(&emulator);
    let started = client
        .create_account(&target("vanished"), &account_body(None))
        .await
        .unwrap();
    emulator.advance_clock(Duration::from_secs(11));
    let deleted = client.delete_account(&target("vanished")).await.unwrap();
    if let Some(deleting) = deleted {
        emulator.advance_clock(Duration::from_secs(11));
        client.wait(&deleting, WAIT).await.unwrap();
    }
    let status = client
        .poll(&by_status_url(started.operation.unwrap()))
        .await
        .unwrap();
    assert!(
        matches!(status, PollStatus::Unknown),
        "never a success without an account, never an error forever: {status:?}"
    );
}

#[tokio::test]
async fn a_forbidden_operation_url_falls_back_to_reading_the_account() {
    // Two looks end an operation: the refused status poll is none, the account's GET one. A
    // status URL of the contract's form (operationStatuses).
    let emulator = emulator_answering(Profile::LongRunning, 2).await;
    let client = client(&emulator);
    let started = client
        .create_account(&target("forbidden"), &account_body(None))
        .await
        .unwrap();
    emulator.add_fault(Fault {
        status: Some(403),
        code: Some("AuthorizationFailed".into()),
        ..fault("GET", "/operationStatuses/")
    });
    emulator.clear_requests();
    // The account is still Creating: reading it says the operation runs on.
    let status = client
        .poll(&by_status_url(started.operation.unwrap()))
        .await
        .unwrap();
    assert!(matches!(status, PollStatus::Running { .. }), "{status:?}");
    let polled: Vec<String> = emulator
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.status))
        .collect();
    assert_eq!(polled, ["GET 403", "GET 200"]);
}

#[tokio::test]
async fn a_key_regeneration_is_never_sent_twice_after_an_ambiguous_failure() {
    let emulator = emulator().await;
    let client = client(&emulator);
    create(&client, "rotating").await;
    emulator.add_fault(Fault {
        drop: Some(true),
        ..fault("POST", "/regenerateKey")
    });
    let result = client
        .regenerate_key(&target("rotating"), KeyName::Key1)
        .await;
    assert!(
        result.is_err(),
        "the dropped answer is reported, not retried"
    );
    let sent = emulator
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/regenerateKey"))
        .count();
    assert_eq!(sent, 1);
}

/// How many requests `method` sent to a path ending in `suffix`.
fn sent(emulator: &Emulator, method: &str, suffix: &str) -> usize {
    emulator
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .count()
}

#[tokio::test]
async fn a_create_or_restore_is_never_sent_twice_after_an_ambiguous_failure() {
    let emulator = emulator().await;
    let client = client(&emulator);
    // The create takes effect, and its answer is lost on the way back.
    emulator.add_fault(Fault {
        drop_after_handling: Some(true),
        ..fault("PUT", "/accounts/lost")
    });
    let result = client
        .create_account(&target("lost"), &account_body(None))
        .await;
    assert!(result.is_err(), "the lost answer is reported: {result:?}");
    assert_eq!(sent(&emulator, "PUT", "/accounts/lost"), 1);
    assert!(client.get_account(&target("lost")).await.unwrap().is_some());

    create(&client, "gone").await;
    delete(&client, "gone").await;
    emulator.add_fault(Fault {
        drop_after_handling: Some(true),
        ..fault("PUT", "/accounts/gone")
    });
    emulator.clear_requests();
    assert!(
        client
            .restore_account(&target("gone"), LOCATION)
            .await
            .is_err()
    );
    assert_eq!(sent(&emulator, "PUT", "/accounts/gone"), 1);

    create(&client, "models").await;
    let chat = DeploymentRef::new(&target("models"), "chat");
    let body: Deployment = serde_json::from_value(json!({
        "sku": {"name": "GlobalStandard", "capacity": 1},
        "properties": {"model": {"format": "OpenAI", "name": "gpt-4o"}}
    }))
    .unwrap();
    emulator.add_fault(Fault {
        drop_after_handling: Some(true),
        ..fault("PUT", "/deployments/chat")
    });
    let result = client
        .put_deployment(&chat, &body, OperationKind::Create)
        .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(sent(&emulator, "PUT", "/deployments/chat"), 1);

    // An update sent twice is the same update: it is retried.
    create(&client, "tagged").await;
    emulator.add_fault(Fault {
        drop_after_handling: Some(true),
        ..fault("PATCH", "/accounts/tagged")
    });
    client
        .update_account(&target("tagged"), &json!({"tags": {"team": "b"}}))
        .await
        .expect("the resent PATCH is answered");
    assert_eq!(sent(&emulator, "PATCH", "/accounts/tagged"), 2);
}

// ----- the forms Azure answers in ---------------------------------------------------------------

async fn create_chat(
    client: &ArmClient,
    account: &str,
) -> cognitive_operator::arm::DeploymentWrite {
    let body: Deployment = serde_json::from_value(json!({
        "sku": {"name": "GlobalStandard", "capacity": 1},
        "properties": {"model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"}}
    }))
    .unwrap();
    let chat = DeploymentRef::new(&target(account), "chat");
    client
        .put_deployment(&chat, &body, OperationKind::Create)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_create_answered_done_is_no_operation_and_its_answer_is_the_deployment() {
    // Recorded Azure: 201 with provisioningState Succeeded and no operation header.
    let emulator = emulator_in(Profile::Recorded).await;
    let client = client(&emulator);
    create(&client, "sync").await;
    let written = create_chat(&client, "sync").await;
    assert_eq!(written.operation, None, "nothing to poll");
    let deployment = written.finished().expect("the answer shows the deployment");
    assert_eq!(deployment.provisioning_state(), Some("Succeeded"));
}

#[tokio::test]
async fn a_create_answered_as_an_operation_is_followed_and_its_answer_is_not_taken_as_done() {
    let emulator = emulator_in(Profile::LongRunning).await;
    let client = client(&emulator);
    create(&client, "lro").await;
    let written = create_chat(&client, "lro").await;
    let operation = written
        .operation
        .clone()
        .expect("a 201 Creating with headers");
    assert_eq!(
        written.finished(),
        None,
        "an operation's first answer is not its end"
    );
    client.wait_deployment(&operation, WAIT).await.unwrap();
}

#[tokio::test]
async fn without_a_retry_after_the_next_poll_is_due_after_the_clients_default() {
    let emulator = emulator().await;
    let mut config = ArmClientConfig::new(emulator.base_url());
    config.default_poll = Duration::from_secs(7);
    let client = ArmClient::new(config, Arc::new(Credential::static_token("t"))).unwrap();
    let mut handle = PendingOperation {
        kind: OperationKind::Create,
        poll: PollMethod::AzureAsyncOperation,
        url: format!("{}/x", emulator.base_url()),
        resource_id: target("paced").id(),
        started_at: "2026-12-03T00:00:00Z".into(),
        retry_after_seconds: None,
    };
    assert_eq!(client.poll_interval(&handle), Duration::from_secs(7));
    handle.retry_after_seconds = Some(2);
    assert_eq!(
        client.poll_interval(&handle),
        Duration::from_secs(2),
        "ARM's wait wins"
    );
}

#[tokio::test]
async fn a_create_that_could_not_connect_is_tried_again() {
    // A port nobody listens on: the connection fails before anything is sent.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut config = ArmClientConfig::new(endpoint);
    config.rate_limits = None;
    config.retry = fast_retries();
    let client = ArmClient::new(config, Arc::new(Credential::static_token("t"))).unwrap();
    let result = client
        .create_account(&target("unreachable"), &account_body(None))
        .await;
    assert!(matches!(result, Err(ArmError::Transport(_))), "{result:?}");
    assert_eq!(
        client.metrics().requests_for("CreateAccount"),
        u64::from(fast_retries().max_attempts),
        "every attempt failed to connect, so each was safe to make"
    );
}

#[tokio::test]
async fn a_handle_pointing_away_from_the_arm_endpoint_is_refused() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let handle = PendingOperation {
        kind: cognitive_operator::arm::OperationKind::Create,
        poll: PollMethod::AzureAsyncOperation,
        url: "http://127.0.0.2:9/steal-the-token".into(),
        resource_id: target("x").id(),
        started_at: "2026-01-01T00:00:00Z".into(),
        retry_after_seconds: None,
    };
    let error = client.poll(&handle).await.unwrap_err();
    assert!(matches!(error, ArmError::Config(_)), "{error}");
    assert!(emulator.requests().is_empty());
}

// ----- errors -----------------------------------------------------------------------------------

#[tokio::test]
async fn each_documented_error_is_classified() {
    let emulator = emulator().await;
    let client = client(&emulator);

    // 404 ResourceGroupNotFound: terminal.
    let missing_group = AccountRef::new(SUB, "no-such-rg", "x");
    let e = expect_api_error(
        client
            .create_account(&missing_group, &account_body(None))
            .await,
        codes::RESOURCE_GROUP_NOT_FOUND,
    );
    assert!(!e.is_retryable());

    // 404 ResourceNotFound on a write: terminal.
    let e = expect_api_error(
        client
            .update_account(&target("ghost"), &json!({"tags": {}}))
            .await,
        codes::RESOURCE_NOT_FOUND,
    );
    assert!(!e.is_retryable());

    // 409 RequestConflict while an operation runs: retryable.
    let started = client
        .create_account(&target("busy"), &account_body(Some("busy")))
        .await
        .unwrap();
    let e = expect_api_error(
        client
            .update_account(&target("busy"), &json!({"sku": {"name": "S1"}}))
            .await,
        codes::REQUEST_CONFLICT,
    );
    assert!(e.is_retryable());
    client
        .wait(&started.operation.unwrap(), WAIT)
        .await
        .unwrap();

    // 409 CustomDomainInUse: terminal.
    let e = expect_api_error(
        client
            .create_account(&target("other"), &account_body(Some("busy")))
            .await,
        codes::CUSTOM_DOMAIN_IN_USE,
    );
    assert!(!e.is_retryable());

    // 409 FlagMustBeSetForRestore: terminal.
    delete(&client, "busy").await;
    let e = expect_api_error(
        client
            .create_account(&target("busy"), &account_body(None))
            .await,
        codes::FLAG_MUST_BE_SET_FOR_RESTORE,
    );
    assert!(!e.is_retryable());
    assert!(e.message().contains("soft-deleted"));

    // CanNotRestoreANonExistingResource: terminal.
    let e = expect_api_error(
        client
            .restore_account(&target("never-existed"), LOCATION)
            .await,
        codes::CAN_NOT_RESTORE_NON_EXISTING,
    );
    assert!(!e.is_retryable());

    // 403 AuthorizationFailed on purge: terminal.
    emulator.set_purge_permission(false);
    let e = expect_api_error(
        client.purge_deleted_account(&deleted("busy")).await,
        codes::AUTHORIZATION_FAILED,
    );
    assert_eq!(e.status(), Some(403));
    assert!(!e.is_retryable());
    assert!(
        e.request_id().is_some(),
        "the request id is kept for support"
    );

    // 400 validation: terminal, naming the field.
    let mut bad = account_body(None);
    bad.properties
        .as_mut()
        .unwrap()
        .writable
        .public_network_access = Some("Maybe".into());
    let e = client
        .create_account(&target("bad"), &bad)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("publicNetworkAccess"), "{e}");
}

#[tokio::test]
async fn throttling_is_retryable_and_terminal_errors_are_not_retried() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let mut throttled = fault("GET", "accounts/t");
    throttled.status = Some(429);
    throttled.code = Some(codes::THROTTLED.into());
    throttled.retry_after = Some(0);
    throttled.times = Some(10);
    emulator.add_fault(throttled);
    let e = client.get_account(&target("t")).await.unwrap_err();
    assert!(e.is_throttled() && e.is_retryable(), "{e}");
    assert_eq!(
        client.metrics().throttled.get(),
        4,
        "all four attempts were throttled"
    );

    emulator.clear_faults();
    emulator.clear_requests();
    let mut invalid = fault("PUT", "accounts/v");
    invalid.status = Some(400);
    invalid.code = Some("InvalidRequestContent".into());
    emulator.add_fault(invalid);
    let e = client
        .create_account(&target("v"), &account_body(None))
        .await
        .unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(
        count(&emulator.requests(), "PUT"),
        1,
        "a terminal error is not retried"
    );
}

// ----- faults -----------------------------------------------------------------------------------

#[tokio::test]
async fn server_errors_dropped_connections_and_delays_are_retried() {
    let emulator = emulator().await;
    let client = client(&emulator);
    emulator.seed_account(
        SUB,
        RG,
        "flaky",
        json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}}),
    );
    for (status, code) in [(500, "InternalServerError"), (503, "ServiceUnavailable")] {
        let mut f = fault("GET", "accounts/flaky");
        f.status = Some(status);
        f.code = Some(code.into());
        f.retry_after = Some(0);
        emulator.add_fault(f);
    }
    let mut dropped = fault("GET", "accounts/flaky");
    dropped.drop = Some(true);
    emulator.add_fault(dropped);
    let account = client.get_account(&target("flaky")).await.unwrap();
    assert!(account.is_some());
    let statuses: Vec<u16> = emulator.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.len(), 4, "three faults then success: {statuses:?}");
    assert_eq!(statuses[3], 200);
    assert_eq!(client.metrics().retries.get(), 3);

    emulator.clear_requests();
    let mut slow = fault("GET", "accounts/flaky");
    slow.delay_ms = Some(50);
    emulator.add_fault(slow);
    assert!(
        client
            .get_account(&target("flaky"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        emulator.requests().len(),
        1,
        "a slow answer is still an answer"
    );
}

#[tokio::test]
async fn a_request_that_outlives_its_timeout_is_retried() {
    let emulator = emulator().await;
    emulator.seed_account(
        SUB,
        RG,
        "slow",
        json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}}),
    );
    let mut config = ArmClientConfig::new(emulator.base_url());
    config.rate_limits = None;
    config.retry = fast_retries();
    config.request_timeout = Duration::from_millis(200);
    let client = ArmClient::new(config, Arc::new(Credential::static_token("t"))).unwrap();
    let mut slow = fault("GET", "accounts/slow");
    slow.delay_ms = Some(2_000);
    emulator.add_fault(slow);
    assert!(client.get_account(&target("slow")).await.unwrap().is_some());
    assert_eq!(client.metrics().retries.get(), 1);
}

// ----- rate limiting ------------------------------------------------------------------------------

/// Azure's bucket shape with refill sped up by `scale`, for the emulator and the client alike.
fn azure_buckets(scale: f64) -> (ThrottleConfig, RateLimits) {
    (
        ThrottleConfig::azure().scaled(scale),
        RateLimits::azure().scaled(scale),
    )
}

async fn throttled_emulator(throttle: ThrottleConfig) -> Emulator {
    cognitive_operator::install_crypto_provider();
    let config = EmulatorConfig {
        throttling: Some(throttle),
        retry_after_secs: 0,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.unwrap();
    emulator.seed_resource_group(SUB, RG, LOCATION);
    emulator.seed_account(
        SUB,
        RG,
        "hot",
        json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}}),
    );
    emulator
}

fn limited_client(emulator: &Emulator, limits: RateLimits, retry: RetryPolicy) -> ArmClient {
    let mut config = ArmClientConfig::new(emulator.base_url());
    config.rate_limits = Some(limits);
    config.retry = retry;
    ArmClient::new(config, Arc::new(Credential::static_token("t"))).unwrap()
}

async fn patch_tags_concurrently(client: &ArmClient, writes: usize) -> Vec<Result<(), ArmError>> {
    use futures::StreamExt;
    futures::stream::iter(0..writes)
        .map(|i| async move {
            client
                .update_account(&target("hot"), &json!({"tags": {"n": i.to_string()}}))
                .await
                .map(|_| ())
        })
        .buffer_unordered(32)
        .collect()
        .await
}

#[tokio::test]
async fn six_hundred_writes_at_azures_bucket_size_get_no_429_and_wait_for_tokens() {
    let scale = 20.0;
    let (throttle, limits) = azure_buckets(scale);
    let emulator = throttled_emulator(throttle).await;
    let client = limited_client(&emulator, limits, fast_retries());
    let started = Instant::now();
    let results = patch_tags_concurrently(&client, 600).await;
    let elapsed = started.elapsed();
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        emulator.throttled_count(),
        0,
        "no request was sent into a 429"
    );
    assert_eq!(client.metrics().throttled.get(), 0);
    // The bucket holds 200; the other 400 need 400 / (10 × scale) seconds of refill.
    let bound = Duration::from_secs_f64(400.0 / (10.0 * scale));
    assert!(
        elapsed >= bound.mul_f64(0.9),
        "{elapsed:?} is faster than the bucket allows ({bound:?})"
    );
    assert!(
        client.metrics().throttle_waits.get() > 100,
        "requests waited for tokens instead"
    );
    eprintln!("600 writes took {elapsed:?}; token-bucket bound {bound:?}");
}

#[tokio::test]
async fn a_client_that_believes_in_more_capacity_recovers_through_retry_after_and_headers() {
    let scale = 10.0;
    let emulator_limits = ThrottleConfig {
        writes: BucketConfig {
            capacity: 10.0,
            refill_per_sec: 2.0,
        },
        ..ThrottleConfig::azure()
    }
    .scaled(scale);
    let emulator = throttled_emulator(emulator_limits).await;
    let believed = RateLimits {
        writes: BucketShape {
            capacity: 200.0,
            refill_per_sec: 10.0 * scale,
        },
        ..RateLimits::azure()
    };
    let retry = RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
    };
    let client = limited_client(&emulator, believed, retry);
    let results = patch_tags_concurrently(&client, 60).await;
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "every request eventually succeeds: {failures:?}"
    );
    assert!(
        emulator.throttled_count() > 0,
        "the emulator's smaller bucket did throttle"
    );
    assert_eq!(
        client.metrics().throttled.get(),
        emulator.throttled_count(),
        "every 429 was counted"
    );
}
