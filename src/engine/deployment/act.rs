//! Running a deployment's write.

use crate::arm::ArmClient;
use crate::arm::deployments::DeploymentRef;
use crate::arm::error::ArmError;
use crate::arm::lro::PendingOperation;
use crate::planner::deployment::DeploymentAction;

pub(super) async fn execute(
    arm: &ArmClient,
    target: &DeploymentRef,
    action: &DeploymentAction,
) -> Result<Option<PendingOperation>, ArmError> {
    match action {
        DeploymentAction::Create(body) => {
            arm.put_deployment(target, body, crate::arm::OperationKind::Create)
                .await
        }
        DeploymentAction::Update { body, .. } => {
            arm.put_deployment(target, body, crate::arm::OperationKind::Update)
                .await
        }
        DeploymentAction::Patch { body, .. } => arm.patch_deployment(target, body).await,
        DeploymentAction::Delete => arm.delete_deployment(target).await,
    }
}
