//! The controller's reconcile against a fake Kubernetes API and the in-process ARM emulator: the
//! fastest honest check of the connection Secret, events, steady state, credentials and
//! malformed objects. What needs a real API server (deletion with finalizers, the status
//! subresource, server-side apply, admission) is tested in `tests/e2e.rs`.

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/controller_harness.rs"]
mod harness;

use std::time::Duration;

use arm_emulator::Fault;
use cognitive_operator::api::LocalSecretReference;
use cognitive_operator::arm::ArmError;
use cognitive_operator::controller::Requeue;
use cognitive_operator::controller::key_rotation::{ROTATION_ANNOTATION, fingerprint};
use cognitive_operator::controller::reconciler::FIELD_MANAGER;
use cognitive_operator::controller::secrets::{
    ACTIVE_KEY_ANNOTATION, REFRESH_KEYS_ANNOTATION, ROTATE_KEY_ANNOTATION,
};
use cognitive_operator::tenancy::{
    FEDERATED_CLIENT_IDS_ANNOTATION, KEY_READ_SCOPES_ANNOTATION, SCOPES_ANNOTATION,
};
use harness::{
    Harness, NS, OPERATOR_TOKEN, account, condition, secret, text, with_connection_secret,
};
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;

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
    // One read by the rotation (what Azure has before regenerating), one by the refresh.
    assert_eq!(
        h.arm_calls("POST", "/listKeys"),
        3,
        "a refresh re-reads the keys"
    );
    let resource = h.get("docs").await.unwrap();
    assert!(!resource.annotations().contains_key(REFRESH_KEYS_ANNOTATION));
}

async fn annotate(h: &Harness, annotations: serde_json::Value) {
    let patch = json!({"metadata": {"annotations": annotations}});
    h.accounts()
        .patch("docs", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// A rotation of Key2 marked, as a reconcile that died before `regenerateKey` leaves it; then
/// `spec` merged into the resource.
async fn marked_rotation_then(h: &Harness, spec: serde_json::Value) {
    let (_, key2) = ready_with_keys(h).await;
    let marker = format!("Key2 {}", fingerprint(Some(&key2)));
    annotate(h, json!({ROTATION_ANNOTATION: marker})).await;
    h.accounts()
        .patch(
            "docs",
            &PatchParams::default(),
            &Patch::Merge(&json!({ "spec": spec })),
        )
        .await
        .unwrap();
}

async fn has_marker(h: &Harness) -> bool {
    h.get("docs")
        .await
        .unwrap()
        .annotations()
        .contains_key(ROTATION_ANNOTATION)
}

async fn ready_with_keys(h: &Harness) -> (String, String) {
    h.create(&with_connection_secret(account("docs"), "docs-conn"))
        .await;
    h.reconcile_until_ready("docs").await;
    let conn = h.secrets(NS).get("docs-conn").await.unwrap();
    (text(&conn, "key1").unwrap(), text(&conn, "key2").unwrap())
}

#[tokio::test]
async fn a_regeneration_whose_answer_is_lost_is_published_on_the_next_reconcile_not_repeated() {
    let h = Harness::start(vec![]).await;
    let (key1, _) = ready_with_keys(&h).await;
    h.emulator.add_fault(Fault {
        method: Some("POST".into()),
        path_contains: Some("/regenerateKey".into()),
        drop_after_handling: Some(true),
        ..Fault::default()
    });
    annotate(&h, json!({ROTATE_KEY_ANNOTATION: "Key1"})).await;
    assert!(
        h.try_reconcile("docs").await.is_err(),
        "the answer never came"
    );
    assert_eq!(h.arm_calls("POST", "/regenerateKey"), 1);

    h.reconcile("docs").await;
    assert_eq!(
        h.arm_calls("POST", "/regenerateKey"),
        1,
        "never regenerated a second time"
    );
    let conn = h.secrets(NS).get("docs-conn").await.unwrap();
    let published = text(&conn, "key1").unwrap();
    assert_ne!(published, key1, "the new key is published");
    let resource = h.get("docs").await.unwrap();
    assert!(!resource.annotations().contains_key(ROTATE_KEY_ANNOTATION));
    assert!(!resource.annotations().contains_key(ROTATION_ANNOTATION));

    annotate(&h, json!({REFRESH_KEYS_ANNOTATION: "check"})).await;
    h.reconcile("docs").await;
    let conn = h.secrets(NS).get("docs-conn").await.unwrap();
    assert_eq!(
        text(&conn, "key1").unwrap(),
        published,
        "the published key is the one Azure has"
    );
}

#[tokio::test]
async fn a_rotation_already_published_is_not_repeated_when_dropping_the_request_failed() {
    let h = Harness::start(vec![]).await;
    let (key1, _) = ready_with_keys(&h).await;
    annotate(&h, json!({ROTATE_KEY_ANNOTATION: "Key1"})).await;
    h.reconcile("docs").await;
    assert_eq!(h.arm_calls("POST", "/regenerateKey"), 1);
    let published = text(&h.secrets(NS).get("docs-conn").await.unwrap(), "key1").unwrap();
    // What a reconcile leaves when it wrote the new keys and then failed to drop the request.
    let marker = format!("Key1 {}", fingerprint(Some(&key1)));
    annotate(
        &h,
        json!({ROTATE_KEY_ANNOTATION: "Key1", ROTATION_ANNOTATION: marker}),
    )
    .await;
    let events = h.event_reasons().await.len();
    h.reconcile("docs").await;
    assert_eq!(
        h.arm_calls("POST", "/regenerateKey"),
        1,
        "never a second time"
    );
    let conn = h.secrets(NS).get("docs-conn").await.unwrap();
    assert_eq!(text(&conn, "key1").unwrap(), published);
    let resource = h.get("docs").await.unwrap();
    assert!(!resource.annotations().contains_key(ROTATE_KEY_ANNOTATION));
    assert!(!resource.annotations().contains_key(ROTATION_ANNOTATION));
    assert_eq!(
        h.event_reasons().await.len(),
        events,
        "nothing new to announce"
    );
}

#[tokio::test]
async fn a_rotation_is_judged_by_what_azure_has_even_when_the_secret_was_stale() {
    let h = Harness::start(vec![]).await;
    let (key1, _) = ready_with_keys(&h).await;
    // The Secret holds a key Azure no longer has (regenerated in the portal meanwhile)...
    let mut secret = h.secrets(NS).get("docs-conn").await.unwrap();
    secret.data.as_mut().unwrap().insert(
        "key1".into(),
        k8s_openapi::ByteString(b"stale-key-from-before".to_vec()),
    );
    h.secrets(NS)
        .replace("docs-conn", &Default::default(), &secret)
        .await
        .unwrap();
    // ...and a rotation was marked (of Azure's key) but its regenerateKey never sent.
    let marker = format!("Key1 {}", fingerprint(Some(&key1)));
    annotate(&h, json!({ROTATION_ANNOTATION: marker})).await;
    h.reconcile("docs").await;
    assert_eq!(
        h.arm_calls("POST", "/regenerateKey"),
        1,
        "the rotation happens"
    );
    let conn = h.secrets(NS).get("docs-conn").await.unwrap();
    let now = text(&conn, "key1").unwrap();
    assert!(now != key1 && now != "stale-key-from-before");
}

#[tokio::test]
async fn a_rotation_left_when_local_auth_was_turned_off_is_dropped() {
    let h = Harness::start(vec![]).await;
    marked_rotation_then(&h, json!({"properties": {"disableLocalAuth": true}})).await;
    h.reconcile_until_ready("docs").await;
    assert!(!has_marker(&h).await);
    assert_eq!(h.arm_calls("POST", "/regenerateKey"), 0);
}

#[tokio::test]
async fn a_reconcile_from_a_stale_copy_of_the_resource_never_rotates_a_second_time() {
    let h = Harness::start(vec![]).await;
    ready_with_keys(&h).await;
    annotate(&h, json!({ROTATE_KEY_ANNOTATION: "Standby"})).await;
    // What a lagging watch would still hand out after the rotation below is done.
    let stale = h.get("docs").await.unwrap();
    h.reconcile("docs").await;
    assert_eq!(h.arm_calls("POST", "/regenerateKey"), 1);
    let result = h.reconciler.reconcile_account(&stale).await;
    assert!(result.is_err(), "the marker patch conflicts: {result:?}");
    assert_eq!(
        h.arm_calls("POST", "/regenerateKey"),
        1,
        "the key workloads now use is not regenerated"
    );
}

#[tokio::test]
async fn a_rotation_whose_regeneration_never_happened_is_made_once_on_the_next_reconcile() {
    let h = Harness::start(vec![]).await;
    let (key1, key2) = ready_with_keys(&h).await;
    // The marker was set, and then the reconcile died before regenerateKey was sent.
    let marker = format!("Key2 {} switch", fingerprint(Some(&key2)));
    annotate(&h, json!({ROTATION_ANNOTATION: marker})).await;
    h.reconcile("docs").await;
    assert_eq!(h.arm_calls("POST", "/regenerateKey"), 1);
    let conn = h.secrets(NS).get("docs-conn").await.unwrap();
    let new_key2 = text(&conn, "key2").unwrap();
    assert_ne!(new_key2, key2);
    assert_eq!(text(&conn, "key1").unwrap(), key1);
    assert_eq!(
        text(&conn, "key").unwrap(),
        new_key2,
        "the Standby switch too"
    );
    assert!(
        !h.get("docs")
            .await
            .unwrap()
            .annotations()
            .contains_key(ROTATION_ANNOTATION)
    );
    h.reconcile("docs").await;
    assert_eq!(h.arm_calls("POST", "/regenerateKey"), 1);
}

#[tokio::test]
async fn a_rotation_left_when_the_resource_turned_observe_is_dropped_not_resumed_later() {
    let h = Harness::start(vec![]).await;
    marked_rotation_then(&h, json!({"reconcilePolicy": "Observe"})).await;
    h.reconcile("docs").await;
    assert!(!has_marker(&h).await);
    let manage = json!({"spec": {"reconcilePolicy": "Manage"}});
    h.accounts()
        .patch("docs", &PatchParams::default(), &Patch::Merge(&manage))
        .await
        .unwrap();
    h.reconcile("docs").await;
    assert_eq!(h.arm_calls("POST", "/regenerateKey"), 0);
}

#[tokio::test]
async fn a_standby_rotation_keeps_the_published_key_working_and_then_switches_to_the_new_one() {
    let h = Harness::start(vec![]).await;
    let (key1, key2) = ready_with_keys(&h).await;
    let conn = h.secrets(NS).get("docs-conn").await.unwrap();
    assert_eq!(text(&conn, "key").unwrap(), key1, "key starts as Key1");

    annotate(&h, json!({ROTATE_KEY_ANNOTATION: "Standby"})).await;
    h.reconcile("docs").await;
    let conn = h.secrets(NS).get("docs-conn").await.unwrap();
    let new_key2 = text(&conn, "key2").unwrap();
    assert_ne!(new_key2, key2, "the standby key was regenerated");
    assert_eq!(text(&conn, "key1").unwrap(), key1, "the active key was not");
    assert_eq!(text(&conn, "key").unwrap(), new_key2, "key switched to it");
    assert_eq!(conn.annotations()[ACTIVE_KEY_ANNOTATION], "Key2");

    annotate(&h, json!({ROTATE_KEY_ANNOTATION: "Standby"})).await;
    h.reconcile("docs").await;
    let conn = h.secrets(NS).get("docs-conn").await.unwrap();
    assert_eq!(text(&conn, "key2").unwrap(), new_key2, "now Key2 stays");
    assert_ne!(text(&conn, "key1").unwrap(), key1);
    assert_eq!(text(&conn, "key").unwrap(), text(&conn, "key1").unwrap());
    assert_eq!(h.arm_calls("POST", "/regenerateKey"), 2);
}

#[tokio::test]
async fn a_failure_that_may_pass_is_retried_soon_and_one_that_needs_a_human_waits_for_the_resync() {
    let h = Harness::start(vec![]).await;
    let resource = account("docs");
    let transient = cognitive_operator::controller::Error::Arm(ArmError::Transport("reset".into()));
    let Requeue::After(soon) = h.reconciler.error_requeue(&resource, &transient) else {
        panic!("retried")
    };
    assert!(soon <= Duration::from_secs(2), "{soon:?}");
    let refused = cognitive_operator::controller::Error::Arm(ArmError::Credential(
        "AADSTS7000215: invalid client secret".into(),
    ));
    let Requeue::After(later) = h.reconciler.error_requeue(&resource, &refused) else {
        panic!("looked at again at the resync")
    };
    let resync = resource.spec.resync().unwrap();
    assert!(
        later >= resync.mul_f64(0.9) && later <= resync.mul_f64(1.1),
        "{later:?}"
    );
}

#[tokio::test]
async fn ready_is_not_claimed_while_the_keys_cannot_be_read() {
    let h = Harness::start(vec![]).await;
    h.emulator.add_fault(Fault {
        method: Some("POST".into()),
        path_contains: Some("/listKeys".into()),
        status: Some(403),
        code: Some("AuthorizationFailed".into()),
        times: Some(0),
        ..Fault::default()
    });
    h.create(&with_connection_secret(account("docs"), "docs-conn"))
        .await;
    let mut last = None;
    for _ in 0..10 {
        last = Some(h.try_reconcile("docs").await);
    }
    assert!(
        last.unwrap().is_err(),
        "the failure is retried with backoff"
    );
    let resource = h.get("docs").await.unwrap();
    let ready = condition(&resource, "Ready").unwrap();
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason, "ConnectionSecretFailed");
    assert!(
        ready.message.contains(&format!("{NS}/docs-conn")),
        "{}",
        ready.message
    );
    assert_eq!(condition(&resource, "Reconciling").unwrap().status, "True");
    assert!(h.secrets(NS).get_opt("docs-conn").await.unwrap().is_none());

    h.emulator.clear_faults();
    let ready = h.reconcile_until_ready("docs").await;
    assert_eq!(condition(&ready, "Ready").unwrap().reason, "Succeeded");
    assert!(text(&h.secrets(NS).get("docs-conn").await.unwrap(), "key1").is_some());
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

/// The operator's own ARM client on the emulator: what someone acting in Azure directly uses.
fn arm_by_hand(h: &Harness) -> cognitive_operator::arm::ArmClient {
    use cognitive_operator::arm::{ArmClient, ArmClientConfig, Credential};
    ArmClient::new(
        ArmClientConfig::new(h.emulator.base_url()),
        std::sync::Arc::new(Credential::static_token(OPERATOR_TOKEN)),
    )
    .unwrap()
}

/// The names of the entries of the connection Secret.
async fn secret_entries(h: &Harness, name: &str) -> Vec<String> {
    let conn = h.secrets(NS).get(name).await.unwrap();
    conn.data.unwrap_or_default().into_keys().collect()
}

async fn withdrawal_notes(h: &Harness) -> Vec<String> {
    h.events()
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("KeysWithdrawn"))
        .map(|e| {
            assert_eq!(e.type_.as_deref(), Some("Warning"));
            e.note.unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn keys_are_withdrawn_when_the_namespace_grant_is_revoked() {
    let h = Harness::start(vec![]).await;
    ready_with_keys(&h).await;

    h.set_namespace_annotations(&[(SCOPES_ANNOTATION, &format!("{}/rg-other", harness::SUB))]);
    h.reconcile("docs").await;

    let resource = h.get("docs").await.unwrap();
    assert_eq!(
        condition(&resource, "Stalled").unwrap().reason,
        "ScopeNotAllowed"
    );
    assert_eq!(secret_entries(&h, "docs-conn").await, ["endpoint"]);
    let notes = withdrawal_notes(&h).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("team-a/docs-conn") && notes[0].contains("may not manage"),
        "names the Secret and why: {}",
        notes[0]
    );

    h.reconcile("docs").await;
    assert_eq!(withdrawal_notes(&h).await.len(), 1, "said once");
}

#[tokio::test]
async fn keys_are_withdrawn_when_the_account_turns_out_to_be_another_s() {
    let h = Harness::start(vec![]).await;
    ready_with_keys(&h).await;
    let target = cognitive_operator::arm::AccountRef::new(harness::SUB, harness::RG, "docs");
    let theirs = json!({"tags": {"cognitive-operator-owner": "other-cluster/team-a/docs"}});
    arm_by_hand(&h)
        .update_account(&target, &theirs)
        .await
        .unwrap();

    h.reconcile("docs").await;

    let resource = h.get("docs").await.unwrap();
    assert_eq!(
        condition(&resource, "Ready").unwrap().reason,
        "AlreadyManaged"
    );
    assert_eq!(secret_entries(&h, "docs-conn").await, ["endpoint"]);
    let notes = withdrawal_notes(&h).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("AlreadyManaged"), "{}", notes[0]);
}

#[tokio::test]
async fn keys_are_withdrawn_when_the_key_read_grant_is_revoked() {
    let h = Harness::start(vec![]).await;
    // An account made by hand, which an Observe resource may copy the keys of.
    let by_hand = json!({"location": "westus", "kind": "OpenAI", "sku": {"name": "S0"}});
    h.emulator
        .seed_account(harness::SUB, harness::RG, "docs", by_hand);
    h.set_namespace_annotations(&[(KEY_READ_SCOPES_ANNOTATION, "*")]);
    let mut peek = with_connection_secret(account("peek"), "peek-conn");
    peek.spec.azure_name = Some("docs".into());
    peek.spec.reconcile_policy = cognitive_operator::api::ReconcilePolicy::Observe;
    h.create(&peek).await;
    h.reconcile_until_ready("peek").await;
    assert!(
        secret_entries(&h, "peek-conn")
            .await
            .contains(&"key1".into())
    );

    h.set_namespace_annotations(&[]);
    h.reconcile("peek").await;

    assert_eq!(secret_entries(&h, "peek-conn").await, ["endpoint"]);
    let notes = withdrawal_notes(&h).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains(KEY_READ_SCOPES_ANNOTATION),
        "{}",
        notes[0]
    );
}

#[tokio::test]
async fn an_unreadable_grant_or_broken_credentials_leave_the_keys_where_they_are() {
    let h = Harness::start(vec![]).await;
    ready_with_keys(&h).await;

    h.set_namespace_annotations(&[(SCOPES_ANNOTATION, "not-a-grant")]);
    h.reconcile("docs").await;

    let resource = h.get("docs").await.unwrap();
    assert_eq!(
        condition(&resource, "Stalled").unwrap().reason,
        "ScopeGrantInvalid"
    );
    assert!(
        secret_entries(&h, "docs-conn")
            .await
            .contains(&"key1".into())
    );
    assert!(withdrawal_notes(&h).await.is_empty());
}

#[tokio::test]
async fn a_paused_resource_loses_its_keys_with_its_namespace_grant_too() {
    let h = Harness::start(vec![]).await;
    ready_with_keys(&h).await;
    let pause = json!({"spec": {"reconcilePolicy": "Pause"}});
    h.accounts()
        .patch("docs", &PatchParams::default(), &Patch::Merge(&pause))
        .await
        .unwrap();
    h.set_namespace_annotations(&[(SCOPES_ANNOTATION, &format!("{}/rg-other", harness::SUB))]);
    h.emulator.clear_requests();

    h.reconcile("docs").await;

    assert_eq!(secret_entries(&h, "docs-conn").await, ["endpoint"]);
    assert_eq!(withdrawal_notes(&h).await.len(), 1);
    assert!(h.emulator.requests().is_empty(), "Pause: no ARM call");
}

#[tokio::test]
async fn a_new_rotate_request_made_during_an_unfinished_rotation_is_honoured_after_it() {
    let h = Harness::start(vec![]).await;
    let (key1, key2) = ready_with_keys(&h).await;
    // A Standby rotation of Key2 marked and not finished, and a new request for Key1.
    let marker = format!("Key2 {} switch", fingerprint(Some(&key2)));
    annotate(
        &h,
        json!({ROTATION_ANNOTATION: marker, ROTATE_KEY_ANNOTATION: "Key1"}),
    )
    .await;

    let requeue = h.reconcile("docs").await;

    assert_eq!(
        h.arm_calls("POST", "/regenerateKey"),
        1,
        "the old one first"
    );
    let conn = h.secrets(NS).get("docs-conn").await.unwrap();
    assert_ne!(text(&conn, "key2").unwrap(), key2);
    assert_eq!(text(&conn, "key1").unwrap(), key1);
    let resource = h.get("docs").await.unwrap();
    assert!(!resource.annotations().contains_key(ROTATION_ANNOTATION));
    assert_eq!(
        resource
            .annotations()
            .get(ROTATE_KEY_ANNOTATION)
            .map(String::as_str),
        Some("Key1"),
        "the new request waits, it is not dropped"
    );
    let Requeue::After(soon) = requeue else {
        panic!("comes back for the request: {requeue:?}")
    };
    assert!(soon <= Duration::from_secs(5), "{soon:?}");

    h.reconcile("docs").await;

    assert_eq!(h.arm_calls("POST", "/regenerateKey"), 2, "then the new one");
    let conn = h.secrets(NS).get("docs-conn").await.unwrap();
    assert_ne!(text(&conn, "key1").unwrap(), key1);
    let resource = h.get("docs").await.unwrap();
    assert!(!resource.annotations().contains_key(ROTATE_KEY_ANNOTATION));
    assert!(!resource.annotations().contains_key(ROTATION_ANNOTATION));
}

#[tokio::test]
async fn a_misnamed_rotate_request_made_during_a_rotation_is_refused_after_it() {
    let h = Harness::start(vec![]).await;
    let (_, key2) = ready_with_keys(&h).await;
    let marker = format!("Key2 {}", fingerprint(Some(&key2)));
    annotate(
        &h,
        json!({ROTATION_ANNOTATION: marker, ROTATE_KEY_ANNOTATION: "Key3"}),
    )
    .await;

    h.reconcile("docs").await;
    h.reconcile("docs").await;

    assert_eq!(h.arm_calls("POST", "/regenerateKey"), 1);
    assert!(h.event_reasons().await.contains(&"InvalidKeyName".into()));
    let resource = h.get("docs").await.unwrap();
    assert!(!resource.annotations().contains_key(ROTATE_KEY_ANNOTATION));
}

#[tokio::test]
async fn an_invalid_account_reference_is_refused_before_any_api_read() {
    let h = Harness::start(vec![]).await;
    h.create_deployment(&harness::deployment("chat", "Docs_OpenAI"))
        .await;
    h.api_reads.lock().unwrap().clear();

    h.reconcile_deployment("chat").await;

    let resource = h.get_deployment("chat").await.unwrap();
    let ready = harness::deployment_condition(&resource, "Ready").unwrap();
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready.message.contains("spec.accountRef.name"),
        "{}",
        ready.message
    );
    let reads = h.api_reads();
    assert!(
        !reads.iter().any(|name| name == "Docs_OpenAI"),
        "the name never reaches the API server: {reads:?}"
    );
    assert!(h.emulator.requests().is_empty(), "no ARM call");

    // An empty name, which the client itself refuses to put in a path: a verdict, not an
    // error retried for ever.
    h.create_deployment(&harness::deployment("empty", "")).await;
    let requeue = h.try_reconcile_deployment("empty").await;
    assert!(requeue.is_ok(), "{requeue:?}");
    let resource = h.get_deployment("empty").await.unwrap();
    let ready = harness::deployment_condition(&resource, "Ready").unwrap();
    assert_eq!(ready.reason, "InvalidSpec");
}

#[tokio::test]
async fn a_namespace_may_allow_its_own_federated_client_ids() {
    // A Secret without clientSecret: workload identity, for a client id the operator's
    // --allowed-federated-client-ids (here: team-a-app) does not list.
    const CLIENT_ID: &str = "6f1c1c3e-1b7a-4d5e-9a1e-1234567890ab";
    let creds = secret(NS, "azure", &[("tenantId", "t"), ("clientId", CLIENT_ID)]);
    let h = Harness::start(vec![serde_json::to_value(&creds).unwrap()]).await;
    let mut resource = account("docs");
    resource.spec.credentials_secret_ref = Some(LocalSecretReference {
        name: "azure".into(),
    });
    h.create(&resource).await;
    let reason = |r: &cognitive_operator::api::CognitiveServicesAccount| {
        condition(r, "Ready").unwrap().reason.clone()
    };

    h.reconcile("docs").await;
    let refused = h.get("docs").await.unwrap();
    assert_eq!(reason(&refused), "CredentialsInvalid");
    let message = &condition(&refused, "Ready").unwrap().message;
    assert!(
        message.contains(CLIENT_ID) && message.contains("--allowed-federated-client-ids"),
        "{message}"
    );
    assert!(h.emulator.requests().is_empty());

    // Ready only with the Secret's identity: the emulator refuses every other token.
    h.emulator
        .require_token(Some(format!("token-for-{CLIENT_ID}")));
    h.set_namespace_annotations(&[(FEDERATED_CLIENT_IDS_ANNOTATION, CLIENT_ID)]);
    h.reconcile_until_ready("docs").await;
    h.emulator.require_token(None);

    // Taken back: refused again, though a client for that Secret is cached.
    h.set_namespace_annotations(&[(FEDERATED_CLIENT_IDS_ANNOTATION, "")]);
    h.emulator.clear_requests();
    h.reconcile("docs").await;
    let refused = h.get("docs").await.unwrap();
    assert_eq!(reason(&refused), "CredentialsInvalid");
    let message = &condition(&refused, "Ready").unwrap().message;
    assert!(
        message.contains(FEDERATED_CLIENT_IDS_ANNOTATION),
        "{message}"
    );
    assert!(h.emulator.requests().is_empty(), "no call as that identity");

    // A typo stalls only what the annotation governs, naming it.
    h.set_namespace_annotations(&[(FEDERATED_CLIENT_IDS_ANNOTATION, "not a guid")]);
    h.reconcile("docs").await;
    let stalled = h.get("docs").await.unwrap();
    assert_eq!(reason(&stalled), "ScopeGrantInvalid");
    h.create(&account("plain")).await;
    h.reconcile_until_ready("plain").await;
}
