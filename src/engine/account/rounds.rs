//! One reconcile of an account: resume a pending operation, observe, plan, act, for a few
//! rounds; and `plan`'s preview.

use std::time::Duration;

use jiff::Timestamp;

use super::act::{act, likely_to_create, wait_for_turn};
use super::observe::{Observation, observe};
use super::outcome::{Outcome, Preview};
use super::pass::Pass;
use super::resume::resume;
use super::subject::leaves_account_alone;
use crate::api::{CognitiveServicesAccount, ReconcilePolicy};
use crate::arm::ArmClient;
use crate::engine::Engine;
use crate::engine::common::{EngineError, MAX_ROUNDS, Next, outlived};
use crate::engine::write_turns::Turn;
use crate::planner::Verdict;
use crate::planner::status::Summary;

impl Engine {
    /// Reads ARM and plans, writing nothing.
    pub async fn preview(
        &self,
        arm: &ArmClient,
        resource: &CognitiveServicesAccount,
        deleting: bool,
    ) -> Result<Preview, EngineError> {
        let target = self.target(resource).map_err(EngineError::InvalidSpec)?;
        let subject = self.subject(resource, target, deleting);
        let observed = if resource.spec.reconcile_policy == ReconcilePolicy::Pause {
            Observation::default()
        } else {
            observe(arm, &subject, true).await?
        };
        let pending = resource
            .status
            .as_ref()
            .and_then(|s| s.pending_operation.as_deref());
        let plan = subject.plan(&observed, pending);
        Ok(Preview {
            target: subject.target,
            account: observed.account,
            soft_deleted: observed.soft_deleted,
            plan,
        })
    }

    /// One reconcile: resume a pending operation, observe, plan, start the first write.
    pub async fn reconcile(
        &self,
        arm: &ArmClient,
        resource: &CognitiveServicesAccount,
        deleting: bool,
        now: Timestamp,
    ) -> Outcome {
        let mut pass = Pass::new(resource, now);
        // Boxed: the rounds' state is large, and would otherwise sit in every caller's future.
        let outcome = Box::pin(self.reconcile_rounds(arm, &mut pass, deleting)).await;
        // A turn taken for a write that did not happen (the gate was busy, nothing to write,
        // an error first) goes back to the line.
        if let (Some(Turn::Booked(booking)), Ok(target)) = (pass.turn, self.target(resource)) {
            arm.release_write_booking(&target.subscription_id, booking);
        }
        outcome
    }

    pub(super) async fn reconcile_rounds(
        &self,
        arm: &ArmClient,
        pass: &mut Pass<'_>,
        deleting: bool,
    ) -> Outcome {
        let resource = pass.resource;
        let target = match self.target(resource) {
            Ok(target) => target,
            Err(e) => {
                // Orphan (or Observe) needs no target to be done: an invalid spec must not hold
                // the finalizer of a resource whose deletion makes no ARM call anyway.
                pass.deletion_finished = deleting && leaves_account_alone(resource);
                return pass.finish_stalled("InvalidSpec", &e.to_string());
            }
        };
        if resource.spec.reconcile_policy == ReconcilePolicy::Pause {
            pass.deletion_finished = deleting;
            return pass.finish(Summary::from_verdict(&Verdict::Paused), Next::Done);
        }
        let mut subject = self.subject(resource, target, deleting);
        subject.deployments_due = self.deployments_due(arm, &subject, pass.now);
        if deleting && leaves_account_alone(resource) {
            // The planner's answer needs no observation: no ARM call at all.
            let plan = subject.plan(&Observation::default(), None);
            return pass.finish_verdict(&plan.verdict);
        }
        // What the next round already knows (the account read back to confirm an operation, or
        // a copy found after a refused create), so that it need not read it again.
        if pass.status.pending_operation.is_none() {
            // Started by a reconcile whose status write this (cached) object predates.
            pass.status.pending_operation = self
                .gate
                .operation_of(&subject.target.id(), &subject.writer)
                .map(Box::new);
        }
        if let Some(outcome) = self.resync_from_listing(arm, pass, &subject).await {
            return outcome;
        }
        // A create waits for its turn before reading anything, so that coming back later
        // costs no second read.
        if likely_to_create(&subject, &pass.status)
            && let Some(outcome) = wait_for_turn(arm, pass, &subject)
        {
            return outcome;
        }
        let mut known: Option<Observation> = None;
        let mut searched_elsewhere = false;
        for _ in 0..MAX_ROUNDS {
            if let Some(operation) = pass.status.pending_operation.clone() {
                if outlived(&operation, pass.now) {
                    tracing::warn!(kind = ?operation.kind, started_at = %operation.started_at, "pending operation outlived its age limit: reading the account instead");
                    pass.status.pending_operation = None;
                    continue;
                }
                // The status is not authority: a handle there may have been written by anyone
                // who may write `/status`, and polling it uses the operator's identity.
                if !operation.acts_on_account(&subject.target, arm.endpoint()) {
                    tracing::warn!(resource_id = %operation.resource_id, url = %operation.url, "the pending operation in the status does not act on this resource's account: dropping it and reading the account");
                    pass.status.pending_operation = None;
                    continue;
                }
                match resume(arm, pass, &subject, &operation).await {
                    Step::Continue(confirmed) => known = confirmed.map(|o| *o),
                    Step::Done(outcome) => return *outcome,
                }
            }
            let observed = match known.take() {
                Some(observed) => observed,
                // A copy the status remembers is searched for at once, not found by a refused write.
                None => match observe(arm, &subject, pass.status.soft_deleted_copy.is_some()).await
                {
                    Ok(observed) => observed,
                    Err(error) => return pass.finish_error(&error, None),
                },
            };
            let plan = subject.plan_in(&observed, None, &pass.status);
            self.record(arm, pass, &subject, &observed, &plan);
            match act(arm, pass, &subject, &plan, &mut searched_elsewhere).await {
                Step::Continue(learned) => known = learned.map(|o| *o),
                Step::Done(outcome) => return *outcome,
            }
        }
        pass.finish(
            Summary::progressing("Reconciling", "more work to do"),
            Next::After(Duration::from_secs(1)),
        )
    }
}

/// Where one step of a reconcile leaves it.
pub(super) enum Step {
    /// On to the next round, which already knows this much.
    Continue(Option<Box<Observation>>),
    /// The reconcile is over.
    Done(Box<Outcome>),
}

impl Step {
    pub(super) fn done(outcome: Outcome) -> Self {
        Step::Done(Box::new(outcome))
    }
}
