//! Reading an account: the account, its soft-deleted copy, its deployments.

use super::subject::{Subject, managed_before};
use crate::api::ReconcilePolicy;
use crate::arm::deployments::Deployment;
use crate::arm::models::{Account, DeletedAccountRef, location_slug, same_location};
use crate::arm::{ArmClient, ArmError};
use crate::planner::{self, SoftDeleted};

#[derive(Clone, Debug, Default)]
pub(super) struct Observation {
    pub(super) account: Option<Account>,
    pub(super) soft_deleted: Option<SoftDeleted>,
    /// The account's deployments (for kinds that have them, once it is provisioned).
    pub(super) deployments: Vec<Deployment>,
    /// `deployments` is a list just made (not merely empty because nothing was listed).
    pub(super) listed: bool,
}

/// Reads the account and, when it is absent, its soft-deleted copy at the spec's place.
/// `thorough` also searches the whole subscription for a copy elsewhere: a subscription-wide
/// list, so reconciles do it only after a create was refused (see [`blocked_by_a_copy`]).
pub(super) async fn observe(
    arm: &ArmClient,
    subject: &Subject<'_>,
    thorough: bool,
) -> Result<Observation, ArmError> {
    let target = &subject.target;
    if let Some(account) = arm.get_account(target).await? {
        return observe_deployments(arm, subject, account).await;
    }
    let here = copy_place(subject);
    // A copy is looked for only when the status remembers one (or when deleting, to purge
    // it): otherwise ARM's refusal of the create says there is one (see `blocked_by_a_copy`),
    // which costs less than a read on every create.
    if !thorough && !subject.deleting {
        return Ok(Observation::default());
    }
    let soft_deleted = match arm.get_deleted_account(&here).await? {
        Some(copy) => Some(SoftDeleted {
            at: here,
            account: copy,
        }),
        None if thorough && !subject.deleting => find_copy_elsewhere(arm, subject).await?,
        None => None,
    };
    Ok(Observation {
        account: None,
        soft_deleted,
        ..Observation::default()
    })
}

/// The observation of an existing account: with its deployments when they are due.
pub(super) async fn observe_deployments(
    arm: &ArmClient,
    subject: &Subject<'_>,
    account: Account,
) -> Result<Observation, ArmError> {
    let listed = lists_deployments(subject, &account);
    let deployments = if listed {
        arm.list_deployments(&subject.target).await?
    } else {
        Vec::new()
    };
    Ok(Observation {
        account: Some(account),
        soft_deleted: None,
        deployments,
        listed,
    })
}

/// Accounts of the kinds that hold model deployments list them once provisioned: to delete
/// them before the account (always), and to show them in the status and serve their resyncs
/// (when due). A deletion is planned only from this list, made in the same pass: never from a
/// confirmation, nor from the engine's [`Listings`](crate::engine::listings::Listings) (which
/// only the deployments' resyncs read), nor from a resource group's list (`at_rest` never
/// answers a deletion). Someone else's account is not listed at all: nothing of it is shown.
pub(super) fn lists_deployments(subject: &Subject<'_>, account: &Account) -> bool {
    let spec = &subject.resource.spec;
    let managed_before = managed_before(subject.resource, &subject.target);
    let ours_to_read = if subject.deleting {
        planner::is_managed_by(account, &subject.owner, managed_before)
    } else {
        !planner::is_foreign(spec, account, &subject.owner, managed_before)
    };
    ours_to_read && holds_listable_deployments(subject, account)
}

fn holds_listable_deployments(subject: &Subject<'_>, account: &Account) -> bool {
    let kind = account
        .kind
        .as_deref()
        .unwrap_or(&subject.resource.spec.kind);
    // The planner's own rule: a deletion it plans waits for this list from these kinds.
    let has_deployments = planner::is_openai_family(kind);
    // Deleting lists them whatever the state: a Failed account's deployments bill too.
    let provisioned = subject.deleting
        || account
            .provisioning_state()
            .is_none_or(|s| s.eq_ignore_ascii_case("Succeeded"));
    has_deployments
        && provisioned
        && (subject.deleting || subject.deployments_due)
        && subject.resource.spec.reconcile_policy != ReconcilePolicy::Pause
}

/// The copy that made ARM refuse a create: at the spec's place (one GET), else elsewhere.
pub(super) async fn find_copy(
    arm: &ArmClient,
    subject: &Subject<'_>,
) -> Result<Option<SoftDeleted>, ArmError> {
    let here = copy_place(subject);
    match arm.get_deleted_account(&here).await? {
        Some(account) => Ok(Some(SoftDeleted { at: here, account })),
        None => find_copy_elsewhere(arm, subject).await,
    }
}

/// Where the account's soft-deleted copy would be: the spec's location and resource group.
pub(super) fn copy_place(subject: &Subject<'_>) -> DeletedAccountRef {
    let target = &subject.target;
    DeletedAccountRef {
        subscription_id: target.subscription_id.clone(),
        location: location_slug(&subject.resource.spec.location),
        resource_group: target.resource_group.clone(),
        name: target.name.clone(),
    }
}

/// A copy in another location or resource group, found by listing the subscription's
/// soft-deleted accounts; it still blocks the name or its subdomain.
pub(super) async fn find_copy_elsewhere(
    arm: &ArmClient,
    subject: &Subject<'_>,
) -> Result<Option<SoftDeleted>, ArmError> {
    let target = &subject.target;
    let copies = arm.list_deleted_accounts(&target.subscription_id).await?;
    Ok(copies
        .into_iter()
        .filter_map(|account| {
            let at = DeletedAccountRef::parse_id(account.id.as_deref()?)?;
            at.name
                .eq_ignore_ascii_case(&target.name)
                .then_some(SoftDeleted { at, account })
        })
        .min_by_key(|copy| {
            // Prefer the copy in our resource group, then our location.
            (
                !copy
                    .at
                    .resource_group
                    .eq_ignore_ascii_case(&target.resource_group),
                !same_location(&copy.at.location, &subject.resource.spec.location),
            )
        }))
}
