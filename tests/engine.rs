//! The reconcile engine against the emulator, counting ARM calls in its request log.

mod common;
#[path = "support/fixtures.rs"]
mod fixtures;

use std::time::Duration;

use arm_emulator::{ArmErrorBody, Emulator, Fault};
use cognitive_operator::api::{
    AdoptionPolicy, CognitiveServicesAccount, DeletionPolicy, OWNER_TAG, ReconcilePolicy,
    SoftDeletePolicy,
};
use cognitive_operator::arm::{AccountRef, ArmClient, OperationKind};
use cognitive_operator::cli::converge::converge;
use cognitive_operator::engine::{Engine, Next, Outcome};
use common::*;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(30);
const PLACE: fixtures::Place = fixtures::Place {
    subscription: SUB,
    resource_group: RG,
    location: LOCATION,
    namespace: "team-a",
};

fn resource(name: &str) -> CognitiveServicesAccount {
    fixtures::account(name, &PLACE, &[("team", "a")])
}

async fn settle(client: &ArmClient, r: &mut CognitiveServicesAccount) -> Outcome {
    converge(&Engine::default(), client, r, false, TIMEOUT, |_| {}).await
}

async fn delete(client: &ArmClient, r: &mut CognitiveServicesAccount) -> Outcome {
    converge(&Engine::default(), client, r, true, TIMEOUT, |_| {}).await
}

fn ready_reason(outcome: &Outcome) -> String {
    let ready = condition(&outcome.status.conditions, "Ready");
    format!("{}/{}", ready.status, ready.reason)
}

fn stalled_reason(outcome: &Outcome) -> String {
    let stalled = condition(&outcome.status.conditions, "Stalled");
    assert_eq!(stalled.status, "True", "{:?}", outcome.status.conditions);
    stalled.reason.clone()
}

fn stalled_message(outcome: &Outcome) -> String {
    condition(&outcome.status.conditions, "Stalled")
        .message
        .clone()
}

/// Soft-deletes an account by hand (as someone in the portal would), waiting for it when ARM
/// answers with an operation.
async fn delete_by_hand(client: &ArmClient, name: &str) {
    let deleting = client
        .delete_account(&AccountRef::new(SUB, RG, name))
        .await
        .unwrap();
    if let Some(operation) = deleting {
        client.wait(&operation, TIMEOUT).await.unwrap();
    }
}

fn seed_copy(emulator: &Emulator, name: &str, location: &str, owner: Option<&str>) {
    let mut tags = json!({"team": "old"});
    if let Some(owner) = owner {
        tags[OWNER_TAG] = json!(owner);
    }
    emulator.seed_deleted_account(
        SUB,
        RG,
        name,
        json!({"location": location, "kind": "OpenAI", "sku": {"name": "S0"}, "tags": tags, "properties": {"customSubDomainName": name}}),
    );
}

#[tokio::test]
async fn a_fresh_create_becomes_ready_and_the_steady_state_costs_one_get() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let mut r = resource("fresh");
    // One engine, as in a running operator: it remembers when it last knew the account's
    // deployments.
    let engine = Engine::default();
    let outcome = converge(&engine, &client, &mut r, false, TIMEOUT, |_| {}).await;
    assert!(outcome.ready(), "{:?}", outcome.status.conditions);
    assert_eq!(outcome.status.observed_generation, Some(1));
    assert_eq!(
        outcome.status.endpoint.as_deref(),
        Some("https://fresh.openai.azure.com/")
    );
    assert!(outcome.status.pending_operation.is_none());
    assert_eq!(
        writes(&emulator.requests()),
        vec![format!(
            "PUT /subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/fresh"
        )]
    );

    // A new account has no deployments: the engine lists them again only in an hour.
    emulator.clear_requests();
    let outcome = engine
        .reconcile(&client, &r, false, jiff::Timestamp::now())
        .await;
    assert!(outcome.ready());
    assert_eq!(outcome.next, Next::Resync);
    let requests = emulator.requests();
    assert_eq!(
        (count(&requests, "GET"), writes(&requests).len()),
        (1, 0),
        "{requests:?}"
    );
    assert!(outcome.writes.is_empty());
}

#[tokio::test]
async fn drift_behind_our_back_is_fixed_with_one_patch_of_only_those_fields() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let mut r = resource("drifty");
    settle(&client, &mut r).await;
    let target = AccountRef::new(SUB, RG, "drifty");
    let by_hand = json!({"tags": {"team": "a", "added-by-hand": "x"}, "properties": {"publicNetworkAccess": "Disabled"}});
    let op = client
        .update_account(&target, &by_hand)
        .await
        .unwrap()
        .operation
        .unwrap();
    client.wait(&op, TIMEOUT).await.unwrap();
    emulator.clear_requests();

    let outcome = settle(&client, &mut r).await;
    assert!(
        outcome.ready(),
        "{:?} {:?}",
        outcome.status.conditions,
        emulator.requests()
    );
    let patches: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|q| q.method != "GET")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0].method, "PATCH");
    assert_eq!(
        patches[0].request_body,
        Some(
            json!({"properties": {"publicNetworkAccess": "Enabled"}, "tags": {"team": "a", OWNER_TAG: "team-a/drifty"}})
        )
    );
}

#[tokio::test]
async fn restore_policy_brings_back_a_soft_deleted_account_and_applies_the_spec() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let mut r = resource("phoenix");
    settle(&client, &mut r).await;
    let keys = client
        .list_keys(&AccountRef::new(SUB, RG, "phoenix"))
        .await
        .unwrap();
    delete_by_hand(&client, "phoenix").await;
    r.spec.tags = Some([("team".to_string(), "b".to_string())].into());
    emulator.clear_requests();

    let outcome = settle(&client, &mut r).await;
    assert!(outcome.ready(), "{:?}", outcome.status.conditions);
    assert!(outcome.status.last_restore_time.is_some());
    // The status knew of no copy: the create found it (ARM refused it), then the restore.
    let methods: Vec<String> = emulator
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.status))
        .collect();
    assert_eq!(
        methods,
        vec!["PUT 409", "PUT 201", "PATCH 200"],
        "a refused create, the restore, then the tags"
    );
    assert_eq!(
        client
            .list_keys(&AccountRef::new(SUB, RG, "phoenix"))
            .await
            .unwrap(),
        keys,
        "keys survive a restore"
    );
    assert!(
        !emulator.requests().iter().any(|q| q.method == "DELETE"),
        "nothing purged"
    );
}

#[tokio::test]
async fn purge_policy_purges_the_copy_then_creates_a_new_account() {
    let emulator = emulator().await;
    let client = client(&emulator);
    seed_copy(&emulator, "reborn", LOCATION, None);
    let mut r = resource("reborn");
    r.spec.soft_delete_policy = SoftDeletePolicy::Purge;
    let refused = settle(&client, &mut r).await;
    assert_eq!(
        stalled_reason(&refused),
        "AlreadyExists",
        "a copy nobody claims is purged only by adoption"
    );
    assert_eq!(
        refused_writes(&emulator),
        ["PUT 409"],
        "only the create that found the copy, refused"
    );
    r.spec.adoption_policy = AdoptionPolicy::Adopt;
    r.metadata.generation = Some(2);
    emulator.clear_requests();
    let outcome = settle(&client, &mut r).await;
    assert!(outcome.ready(), "{:?}", outcome.status.conditions);
    assert!(outcome.status.last_purge_time.is_some());
    let w = writes(&emulator.requests());
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("DELETE")
            && w[0].contains(&format!(
                "/locations/{LOCATION}/resourceGroups/{RG}/deletedAccounts/reborn"
            ))
    );
    assert!(w[1].starts_with("PUT"));
}

#[tokio::test]
async fn fail_policy_stalls_naming_the_copy_and_its_purge_date() {
    let emulator = emulator().await;
    let client = client(&emulator);
    seed_copy(&emulator, "kept", LOCATION, None);
    let mut r = resource("kept");
    r.spec.soft_delete_policy = SoftDeletePolicy::Fail;
    let outcome = settle(&client, &mut r).await;
    assert_eq!(stalled_reason(&outcome), "SoftDeletedCopyExists");
    let purge_date = outcome
        .status
        .soft_deleted_copy
        .as_ref()
        .unwrap()
        .scheduled_purge_date
        .clone()
        .unwrap();
    assert!(stalled_message(&outcome).contains(&purge_date));
    assert_eq!(
        refused_writes(&emulator),
        ["PUT 409"],
        "Fail changes nothing: the create that found the copy was refused"
    );
}

/// The writes and what ARM answered them.
fn refused_writes(emulator: &Emulator) -> Vec<String> {
    emulator
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.status))
        .collect()
}

#[tokio::test]
async fn a_copy_in_another_location_stalls_restore_and_is_purged_where_it_is_with_purge() {
    let emulator = emulator().await;
    let client = client(&emulator);
    // This resource's own account from before, deleted while it lived in eastus.
    seed_copy(&emulator, "wanderer", "eastus", Some("team-a/wanderer"));
    let mut r = resource("wanderer");
    let outcome = settle(&client, &mut r).await;
    assert_eq!(stalled_reason(&outcome), "SoftDeletedCopyElsewhere");
    assert!(stalled_message(&outcome).contains("eastus"));
    // The copy is found when ARM refuses the create (no subscription-wide list on every create).
    let attempts: Vec<_> = emulator
        .requests()
        .into_iter()
        .filter(|q| q.method != "GET")
        .collect();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(
        (attempts[0].method.as_str(), attempts[0].status),
        ("PUT", 409)
    );
    let retried = settle(&client, &mut r).await;
    assert_eq!(stalled_reason(&retried), "SoftDeletedCopyElsewhere");

    emulator.clear_requests();
    r.spec.soft_delete_policy = SoftDeletePolicy::Purge;
    r.metadata.generation = Some(2);
    let outcome = settle(&client, &mut r).await;
    assert!(outcome.ready(), "{:?}", outcome.status.conditions);
    let w = writes(&emulator.requests());
    assert!(
        w[0].starts_with("DELETE") && w[0].contains("/locations/eastus/"),
        "{w:?}"
    );
}

#[tokio::test]
async fn purge_never_reaches_a_copy_in_another_resource_group_or_one_another_resource_owns() {
    let emulator = emulator().await;
    let client = client(&emulator);
    emulator.seed_deleted_account(
        SUB,
        "team-b-rg",
        "victim",
        json!({"location": "westus", "kind": "OpenAI", "sku": {"name": "S0"}, "properties": {"customSubDomainName": "victim"}}),
    );
    seed_copy(
        &emulator,
        "claimed",
        "westus",
        Some("other-cluster/team-b/claimed"),
    );
    for name in ["victim", "claimed"] {
        let mut r = resource(name);
        r.spec.soft_delete_policy = SoftDeletePolicy::Purge;
        let outcome = settle(&client, &mut r).await;
        assert!(outcome.stalled(), "{name}: {:?}", outcome.status.conditions);
        let purges: Vec<_> = writes(&emulator.requests())
            .into_iter()
            .filter(|w| w.starts_with("DELETE"))
            .collect();
        assert!(purges.is_empty(), "{name}: {purges:?}");
    }
    let victim = cognitive_operator::arm::DeletedAccountRef {
        resource_group: "team-b-rg".into(),
        ..deleted_ref("victim")
    };
    for copy in [victim, deleted_ref("claimed")] {
        let survives = client.get_deleted_account(&copy).await.unwrap();
        assert!(survives.is_some(), "{copy:?} was purged");
    }
}

#[tokio::test]
async fn delete_policies_delete_purge_or_leave_the_account() {
    let emulator = emulator().await;
    let client = client(&emulator);

    let mut soft = resource("soft");
    settle(&client, &mut soft).await;
    assert!(delete(&client, &mut soft).await.deletion_finished);
    assert!(
        client
            .get_deleted_account(&deleted_ref("soft"))
            .await
            .unwrap()
            .is_some(),
        "Delete leaves a restorable copy"
    );

    let mut gone = resource("gone");
    gone.spec.deletion_policy = DeletionPolicy::DeleteAndPurge;
    settle(&client, &mut gone).await;
    assert!(delete(&client, &mut gone).await.deletion_finished);
    assert!(
        client
            .get_deleted_account(&deleted_ref("gone"))
            .await
            .unwrap()
            .is_none(),
        "DeleteAndPurge purges"
    );

    let mut kept = resource("orphaned");
    kept.spec.deletion_policy = DeletionPolicy::Orphan;
    settle(&client, &mut kept).await;
    emulator.clear_requests();
    assert!(delete(&client, &mut kept).await.deletion_finished);
    assert!(emulator.requests().is_empty(), "Orphan makes no ARM call");
}

fn deleted_ref(name: &str) -> cognitive_operator::arm::DeletedAccountRef {
    cognitive_operator::arm::DeletedAccountRef {
        subscription_id: SUB.into(),
        location: LOCATION.into(),
        resource_group: RG.into(),
        name: name.into(),
    }
}

#[tokio::test]
async fn a_forbidden_purge_is_reported_and_the_deletion_is_not_finished() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let mut r = resource("locked");
    r.spec.deletion_policy = DeletionPolicy::DeleteAndPurge;
    settle(&client, &mut r).await;
    emulator.set_purge_permission(false);
    let outcome = delete(&client, &mut r).await;
    assert!(!outcome.deletion_finished, "the finalizer must stay");
    assert_eq!(stalled_reason(&outcome), "PurgeForbidden");
    assert!(
        stalled_message(&outcome).contains(
            "Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/delete"
        )
    );
    emulator.set_purge_permission(true);
    assert!(delete(&client, &mut r).await.deletion_finished);
}

#[tokio::test]
async fn adoption_takes_over_only_when_asked_and_two_resources_cannot_share_an_account() {
    let emulator = emulator().await;
    let client = client(&emulator);
    emulator.seed_account(SUB, RG, "legacy", json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}, "properties": {"customSubDomainName": "legacy"}}));
    let mut r = resource("legacy");
    let outcome = settle(&client, &mut r).await;
    assert_eq!(stalled_reason(&outcome), "AlreadyExists");
    assert!(writes(&emulator.requests()).is_empty());

    r.spec.adoption_policy = AdoptionPolicy::Adopt;
    let outcome = settle(&client, &mut r).await;
    assert!(outcome.ready(), "{:?}", outcome.status.conditions);
    assert_eq!(writes(&emulator.requests()).len(), 1, "one PATCH adopts it");

    let mut twin = resource("legacy");
    twin.metadata.namespace = Some("team-b".into());
    twin.spec.adoption_policy = AdoptionPolicy::Adopt;
    let outcome = settle(&client, &mut twin).await;
    assert_eq!(stalled_reason(&outcome), "AlreadyManaged");
    assert!(stalled_message(&outcome).contains("team-a/legacy"));
}

#[tokio::test]
async fn an_immutable_change_stalls_without_writing() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let mut r = resource("fixed");
    settle(&client, &mut r).await;
    emulator.clear_requests();
    r.spec.location = "eastus".into();
    let outcome = settle(&client, &mut r).await;
    assert_eq!(stalled_reason(&outcome), "ImmutableFieldChanged");
    assert!(stalled_message(&outcome).contains("spec.location"));
    assert!(writes(&emulator.requests()).is_empty());
}

#[tokio::test]
async fn observe_reports_drift_and_never_writes_and_pause_makes_no_call() {
    let emulator = emulator().await;
    let client = client(&emulator);
    emulator.seed_account(SUB, RG, "watched", json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "F0"}, "properties": {"customSubDomainName": "watched"}}));
    let mut r = resource("watched");
    r.spec.reconcile_policy = ReconcilePolicy::Observe;
    let outcome = settle(&client, &mut r).await;
    assert_eq!(ready_reason(&outcome), "False/Drifted");
    let fields: Vec<&str> = outcome
        .status
        .drift
        .iter()
        .map(|d| d.field.as_str())
        .collect();
    assert_eq!(fields, vec!["sku.name", "tags"]);
    assert_eq!(outcome.status.drift[0].observed, "\"F0\"");
    assert!(
        writes(&emulator.requests()).is_empty(),
        "Observe never writes"
    );

    emulator.clear_requests();
    r.spec.reconcile_policy = ReconcilePolicy::Pause;
    let outcome = settle(&client, &mut r).await;
    assert_eq!(ready_reason(&outcome), "False/Paused");
    assert!(emulator.requests().is_empty(), "Pause makes no ARM call");
}

#[tokio::test]
async fn an_operation_that_fails_is_reported_and_retried() {
    let emulator = emulator().await;
    let client = client(&emulator);
    emulator.add_fault(Fault {
        method: Some("PUT".into()),
        path_contains: Some("accounts/unlucky".into()),
        times: Some(1),
        operation_error: Some(ArmErrorBody {
            code: "InternalServerError".into(),
            message: "region at capacity".into(),
        }),
        ..Fault::default()
    });
    let engine = Engine::default();
    let mut r = resource("unlucky");
    let mut failed = None;
    for _ in 0..5 {
        let outcome = engine
            .reconcile(&client, &r, false, jiff::Timestamp::now())
            .await;
        r.status = Some(outcome.status.clone());
        if let Next::Backoff { .. } = outcome.next {
            failed = Some(outcome);
            break;
        }
    }
    let failed = failed.expect("the failure asks for a backoff");
    assert_eq!(ready_reason(&failed), "False/InternalServerError");
    assert_eq!(
        failed.status.last_error.as_ref().unwrap().message,
        "region at capacity"
    );
    let outcome = settle(&client, &mut r).await;
    assert!(outcome.ready(), "{:?}", outcome.status.conditions);
    assert!(outcome.status.last_error.is_none());
}

#[tokio::test]
async fn a_fresh_engine_resumes_a_pending_operation_from_the_status() {
    let emulator = emulator_with(3).await;
    let client = client(&emulator);
    let mut r = resource("resumed");
    let first = Engine::default()
        .reconcile(&client, &r, false, jiff::Timestamp::now())
        .await;
    let pending = first
        .status
        .pending_operation
        .clone()
        .expect("the create is in flight");
    assert_eq!(pending.kind, OperationKind::Create);
    assert_eq!(first.writes.len(), 1);
    // A restart: only the stored status survives (round-tripped through JSON as in etcd).
    let stored: serde_json::Value = serde_json::to_value(&first.status).unwrap();
    r.status = Some(serde_json::from_value(stored).unwrap());
    let fresh_client = common::client(&emulator);
    let outcome = settle(&fresh_client, &mut r).await;
    assert!(outcome.ready(), "{:?}", outcome.status.conditions);
    assert_eq!(
        count(&emulator.requests(), "PUT"),
        1,
        "the create was not sent twice"
    );
}

#[tokio::test]
async fn a_pending_operation_past_its_age_limit_is_dropped_and_the_account_read_instead() {
    // Operations here never finish by polls: polling a stale handle would wait forever.
    let emulator = emulator_with(1_000).await;
    let client = client(&emulator);
    let mut r = resource("stale");
    let now = jiff::Timestamp::now();
    let first = Engine::default().reconcile(&client, &r, false, now).await;
    let mut status = first.status.clone();
    status
        .pending_operation
        .as_mut()
        .expect("the create is in flight")
        .started_at = (now - jiff::SignedDuration::from_hours(3)).to_string();
    r.status = Some(status);
    emulator.clear_requests();
    let outcome = Engine::default().reconcile(&client, &r, false, now).await;
    assert!(
        outcome.status.pending_operation.is_none(),
        "the stale handle is gone"
    );
    let calls: Vec<String> = emulator
        .requests()
        .iter()
        .map(|q| format!("{} {}", q.method, q.path.rsplit('/').next().unwrap()))
        .collect();
    assert_eq!(
        calls,
        ["GET stale"],
        "the account is read, the operation URL is not polled, nothing is re-sent"
    );
}

#[tokio::test]
async fn an_invalid_spec_holds_a_deletion_only_when_the_policy_needs_azure() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let mut r = resource("broken");
    r.spec.resync_interval = Some("soon".into());
    let outcome = Engine::default()
        .reconcile(&client, &r, true, jiff::Timestamp::now())
        .await;
    assert!(
        !outcome.deletion_finished,
        "Delete cannot run without a valid target"
    );
    assert_eq!(stalled_reason(&outcome), "InvalidSpec");
    r.spec.deletion_policy = DeletionPolicy::Orphan;
    let orphaned = Engine::default()
        .reconcile(&client, &r, true, jiff::Timestamp::now())
        .await;
    assert!(
        orphaned.deletion_finished,
        "Orphan needs no ARM call, so nothing holds it"
    );
    assert!(emulator.requests().is_empty());
}

/// Another writer's PUT lands between our create and its confirmation: the account read back
/// is not ours, so it is never tagged, patched or deleted by this resource.
#[tokio::test]
async fn a_create_that_lost_a_race_never_takes_the_account_over() {
    for (name, their_owner, verdict) in [
        ("raced", None, "AlreadyExists"),
        (
            "raced-tagged",
            Some("other-cluster/team-a/raced"),
            "AlreadyManaged",
        ),
    ] {
        let emulator = emulator_with(3).await;
        let client = client(&emulator);
        let mut r = resource(name);
        let outcome = Engine::default()
            .reconcile(&client, &r, false, jiff::Timestamp::now())
            .await;
        assert!(outcome.status.pending_operation.is_some(), "a create runs");
        assert_eq!(outcome.status.arm_id, None, "accepted is not yet ours");
        r.status = Some(outcome.status);
        let mut tags = json!({"team": "theirs"});
        if let Some(owner) = their_owner {
            tags[OWNER_TAG] = json!(owner);
        }
        emulator.seed_account(
            SUB,
            RG,
            name,
            json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}, "tags": tags,
                   "properties": {"customSubDomainName": name}}),
        );
        emulator.clear_requests();
        let outcome = settle(&client, &mut r).await;
        assert_eq!(stalled_reason(&outcome), verdict, "{name}");
        assert_eq!(outcome.status.arm_id, None, "{name}");
        assert!(outcome.foreign, "{name}");
        assert_eq!(writes(&emulator.requests()), Vec::<String>::new(), "{name}");
        let outcome = delete(&client, &mut r).await;
        assert!(outcome.deletion_finished, "{name}");
        assert_eq!(
            writes(&emulator.requests()),
            Vec::<String>::new(),
            "{name}: never deleted"
        );
    }
}

/// An AlreadyManaged/AlreadyExists resource's status gets the verdict and nothing of the
/// account it is not allowed to manage: not its endpoint, state, nor its deployments and their
/// owners (which are not even listed).
#[tokio::test]
async fn a_stalled_resource_shows_its_verdict_and_nothing_of_the_foreign_account() {
    for (name, their_owner, verdict) in [
        ("theirs", Some("other/ns/x"), "AlreadyManaged"),
        ("nobodys", None, "AlreadyExists"),
    ] {
        let emulator = emulator().await;
        let client = client(&emulator);
        let mut tags = json!({});
        if let Some(owner) = their_owner {
            tags[OWNER_TAG] = json!(owner);
        }
        emulator.seed_account(
            SUB,
            RG,
            name,
            json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}, "tags": tags,
                   "properties": {"customSubDomainName": name}}),
        );
        emulator.seed_deployment(
            SUB,
            RG,
            name,
            "their-chat",
            json!({"sku": {"name": "Standard", "capacity": 1}, "tags": {OWNER_TAG: "other/ns/chat"},
                   "properties": {"model": {"format": "OpenAI", "name": "gpt-4o-mini"}}}),
        );
        let mut r = resource(name);
        let outcome = settle(&client, &mut r).await;
        assert_eq!(stalled_reason(&outcome), verdict);
        assert!(outcome.foreign, "{name}");
        let status = &outcome.status;
        assert_eq!(status.endpoint, None, "{name}");
        assert_eq!(status.endpoints, None, "{name}");
        assert_eq!(status.provisioning_state, None, "{name}");
        assert!(
            status.deployments.is_empty(),
            "{name}: {:?}",
            status.deployments
        );
        assert!(status.drift.is_empty(), "{name}");
        let listed = emulator
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/deployments"))
            .count();
        assert_eq!(listed, 0, "{name}: its deployments are not read");
    }
}

/// DeleteAndPurge says "purged" only when it purged: a copy not visible (yet) is named as such.
#[tokio::test]
async fn delete_and_purge_says_when_no_purge_took_place() {
    let emulator = emulator().await;
    let client = client(&emulator);
    let mut hidden = resource("hidden");
    hidden.spec.deletion_policy = DeletionPolicy::DeleteAndPurge;
    settle(&client, &mut hidden).await;
    // The copy is not visible yet (as when ARM's list lags behind the delete).
    emulator.add_fault(Fault {
        method: Some("GET".into()),
        path_contains: Some("deletedAccounts/hidden".into()),
        status: Some(404),
        code: Some("ResourceNotFound".into()),
        times: Some(0),
        ..Fault::default()
    });
    let outcome = delete(&client, &mut hidden).await;
    assert!(outcome.deletion_finished);
    let said = condition(&outcome.status.conditions, "Ready")
        .message
        .clone();
    assert!(
        said.contains("none was purged") && !said.contains("deleted and purged"),
        "{said}"
    );
    emulator.clear_faults();
    let mut purged = resource("purged");
    purged.spec.deletion_policy = DeletionPolicy::DeleteAndPurge;
    settle(&client, &mut purged).await;
    let outcome = delete(&client, &mut purged).await;
    let said = condition(&outcome.status.conditions, "Ready")
        .message
        .clone();
    assert!(said.contains("deleted and purged"), "{said}");
}

/// A handle as a user who may write `/status` could forge it: `resource_id` and `url` of their
/// choosing, on the ARM endpoint.
fn forged(
    client: &ArmClient,
    poll: cognitive_operator::arm::PollMethod,
    path: &str,
    resource_id: &str,
) -> cognitive_operator::arm::PendingOperation {
    cognitive_operator::arm::PendingOperation {
        kind: OperationKind::Update,
        poll,
        url: client.endpoint().join(path).unwrap().to_string(),
        resource_id: resource_id.to_string(),
        started_at: jiff::Timestamp::now().to_string(),
        retry_after_seconds: None,
    }
}

#[tokio::test]
async fn a_pending_operation_that_names_another_resource_is_dropped_and_the_account_read() {
    use cognitive_operator::arm::PollMethod::{AzureAsyncOperation, ProvisioningState};
    let emulator = emulator().await;
    let client = client(&emulator);
    emulator.seed_account(
        SUB,
        RG,
        "theirs",
        json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}}),
    );
    let mut r = resource("ours");
    assert!(settle(&client, &mut r).await.ready());
    let (ours, theirs) = (
        AccountRef::new(SUB, RG, "ours").id(),
        AccountRef::new(SUB, RG, "theirs").id(),
    );
    const ELSEWHERE: &str = "22222222-2222-2222-2222-222222222222";
    let status_url = format!(
        "/subscriptions/{ELSEWHERE}/providers/Microsoft.CognitiveServices/locations/westus/operationStatuses/x"
    );
    for (case, operation) in [
        (
            "another account",
            forged(&client, ProvisioningState, &theirs, &theirs),
        ),
        (
            "another account's deployment",
            forged(
                &client,
                ProvisioningState,
                &format!("{theirs}/deployments/chat"),
                &format!("{theirs}/deployments/chat"),
            ),
        ),
        (
            "our account, polled in another subscription",
            forged(&client, AzureAsyncOperation, &status_url, &ours),
        ),
    ] {
        let status = r.status.as_mut().unwrap();
        status.pending_operation = Some(Box::new(operation));
        emulator.clear_requests();
        let outcome = Engine::default()
            .reconcile(&client, &r, false, jiff::Timestamp::now())
            .await;
        let paths: Vec<String> = emulator.requests().iter().map(|q| q.path.clone()).collect();
        assert!(
            paths
                .iter()
                .all(|p| !p.contains("/accounts/theirs") && !p.contains(ELSEWHERE)),
            "{case}: {paths:?}"
        );
        assert!(
            paths.contains(&ours),
            "{case}: the account is read: {paths:?}"
        );
        assert!(outcome.status.pending_operation.is_none(), "{case}");
        assert!(outcome.ready(), "{case}: {:?}", outcome.status.conditions);
        assert!(outcome.writes.is_empty(), "{case}");
    }
}

#[tokio::test]
async fn a_create_whose_reply_is_lost_is_sent_once_and_found_by_reading() {
    let emulator = emulator().await;
    let client = client(&emulator);
    emulator.add_fault(Fault {
        method: Some("PUT".into()),
        path_contains: Some("/accounts/lost".into()),
        drop_after_handling: Some(true),
        ..Fault::default()
    });
    let mut r = resource("lost");
    let outcome = settle(&client, &mut r).await;
    assert!(outcome.ready(), "{:?}", outcome.status.conditions);
    assert_eq!(
        count(&emulator.requests(), "PUT"),
        1,
        "the next reconcile read the account it had created: {:?}",
        writes(&emulator.requests())
    );
}
