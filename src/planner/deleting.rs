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
            let mut plan = Plan::verdict(Verdict::Progressing {
                reason: "Provisioning",
                message: format!("waiting for provisioningState {state} to finish before deleting"),
            });
            plan.claims_account = true;
            return plan;
        }
        let mut actions: Vec<Action> = input
            .deployments
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
        if spec.deletion_policy == DeletionPolicy::DeleteAndPurge {
            actions.push(Action::Purge(deleted_ref(input)));
        }
        return Plan::act(actions, "Deleting", message);
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
