//! The deployment's status write.

use crate::api::{CognitiveServicesDeployment, CognitiveServicesDeploymentStatus};
use crate::controller::error::Error;
use crate::controller::reconciler::state::Reconciler;
use crate::controller::reconciler::status_write::apply_status;

impl Reconciler {
    pub(super) async fn write_deployment_status(
        &self,
        resource: &CognitiveServicesDeployment,
        status: &CognitiveServicesDeploymentStatus,
    ) -> Result<Option<CognitiveServicesDeployment>, Error> {
        apply_status(
            self.deployments(resource),
            resource,
            resource.status.as_ref(),
            status,
        )
        .await
    }
}
