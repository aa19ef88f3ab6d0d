//! The controller's reconcile against a fake Kubernetes API and the in-process ARM emulator:
//! finalizer, status, connection Secret, events, steady state, credentials, malformed objects.
//! See `support/controller_harness.rs` for how deletion is simulated on the fake API.

#[path = "support/controller_harness.rs"]
mod harness;

use std::time::Duration;

use cognitive_operator::api::{DeletionPolicy, FINALIZER, LocalSecretReference};
use cognitive_operator::controller::Requeue;
use cognitive_operator::controller::reconciler::FIELD_MANAGER;
use cognitive_operator::controller::secrets::{REFRESH_KEYS_ANNOTATION, ROTATE_KEY_ANNOTATION};
use harness::{
    ApiWrite, Harness, NS, OPERATOR_TOKEN, account, condition, secret, text, with_connection_secret,
};
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kube_fake_client::PatchType;
use serde_json::json;

fn is_write_to_account(request: &cognitive_operator::emulator::RecordedRequest) -> bool {
    request.method != "GET" && request.path.contains("/accounts/")
}

#[tokio::test]
async fn the_finalizer_is_stored_before_the_first_arm_write_and_removed_after_the_deletion_policy()
{
    let h = Harness::start(vec![]).await;
    h.create(&account("docs")).await;

    h.reconcile("docs").await;
    let first_finalizer_write = h.api_writes().into_iter().find_map(|w| match w {
        ApiWrite::Finalizers {
            finalizers,
            arm_writes_before,
        } => Some((finalizers, arm_writes_before)),
        _ => None,
    });
    let (finalizers, arm_writes_before) = first_finalizer_write.expect("a finalizer was written");
    assert_eq!(finalizers, [FINALIZER]);
    assert!(
        arm_writes_before.is_empty(),
        "ARM was written before the finalizer was stored: {arm_writes_before:?}"
    );
    assert!(
        h.arm_writes().iter().any(is_write_to_account),
        "the first reconcile starts the create"
    );
    assert_eq!(h.get("docs").await.unwrap().finalizers(), [FINALIZER]);

    h.reconcile_until_ready("docs").await;
    let h = h.begin_deletion("docs").await;
    h.reconcile_until_gone("docs").await;

    let removal = h.api_writes().into_iter().find_map(|w| match w {
        ApiWrite::Finalizers {
            finalizers,
            arm_writes_before,
        } if finalizers.is_empty() => Some(arm_writes_before),
        _ => None,
    });
    let arm_writes_before = removal.expect("the finalizer was removed");
    assert!(
        arm_writes_before
            .iter()
            .any(|r| r.method == "DELETE" && r.path.ends_with("/accounts/docs")),
        "the finalizer went before the account was deleted: {arm_writes_before:?}"
    );
    let state = h.emulator.state();
    assert_eq!(state["accounts"], json!([]), "the account is deleted");
    let deleted = state["deletedAccounts"].as_array().unwrap();
    assert_eq!(
        deleted.len(),
        1,
        "deletionPolicy Delete keeps a soft-deleted copy"
    );
    assert!(h.event_reasons().await.contains(&"Deleted".to_string()));
}

#[tokio::test]
async fn a_deletion_that_cannot_complete_keeps_the_finalizer_and_says_why() {
    let h = Harness::start(vec![]).await;
    let mut resource = account("purged");
    resource.spec.deletion_policy = DeletionPolicy::DeleteAndPurge;
    h.create(&resource).await;
    h.reconcile_until_ready("purged").await;
    h.emulator.set_purge_permission(false);

    let h = h.begin_deletion("purged").await;
    let stuck = h
        .reconcile_until("purged", |r| {
            condition(r, "Stalled").is_some_and(|c| c.status == "True")
        })
        .await;

    assert_eq!(stuck.finalizers(), [FINALIZER]);
    let ready = condition(&stuck, "Ready").unwrap();
    assert_eq!(ready.reason, "PurgeForbidden");
    let warning = h
        .events()
        .await
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("PurgeForbidden"))
        .expect("a warning event");
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert!(
        warning
            .note
            .unwrap_or_default()
            .contains("deletion policy cannot complete"),
        "the event says the deletion is blocked"
    );
}

#[tokio::test]
async fn status_is_applied_on_the_status_subresource_with_conditions_and_generation() {
    let h = Harness::start(vec![]).await;
    h.create(&account("docs")).await;

    let ready = h.reconcile_until_ready("docs").await;
    let status = ready.status.clone().unwrap();
    assert_eq!(status.observed_generation, ready.metadata.generation);
    let ready_condition = condition(&ready, "Ready").unwrap();
    assert_eq!(ready_condition.reason, "Succeeded");
    assert_eq!(
        ready_condition.observed_generation,
        ready.metadata.generation
    );
    assert_eq!(condition(&ready, "Stalled").unwrap().status, "False");
    assert!(status.endpoint.is_some() && status.arm_id.is_some());
    assert!(
        status.pending_operation.is_none(),
        "the finished operation is cleared"
    );

    let status_writes: Vec<ApiWrite> = h
        .api_writes()
        .into_iter()
        .filter(|w| matches!(w, ApiWrite::Status { .. }))
        .collect();
    assert!(!status_writes.is_empty());
    assert!(status_writes.iter().all(|w| *w
        == ApiWrite::Status {
            patch_type: PatchType::ApplyPatch,
            field_manager: Some(FIELD_MANAGER.into()),
        }));
    let managed = ready.metadata.managed_fields.clone().unwrap_or_default();
    assert!(
        managed
            .iter()
            .any(|m| m.manager.as_deref() == Some(FIELD_MANAGER)
                && m.subresource.as_deref() == Some("status")),
        "the status is owned by {FIELD_MANAGER} on the status subresource: {managed:?}"
    );

    // A new generation: the spec asks for tags; the next reconciles patch and report it.
    let patch = json!({"spec": {"tags": {"team": "docs"}}});
    let changed = h
        .accounts()
        .patch("docs", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert!(changed.metadata.generation > ready.metadata.generation);
    let updated = h
        .reconcile_until("docs", |r| {
            r.status.as_ref().and_then(|s| s.observed_generation) == r.metadata.generation
                && condition(r, "Ready").is_some_and(|c| c.status == "True")
        })
        .await;
    assert_eq!(
        condition(&updated, "Ready").unwrap().observed_generation,
        updated.metadata.generation
    );
    let patched = h
        .events()
        .await
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("Patched"))
        .expect("a Patched event");
    assert!(patched.note.unwrap_or_default().contains("tags"));
}

#[tokio::test]
async fn the_connection_secret_holds_endpoint_and_keys_and_follows_a_rotation() {
    let h = Harness::start(vec![]).await;
    h.create(&with_connection_secret(account("docs"), "docs-conn"))
        .await;
    let ready = h.reconcile_until_ready("docs").await;

    // Written by the reconcile that found the account ready.
    let conn = h.secrets(NS).get("docs-conn").await.unwrap();
    assert_eq!(text(&conn, "endpoint"), ready.status.unwrap().endpoint);
    let (key1, key2) = (text(&conn, "key1").unwrap(), text(&conn, "key2").unwrap());
    assert!(!key1.is_empty() && key1 != key2);
    let owner = &conn.owner_references()[0];
    assert_eq!(owner.controller, Some(true));
    assert_eq!(Some(&owner.uid), ready.metadata.uid.as_ref());
    assert_eq!(h.arm_calls("POST", "/listKeys"), 1, "keys are read once");

    h.reconcile("docs").await;
    assert_eq!(
        h.arm_calls("POST", "/listKeys"),
        1,
        "stored keys are reused"
    );

    let rotate = json!({"metadata": {"annotations": {ROTATE_KEY_ANNOTATION: "Key1"}}});
    h.accounts()
        .patch("docs", &PatchParams::default(), &Patch::Merge(&rotate))
        .await
        .unwrap();
    h.reconcile("docs").await;
    let rotated = h.secrets(NS).get("docs-conn").await.unwrap();
    assert_ne!(text(&rotated, "key1").unwrap(), key1, "key1 is regenerated");
    assert_eq!(text(&rotated, "key2").unwrap(), key2, "key2 is kept");
    assert_eq!(h.arm_calls("POST", "/regenerateKey"), 1);
    let resource = h.get("docs").await.unwrap();
    assert!(!resource.annotations().contains_key(ROTATE_KEY_ANNOTATION));
    assert!(h.event_reasons().await.contains(&"KeyRegenerated".into()));

    h.reconcile("docs").await;
    assert_eq!(
        h.arm_calls("POST", "/regenerateKey"),
        1,
        "a rotation happens once"
    );

    let refresh = json!({"metadata": {"annotations": {REFRESH_KEYS_ANNOTATION: "please"}}});
    h.accounts()
        .patch("docs", &PatchParams::default(), &Patch::Merge(&refresh))
        .await
        .unwrap();
    h.reconcile("docs").await;
    assert_eq!(
        h.arm_calls("POST", "/listKeys"),
        2,
        "a refresh re-reads the keys"
    );
    let resource = h.get("docs").await.unwrap();
    assert!(!resource.annotations().contains_key(REFRESH_KEYS_ANNOTATION));
}

#[tokio::test]
async fn with_local_auth_disabled_the_secret_holds_only_the_endpoint() {
    let h = Harness::start(vec![]).await;
    let mut resource = with_connection_secret(account("aad"), "aad-conn");
    resource.spec.properties = Some(cognitive_operator::arm::models::AccountWritableProperties {
        disable_local_auth: Some(true),
        custom_sub_domain_name: Some("aad-docs".into()),
        ..Default::default()
    });
    h.create(&resource).await;
    h.reconcile_until_ready("aad").await;

    let conn = h.secrets(NS).get("aad-conn").await.unwrap();
    let keys: Vec<&String> = conn.data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, ["endpoint"]);
    assert_eq!(h.arm_calls("POST", "/listKeys"), 0);
}

#[tokio::test]
async fn a_secret_the_operator_does_not_own_is_never_overwritten() {
    let foreign = secret(NS, "docs-conn", &[("endpoint", "https://mine.example/")]);
    let h = Harness::start(vec![serde_json::to_value(&foreign).unwrap()]).await;
    h.create(&with_connection_secret(account("docs"), "docs-conn"))
        .await;

    let stalled = h
        .reconcile_until("docs", |r| {
            condition(r, "Stalled").is_some_and(|c| c.status == "True")
        })
        .await;

    let ready = condition(&stalled, "Ready").unwrap();
    assert_eq!(ready.reason, "SecretConflict");
    assert!(
        ready.message.contains("team-a/docs-conn"),
        "{}",
        ready.message
    );
    let unchanged = h.secrets(NS).get("docs-conn").await.unwrap();
    assert_eq!(unchanged.data, foreign.data);
    assert!(unchanged.owner_references().is_empty());
    assert_eq!(
        h.arm_calls("POST", "/listKeys"),
        0,
        "no keys were read for it"
    );
    assert!(h.event_reasons().await.contains(&"SecretConflict".into()));
}

#[tokio::test]
async fn a_steady_state_reconcile_makes_one_get_no_writes_and_no_events() {
    let h = Harness::start(vec![]).await;
    h.create(&account("docs")).await;
    h.reconcile_until_ready("docs").await;
    h.reconcile("docs").await;
    let before = h.get("docs").await.unwrap();
    let events_before = h.events().await.len();
    h.emulator.clear_requests();

    let requeue = h.reconcile("docs").await;

    let requests = h.emulator.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "GET");
    assert!(requests[0].path.ends_with("/accounts/docs"));
    assert_eq!(
        h.events().await.len(),
        events_before,
        "no event for a check"
    );
    let after = h.get("docs").await.unwrap();
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "an unchanged status is not written"
    );
    let Requeue::After(delay) = requeue else {
        panic!("a ready resource comes back for its drift check")
    };
    assert!(delay >= Duration::from_secs(540) && delay <= Duration::from_secs(660));
}

#[tokio::test]
async fn events_are_emitted_for_writes() {
    let h = Harness::start(vec![]).await;
    h.create(&account("docs")).await;
    h.reconcile_until_ready("docs").await;

    let events = h.events().await;
    let created = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("Created"))
        .expect("a Created event");
    assert_eq!(created.type_.as_deref(), Some("Normal"));
    assert_eq!(
        created.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("docs")
    );
    assert_eq!(created.reporting_controller.as_deref(), Some(FIELD_MANAGER));
}

#[tokio::test]
async fn a_credentials_secret_in_another_namespace_is_never_used() {
    let elsewhere = secret(
        "other",
        "azure",
        &[("tenantId", "t"), ("clientId", "c"), ("clientSecret", "s")],
    );
    let h = Harness::start(vec![serde_json::to_value(&elsewhere).unwrap()]).await;
    let mut resource = account("docs");
    resource.spec.credentials_secret_ref = Some(LocalSecretReference {
        name: "azure".into(),
    });
    h.create(&resource).await;

    h.reconcile("docs").await;

    let resource = h.get("docs").await.unwrap();
    let ready = condition(&resource, "Ready").unwrap();
    assert_eq!(ready.reason, "CredentialsInvalid");
    assert!(ready.message.contains("team-a/azure"), "{}", ready.message);
    assert!(
        ready.message.contains("does not exist"),
        "{}",
        ready.message
    );
    assert_eq!(condition(&resource, "Stalled").unwrap().status, "True");
    assert!(
        h.emulator.requests().is_empty(),
        "no ARM call without credentials"
    );
    assert!(resource.finalizers().is_empty(), "nothing to clean up yet");
    assert!(
        h.event_reasons()
            .await
            .contains(&"CredentialsInvalid".into())
    );
}

#[tokio::test]
async fn an_incomplete_credentials_secret_names_the_missing_key() {
    let partial = secret(NS, "azure", &[("tenantId", "t"), ("clientSecret", "s")]);
    let h = Harness::start(vec![serde_json::to_value(&partial).unwrap()]).await;
    let mut resource = account("docs");
    resource.spec.credentials_secret_ref = Some(LocalSecretReference {
        name: "azure".into(),
    });
    h.create(&resource).await;

    h.reconcile("docs").await;

    let resource = h.get("docs").await.unwrap();
    let ready = condition(&resource, "Ready").unwrap();
    assert_eq!(ready.reason, "CredentialsInvalid");
    assert!(ready.message.contains("\"clientId\""), "{}", ready.message);
    assert!(
        !ready.message.contains("\"s\""),
        "no Secret value in the status"
    );
}

#[tokio::test]
async fn a_credentials_secret_identity_is_used_for_its_resource_only() {
    let creds = secret(
        NS,
        "azure",
        &[("tenantId", "t"), ("clientId", "team-a-app")],
    );
    let h = Harness::start(vec![serde_json::to_value(&creds).unwrap()]).await;
    h.emulator
        .require_token(Some("token-for-team-a-app".into()));
    let mut own = account("own");
    own.spec.credentials_secret_ref = Some(LocalSecretReference {
        name: "azure".into(),
    });
    h.create(&own).await;
    h.create(&account("operator")).await;

    h.reconcile_until_ready("own").await;
    h.reconcile("operator").await;

    let operator = h.get("operator").await.unwrap();
    let ready = condition(&operator, "Ready").unwrap();
    assert_ne!(
        ready.status, "True",
        "the operator's own token ({OPERATOR_TOKEN}) is refused by this emulator"
    );
}

#[tokio::test]
async fn a_malformed_resource_is_reported_and_the_others_still_reconcile() {
    let good = serde_json::to_value(account("good")).unwrap();
    let mut bad = serde_json::to_value(account("bad")).unwrap();
    bad["spec"]["sku"]["name"] = json!(7);
    let h = Harness::start(vec![good, bad]).await;

    let requeue = h.reconcile("bad").await;
    h.reconcile_until_ready("good").await;

    assert_eq!(requeue, Requeue::AwaitChange);
    let objects: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        h.client.clone(),
        NS,
        &cognitive_operator::controller::reconciler::account_api_resource(),
    );
    let bad = objects.get("bad").await.unwrap();
    let conditions = &bad.data["status"]["conditions"];
    let ready = conditions
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["reason"], "InvalidResource");
    assert!(
        ready["message"].as_str().unwrap().contains("spec.sku.name"),
        "{ready}"
    );
}

/// Deletes the account in Azure behind the operator's back (and purges it, if asked).
async fn delete_in_azure(h: &Harness, name: &str, purge: bool) {
    use cognitive_operator::arm::{
        AccountRef, ArmClient, ArmClientConfig, Credential, DeletedAccountRef,
    };
    let arm = ArmClient::new(
        ArmClientConfig::new(h.emulator.base_url()),
        std::sync::Arc::new(Credential::static_token(OPERATOR_TOKEN)),
    )
    .unwrap();
    let wait = Duration::from_secs(30);
    if let Some(operation) = arm
        .delete_account(&AccountRef::new(harness::SUB, harness::RG, name))
        .await
        .unwrap()
    {
        arm.wait(&operation, wait).await.unwrap();
    }
    if purge {
        let copy = DeletedAccountRef {
            subscription_id: harness::SUB.into(),
            location: "westus".into(),
            resource_group: harness::RG.into(),
            name: name.into(),
        };
        if let Some(operation) = arm.purge_deleted_account(&copy).await.unwrap() {
            arm.wait(&operation, wait).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_restored_account_keeps_its_stored_keys_and_a_new_account_gets_fresh_ones() {
    let h = Harness::start(vec![]).await;
    h.create(&with_connection_secret(account("docs"), "docs-conn"))
        .await;
    h.reconcile_until_ready("docs").await;
    let original = h.secrets(NS).get("docs-conn").await.unwrap();
    assert_eq!(h.arm_calls("POST", "/listKeys"), 1);

    delete_in_azure(&h, "docs", false).await;
    h.reconcile_until_ready("docs").await;
    assert!(h.event_reasons().await.contains(&"Restored".into()));
    let restored = h.secrets(NS).get("docs-conn").await.unwrap();
    assert_eq!(restored.data, original.data, "a restore keeps its keys");
    assert_eq!(
        h.arm_calls("POST", "/listKeys"),
        1,
        "the stored keys are the restored account's: no re-read"
    );

    delete_in_azure(&h, "docs", true).await;
    h.reconcile_until_ready("docs").await;
    let recreated = h.secrets(NS).get("docs-conn").await.unwrap();
    assert_eq!(
        h.arm_calls("POST", "/listKeys"),
        2,
        "a new account's keys are read"
    );
    assert_ne!(text(&recreated, "key1"), text(&original, "key1"));
}
