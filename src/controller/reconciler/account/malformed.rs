//! An object that does not deserialize: reported as Stalled `InvalidResource` through the
//! dynamic API.

use jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, Patch};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

use super::status::ready_reason;
use crate::api::CognitiveServicesAccount;
use crate::controller::error::Error;
use crate::controller::metrics::ReconcileResult;
use crate::controller::reconciler::state::{Reconciled, Reconciler, done};
use crate::controller::reconciler::status_write::{apply_params, status_patch};
use crate::controller::requeue::Requeue;
use crate::planner::status::{self, Summary};

/// Internal: set by the controller (`controller::cache_object`) on the cached placeholder of an
/// object that does not deserialize, holding the parse error; the reconciler reports it as
/// Stalled `InvalidResource`. Never read from the API server: the controller drops it from
/// watched objects before the conversion, so users cannot set it.
pub const INVALID_RESOURCE_ANNOTATION: &str = "cognitive-operator.dev/invalid-resource";

impl Reconciler {
    /// An object that does not deserialize (its cached placeholder): Stalled `InvalidResource`,
    /// written through the dynamic API (the object read back would not deserialize either);
    /// the watch carries on with the other objects. No ARM call.
    pub(super) async fn report_malformed(
        &self,
        object: &CognitiveServicesAccount,
        message: &str,
    ) -> Result<Reconciled, Error> {
        tracing::warn!(error = %message, "resource does not deserialize");
        let mut status = object.status.clone().unwrap_or_default();
        let previous_reason = ready_reason(&status);
        let generation = object.metadata.generation;
        let summary = Summary::stalled("InvalidResource", message);
        let now = Timestamp::now().to_string();
        status.conditions = status::conditions(&summary, generation, &status.conditions, &now);
        status.observed_generation = generation;
        let api_resource = account_api_resource();
        let namespace = object.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &api_resource);
        let previous = serde_json::to_value(&object.status).expect("status serializes");
        let patch = status_patch::<CognitiveServicesAccount>(&previous, &status);
        api.patch_status(&object.name_any(), &apply_params(), &Patch::Apply(&patch))
            .await?;
        if previous_reason.as_deref() != Some("InvalidResource") {
            let reference = object.object_ref(&());
            self.publish_to(
                &reference,
                EventType::Warning,
                "InvalidResource",
                "Reconcile",
                message,
            )
            .await;
        }
        Ok(done(Requeue::AwaitChange, ReconcileResult::Stalled))
    }
}

/// The parse error carried by the placeholder of an object that does not deserialize.
pub fn invalid_resource(resource: &CognitiveServicesAccount) -> Option<&str> {
    resource
        .metadata
        .annotations
        .as_ref()?
        .get(INVALID_RESOURCE_ANNOTATION)
        .map(String::as_str)
}

pub fn account_api_resource() -> ApiResource {
    ApiResource::erase::<CognitiveServicesAccount>(&())
}

/// Deserializes a watched object, naming the offending field when it does not fit.
pub fn parse_account(object: &DynamicObject) -> Result<CognitiveServicesAccount, String> {
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        format!(
            "the resource does not match the CognitiveServicesAccount schema at {}: {}",
            e.path(),
            e.inner()
        )
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_malformed_object_names_the_field() {
        let resource = account_api_resource();
        let object = DynamicObject::new("bad", &resource).data(json!({
            "spec": {"resourceGroup": "rg", "location": "westus", "kind": "OpenAI", "sku": {"name": 7}}
        }));
        let message = parse_account(&object).unwrap_err();
        assert!(message.contains("spec.sku.name"), "{message}");
    }
}
