//! The account's status write and its conditions.

use jiff::Timestamp;

use crate::api::{CognitiveServicesAccount, CognitiveServicesAccountStatus};
use crate::controller::error::Error;
use crate::controller::metrics::ReconcileResult;
use crate::controller::reconciler::state::Reconciler;
use crate::controller::reconciler::status_write::{apply_status, classify_conditions};
use crate::planner::status::{self, Summary};

impl Reconciler {
    pub(super) async fn write_status(
        &self,
        resource: &CognitiveServicesAccount,
        status: &CognitiveServicesAccountStatus,
    ) -> Result<Option<CognitiveServicesAccount>, Error> {
        apply_status(
            self.accounts(resource),
            resource,
            resource.status.as_ref(),
            status,
        )
        .await
    }
}

/// Replaces the conditions (keeping transition times of unchanged ones) and the generation.
pub(super) fn restate(
    status: &mut CognitiveServicesAccountStatus,
    resource: &CognitiveServicesAccount,
    summary: &Summary,
    now: Timestamp,
) {
    let previous = resource
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let generation = resource.metadata.generation;
    status.conditions = status::conditions(summary, generation, &previous, &now.to_string());
    status.observed_generation = generation;
}

pub(super) fn ready_reason(status: &CognitiveServicesAccountStatus) -> Option<String> {
    status::find(&status.conditions, status::READY).map(|c| c.reason.clone())
}

pub(super) fn classify(status: &CognitiveServicesAccountStatus) -> ReconcileResult {
    classify_conditions(&status.conditions)
}
