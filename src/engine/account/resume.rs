//! Polling the operation a previous reconcile started.

use super::observe::Observation;
use super::pass::Pass;
use super::rounds::Step;
use super::subject::Subject;
use crate::arm::ArmClient;
use crate::arm::lro::{OperationKind, PendingOperation, PollStatus};
use crate::engine::common::Next;
use crate::planner;
use crate::planner::status::Summary;

/// Polls the operation a previous reconcile started.
pub(super) async fn resume(
    arm: &ArmClient,
    pass: &mut Pass<'_>,
    subject: &Subject<'_>,
    operation: &PendingOperation,
) -> Step {
    let account_id = subject.target.id();
    let polled = arm.poll(operation).await;
    match &polled {
        Ok(PollStatus::Running { .. }) => {
            subject
                .gate
                .hold(&account_id, &subject.writer, operation, pass.now)
        }
        Err(_) => {}
        Ok(_) => subject.gate.leave(&account_id, &subject.writer),
    }
    match polled {
        Ok(PollStatus::Running { retry_after }) => {
            let plan = subject.plan(&Observation::default(), Some(operation));
            Step::done(pass.finish(
                Summary::from_verdict(&plan.verdict),
                Next::After(retry_after),
            ))
        }
        Ok(PollStatus::Succeeded(account)) => {
            pass.operation_succeeded(operation);
            let ours = account
                .as_deref()
                .is_some_and(|a| planner::is_managed_by(a, &subject.owner, false));
            if operation.kind == OperationKind::Create && !operation.on_a_deployment() && ours {
                // A new account of ours has no deployments: as good as a list, and no read.
                // (Another's, after a lost create race, is not listed at all.)
                subject
                    .listings
                    .remember(arm, &subject.target.id(), &[], pass.now);
            }
            // A deletion goes on from a fresh observation, whose list of deployments is made in
            // this pass: the account confirmed by an Update or Restore still holds them all, and
            // confirming a deletion's step leaves nothing to go on.
            if subject.deleting {
                return Step::Continue(None);
            }
            Step::Continue(account.map(|a| {
                Box::new(Observation {
                    account: Some(*a),
                    ..Observation::default()
                })
            }))
        }
        Ok(PollStatus::Unknown) => {
            tracing::warn!(kind = ?operation.kind, "the operation's outcome cannot be read and the account is absent: observing afresh");
            pass.status.pending_operation = None;
            Step::Continue(None)
        }
        Ok(PollStatus::Failed(error)) => {
            pass.status.pending_operation = None;
            Step::done(pass.finish_error(&error, Some(operation.kind)))
        }
        Err(error) => Step::done(pass.finish_error(&error, Some(operation.kind))),
    }
}
