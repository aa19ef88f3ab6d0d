//! The resource is being deleted: run the deletion policy, never on what it does not own.

use super::*;

pub(super) fn plan_deletion(input: &PlanInput) -> Plan {
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
            let mut plan = Plan::verdict(Verdict::Deleted {
                message: format!(
                    "account {} is not managed by this resource (no matching {OWNER_TAG} tag), so it is left in Azure",
                    input.target.name
                ),
            });
            plan.foreign = true;
            return plan;
        }
        // From here on the account is ours: every plan keeps the claim, so that an owner tag
        // dropped by hand cannot end the deletion early with the account left in Azure.
        if let Some(state) = account.provisioning_state()
            && !is_terminal(state)
        {
            return Plan::verdict(Verdict::Progressing {
                reason: "Provisioning",
                message: format!("waiting for provisioningState {state} to finish before deleting"),
            })
            .claimed();
        }
        let deployments = match input.deployments {
            Some(listed) => listed,
            None if holds_deployments(input, account) => return listing_first(input),
            None => &[],
        };
        return delete_deployments_then_account(input, deployments).claimed();
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
            DeletionPolicy::DeleteAndPurge => deleted_without_purge(input)
                .map(|why| format!("the account is deleted; {why}"))
                .unwrap_or_else(|| "the account is deleted and purged".to_string()),
            _ => "the account is deleted (soft-deleted: restorable for 48 hours)".to_string(),
        },
    })
}

/// Its deployments one at a time, then the account (and its copy, for DeleteAndPurge).
fn delete_deployments_then_account(input: &PlanInput, deployments: &[Deployment]) -> Plan {
    let mut actions: Vec<Action> = deployments
        .iter()
        .filter_map(|d| d.name.clone())
        .map(Action::DeleteDeployment)
        .collect();
    let message = match actions.len() {
        0 => format!("deleting account {}", input.target.name),
        n => format!(
            "deleting the {n} deployment(s) of account {} first, so that nothing provisioned bills while it sits soft-deleted",
            input.target.name
        ),
    };
    actions.push(Action::Delete);
    if input.spec.deletion_policy == DeletionPolicy::DeleteAndPurge {
        actions.push(Action::Purge(deleted_ref(input)));
    }
    Plan::act(actions, "Deleting", message)
}

/// Whether the account is of a kind that holds model deployments.
fn holds_deployments(input: &PlanInput, account: &Account) -> bool {
    is_openai_family(account.kind.as_deref().unwrap_or(&input.spec.kind))
}

/// The account's deployments were not listed in this pass (the observation confirmed an
/// operation, or was made for something else): a deletion planned without them would leave
/// them billing inside the soft-deleted copy, so the next round lists them first.
fn listing_first(input: &PlanInput) -> Plan {
    Plan::verdict(Verdict::Progressing {
        reason: "Deleting",
        message: format!(
            "listing the deployments of account {} before deleting it",
            input.target.name
        ),
    })
    .claimed()
}

/// Why DeleteAndPurge purged nothing, when it did not: the verdict says what was done.
fn deleted_without_purge(input: &PlanInput) -> Option<String> {
    if input.purged {
        return None;
    }
    let here = deleted_ref(input);
    let Some(copy) = input.soft_deleted else {
        return Some(format!(
            "no soft-deleted copy was found in {} (resource group {}), so none was purged",
            here.location, here.resource_group
        ));
    };
    if !copy.at.same_place(&here) {
        return Some(format!(
            "the soft-deleted copy in {} (resource group {}) is not at the spec's place and was not purged",
            copy.at.location, copy.at.resource_group
        ));
    }
    Some(format!(
        "the soft-deleted copy is not this resource's (owner tag {OWNER_TAG}: {}) and was not purged",
        copy.owner().unwrap_or("none")
    ))
}

/// The exact place where this account's soft-deleted copy would be.
pub(super) fn deleted_ref(input: &PlanInput) -> DeletedAccountRef {
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
