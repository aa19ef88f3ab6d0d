//! The entry point: which situation the observation is in, and the plan for it.

use super::*;

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

pub(super) fn waiting_for(pending: &PendingOperation) -> Plan {
    if pending.kind == OperationKind::Delete && pending.on_a_deployment() {
        return Plan::verdict(Verdict::Progressing {
            reason: "DeletingDeployments",
            message: format!(
                "ARM is deleting a deployment before the account (operation started {})",
                pending.started_at
            ),
        });
    }
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
