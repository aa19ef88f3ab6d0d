//! Running the plan's first write: through the account's write gate, in its turn of ARM's
//! write budget.

use super::observe::{Observation, find_copy};
use super::outcome::{Outcome, condition_is_true};
use super::pass::Pass;
use super::rounds::Step;
use super::subject::Subject;
use crate::api::{CognitiveServicesAccountStatus, ReconcilePolicy};
use crate::arm::deployments::DeploymentRef;
use crate::arm::error::codes;
use crate::arm::lro::{OperationKind, PendingOperation};
use crate::arm::models::AccountRef;
use crate::arm::ratelimit::with_booked_token;
use crate::arm::{ArmClient, ArmError};
use crate::engine::common::{GATE_WAIT, Next};
use crate::engine::write_turns::Turn;
use crate::planner::status::{self, Summary};
use crate::planner::{Action, Plan};

/// The status says nothing of an account in Azure yet: this reconcile will most likely create
/// it (or restore a copy), a write.
pub(super) fn likely_to_create(
    subject: &Subject<'_>,
    status: &CognitiveServicesAccountStatus,
) -> bool {
    !subject.deleting
        && subject.resource.spec.reconcile_policy == ReconcilePolicy::Manage
        && status.arm_id.is_none()
        && status.pending_operation.is_none()
        // A stalled one (a name owned by another, a refused spec) waits for a change, not a turn.
        && !condition_is_true(status, status::STALLED)
}

/// Takes this reconcile's turn in ARM's write budget; when it is not yet due, the outcome that
/// says so and brings the reconcile back then (see `engine/write_turns.rs`).
pub(super) fn wait_for_turn(
    arm: &ArmClient,
    pass: &mut Pass<'_>,
    subject: &Subject<'_>,
) -> Option<Outcome> {
    let subscription = &subject.target.subscription_id;
    match subject.turns.take(arm, subscription, &subject.writer) {
        Turn::Later(wait) => {
            // The same words every time it comes back, so that waiting writes no status.
            let message = format!(
                "many writes to subscription {subscription} wait for ARM's write budget (per principal and subscription); this one has booked its turn"
            );
            let summary = Summary::progressing("WaitingForWriteTurn", &message);
            Some(pass.finish(summary, Next::After(wait)))
        }
        turn => {
            pass.turn = Some(turn);
            None
        }
    }
}

/// Starts the plan's first write, if any. A long-running write ends the reconcile (the next one
/// resumes it); a synchronous one lets the next round observe what it did.
pub(super) async fn act(
    arm: &ArmClient,
    pass: &mut Pass<'_>,
    subject: &Subject<'_>,
    plan: &Plan,
    searched_elsewhere: &mut bool,
) -> Step {
    let Some(action) = plan.actions.first() else {
        return Step::done(pass.finish_verdict(&plan.verdict));
    };
    let account_id = subject.target.id();
    let a_write = matches!(
        action,
        Action::Create(_) | Action::Restore { .. } | Action::Patch { .. }
    );
    if a_write
        && pass.turn.is_none()
        && let Some(outcome) = wait_for_turn(arm, pass, subject)
    {
        return Step::done(outcome);
    }
    if let Err(holder) = subject
        .gate
        .try_enter(&account_id, &subject.writer, pass.now)
    {
        return Step::done(pass.finish(
            Summary::progressing(
                "WaitingForAccountWrite",
                &format!(
                    "another write on the account is in flight ({holder}); this one follows it"
                ),
            ),
            Next::After(GATE_WAIT),
        ));
    }
    // Only the first write uses a booked token; any later one in this reconcile queues.
    let booked = match pass.turn {
        Some(Turn::Booked(booking)) if a_write => {
            pass.turn = Some(Turn::Now);
            Some(booking)
        }
        _ => None,
    };
    let executed = match booked {
        Some(booking) => with_booked_token(booking, execute(arm, &subject.target, action)).await,
        None => execute(arm, &subject.target, action).await,
    };
    subject.group_listings.forget(arm, &subject.target);
    if matches!(action, Action::DeleteDeployment(_)) {
        // The account's list no longer says what is there, for any client.
        subject.listings.forget(&account_id);
    }
    if !matches!(executed, Ok(Some(_))) {
        subject.gate.leave(&account_id, &subject.writer);
    }
    match executed {
        Ok(Some(operation)) => {
            subject
                .gate
                .started(&account_id, &subject.writer, &operation);
            pass.wrote(action);
            let next = Next::After(arm.poll_interval(&operation));
            pass.status.pending_operation = Some(Box::new(operation));
            Step::done(pass.finish(Summary::from_verdict(&plan.verdict), next))
        }
        Ok(None) => {
            pass.wrote(action);
            if matches!(action, Action::Purge(_)) {
                pass.copy_gone(OperationKind::Purge);
            }
            Step::Continue(None)
        }
        Err(error) if !*searched_elsewhere && blocked_by_a_copy(action, &error) => {
            *searched_elsewhere = true;
            match find_copy(arm, subject).await {
                Ok(Some(copy)) => Step::Continue(Some(Box::new(Observation {
                    soft_deleted: Some(copy),
                    ..Observation::default()
                }))),
                Ok(None) => Step::done(pass.finish_error(&error, Some(action.kind()))),
                Err(list_error) => Step::done(pass.finish_error(&list_error, None)),
            }
        }
        Err(error) => Step::done(pass.finish_error(&error, Some(action.kind()))),
    }
}

/// ARM refused a create because a soft-deleted copy holds the name or the subdomain.
pub(super) fn blocked_by_a_copy(action: &Action, error: &ArmError) -> bool {
    matches!(action, Action::Create(_))
        && (error.has_code(codes::FLAG_MUST_BE_SET_FOR_RESTORE)
            || error.has_code(codes::CUSTOM_DOMAIN_IN_USE))
}

pub(super) async fn execute(
    arm: &ArmClient,
    target: &AccountRef,
    action: &Action,
) -> Result<Option<PendingOperation>, ArmError> {
    match action {
        Action::Create(body) => Ok(arm.create_account(target, body).await?.operation),
        Action::Restore { location } => Ok(arm.restore_account(target, location).await?.operation),
        Action::Patch { body, .. } => Ok(arm.update_account(target, body).await?.operation),
        Action::Delete => arm.delete_account(target).await,
        Action::DeleteDeployment(name) => {
            arm.delete_deployment(&DeploymentRef::new(target, name))
                .await
        }
        Action::Purge(at) => arm.purge_deleted_account(at).await,
    }
}
