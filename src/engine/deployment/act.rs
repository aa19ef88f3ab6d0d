//! Running a deployment's write.

use crate::arm::ArmClient;
use crate::arm::deployments::{Deployment, DeploymentRef};
use crate::arm::error::ArmError;
use crate::arm::lro::PendingOperation;
use crate::planner::deployment::DeploymentAction;

/// Where a deployment's write left it.
pub(super) enum Written {
    /// ARM runs it as an operation, to follow.
    Operation(PendingOperation),
    /// Done at once: the deployment as ARM's answer shows it (`Some(None)`: deleted), or
    /// `None` when only a new read tells.
    Done(Box<Option<Option<Deployment>>>),
}

pub(super) async fn execute(
    arm: &ArmClient,
    target: &DeploymentRef,
    action: &DeploymentAction,
) -> Result<Written, ArmError> {
    use crate::arm::OperationKind::{Create, Update};
    let write = match action {
        DeploymentAction::Create(body) => arm.put_deployment(target, body, Create).await?,
        DeploymentAction::Update { body, .. } => arm.put_deployment(target, body, Update).await?,
        // A PATCH's answer was never recorded: whether it shows the whole deployment is not
        // known, so the next round reads it.
        DeploymentAction::Patch { body, .. } => {
            let write = arm.patch_deployment(target, body).await?;
            return Ok(match write.operation {
                Some(operation) => Written::Operation(operation),
                None => Written::Done(Box::new(None)),
            });
        }
        // A DELETE answered 200 (or 204, or 404) is done: the deployment is gone.
        DeploymentAction::Delete => {
            return Ok(match arm.delete_deployment(target).await? {
                Some(operation) => Written::Operation(operation),
                None => Written::Done(Box::new(Some(None))),
            });
        }
    };
    Ok(match write.operation {
        Some(operation) => Written::Operation(operation),
        None => Written::Done(Box::new(write.finished().map(Some))),
    })
}
