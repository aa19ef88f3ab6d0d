//! One reconcile of a deployment: resume its operation, observe (its account's list may settle a
//! resync), plan, run the first write through the account's gate; and `plan`'s preview.

use std::time::Duration;

use jiff::Timestamp;

use super::act::{Written, execute};
use super::at_rest::is_settled;
use super::context::AccountContext;
use super::gate::{Gate, waiting_for_the_gate};
use super::outcome::{DeploymentOutcome, DeploymentPreview};
use super::pass::DeploymentPass;
use crate::api::{CognitiveServicesDeployment, DeploymentDeletionPolicy, ReconcilePolicy};
use crate::arm::ArmClient;
use crate::arm::deployments::{Deployment, DeploymentRef};
use crate::arm::error::ArmError;
use crate::arm::lro::PendingOperation;
use crate::arm::models::AccountRef;
use crate::engine::Engine;
use crate::engine::common::{MAX_ROUNDS, Next, owner_id_of};
use crate::planner::Verdict;
use crate::planner::deployment::{
    AccountState, DeploymentPlan, DeploymentPlanInput, plan_deployment,
};
use crate::planner::status::Summary;

impl Engine {
    /// Reads ARM and plans, writing nothing.
    pub async fn preview_deployment(
        &self,
        arm: &ArmClient,
        resource: &CognitiveServicesDeployment,
        account: &AccountContext,
        deleting: bool,
    ) -> Result<DeploymentPreview, ArmError> {
        let target = self.deployment_target(resource, account);
        let observed = match &target {
            Some(t) if resource.spec.reconcile_policy != ReconcilePolicy::Pause => {
                arm.get_deployment(t).await?
            }
            _ => None,
        };
        let pending = resource
            .status
            .as_ref()
            .and_then(|s| s.pending_operation.as_ref());
        let plan = self.plan_for(
            resource,
            account,
            target.as_ref(),
            observed.as_ref(),
            pending,
            deleting,
        );
        Ok(DeploymentPreview {
            target,
            deployment: observed,
            plan,
        })
    }

    pub(super) fn plan_for(
        &self,
        resource: &CognitiveServicesDeployment,
        account: &AccountContext,
        target: Option<&DeploymentRef>,
        observed: Option<&Deployment>,
        pending: Option<&PendingOperation>,
        deleting: bool,
    ) -> DeploymentPlan {
        let placeholder;
        let target = match target {
            Some(t) => t,
            None => {
                placeholder = DeploymentRef::new(&AccountRef::new("", "", ""), "");
                &placeholder
            }
        };
        let managed_before = resource
            .status
            .as_ref()
            .and_then(|s| s.arm_id.as_deref())
            .is_some_and(|id| id.eq_ignore_ascii_case(&target.id()));
        plan_deployment(&DeploymentPlanInput {
            spec: &resource.spec,
            target,
            owner: &self.owner_of_key(&owner_id_of(&resource.metadata)),
            account: &account.state,
            deployment: observed,
            pending,
            deleting,
            managed_before,
        })
    }

    /// One reconcile of a deployment: resume its operation, observe, plan, start the first write.
    pub async fn reconcile_deployment(
        &self,
        arm: &ArmClient,
        resource: &CognitiveServicesDeployment,
        account: &AccountContext,
        deleting: bool,
        now: Timestamp,
    ) -> DeploymentOutcome {
        let mut pass = DeploymentPass::new(resource, now);
        if account.state == AccountState::Observed {
            pass.ready_message = format!(
                "the deployment matches the spec; CognitiveServicesAccount {} is reconcilePolicy Observe, so it is observed only",
                resource.spec.account_ref.name
            );
        }
        let target = match self.before_arm(resource, account, deleting, &mut pass) {
            Ok(target) => target,
            Err(outcome) => return *outcome,
        };
        let gate = Gate {
            engine: self,
            account_id: target.account.id(),
            writer: format!(
                "CognitiveServicesDeployment {}",
                owner_id_of(&resource.metadata)
            ),
        };
        if pass.status.pending_operation.is_none() {
            // Started by a reconcile whose status write this (cached) object predates.
            pass.status.pending_operation = gate.operation();
        }
        let job = Job {
            resource,
            account,
            target: &target,
            deleting,
        };
        let outcome = if let Some(settled) = self.settled_by_listing(arm, &job, &mut pass) {
            settled
        } else if let Some(waiting) = self.queue_for_the_gate(resource, &gate, &mut pass) {
            waiting
        } else {
            self.rounds(arm, &job, &gate, pass).await
        };
        // Whatever happened, an account whose write here is not in flight is free for others.
        if outcome.status.pending_operation.is_none() {
            gate.leave();
        }
        outcome
    }

    /// A deployment that is likely to write (not settled, nothing in flight) takes its place
    /// at the account's gate before reading anything: while another write runs, it waits
    /// without spending ARM reads on an observation it could not act on.
    pub(super) fn queue_for_the_gate(
        &self,
        resource: &CognitiveServicesDeployment,
        gate: &Gate<'_>,
        pass: &mut DeploymentPass<'_>,
    ) -> Option<DeploymentOutcome> {
        if pass.status.pending_operation.is_some() || is_settled(resource) {
            return None;
        }
        let holder = gate.enter(pass.now).err()?;
        Some(waiting_for_the_gate(pass, &holder))
    }

    /// Observe-plan-act rounds with the gate's bookkeeping.
    pub(super) async fn rounds(
        &self,
        arm: &ArmClient,
        job: &Job<'_>,
        gate: &Gate<'_>,
        mut pass: DeploymentPass<'_>,
    ) -> DeploymentOutcome {
        let Job {
            resource,
            account,
            target,
            deleting,
        } = *job;
        let mut known: Option<Option<Deployment>> = None;
        for _ in 0..MAX_ROUNDS {
            if let Some(operation) = pass.status.pending_operation.clone() {
                match self
                    .resume_deployment(arm, &mut pass, gate, target, &operation)
                    .await
                {
                    Ok(Some(confirmed)) => known = Some(Some(confirmed)),
                    Ok(None) => {}
                    Err(outcome) => return *outcome,
                }
            }
            let observed = match known.take() {
                Some(observed) => observed,
                None => match arm.get_deployment(target).await {
                    Ok(observed) => observed,
                    Err(error) => return pass.finish_error(&error),
                },
            };
            pass.record_observation(observed.as_ref());
            let plan = self.plan_for(
                resource,
                account,
                Some(target),
                observed.as_ref(),
                None,
                deleting,
            );
            pass.record_plan(&plan, target);
            if plan.foreign {
                // Someone else's deployment: the verdict says so, the status shows none of it.
                pass.record_observation(None);
            }
            let Some(action) = plan.actions.first() else {
                return pass.finish_verdict(&plan.verdict);
            };
            if let Err(holder) = gate.enter(pass.now) {
                return waiting_for_the_gate(&mut pass, &holder);
            }
            let executed = execute(arm, target, action).await;
            if executed.is_ok() {
                // The account's list no longer says what is there, for any client: its next
                // reconcile lists again rather than serve a resync from it.
                self.listings.forget(&target.account.id());
            }
            match executed {
                Ok(Written::Operation(operation)) => {
                    pass.wrote(action);
                    gate.started(&operation);
                    let next = Next::After(arm.poll_interval(&operation));
                    pass.status.pending_operation = Some(operation);
                    return pass.finish(Summary::from_verdict(&plan.verdict), next);
                }
                Ok(Written::Done(left)) => {
                    pass.wrote(action);
                    // The answer showed what the write left: the next round plans on it.
                    known = *left;
                }
                Err(error) => return pass.finish_error(&error),
            }
        }
        pass.finish(
            Summary::progressing("Reconciling", "more work to do"),
            Next::After(Duration::from_secs(1)),
        )
    }

    /// Where the deployment is, or the answer that needs no ARM call: an invalid spec, Pause,
    /// a deletion that leaves Azure alone or whose account resource is gone, an account that
    /// is not Ready (or missing).
    pub(super) fn before_arm(
        &self,
        resource: &CognitiveServicesDeployment,
        account: &AccountContext,
        deleting: bool,
        pass: &mut DeploymentPass<'_>,
    ) -> Result<DeploymentRef, Box<DeploymentOutcome>> {
        let name = resource.metadata.name.as_deref().unwrap_or_default();
        if let Err(e) = resource.spec.validate(name) {
            // A deployment of ours in Azure (a spec that stopped validating, say after an
            // upgrade) keeps its finalizer: letting go would leave it billing. With nothing of
            // it in Azure, Orphan, or its account resource gone (whose deletion policy took
            // care of its deployments), there is nothing to wait for.
            let in_azure = resource.status.as_ref().is_some_and(|s| s.arm_id.is_some());
            let waits = in_azure && !leaves_deployment_alone(resource) && account.target.is_some();
            pass.deletion_finished = deleting && !waits;
            let message = if deleting && !pass.deletion_finished {
                format!("the deletion policy waits for a valid spec: {e}")
            } else {
                e.to_string()
            };
            let summary = Summary::stalled("InvalidSpec", &message);
            return Err(Box::new(pass.finish(summary, Next::Resync)));
        }
        if resource.spec.reconcile_policy == ReconcilePolicy::Pause {
            pass.deletion_finished = deleting;
            return Err(Box::new(pass.finish_verdict(&Verdict::Paused)));
        }
        if deleting && leaves_deployment_alone(resource) {
            let message = "the deployment is left in Azure (deletionPolicy Orphan or reconcilePolicy Observe)";
            return Err(Box::new(pass.finish_verdict(&Verdict::Deleted {
                message: message.into(),
            })));
        }
        if deleting && account.observe_only {
            let message = format!(
                "the deployment is left in Azure: CognitiveServicesAccount {} is reconcilePolicy Observe, so its deployments are observed only; no ARM call",
                resource.spec.account_ref.name
            );
            return Err(Box::new(pass.finish_verdict(&Verdict::Deleted { message })));
        }
        let target = self.deployment_target(resource, account);
        let waiting = resource
            .status
            .as_ref()
            .is_none_or(|s| s.pending_operation.is_none());
        match target {
            // Deleting the account resource deleted its deployments first (or, with Orphan,
            // left them with the account): nothing is left that this may touch.
            None if deleting => Err(Box::new(pass.finish_verdict(&Verdict::Deleted {
                message: format!(
                    "CognitiveServicesAccount {} is gone: its deletion policy took care of its deployments; no ARM call",
                    resource.spec.account_ref.name
                ),
            }))),
            // Nothing to do in ARM until the account is Ready (or observed): no call at all.
            None => Err(Box::new(self.verdict_only(resource, account, None, pass))),
            Some(target) if !deleting && waiting && !may_read(&account.state) => Err(Box::new(
                self.verdict_only(resource, account, Some(&target), pass),
            )),
            Some(target) => Ok(target),
        }
    }

    pub(super) fn verdict_only(
        &self,
        resource: &CognitiveServicesDeployment,
        account: &AccountContext,
        target: Option<&DeploymentRef>,
        pass: &mut DeploymentPass<'_>,
    ) -> DeploymentOutcome {
        let plan = self.plan_for(resource, account, target, None, None, false);
        pass.finish_verdict(&plan.verdict)
    }
}

/// What one deployment reconcile works on.
#[derive(Clone, Copy)]
pub(super) struct Job<'a> {
    pub(super) resource: &'a CognitiveServicesDeployment,
    pub(super) account: &'a AccountContext,
    pub(super) target: &'a DeploymentRef,
    pub(super) deleting: bool,
}

/// Whether the account stands so that its deployments may be read (and, when Ready, written).
fn may_read(state: &AccountState) -> bool {
    matches!(state, AccountState::Ready | AccountState::Observed)
}

pub(super) fn leaves_deployment_alone(resource: &CognitiveServicesDeployment) -> bool {
    resource.spec.deletion_policy == DeploymentDeletionPolicy::Orphan
        || resource.spec.reconcile_policy == ReconcilePolicy::Observe
}
