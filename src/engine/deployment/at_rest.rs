//! A deployment reconcile at rest, answered from its account's latest list of deployments.

use super::outcome::DeploymentOutcome;
use super::pass::DeploymentPass;
use super::rounds::Job;
use crate::api::CognitiveServicesDeployment;
use crate::arm::ArmClient;
use crate::engine::Engine;
use crate::planner::Verdict;
use crate::planner::status::{self};

impl Engine {
    /// A reconcile with nothing in flight, answered by its account's latest list of
    /// deployments (see [`crate::engine::listings`]) made with the same client: the outcome
    /// when the list shows nothing to do, else `None` (read the deployment itself). Any
    /// reconcile may be answered so, a stateless `apply` and a spec change included: the list
    /// only ever concludes that the deployment already matches, and anything else (a
    /// difference, an absence) is read afresh before a write is planned.
    pub(super) fn settled_by_listing(
        &self,
        arm: &ArmClient,
        job: &Job<'_>,
        pass: &mut DeploymentPass<'_>,
    ) -> Option<DeploymentOutcome> {
        let Job {
            resource,
            account,
            target,
            deleting,
        } = *job;
        if deleting || pass.status.pending_operation.is_some() {
            return None;
        }
        let max_age = jiff::SignedDuration::try_from(resource.spec.resync()?).ok()?;
        let listed =
            self.listings
                .lookup(arm, &target.account.id(), &target.name, pass.now, max_age)?;
        let plan = self.plan_for(
            resource,
            account,
            Some(target),
            listed.as_ref(),
            None,
            deleting,
        );
        if !plan.actions.is_empty() || plan.verdict != Verdict::Ready {
            return None;
        }
        pass.record_observation(listed.as_ref());
        pass.record_plan(&plan, target);
        Some(pass.finish_verdict(&plan.verdict))
    }
}

/// Ready for its current generation, with nothing in flight: a resync, not a change.
pub(super) fn is_settled(resource: &CognitiveServicesDeployment) -> bool {
    resource.status.as_ref().is_some_and(|status| {
        status.pending_operation.is_none()
            && status.observed_generation == resource.metadata.generation
            && status::find(&status.conditions, status::READY).is_some_and(|c| c.status == "True")
    })
}
