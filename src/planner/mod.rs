//! The pure planner: desired spec + observed ARM state + soft-deleted copy + policies →
//! ordered actions and the verdict the status reports. No I/O, no clock, no randomness.
//!
//! The decision table it implements is in docs/reconcile.md; each row has a test below.

pub mod diff;
pub mod status;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::{
    AdoptionPolicy, CognitiveServicesAccountSpec, DeletionPolicy, OWNER_TAG, ReconcilePolicy,
    SoftDeletePolicy,
};
use crate::arm::lro::{OperationKind, PendingOperation};
use crate::arm::models::{
    Account, AccountProperties, AccountRef, DeletedAccountRef, same_location,
};
pub use diff::FieldDiff;

/// A soft-deleted copy of the account, as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftDeleted {
    pub at: DeletedAccountRef,
    pub account: Account,
}

impl SoftDeleted {
    fn owner(&self) -> Option<&str> {
        owner_of(&self.account)
    }

    fn deletion_date(&self) -> &str {
        self.account
            .properties
            .as_ref()
            .and_then(|p| p.deletion_date.as_deref())
            .unwrap_or("unknown")
    }

    pub fn scheduled_purge_date(&self) -> &str {
        self.account
            .properties
            .as_ref()
            .and_then(|p| p.scheduled_purge_date.as_deref())
            .unwrap_or("unknown")
    }
}

/// Everything the planner looks at.
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    pub spec: &'a CognitiveServicesAccountSpec,
    /// Where the account is meant to be (spec subscription or the default, resource group, name).
    pub target: &'a AccountRef,
    /// This resource's identity as written in the owner tag: `{cluster}/{namespace}/{name}`
    /// (`{namespace}/{name}` where no cluster id is configured).
    pub owner: &'a str,
    /// The active account, if it exists.
    pub account: Option<&'a Account>,
    /// A soft-deleted copy with this name, if one was found.
    pub soft_deleted: Option<&'a SoftDeleted>,
    /// A long-running operation still in flight.
    pub pending: Option<&'a PendingOperation>,
    /// The resource is being deleted: run the deletion policy.
    pub deleting: bool,
    /// The status says this resource managed the account before (`status.armId` is its id):
    /// ownership survives someone dropping the owner tag in the portal.
    pub managed_before: bool,
}

/// One ARM write.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// PUT the full desired account (create, or re-provision one that failed).
    Create(Box<Account>),
    /// PUT `{"properties":{"restore":true}}` at the copy's location.
    Restore { location: String },
    /// DELETE the soft-deleted copy at exactly this place.
    Purge(DeletedAccountRef),
    /// PATCH exactly these top-level units.
    Patch { fields: Vec<String>, body: Value },
    /// DELETE (soft-delete) the account.
    Delete,
}

impl Action {
    pub fn kind(&self) -> OperationKind {
        match self {
            Action::Create(_) => OperationKind::Create,
            Action::Restore { .. } => OperationKind::Restore,
            Action::Purge(_) => OperationKind::Purge,
            Action::Patch { .. } => OperationKind::Update,
            Action::Delete => OperationKind::Delete,
        }
    }

    /// A short human description, for `plan` output and events.
    pub fn describe(&self) -> String {
        match self {
            Action::Create(_) => "create the account".to_string(),
            Action::Restore { location } => {
                format!("restore the soft-deleted account in {location}")
            }
            Action::Purge(at) => format!(
                "purge the soft-deleted copy in {} (resource group {})",
                at.location, at.resource_group
            ),
            Action::Patch { fields, .. } => format!("patch {}", fields.join(", ")),
            Action::Delete => "delete the account (soft-delete)".to_string(),
        }
    }
}

/// What the status says about the plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The account matches the spec.
    Ready,
    /// Work is under way or about to start.
    Progressing {
        reason: &'static str,
        message: String,
    },
    /// Nothing will change until someone changes something.
    Stalled {
        reason: &'static str,
        message: String,
    },
    /// Observe mode: the account differs from the spec or is missing; nothing is written.
    Observed {
        reason: &'static str,
        message: String,
    },
    /// Pause: no ARM calls.
    Paused,
    /// The deletion policy has run to the end: the finalizer can go.
    Deleted { message: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Writes in order. Only the first runs before the next observation.
    pub actions: Vec<Action>,
    pub verdict: Verdict,
    /// Differences between spec and account (filled whenever an account was compared).
    pub drift: Vec<FieldDiff>,
    /// This resource manages the observed account (created, restored or adopted it): the
    /// status records its id.
    pub claims_account: bool,
}

impl Plan {
    fn verdict(verdict: Verdict) -> Self {
        Plan {
            actions: Vec::new(),
            verdict,
            drift: Vec::new(),
            claims_account: false,
        }
    }

    fn act(actions: Vec<Action>, reason: &'static str, message: String) -> Self {
        Plan {
            actions,
            verdict: Verdict::Progressing { reason, message },
            drift: Vec::new(),
            claims_account: false,
        }
    }

    fn stalled(reason: &'static str, message: String) -> Self {
        Plan::verdict(Verdict::Stalled { reason, message })
    }

    /// Whether the plan purges anything.
    pub fn purges(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Purge(_)))
    }

    pub fn writes(&self) -> bool {
        !self.actions.is_empty()
    }
}

/// Provisioning states after which ARM accepts writes again.
fn is_terminal(state: &str) -> bool {
    state.eq_ignore_ascii_case("Succeeded") || state.eq_ignore_ascii_case("Failed")
}

pub fn owner_of(account: &Account) -> Option<&str> {
    account.tags.as_ref()?.get(OWNER_TAG).map(String::as_str)
}

/// Who manages an existing account, by its owner tag and, failing that, by the status.
#[derive(Debug, PartialEq)]
enum Ownership<'a> {
    Ours,
    Unclaimed,
    Other(&'a str),
}

fn ownership<'a>(input: &PlanInput, account: &'a Account) -> Ownership<'a> {
    ownership_of(account, input.owner, input.managed_before)
}

fn ownership_of<'a>(account: &'a Account, owner: &str, managed_before: bool) -> Ownership<'a> {
    match owner_of(account) {
        Some(tag) if tag == owner => Ownership::Ours,
        // A tag from before owner tags named their cluster (`{namespace}/{name}`) is ours only
        // when our status says so too; the next PATCH rewrites it with the cluster.
        Some(tag) if managed_before && is_legacy_form_of(tag, owner) => Ownership::Ours,
        Some(other) => Ownership::Other(other),
        None if managed_before => Ownership::Ours,
        None => Ownership::Unclaimed,
    }
}

/// `team-a/docs` is the legacy form of `{cluster}/team-a/docs`.
fn is_legacy_form_of(tag: &str, owner: &str) -> bool {
    tag.matches('/').count() == 1
        && owner
            .strip_suffix(tag)
            .is_some_and(|cluster| cluster.len() > 1 && cluster.ends_with('/'))
}

/// Whether the resource whose owner tag value is `owner` manages `account` (by the tag, or by
/// its status when someone dropped the tag): only then may its keys go into a Secret without a
/// key-read grant.
pub fn is_managed_by(account: &Account, owner: &str, managed_before: bool) -> bool {
    ownership_of(account, owner, managed_before) == Ownership::Ours
}

fn already_managed(input: &PlanInput, other: &str) -> Plan {
    if is_legacy_form_of(other, input.owner) {
        return Plan::stalled(
            "AlreadyManaged",
            format!(
                "account {} carries the owner tag {OWNER_TAG}={other}, written before owner tags named their cluster, and this resource's status does not show it managed the account: it may be {other} in another cluster. If this cluster owns it, set the tag to {} in Azure (az tag update --operation Merge --tags {OWNER_TAG}={} --resource-id {})",
                input.target.name,
                input.owner,
                input.owner,
                input.target.id()
            ),
        );
    }
    Plan::stalled(
        "AlreadyManaged",
        format!(
            "account {} is already managed by CognitiveServicesAccount {other} (Azure tag {OWNER_TAG}); two resources must not manage one account",
            input.target.name
        ),
    )
}

/// Decides what to do. See docs/reconcile.md.
pub fn plan(input: &PlanInput) -> Plan {
    let policy = input.spec.reconcile_policy;
    if policy == ReconcilePolicy::Pause {
        return Plan::verdict(Verdict::Paused);
    }
    if let Some(pending) = input.pending {
        return waiting_for(pending);
    }
    if input.deleting {
        return plan_deletion(input);
    }
    if policy == ReconcilePolicy::Observe {
        return plan_observation(input);
    }
    match input.account {
        Some(account) => plan_existing(input, account),
        None => plan_absent(input),
    }
}

fn waiting_for(pending: &PendingOperation) -> Plan {
    let (reason, what) = match pending.kind {
        OperationKind::Create => ("Creating", "creating the account"),
        OperationKind::Restore => ("Restoring", "restoring the soft-deleted account"),
        OperationKind::Update => ("Updating", "updating the account"),
        OperationKind::Delete => ("Deleting", "deleting the account"),
        OperationKind::Purge => ("Purging", "purging the soft-deleted copy"),
    };
    Plan::verdict(Verdict::Progressing {
        reason,
        message: format!("ARM is {what} (operation started {})", pending.started_at),
    })
}

fn plan_absent(input: &PlanInput) -> Plan {
    let Some(copy) = input.soft_deleted else {
        return Plan::act(
            vec![Action::Create(Box::new(desired_account(input)))],
            "Creating",
            format!(
                "creating account {} in {}",
                input.target.name, input.spec.location
            ),
        );
    };
    // Restoring or purging another resource's copy would take it from its owner, who may be
    // another cluster waiting to restore it; a copy nobody claims is someone's too, so acting on
    // it is an adoption, as for a live account (m11).
    let ownership = ownership_of(&copy.account, input.owner, input.managed_before);
    if let Ownership::Other(other) = ownership {
        return copy_managed_elsewhere(input, copy, other);
    }
    let unclaimed =
        ownership == Ownership::Unclaimed && input.spec.adoption_policy != AdoptionPolicy::Adopt;
    let here = same_place(input, copy);
    // The spec names one resource group, and the namespace's grant was checked for it alone:
    // a purge never reaches a copy in another resource group.
    let in_our_group = copy
        .at
        .resource_group
        .eq_ignore_ascii_case(&input.target.resource_group);
    match (input.spec.soft_delete_policy, here) {
        (SoftDeletePolicy::Restore, true) | (SoftDeletePolicy::Purge, _)
            if unclaimed && (here || in_our_group) =>
        {
            copy_not_ours(input, copy)
        }
        (SoftDeletePolicy::Restore, true) => {
            let mut actions = vec![Action::Restore {
                location: copy.at.location.clone(),
            }];
            let (fields, body) = patch_against(input, &copy.account);
            if !fields.is_empty() {
                actions.push(Action::Patch { fields, body });
            }
            Plan::act(
                actions,
                "Restoring",
                format!(
                    "restoring the soft-deleted account {} (deleted {}), then applying the spec",
                    input.target.name,
                    copy.deletion_date()
                ),
            )
        }
        (SoftDeletePolicy::Purge, _) if in_our_group => Plan::act(
            vec![
                Action::Purge(copy.at.clone()),
                Action::Create(Box::new(desired_account(input))),
            ],
            "Purging",
            format!(
                "purging the soft-deleted copy of {} in {} (resource group {}) as softDeletePolicy is Purge, then creating a new account",
                input.target.name, copy.at.location, copy.at.resource_group
            ),
        ),
        (SoftDeletePolicy::Fail, true) => Plan::stalled(
            "SoftDeletedCopyExists",
            format!(
                "a soft-deleted copy of account {} exists in {} (resource group {}), deleted {}, scheduled for purge {}; set spec.softDeletePolicy to Restore to bring it back, or Purge to delete it for good and create a new account",
                input.target.name,
                copy.at.location,
                copy.at.resource_group,
                copy.deletion_date(),
                copy.scheduled_purge_date()
            ),
        ),
        (SoftDeletePolicy::Purge, _) => Plan::stalled(
            "SoftDeletedCopyElsewhere",
            format!(
                "a soft-deleted copy of account {} exists in resource group {} (location {}, scheduled for purge {}), outside the spec's resource group {}; softDeletePolicy Purge purges a copy only in the spec's resource group. Purge it there yourself (az cognitiveservices account purge --location {} --resource-group {} --name {}), wait for its scheduled purge, or choose another spec.azureName",
                input.target.name,
                copy.at.resource_group,
                copy.at.location,
                copy.scheduled_purge_date(),
                input.target.resource_group,
                copy.at.location,
                copy.at.resource_group,
                input.target.name
            ),
        ),
        (_, false) => Plan::stalled(
            "SoftDeletedCopyElsewhere",
            format!(
                "a soft-deleted copy of account {} exists in location {} and resource group {} (scheduled for purge {}), but the spec asks for location {} and resource group {}; Azure restores a copy only where it was. Set spec.location/resourceGroup to match it, or spec.softDeletePolicy: Purge to delete it for good",
                input.target.name,
                copy.at.location,
                copy.at.resource_group,
                copy.scheduled_purge_date(),
                input.spec.location,
                input.target.resource_group
            ),
        ),
    }
}

fn copy_not_ours(input: &PlanInput, copy: &SoftDeleted) -> Plan {
    Plan::stalled(
        "AlreadyExists",
        format!(
            "a soft-deleted copy of account {} exists in {} (resource group {}), deleted {}, and was not made by this resource (no owner tag {OWNER_TAG}); set spec.adoptionPolicy: Adopt to let softDeletePolicy {:?} act on it",
            input.target.name,
            copy.at.location,
            copy.at.resource_group,
            copy.deletion_date(),
            input.spec.soft_delete_policy
        ),
    )
}

fn copy_managed_elsewhere(input: &PlanInput, copy: &SoftDeleted, other: &str) -> Plan {
    if is_legacy_form_of(other, input.owner) {
        return Plan::stalled(
            "AlreadyManaged",
            format!(
                "a soft-deleted copy of account {} (location {}, resource group {}) carries the owner tag {OWNER_TAG}={other}, written before owner tags named their cluster: it may be this resource's from then, or {other} in another cluster. If it is this cluster's, recover it by hand (az cognitiveservices account recover --location {} --resource-group {} --name {}) and set its tag to {}; the operator then manages it",
                input.target.name,
                copy.at.location,
                copy.at.resource_group,
                copy.at.location,
                copy.at.resource_group,
                input.target.name,
                input.owner
            ),
        );
    }
    Plan::stalled(
        "AlreadyManaged",
        format!(
            "a soft-deleted copy of account {} (location {}, resource group {}) belongs to CognitiveServicesAccount {other} (Azure tag {OWNER_TAG}); this resource neither restores nor purges it. Choose another spec.azureName, or let its owner restore or purge it",
            input.target.name, copy.at.location, copy.at.resource_group
        ),
    )
}

fn same_place(input: &PlanInput, copy: &SoftDeleted) -> bool {
    same_location(&copy.at.location, &input.spec.location)
        && copy
            .at
            .resource_group
            .eq_ignore_ascii_case(&input.target.resource_group)
}

fn plan_existing(input: &PlanInput, account: &Account) -> Plan {
    if let Some(state) = account.provisioning_state()
        && !is_terminal(state)
    {
        return Plan::verdict(Verdict::Progressing {
            reason: "Provisioning",
            message: format!(
                "the account's provisioningState is {state}; waiting for it to finish"
            ),
        });
    }
    let adopting = match ownership(input, account) {
        Ownership::Ours => false,
        Ownership::Other(other) => return already_managed(input, other),
        Ownership::Unclaimed if input.spec.adoption_policy == AdoptionPolicy::Adopt => true,
        Ownership::Unclaimed => {
            return Plan::stalled(
                "AlreadyExists",
                format!(
                    "account {} already exists in resource group {} and was not created by this resource; set spec.adoptionPolicy: Adopt to take it over",
                    input.target.name, input.target.resource_group
                ),
            );
        }
    };
    let mut plan = plan_owned(input, account, adopting);
    plan.claims_account = true;
    plan
}

/// The plan for an account this resource manages (or is adopting).
fn plan_owned(input: &PlanInput, account: &Account, adopting: bool) -> Plan {
    if let Some(stalled) = immutable_change(input, account) {
        return stalled;
    }
    if account
        .provisioning_state()
        .is_some_and(|s| s.eq_ignore_ascii_case("Failed"))
    {
        return Plan::act(
            vec![Action::Create(Box::new(desired_account(input)))],
            "RetryingFailedProvisioning",
            "the account's provisioningState is Failed; provisioning it again".to_string(),
        );
    }
    let desired = desired_document(input, account);
    let drift = diff::diff(&desired, &observed_document(account));
    if drift.is_empty() {
        return Plan::verdict(Verdict::Ready);
    }
    let (body, fields) = diff::patch_body(&desired, &drift);
    let (reason, verb) = if adopting {
        ("Adopting", "adopting the account: patching")
    } else {
        ("Updating", "patching")
    };
    let mut plan = Plan::act(
        vec![Action::Patch {
            fields: fields.clone(),
            body,
        }],
        reason,
        format!("{verb} {}", fields.join(", ")),
    );
    plan.drift = visible_drift(drift);
    plan
}

/// The owner tag is bookkeeping: it is written but not reported as drift.
fn visible_drift(drift: Vec<FieldDiff>) -> Vec<FieldDiff> {
    drift
        .into_iter()
        .filter(|d| {
            d.path != "tags" || {
                let strip = |v: &Value| {
                    let mut v = v.clone();
                    if let Some(map) = v.as_object_mut() {
                        map.remove(OWNER_TAG);
                    }
                    v
                };
                strip(&d.desired) != strip(&d.observed)
            }
        })
        .collect()
}

fn immutable_change(input: &PlanInput, account: &Account) -> Option<Plan> {
    let spec = input.spec;
    let immutable = |field: &str, desired: &str, observed: &str| {
        Some(Plan::stalled(
            "ImmutableFieldChanged",
            format!(
                "{field} is {desired:?} but the account has {observed:?}, and Azure cannot change it; restore the old value, or create a new resource (with another azureName) for the new account"
            ),
        ))
    };
    if let Some(location) = account.location.as_deref()
        && !same_location(location, &spec.location)
    {
        return immutable("spec.location", &spec.location, location);
    }
    if let Some(kind) = account.kind.as_deref()
        && !kind.eq_ignore_ascii_case(&spec.kind)
        && !(is_openai_family(kind) && is_openai_family(&spec.kind))
    {
        return immutable("spec.kind", &spec.kind, kind);
    }
    let desired_sub = spec
        .properties
        .as_ref()
        .and_then(|p| p.custom_sub_domain_name.as_deref());
    let observed_sub = account
        .properties
        .as_ref()
        .and_then(|p| p.writable.custom_sub_domain_name.as_deref());
    if let (Some(desired), Some(observed)) = (desired_sub, observed_sub)
        && !desired.eq_ignore_ascii_case(observed)
    {
        return immutable("spec.properties.customSubDomainName", desired, observed);
    }
    None
}

fn is_openai_family(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("OpenAI") || kind.eq_ignore_ascii_case("AIServices")
}

fn plan_observation(input: &PlanInput) -> Plan {
    let Some(account) = input.account else {
        let copy = input
            .soft_deleted
            .map(|c| {
                format!(
                    "; a soft-deleted copy exists in {} (resource group {}), scheduled for purge {}",
                    c.at.location,
                    c.at.resource_group,
                    c.scheduled_purge_date()
                )
            })
            .unwrap_or_default();
        return Plan::verdict(Verdict::Observed {
            reason: "NotFound",
            message: format!(
                "account {} does not exist in resource group {}{copy}; reconcilePolicy is Observe, so it is not created",
                input.target.name, input.target.resource_group
            ),
        });
    };
    // Observing is no way around ownership: another resource's account is not this one's to
    // report on (nor, in the controller, to copy keys from).
    if let Ownership::Other(other) = ownership(input, account) {
        return already_managed(input, other);
    }
    let desired = desired_document_without_owner(input);
    let drift = diff::diff(&desired, &observed_document(account));
    if drift.is_empty() {
        return Plan::verdict(Verdict::Ready);
    }
    let fields: Vec<&str> = drift.iter().map(|d| d.path.as_str()).collect();
    Plan {
        actions: Vec::new(),
        verdict: Verdict::Observed {
            reason: "Drifted",
            message: format!(
                "the account differs from the spec in {}; reconcilePolicy is Observe, so nothing is changed",
                fields.join(", ")
            ),
        },
        drift,
        claims_account: false,
    }
}

fn plan_deletion(input: &PlanInput) -> Plan {
    let spec = input.spec;
    if spec.reconcile_policy == ReconcilePolicy::Observe
        || spec.deletion_policy == DeletionPolicy::Orphan
    {
        return Plan::verdict(Verdict::Deleted {
            message:
                "the account is left in Azure (deletionPolicy Orphan or reconcilePolicy Observe)"
                    .to_string(),
        });
    }
    if let Some(account) = input.account {
        if ownership(input, account) != Ownership::Ours {
            return Plan::verdict(Verdict::Deleted {
                message: format!(
                    "account {} is not managed by this resource (no matching {OWNER_TAG} tag), so it is left in Azure",
                    input.target.name
                ),
            });
        }
        if let Some(state) = account.provisioning_state()
            && !is_terminal(state)
        {
            return Plan::verdict(Verdict::Progressing {
                reason: "Provisioning",
                message: format!("waiting for provisioningState {state} to finish before deleting"),
            });
        }
        let mut actions = vec![Action::Delete];
        if spec.deletion_policy == DeletionPolicy::DeleteAndPurge {
            actions.push(Action::Purge(deleted_ref(input)));
        }
        return Plan::act(
            actions,
            "Deleting",
            format!("deleting account {}", input.target.name),
        );
    }
    if spec.deletion_policy == DeletionPolicy::DeleteAndPurge
        && let Some(copy) = input.soft_deleted
        && copy.at.same_place(&deleted_ref(input))
        && ownership_of(&copy.account, input.owner, input.managed_before) == Ownership::Ours
        && copy.owner().is_some()
    {
        return Plan::act(
            vec![Action::Purge(copy.at.clone())],
            "Purging",
            format!(
                "purging the soft-deleted copy of {} (deletionPolicy DeleteAndPurge)",
                input.target.name
            ),
        );
    }
    Plan::verdict(Verdict::Deleted {
        message: match spec.deletion_policy {
            DeletionPolicy::DeleteAndPurge => "the account is deleted and purged".to_string(),
            _ => "the account is deleted (soft-deleted: restorable for 48 hours)".to_string(),
        },
    })
}

/// The exact place where this account's soft-deleted copy would be.
fn deleted_ref(input: &PlanInput) -> DeletedAccountRef {
    let location = input
        .account
        .and_then(|a| a.location.as_deref())
        .unwrap_or(&input.spec.location);
    // The path's form of the location: `swedencentral`, also when the spec says "Sweden Central".
    let location = crate::arm::models::location_slug(location);
    DeletedAccountRef {
        subscription_id: input.target.subscription_id.clone(),
        location,
        resource_group: input.target.resource_group.clone(),
        name: input.target.name.clone(),
    }
}

/// The account to PUT on create: the spec plus the owner tag.
pub fn desired_account(input: &PlanInput) -> Account {
    let spec = input.spec;
    let mut tags = spec.tags.clone().unwrap_or_default();
    tags.insert(OWNER_TAG.to_string(), input.owner.to_string());
    Account {
        location: Some(spec.location.clone()),
        kind: Some(spec.kind.clone()),
        sku: Some(spec.sku.clone()),
        tags: Some(tags),
        identity: spec.identity.clone(),
        properties: spec.properties.clone().map(|writable| AccountProperties {
            writable,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The managed part of the account as a document, compared against the observed one. When the
/// spec does not manage tags, only the owner tag is added to whatever tags the account has.
fn desired_document(input: &PlanInput, observed: &Account) -> Value {
    let mut document = desired_document_without_owner(input);
    let mut tags: BTreeMap<String, String> = match &input.spec.tags {
        Some(tags) => tags.clone(),
        None => observed.tags.clone().unwrap_or_default(),
    };
    tags.insert(OWNER_TAG.to_string(), input.owner.to_string());
    document["tags"] = serde_json::to_value(tags).expect("tags serialize");
    document
}

fn desired_document_without_owner(input: &PlanInput) -> Value {
    let spec = input.spec;
    let mut document = serde_json::json!({
        "kind": spec.kind,
        "sku": spec.sku,
        "properties": spec.properties.clone().unwrap_or_default(),
    });
    if let Some(tags) = &spec.tags {
        document["tags"] = serde_json::to_value(tags).expect("tags serialize");
    }
    if let Some(identity) = &spec.identity {
        document["identity"] = serde_json::to_value(identity).expect("identity serializes");
    }
    document
}

fn observed_document(account: &Account) -> Value {
    serde_json::to_value(account).expect("accounts serialize")
}

/// The PATCH that brings `observed` to the spec: fields and body (both empty when converged).
fn patch_against(input: &PlanInput, observed: &Account) -> (Vec<String>, Value) {
    let desired = desired_document(input, observed);
    let drift = diff::diff(&desired, &observed_document(observed));
    let (body, fields) = diff::patch_body(&desired, &drift);
    (fields, body)
}

#[cfg(test)]
mod tests;
