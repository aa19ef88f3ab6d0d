//! The deployment planner: a deployment resource's spec + the observed ARM deployment + where
//! its account stands → ordered actions and a verdict. Pure, like the account planner.
//!
//! Minimal writes: capacity and tags go in one PATCH (`PatchResourceTagsAndSku`); a model
//! version, raiPolicyName or versionUpgradeOption change is a PUT of the whole deployment as it
//! stands with those fields changed. Both at once are two writes in sequence, PATCH first,
//! because Azure refuses both in one request. What the spec leaves out is never drift.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::api::{
    AdoptionPolicy, CognitiveServicesDeploymentSpec, DeploymentDeletionPolicy, OWNER_TAG,
    ReconcilePolicy, is_owner_tag,
};
use crate::arm::deployments::{Deployment, DeploymentModel, DeploymentProperties, DeploymentRef};
use crate::arm::lro::{OperationKind, PendingOperation};
use crate::arm::models::Sku;

use super::diff::{FieldDiff, same_tags};
use super::model::Verdict;
use super::ownership::{owner_tag_in, with_owner_tag};

/// Where the deployment's account stands, as its `CognitiveServicesAccount` reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum AccountState {
    /// Ready, and managed by its account resource: deployments may be written.
    Ready,
    /// Its account resource is `reconcilePolicy: Observe` and has read the account (Ready, or
    /// Drifted): the namespace may look at the account, not change it, so its deployments are
    /// read and compared but never written, whatever their own policy.
    Observed,
    /// Not Ready yet (creating, restoring, stalled, ...): the message says why.
    NotReady(String),
    /// No `CognitiveServicesAccount` of that name in the namespace.
    ResourceMissing,
}

/// Everything the deployment planner looks at.
#[derive(Clone, Debug)]
pub struct DeploymentPlanInput<'a> {
    pub spec: &'a CognitiveServicesDeploymentSpec,
    pub target: &'a DeploymentRef,
    /// The owner tag's value for this resource: `{cluster}/{namespace}/{name}`.
    pub owner: &'a str,
    pub account: &'a AccountState,
    /// The deployment in ARM, if it exists.
    pub deployment: Option<&'a Deployment>,
    pub pending: Option<&'a PendingOperation>,
    pub deleting: bool,
    /// The status says this resource managed the deployment before (`status.armId`).
    pub managed_before: bool,
}

/// One ARM write on a deployment.
#[derive(Clone, Debug, PartialEq)]
pub enum DeploymentAction {
    /// PUT the desired deployment.
    Create(Box<Deployment>),
    /// PUT the deployment as it stands with the model version or policies changed.
    Update {
        fields: Vec<String>,
        body: Box<Deployment>,
    },
    /// PATCH `sku` and/or `tags`.
    Patch { fields: Vec<String>, body: Value },
    /// DELETE the deployment.
    Delete,
}

impl DeploymentAction {
    pub fn kind(&self) -> OperationKind {
        match self {
            DeploymentAction::Create(_) => OperationKind::Create,
            DeploymentAction::Update { .. } | DeploymentAction::Patch { .. } => {
                OperationKind::Update
            }
            DeploymentAction::Delete => OperationKind::Delete,
        }
    }

    pub fn fields(&self) -> Vec<String> {
        match self {
            DeploymentAction::Update { fields, .. } | DeploymentAction::Patch { fields, .. } => {
                fields.clone()
            }
            _ => Vec::new(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            DeploymentAction::Create(_) => "create the deployment".to_string(),
            DeploymentAction::Update { fields, .. } => {
                format!("update {} (PUT)", fields.join(", "))
            }
            DeploymentAction::Patch { fields, .. } => format!("patch {}", fields.join(", ")),
            DeploymentAction::Delete => "delete the deployment".to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeploymentPlan {
    /// Writes in order; only the first runs before the next observation.
    pub actions: Vec<DeploymentAction>,
    pub verdict: Verdict,
    pub drift: Vec<FieldDiff>,
    /// This resource manages the observed deployment: the status records its id.
    pub claims_deployment: bool,
    /// The deployment is someone else's (AlreadyManaged, AlreadyExists, or Failed and not
    /// ours): the status shows the verdict only, nothing of the deployment.
    pub foreign: bool,
}

impl DeploymentPlan {
    fn verdict(verdict: Verdict) -> Self {
        DeploymentPlan {
            actions: Vec::new(),
            verdict,
            drift: Vec::new(),
            claims_deployment: false,
            foreign: false,
        }
    }

    fn stalled(reason: &'static str, message: String) -> Self {
        Self::verdict(Verdict::Stalled { reason, message })
    }

    fn foreign(reason: &'static str, message: String) -> Self {
        DeploymentPlan {
            foreign: true,
            ..Self::stalled(reason, message)
        }
    }

    fn progressing(reason: &'static str, message: String) -> Self {
        Self::verdict(Verdict::Progressing { reason, message })
    }

    fn act(action: DeploymentAction, reason: &'static str, message: String) -> Self {
        DeploymentPlan {
            actions: vec![action],
            ..Self::progressing(reason, message)
        }
    }

    fn claimed(mut self) -> Self {
        self.claims_deployment = true;
        self
    }
}

/// Decides what to do with one deployment.
pub fn plan_deployment(input: &DeploymentPlanInput) -> DeploymentPlan {
    let policy = input.spec.reconcile_policy;
    if policy == ReconcilePolicy::Pause {
        return DeploymentPlan::verdict(Verdict::Paused);
    }
    if let Some(pending) = input.pending {
        return waiting_for(pending);
    }
    if input.deleting {
        return plan_deletion(input);
    }
    match input.account {
        AccountState::Ready | AccountState::Observed => {}
        AccountState::NotReady(why) => {
            return DeploymentPlan::progressing(
                "AccountNotReady",
                format!(
                    "waiting for CognitiveServicesAccount {} to be Ready: {why}",
                    input.spec.account_ref.name
                ),
            );
        }
        AccountState::ResourceMissing => {
            return DeploymentPlan::stalled(
                "AccountNotFound",
                format!(
                    "spec.accountRef.name: there is no CognitiveServicesAccount {} in this namespace",
                    input.spec.account_ref.name
                ),
            );
        }
    }
    match input.deployment {
        None if observing(input) => DeploymentPlan::verdict(Verdict::Observed {
            reason: "NotFound",
            message: format!(
                "deployment {} does not exist ({}: not creating it)",
                input.target.name,
                why_observing(input)
            ),
        }),
        // Claimed once it is read back with our tag: a create that lost a race to another
        // writer must not make that writer's deployment look like ours.
        None => DeploymentPlan::act(
            DeploymentAction::Create(Box::new(desired_deployment(input))),
            "Creating",
            format!("creating deployment {}", input.target.name),
        ),
        Some(deployment) => plan_existing(input, deployment),
    }
}

/// Whether the deployment is only read and compared: its own policy is Observe, or its
/// account's is (see [`AccountState::Observed`]).
fn observing(input: &DeploymentPlanInput) -> bool {
    input.spec.reconcile_policy == ReconcilePolicy::Observe
        || input.account == &AccountState::Observed
}

/// Why nothing is written, as the messages say it: so that a `Manage` deployment resource of an
/// Observe account is never silently taken for managed.
fn why_observing(input: &DeploymentPlanInput) -> String {
    if input.account == &AccountState::Observed {
        format!(
            "CognitiveServicesAccount {} is reconcilePolicy Observe: its deployments are observed only",
            input.spec.account_ref.name
        )
    } else {
        "reconcilePolicy Observe".to_string()
    }
}

/// The plan while an operation is in flight: wait for it.
pub fn waiting_for(pending: &PendingOperation) -> DeploymentPlan {
    let (reason, what) = match pending.kind {
        OperationKind::Create => ("Creating", "creating the deployment"),
        OperationKind::Delete => ("Deleting", "deleting the deployment"),
        _ => ("Updating", "updating the deployment"),
    };
    DeploymentPlan::progressing(
        reason,
        format!("ARM is {what} (operation started {})", pending.started_at),
    )
}

fn plan_deletion(input: &DeploymentPlanInput) -> DeploymentPlan {
    let spec = input.spec;
    let deleted = |message: String| DeploymentPlan::verdict(Verdict::Deleted { message });
    if input.account == &AccountState::Observed {
        return deleted(format!(
            "the deployment is left in Azure ({})",
            why_observing(input)
        ));
    }
    if spec.reconcile_policy == ReconcilePolicy::Observe
        || spec.deletion_policy == DeploymentDeletionPolicy::Orphan
    {
        return deleted(
            "the deployment is left in Azure (deletionPolicy Orphan or reconcilePolicy Observe)"
                .into(),
        );
    }
    let Some(deployment) = input.deployment else {
        return deleted(format!("deployment {} is deleted", input.target.name));
    };
    if ownership(input, deployment) != Ownership::Ours {
        return deleted(format!(
            "deployment {} is not managed by this resource (no matching {OWNER_TAG} tag), so it is left in Azure",
            input.target.name
        ));
    }
    DeploymentPlan::act(
        DeploymentAction::Delete,
        "Deleting",
        format!("deleting deployment {}", input.target.name),
    )
    .claimed()
}

fn plan_existing(input: &DeploymentPlanInput, deployment: &Deployment) -> DeploymentPlan {
    let observing = observing(input);
    // Claimed only when it shows to be ours (our tag, or the status's claim of a deployment
    // whose tag was dropped): one being adopted is claimed once the tag is read back, and
    // observing claims nothing.
    let claims = ownership(input, deployment) == Ownership::Ours && !observing;
    match ownership(input, deployment) {
        Ownership::Ours => {}
        Ownership::Other(other) => {
            return DeploymentPlan::foreign(
                "AlreadyManaged",
                format!(
                    "deployment {} is already managed by CognitiveServicesDeployment {other} (Azure tag {OWNER_TAG}); two resources must not manage one deployment",
                    input.target.name
                ),
            );
        }
        Ownership::Unclaimed
            if input.spec.adoption_policy == AdoptionPolicy::Never && !observing =>
        {
            return DeploymentPlan::foreign(
                "AlreadyExists",
                format!(
                    "deployment {} exists in the account and was not created by this resource; set spec.adoptionPolicy: Adopt to take it over",
                    input.target.name
                ),
            );
        }
        Ownership::Unclaimed => {}
    }
    if let Some(stalled) = immutable_mismatch(input, deployment) {
        return stalled;
    }
    if let Some(state) = deployment.provisioning_state() {
        if state.eq_ignore_ascii_case("Failed") {
            return failed(input, deployment, observing);
        }
        if !is_terminal(state) {
            return DeploymentPlan {
                claims_deployment: claims,
                ..DeploymentPlan::progressing(
                    "Provisioning",
                    format!("deployment provisioningState is {state}"),
                )
            };
        }
    }
    let drift = drift(input, deployment);
    if drift.is_empty() {
        return DeploymentPlan {
            claims_deployment: claims,
            ..DeploymentPlan::verdict(Verdict::Ready)
        };
    }
    if observing {
        return DeploymentPlan {
            drift: drift.clone(),
            ..DeploymentPlan::verdict(Verdict::Observed {
                reason: "Drifted",
                message: format!(
                    "the deployment differs from the spec in {} ({}: not changing it)",
                    paths(&drift),
                    why_observing(input)
                ),
            })
        };
    }
    DeploymentPlan {
        drift: drift.clone(),
        claims_deployment: claims,
        ..writes_for(input, deployment, &drift)
    }
}

/// A Failed deployment of ours is deleted and then created again; someone else's is reported.
fn failed(input: &DeploymentPlanInput, deployment: &Deployment, observing: bool) -> DeploymentPlan {
    if observing {
        return DeploymentPlan::verdict(Verdict::Observed {
            reason: "DeploymentFailed",
            message: format!(
                "deployment {} is in provisioningState Failed ({}: not changing it)",
                input.target.name,
                why_observing(input)
            ),
        });
    }
    if ownership(input, deployment) != Ownership::Ours {
        return DeploymentPlan::foreign(
            "DeploymentFailed",
            format!(
                "deployment {} is in provisioningState Failed and this resource did not create it; delete it in Azure or adopt it",
                input.target.name
            ),
        );
    }
    DeploymentPlan::act(
        DeploymentAction::Delete,
        "Recreating",
        format!(
            "deployment {} is in provisioningState Failed: deleting it to create it again",
            input.target.name
        ),
    )
    .claimed()
}

/// The model and SKU name cannot change in Azure: a deployment with another one is not this
/// resource's to fix.
fn immutable_mismatch(
    input: &DeploymentPlanInput,
    deployment: &Deployment,
) -> Option<DeploymentPlan> {
    let spec = input.spec;
    let model = deployment.model().cloned().unwrap_or_default();
    let observed_model = format!(
        "{}/{}",
        model.format.as_deref().unwrap_or("?"),
        model.name.as_deref().unwrap_or("?")
    );
    let model_differs = !same_text(model.format.as_deref(), &spec.model.format)
        || !same_text(model.name.as_deref(), &spec.model.name);
    if model_differs {
        return Some(DeploymentPlan::stalled(
            "ModelMismatch",
            format!(
                "spec.model: deployment {} serves {observed_model}, not {}/{}; Azure cannot change a deployment's model: create a new deployment resource with another name",
                input.target.name, spec.model.format, spec.model.name
            ),
        ));
    }
    let sku = deployment.sku.as_ref().map(|s| s.name.as_str());
    if !same_text(sku, &spec.sku.name) {
        return Some(DeploymentPlan::stalled(
            "SkuMismatch",
            format!(
                "spec.sku.name: deployment {} has SKU {}, not {}; Azure cannot change a deployment's SKU: create a new deployment resource with another name",
                input.target.name,
                sku.unwrap_or("none"),
                spec.sku.name
            ),
        ));
    }
    None
}

fn same_text(observed: Option<&str>, desired: &str) -> bool {
    observed.is_some_and(|o| o.eq_ignore_ascii_case(desired))
}

/// PATCH first (capacity, tags), then PUT (version, policies): never both in one request.
fn writes_for(
    input: &DeploymentPlanInput,
    deployment: &Deployment,
    drift: &[FieldDiff],
) -> DeploymentPlan {
    let patched: Vec<String> = units(drift, |u| u == "sku" || u == "tags");
    let put: Vec<String> = units(drift, |u| u != "sku" && u != "tags");
    let mut actions = Vec::new();
    if !patched.is_empty() {
        let mut body = json!({});
        if patched.iter().any(|u| u == "sku") {
            body["sku"] = json!({"name": input.spec.sku.name, "capacity": input.spec.sku.capacity});
        }
        if patched.iter().any(|u| u == "tags") {
            body["tags"] = json!(desired_tags(input, deployment));
        }
        actions.push(DeploymentAction::Patch {
            fields: patched,
            body,
        });
    }
    if !put.is_empty() {
        actions.push(DeploymentAction::Update {
            fields: put,
            body: Box::new(updated_deployment(input, deployment)),
        });
    }
    DeploymentPlan {
        actions,
        ..DeploymentPlan::progressing(
            "Updating",
            format!(
                "updating deployment {}: {}",
                input.target.name,
                paths(drift)
            ),
        )
    }
}

fn units(drift: &[FieldDiff], keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut units: Vec<String> = drift
        .iter()
        .map(|d| unit_of(&d.path).to_string())
        .filter(|u| keep(u))
        .collect();
    units.dedup();
    units
}

fn unit_of(path: &str) -> &str {
    match path {
        "sku.capacity" => "sku",
        "properties.model.version" => "model.version",
        "properties.raiPolicyName" => "raiPolicyName",
        "properties.versionUpgradeOption" => "versionUpgradeOption",
        other => other,
    }
}

fn paths(drift: &[FieldDiff]) -> String {
    drift
        .iter()
        .map(|d| d.path.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Only what the spec sets is compared; Azure's defaults and auto-upgrades are not drift.
fn drift(input: &DeploymentPlanInput, deployment: &Deployment) -> Vec<FieldDiff> {
    let spec = input.spec;
    let properties = deployment.properties.clone().unwrap_or_default();
    let observed_version = properties.model.as_ref().and_then(|m| m.version.clone());
    let mut drift = Vec::new();
    let mut compare = |path: &str, desired: Option<Value>, observed: Option<Value>, exact: bool| {
        let Some(desired) = desired else { return };
        let observed = observed.unwrap_or(Value::Null);
        let same = match (&desired, &observed) {
            (Value::String(d), Value::String(o)) if !exact => d.eq_ignore_ascii_case(o),
            (d, o) => d == o,
        };
        if !same {
            drift.push(FieldDiff {
                path: path.to_string(),
                desired,
                observed,
            });
        }
    };
    compare(
        "sku.capacity",
        spec.sku.capacity.map(Value::from),
        deployment
            .sku
            .as_ref()
            .and_then(|s| s.capacity)
            .map(Value::from),
        true,
    );
    compare(
        "properties.model.version",
        spec.model.version.clone().map(Value::from),
        observed_version.map(Value::from),
        true,
    );
    compare(
        "properties.raiPolicyName",
        spec.rai_policy_name.clone().map(Value::from),
        properties.rai_policy_name.map(Value::from),
        false,
    );
    compare(
        "properties.versionUpgradeOption",
        spec.version_upgrade_option.clone().map(Value::from),
        properties.version_upgrade_option.map(Value::from),
        false,
    );
    // Observe mode claims nothing, so its owner tag is no difference.
    let observing = observing(input);
    let mut desired_tags = desired_tags(input, deployment);
    let mut observed_tags = deployment.tags.clone().unwrap_or_default();
    if observing {
        desired_tags.retain(|name, _| !is_owner_tag(name));
        observed_tags.retain(|name, _| !is_owner_tag(name));
    }
    if !same_tags(&desired_tags, &observed_tags) {
        drift.push(FieldDiff {
            path: "tags".into(),
            desired: json!(desired_tags),
            observed: json!(observed_tags),
        });
    }
    drift
}

/// The spec's tags (or, when it manages none, the deployment's) plus the owner tag.
fn desired_tags(input: &DeploymentPlanInput, deployment: &Deployment) -> BTreeMap<String, String> {
    let tags = match &input.spec.tags {
        Some(tags) => tags.clone(),
        None => deployment.tags.clone().unwrap_or_default(),
    };
    with_owner_tag(tags, input.owner)
}

/// The deployment to PUT on create: the spec plus the owner tag.
pub fn desired_deployment(input: &DeploymentPlanInput) -> Deployment {
    let spec = input.spec;
    let tags = with_owner_tag(spec.tags.clone().unwrap_or_default(), input.owner);
    Deployment {
        sku: Some(Sku {
            name: spec.sku.name.clone(),
            capacity: spec.sku.capacity,
            ..Default::default()
        }),
        tags: Some(tags),
        properties: Some(DeploymentProperties {
            model: Some(DeploymentModel {
                format: Some(spec.model.format.clone()),
                name: Some(spec.model.name.clone()),
                version: spec.model.version.clone(),
            }),
            rai_policy_name: spec.rai_policy_name.clone(),
            version_upgrade_option: spec.version_upgrade_option.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The PUT of an update: the deployment as it stands (capacity, version, policies Azure chose),
/// with what the spec sets, so that a PUT never resets what the spec leaves to Azure.
fn updated_deployment(input: &DeploymentPlanInput, observed: &Deployment) -> Deployment {
    let spec = input.spec;
    let properties = observed.properties.clone().unwrap_or_default();
    let observed_model = properties.model.clone().unwrap_or_default();
    let observed_capacity = observed.sku.as_ref().and_then(|s| s.capacity);
    Deployment {
        sku: Some(Sku {
            name: spec.sku.name.clone(),
            // The PATCH before this PUT brought the capacity to the spec's.
            capacity: observed_capacity.or(spec.sku.capacity),
            ..Default::default()
        }),
        tags: Some(desired_tags(input, observed)),
        properties: Some(DeploymentProperties {
            model: Some(DeploymentModel {
                format: Some(spec.model.format.clone()),
                name: Some(spec.model.name.clone()),
                version: spec.model.version.clone().or(observed_model.version),
            }),
            rai_policy_name: spec.rai_policy_name.clone().or(properties.rai_policy_name),
            version_upgrade_option: spec
                .version_upgrade_option
                .clone()
                .or(properties.version_upgrade_option),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn owner_of(deployment: &Deployment) -> Option<&str> {
    owner_tag_in(deployment.tags.as_ref()?)
}

#[derive(Debug, PartialEq)]
enum Ownership<'a> {
    Ours,
    Unclaimed,
    Other(&'a str),
}

fn ownership<'a>(input: &DeploymentPlanInput, deployment: &'a Deployment) -> Ownership<'a> {
    match owner_of(deployment) {
        Some(tag) if tag == input.owner => Ownership::Ours,
        Some(other) => Ownership::Other(other),
        None if input.managed_before => Ownership::Ours,
        None => Ownership::Unclaimed,
    }
}

fn is_terminal(state: &str) -> bool {
    ["Succeeded", "Failed", "Canceled", "Disabled"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(state))
}

#[cfg(test)]
#[path = "deployment_tests.rs"]
mod tests;
