//! Deployments through the engine against the emulator: minimal writes, one write at a time per
//! account, the account's readiness, ARM's refusals, and an account deleted deployments first.

mod common;
#[path = "support/fixtures.rs"]
mod fixtures;

use std::time::Duration;

use arm_emulator::{Emulator, Fault, Profile};
use cognitive_operator::api::{
    AccountReference, CognitiveServicesAccount, CognitiveServicesDeployment,
    CognitiveServicesDeploymentSpec, DeletionPolicy, DeploymentDeletionPolicy, DeploymentSku,
    ModelSpec, OWNER_TAG,
};
use cognitive_operator::arm::{AccountRef, ArmClient};
use cognitive_operator::cli::converge::{converge, converge_deployment};
use cognitive_operator::engine::{DeploymentOutcome, Engine, Next, QUOTA_RECHECK};
use common::*;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);
const PLACE: fixtures::Place = fixtures::Place {
    subscription: SUB,
    resource_group: RG,
    location: LOCATION,
    namespace: "team-docs",
};

fn deployment(name: &str, model: &str, sku: &str, capacity: i32) -> CognitiveServicesDeployment {
    let spec = CognitiveServicesDeploymentSpec {
        account_ref: AccountReference {
            name: "docs-openai".into(),
        },
        model: ModelSpec {
            format: "OpenAI".into(),
            name: model.into(),
            version: None,
        },
        sku: DeploymentSku {
            name: sku.into(),
            capacity: Some(capacity),
        },
        ..Default::default()
    };
    let mut resource = CognitiveServicesDeployment::new(name, spec);
    resource.metadata.namespace = Some("team-docs".into());
    resource.metadata.generation = Some(1);
    resource
}

/// A Ready OpenAI account, created through the engine.
async fn ready_account(engine: &Engine, client: &ArmClient) -> CognitiveServicesAccount {
    let mut account = fixtures::bare_account("docs-openai", &PLACE);
    let outcome = converge(engine, client, &mut account, false, TIMEOUT, |_| {}).await;
    assert!(outcome.ready(), "{:?}", outcome.status.conditions);
    account
}

async fn settle(
    engine: &Engine,
    client: &ArmClient,
    account: &CognitiveServicesAccount,
    resource: &mut CognitiveServicesDeployment,
    deleting: bool,
) -> DeploymentOutcome {
    let context = engine.account_context(Some(account));
    converge_deployment(
        engine,
        client,
        resource,
        &context,
        deleting,
        TIMEOUT,
        |_| {},
    )
    .await
}

fn ready_reason(outcome: &DeploymentOutcome) -> String {
    let ready = condition(&outcome.status.conditions, "Ready");
    format!("{}/{}: {}", ready.status, ready.reason, ready.message)
}

fn deployment_path(name: &str) -> String {
    format!(
        "{}/deployments/{name}",
        AccountRef::new(SUB, RG, "docs-openai").id()
    )
}

async fn setup() -> (Emulator, ArmClient, Engine) {
    let emulator = emulator().await;
    let client = client(&emulator);
    (emulator, client, Engine::default())
}

#[tokio::test]
async fn ten_deployments_applied_at_once_on_one_account_converge_without_a_conflict() {
    let (emulator, client, engine) = setup().await;
    let account = ready_account(&engine, &client).await;
    emulator.clear_requests();
    let resources: Vec<_> = (0..10)
        .map(|i| deployment(&format!("chat-{i}"), "gpt-4o", "GlobalStandard", 1))
        .collect();
    let outcomes = futures::future::join_all(resources.into_iter().map(|mut resource| {
        let (engine, client, account) = (&engine, &client, &account);
        async move { settle(engine, client, account, &mut resource, false).await }
    }))
    .await;
    for outcome in &outcomes {
        assert!(outcome.ready(), "{}", ready_reason(outcome));
    }
    let requests = emulator.requests();
    let conflicts: Vec<_> = requests.iter().filter(|r| r.status == 409).collect();
    assert!(conflicts.is_empty(), "409s: {conflicts:?}");
    assert_eq!(count(&requests, "PUT"), 10, "{:?}", writes(&requests));
}

#[tokio::test]
async fn a_capacity_change_is_one_patch_and_the_steady_state_writes_nothing() {
    let (emulator, client, engine) = setup().await;
    let account = ready_account(&engine, &client).await;
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 10);
    assert!(
        settle(&engine, &client, &account, &mut chat, false)
            .await
            .ready()
    );
    emulator.clear_requests();
    chat.spec.sku.capacity = Some(20);
    chat.metadata.generation = Some(2);
    let outcome = settle(&engine, &client, &account, &mut chat, false).await;
    assert!(outcome.ready(), "{}", ready_reason(&outcome));
    assert_eq!(outcome.status.capacity, Some(20));
    let requests = emulator.requests();
    assert_eq!(
        writes(&requests),
        [format!("PATCH {}", deployment_path("chat"))]
    );
    let patch = requests.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(
        patch.request_body,
        Some(json!({"sku": {"name": "GlobalStandard", "capacity": 20}}))
    );
    emulator.clear_requests();
    assert!(
        settle(&engine, &client, &account, &mut chat, false)
            .await
            .ready()
    );
    assert_eq!(writes(&emulator.requests()), Vec::<String>::new());
}

#[tokio::test]
async fn capacity_and_version_together_are_a_patch_then_a_put() {
    let (emulator, client, engine) = setup().await;
    let account = ready_account(&engine, &client).await;
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 10);
    chat.spec.model.version = Some("2024-11-20".into());
    assert!(
        settle(&engine, &client, &account, &mut chat, false)
            .await
            .ready()
    );
    emulator.clear_requests();
    chat.spec.sku.capacity = Some(30);
    chat.spec.model.version = Some("2024-08-06".into());
    chat.metadata.generation = Some(2);
    let outcome = settle(&engine, &client, &account, &mut chat, false).await;
    assert!(outcome.ready(), "{}", ready_reason(&outcome));
    assert_eq!(outcome.status.model_version.as_deref(), Some("2024-08-06"));
    let methods: Vec<String> = emulator
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["PATCH", "PUT"]);
}

#[tokio::test]
async fn an_auto_upgraded_version_is_not_drift() {
    let (emulator, client, engine) = setup().await;
    let account = ready_account(&engine, &client).await;
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 10);
    assert!(
        settle(&engine, &client, &account, &mut chat, false)
            .await
            .ready()
    );
    assert!(emulator.auto_upgrade(SUB, RG, "docs-openai", "chat", "2024-08-06"));
    emulator.clear_requests();
    let outcome = settle(&engine, &client, &account, &mut chat, false).await;
    assert!(outcome.ready(), "{}", ready_reason(&outcome));
    assert_eq!(outcome.status.model_version.as_deref(), Some("2024-08-06"));
    assert_eq!(writes(&emulator.requests()), Vec::<String>::new());
}

#[tokio::test]
async fn a_deployment_waits_for_its_account_without_calling_arm() {
    let (emulator, client, engine) = setup().await;
    let mut account = fixtures::bare_account("docs-openai", &PLACE);
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 10);
    let outcome = settle(&engine, &client, &account, &mut chat, false).await;
    assert!(
        ready_reason(&outcome).starts_with("False/AccountNotReady"),
        "{}",
        ready_reason(&outcome)
    );
    assert_eq!(outcome.next, Next::Resync);
    assert!(emulator.requests().is_empty());
    // Once the account is Ready the deployment goes ahead.
    converge(&engine, &client, &mut account, false, TIMEOUT, |_| {}).await;
    assert!(
        settle(&engine, &client, &account, &mut chat, false)
            .await
            .ready()
    );
}

#[tokio::test]
async fn arm_refusals_are_stalled_with_what_to_change() {
    let (emulator, client, engine) = setup().await;
    let account = ready_account(&engine, &client).await;
    emulator.set_quota(SUB, LOCATION, "gpt-4o", "GlobalStandard", 5);
    let mut big = deployment("big", "gpt-4o", "GlobalStandard", 10);
    let outcome = settle(&engine, &client, &account, &mut big, false).await;
    let reason = ready_reason(&outcome);
    assert!(reason.starts_with("False/InsufficientQuota"), "{reason}");
    assert!(
        reason.contains("spec.sku.capacity") && reason.contains('5'),
        "{reason}"
    );
    assert_eq!(outcome.next, Next::After(QUOTA_RECHECK));
    let mut unknown = deployment("unknown", "gpt-5-turbo-max", "GlobalStandard", 1);
    let outcome = settle(&engine, &client, &account, &mut unknown, false).await;
    let reason = ready_reason(&outcome);
    assert!(
        reason.starts_with("False/DeploymentModelNotSupported"),
        "{reason}"
    );
    assert!(reason.contains("spec.model"), "{reason}");
    // No resource was claimed by a refused create.
    assert!(outcome.status.arm_id.is_none());
}

#[tokio::test]
async fn a_conflict_caused_by_another_tool_is_retried_not_stalled() {
    let (emulator, client, engine) = setup().await;
    let account = ready_account(&engine, &client).await;
    emulator.add_fault(Fault {
        method: Some("PUT".into()),
        path_contains: Some("/deployments/chat".into()),
        status: Some(409),
        code: Some("RequestConflict".into()),
        message: Some("Another operation is being performed on the parent resource".into()),
        ..Fault::default()
    });
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 10);
    let mut reasons = Vec::new();
    let context = engine.account_context(Some(&account));
    let outcome = converge_deployment(&engine, &client, &mut chat, &context, false, TIMEOUT, |o| {
        reasons.push(ready_reason(o))
    })
    .await;
    assert!(outcome.ready(), "{}", ready_reason(&outcome));
    assert!(
        reasons[0].starts_with("False/RequestConflict"),
        "{reasons:?}"
    );
    assert!(
        !outcome
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True")
    );
}

#[tokio::test]
async fn someone_elses_deployment_is_left_alone_until_adopted() {
    let (emulator, client, engine) = setup().await;
    let account = ready_account(&engine, &client).await;
    emulator.seed_deployment(
        SUB,
        RG,
        "docs-openai",
        "chat",
        json!({"sku": {"name": "GlobalStandard", "capacity": 10},
               "properties": {"model": {"format": "OpenAI", "name": "gpt-4o"}}}),
    );
    emulator.clear_requests();
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 10);
    let outcome = settle(&engine, &client, &account, &mut chat, false).await;
    assert!(
        ready_reason(&outcome).starts_with("False/AlreadyExists"),
        "{}",
        ready_reason(&outcome)
    );
    // Deleting the resource does not delete what it never managed.
    let outcome = settle(&engine, &client, &account, &mut chat, true).await;
    assert!(outcome.deletion_finished);
    assert_eq!(writes(&emulator.requests()), Vec::<String>::new());
    chat.spec.adoption_policy = cognitive_operator::api::AdoptionPolicy::Adopt;
    let outcome = settle(&engine, &client, &account, &mut chat, false).await;
    assert!(outcome.ready(), "{}", ready_reason(&outcome));
    let tagged = &emulator.state()["deployments"];
    assert!(tagged.to_string().contains(OWNER_TAG), "{tagged}");
}

#[tokio::test]
async fn deleting_an_account_deletes_every_deployment_first_so_nothing_bills() {
    let (emulator, client, engine) = setup().await;
    let mut account = ready_account(&engine, &client).await;
    account.spec.deletion_policy = DeletionPolicy::DeleteAndPurge;
    let mut provisioned = deployment("ptu", "gpt-4o", "ProvisionedManaged", 100);
    assert!(
        settle(&engine, &client, &account, &mut provisioned, false)
            .await
            .ready()
    );
    // One no resource manages: it goes with the account all the same.
    emulator.seed_deployment(
        SUB,
        RG,
        "docs-openai",
        "by-hand",
        json!({"sku": {"name": "Standard", "capacity": 1},
               "properties": {"model": {"format": "OpenAI", "name": "gpt-4o-mini"}}}),
    );
    // The account's status lists both, with who manages each.
    let outcome = converge(&engine, &client, &mut account, false, TIMEOUT, |_| {}).await;
    let seen: Vec<_> = outcome
        .status
        .deployments
        .iter()
        .map(|d| (d.name.as_str(), d.managed_by.is_some()))
        .collect();
    assert_eq!(seen, [("by-hand", false), ("ptu", true)]);
    emulator.advance_clock(Duration::from_secs(3600));
    assert!(emulator.billing()["billingCapacity"].as_f64().unwrap() > 0.0);
    emulator.clear_requests();
    let outcome = converge(&engine, &client, &mut account, true, TIMEOUT, |_| {}).await;
    assert!(outcome.deletion_finished, "{:?}", outcome.status.conditions);
    let order: Vec<String> = writes(&emulator.requests());
    let account_id = AccountRef::new(SUB, RG, "docs-openai").id();
    let position = |needle: &str| order.iter().position(|w| w.ends_with(needle)).unwrap();
    assert!(
        position("/deployments/by-hand") < position(&account_id),
        "{order:?}"
    );
    assert!(
        position("/deployments/ptu") < position(&account_id),
        "{order:?}"
    );
    assert!(
        order.last().unwrap().contains("/deletedAccounts/"),
        "{order:?}"
    );
    let billing = emulator.billing();
    assert_eq!(billing["billingCapacity"].as_f64(), Some(0.0), "{billing}");
    let accrued = billing["accruedCapacityHours"].as_f64().unwrap();
    emulator.advance_clock(Duration::from_secs(3600));
    assert_eq!(
        emulator.billing()["accruedCapacityHours"].as_f64(),
        Some(accrued)
    );
    // The deployment resource's own deletion then finds nothing left to do.
    let outcome = settle(&engine, &client, &account, &mut provisioned, true).await;
    assert!(outcome.deletion_finished);
}

#[tokio::test]
async fn a_restored_account_brings_its_deployments_back_to_their_resources() {
    let (emulator, client, engine) = setup().await;
    let mut account = ready_account(&engine, &client).await;
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 10);
    assert!(
        settle(&engine, &client, &account, &mut chat, false)
            .await
            .ready()
    );
    // Someone deletes the account by hand: its deployments stay with the soft-deleted copy.
    let target = AccountRef::new(SUB, RG, "docs-openai");
    if let Some(operation) = client.delete_account(&target).await.unwrap() {
        client.wait(&operation, TIMEOUT).await.unwrap();
    }
    let outcome = converge(&engine, &client, &mut account, false, TIMEOUT, |_| {}).await;
    assert!(outcome.ready(), "{:?}", outcome.status.conditions);
    assert!(outcome.status.last_restore_time.is_some());
    emulator.clear_requests();
    let outcome = settle(&engine, &client, &account, &mut chat, false).await;
    assert!(outcome.ready(), "{}", ready_reason(&outcome));
    assert_eq!(writes(&emulator.requests()), Vec::<String>::new());
}

#[tokio::test]
async fn at_rest_one_list_of_the_account_serves_its_deployments_and_drift_is_read_again() {
    let (emulator, client, engine) = setup().await;
    let mut account = ready_account(&engine, &client).await;
    let mut deployments: Vec<_> = (0..3)
        .map(|i| deployment(&format!("chat-{i}"), "gpt-4o", "GlobalStandard", 5))
        .collect();
    for resource in &mut deployments {
        assert!(
            settle(&engine, &client, &account, resource, false)
                .await
                .ready()
        );
    }
    // The account's resync lists its deployments; theirs then need no ARM call.
    converge(&engine, &client, &mut account, false, TIMEOUT, |_| {}).await;
    emulator.clear_requests();
    for resource in &mut deployments {
        assert!(
            settle(&engine, &client, &account, resource, false)
                .await
                .ready()
        );
    }
    assert_eq!(emulator.requests(), Vec::new());
    // Someone scales one by hand: the list shows it, and the deployment is read afresh
    // before it is patched back.
    let drifted = cognitive_operator::arm::DeploymentRef::new(
        &AccountRef::new(SUB, RG, "docs-openai"),
        "chat-1",
    );
    let written = client
        .patch_deployment(
            &drifted,
            &json!({"sku": {"name": "GlobalStandard", "capacity": 7}}),
        )
        .await
        .unwrap();
    if let Some(operation) = written.operation {
        client.wait_deployment(&operation, TIMEOUT).await.unwrap();
    }
    converge(&engine, &client, &mut account, false, TIMEOUT, |_| {}).await;
    emulator.clear_requests();
    let outcome = settle(&engine, &client, &account, &mut deployments[1], false).await;
    assert!(outcome.ready(), "{}", ready_reason(&outcome));
    let requests = emulator.requests();
    let calls: Vec<String> = requests
        .iter()
        .take(2)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        [
            format!("GET {}", deployment_path("chat-1")),
            format!("PATCH {}", deployment_path("chat-1"))
        ]
    );
}

#[tokio::test]
async fn a_deployment_whose_create_failed_is_deleted_and_created_again() {
    for profile in [Profile::Recorded, Profile::LongRunning] {
        let emulator = emulator_in(profile).await;
        let (client, engine) = (client(&emulator), Engine::default());
        let account = ready_account(&engine, &client).await;
        emulator.add_fault(Fault {
            method: Some("PUT".into()),
            path_contains: Some("/deployments/chat".into()),
            operation_error: Some(arm_emulator::ArmErrorBody {
                code: "InternalServerError".into(),
                message: "provisioning failed".into(),
            }),
            ..Fault::default()
        });
        emulator.clear_requests();
        let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 10);
        let mut reasons = Vec::new();
        let context = engine.account_context(Some(&account));
        let outcome =
            converge_deployment(&engine, &client, &mut chat, &context, false, TIMEOUT, |o| {
                reasons.push(ready_reason(o))
            })
            .await;
        assert!(outcome.ready(), "{profile:?}: {}", ready_reason(&outcome));
        if profile == Profile::LongRunning {
            // While the deletion runs, the status says why.
            assert!(
                reasons.iter().any(|r| r.contains("Recreating")),
                "{reasons:?}"
            );
        }
        let path = deployment_path("chat");
        assert_eq!(
            writes(&emulator.requests()),
            [
                format!("PUT {path}"),
                format!("DELETE {path}"),
                format!("PUT {path}")
            ],
            "{profile:?}"
        );
    }
}

/// An emulator whose operations run until the clock is advanced past `HELD`: an Update can be
/// held open while a deletion starts.
async fn held_emulator() -> Emulator {
    cognitive_operator::install_crypto_provider();
    let config = arm_emulator::EmulatorConfig {
        polls_to_complete: None,
        operation_duration: Some(HELD),
        retry_after_secs: 0,
        throttling: None,
        ..arm_emulator::EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.expect("emulator starts");
    emulator.seed_resource_group(SUB, RG, LOCATION);
    emulator
}

const HELD: Duration = Duration::from_secs(600);

/// Reconciles the account until it settles, finishing each operation it waits for by moving
/// the emulator's clock past it (no sleeping).
async fn drive(
    engine: &Engine,
    client: &ArmClient,
    emulator: &Emulator,
    account: &mut CognitiveServicesAccount,
    deleting: bool,
) -> cognitive_operator::engine::Outcome {
    for _ in 0..30 {
        let outcome = engine
            .reconcile(client, account, deleting, jiff::Timestamp::now())
            .await;
        account.status = Some(outcome.status.clone());
        if outcome.deletion_finished || matches!(outcome.next, Next::Resync | Next::Done) {
            return outcome;
        }
        if outcome.status.pending_operation.is_some() {
            emulator.advance_clock(HELD + Duration::from_secs(1));
        }
    }
    panic!("the account did not settle: {:?}", account.status);
}

fn seed_provisioned(emulator: &Emulator, name: &str, capacity: u32) {
    emulator.seed_deployment(
        SUB,
        RG,
        "docs-openai",
        name,
        json!({"sku": {"name": "ProvisionedManaged", "capacity": capacity},
               "properties": {"model": {"format": "OpenAI", "name": "gpt-4o"}}}),
    );
}

/// Where `needle` first appears in the writes, which must contain it.
fn position(order: &[String], needle: &str) -> usize {
    order
        .iter()
        .position(|w| w.ends_with(needle))
        .unwrap_or_else(|| panic!("no write ending {needle}: {order:?}"))
}

#[tokio::test]
async fn a_deletion_that_starts_while_an_update_runs_deletes_every_deployment_first() {
    let emulator = held_emulator().await;
    let client = client(&emulator);
    let engine = Engine::default();
    let mut account = fixtures::bare_account("docs-openai", &PLACE);
    assert!(
        drive(&engine, &client, &emulator, &mut account, false)
            .await
            .ready()
    );
    seed_provisioned(&emulator, "ptu", 15);
    // A change that ARM applies in a long-running Update.
    account.spec.properties = Some(cognitive_operator::arm::models::AccountWritableProperties {
        public_network_access: Some("Disabled".into()),
        ..Default::default()
    });
    account.metadata.generation = Some(2);
    let outcome = engine
        .reconcile(&client, &account, false, jiff::Timestamp::now())
        .await;
    let pending = outcome
        .status
        .pending_operation
        .as_ref()
        .expect("an update runs");
    assert_eq!(pending.kind, cognitive_operator::arm::OperationKind::Update);
    account.status = Some(outcome.status.clone());
    // The deletion starts while it runs: it waits for it.
    let outcome = engine
        .reconcile(&client, &account, true, jiff::Timestamp::now())
        .await;
    assert!(outcome.status.pending_operation.is_some());
    assert!(!outcome.deletion_finished);
    account.status = Some(outcome.status.clone());
    emulator.clear_requests();
    emulator.advance_clock(HELD + Duration::from_secs(1));
    let outcome = drive(&engine, &client, &emulator, &mut account, true).await;
    assert!(outcome.deletion_finished, "{:?}", outcome.status.conditions);
    let order = writes(&emulator.requests());
    let account_id = AccountRef::new(SUB, RG, "docs-openai").id();
    assert!(
        position(&order, "/deployments/ptu") < position(&order, &account_id),
        "{order:?}"
    );
    let billing = emulator.billing();
    assert_eq!(billing["billingCapacity"].as_f64(), Some(0.0), "{billing}");
}

#[tokio::test]
async fn an_owner_tag_dropped_by_hand_does_not_end_the_deletion_early() {
    let (emulator, client, engine) = setup().await;
    let mut account = ready_account(&engine, &client).await;
    seed_provisioned(&emulator, "ptu", 15);
    seed_provisioned(&emulator, "ptu-2", 15);
    // Someone drops every tag in the portal: the status alone says the account is ours.
    let target = AccountRef::new(SUB, RG, "docs-openai");
    let dropped = client
        .update_account(&target, &json!({"tags": {}}))
        .await
        .unwrap();
    if let Some(operation) = dropped.operation {
        client.wait(&operation, TIMEOUT).await.unwrap();
    }
    emulator.clear_requests();
    let outcome = converge(&engine, &client, &mut account, true, TIMEOUT, |_| {}).await;
    assert!(outcome.deletion_finished, "{:?}", outcome.status.conditions);
    let order = writes(&emulator.requests());
    let account_id = AccountRef::new(SUB, RG, "docs-openai").id();
    assert!(
        position(&order, "/deployments/ptu") < position(&order, &account_id)
            && position(&order, "/deployments/ptu-2") < position(&order, &account_id),
        "{order:?}"
    );
    let billing = emulator.billing();
    assert_eq!(billing["billingCapacity"].as_f64(), Some(0.0), "{billing}");
}

#[tokio::test]
async fn a_deletion_that_starts_while_a_restore_runs_deletes_every_deployment_first() {
    let emulator = held_emulator().await;
    let client = client(&emulator);
    let engine = Engine::default();
    let mut account = fixtures::bare_account("docs-openai", &PLACE);
    assert!(
        drive(&engine, &client, &emulator, &mut account, false)
            .await
            .ready()
    );
    seed_provisioned(&emulator, "ptu", 15);
    // Deleted by hand: the copy keeps its deployment (and its billing).
    let target = AccountRef::new(SUB, RG, "docs-openai");
    client.delete_account(&target).await.unwrap();
    emulator.advance_clock(HELD + Duration::from_secs(1));
    // The next reconcile finds the copy and restores it; the deletion starts meanwhile.
    let outcome = engine
        .reconcile(&client, &account, false, jiff::Timestamp::now())
        .await;
    let pending = outcome
        .status
        .pending_operation
        .as_ref()
        .expect("a restore runs");
    assert_eq!(
        pending.kind,
        cognitive_operator::arm::OperationKind::Restore
    );
    account.status = Some(outcome.status.clone());
    let outcome = engine
        .reconcile(&client, &account, true, jiff::Timestamp::now())
        .await;
    assert!(outcome.status.pending_operation.is_some());
    account.status = Some(outcome.status.clone());
    emulator.clear_requests();
    emulator.advance_clock(HELD + Duration::from_secs(1));
    let outcome = drive(&engine, &client, &emulator, &mut account, true).await;
    assert!(outcome.deletion_finished, "{:?}", outcome.status.conditions);
    let order = writes(&emulator.requests());
    assert!(
        position(&order, "/deployments/ptu") < position(&order, &target.id()),
        "{order:?}"
    );
    let billing = emulator.billing();
    assert_eq!(billing["billingCapacity"].as_f64(), Some(0.0), "{billing}");
}

/// What the deployment resource's status shows of the deployment in Azure.
fn shown(outcome: &DeploymentOutcome) -> String {
    let status = &outcome.status;
    format!(
        "model {:?} sku {:?} capacity {:?} state {:?} limits {:?} armId {:?}",
        status.model_version,
        status.sku_name,
        status.capacity,
        status.provisioning_state,
        status.rate_limits,
        status.arm_id
    )
}

#[tokio::test]
async fn a_deployment_of_an_observe_account_never_writes() {
    let (emulator, client, engine) = setup().await;
    emulator.seed_account(
        SUB,
        RG,
        "docs-openai",
        json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}}),
    );
    // Tagged as this deployment resource's own, so nothing but the account's policy stops it.
    emulator.seed_deployment(
        SUB,
        RG,
        "docs-openai",
        "chat",
        json!({"sku": {"name": "GlobalStandard", "capacity": 10},
               "tags": {OWNER_TAG: "team-docs/chat"},
               "properties": {"model": {"format": "OpenAI", "name": "gpt-4o"}}}),
    );
    let mut account = fixtures::bare_account("docs-openai", &PLACE);
    account.spec.reconcile_policy = cognitive_operator::api::ReconcilePolicy::Observe;
    let outcome = converge(&engine, &client, &mut account, false, TIMEOUT, |_| {}).await;
    assert!(outcome.ready(), "{:?}", outcome.status.conditions);
    emulator.clear_requests();
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 20);
    let outcome = settle(&engine, &client, &account, &mut chat, false).await;
    let reason = ready_reason(&outcome);
    assert!(reason.starts_with("False/Drifted"), "{reason}");
    assert!(
        reason.contains("CognitiveServicesAccount docs-openai is reconcilePolicy Observe"),
        "{reason}"
    );
    assert_eq!(outcome.status.capacity, Some(10));
    assert_eq!(outcome.status.arm_id, None);
    // One that does not exist is reported, not created.
    let mut absent = deployment("absent", "gpt-4o", "GlobalStandard", 1);
    let outcome = settle(&engine, &client, &account, &mut absent, false).await;
    let reason = ready_reason(&outcome);
    assert!(reason.starts_with("False/NotFound"), "{reason}");
    assert_eq!(writes(&emulator.requests()), Vec::<String>::new());
    // Deleting the resource leaves the deployment in Azure without a call.
    emulator.clear_requests();
    let outcome = settle(&engine, &client, &account, &mut chat, true).await;
    assert!(outcome.deletion_finished, "{}", ready_reason(&outcome));
    assert_eq!(emulator.requests(), Vec::new());
}

#[tokio::test]
async fn a_create_that_lost_a_race_never_takes_the_deployment_over() {
    // The race needs a create that runs for a while: a long-running one.
    let emulator = emulator_answering(Profile::LongRunning, 3).await;
    let (client, engine) = (client(&emulator), Engine::default());
    let account = ready_account(&engine, &client).await;
    let context = engine.account_context(Some(&account));
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 10);
    let started = engine
        .reconcile_deployment(&client, &chat, &context, false, jiff::Timestamp::now())
        .await;
    assert!(
        started.status.pending_operation.is_some(),
        "{}",
        ready_reason(&started)
    );
    // Not ours until it is read back with our tag.
    assert_eq!(started.status.arm_id, None);
    chat.status = Some(started.status);
    // Another writer's PUT lands while ours runs: the deployment is theirs, untagged.
    emulator.seed_deployment(
        SUB,
        RG,
        "docs-openai",
        "chat",
        json!({"sku": {"name": "GlobalStandard", "capacity": 10},
               "properties": {"model": {"format": "OpenAI", "name": "gpt-4o"}}}),
    );
    emulator.clear_requests();
    let outcome = settle(&engine, &client, &account, &mut chat, false).await;
    let reason = ready_reason(&outcome);
    assert!(reason.starts_with("False/AlreadyExists"), "{reason}");
    assert_eq!(outcome.status.arm_id, None);
    assert_eq!(writes(&emulator.requests()), Vec::<String>::new());
    // Deleting the resource never deletes it.
    let outcome = settle(&engine, &client, &account, &mut chat, true).await;
    assert!(outcome.deletion_finished, "{}", ready_reason(&outcome));
    assert_eq!(writes(&emulator.requests()), Vec::<String>::new());
}

#[tokio::test]
async fn a_stalled_deployment_shows_its_verdict_and_nothing_of_the_foreign_one() {
    let (emulator, client, engine) = setup().await;
    let account = ready_account(&engine, &client).await;
    for (name, tags) in [
        (
            "theirs",
            json!({OWNER_TAG: "other-cluster/team-docs/theirs"}),
        ),
        ("unclaimed", json!({})),
    ] {
        emulator.seed_deployment(
            SUB,
            RG,
            "docs-openai",
            name,
            json!({"sku": {"name": "GlobalStandard", "capacity": 10}, "tags": tags,
                   "properties": {"model": {"format": "OpenAI", "name": "gpt-4o"}}}),
        );
    }
    for (name, verdict) in [("theirs", "AlreadyManaged"), ("unclaimed", "AlreadyExists")] {
        let mut resource = deployment(name, "gpt-4o", "GlobalStandard", 10);
        let outcome = settle(&engine, &client, &account, &mut resource, false).await;
        let reason = ready_reason(&outcome);
        assert!(reason.starts_with(&format!("False/{verdict}")), "{reason}");
        assert_eq!(
            shown(&outcome),
            "model None sku None capacity None state None limits [] armId None"
        );
        assert!(outcome.deployment.is_none());
    }
}

#[tokio::test]
async fn a_list_made_with_one_credential_never_answers_another() {
    let (emulator, client_a, engine) = setup().await;
    let client_b = client(&emulator);
    let mut account = ready_account(&engine, &client_a).await;
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 10);
    assert!(
        settle(&engine, &client_a, &account, &mut chat, false)
            .await
            .ready()
    );
    // The account's resync lists its deployments with client A.
    converge(&engine, &client_a, &mut account, false, TIMEOUT, |_| {}).await;
    emulator.clear_requests();
    assert!(
        settle(&engine, &client_a, &account, &mut chat, false)
            .await
            .ready()
    );
    assert_eq!(emulator.requests(), Vec::new(), "answered by A's list");
    let outcome = settle(&engine, &client_b, &account, &mut chat, false).await;
    assert!(outcome.ready(), "{}", ready_reason(&outcome));
    let reads: Vec<String> = emulator
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(reads, [format!("GET {}", deployment_path("chat"))]);
}

#[tokio::test]
async fn a_stateless_apply_at_rest_reads_one_list_for_all_deployments() {
    let (emulator, client, engine) = setup().await;
    let account = ready_account(&engine, &client).await;
    let mut deployments: Vec<_> = (0..2)
        .map(|i| deployment(&format!("chat-{i}"), "gpt-4o", "GlobalStandard", 5))
        .collect();
    for resource in &mut deployments {
        assert!(
            settle(&engine, &client, &account, resource, false)
                .await
                .ready()
        );
    }
    // As `cognitive-operator apply` runs: a new engine, manifests without status.
    let engine = Engine::default();
    let mut account = fixtures::bare_account("docs-openai", &PLACE);
    emulator.clear_requests();
    assert!(
        converge(&engine, &client, &mut account, false, TIMEOUT, |_| {})
            .await
            .ready()
    );
    for i in 0..2 {
        let mut resource = deployment(&format!("chat-{i}"), "gpt-4o", "GlobalStandard", 5);
        let outcome = settle(&engine, &client, &account, &mut resource, false).await;
        assert!(outcome.ready(), "{}", ready_reason(&outcome));
        assert_eq!(outcome.status.capacity, Some(5));
    }
    let requests = emulator.requests();
    let deployment_reads: Vec<&str> = requests
        .iter()
        .filter(|r| r.path.contains("/deployments"))
        .map(|r| r.path.as_str())
        .collect();
    let list = format!(
        "{}/deployments",
        AccountRef::new(SUB, RG, "docs-openai").id()
    );
    assert_eq!(
        deployment_reads,
        [list.as_str()],
        "one list, no GET per deployment"
    );
    assert_eq!(writes(&requests), Vec::<String>::new());
}

#[tokio::test]
async fn a_pending_operation_that_names_another_deployment_is_dropped_and_the_deployment_read() {
    use cognitive_operator::arm::{OperationKind, PendingOperation, PollMethod};
    let (emulator, client, engine) = setup().await;
    let account = ready_account(&engine, &client).await;
    let theirs = AccountRef::new(SUB, RG, "theirs");
    emulator.seed_account(
        SUB,
        RG,
        "theirs",
        json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}}),
    );
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 10);
    assert!(
        settle(&engine, &client, &account, &mut chat, false)
            .await
            .ready()
    );
    let forged = |resource_id: String| PendingOperation {
        kind: OperationKind::Update,
        poll: PollMethod::ProvisioningState,
        url: client.endpoint().join(&resource_id).unwrap().to_string(),
        resource_id,
        started_at: jiff::Timestamp::now().to_string(),
        retry_after_seconds: None,
    };
    for (case, operation) in [
        (
            "another account's deployment",
            forged(format!("{}/deployments/chat", theirs.id())),
        ),
        ("another account", forged(theirs.id())),
        ("a sibling deployment", forged(deployment_path("other"))),
    ] {
        chat.status.as_mut().unwrap().pending_operation = Some(operation);
        emulator.clear_requests();
        let outcome = Engine::default()
            .reconcile_deployment(
                &client,
                &chat,
                &engine.account_context(Some(&account)),
                false,
                jiff::Timestamp::now(),
            )
            .await;
        let paths: Vec<String> = emulator.requests().iter().map(|q| q.path.clone()).collect();
        assert!(
            paths
                .iter()
                .all(|p| !p.contains("/accounts/theirs") && !p.ends_with("/other")),
            "{case}: {paths:?}"
        );
        assert_eq!(paths, [deployment_path("chat")], "{case}");
        assert!(outcome.status.pending_operation.is_none(), "{case}");
        assert!(outcome.ready(), "{case}: {}", ready_reason(&outcome));
    }
}

#[tokio::test]
async fn a_deployment_create_whose_reply_is_lost_is_sent_once() {
    let (emulator, client, engine) = setup().await;
    let account = ready_account(&engine, &client).await;
    emulator.add_fault(Fault {
        method: Some("PUT".into()),
        path_contains: Some("/deployments/chat".into()),
        drop_after_handling: Some(true),
        ..Fault::default()
    });
    emulator.clear_requests();
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 10);
    let outcome = settle(&engine, &client, &account, &mut chat, false).await;
    assert!(outcome.ready(), "{}", ready_reason(&outcome));
    assert_eq!(
        writes(&emulator.requests()),
        [format!("PUT {}", deployment_path("chat"))]
    );
}

/// A spec that stopped validating (say, after an upgrade that reserved the owner tag) must not
/// let a deployment of ours go with its finalizer while it bills on in Azure.
#[tokio::test]
async fn an_invalid_spec_holds_the_deletion_of_a_deployment_in_azure() {
    let (emulator, client, engine) = setup().await;
    let account = ready_account(&engine, &client).await;
    let mut chat = deployment("chat", "gpt-4o", "GlobalStandard", 1);
    assert!(
        settle(&engine, &client, &account, &mut chat, false)
            .await
            .ready()
    );
    chat.spec.tags = Some([("Cognitive-Operator-Owner".to_string(), "x".to_string())].into());
    emulator.clear_requests();
    let outcome = settle(&engine, &client, &account, &mut chat, true).await;
    assert!(!outcome.deletion_finished, "{}", ready_reason(&outcome));
    assert!(
        ready_reason(&outcome).contains("InvalidSpec"),
        "{}",
        ready_reason(&outcome)
    );
    assert!(emulator.requests().is_empty(), "no ARM call");
    // Its account resource gone, the account's deletion policy took care of it.
    let no_account = engine.account_context(None);
    let outcome = converge_deployment(
        &engine,
        &client,
        &mut chat.clone(),
        &no_account,
        true,
        TIMEOUT,
        |_| {},
    )
    .await;
    assert!(outcome.deletion_finished, "{}", ready_reason(&outcome));

    // With nothing of it in Azure (no armId), or with Orphan, there is nothing to wait for.
    chat.spec.deletion_policy = DeploymentDeletionPolicy::Orphan;
    assert!(
        settle(&engine, &client, &account, &mut chat, true)
            .await
            .deletion_finished
    );
    let mut never_created = deployment("draft", "gpt-4o", "GlobalStandard", 1);
    never_created.spec.tags = chat.spec.tags.clone();
    assert!(
        settle(&engine, &client, &account, &mut never_created, true)
            .await
            .deletion_finished
    );
}
