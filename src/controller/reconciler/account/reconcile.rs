//! One reconcile of a `CognitiveServicesAccount`: the gates, the engine, the connection Secret,
//! the status, events, the requeue, and the finalizer's removal once the deletion policy ran.

use jiff::Timestamp;
use kube::runtime::events::EventType;
use tracing::Instrument;

use super::finalizer::{has_finalizer, skipped_deletion_policy};
use super::malformed::invalid_resource;
use super::prepare::Prepared;
use super::secret::report_secret;
use super::status::classify;
use crate::api::CognitiveServicesAccount;
use crate::controller::error::Error;
use crate::controller::metrics::ReconcileResult;
use crate::controller::reconciler::state::{Reconciled, Reconciler, done, key_of};
use crate::controller::requeue::{Requeue, requeue_for, resync_requeue};
use crate::engine::Outcome;
use crate::planner::status;

/// How soon a key request that waited behind an unfinished rotation is answered.
const REQUEST_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl Reconciler {
    /// The controller's entry point: a cached object, which may be the placeholder of one that
    /// does not deserialize (see [`INVALID_RESOURCE_ANNOTATION`]).
    pub async fn reconcile(&self, object: &CognitiveServicesAccount) -> Result<Requeue, Error> {
        let span = tracing::info_span!(
            "reconcile",
            namespace = object.metadata.namespace.as_deref().unwrap_or_default(),
            name = object.metadata.name.as_deref().unwrap_or_default(),
        );
        async {
            match invalid_resource(object) {
                None => self.reconcile_account(object).await,
                Some(message) => self.timed(self.report_malformed(object, message)).await,
            }
        }
        .instrument(span)
        .await
    }

    /// Reconciles a resource that deserialized (not a placeholder).
    pub async fn reconcile_account(
        &self,
        resource: &CognitiveServicesAccount,
    ) -> Result<Requeue, Error> {
        self.timed(self.reconcile_inner(resource)).await
    }

    /// The requeue after a failed reconcile: per-resource exponential backoff (at least the
    /// server's Retry-After) for an error that may pass by itself; the resync for one that
    /// needs someone to change something (RBAC, a refused identity), so it costs no calls
    /// meanwhile.
    pub fn error_requeue(&self, object: &CognitiveServicesAccount, error: &Error) -> Requeue {
        let key = key_of(&object.metadata);
        tracing::warn!(
            namespace = object.metadata.namespace.as_deref().unwrap_or_default(),
            name = object.metadata.name.as_deref().unwrap_or_default(),
            error = %error,
            retryable = error.is_retryable(),
            "reconcile failed"
        );
        if !error.is_retryable() {
            self.backoffs.reset(&key);
            return resync_requeue(object.spec.resync());
        }
        let retry_after = match error {
            Error::Arm(e) => e.retry_after(),
            _ => None,
        };
        Requeue::After(self.backoffs.fail(&key, retry_after))
    }

    pub(super) async fn reconcile_inner(
        &self,
        resource: &CognitiveServicesAccount,
    ) -> Result<Reconciled, Error> {
        let key = key_of(&resource.metadata);
        let deleting = resource.metadata.deletion_timestamp.is_some();
        if deleting && !has_finalizer(resource) {
            self.backoffs.reset(&key);
            return Ok(done(Requeue::AwaitChange, ReconcileResult::Deleted));
        }
        let (arm, resource) = match self.prepare(resource, deleting).await? {
            Prepared::Go { arm, resource } => (arm, *resource),
            Prepared::Stop(answer) => return Ok(answer),
        };
        let now = Timestamp::now();
        let outcome = self.engine.reconcile(&arm, &resource, deleting, now).await;
        for write in &outcome.writes {
            tracing::info!(kind = ?write.kind, fields = ?write.fields, "ARM write: {}", write.description);
        }
        let secret = self.sync_secret(&arm, &resource, &outcome, deleting).await;
        let request_waits = matches!(&secret, Ok(Some(sync)) if sync.request_waits);
        let mut status = outcome.status.clone();
        let conflict = report_secret(&mut status, &resource, &secret, now);
        // The status write moves the resourceVersion that the finalizer patch is conditional on.
        let latest = self.write_status(&resource, &status).await?;
        let latest = latest.as_ref().unwrap_or(&resource);
        self.publish_outcome_events(&resource, &outcome, &status, deleting)
            .await;
        match secret {
            Ok(Some(sync)) => self.finish_secret_sync(&resource, &sync).await?,
            Err(e) if !conflict => return Err(e),
            _ => {}
        }
        if deleting && outcome.deletion_finished {
            return self.finish_deletion(&resource, latest, &outcome).await;
        }
        if let Some(error) = &outcome.error {
            tracing::warn!(error = %error, "reconcile did not complete");
        }
        let requeue = if conflict {
            self.backoffs.reset(&key);
            resync_requeue(resource.spec.resync())
        } else if request_waits {
            Requeue::After(REQUEST_WAIT)
        } else {
            requeue_for(outcome.next, resource.spec.resync(), &key, &self.backoffs)
        };
        Ok(done(requeue, classify(&status)))
    }

    /// The deletion policy has run: the finalizer goes, and an event says what was done (the
    /// object, and the status that said it, are gone next).
    pub(super) async fn finish_deletion(
        &self,
        resource: &CognitiveServicesAccount,
        latest: &CognitiveServicesAccount,
        outcome: &Outcome,
    ) -> Result<Reconciled, Error> {
        if !skipped_deletion_policy(resource) {
            let (type_, reason) = if outcome.purge_skipped {
                (EventType::Warning, "PurgeSkipped")
            } else {
                (EventType::Normal, "DeletionPolicyDone")
            };
            let note = status::find(&outcome.status.conditions, status::READY)
                .map(|ready| ready.message.clone())
                .unwrap_or_default();
            self.publish(resource, type_, reason, "Delete", &note).await;
        } else {
            let note = format!(
                "reconcilePolicy is Pause, which makes no ARM call: deletionPolicy {:?} was not run and the account is left in Azure",
                resource.spec.deletion_policy
            );
            self.publish(
                resource,
                EventType::Warning,
                "DeletionPolicySkipped",
                "Delete",
                &note,
            )
            .await;
        }
        self.remove_finalizer(latest).await?;
        self.backoffs.reset(&key_of(&resource.metadata));
        tracing::info!("deletion policy done; finalizer removed");
        Ok(done(Requeue::AwaitChange, ReconcileResult::Deleted))
    }
}
