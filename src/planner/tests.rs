//! One test per row of the decision table in docs/reconcile.md, then property tests.

use super::*;
use crate::api::{CognitiveServicesAccountSpec, LocalSecretReference};
use crate::arm::models::{AccountWritableProperties, IpRule, NetworkRuleSet, Sku};
use proptest::prelude::*;
use serde_json::json;

const OWNER: &str = "team-a/docs";

fn target() -> AccountRef {
    AccountRef::new("sub", "rg", "docs")
}

fn spec() -> CognitiveServicesAccountSpec {
    CognitiveServicesAccountSpec {
        tags: Some([("team".to_string(), "a".to_string())].into()),
        properties: Some(AccountWritableProperties {
            custom_sub_domain_name: Some("docs".into()),
            disable_local_auth: Some(true),
            ..Default::default()
        }),
        connection_secret: Some(LocalSecretReference { name: "s".into() }),
        ..crate::test_fixtures::openai_spec()
    }
}

/// The account as Azure would show it after creating `spec` for `owner`: the spec plus server
/// defaults and read-only fields.
fn account_for(spec: &CognitiveServicesAccountSpec, owner: Option<&str>) -> Account {
    let input = input(spec, None, None);
    let mut account = desired_account(&input);
    match owner {
        Some(o) => {
            account
                .tags
                .as_mut()
                .unwrap()
                .insert(OWNER_TAG.into(), o.into());
        }
        None => {
            account.tags.as_mut().unwrap().remove(OWNER_TAG);
        }
    }
    let properties = account.properties.get_or_insert_with(Default::default);
    properties.provisioning_state = Some("Succeeded".into());
    properties.endpoint = Some("https://docs.openai.azure.com/".into());
    properties
        .writable
        .public_network_access
        .get_or_insert_with(|| "Enabled".into());
    account.id = Some(target().id());
    account
}

fn input<'a>(
    spec: &'a CognitiveServicesAccountSpec,
    account: Option<&'a Account>,
    copy: Option<&'a SoftDeleted>,
) -> PlanInput<'a> {
    PlanInput {
        spec,
        target: Box::leak(Box::new(target())),
        owner: OWNER,
        account,
        soft_deleted: copy,
        pending: None,
        deleting: false,
        deployments: Some(&[]),
        managed_before: false,
        purged: false,
    }
}

fn copy_at(location: &str, resource_group: &str, owner: Option<&str>) -> SoftDeleted {
    let mut account = account_for(&spec(), owner);
    account.location = Some(location.into());
    let properties = account.properties.as_mut().unwrap();
    properties.deletion_date = Some("2026-11-20T10:00:00Z".into());
    properties.scheduled_purge_date = Some("2026-11-22T10:00:00Z".into());
    SoftDeleted {
        at: DeletedAccountRef {
            subscription_id: "sub".into(),
            location: location.into(),
            resource_group: resource_group.into(),
            name: "docs".into(),
        },
        account,
    }
}

fn kinds(plan: &Plan) -> Vec<OperationKind> {
    plan.actions.iter().map(Action::kind).collect()
}

fn stalled_reason(plan: &Plan) -> &'static str {
    match &plan.verdict {
        Verdict::Stalled { reason, .. } => reason,
        other => panic!("expected Stalled, got {other:?}"),
    }
}

fn message(plan: &Plan) -> String {
    match &plan.verdict {
        Verdict::Stalled { message, .. }
        | Verdict::Progressing { message, .. }
        | Verdict::Observed { message, .. }
        | Verdict::Deleted { message } => message.clone(),
        other => format!("{other:?}"),
    }
}

// ----- Manage, not deleting -------------------------------------------------------------------

#[test]
fn m1_absent_without_copy_creates_with_the_owner_tag() {
    let s = spec();
    let plan = plan(&input(&s, None, None));
    assert_eq!(kinds(&plan), vec![OperationKind::Create]);
    let Action::Create(body) = &plan.actions[0] else {
        unreachable!()
    };
    assert_eq!(body.tags.as_ref().unwrap()[OWNER_TAG], OWNER);
    assert_eq!(body.tags.as_ref().unwrap()["team"], "a");
    assert_eq!(body.location.as_deref(), Some("westus"));
}

#[test]
fn m2_copy_here_with_restore_restores_then_patches_what_differs() {
    let mut s = spec();
    let copy = copy_at("westus", "rg", Some(OWNER));
    s.tags = Some([("team".to_string(), "b".to_string())].into());
    let plan = plan(&input(&s, None, Some(&copy)));
    assert_eq!(
        kinds(&plan),
        vec![OperationKind::Restore, OperationKind::Update]
    );
    assert_eq!(
        plan.actions[0],
        Action::Restore {
            location: "westus".into()
        }
    );
    let Action::Patch { fields, .. } = &plan.actions[1] else {
        unreachable!()
    };
    assert_eq!(fields, &vec!["tags".to_string()]);
    // Nothing differs: restore alone.
    let plan = super::plan(&input(&spec(), None, Some(&copy)));
    assert_eq!(kinds(&plan), vec![OperationKind::Restore]);
}

#[test]
fn m3_copy_here_with_purge_purges_then_creates() {
    let mut s = spec();
    s.soft_delete_policy = SoftDeletePolicy::Purge;
    let copy = copy_at("westus", "rg", Some(OWNER));
    let plan = plan(&input(&s, None, Some(&copy)));
    assert_eq!(
        kinds(&plan),
        vec![OperationKind::Purge, OperationKind::Create]
    );
    assert_eq!(plan.actions[0], Action::Purge(copy.at.clone()));
}

#[test]
fn m4_copy_here_with_fail_stalls_naming_the_copy_and_purge_date() {
    let mut s = spec();
    s.soft_delete_policy = SoftDeletePolicy::Fail;
    let copy = copy_at("westus", "rg", None);
    let plan = plan(&input(&s, None, Some(&copy)));
    assert!(plan.actions.is_empty());
    assert_eq!(stalled_reason(&plan), "SoftDeletedCopyExists");
    assert!(
        message(&plan).contains("2026-11-22T10:00:00Z"),
        "{}",
        message(&plan)
    );
}

#[test]
fn m5_m6_copy_elsewhere_with_restore_or_fail_stalls_with_its_whereabouts() {
    for policy in [SoftDeletePolicy::Restore, SoftDeletePolicy::Fail] {
        for (location, rg) in [("eastus", "rg"), ("westus", "other-rg")] {
            let mut s = spec();
            s.soft_delete_policy = policy;
            let copy = copy_at(location, rg, Some(OWNER));
            let plan = plan(&input(&s, None, Some(&copy)));
            assert!(plan.actions.is_empty());
            assert_eq!(stalled_reason(&plan), "SoftDeletedCopyElsewhere");
            assert!(message(&plan).contains(location) && message(&plan).contains(rg));
        }
    }
}

#[test]
fn m7_copy_elsewhere_with_purge_purges_it_where_it_is_then_creates() {
    let mut s = spec();
    s.soft_delete_policy = SoftDeletePolicy::Purge;
    let copy = copy_at("eastus", "rg", Some(OWNER));
    let plan = plan(&input(&s, None, Some(&copy)));
    assert_eq!(
        kinds(&plan),
        vec![OperationKind::Purge, OperationKind::Create]
    );
    let Action::Purge(at) = &plan.actions[0] else {
        unreachable!()
    };
    assert_eq!(at.location, "eastus");
}

#[test]
fn m7_a_copy_in_another_resource_group_is_never_purged() {
    let mut s = spec();
    s.soft_delete_policy = SoftDeletePolicy::Purge;
    let copy = copy_at("westus", "other-rg", None);
    let plan = plan(&input(&s, None, Some(&copy)));
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert_eq!(stalled_reason(&plan), "SoftDeletedCopyElsewhere");
    assert!(
        message(&plan).contains("other-rg") && message(&plan).contains("account purge"),
        "{}",
        message(&plan)
    );
}

#[test]
fn m19_a_copy_owned_by_another_resource_is_neither_restored_nor_purged() {
    for policy in [
        SoftDeletePolicy::Restore,
        SoftDeletePolicy::Purge,
        SoftDeletePolicy::Fail,
    ] {
        let mut s = spec();
        s.soft_delete_policy = policy;
        let copy = copy_at("westus", "rg", Some("staging-7/team-a/docs"));
        let i = PlanInput {
            owner: CLUSTER_OWNER,
            ..input(&s, None, Some(&copy))
        };
        let plan = plan(&i);
        assert!(plan.actions.is_empty(), "{policy:?}: {plan:?}");
        assert_eq!(stalled_reason(&plan), "AlreadyManaged");
        assert!(message(&plan).contains("staging-7/team-a/docs"));
    }
}

#[test]
fn m20_a_copy_nobody_claims_is_restored_or_purged_only_with_adopt() {
    for policy in [SoftDeletePolicy::Restore, SoftDeletePolicy::Purge] {
        let mut s = spec();
        s.soft_delete_policy = policy;
        let copy = copy_at("westus", "rg", None);
        let refused = plan(&input(&s, None, Some(&copy)));
        assert!(refused.actions.is_empty(), "{policy:?}: {refused:?}");
        assert_eq!(stalled_reason(&refused), "AlreadyExists");
        assert!(message(&refused).contains("adoptionPolicy: Adopt"));
        s.adoption_policy = AdoptionPolicy::Adopt;
        let adopted = plan(&input(&s, None, Some(&copy)));
        assert!(!adopted.actions.is_empty(), "{policy:?}: {adopted:?}");
        let mut never = s.clone();
        never.adoption_policy = AdoptionPolicy::Never;
        let ours = PlanInput {
            managed_before: true,
            ..input(&never, None, Some(&copy))
        };
        assert!(
            !plan(&ours).actions.is_empty(),
            "{policy:?}: the status says this resource managed it"
        );
    }
}

#[test]
fn m22_a_stall_on_someone_elses_account_or_copy_is_foreign_and_others_are_not() {
    let s = spec();
    let theirs = copy_at("westus", "rg", Some("team-b/docs"));
    let nobodys = copy_at("westus", "rg", None);
    let ours = copy_at("westus", "rg", Some(OWNER));
    let mut restoring = spec();
    restoring.soft_delete_policy = SoftDeletePolicy::Restore;
    assert!(plan(&input(&s, None, Some(&theirs))).foreign);
    assert!(plan(&input(&restoring, None, Some(&nobodys))).foreign);
    assert!(!plan(&input(&restoring, None, Some(&ours))).foreign);
    assert!(!plan(&input(&s, None, Some(&ours))).foreign, "m4 is ours");
    let account = account_for(&s, Some(OWNER));
    assert!(!plan(&input(&s, Some(&account), None)).foreign);
}

#[test]
fn m21_a_copy_with_an_owner_tag_without_cluster_says_how_to_claim_it() {
    let copy = copy_at("westus", "rg", Some(OWNER));
    let s = spec();
    let i = PlanInput {
        owner: CLUSTER_OWNER,
        ..input(&s, None, Some(&copy))
    };
    let plan = plan(&i);
    assert_eq!(stalled_reason(&plan), "AlreadyManaged");
    assert!(
        message(&plan).contains("account recover") && message(&plan).contains(CLUSTER_OWNER),
        "{}",
        message(&plan)
    );
}

#[test]
fn m13_an_account_ours_by_the_status_alone_stays_ours_while_it_provisions() {
    let s = spec();
    let mut account = account_for(&s, None);
    account.properties.as_mut().unwrap().provisioning_state = Some("Accepted".into());
    for deleting in [false, true] {
        let i = PlanInput {
            managed_before: true,
            deleting,
            ..input(&s, Some(&account), None)
        };
        let plan = plan(&i);
        assert!(plan.actions.is_empty(), "{plan:?}");
        assert!(
            plan.claims_account,
            "deleting {deleting}: the status keeps naming it"
        );
    }
}

#[test]
fn m8_ours_and_equal_is_ready_with_nothing_to_do() {
    let s = spec();
    let account = account_for(&s, Some(OWNER));
    let plan = plan(&input(&s, Some(&account), None));
    assert_eq!(plan.verdict, Verdict::Ready);
    assert!(plan.actions.is_empty() && plan.drift.is_empty());
}

#[test]
fn m9_ours_and_different_patches_only_the_differing_fields() {
    let s = spec();
    let mut account = account_for(&s, Some(OWNER));
    account
        .tags
        .as_mut()
        .unwrap()
        .insert("added".into(), "by-hand".into());
    account
        .properties
        .as_mut()
        .unwrap()
        .writable
        .disable_local_auth = Some(false);
    let plan = plan(&input(&s, Some(&account), None));
    let Action::Patch { fields, body } = &plan.actions[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(
        fields,
        &vec![
            "properties.disableLocalAuth".to_string(),
            "tags".to_string()
        ]
    );
    assert_eq!(
        body,
        &json!({"properties": {"disableLocalAuth": true}, "tags": {"team": "a", OWNER_TAG: OWNER}})
    );
    let drifted: Vec<&str> = plan.drift.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(drifted, vec!["properties.disableLocalAuth", "tags"]);
}

#[test]
fn m10_not_ours_with_adopt_takes_it_over_by_patching() {
    let mut s = spec();
    s.adoption_policy = AdoptionPolicy::Adopt;
    let account = account_for(&s, None);
    let plan = plan(&input(&s, Some(&account), None));
    let Action::Patch { fields, body } = &plan.actions[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(fields, &vec!["tags".to_string()]);
    assert_eq!(body["tags"][OWNER_TAG], OWNER);
    assert!(matches!(
        plan.verdict,
        Verdict::Progressing {
            reason: "Adopting",
            ..
        }
    ));
    assert!(
        !plan.claims_account,
        "claimed only once the patched tag is read back"
    );
    let adopted = account_for(&s, Some(OWNER));
    assert!(super::plan(&input(&s, Some(&adopted), None)).claims_account);
}

#[test]
fn m11_not_ours_with_never_stalls_saying_how_to_adopt() {
    let s = spec();
    let account = account_for(&s, None);
    let plan = plan(&input(&s, Some(&account), None));
    assert_eq!(stalled_reason(&plan), "AlreadyExists");
    assert!(message(&plan).contains("adoptionPolicy: Adopt"));
    assert!(plan.foreign && !plan.claims_account);
}

#[test]
fn m12_managed_by_another_resource_stalls_already_managed() {
    let mut s = spec();
    s.adoption_policy = AdoptionPolicy::Adopt;
    let account = account_for(&s, Some("team-b/other"));
    let plan = plan(&input(&s, Some(&account), None));
    assert_eq!(stalled_reason(&plan), "AlreadyManaged");
    assert!(message(&plan).contains("team-b/other"));
    assert!(plan.foreign, "nothing of it goes into the status");
}

/// An account as Azure may hold it: tags whose names differ from ours only in case.
fn with_owner_tag_spelt(mut account: Account, key: &str, owner: &str) -> Account {
    let tags = account.tags.as_mut().unwrap();
    tags.remove(OWNER_TAG);
    tags.insert(key.into(), owner.into());
    account
}

#[test]
fn m12b_an_owner_tag_in_another_case_is_still_another_s() {
    let mut s = spec();
    s.adoption_policy = AdoptionPolicy::Adopt;
    for key in ["Cognitive-Operator-Owner", "COGNITIVE-OPERATOR-OWNER"] {
        let account = with_owner_tag_spelt(account_for(&s, None), key, "team-b/other");
        let plan = plan(&input(&s, Some(&account), None));
        assert_eq!(stalled_reason(&plan), "AlreadyManaged", "{key}: {plan:?}");
        assert!(message(&plan).contains("team-b/other"), "{key}");
        assert!(plan.actions.is_empty(), "{key}: nothing is written");
        assert!(!plan.claims_account, "{key}");
    }
}

#[test]
fn m12c_our_owner_tag_in_another_case_is_ours_and_converged() {
    let s = spec();
    let account = with_owner_tag_spelt(account_for(&s, None), "Cognitive-Operator-Owner", OWNER);
    let mut tagged = account.clone();
    tagged
        .tags
        .as_mut()
        .unwrap()
        .insert("TEAM".into(), "a".into());
    tagged.tags.as_mut().unwrap().remove("team");
    for account in [account, tagged] {
        let plan = plan(&input(&s, Some(&account), None));
        assert_eq!(plan.verdict, Verdict::Ready, "{:?}", account.tags);
        assert!(plan.actions.is_empty(), "{plan:?}");
    }
}

/// The owner of this resource in cluster `prod-1`.
const CLUSTER_OWNER: &str = "prod-1/team-a/docs";

#[test]
fn m17_the_same_namespace_and_name_in_another_cluster_is_already_managed() {
    let s = spec();
    let theirs = account_for(&s, Some("staging-7/team-a/docs"));
    let i = PlanInput {
        owner: CLUSTER_OWNER,
        ..input(&s, Some(&theirs), None)
    };
    assert_eq!(stalled_reason(&plan(&i)), "AlreadyManaged");
    let deleting = PlanInput {
        deleting: true,
        ..i.clone()
    };
    assert!(
        plan(&deleting).actions.is_empty(),
        "another cluster's account is never deleted"
    );
}

#[test]
fn m18_a_tag_without_cluster_is_ours_only_with_the_status_and_is_rewritten() {
    let s = spec();
    let legacy = account_for(&s, Some(OWNER));
    let unproven = PlanInput {
        owner: CLUSTER_OWNER,
        ..input(&s, Some(&legacy), None)
    };
    assert_eq!(
        stalled_reason(&plan(&unproven)),
        "AlreadyManaged",
        "without our status, team-a/docs may be any cluster's"
    );
    let told = message(&plan(&unproven));
    assert!(
        told.contains("another cluster") && told.contains(CLUSTER_OWNER),
        "says how this cluster claims it, not that it is managed by itself: {told}"
    );
    let ours = PlanInput {
        managed_before: true,
        ..unproven
    };
    let plan = plan(&ours);
    let Action::Patch { fields, body } = &plan.actions[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(fields, &vec!["tags".to_string()]);
    assert_eq!(body["tags"][OWNER_TAG], CLUSTER_OWNER);
}

#[test]
fn m16_an_owner_tag_dropped_by_hand_is_restored_when_the_status_says_we_managed_it() {
    let s = spec();
    let account = account_for(&s, None);
    let i = PlanInput {
        managed_before: true,
        ..input(&s, Some(&account), None)
    };
    let plan = plan(&i);
    let Action::Patch { fields, body } = &plan.actions[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(fields, &vec!["tags".to_string()]);
    assert_eq!(body["tags"][OWNER_TAG], OWNER);
    assert!(plan.claims_account);
    assert!(
        !super::plan(&input(&s, Some(&account), None)).claims_account,
        "a foreign account is not claimed"
    );
}

#[test]
fn m13_provisioning_in_progress_waits_without_writing() {
    let s = spec();
    let mut account = account_for(&s, Some(OWNER));
    account.properties.as_mut().unwrap().provisioning_state = Some("Accepted".into());
    account.sku = Some(Sku {
        name: "S1".into(),
        ..Default::default()
    });
    let plan = plan(&input(&s, Some(&account), None));
    assert!(plan.actions.is_empty());
    assert!(matches!(
        plan.verdict,
        Verdict::Progressing {
            reason: "Provisioning",
            ..
        }
    ));
}

#[test]
fn m14_failed_provisioning_is_provisioned_again() {
    let s = spec();
    let mut account = account_for(&s, Some(OWNER));
    account.properties.as_mut().unwrap().provisioning_state = Some("Failed".into());
    let plan = plan(&input(&s, Some(&account), None));
    assert_eq!(kinds(&plan), vec![OperationKind::Create]);
}

#[test]
fn m15_immutable_changes_stall_but_openai_to_aiservices_patches() {
    let s = spec();
    for (mutate, field) in [
        (
            Box::new(|a: &mut Account| a.location = Some("eastus".into()))
                as Box<dyn Fn(&mut Account)>,
            "spec.location",
        ),
        (
            Box::new(|a: &mut Account| a.kind = Some("TextAnalytics".into())),
            "spec.kind",
        ),
        (
            Box::new(|a: &mut Account| {
                a.properties
                    .as_mut()
                    .unwrap()
                    .writable
                    .custom_sub_domain_name = Some("old".into())
            }),
            "spec.properties.customSubDomainName",
        ),
    ] {
        let mut account = account_for(&s, Some(OWNER));
        mutate(&mut account);
        let plan = plan(&input(&s, Some(&account), None));
        assert_eq!(stalled_reason(&plan), "ImmutableFieldChanged");
        assert!(message(&plan).contains(field), "{}", message(&plan));
    }
    let mut account = account_for(&s, Some(OWNER));
    account.kind = Some("AIServices".into());
    let plan = plan(&input(&s, Some(&account), None));
    let Action::Patch { fields, .. } = &plan.actions[0] else {
        panic!("{plan:?}")
    };
    assert_eq!(fields, &vec!["kind".to_string()]);
}

#[test]
fn p1_a_pending_operation_means_wait_and_no_new_write() {
    let s = spec();
    let pending = PendingOperation {
        kind: OperationKind::Create,
        poll: crate::arm::lro::PollMethod::AzureAsyncOperation,
        url: "http://127.0.0.1/op".into(),
        resource_id: target().id(),
        started_at: "2026-11-21T00:00:00Z".into(),
        retry_after_seconds: None,
    };
    let mut i = input(&s, None, None);
    i.pending = Some(&pending);
    let plan = plan(&i);
    assert!(plan.actions.is_empty());
    assert!(matches!(
        plan.verdict,
        Verdict::Progressing {
            reason: "Creating",
            ..
        }
    ));
}

// ----- Observe and Pause -----------------------------------------------------------------------

#[test]
fn o1_o2_observe_reports_drift_and_never_writes() {
    let mut s = spec();
    s.reconcile_policy = ReconcilePolicy::Observe;
    let account = account_for(&s, None);
    assert_eq!(
        plan(&input(&s, Some(&account), None)).verdict,
        Verdict::Ready
    );
    let mut drifted = account.clone();
    drifted.sku = Some(Sku {
        name: "F0".into(),
        ..Default::default()
    });
    let plan = plan(&input(&s, Some(&drifted), None));
    assert!(plan.actions.is_empty());
    assert!(matches!(
        plan.verdict,
        Verdict::Observed {
            reason: "Drifted",
            ..
        }
    ));
    assert_eq!(plan.drift[0].path, "sku.name");
    assert_eq!(plan.drift[0].observed, json!("F0"));
}

#[test]
fn o3_observe_of_a_missing_account_creates_nothing() {
    let mut s = spec();
    s.reconcile_policy = ReconcilePolicy::Observe;
    let copy = copy_at("westus", "rg", None);
    let plan = plan(&input(&s, None, Some(&copy)));
    assert!(plan.actions.is_empty());
    assert!(matches!(
        plan.verdict,
        Verdict::Observed {
            reason: "NotFound",
            ..
        }
    ));
    assert!(message(&plan).contains("soft-deleted copy"));
}

#[test]
fn o4_observing_an_account_another_resource_manages_is_already_managed() {
    let mut s = spec();
    s.reconcile_policy = ReconcilePolicy::Observe;
    let theirs = account_for(&s, Some("team-b/docs"));
    let plan = plan(&input(&s, Some(&theirs), None));
    assert!(plan.actions.is_empty());
    assert_eq!(stalled_reason(&plan), "AlreadyManaged");
    assert!(message(&plan).contains("team-b/docs"), "{}", message(&plan));
    assert!(plan.drift.is_empty(), "nothing of it is reported");
    assert!(plan.foreign);
}

#[test]
fn only_the_owner_tag_or_the_status_makes_an_account_managed() {
    let s = spec();
    assert!(is_managed_by(&account_for(&s, Some(OWNER)), OWNER, false));
    assert!(!is_managed_by(
        &account_for(&s, Some("team-b/docs")),
        OWNER,
        true
    ));
    assert!(!is_managed_by(&account_for(&s, None), OWNER, false));
    assert!(is_managed_by(&account_for(&s, None), OWNER, true));
}

#[test]
fn x1_pause_plans_nothing_even_when_deleting() {
    let mut s = spec();
    s.reconcile_policy = ReconcilePolicy::Pause;
    let mut i = input(&s, None, None);
    assert_eq!(plan(&i).verdict, Verdict::Paused);
    i.deleting = true;
    assert_eq!(plan(&i).verdict, Verdict::Paused);
}

// ----- deletion ---------------------------------------------------------------------------------

fn deleting<'a>(
    spec: &'a CognitiveServicesAccountSpec,
    account: Option<&'a Account>,
    copy: Option<&'a SoftDeleted>,
) -> PlanInput<'a> {
    PlanInput {
        deleting: true,
        ..input(spec, account, copy)
    }
}

#[test]
fn d1_delete_policy_deletes_our_account() {
    let s = spec();
    let account = account_for(&s, Some(OWNER));
    assert_eq!(
        kinds(&plan(&deleting(&s, Some(&account), None))),
        vec![OperationKind::Delete]
    );
}

#[test]
fn d14_deleting_an_account_deletes_every_deployment_first_one_at_a_time() {
    let s = spec();
    let account = account_for(&s, Some(OWNER));
    let deployments: Vec<Deployment> = ["chat", "by-hand"]
        .iter()
        .map(|name| Deployment {
            name: Some(name.to_string()),
            ..Default::default()
        })
        .collect();
    let first = plan(&PlanInput {
        deployments: Some(&deployments),
        ..deleting(&s, Some(&account), None)
    });
    assert_eq!(
        first.actions,
        vec![
            Action::DeleteDeployment("chat".into()),
            Action::DeleteDeployment("by-hand".into()),
            Action::Delete
        ]
    );
    // While one of them is being deleted, the account's status says so.
    let pending = PendingOperation {
        kind: OperationKind::Delete,
        poll: crate::arm::lro::PollMethod::AzureAsyncOperation,
        url: "http://127.0.0.1/op".into(),
        resource_id: format!("{}/deployments/chat", target().id()),
        started_at: "2026-11-21T00:00:00Z".into(),
        retry_after_seconds: None,
    };
    let mut waiting = deleting(&s, Some(&account), None);
    waiting.pending = Some(&pending);
    assert!(matches!(
        plan(&waiting).verdict,
        Verdict::Progressing {
            reason: "DeletingDeployments",
            ..
        }
    ));
}

#[test]
fn d15_a_deletion_is_planned_only_from_a_listing_of_this_pass() {
    let s = spec();
    let account = account_for(&s, Some(OWNER));
    let unlisted = PlanInput {
        deployments: None,
        ..deleting(&s, Some(&account), None)
    };
    let plan = plan(&unlisted);
    assert!(
        !plan.actions.contains(&Action::Delete),
        "never deleted without a list of this pass: {plan:?}"
    );
    assert!(matches!(
        plan.verdict,
        Verdict::Progressing {
            reason: "Deleting",
            ..
        }
    ));
    assert!(plan.claims_account);
    let chat = [Deployment {
        name: Some("chat".into()),
        ..Default::default()
    }];
    let listed = PlanInput {
        deployments: Some(&chat),
        ..unlisted.clone()
    };
    assert_eq!(
        super::plan(&listed).actions,
        vec![Action::DeleteDeployment("chat".into()), Action::Delete]
    );
    // A kind without deployments needs no list.
    let mut language = spec();
    language.kind = "TextAnalytics".into();
    let mut account = account_for(&language, Some(OWNER));
    account.kind = Some("TextAnalytics".into());
    let without = PlanInput {
        deployments: None,
        ..deleting(&language, Some(&account), None)
    };
    assert_eq!(super::plan(&without).actions, vec![Action::Delete]);
}

#[test]
fn d16_a_deletion_keeps_the_claim_until_the_account_is_gone() {
    let s = spec();
    let untagged = account_for(&s, None);
    let chat = [Deployment {
        name: Some("chat".into()),
        ..Default::default()
    }];
    let i = PlanInput {
        managed_before: true,
        deployments: Some(&chat),
        ..deleting(&s, Some(&untagged), None)
    };
    let first = plan(&i);
    assert_eq!(first.actions[0], Action::DeleteDeployment("chat".into()));
    assert!(first.claims_account, "the status keeps naming the account");
    let tagged = account_for(&s, Some(OWNER));
    assert!(plan(&deleting(&s, Some(&tagged), None)).claims_account);
}

#[test]
fn d2_d3_delete_and_purge_deletes_then_purges_our_copy_only_here() {
    let mut s = spec();
    s.deletion_policy = DeletionPolicy::DeleteAndPurge;
    let account = account_for(&s, Some(OWNER));
    let plan = plan(&deleting(&s, Some(&account), None));
    assert_eq!(
        kinds(&plan),
        vec![OperationKind::Delete, OperationKind::Purge]
    );
    let copy = copy_at("westus", "rg", Some(OWNER));
    let plan = super::plan(&deleting(&s, None, Some(&copy)));
    assert_eq!(plan.actions, vec![Action::Purge(copy.at.clone())]);
}

#[test]
fn d4_delete_and_purge_never_purges_a_copy_that_is_not_ours_or_elsewhere() {
    let mut s = spec();
    s.deletion_policy = DeletionPolicy::DeleteAndPurge;
    for copy in [
        copy_at("westus", "rg", None),
        copy_at("westus", "rg", Some("x/y")),
        copy_at("eastus", "rg", Some(OWNER)),
    ] {
        let plan = plan(&deleting(&s, None, Some(&copy)));
        assert!(plan.actions.is_empty(), "{plan:?}");
        assert!(matches!(plan.verdict, Verdict::Deleted { .. }));
        let said = message(&plan);
        assert!(
            said.contains("was not purged") && !said.contains("deleted and purged"),
            "{said}"
        );
    }
    let said = message(&plan(&deleting(
        &s,
        None,
        Some(&copy_at("eastus", "rg", Some(OWNER))),
    )));
    assert!(said.contains("eastus"), "names where the copy is: {said}");
    let said = message(&plan(&deleting(
        &s,
        None,
        Some(&copy_at("westus", "rg", Some("x/y"))),
    )));
    assert!(said.contains("x/y"), "names whose the copy is: {said}");
}

#[test]
fn d4_delete_and_purge_purges_our_copy_tagged_before_tags_named_their_cluster() {
    let mut s = spec();
    s.deletion_policy = DeletionPolicy::DeleteAndPurge;
    let copy = copy_at("westus", "rg", Some(OWNER));
    let proven = PlanInput {
        owner: CLUSTER_OWNER,
        managed_before: true,
        ..deleting(&s, None, Some(&copy))
    };
    assert_eq!(plan(&proven).actions, vec![Action::Purge(copy.at.clone())]);
    let unproven = PlanInput {
        managed_before: false,
        ..proven
    };
    assert!(plan(&unproven).actions.is_empty());
}

#[test]
fn d3_delete_and_purge_finds_our_copy_when_the_spec_names_the_location_by_display_name() {
    let mut s = spec();
    s.deletion_policy = DeletionPolicy::DeleteAndPurge;
    s.location = "West US".into();
    let mut copy = copy_at("westus", "RG", Some(OWNER));
    copy.at.resource_group = "RG".into();
    let plan = plan(&deleting(&s, None, Some(&copy)));
    assert_eq!(plan.actions, vec![Action::Purge(copy.at.clone())]);
    let account = account_for(&s, Some(OWNER));
    let plan = super::plan(&deleting(&s, Some(&account), None));
    let Action::Purge(at) = &plan.actions[1] else {
        panic!("{plan:?}")
    };
    assert_eq!(at.location, "westus", "the path form");
}

#[test]
fn d5_delete_of_an_absent_account_is_done() {
    let mut s = spec();
    assert!(matches!(
        plan(&deleting(&s, None, None)).verdict,
        Verdict::Deleted { .. }
    ));
    s.deletion_policy = DeletionPolicy::DeleteAndPurge;
    let said = message(&plan(&deleting(&s, None, None)));
    assert!(
        said.contains("no soft-deleted copy was found") && !said.contains("deleted and purged"),
        "says no purge took place: {said}"
    );
    let purged = PlanInput {
        purged: true,
        ..deleting(&s, None, None)
    };
    assert!(message(&plan(&purged)).contains("deleted and purged"));
}

#[test]
fn d6_d7_d8_orphan_observe_and_foreign_accounts_are_left_alone() {
    let mut orphan = spec();
    orphan.deletion_policy = DeletionPolicy::Orphan;
    let ours = account_for(&orphan, Some(OWNER));
    let mut observe = spec();
    observe.reconcile_policy = ReconcilePolicy::Observe;
    let foreign = account_for(&spec(), None);
    let base = spec();
    for (s, account) in [(&orphan, &ours), (&observe, &ours), (&base, &foreign)] {
        let plan = plan(&deleting(s, Some(account), None));
        assert!(plan.actions.is_empty(), "{plan:?}");
        assert!(matches!(plan.verdict, Verdict::Deleted { .. }));
    }
}

// ----- properties -----------------------------------------------------------------------------

fn arb_spec() -> impl Strategy<Value = CognitiveServicesAccountSpec> {
    let tags = prop::option::of(prop::collection::btree_map("[a-c]", "[xy]{1,2}", 0..3));
    let access = prop::option::of(prop::sample::select(vec!["Enabled", "Disabled"]));
    let ips = prop::option::of(prop::collection::vec(
        prop::sample::select(vec!["1.1.1.1", "2.2.2.0/24", "3.3.3.3"]),
        0..3,
    ));
    let action = prop::option::of(prop::sample::select(vec!["Allow", "Deny"]));
    (
        tags,
        access,
        ips,
        action,
        prop::option::of(any::<bool>()),
        prop::sample::select(vec!["S0", "S1", "F0"]),
        prop::sample::select(vec!["OpenAI", "AIServices"]),
    )
        .prop_map(|(tags, access, ips, action, local, sku, kind)| {
            let mut s = spec();
            s.tags = tags.map(crate::api::StringMap::from);
            s.kind = kind.into();
            s.sku = Sku {
                name: sku.into(),
                ..Default::default()
            };
            let acls = (ips.is_some() || action.is_some()).then(|| NetworkRuleSet {
                default_action: action.map(Into::into),
                ip_rules: ips.map(|v| {
                    let mut v: Vec<&str> = v;
                    v.dedup();
                    v.into_iter()
                        .map(|ip| IpRule { value: ip.into() })
                        .collect()
                }),
                ..Default::default()
            });
            s.properties = Some(AccountWritableProperties {
                custom_sub_domain_name: Some("docs".into()),
                public_network_access: access.map(Into::into),
                disable_local_auth: local,
                network_acls: acls,
                ..Default::default()
            });
            s
        })
}

fn arb_policies() -> impl Strategy<
    Value = (
        SoftDeletePolicy,
        DeletionPolicy,
        AdoptionPolicy,
        ReconcilePolicy,
    ),
> {
    (
        prop::sample::select(vec![
            SoftDeletePolicy::Restore,
            SoftDeletePolicy::Purge,
            SoftDeletePolicy::Fail,
        ]),
        prop::sample::select(vec![
            DeletionPolicy::Delete,
            DeletionPolicy::DeleteAndPurge,
            DeletionPolicy::Orphan,
        ]),
        prop::sample::select(vec![AdoptionPolicy::Never, AdoptionPolicy::Adopt]),
        prop::sample::select(vec![
            ReconcilePolicy::Manage,
            ReconcilePolicy::Observe,
            ReconcilePolicy::Pause,
        ]),
    )
}

proptest! {
    #[test]
    fn manage_never_writes_when_observed_equals_desired(s in arb_spec()) {
        let mut account = account_for(&s, Some(OWNER));
        // Azure reorders lists and adds read-only fields; none of that is drift.
        if let Some(rules) = account.properties.as_mut().unwrap().writable.network_acls.as_mut().and_then(|a| a.ip_rules.as_mut()) {
            rules.reverse();
        }
        let plan = plan(&input(&s, Some(&account), None));
        prop_assert!(plan.actions.is_empty(), "{:?}", plan);
        prop_assert_eq!(plan.verdict, Verdict::Ready);
    }

    #[test]
    fn no_plan_purges_unless_a_policy_asks_for_it(
        s in arb_spec(),
        (soft, deletion, adoption, reconcile) in arb_policies(),
        account_owner in prop::option::of(prop::option::of(prop::sample::select(vec![OWNER, "x/y"]))),
        copy in prop::option::of((prop::sample::select(vec!["westus", "eastus"]), prop::option::of(prop::sample::select(vec![OWNER, "x/y"])))),
        is_deleting in any::<bool>(),
    ) {
        let mut s = s;
        s.soft_delete_policy = soft;
        s.deletion_policy = deletion;
        s.adoption_policy = adoption;
        s.reconcile_policy = reconcile;
        let account = account_owner.map(|owner| account_for(&s, owner));
        let copy = copy.map(|(location, owner)| copy_at(location, "rg", owner));
        let i = PlanInput { deleting: is_deleting, ..input(&s, account.as_ref(), copy.as_ref()) };
        let plan = plan(&i);
        if plan.purges() {
            let asked = if is_deleting { deletion == DeletionPolicy::DeleteAndPurge } else { soft == SoftDeletePolicy::Purge };
            prop_assert!(asked, "purge without a policy asking for it: {:?}", plan);
            prop_assert!(reconcile == ReconcilePolicy::Manage);
        }
    }

    #[test]
    fn applying_a_patch_converges(desired in arb_spec(), before in arb_spec()) {
        let account = account_for(&before, Some(OWNER));
        let first = plan(&input(&desired, Some(&account), None));
        if let Some(Action::Patch { body, .. }) = first.actions.first() {
            let patched = diff::apply_patch(&serde_json::to_value(&account).unwrap(), body);
            let patched: Account = serde_json::from_value(patched).unwrap();
            let second = plan(&input(&desired, Some(&patched), None));
            prop_assert_eq!(second.verdict, Verdict::Ready, "after {:?}", body);
        } else {
            prop_assert_eq!(first.verdict, Verdict::Ready);
        }
    }
}
