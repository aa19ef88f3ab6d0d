//! End to end on a real control plane: etcd, kube-apiserver (RBAC on) and
//! kube-controller-manager built from pinned Go modules by `tools/k8s/build.sh`, the real
//! `cognitive-operator run` process acting as the chart's ServiceAccount, and the real
//! `cognitive-operator emulator` process as Azure. Each test has a control plane of its own.
//!
//! ```text
//! bash tools/test.sh                                # the whole suite, these included
//! cargo test --test e2e -- --ignored                # these alone (builds the tools if missing)
//! ```

mod support {
    pub mod control_plane;
    pub mod e2e;
    pub mod identities;
}
#[path = "e2e_cases/credential_modes.rs"]
mod credential_modes;
#[path = "e2e_cases/import.rs"]
mod import;
#[path = "e2e_cases/readiness.rs"]
mod readiness;

use std::time::Duration;

use cognitive_operator::api::{CognitiveServicesAccount, CognitiveServicesDeployment, FINALIZER};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::wait::await_condition;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use support::e2e::*;

/// Example manifests with the namespaces they use, as a user applies them.
fn examples() -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(repo_path("deploy/examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(path).unwrap())
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn the_crd_installs_with_its_documentation_and_printer_columns() {
    let cluster = Cluster::start().await;
    let explained = cluster
        .plane
        .kubectl(&["explain", "csa.spec.softDeletePolicy"]);
    assert!(
        explained.contains("What to do when the account is absent but a soft-deleted copy"),
        "kubectl explain shows our documentation:\n{explained}"
    );
    assert!(explained.contains("Restore") && explained.contains("Purge"));
    cluster.create_namespace("team-a");
    cluster
        .apply(&account_manifest("team-a", "docs", json!({})))
        .unwrap();
    let table = cluster
        .plane
        .kubectl(&["get", "csa", "--namespace", "team-a"]);
    let header = table.lines().next().unwrap();
    for column in ["NAME", "READY", "REASON", "ENDPOINT", "AGE"] {
        assert!(header.contains(column), "printer column {column}: {table}");
    }

    // The deployments' CRD too, and the fields Azure cannot change are refused at admission
    // with what to do instead.
    let explained = cluster.plane.kubectl(&["explain", "csd.spec.sku.capacity"]);
    assert!(
        explained.contains("Capacity in the SKU's units"),
        "{explained}"
    );
    let chat = deployment_manifest("team-a", "chat", "docs", 10);
    cluster.apply(&chat.to_string()).unwrap();
    let table = cluster
        .plane
        .kubectl(&["get", "csd", "--namespace", "team-a"]);
    let header = table.lines().next().unwrap();
    for column in [
        "NAME", "READY", "MODEL", "VERSION", "SKU", "CAPACITY", "ACCOUNT", "AGE",
    ] {
        assert!(header.contains(column), "printer column {column}: {table}");
    }
    let mut other_model = chat.clone();
    other_model["spec"]["model"]["name"] = json!("gpt-4o-mini");
    let refused = cluster.apply(&other_model.to_string()).unwrap_err();
    assert!(
        refused.contains("spec.model.name is immutable")
            && refused.contains("create a new deployment resource"),
        "{refused}"
    );
    let mut bigger = chat.clone();
    bigger["spec"]["sku"]["capacity"] = json!(20);
    cluster.apply(&bigger.to_string()).unwrap();
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn every_example_applies_and_reaches_the_verdict_its_spec_implies() {
    let cluster = Cluster::start().await;
    for namespace in ["platform", "team-docs", "team-billing"] {
        cluster.create_namespace(namespace);
    }
    // The observed account exists, made by hand, exactly as its spec describes it.
    cluster
        .emulator
        .seed(
            "legacy-speech",
            json!({"location": LOCATION, "kind": "SpeechServices", "sku": {"name": "S0"},
                   "tags": {"owner": "platform"},
                   "properties": {"publicNetworkAccess": "Disabled"}}),
            false,
        )
        .await;
    let _operator = cluster.start_operator("operator", &["--no-leader-election"]);
    for (file, manifest) in examples() {
        cluster
            .apply(&manifest)
            .unwrap_or_else(|error| panic!("{file} applies: {error}"));
    }
    for (namespace, name) in [
        ("platform", "legacy-speech"),
        ("team-docs", "docs-openai"),
        ("team-docs", "translator-scratch"),
        ("team-docs", "chat-openai"),
    ] {
        cluster.wait_ready(namespace, name);
    }
    cluster.wait_deployments_ready("team-docs");
    let deployments = cluster.kstatus("team-docs", "csd");
    assert_eq!(deployments.len(), 2, "{deployments:?}");
    assert!(
        deployments.iter().all(|v| v.contains(" Current")),
        "{deployments:?}"
    );
    // The per-namespace identity asks Entra ID for a token, and Entra ID is not reachable
    // here: a token endpoint that does not answer may answer later, so the resource says so
    // and is retried with backoff (it would be Stalled CredentialsInvalid if Entra ID refused
    // the placeholder secret).
    cluster
        .wait_for(
            "team-billing",
            "billing-ai",
            "Reconciling CredentialsUnavailable",
            has_condition("Reconciling", "CredentialsUnavailable"),
        )
        .await;
    let verdicts: Vec<String> = ["platform", "team-docs", "team-billing"]
        .iter()
        .flat_map(|namespace| cluster.kstatus(namespace, "csa"))
        .collect();
    let verdict = |name: &str| {
        verdicts
            .iter()
            .find(|line| line.contains(&format!("/{name} ")))
            .unwrap_or_else(|| panic!("{name} has a verdict: {verdicts:?}"))
            .split(' ')
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(verdict("legacy-speech"), "Current", "{verdicts:?}");
    assert_eq!(verdict("docs-openai"), "Current", "{verdicts:?}");
    assert_eq!(verdict("translator-scratch"), "Current", "{verdicts:?}");
    assert_eq!(verdict("chat-openai"), "Current", "{verdicts:?}");
    assert_eq!(verdict("billing-ai"), "InProgress", "{verdicts:?}");
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn the_api_server_refuses_invalid_specs_with_our_messages_before_arm_hears_of_them() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    let _operator = cluster.start_operator("operator", &["--no-leader-election"]);
    cluster
        .apply(&account_manifest("team-a", "docs", json!({})))
        .unwrap();
    cluster.wait_ready("team-a", "docs");
    let writes_before = cluster.emulator.writes().await;

    let moved = cluster
        .apply(&account_manifest(
            "team-a",
            "docs",
            json!({"location": "westeurope"}),
        ))
        .unwrap_err();
    assert!(
        moved.contains("spec.location is immutable: Azure cannot move an account"),
        "{moved}"
    );
    let unknown_policy = cluster
        .apply(&account_manifest(
            "team-a",
            "other",
            json!({"softDeletePolicy": "Sometimes"}),
        ))
        .unwrap_err();
    assert!(
        unknown_policy.contains("spec.softDeletePolicy")
            && unknown_policy.contains("Unsupported value: \"Sometimes\""),
        "{unknown_policy}"
    );
    let bad_name = cluster
        .apply(&account_manifest(
            "team-a",
            "third",
            json!({"azureName": "-not/valid"}),
        ))
        .unwrap_err();
    assert!(
        bad_name.contains("spec.azureName") && bad_name.contains("should match"),
        "{bad_name}"
    );
    // The owner tag is the operator's, in any letter case (Azure's tag names ignore case).
    let owner_tag = "spec.tags may not set cognitive-operator-owner, in any letter case";
    let claimed = cluster
        .apply(&account_manifest(
            "team-a",
            "fourth",
            json!({"tags": {"COGNITIVE-OPERATOR-OWNER": "team-b/theirs"}}),
        ))
        .unwrap_err();
    assert!(claimed.contains(owner_tag), "{claimed}");
    let mut deployment = deployment_manifest("team-a", "chat", "docs", 1);
    deployment["spec"]["tags"] = json!({"Cognitive-Operator-Owner": "team-b/theirs"});
    let claimed = cluster.apply(&deployment.to_string()).unwrap_err();
    assert!(claimed.contains(owner_tag), "{claimed}");

    // Nothing new reached ARM, and neither refused object exists.
    cluster.emulator.wait_for_resyncs("docs", 2).await;
    assert_eq!(cluster.emulator.writes().await, writes_before);
    let names: Vec<String> = cluster
        .accounts("team-a")
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| o.name_any())
        .collect();
    assert_eq!(names, ["docs"]);
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn no_arm_write_happens_before_the_finalizer_is_on_the_object() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    // The operator may not patch its resources, so it cannot add the finalizer.
    cluster.plane.kubectl(&[
        "patch",
        "clusterrole",
        "cognitive-operator",
        "--type=json",
        r#"-p=[{"op":"replace","path":"/rules/0/verbs","value":["list","watch"]}]"#,
    ]);
    let operator = cluster.start_operator("operator", &["--no-leader-election"]);
    cluster
        .apply(&account_manifest("team-a", "docs", json!({})))
        .unwrap();
    // The API server's answer, as the operator reports it (its request metrics do not count
    // requests the authorizer refused).
    wait_for_line(
        &operator,
        r#"cannot patch resource \"cognitiveservicesaccounts\""#,
    );
    assert_eq!(
        cluster.emulator.writes().await,
        Vec::<String>::new(),
        "no ARM write while the finalizer could not be added"
    );
    cluster.install_chart_rbac(&[]);
    let ready = cluster
        .wait_for("team-a", "docs", "Ready", is_ready())
        .await
        .unwrap();
    assert!(ready.finalizers().iter().any(|f| f == FINALIZER));
    assert_eq!(cluster.emulator.count("PUT", "/accounts/docs").await, 1);
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn delete_and_purge_waits_for_the_purge_permission_and_the_secret_is_collected() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    let _operator = cluster.start_operator("operator", &["--no-leader-election"]);
    let spec =
        json!({"deletionPolicy": "DeleteAndPurge", "connectionSecret": {"name": "docs-conn"}});
    cluster
        .apply(&account_manifest("team-a", "docs", spec))
        .unwrap();
    let ready = cluster
        .wait_for("team-a", "docs", "Ready", is_ready())
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "team-a");
    let secret = secrets.get("docs-conn").await.unwrap();
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        owner.uid,
        ready.uid().unwrap(),
        "the Secret is owned by its resource"
    );

    cluster.emulator.allow_purge(false).await;
    cluster.plane.kubectl(&[
        "delete",
        "csa/docs",
        "--namespace",
        "team-a",
        "--wait=false",
    ]);
    let stuck = cluster
        .wait_for(
            "team-a",
            "docs",
            "PurgeForbidden",
            has_condition("Stalled", "PurgeForbidden"),
        )
        .await
        .unwrap();
    assert!(stuck.metadata.deletion_timestamp.is_some());
    assert!(
        stuck.finalizers().iter().any(|f| f == FINALIZER),
        "the finalizer stays"
    );
    assert_eq!(cluster.emulator.count("DELETE", "/accounts/docs").await, 1);

    cluster.emulator.allow_purge(true).await;
    wait_deleted(
        cluster.accounts("team-a"),
        "docs",
        &ready.uid().unwrap(),
        "the deletion finishes once purging is allowed",
    )
    .await;
    let purged = cluster.emulator.writes().await;
    assert!(
        purged
            .iter()
            .any(|w| w.starts_with("DELETE") && w.ends_with("/deletedAccounts/docs")),
        "{purged:?}"
    );
    wait_deleted(
        secrets,
        "docs-conn",
        &secret.uid().unwrap(),
        "the garbage collector removes the connection Secret",
    )
    .await;
    // The object is gone: an event says what its deletion did.
    let done = event_notes(&cluster, "team-a", "DeletionPolicyDone");
    assert!(
        done.iter().any(|note| note.contains("deleted and purged")),
        "{done:?}"
    );

    // A copy that is not visible is not purged, and the verdict says so in a Warning.
    cluster
        .apply(&account_manifest(
            "team-a",
            "hidden",
            json!({"deletionPolicy": "DeleteAndPurge"}),
        ))
        .unwrap();
    let hidden = cluster
        .wait_for("team-a", "hidden", "Ready", is_ready())
        .await
        .unwrap();
    cluster
        .emulator
        .fault(
            json!({"method": "GET", "pathContains": "deletedAccounts/hidden", "status": 404,
                      "code": "ResourceNotFound", "times": 0}),
        )
        .await;
    cluster.plane.kubectl(&[
        "delete",
        "csa/hidden",
        "--namespace",
        "team-a",
        "--wait=false",
    ]);
    wait_deleted(
        cluster.accounts("team-a"),
        "hidden",
        &hidden.uid().unwrap(),
        "the deletion of a copy not found",
    )
    .await;
    let skipped = event_notes(&cluster, "team-a", "PurgeSkipped");
    assert!(
        skipped.iter().any(|note| note.contains("none was purged")),
        "{skipped:?}"
    );
}

/// The notes of the events with `reason` in `namespace`.
fn event_notes(cluster: &Cluster, namespace: &str, reason: &str) -> Vec<String> {
    cluster
        .events(namespace)
        .iter()
        .filter(|event| event["reason"] == reason)
        .map(|event| event["note"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn status_is_server_side_applied_and_left_alone_at_rest() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    let _operator = cluster.start_operator("operator", &["--no-leader-election"]);
    cluster
        .apply(&account_manifest(
            "team-a",
            "docs",
            json!({"tags": {"team": "a"}}),
        ))
        .unwrap();
    cluster
        .wait_for("team-a", "docs", "Ready", is_ready())
        .await;

    // A user's apply of a changed spec does not fight the operator's status.
    cluster
        .apply(&account_manifest(
            "team-a",
            "docs",
            json!({"tags": {"team": "b"}}),
        ))
        .unwrap();
    let ready = cluster
        .wait_for("team-a", "docs", "Ready at generation 2", is_ready_at(2))
        .await
        .unwrap();
    let managers = ready.metadata.managed_fields.clone().unwrap();
    let status_entry = managers
        .iter()
        .find(|m| m.subresource.as_deref() == Some("status"))
        .expect("a managedFields entry for the status subresource");
    assert_eq!(status_entry.manager.as_deref(), Some("cognitive-operator"));
    assert_eq!(status_entry.operation.as_deref(), Some("Apply"));
    for entry in managers
        .iter()
        .filter(|m| m.manager.as_deref() == Some("cognitive-operator"))
    {
        let fields = serde_json::to_string(&entry.fields_v1).unwrap();
        assert!(
            !fields.contains("f:spec"),
            "the operator owns no spec field: {fields}"
        );
    }
    let patches = cluster.emulator.count("PATCH", "/accounts/docs").await;
    assert_eq!(patches, 1, "the tag change is one PATCH");

    // Three resyncs at rest: one read each, and no write to the object.
    let version = ready.resource_version();
    cluster.emulator.wait_for_resyncs("docs", 3).await;
    let now = cluster.accounts("team-a").get("docs").await.unwrap();
    assert_eq!(now.resource_version(), version, "no status write at rest");
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn the_connection_secret_carries_keys_rotates_one_and_refuses_a_foreign_secret() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    let _operator = cluster.start_operator("operator", &["--no-leader-election"]);
    cluster
        .apply(&account_manifest(
            "team-a",
            "docs",
            json!({"connectionSecret": {"name": "docs-conn"}}),
        ))
        .unwrap();
    cluster
        .wait_for("team-a", "docs", "Ready", is_ready())
        .await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "team-a");
    let before = secrets.get("docs-conn").await.unwrap().data.unwrap();
    for key in ["endpoint", "key1", "key2"] {
        assert!(before.contains_key(key), "{key} in the Secret");
    }

    cluster.plane.kubectl(&[
        "annotate",
        "csa/docs",
        "--namespace",
        "team-a",
        "cognitive-operator.dev/rotate-key=Key1",
    ]);
    tokio::time::timeout(
        WAIT,
        await_condition(secrets.clone(), "docs-conn", |s: Option<&Secret>| {
            s.and_then(|s| s.data.as_ref())
                .is_some_and(|d| d.get("key1") != before.get("key1"))
        }),
    )
    .await
    .expect("key1 is rotated into the Secret")
    .unwrap();
    let after = secrets.get("docs-conn").await.unwrap().data.unwrap();
    assert_eq!(after.get("key2"), before.get("key2"), "key2 is untouched");
    assert_eq!(cluster.emulator.count("POST", "/regenerateKey").await, 1);
    cluster
        .wait_for(
            "team-a",
            "docs",
            "the annotation removed",
            |o: Option<&CognitiveServicesAccount>| {
                o.is_some_and(|o| {
                    !o.annotations()
                        .contains_key("cognitive-operator.dev/rotate-key")
                })
            },
        )
        .await;

    // A Secret someone else made is never overwritten.
    cluster.plane.kubectl(&[
        "create",
        "secret",
        "generic",
        "theirs",
        "--namespace",
        "team-a",
        "--from-literal=owner=them",
    ]);
    cluster
        .apply(&account_manifest(
            "team-a",
            "other",
            json!({"connectionSecret": {"name": "theirs"}}),
        ))
        .unwrap();
    cluster
        .wait_for(
            "team-a",
            "other",
            "SecretConflict",
            has_condition("Stalled", "SecretConflict"),
        )
        .await;
    let theirs = secrets.get("theirs").await.unwrap().data.unwrap();
    assert_eq!(theirs.keys().collect::<Vec<_>>(), ["owner"]);
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn events_tell_of_writes_and_errors_and_stay_quiet_at_rest() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    let _operator = cluster.start_operator("operator", &["--no-leader-election"]);
    cluster
        .apply(&account_manifest("team-a", "docs", json!({})))
        .unwrap();
    cluster
        .apply(&account_manifest(
            "team-a",
            "lost",
            json!({"resourceGroup": "rg-missing"}),
        ))
        .unwrap();
    cluster
        .wait_for("team-a", "docs", "Ready", is_ready())
        .await;
    cluster
        .wait_for(
            "team-a",
            "lost",
            "Stalled",
            has_condition("Stalled", "ResourceGroupNotFound"),
        )
        .await;
    cluster
        .apply(&account_manifest(
            "team-a",
            "docs",
            json!({"tags": {"team": "a"}}),
        ))
        .unwrap();
    cluster
        .wait_for("team-a", "docs", "Ready at generation 2", is_ready_at(2))
        .await;
    let table = cluster
        .plane
        .kubectl(&["get", "events", "--namespace", "team-a"]);
    for reason in ["Created", "Patched", "ResourceGroupNotFound"] {
        assert!(
            table.contains(reason),
            "kubectl get events lists {reason}:\n{table}"
        );
    }
    let before = cluster.event_reasons("team-a");
    cluster.emulator.wait_for_resyncs("docs", 3).await;
    assert_eq!(cluster.event_reasons("team-a"), before, "no event at rest");
}

fn lease_holder(lease: Option<&Lease>) -> Option<String> {
    lease?
        .spec
        .as_ref()?
        .holder_identity
        .clone()
        .filter(|h| !h.is_empty())
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn of_two_elected_operators_one_writes_and_the_other_takes_over_when_it_dies() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    let mut first = cluster.start_operator("operator-a", &[]);
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), OPERATOR_NAMESPACE);
    tokio::time::timeout(
        WAIT,
        await_condition(leases.clone(), "cognitive-operator", |l: Option<&Lease>| {
            lease_holder(l).is_some_and(|h| h.starts_with("operator-a"))
        }),
    )
    .await
    .expect("the first operator leads")
    .unwrap();
    let second = cluster.start_operator("operator-b", &[]);
    for name in ["one", "two", "three"] {
        cluster
            .apply(&account_manifest("team-a", name, json!({})))
            .unwrap();
    }
    for name in ["one", "two", "three"] {
        cluster.wait_for("team-a", name, "Ready", is_ready()).await;
    }
    assert!(
        !second.output().contains("leading: starting the controller"),
        "the standby never led while the leader lived"
    );

    first.kill();
    let killed = std::time::Instant::now();
    tokio::time::timeout(
        WAIT,
        await_condition(leases, "cognitive-operator", |l: Option<&Lease>| {
            lease_holder(l).is_some_and(|h| h.starts_with("operator-b"))
        }),
    )
    .await
    .expect("the standby takes the lease")
    .unwrap();
    let takeover = killed.elapsed();
    assert!(
        takeover < Duration::from_secs(30),
        "taken over in {takeover:?}, within twice the 15 s lease"
    );
    cluster
        .apply(&account_manifest("team-a", "four", json!({})))
        .unwrap();
    cluster
        .wait_for("team-a", "four", "Ready", is_ready())
        .await;
    for name in ["one", "two", "three", "four"] {
        assert_eq!(
            cluster
                .emulator
                .count("PUT", &format!("/accounts/{name}"))
                .await,
            1,
            "{name} was created once"
        );
    }
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn an_operator_killed_during_a_create_resumes_the_operation_without_a_second_put() {
    // Operations finish only when the emulator's clock says so.
    let cluster = Cluster::start_with(&[
        "--polls-to-complete",
        "never",
        "--operation-seconds",
        "3600",
    ])
    .await;
    cluster.create_namespace("team-a");
    let mut operator = cluster.start_operator("operator", &["--no-leader-election"]);
    cluster
        .apply(&account_manifest("team-a", "docs", json!({})))
        .unwrap();
    let pending = cluster
        .wait_for(
            "team-a",
            "docs",
            "a pending create",
            |o: Option<&CognitiveServicesAccount>| {
                o.and_then(|o| o.status.as_ref())
                    .is_some_and(|s| s.pending_operation.is_some())
            },
        )
        .await
        .unwrap();
    operator.kill();
    let handle = pending.status.unwrap().pending_operation.unwrap();
    assert_eq!(format!("{:?}", handle.kind), "Create");
    cluster.emulator.advance_clock(3601.0).await;

    let _restarted = cluster.start_operator("operator-again", &["--no-leader-election"]);
    cluster
        .wait_for("team-a", "docs", "Ready", is_ready())
        .await;
    assert_eq!(
        cluster.emulator.count("PUT", "/accounts/docs").await,
        1,
        "the create was resumed, not sent again"
    );
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn the_watch_recovers_after_the_api_server_restarts() {
    let mut cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    let _operator = cluster.start_operator("operator", &["--no-leader-election"]);
    cluster
        .apply(&account_manifest("team-a", "docs", json!({})))
        .unwrap();
    cluster
        .wait_for("team-a", "docs", "Ready", is_ready())
        .await;

    cluster.plane.restart_apiserver();
    cluster.client = cluster.plane.client().await;
    cluster
        .apply(&account_manifest(
            "team-a",
            "docs",
            json!({"tags": {"after": "restart"}}),
        ))
        .unwrap();
    cluster
        .emulator
        .wait_for("the PATCH of the new tag", |log| {
            log.iter().any(|r| {
                r.method == "PATCH"
                    && r.request_body
                        .as_ref()
                        .is_some_and(|b| b["tags"]["after"] == "restart")
            })
        })
        .await;
    cluster
        .wait_for("team-a", "docs", "Ready at generation 2", is_ready_at(2))
        .await;
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn the_chart_rbac_is_enough_and_nothing_more_is_allowed() {
    let cluster = Cluster::start().await;
    for namespace in ["team-a", "team-b"] {
        cluster.create_namespace(namespace);
    }
    // Watch one namespace: the chart then grants a Role there instead of a ClusterRole.
    cluster.plane.kubectl(&[
        "delete",
        "clusterrole,clusterrolebinding",
        "cognitive-operator",
    ]);
    cluster.install_chart_rbac(&["watch.namespace=team-a"]);
    let _operator = cluster.start_operator("operator", &["--namespace", "team-a"]);
    cluster
        .apply(&account_manifest(
            "team-a",
            "docs",
            json!({"connectionSecret": {"name": "docs-conn"}}),
        ))
        .unwrap();
    cluster.wait_ready("team-a", "docs");

    let as_operator = |args: &[&str]| cluster.plane.kubectl_as(&cluster.operator_kubeconfig, args);
    for refused in [
        &["get", "secrets", "--namespace", "team-b"][..],
        &["get", "pods", "--namespace", "team-a"][..],
        &["create", "namespace", "mine"][..],
        &["get", "csa", "--namespace", "team-b"][..],
    ] {
        let output = as_operator(refused);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains("Forbidden"),
            "kubectl {} is refused: {stderr}",
            refused.join(" ")
        );
    }
    let allowed = as_operator(&["get", "secret", "docs-conn", "--namespace", "team-a"]);
    assert!(allowed.status.success());
}

/// `kubectl apply --dry-run=server` of `manifests`: every object passes the API server's
/// validation and admission; how many objects it accepted.
fn accepted_by_the_api_server(cluster: &Cluster, what: &str, manifests: &str) -> usize {
    let output = cluster
        .plane
        .kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], manifests);
    assert!(
        output.status.success(),
        "{what} is refused by the API server:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let accepted = String::from_utf8_lossy(&output.stdout);
    assert!(accepted.contains("(server dry run)"), "{what}: {accepted}");
    accepted.matches("(server dry run)").count()
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn the_chart_and_the_kustomize_base_render_objects_the_api_server_accepts() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    accepted_by_the_api_server(
        &cluster,
        "helm template (defaults)",
        &cluster.helm_template(&[]),
    );

    let full_values = repo_path("charts/cognitive-operator/ci/full-values.yaml");
    let chart = repo_path("charts/cognitive-operator");
    let output = std::process::Command::new(cluster.plane.binary("helm"))
        .args(["template", "cognitive-operator"])
        .arg(&chart)
        .args(["--namespace", OPERATOR_NAMESPACE, "--values"])
        .arg(&full_values)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The ServiceMonitor's CRD belongs to the Prometheus operator, which this cluster lacks;
    // every other object of the full values must be accepted.
    let rendered = String::from_utf8(output.stdout).unwrap();
    let without_service_monitor: Vec<&str> = rendered
        .split("\n---")
        .filter(|document| !document.contains("\nkind: ServiceMonitor\n"))
        .collect();
    assert!(
        rendered.contains("\nkind: ServiceMonitor\n"),
        "full values enable the ServiceMonitor"
    );
    accepted_by_the_api_server(
        &cluster,
        "helm template (ci/full-values.yaml)",
        &without_service_monitor.join("\n---\n"),
    );

    let kustomized = cluster
        .plane
        .kubectl(&["kustomize", &repo_path("deploy").display().to_string()]);
    accepted_by_the_api_server(&cluster, "kubectl kustomize deploy/", &kustomized);
}

/// A Role for namespace users: their own accounts and Secrets, nothing cluster-wide.
/// The built-in `edit` ClusterRole bound to `user` in `namespace`: what a cluster admin gives a
/// team; the chart's user roles aggregate into it.
fn namespace_user_role(namespace: &str, user: &str) -> String {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": "ai-user", "namespace": namespace},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
           "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]})
    .to_string()
}

/// Waits until the aggregation controller has copied the chart's user roles into `edit`.
async fn edit_role_aggregated(cluster: &Cluster) {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let roles: Api<ClusterRole> = Api::all(cluster.client.clone());
    let aggregated = |role: Option<&ClusterRole>| {
        role.and_then(|r| r.rules.as_ref()).is_some_and(|rules| {
            rules.iter().any(|rule| {
                rule.resources
                    .iter()
                    .flatten()
                    .any(|r| r == "cognitiveservicesdeployments")
            })
        })
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(roles, "edit", aggregated),
    )
    .await
    .expect("the chart's edit role is aggregated into edit")
    .unwrap();
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn a_namespace_user_reaches_only_the_scopes_an_admin_granted_and_no_foreign_keys() {
    let cluster = Cluster::start().await;
    for namespace in ["team-a", "team-b"] {
        cluster.create_namespace(namespace);
        cluster
            .apply(&namespace_user_role(namespace, "alice"))
            .unwrap();
    }
    edit_role_aggregated(&cluster).await;
    // The admin grants team-a one resource group; team-b gets nothing (the default is empty).
    cluster.plane.kubectl(&[
        "annotate",
        "namespace",
        "team-a",
        &format!("cognitive-operator.dev/azure-scopes={SUB}/{RG}"),
    ]);
    // Accounts someone else has: one made by hand, one another resource manages.
    let by_hand = json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}});
    cluster
        .emulator
        .seed("legacy", by_hand.clone(), false)
        .await;
    let mut managed = by_hand;
    managed["tags"] = json!({"cognitive-operator-owner": "team-c/prod"});
    cluster.emulator.seed("prod-ai", managed, false).await;
    let _operator = cluster.start_operator("operator", &["--default-scopes="]);

    let alice = cluster.plane.user_kubeconfig("alice");
    let as_alice = |manifest: &str| {
        let output = support::control_plane::kubectl_stdin(
            &cluster.plane.binary("kubectl"),
            &alice,
            &["apply", "-f", "-"],
            manifest,
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    // She cannot grant herself anything.
    let annotate = cluster.plane.kubectl_as(
        &alice,
        &[
            "annotate",
            "namespace",
            "team-a",
            "cognitive-operator.dev/azure-scopes=*",
        ],
    );
    assert!(
        !annotate.status.success(),
        "a namespace user may not edit her Namespace"
    );
    // The edit role gives her both kinds, never their status: that is the operator's.
    let can_i = |args: &[&str]| {
        let mut command = vec!["auth", "can-i", "--namespace", "team-a"];
        command.extend_from_slice(args);
        let output = cluster.plane.kubectl_as(&alice, &command);
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    for kind in ["cognitiveservicesaccounts", "cognitiveservicesdeployments"] {
        assert_eq!(can_i(&["create", kind]), "yes", "{kind}");
        assert_eq!(
            can_i(&["patch", kind, "--subresource=status"]),
            "no",
            "{kind}/status"
        );
    }

    as_alice(&account_manifest(
        "team-a",
        "docs",
        json!({"connectionSecret": {"name": "docs-conn"}}),
    ));
    as_alice(&account_manifest(
        "team-a",
        "elsewhere",
        json!({"resourceGroup": "rg-finance"}),
    ));
    as_alice(&account_manifest("team-b", "docs-b", json!({})));
    let observe = |azure_name: &str| {
        json!({"reconcilePolicy": "Observe", "azureName": azure_name,
               "connectionSecret": {"name": format!("{azure_name}-conn")}})
    };
    as_alice(&account_manifest(
        "team-a",
        "peek-legacy",
        observe("legacy"),
    ));
    as_alice(&account_manifest("team-a", "peek-prod", observe("prod-ai")));

    cluster.wait_ready("team-a", "docs");
    for (namespace, name) in [("team-a", "elsewhere"), ("team-b", "docs-b")] {
        let stalled = cluster
            .wait_for(
                namespace,
                name,
                "ScopeNotAllowed",
                has_condition("Stalled", "ScopeNotAllowed"),
            )
            .await
            .unwrap();
        let status = stalled.status.unwrap();
        let message = &status
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled")
            .unwrap()
            .message;
        assert!(message.contains("kubectl annotate namespace"), "{message}");
    }
    cluster
        .wait_for(
            "team-a",
            "peek-prod",
            "AlreadyManaged",
            has_condition("Stalled", "AlreadyManaged"),
        )
        .await;
    cluster.wait_ready("team-a", "peek-legacy");

    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "team-a");
    let mine = secrets.get("docs-conn").await.unwrap().data.unwrap();
    assert!(
        mine.contains_key("key1"),
        "a managed account's keys are published"
    );
    let peeked = secrets.get("legacy-conn").await.unwrap().data.unwrap();
    assert_eq!(
        peeked.keys().collect::<Vec<_>>(),
        ["endpoint"],
        "no foreign keys"
    );
    assert!(secrets.get_opt("prod-ai-conn").await.unwrap().is_none());

    let requests = cluster.emulator.requests().await;
    for forbidden in ["/accounts/elsewhere", "/accounts/docs-b"] {
        assert!(
            !requests.iter().any(|r| r.path.contains(forbidden)),
            "no ARM call for {forbidden} outside the grant"
        );
    }
    let key_reads: Vec<&str> = requests
        .iter()
        .filter(|r| r.path.ends_with("/listKeys"))
        .map(|r| r.path.as_str())
        .collect();
    assert!(
        key_reads.iter().all(|p| p.contains("/accounts/docs/")),
        "{key_reads:?}"
    );
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn an_account_of_the_same_namespace_and_name_in_another_cluster_is_never_taken_or_deleted() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    // Another cluster's operator manages team-a/docs on the same subscription.
    let theirs = json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"},
                        "tags": {"cognitive-operator-owner": "other-cluster-uid/team-a/docs"}});
    cluster.emulator.seed("docs", theirs, false).await;
    let _operator = cluster.start_operator("operator", &["--no-leader-election"]);
    let spec = json!({"deletionPolicy": "DeleteAndPurge", "adoptionPolicy": "Adopt",
                      "connectionSecret": {"name": "docs-conn"}});
    cluster
        .apply(&account_manifest("team-a", "docs", spec))
        .unwrap();
    cluster
        .apply(&account_manifest("team-a", "mine", json!({})))
        .unwrap();
    let refused = cluster
        .wait_for(
            "team-a",
            "docs",
            "AlreadyManaged",
            has_condition("Stalled", "AlreadyManaged"),
        )
        .await
        .unwrap();
    cluster.wait_ready("team-a", "mine");

    // Our own account's owner tag names this cluster: the kube-system namespace's UID.
    let uid = cluster.plane.kubectl(&[
        "get",
        "namespace",
        "kube-system",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let created = cluster
        .emulator
        .requests()
        .await
        .into_iter()
        .find(|r| r.method == "PUT" && r.path.ends_with("/accounts/mine"))
        .unwrap();
    assert_eq!(
        created.request_body.unwrap()["tags"]["cognitive-operator-owner"],
        format!("{uid}/team-a/mine")
    );

    cluster.plane.kubectl(&[
        "delete",
        "csa/docs",
        "--namespace",
        "team-a",
        "--timeout=120s",
    ]);
    wait_deleted(
        cluster.accounts("team-a"),
        "docs",
        &refused.uid().unwrap(),
        "the resource goes",
    )
    .await;
    let touched: Vec<String> = cluster
        .emulator
        .writes()
        .await
        .into_iter()
        .filter(|w| w.contains("/docs"))
        .collect();
    assert_eq!(
        touched,
        Vec::<String>::new(),
        "nothing written to the other cluster's account"
    );
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "team-a");
    assert!(
        secrets.get_opt("docs-conn").await.unwrap().is_none(),
        "and no keys of it"
    );
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn deleting_a_paused_resource_or_a_whole_namespace_never_hangs_and_says_what_it_skipped() {
    let cluster = Cluster::start().await;
    for namespace in ["team-a", "team-gone"] {
        cluster.create_namespace(namespace);
    }
    let _operator = cluster.start_operator("operator", &["--no-leader-election"]);
    cluster
        .apply(&account_manifest("team-a", "paused", json!({})))
        .unwrap();
    cluster.wait_ready("team-a", "paused");
    cluster
        .apply(&account_manifest(
            "team-a",
            "paused",
            json!({"reconcilePolicy": "Pause"}),
        ))
        .unwrap();
    cluster.plane.kubectl(&[
        "delete",
        "csa/paused",
        "--namespace",
        "team-a",
        "--timeout=120s",
    ]);
    assert!(
        cluster
            .event_reasons("team-a")
            .contains(&"DeletionPolicySkipped".to_string())
    );
    assert_eq!(
        cluster.emulator.count("DELETE", "/accounts/paused").await,
        0
    );

    // A resource with its own (placeholder) identity: deleting the namespace deletes the
    // credentials Secret with it, and the namespace must still go.
    cluster
        .apply(
            &json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "identity", "namespace": "team-gone"},
                    "stringData": {"tenantId": "t", "clientId": "c", "clientSecret": "s"}})
            .to_string(),
        )
        .unwrap();
    cluster
        .apply(&account_manifest(
            "team-gone",
            "orphaned",
            json!({"credentialsSecretRef": {"name": "identity"}}),
        ))
        .unwrap();
    cluster
        .wait_for(
            "team-gone",
            "orphaned",
            "the finalizer",
            |o: Option<&CognitiveServicesAccount>| {
                o.is_some_and(|o| o.finalizers().iter().any(|f| f == FINALIZER))
            },
        )
        .await;
    cluster
        .plane
        .kubectl(&["delete", "namespace", "team-gone", "--timeout=120s"]);
    let left = cluster
        .plane
        .kubectl_output(&["get", "namespace", "team-gone"]);
    assert!(!left.status.success(), "the namespace is gone");
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn a_grant_takes_effect_at_once_and_a_malformed_one_holds_the_deletion_until_fixed() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    let annotate = |value: &str| {
        cluster.plane.kubectl(&[
            "annotate",
            "--overwrite",
            "namespace",
            "team-a",
            &format!("cognitive-operator.dev/azure-scopes={value}"),
        ]);
    };
    annotate("not-a-grant");
    let _operator = cluster.start_operator("operator", &["--default-scopes=*"]);
    // An hour's resync: only the Namespace change can bring the reconciles below in time.
    let spec = json!({"resyncInterval": "1h"});
    cluster
        .apply(&account_manifest("team-a", "docs", spec))
        .unwrap();
    let stalled = cluster
        .wait_for(
            "team-a",
            "docs",
            "ScopeGrantInvalid",
            has_condition("Stalled", "ScopeGrantInvalid"),
        )
        .await
        .unwrap();
    let message = stalled_message(&stalled);
    assert!(
        message.contains("not-a-grant") && message.contains("cognitive-operator.dev/azure-scopes"),
        "names the annotation and its value, never falls back to the default: {message}"
    );
    assert!(cluster.emulator.requests().await.is_empty(), "no ARM call");

    annotate(&format!("{SUB}/{RG}"));
    cluster.wait_ready("team-a", "docs");

    annotate("still/not/a-grant");
    cluster
        .wait_for(
            "team-a",
            "docs",
            "ScopeGrantInvalid again",
            has_condition("Stalled", "ScopeGrantInvalid"),
        )
        .await
        .unwrap();
    cluster.plane.kubectl(&[
        "delete",
        "csa/docs",
        "--namespace",
        "team-a",
        "--wait=false",
    ]);
    let waiting = cluster
        .wait_for(
            "team-a",
            "docs",
            "the deletion waiting for the grant",
            |object: Option<&CognitiveServicesAccount>| {
                object.is_some_and(|o| stalled_message(o).contains("deletion policy waits"))
            },
        )
        .await
        .expect("a typo in a grant never releases the finalizer");
    assert!(
        !cluster
            .emulator
            .writes()
            .await
            .iter()
            .any(|w| w.starts_with("DELETE")),
        "nothing deleted yet"
    );

    annotate(&format!("{SUB}/{RG}"));
    wait_deleted(
        cluster.accounts("team-a"),
        "docs",
        &waiting.uid().unwrap(),
        "the resource goes once the grant parses",
    )
    .await;
    cluster
        .emulator
        .wait_for("the deletion policy ran", |requests| {
            requests
                .iter()
                .any(|r| r.method == "DELETE" && r.path.ends_with("/accounts/docs"))
        })
        .await;
}

fn stalled_message(object: &CognitiveServicesAccount) -> String {
    object
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Stalled"))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

fn deployment_manifest(namespace: &str, name: &str, account: &str, capacity: i32) -> Value {
    json!({
        "apiVersion": "cognitive-operator.dev/v1alpha1",
        "kind": "CognitiveServicesDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "accountRef": {"name": account},
            "model": {"format": "OpenAI", "name": "gpt-4o"},
            "sku": {"name": "GlobalStandard", "capacity": capacity},
            "resyncInterval": "2s",
        },
    })
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn deployments_wait_for_their_account_go_one_at_a_time_and_are_deleted_before_it() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-docs");
    let _operator = cluster.start_operator("operator", &["--no-leader-election"]);
    // Ten deployments applied together with their account, before it in the stream.
    let mut items: Vec<Value> = (0..10)
        .map(|i| deployment_manifest("team-docs", &format!("chat-{i}"), "docs-openai", 1))
        .collect();
    let account: Value = serde_json::from_str(&account_manifest(
        "team-docs",
        "docs-openai",
        json!({"deletionPolicy": "DeleteAndPurge"}),
    ))
    .unwrap();
    items.push(account);
    cluster
        .apply(&json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string())
        .unwrap();
    cluster.wait_ready("team-docs", "docs-openai");
    cluster.wait_deployments_ready("team-docs");
    let requests = cluster.emulator.requests().await;
    let conflicts = requests.iter().filter(|r| r.status == 409).count();
    assert_eq!(conflicts, 0, "one write at a time per account");
    assert_eq!(
        cluster.emulator.count("PUT", "/deployments/chat-3").await,
        1
    );
    let verdicts = cluster.kstatus("team-docs", "csd");
    assert_eq!(verdicts.len(), 10, "{verdicts:?}");
    assert!(
        verdicts.iter().all(|v| v.contains(" Current")),
        "{verdicts:?}"
    );

    // Each is owned by its account resource, so Kubernetes collects it with the account.
    let accounts = cluster.accounts("team-docs");
    let account = accounts.get("docs-openai").await.unwrap();
    let deployments: Api<CognitiveServicesDeployment> =
        Api::namespaced(cluster.client.clone(), "team-docs");
    let chat = deployments.get("chat-0").await.unwrap();
    assert_eq!(chat.owner_references()[0].uid, account.uid().unwrap());
    assert!(chat.finalizers().contains(&FINALIZER.to_string()));

    // A capacity change is one PATCH of that deployment.
    let before = cluster.emulator.count("PATCH", "/deployments/chat-0").await;
    cluster
        .apply(&deployment_manifest("team-docs", "chat-0", "docs-openai", 5).to_string())
        .unwrap();
    let scaled = |chat: Option<&CognitiveServicesDeployment>| {
        chat.is_some_and(|chat| {
            let status = chat.status.clone().unwrap_or_default();
            status.observed_generation == chat.metadata.generation
                && status.capacity == Some(5)
                && status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(deployments.clone(), "chat-0", scaled),
    )
    .await
    .expect("chat-0 Ready at capacity 5")
    .unwrap();
    assert_eq!(
        cluster.emulator.count("PATCH", "/deployments/chat-0").await,
        before + 1
    );

    // Deleting the account deletes every deployment in Azure first, then the account; the
    // deployment resources go with it.
    let uids: Vec<(String, String)> = deployments
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|d| (d.name_any(), d.uid().unwrap()))
        .collect();
    cluster.plane.kubectl(&[
        "delete",
        "csa",
        "docs-openai",
        "--namespace",
        "team-docs",
        "--wait=false",
    ]);
    wait_deleted(
        accounts,
        "docs-openai",
        &account.uid().unwrap(),
        "the account resource",
    )
    .await;
    for (name, uid) in &uids {
        wait_deleted(deployments.clone(), name, uid, "a deployment resource").await;
    }
    let writes = cluster.emulator.writes().await;
    let account_delete = writes
        .iter()
        .position(|w| w.starts_with("DELETE") && w.ends_with("/accounts/docs-openai"))
        .unwrap_or_else(|| panic!("{writes:?}"));
    let deployment_deletes: Vec<usize> = writes
        .iter()
        .enumerate()
        .filter(|(_, w)| w.starts_with("DELETE") && w.contains("/deployments/"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(deployment_deletes.len(), 10, "{writes:?}");
    assert!(
        deployment_deletes.iter().all(|&i| i < account_delete),
        "{writes:?}"
    );
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn keys_leave_the_connection_secret_when_the_grant_is_revoked() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-a");
    let grant = |scope: &str| {
        cluster.plane.kubectl(&[
            "annotate",
            "--overwrite",
            "namespace",
            "team-a",
            &format!("cognitive-operator.dev/azure-scopes={scope}"),
        ]);
    };
    grant(&format!("{SUB}/{RG}"));
    let _operator = cluster.start_operator("operator", &["--default-scopes="]);
    let spec = json!({"connectionSecret": {"name": "docs-conn"}});
    cluster
        .apply(&account_manifest("team-a", "docs", spec))
        .unwrap();
    cluster.wait_ready("team-a", "docs");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "team-a");
    let entries =
        |secret: Secret| -> Vec<String> { secret.data.unwrap_or_default().into_keys().collect() };
    let published = entries(secrets.get("docs-conn").await.unwrap());
    assert_eq!(published, ["endpoint", "key", "key1", "key2"]);

    // The admin takes the grant back: the namespace may now manage another group only.
    grant(&format!("{SUB}/rg-elsewhere"));
    cluster
        .wait_for(
            "team-a",
            "docs",
            "ScopeNotAllowed",
            has_condition("Stalled", "ScopeNotAllowed"),
        )
        .await
        .unwrap();

    // Withdrawn before the verdict is written, so both are there once it is.
    let left = entries(secrets.get("docs-conn").await.unwrap());
    assert_eq!(left, ["endpoint"], "the endpoint stays, the keys go");
    let reasons = cluster.event_reasons("team-a");
    assert!(reasons.iter().any(|r| r == "KeysWithdrawn"), "{reasons:?}");
}

/// The polls of operation statuses in `log`.
fn operation_polls(log: &[arm_emulator::RecordedRequest]) -> usize {
    log.iter()
        .filter(|r| r.method == "GET" && r.path.contains("/operationStatuses/"))
        .count()
}

/// The paths of the DELETEs in `log`, in order.
fn deletes(log: &[arm_emulator::RecordedRequest]) -> Vec<String> {
    log.iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path.clone())
        .collect()
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn a_deletion_during_an_account_update_deletes_every_deployment_first_and_nothing_bills() {
    // Operations finish only when the emulator's clock says so: an Update can be held open.
    let cluster = Cluster::start_with(&[
        "--polls-to-complete",
        "never",
        "--operation-seconds",
        "3600",
    ])
    .await;
    let emulator = &cluster.emulator;
    cluster.create_namespace("team-docs");
    let _operator = cluster.start_operator("operator", &["--no-leader-election"]);
    cluster
        .apply(&account_manifest("team-docs", "docs-openai", json!({})))
        .unwrap();
    emulator
        .wait_for("the account's create", |log| {
            log.iter()
                .any(|r| r.method == "PUT" && r.path.ends_with("/accounts/docs-openai"))
        })
        .await;
    emulator.advance_clock(3601.0).await;
    cluster.wait_ready("team-docs", "docs-openai");
    let mut provisioned = deployment_manifest("team-docs", "ptu", "docs-openai", 15);
    provisioned["spec"]["sku"]["name"] = json!("ProvisionedManaged");
    cluster.apply(&provisioned.to_string()).unwrap();
    emulator
        .wait_for("the deployment's create", |log| {
            log.iter()
                .any(|r| r.method == "PUT" && r.path.ends_with("/deployments/ptu"))
        })
        .await;
    emulator.advance_clock(3601.0).await;
    cluster.wait_deployments_ready("team-docs");
    assert_eq!(emulator.billing().await["billingCapacity"], json!(15));

    // A change ARM applies in a long-running Update, held open.
    cluster
        .apply(&account_manifest(
            "team-docs",
            "docs-openai",
            json!({"properties": {"publicNetworkAccess": "Disabled"}}),
        ))
        .unwrap();
    let updating = cluster
        .wait_for(
            "team-docs",
            "docs-openai",
            "a pending Update",
            |o: Option<&CognitiveServicesAccount>| {
                o.and_then(|o| o.status.as_ref())
                    .and_then(|s| s.pending_operation.as_ref())
                    .is_some_and(|p| format!("{:?}", p.kind) == "Update")
            },
        )
        .await
        .unwrap();
    cluster.plane.kubectl(&[
        "delete",
        "csa",
        "docs-openai",
        "--namespace",
        "team-docs",
        "--wait=false",
    ]);
    // Two polls after the delete: the second is surely the deletion's (reconciles of one object
    // run one at a time), which finds the Update still running.
    let polls = operation_polls(&emulator.requests().await);
    emulator
        .wait_for("the deletion polling the Update", |log| {
            operation_polls(log) >= polls + 2
        })
        .await;
    assert!(deletes(&emulator.requests().await).is_empty());
    emulator.advance_clock(3601.0).await;
    let log = emulator
        .wait_for("the deletion's first DELETE", |log| {
            !deletes(log).is_empty()
        })
        .await;
    let first = &deletes(&log)[0];
    assert!(
        first.ends_with("/deployments/ptu"),
        "the deployment goes first, not {first}"
    );
    emulator.advance_clock(3601.0).await;
    emulator
        .wait_for("the account's DELETE", |log| {
            deletes(log)
                .iter()
                .any(|d| d.ends_with("/accounts/docs-openai"))
        })
        .await;
    emulator.advance_clock(3601.0).await;
    wait_deleted(
        cluster.accounts("team-docs"),
        "docs-openai",
        &updating.uid().unwrap(),
        "the account resource",
    )
    .await;
    let order = deletes(&emulator.requests().await);
    let account_delete = order
        .iter()
        .position(|d| d.ends_with("/accounts/docs-openai"))
        .unwrap();
    assert!(
        order
            .iter()
            .enumerate()
            .filter(|(_, d)| d.contains("/deployments/"))
            .all(|(i, _)| i < account_delete),
        "{order:?}"
    );
    let billing = emulator.billing().await;
    assert_eq!(billing["billingCapacity"], json!(0), "{billing}");
}

/// Seeds a deployment made outside the operator under account `account`.
async fn seed_deployment(cluster: &Cluster, account: &str, name: &str, deployment: Value) {
    let seed = json!({"subscriptionId": SUB, "resourceGroup": RG, "account": account,
                      "name": name, "deployment": deployment});
    let response = reqwest::Client::new()
        .post(format!("{}/_emulator/deployments", cluster.emulator.url))
        .json(&seed)
        .send()
        .await
        .expect("the emulator answers");
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test]
#[ignore = "needs Go to build kube-apiserver and etcd: bash tools/test.sh"]
async fn deployments_of_an_observe_account_are_only_observed() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("team-docs");
    cluster
        .emulator
        .seed(
            "docs-openai",
            json!({"location": LOCATION, "kind": "OpenAI", "sku": {"name": "S0"}}),
            false,
        )
        .await;
    // Tagged as the deployment resource's own: only the account's policy keeps it unwritten.
    seed_deployment(
        &cluster,
        "docs-openai",
        "chat",
        json!({"sku": {"name": "GlobalStandard", "capacity": 10},
               "tags": {"cognitive-operator-owner": "e2e-cluster/team-docs/chat"},
               "properties": {"model": {"format": "OpenAI", "name": "gpt-4o"}}}),
    )
    .await;
    let _operator = cluster.start_operator(
        "operator",
        &["--no-leader-election", "--cluster-id", "e2e-cluster"],
    );
    cluster
        .apply(&account_manifest(
            "team-docs",
            "docs-openai",
            json!({"reconcilePolicy": "Observe"}),
        ))
        .unwrap();
    cluster.wait_ready("team-docs", "docs-openai");
    // A Manage deployment resource whose spec differs (capacity 20, not 10).
    cluster
        .apply(&deployment_manifest("team-docs", "chat", "docs-openai", 20).to_string())
        .unwrap();
    let deployments: Api<CognitiveServicesDeployment> =
        Api::namespaced(cluster.client.clone(), "team-docs");
    // Its verdict: Drifted, or (were it written) Ready after a PATCH.
    let decided = |chat: Option<&CognitiveServicesDeployment>| {
        chat.and_then(|c| c.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && (c.status == "True" || c.reason == "Drifted"))
        })
    };
    let chat = tokio::time::timeout(WAIT, await_condition(deployments.clone(), "chat", decided))
        .await
        .expect("a verdict on chat")
        .unwrap()
        .unwrap();
    let ready = chat
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Drifted"),
        "{}; ARM writes: {:?}",
        ready.message,
        cluster.emulator.writes().await
    );
    assert!(
        ready.message.contains("reconcilePolicy Observe"),
        "{}",
        ready.message
    );
    // Resyncs go on reading it, and none writes.
    let reads = cluster.emulator.count("GET", "/deployments/chat").await;
    cluster
        .emulator
        .wait_for("two more reads of chat", |log| {
            let now = log
                .iter()
                .filter(|r| r.method == "GET" && r.path.ends_with("/deployments/chat"))
                .count();
            now >= reads + 2
        })
        .await;
    let deployment_writes = |writes: Vec<String>| -> Vec<String> {
        writes
            .into_iter()
            .filter(|w| w.contains("/deployments/"))
            .collect()
    };
    assert_eq!(
        deployment_writes(cluster.emulator.writes().await),
        Vec::<String>::new()
    );
    // Deleting the resource leaves the deployment in Azure: no DELETE.
    cluster.plane.kubectl(&[
        "delete",
        "csd",
        "chat",
        "--namespace",
        "team-docs",
        "--wait=false",
    ]);
    wait_deleted(
        deployments,
        "chat",
        &chat.uid().unwrap(),
        "the deployment resource",
    )
    .await;
    assert_eq!(
        deployment_writes(cluster.emulator.writes().await),
        Vec::<String>::new()
    );
}
