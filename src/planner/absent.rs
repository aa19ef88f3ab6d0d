//! The account is absent: create it, or deal with a soft-deleted copy as the policies say.

use super::*;

pub(super) fn plan_absent(input: &PlanInput) -> Plan {
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
        (SoftDeletePolicy::Restore, true) => restore(input, copy),
        (SoftDeletePolicy::Purge, _) if in_our_group => purge_then_create(input, copy),
        (SoftDeletePolicy::Fail, true) => copy_here_kept(input, copy),
        (SoftDeletePolicy::Purge, _) => copy_outside_our_group(input, copy),
        (_, false) => copy_elsewhere(input, copy),
    }
}

/// m2: restore the copy, then patch what still differs from the spec.
fn restore(input: &PlanInput, copy: &SoftDeleted) -> Plan {
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

/// m3/m7: purge the copy where it is, then create anew.
fn purge_then_create(input: &PlanInput, copy: &SoftDeleted) -> Plan {
    Plan::act(
        vec![
            Action::Purge(copy.at.clone()),
            Action::Create(Box::new(desired_account(input))),
        ],
        "Purging",
        format!(
            "purging the soft-deleted copy of {} in {} (resource group {}) as softDeletePolicy is Purge, then creating a new account",
            input.target.name, copy.at.location, copy.at.resource_group
        ),
    )
}

/// m4: `softDeletePolicy: Fail`.
fn copy_here_kept(input: &PlanInput, copy: &SoftDeleted) -> Plan {
    Plan::stalled(
        "SoftDeletedCopyExists",
        format!(
            "a soft-deleted copy of account {} exists in {} (resource group {}), deleted {}, scheduled for purge {}; set spec.softDeletePolicy to Restore to bring it back, or Purge to delete it for good and create a new account",
            input.target.name,
            copy.at.location,
            copy.at.resource_group,
            copy.deletion_date(),
            copy.scheduled_purge_date()
        ),
    )
}

/// m7: a purge never reaches outside the spec's resource group.
fn copy_outside_our_group(input: &PlanInput, copy: &SoftDeleted) -> Plan {
    Plan::stalled(
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
    )
}

/// m5/m6: Azure restores a copy only where it was.
fn copy_elsewhere(input: &PlanInput, copy: &SoftDeleted) -> Plan {
    Plan::stalled(
        "SoftDeletedCopyElsewhere",
        format!(
            "a soft-deleted copy of account {} exists in location {} and resource group {} (scheduled for purge {}), but the spec asks for location {} and resource group {}; Azure restores a copy only where it was. Set spec.location/resourceGroup to match it, or spec.softDeletePolicy: Purge to delete it for good (with spec.adoptionPolicy: Adopt when the copy is not this resource's)",
            input.target.name,
            copy.at.location,
            copy.at.resource_group,
            copy.scheduled_purge_date(),
            input.spec.location,
            input.target.resource_group
        ),
    )
}

pub(super) fn copy_not_ours(input: &PlanInput, copy: &SoftDeleted) -> Plan {
    Plan::foreign(
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

pub(super) fn copy_managed_elsewhere(input: &PlanInput, copy: &SoftDeleted, other: &str) -> Plan {
    if is_legacy_form_of(other, input.owner) {
        return Plan::foreign(
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
    Plan::foreign(
        "AlreadyManaged",
        format!(
            "a soft-deleted copy of account {} (location {}, resource group {}) belongs to CognitiveServicesAccount {other} (Azure tag {OWNER_TAG}); this resource neither restores nor purges it. Choose another spec.azureName, or let its owner restore or purge it",
            input.target.name, copy.at.location, copy.at.resource_group
        ),
    )
}

pub(super) fn same_place(input: &PlanInput, copy: &SoftDeleted) -> bool {
    same_location(&copy.at.location, &input.spec.location)
        && copy
            .at
            .resource_group
            .eq_ignore_ascii_case(&input.target.resource_group)
}
