//! One reconcile of a `CognitiveServicesDeployment`: its account resource, the finalizer and
//! ownerReference, the engine, the status, events and the requeue.

use jiff::Timestamp;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

use crate::api::CognitiveServicesDeployment;
use crate::api::FINALIZER;
use crate::controller::error::Error;
use crate::controller::metrics::ReconcileResult;
use crate::controller::reconciler::state::{Reconciled, Reconciler, done};
use crate::controller::reconciler::status_write::classify_conditions;
use crate::controller::requeue::{Requeue, requeue_for};

impl Reconciler {
    /// The controller's entry point for deployments.
    pub async fn reconcile_deployment(
        &self,
        resource: &CognitiveServicesDeployment,
    ) -> Result<Requeue, Error> {
        let span = tracing::info_span!(
            "reconcile_deployment",
            namespace = resource.metadata.namespace.as_deref().unwrap_or_default(),
            name = resource.metadata.name.as_deref().unwrap_or_default(),
        );
        use tracing::Instrument;
        self.timed(self.reconcile_deployment_inner(resource))
            .instrument(span)
            .await
    }

    /// The requeue after a failed deployment reconcile (see [`Reconciler::error_requeue`]).
    pub fn deployment_error_requeue(
        &self,
        resource: &CognitiveServicesDeployment,
        error: &Error,
    ) -> Requeue {
        tracing::warn!(
            namespace = resource.metadata.namespace.as_deref().unwrap_or_default(),
            name = resource.metadata.name.as_deref().unwrap_or_default(),
            error = %error,
            "deployment reconcile failed"
        );
        let key = deployment_key(resource);
        if !error.is_retryable() {
            self.backoffs.reset(&key);
            return crate::controller::requeue::resync_requeue(resource.spec.resync());
        }
        let retry_after = match error {
            Error::Arm(e) => e.retry_after(),
            _ => None,
        };
        Requeue::After(self.backoffs.fail(&key, retry_after))
    }

    /// The deployment resource is gone from the cluster.
    pub fn forget_deployment(&self, namespace: Option<&str>, name: Option<&str>) {
        self.backoffs.reset(&format!(
            "csd/{}/{}",
            namespace.unwrap_or("default"),
            name.unwrap_or_default()
        ));
    }

    pub(super) async fn reconcile_deployment_inner(
        &self,
        resource: &CognitiveServicesDeployment,
    ) -> Result<Reconciled, Error> {
        let key = deployment_key(resource);
        let deleting = resource.metadata.deletion_timestamp.is_some();
        let has_finalizer = resource.finalizers().iter().any(|f| f == FINALIZER);
        if deleting && !has_finalizer {
            self.backoffs.reset(&key);
            return Ok(done(Requeue::AwaitChange, ReconcileResult::Deleted));
        }
        let valid = valid_spec(resource);
        // The account resource is read whenever its name can be an object's: an invalid spec
        // of a deployment whose account is gone need not hold its deletion.
        let account = if resource.spec.names_an_account() {
            match self.account_of(resource).await? {
                Ok(account) => account,
                Err(message) => {
                    // Neither its scope nor its credentials can be known: no ARM call, and a
                    // deletion waits (the deployment may still exist in Azure).
                    return self
                        .stall_deployment(resource, "AccountInvalid", &message, deleting)
                        .await;
                }
            }
        } else {
            // An accountRef.name that is no object name never reaches an API path: the engine
            // says InvalidSpec, with no call.
            None
        };
        let context = self.engine.account_context(account.as_ref());
        let arm = match &account {
            Some(account) => match self.deployment_gates(resource, account, deleting).await? {
                Ok(arm) => arm,
                Err(answer) => return Ok(answer),
            },
            // No account resource: no grant to check against and no credentials, so no ARM
            // call; the engine plans without one (AccountNotFound, or a finished deletion).
            None => self.credentials.default_client().clone(),
        };
        // An invalid spec makes no ARM call, so it needs no finalizer.
        let resource = if deleting || !valid {
            resource.clone()
        } else {
            self.ensure_deployment_metadata(resource, account.as_ref())
                .await?
        };
        let outcome = self
            .engine
            .reconcile_deployment(&arm, &resource, &context, deleting, Timestamp::now())
            .await;
        for write in &outcome.writes {
            tracing::info!(kind = ?write.kind, fields = ?write.fields, "ARM write: {}", write.description);
        }
        let latest = self
            .write_deployment_status(&resource, &outcome.status)
            .await?;
        self.publish_deployment_events(&resource, &outcome).await;
        if deleting && outcome.deletion_finished {
            if resource.spec.reconcile_policy == crate::api::ReconcilePolicy::Pause {
                let note = format!(
                    "reconcilePolicy is Pause, which makes no ARM call: deletionPolicy {:?} was not run and the deployment is left in Azure",
                    resource.spec.deletion_policy
                );
                let reference = resource.object_ref(&());
                self.publish_to(
                    &reference,
                    EventType::Warning,
                    "DeletionPolicySkipped",
                    "Delete",
                    &note,
                )
                .await;
            }
            let latest = latest.as_ref().unwrap_or(&resource);
            self.remove_deployment_finalizer(latest).await?;
            self.backoffs.reset(&key);
            return Ok(done(Requeue::AwaitChange, ReconcileResult::Deleted));
        }
        let requeue = requeue_for(outcome.next, resource.spec.resync(), &key, &self.backoffs);
        Ok(done(
            requeue,
            classify_conditions(&outcome.status.conditions),
        ))
    }

    pub(super) fn deployments(
        &self,
        resource: &CognitiveServicesDeployment,
    ) -> Api<CognitiveServicesDeployment> {
        let namespace = resource.namespace().unwrap_or_else(|| "default".into());
        Api::namespaced(self.client.clone(), &namespace)
    }
}

fn valid_spec(resource: &CognitiveServicesDeployment) -> bool {
    let name = resource.metadata.name.as_deref().unwrap_or_default();
    resource.spec.validate(name).is_ok()
}

/// Per-resource state of deployments is keyed apart from accounts of the same name.
pub(super) fn deployment_key(resource: &CognitiveServicesDeployment) -> String {
    format!(
        "csd/{}/{}",
        resource.metadata.namespace.as_deref().unwrap_or("default"),
        resource.metadata.name.as_deref().unwrap_or_default()
    )
}
