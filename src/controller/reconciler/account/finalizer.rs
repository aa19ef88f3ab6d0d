//! The account's finalizer: on before any ARM write, off once the deletion policy has run.

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::api::{CognitiveServicesAccount, DeletionPolicy, FINALIZER, ReconcilePolicy};
use crate::controller::error::Error;
use crate::controller::reconciler::state::Reconciler;

impl Reconciler {
    pub(super) async fn ensure_finalizer(
        &self,
        resource: &CognitiveServicesAccount,
    ) -> Result<CognitiveServicesAccount, Error> {
        if has_finalizer(resource) {
            return Ok(resource.clone());
        }
        let mut finalizers = resource.finalizers().to_vec();
        finalizers.push(FINALIZER.to_string());
        let updated = self.patch_finalizers(resource, finalizers).await?;
        tracing::debug!("finalizer added");
        Ok(updated)
    }

    pub(super) async fn remove_finalizer(
        &self,
        resource: &CognitiveServicesAccount,
    ) -> Result<(), Error> {
        let finalizers: Vec<String> = resource
            .finalizers()
            .iter()
            .filter(|f| f.as_str() != FINALIZER)
            .cloned()
            .collect();
        match self.patch_finalizers(resource, finalizers).await {
            // Gone already: the API server deleted it when the last finalizer went.
            Err(Error::Kube(e)) if crate::controller::error::is_not_found(&e) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Sets the finalizer list, conditional on the resourceVersion read: a concurrent change
    /// to the list is a conflict (retried), never a lost finalizer.
    pub(super) async fn patch_finalizers(
        &self,
        resource: &CognitiveServicesAccount,
        finalizers: Vec<String>,
    ) -> Result<CognitiveServicesAccount, Error> {
        let patch = json!({
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": resource.resource_version(),
            }
        });
        Ok(self
            .accounts(resource)
            .patch(
                &resource.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?)
    }

    pub(super) fn accounts(
        &self,
        resource: &CognitiveServicesAccount,
    ) -> Api<CognitiveServicesAccount> {
        let namespace = resource.namespace().unwrap_or_else(|| "default".into());
        Api::namespaced(self.client.clone(), &namespace)
    }
}

pub fn has_finalizer(resource: &CognitiveServicesAccount) -> bool {
    resource.finalizers().iter().any(|f| f == FINALIZER)
}

/// Deleting a paused resource: Pause means no ARM call, so a Delete/DeleteAndPurge policy is not
/// run; said in a Warning event rather than silently.
pub(super) fn skipped_deletion_policy(resource: &CognitiveServicesAccount) -> bool {
    resource.spec.reconcile_policy == ReconcilePolicy::Pause
        && resource.spec.deletion_policy != DeletionPolicy::Orphan
}
