//! Polling the operation a previous deployment reconcile started.

use super::gate::Gate;
use super::outcome::DeploymentOutcome;
use super::pass::DeploymentPass;
use crate::arm::ArmClient;
use crate::arm::deployments::{Deployment, DeploymentRef};
use crate::arm::lro::{PendingOperation, PollStatus};
use crate::engine::Engine;
use crate::engine::common::{Next, outlived};
use crate::planner::deployment::waiting_for;
use crate::planner::status::Summary;

impl Engine {
    /// Polls the operation a previous reconcile started: the deployment it confirmed (when it
    /// succeeded and left one), nothing (observe afresh), or the reconcile's end.
    pub(super) async fn resume_deployment(
        &self,
        arm: &ArmClient,
        pass: &mut DeploymentPass<'_>,
        gate: &Gate<'_>,
        target: &DeploymentRef,
        operation: &PendingOperation,
    ) -> Result<Option<Deployment>, Box<DeploymentOutcome>> {
        if outlived(operation, pass.now) {
            tracing::warn!(kind = ?operation.kind, "pending deployment operation outlived its age limit: reading the deployment instead");
            pass.status.pending_operation = None;
            gate.leave();
            return Ok(None);
        }
        // The status is not authority: a handle there may have been written by anyone who may
        // write `/status`, and polling it uses the operator's identity. The deployment's
        // provisioningState tells whether a write of ours still runs.
        if !operation.acts_on_deployment(target, arm.endpoint()) {
            tracing::warn!(resource_id = %operation.resource_id, url = %operation.url, "the pending operation in the status does not act on this deployment: dropping it and reading the deployment");
            pass.status.pending_operation = None;
            return Ok(None);
        }
        let polled = arm.poll_deployment(operation).await;
        match &polled {
            Ok(PollStatus::Running { .. }) => gate.hold(operation, pass.now),
            Err(_) => {}
            Ok(_) => gate.leave(),
        }
        match polled {
            Ok(PollStatus::Running { retry_after }) => {
                let verdict = waiting_for(operation).verdict;
                Err(Box::new(pass.finish(
                    Summary::from_verdict(&verdict),
                    Next::After(retry_after),
                )))
            }
            Ok(PollStatus::Succeeded(deployment)) => {
                pass.status.pending_operation = None;
                Ok(deployment.map(|d| *d))
            }
            Ok(PollStatus::Unknown) => {
                pass.status.pending_operation = None;
                Ok(None)
            }
            Ok(PollStatus::Failed(error)) => {
                pass.status.pending_operation = None;
                Err(Box::new(pass.finish_error(&error)))
            }
            Err(error) => Err(Box::new(pass.finish_error(&error))),
        }
    }
}
