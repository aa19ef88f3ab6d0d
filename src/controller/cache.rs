//! What enters the controller's cache: each watched object trimmed to what the reconciler
//! reads, typed, or a placeholder carrying the parse error for one that does not deserialize.

use kube::api::{DynamicObject, ObjectMeta};
use kube::runtime::watcher;

use super::reconciler::{self, INVALID_RESOURCE_ANNOTATION};
use crate::api::CognitiveServicesAccount;

/// The only annotations the controller reads are its own.
const OWN_ANNOTATION_PREFIX: &str = "cognitive-operator.dev/";

/// Drops what the controller never reads before an object enters the cache: managedFields,
/// labels and every annotation but its own `cognitive-operator.dev/*` (kubectl's last-applied
/// copy of the spec, Argo CD's tracking id...). They are most of a small object's size (see
/// docs/performance.md). The reconciler writes with server-side apply and merge patches that
/// depend on none of them. An [`INVALID_RESOURCE_ANNOTATION`] set from outside is dropped too:
/// only [`cache_object`] sets it.
pub fn trim_for_cache(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.labels = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.retain(|key, _| {
            key.starts_with(OWN_ANNOTATION_PREFIX) && key != INVALID_RESOURCE_ANNOTATION
        });
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// What the controller caches for a watched object: its metadata trimmed by
/// [`trim_for_cache`], deserialized as a typed `CognitiveServicesAccount`. An object that does
/// not deserialize becomes a placeholder (its metadata, a default spec, its status when that
/// still parses) carrying the parse error in [`INVALID_RESOURCE_ANNOTATION`], which the
/// reconciler reports as Stalled `InvalidResource` without calling ARM. So the watch stays
/// untyped (one malformed object never fails a list) while the cache holds compact typed objects.
pub fn cache_object(mut object: DynamicObject) -> CognitiveServicesAccount {
    trim_for_cache(&mut object.metadata);
    match reconciler::parse_account(&object) {
        Ok(resource) => resource,
        Err(message) => {
            let status = object
                .data
                .get_mut("status")
                .map(serde_json::Value::take)
                .and_then(|s| serde_json::from_value(s).ok());
            let mut metadata = object.metadata;
            metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(INVALID_RESOURCE_ANNOTATION.into(), message);
            CognitiveServicesAccount {
                metadata,
                spec: Default::default(),
                status,
            }
        }
    }
}

/// [`cache_object`] applied to every object of a watcher event.
pub fn cache_event(
    event: watcher::Event<DynamicObject>,
) -> watcher::Event<CognitiveServicesAccount> {
    use watcher::Event;
    match event {
        Event::Apply(object) => Event::Apply(cache_object(object)),
        Event::Delete(object) => Event::Delete(cache_object(object)),
        Event::Init => Event::Init,
        Event::InitApply(object) => Event::InitApply(cache_object(object)),
        Event::InitDone => Event::InitDone,
    }
}

#[cfg(test)]
pub(super) mod fixtures {
    use super::*;
    use serde_json::{Value, json};

    /// kubectl's copy of the last applied spec: large, and never read by the controller.
    pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

    pub fn watched(generation: i64, annotations: Value, status: &str) -> DynamicObject {
        let mut object = DynamicObject::new("docs", &reconciler::account_api_resource())
            .within("team")
            .data(json!({
                "spec": {"resourceGroup": "rg", "location": "westus", "kind": "OpenAI", "sku": {"name": "S0"}},
                "status": {"provisioningState": status},
            }));
        object.metadata.generation = Some(generation);
        object.metadata.annotations = serde_json::from_value(annotations).unwrap();
        object
    }

    /// The object as the controller caches it.
    pub fn object(generation: i64, annotations: Value, status: &str) -> CognitiveServicesAccount {
        cache_object(watched(generation, annotations, status))
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn the_cache_keeps_what_the_controller_reads_and_drops_the_rest() {
        let mut watched = watched(
            3,
            json!({LAST_APPLIED: "{\"spec\":{}}", "cognitive-operator.dev/rotate-key": "Key1"}),
            "Succeeded",
        );
        watched.metadata.managed_fields = Some(vec![Default::default()]);
        watched.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
        let cached = cache_object(watched);
        assert_eq!(cached.metadata.managed_fields, None);
        assert_eq!(cached.metadata.labels, None);
        let annotations = cached.metadata.annotations.clone().unwrap();
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert!(!annotations.contains_key(INVALID_RESOURCE_ANNOTATION));
        assert_eq!(annotations["cognitive-operator.dev/rotate-key"], "Key1");
        assert_eq!(cached.metadata.generation, Some(3));
        assert_eq!(cached.spec.resource_group, "rg");
        assert_eq!(
            cached.status.unwrap().provisioning_state.as_deref(),
            Some("Succeeded")
        );
    }

    #[test]
    fn a_malformed_object_is_cached_as_a_placeholder_carrying_the_error() {
        let mut watched = watched(2, json!({"unrelated": "x"}), "Succeeded");
        watched.data["spec"]["sku"]["name"] = json!(7);
        let cached = cache_object(watched);
        let annotations = cached.metadata.annotations.clone().unwrap();
        assert!(
            annotations[INVALID_RESOURCE_ANNOTATION].contains("spec.sku.name"),
            "{annotations:?}"
        );
        assert!(!annotations.contains_key("unrelated"));
        assert_eq!(cached.metadata.name.as_deref(), Some("docs"));
        assert_eq!(cached.metadata.generation, Some(2));
        assert_eq!(cached.spec, Default::default());
        assert_eq!(
            cached.status.unwrap().provisioning_state.as_deref(),
            Some("Succeeded"),
            "the status is kept when it parses"
        );
    }

    #[test]
    fn an_invalid_resource_annotation_from_outside_is_dropped() {
        let cached = object(
            1,
            json!({INVALID_RESOURCE_ANNOTATION: "forged"}),
            "Succeeded",
        );
        assert_eq!(cached.metadata.annotations, None);
    }

    #[test]
    fn every_watcher_event_is_converted() {
        use watcher::Event;
        let converted = [
            Event::Init,
            Event::InitApply(watched(1, json!(null), "Creating")),
            Event::InitDone,
            Event::Apply(watched(2, json!(null), "Succeeded")),
            Event::Delete(watched(2, json!(null), "Succeeded")),
        ]
        .map(cache_event);
        assert!(matches!(converted[0], Event::Init));
        assert!(matches!(&converted[1], Event::InitApply(o) if o.metadata.generation == Some(1)));
        assert!(matches!(converted[2], Event::InitDone));
        assert!(matches!(&converted[3], Event::Apply(o) if o.metadata.generation == Some(2)));
        assert!(matches!(&converted[4], Event::Delete(o) if o.spec.resource_group == "rg"));
    }
}
