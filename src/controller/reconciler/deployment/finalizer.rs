//! The deployment's finalizer and its ownerReference to the account resource, in one patch.

use kube::api::{Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::api::FINALIZER;
use crate::api::{CognitiveServicesAccount, CognitiveServicesDeployment};
use crate::controller::error::Error;
use crate::controller::reconciler::state::Reconciler;

impl Reconciler {
    /// The finalizer (before the first ARM write) and the ownerReference to the account
    /// resource (so Kubernetes garbage-collects deployments with their account), in one patch
    /// conditional on the resourceVersion read.
    pub(super) async fn ensure_deployment_metadata(
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

    pub(super) async fn remove_deployment_finalizer(
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
}
