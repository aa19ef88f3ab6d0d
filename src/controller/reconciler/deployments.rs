//! One reconcile of a `CognitiveServicesDeployment`: its account resource (the scope the
//! namespace's grant is checked against, the credentials, the ownerReference), the finalizer,
//! the engine, the status, events and the requeue.

use jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::{
    FINALIZER, Reconciled, Reconciler, ScopeCheck, apply_status, classify_conditions, done,
};
use crate::api::{
    CognitiveServicesAccount, CognitiveServicesDeployment, CognitiveServicesDeploymentStatus,
};
use crate::arm::OperationKind;
use crate::controller::error::Error;
use crate::controller::metrics::ReconcileResult;
use crate::controller::requeue::{Requeue, requeue_for};
use crate::engine::DeploymentOutcome;
use crate::planner::status::{self, Summary};

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

    async fn reconcile_deployment_inner(
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
        let account = match self.account_of(resource).await? {
            Ok(account) => account,
            Err(message) => {
                // Neither its scope nor its credentials can be known: no ARM call, and a
                // deletion waits (the deployment may still exist in Azure).
                return self
                    .stall_deployment(resource, "AccountInvalid", &message, deleting)
                    .await;
            }
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
        let resource = if deleting {
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

    /// The account resource named by `spec.accountRef`; `None` when there is none, and the
    /// inner `Err` when it does not match its schema (its own status says where).
    async fn account_of(
        &self,
        resource: &CognitiveServicesDeployment,
    ) -> Result<Result<Option<CognitiveServicesAccount>, String>, Error> {
        let namespace = resource.namespace().unwrap_or_else(|| "default".into());
        let accounts: Api<CognitiveServicesAccount> =
            Api::namespaced(self.client.clone(), &namespace);
        let name = &resource.spec.account_ref.name;
        match accounts.get_opt(name).await {
            Ok(account) => Ok(Ok(account)),
            Err(kube::Error::SerdeError(e)) => Ok(Err(format!(
                "CognitiveServicesAccount {name} (spec.accountRef) does not match its schema ({e}); fix it, then this deployment goes on"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The namespace's grant and the credentials, both the account's: a deployment reaches
    /// only what its account may. `Err` is the reconcile's answer when they stop it.
    async fn deployment_gates(
        &self,
        resource: &CognitiveServicesDeployment,
        account: &CognitiveServicesAccount,
        deleting: bool,
    ) -> Result<Result<crate::arm::ArmClient, Reconciled>, Error> {
        let stop = match self.scope_check(account)? {
            ScopeCheck::Allowed => None,
            ScopeCheck::Denied(message) => Some(("ScopeNotAllowed", message)),
            ScopeCheck::Unreadable(message) => Some(("ScopeGrantInvalid", message)),
        };
        if let Some((reason, message)) = stop {
            let message = format!("its account's scope: {message}");
            return Ok(Err(self
                .stall_deployment(resource, reason, &message, deleting)
                .await?));
        }
        match self.credentials.client_for(&self.client, account).await {
            Ok(arm) => Ok(Ok(arm)),
            Err(Error::CredentialsInvalid(message)) => Ok(Err(self
                .stall_deployment(resource, "CredentialsInvalid", &message, deleting)
                .await?)),
            Err(e) => Err(e),
        }
    }

    /// Stalled before any ARM call; the finalizer (when deleting) stays until it is fixed.
    async fn stall_deployment(
        &self,
        resource: &CognitiveServicesDeployment,
        reason: &str,
        message: &str,
        deleting: bool,
    ) -> Result<Reconciled, Error> {
        let mut status = resource.status.clone().unwrap_or_default();
        let previous = status.conditions.clone();
        let generation = resource.metadata.generation;
        status.conditions = status::conditions(
            &Summary::stalled(reason, message),
            generation,
            &previous,
            &Timestamp::now().to_string(),
        );
        status.observed_generation = generation;
        self.write_deployment_status(resource, &status).await?;
        let prefix = if deleting {
            "the deletion policy cannot complete: "
        } else {
            ""
        };
        self.warn_deployment_on_new_reason(resource, &status, prefix)
            .await;
        Ok(done(
            crate::controller::requeue::resync_requeue(resource.spec.resync()),
            ReconcileResult::Stalled,
        ))
    }

    /// The finalizer (before the first ARM write) and the ownerReference to the account
    /// resource (so Kubernetes garbage-collects deployments with their account), in one patch
    /// conditional on the resourceVersion read.
    async fn ensure_deployment_metadata(
        &self,
        resource: &CognitiveServicesDeployment,
        account: Option<&CognitiveServicesAccount>,
    ) -> Result<CognitiveServicesDeployment, Error> {
        let has_finalizer = resource.finalizers().iter().any(|f| f == FINALIZER);
        let owner = account.and_then(|a| a.controller_owner_ref(&()));
        let owned = match &owner {
            Some(owner) => resource
                .owner_references()
                .iter()
                .any(|r| r.uid == owner.uid),
            None => true,
        };
        if has_finalizer && owned {
            return Ok(resource.clone());
        }
        let mut finalizers = resource.finalizers().to_vec();
        if !has_finalizer {
            finalizers.push(FINALIZER.to_string());
        }
        let mut metadata = json!({
            "finalizers": finalizers,
            "resourceVersion": resource.resource_version(),
        });
        if let Some(mut owner) = owner.filter(|_| !owned) {
            // Not the controller: the account's reconcile does not manage this object.
            owner.controller = Some(false);
            owner.block_owner_deletion = Some(false);
            let mut references = resource.owner_references().to_vec();
            references.push(owner);
            metadata["ownerReferences"] = json!(references);
        }
        Ok(self
            .deployments(resource)
            .patch(
                &resource.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&json!({ "metadata": metadata })),
            )
            .await?)
    }

    async fn remove_deployment_finalizer(
        &self,
        resource: &CognitiveServicesDeployment,
    ) -> Result<(), Error> {
        let finalizers: Vec<String> = resource
            .finalizers()
            .iter()
            .filter(|f| f.as_str() != FINALIZER)
            .cloned()
            .collect();
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": resource.resource_version()}});
        match self
            .deployments(resource)
            .patch(
                &resource.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Err(e) if crate::controller::error::is_not_found(&e) => Ok(()),
            other => other.map(|_| ()).map_err(Error::from),
        }
    }

    async fn write_deployment_status(
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

    async fn publish_deployment_events(
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

    async fn warn_deployment_on_new_reason(
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

    fn deployments(
        &self,
        resource: &CognitiveServicesDeployment,
    ) -> Api<CognitiveServicesDeployment> {
        let namespace = resource.namespace().unwrap_or_else(|| "default".into());
        Api::namespaced(self.client.clone(), &namespace)
    }
}

/// Per-resource state of deployments is keyed apart from accounts of the same name.
fn deployment_key(resource: &CognitiveServicesDeployment) -> String {
    format!(
        "csd/{}/{}",
        resource.metadata.namespace.as_deref().unwrap_or("default"),
        resource.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The event's reason and action for a deployment write.
fn deployment_write_reason(kind: OperationKind) -> (&'static str, &'static str) {
    match kind {
        OperationKind::Create => ("Created", "CreateDeployment"),
        OperationKind::Delete => ("Deleted", "DeleteDeployment"),
        _ => ("Updated", "UpdateDeployment"),
    }
}
