//! The account's events: one per ARM write, and a Warning when the Ready reason turns to a
//! failure.

use kube::Resource;
use kube::runtime::events::EventType;

use super::status::ready_reason;
use crate::api::{CognitiveServicesAccount, CognitiveServicesAccountStatus};
use crate::arm::OperationKind;
use crate::controller::reconciler::state::Reconciler;
use crate::engine::{Outcome, condition_is_true};
use crate::planner::status::{self};

impl Reconciler {
    pub(super) async fn publish_outcome_events(
        &self,
        resource: &CognitiveServicesAccount,
        outcome: &Outcome,
        status: &CognitiveServicesAccountStatus,
        deleting: bool,
    ) {
        for write in &outcome.writes {
            let (reason, action) = write_reason(write.kind);
            let note = if write.fields.is_empty() {
                write.description.clone()
            } else {
                format!(
                    "{} (fields: {})",
                    write.description,
                    write.fields.join(", ")
                )
            };
            self.publish(resource, EventType::Normal, reason, action, &note)
                .await;
        }
        let failing = outcome.error.is_some() || condition_is_true(status, status::STALLED);
        if deleting && failing {
            // The finalizer stays until this is fixed; say so where `kubectl describe` shows it.
            self.warn_on_new_reason_with(resource, status, "the deletion policy cannot complete: ")
                .await;
        } else {
            self.warn_on_new_reason(resource, status, failing).await;
        }
    }

    /// A Warning event when the Ready reason changes to a failure reason (not on every retry).
    pub(super) async fn warn_on_new_reason(
        &self,
        resource: &CognitiveServicesAccount,
        status: &CognitiveServicesAccountStatus,
        failing: bool,
    ) {
        if failing {
            self.warn_on_new_reason_with(resource, status, "").await;
        }
    }

    pub(super) async fn warn_on_new_reason_with(
        &self,
        resource: &CognitiveServicesAccount,
        status: &CognitiveServicesAccountStatus,
        prefix: &str,
    ) {
        let before = resource.status.as_ref().and_then(ready_reason);
        let Some(ready) = status::find(&status.conditions, status::READY) else {
            return;
        };
        if before.as_deref() == Some(ready.reason.as_str()) {
            return;
        }
        let note = format!("{prefix}{}", ready.message);
        self.publish(
            resource,
            EventType::Warning,
            &ready.reason,
            "Reconcile",
            &note,
        )
        .await;
    }

    pub(super) async fn publish(
        &self,
        resource: &CognitiveServicesAccount,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        self.publish_to(&resource.object_ref(&()), type_, reason, action, note)
            .await;
    }
}

/// The event reason and action of an ARM write.
pub(super) fn write_reason(kind: OperationKind) -> (&'static str, &'static str) {
    match kind {
        OperationKind::Create => ("Created", "CreateAccount"),
        OperationKind::Restore => ("Restored", "RestoreAccount"),
        OperationKind::Update => ("Patched", "UpdateAccount"),
        OperationKind::Delete => ("Deleted", "DeleteAccount"),
        OperationKind::Purge => ("Purged", "PurgeDeletedAccount"),
    }
}
