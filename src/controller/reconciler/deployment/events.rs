//! The deployment's events: one per ARM write, and a Warning on a new failure reason.

use kube::Resource;
use kube::runtime::events::EventType;

use crate::api::{CognitiveServicesDeployment, CognitiveServicesDeploymentStatus};
use crate::arm::OperationKind;
use crate::controller::reconciler::state::Reconciler;
use crate::engine::DeploymentOutcome;
use crate::planner::status::{self};

impl Reconciler {
    pub(super) async fn publish_deployment_events(
        &self,
        resource: &CognitiveServicesDeployment,
        outcome: &DeploymentOutcome,
    ) {
        let reference = resource.object_ref(&());
        for write in &outcome.writes {
            let (reason, action) = deployment_write_reason(write.kind);
            self.publish_to(
                &reference,
                EventType::Normal,
                reason,
                action,
                &write.description,
            )
            .await;
        }
        let failing = outcome.error.is_some()
            || status::find(&outcome.status.conditions, status::STALLED)
                .is_some_and(|c| c.status == "True");
        if failing {
            self.warn_deployment_on_new_reason(resource, &outcome.status, "")
                .await;
        }
    }

    pub(super) async fn warn_deployment_on_new_reason(
        &self,
        resource: &CognitiveServicesDeployment,
        status: &CognitiveServicesDeploymentStatus,
        prefix: &str,
    ) {
        let before = resource
            .status
            .as_ref()
            .and_then(|s| status::find(&s.conditions, status::READY))
            .map(|c| c.reason.clone());
        let Some(ready) = status::find(&status.conditions, status::READY) else {
            return;
        };
        if before.as_deref() == Some(ready.reason.as_str()) {
            return;
        }
        let note = format!("{prefix}{}", ready.message);
        self.publish_to(
            &resource.object_ref(&()),
            EventType::Warning,
            &ready.reason,
            "Reconcile",
            &note,
        )
        .await;
    }
}

/// The event's reason and action for a deployment write.
pub(super) fn deployment_write_reason(kind: OperationKind) -> (&'static str, &'static str) {
    match kind {
        OperationKind::Create => ("Created", "CreateDeployment"),
        OperationKind::Delete => ("Deleted", "DeleteDeployment"),
        _ => ("Updated", "UpdateDeployment"),
    }
}
