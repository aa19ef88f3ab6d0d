//! `reconcilePolicy: Observe`: read, report drift, never write.

use super::*;

pub(super) fn plan_observation(input: &PlanInput) -> Plan {
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
        foreign: false,
    }
}
