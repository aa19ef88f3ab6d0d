//! The deployment planner's decisions, one behaviour per test.

use super::*;
use crate::arm::models::AccountRef;

const OWNER: &str = "cluster-a/team-docs/chat";

fn spec() -> CognitiveServicesDeploymentSpec {
    crate::test_fixtures::gpt4o_deployment_spec()
}

fn target() -> DeploymentRef {
    DeploymentRef::new(&AccountRef::new("sub", "rg", "docs-openai"), "chat")
}

/// The deployment Azure holds after creating `spec()`, with server defaults filled.
fn observed(owner: Option<&str>) -> Deployment {
    let mut deployment: Deployment = serde_json::from_value(json!({
        "id": target().id(), "name": "chat",
        "sku": {"name": "GlobalStandard", "capacity": 10},
        "properties": {"model": {"format": "OpenAI", "name": "gpt-4o", "version": "2024-11-20"},
            "provisioningState": "Succeeded", "raiPolicyName": "Microsoft.DefaultV2",
            "versionUpgradeOption": "OnceNewDefaultVersionAvailable"}
    }))
    .unwrap();
    if let Some(owner) = owner {
        deployment.tags = Some(BTreeMap::from([(OWNER_TAG.into(), owner.into())]));
    }
    deployment
}

fn plan_with(
    spec: &CognitiveServicesDeploymentSpec,
    account: AccountState,
    deployment: Option<&Deployment>,
    deleting: bool,
) -> DeploymentPlan {
    plan_deployment(&DeploymentPlanInput {
        spec,
        target: &target(),
        owner: OWNER,
        account: &account,
        deployment,
        pending: None,
        deleting,
        managed_before: false,
    })
}

fn reason(plan: &DeploymentPlan) -> &'static str {
    match &plan.verdict {
        Verdict::Progressing { reason, .. }
        | Verdict::Stalled { reason, .. }
        | Verdict::Observed { reason, .. } => reason,
        Verdict::Ready => "Ready",
        Verdict::Paused => "Paused",
        Verdict::Deleted { .. } => "Deleted",
    }
}

#[test]
fn an_absent_deployment_is_created_with_the_owner_tag() {
    let plan = plan_with(&spec(), AccountState::Ready, None, false);
    let [DeploymentAction::Create(body)] = plan.actions.as_slice() else {
        panic!("{plan:?}")
    };
    assert_eq!(body.tags.as_ref().unwrap()[OWNER_TAG], OWNER);
    assert_eq!(body.sku.as_ref().unwrap().capacity, Some(10));
    // Ours once it is read back with the owner tag, not when ARM accepts the create.
    assert!(!plan.claims_deployment);
}

#[test]
fn a_deployment_waits_for_its_account_and_names_a_missing_one() {
    let plan = plan_with(
        &spec(),
        AccountState::NotReady("Creating".into()),
        None,
        false,
    );
    assert_eq!(reason(&plan), "AccountNotReady");
    assert!(plan.actions.is_empty());
    let plan = plan_with(&spec(), AccountState::ResourceMissing, None, false);
    assert_eq!(reason(&plan), "AccountNotFound");
    let Verdict::Stalled { message, .. } = &plan.verdict else {
        panic!()
    };
    assert!(message.contains("spec.accountRef.name"), "{message}");
}

#[test]
fn server_defaults_and_auto_upgrades_are_not_drift() {
    let mut lean = spec();
    lean.model.version = None;
    lean.sku.capacity = None;
    let mut upgraded = observed(Some(OWNER));
    upgraded
        .properties
        .as_mut()
        .unwrap()
        .model
        .as_mut()
        .unwrap()
        .version = Some("2025-01-01".into());
    let plan = plan_with(&lean, AccountState::Ready, Some(&upgraded), false);
    assert_eq!(plan.verdict, Verdict::Ready, "{plan:?}");
    assert!(plan.actions.is_empty());
}

#[test]
fn a_capacity_change_is_one_patch_of_the_sku() {
    let mut bigger = spec();
    bigger.sku.capacity = Some(20);
    let plan = plan_with(
        &bigger,
        AccountState::Ready,
        Some(&observed(Some(OWNER))),
        false,
    );
    let [DeploymentAction::Patch { fields, body }] = plan.actions.as_slice() else {
        panic!("{plan:?}")
    };
    assert_eq!(fields, &["sku"]);
    assert_eq!(
        body,
        &json!({"sku": {"name": "GlobalStandard", "capacity": 20}})
    );
}

#[test]
fn a_version_change_is_a_put_that_keeps_what_azure_chose() {
    let mut newer = spec();
    newer.model.version = Some("2024-08-06".into());
    newer.sku.capacity = None;
    let plan = plan_with(
        &newer,
        AccountState::Ready,
        Some(&observed(Some(OWNER))),
        false,
    );
    let [DeploymentAction::Update { fields, body }] = plan.actions.as_slice() else {
        panic!("{plan:?}")
    };
    assert_eq!(fields, &["model.version"]);
    let properties = body.properties.as_ref().unwrap();
    assert_eq!(
        properties.model.as_ref().unwrap().version.as_deref(),
        Some("2024-08-06")
    );
    // Capacity and policies as Azure has them: a PUT must not reset them to defaults.
    assert_eq!(body.sku.as_ref().unwrap().capacity, Some(10));
    assert_eq!(
        properties.rai_policy_name.as_deref(),
        Some("Microsoft.DefaultV2")
    );
}

#[test]
fn capacity_and_version_together_are_two_writes_patch_first() {
    let mut both = spec();
    both.sku.capacity = Some(30);
    both.model.version = Some("2024-08-06".into());
    let plan = plan_with(
        &both,
        AccountState::Ready,
        Some(&observed(Some(OWNER))),
        false,
    );
    let kinds: Vec<&str> = plan
        .actions
        .iter()
        .map(|a| match a {
            DeploymentAction::Patch { .. } => "patch",
            DeploymentAction::Update { .. } => "put",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["patch", "put"]);
}

#[test]
fn someone_elses_deployment_is_never_written() {
    let plan = plan_with(
        &spec(),
        AccountState::Ready,
        Some(&observed(Some("cluster-b/team-docs/chat"))),
        false,
    );
    assert_eq!(reason(&plan), "AlreadyManaged");
    let plan = plan_with(&spec(), AccountState::Ready, Some(&observed(None)), false);
    assert_eq!(reason(&plan), "AlreadyExists");
    assert!(plan.actions.is_empty());
    let mut adopt = spec();
    adopt.adoption_policy = AdoptionPolicy::Adopt;
    let plan = plan_with(&adopt, AccountState::Ready, Some(&observed(None)), false);
    let [DeploymentAction::Patch { fields, .. }] = plan.actions.as_slice() else {
        panic!("{plan:?}")
    };
    assert_eq!(fields, &["tags"]);
    // Deleting never touches what is not ours.
    let plan = plan_with(&spec(), AccountState::Ready, Some(&observed(None)), true);
    assert_eq!(reason(&plan), "Deleted");
    assert!(plan.actions.is_empty());
}

/// The deployment with its owner tag spelt `key` (Azure tag names ignore case).
fn tagged_as(key: &str, owner: &str) -> Deployment {
    Deployment {
        tags: Some(BTreeMap::from([(key.into(), owner.into())])),
        ..observed(None)
    }
}

#[test]
fn an_owner_tag_in_another_case_is_still_another_s() {
    let mut adopt = spec();
    adopt.adoption_policy = AdoptionPolicy::Adopt;
    let theirs = tagged_as("Cognitive-Operator-Owner", "cluster-b/team-docs/chat");
    let plan = plan_with(&adopt, AccountState::Ready, Some(&theirs), false);
    assert_eq!(reason(&plan), "AlreadyManaged", "{plan:?}");
    assert!(plan.actions.is_empty());
    assert_eq!(owner_of(&theirs), Some("cluster-b/team-docs/chat"));
    let plan = plan_with(&spec(), AccountState::Ready, Some(&theirs), true);
    assert!(plan.actions.is_empty(), "never deleted: {plan:?}");
    let ours = tagged_as("COGNITIVE-OPERATOR-OWNER", OWNER);
    let plan = plan_with(&spec(), AccountState::Ready, Some(&ours), false);
    assert_eq!(plan.verdict, Verdict::Ready, "{plan:?}");
    assert!(plan.actions.is_empty());
}

#[test]
fn a_changed_model_or_sku_name_is_stalled_naming_the_field() {
    let mut other = observed(Some(OWNER));
    other
        .properties
        .as_mut()
        .unwrap()
        .model
        .as_mut()
        .unwrap()
        .name = Some("gpt-4o-mini".into());
    let plan = plan_with(&spec(), AccountState::Ready, Some(&other), false);
    assert_eq!(reason(&plan), "ModelMismatch");
    let mut other = observed(Some(OWNER));
    other.sku.as_mut().unwrap().name = "Standard".into();
    let plan = plan_with(&spec(), AccountState::Ready, Some(&other), false);
    let Verdict::Stalled { reason, message } = &plan.verdict else {
        panic!()
    };
    assert_eq!(*reason, "SkuMismatch");
    assert!(message.contains("spec.sku.name"), "{message}");
}

#[test]
fn a_failed_deployment_of_ours_is_deleted_to_be_created_again() {
    let mut failed = observed(Some(OWNER));
    failed.properties.as_mut().unwrap().provisioning_state = Some("Failed".into());
    let plan = plan_with(&spec(), AccountState::Ready, Some(&failed), false);
    assert_eq!(plan.actions, vec![DeploymentAction::Delete]);
    assert_eq!(reason(&plan), "Recreating");
    let mut adopt = spec();
    adopt.adoption_policy = AdoptionPolicy::Adopt;
    failed.tags = None;
    let plan = plan_with(&adopt, AccountState::Ready, Some(&failed), false);
    assert_eq!(reason(&plan), "DeploymentFailed");
}

#[test]
fn deletion_deletes_ours_and_orphan_touches_nothing() {
    let ours = observed(Some(OWNER));
    let plan = plan_with(&spec(), AccountState::Ready, Some(&ours), true);
    assert_eq!(plan.actions, vec![DeploymentAction::Delete]);
    let mut orphan = spec();
    orphan.deletion_policy = DeploymentDeletionPolicy::Orphan;
    let plan = plan_with(&orphan, AccountState::Ready, Some(&ours), true);
    assert_eq!(reason(&plan), "Deleted");
    assert!(plan.actions.is_empty());
    // Gone with its account: nothing left to do, also while the account resource is gone.
    let plan = plan_with(&spec(), AccountState::ResourceMissing, None, true);
    assert_eq!(reason(&plan), "Deleted");
}

#[test]
fn observe_reports_drift_and_writes_nothing() {
    let mut observe = spec();
    observe.reconcile_policy = ReconcilePolicy::Observe;
    observe.sku.capacity = Some(50);
    let plan = plan_with(&observe, AccountState::Ready, Some(&observed(None)), false);
    assert_eq!(reason(&plan), "Drifted");
    assert!(plan.actions.is_empty());
    assert!(plan.drift.iter().any(|d| d.path == "sku.capacity"));
    assert!(!plan.claims_deployment);
}

#[test]
fn deployments_of_an_observed_account_are_observed_only() {
    // A Manage deployment resource whose account resource is reconcilePolicy Observe.
    let mut bigger = spec();
    bigger.sku.capacity = Some(20);
    let plan = plan_with(
        &bigger,
        AccountState::Observed,
        Some(&observed(Some(OWNER))),
        false,
    );
    assert!(plan.actions.is_empty(), "{plan:?}");
    let Verdict::Observed {
        reason: why,
        message,
    } = &plan.verdict
    else {
        panic!("{plan:?}")
    };
    assert_eq!(*why, "Drifted");
    assert!(
        message.contains("CognitiveServicesAccount docs-openai is reconcilePolicy Observe"),
        "{message}"
    );
    assert!(plan.drift.iter().any(|d| d.path == "sku.capacity"));
    assert!(!plan.claims_deployment);
    // Absent: reported, never created.
    let plan = plan_with(&spec(), AccountState::Observed, None, false);
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert_eq!(reason(&plan), "NotFound");
    // Matching, but not tagged as ours: no owner tag to add, nothing claimed.
    let plan = plan_with(
        &spec(),
        AccountState::Observed,
        Some(&observed(None)),
        false,
    );
    assert_eq!(plan.verdict, Verdict::Ready, "{plan:?}");
    assert!(plan.actions.is_empty() && !plan.claims_deployment);
    // Deleting even one of ours leaves it in Azure.
    let plan = plan_with(
        &spec(),
        AccountState::Observed,
        Some(&observed(Some(OWNER))),
        true,
    );
    assert!(plan.actions.is_empty(), "{plan:?}");
    let Verdict::Deleted { message } = &plan.verdict else {
        panic!("{plan:?}")
    };
    assert!(message.contains("reconcilePolicy Observe"), "{message}");
}

#[test]
fn someone_elses_deployment_is_foreign_and_ours_is_not() {
    let plan = plan_with(
        &spec(),
        AccountState::Ready,
        Some(&observed(Some("cluster-b/team-docs/chat"))),
        false,
    );
    assert!(plan.foreign, "{plan:?}");
    let plan = plan_with(&spec(), AccountState::Ready, Some(&observed(None)), false);
    assert!(plan.foreign, "{plan:?}");
    let plan = plan_with(
        &spec(),
        AccountState::Ready,
        Some(&observed(Some(OWNER))),
        false,
    );
    assert!(!plan.foreign, "{plan:?}");
}

#[test]
fn an_adoption_claims_the_deployment_only_once_its_tag_is_read_back() {
    let mut adopt = spec();
    adopt.adoption_policy = AdoptionPolicy::Adopt;
    let plan = plan_with(&adopt, AccountState::Ready, Some(&observed(None)), false);
    assert!(!plan.actions.is_empty(), "{plan:?}");
    assert!(!plan.claims_deployment, "claimed before the tag landed");
    let mut provisioning = observed(None);
    provisioning.properties.as_mut().unwrap().provisioning_state = Some("Creating".into());
    let plan = plan_with(&adopt, AccountState::Ready, Some(&provisioning), false);
    assert_eq!(reason(&plan), "Provisioning");
    assert!(
        !plan.claims_deployment,
        "an unclaimed deployment claimed while it provisions"
    );
    let plan = plan_with(
        &adopt,
        AccountState::Ready,
        Some(&observed(Some(OWNER))),
        false,
    );
    assert!(plan.claims_deployment, "{plan:?}");
}
