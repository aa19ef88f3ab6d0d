//! The status write of both kinds: a server-side apply of the whole status, when it changed,
//! and the metrics' class of the conditions it leaves.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};

use super::state::FIELD_MANAGER;
use crate::controller::error::Error;
use crate::controller::metrics::ReconcileResult;
use crate::planner::status::{self};

pub(super) fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// The apply body for the status. Fields that were set and are now unset are sent as `null`:
/// a real API server prunes nulls from custom resources (so this is the omission that makes
/// server-side apply drop a field we own), and a merge-patch based server needs them to
/// remove the field at all.
pub fn status_patch<K: Resource<DynamicType = ()>>(
    previous: &Value,
    status: &impl serde::Serialize,
) -> Value {
    let mut desired = serde_json::to_value(status).expect("status serializes");
    null_removed_fields(previous, &mut desired);
    json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": desired,
    })
}

/// Server-side apply of the whole status of `resource` (an account or a deployment) on the
/// status subresource, when it changed. Returns the object as written (`None`: nothing to write).
pub(super) async fn apply_status<K, S>(
    api: Api<K>,
    resource: &K,
    previous: Option<&S>,
    status: &S,
) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: serde::Serialize + PartialEq,
{
    if previous == Some(status) {
        return Ok(None);
    }
    let previous = serde_json::to_value(previous).expect("status serializes");
    let patch = status_patch::<K>(&previous, status);
    let written = api
        .patch_status(&resource.name_any(), &apply_params(), &Patch::Apply(&patch))
        .await?;
    Ok(Some(written))
}

/// Adds `null` to `desired` for each object field of `previous` it lacks, recursively — `[]`
/// for a list: the API server validates the applied object with the null still in it, and a
/// list field (unlike an optional one, which the schema marks nullable) must be a list.
pub fn null_removed_fields(previous: &Value, desired: &mut Value) {
    let (Value::Object(old), Value::Object(new)) = (previous, desired) else {
        return;
    };
    for (key, old_value) in old {
        match new.get_mut(key) {
            None if old_value.is_array() => {
                new.insert(key.clone(), Value::Array(Vec::new()));
            }
            None => {
                new.insert(key.clone(), Value::Null);
            }
            Some(new_value) => null_removed_fields(old_value, new_value),
        }
    }
}

/// The metrics' result of a reconcile, from the conditions it left.
pub(super) fn classify_conditions(conditions: &[crate::api::Condition]) -> ReconcileResult {
    let is_true = |type_| status::find(conditions, type_).is_some_and(|c| c.status == "True");
    if is_true(status::STALLED) {
        ReconcileResult::Stalled
    } else if is_true(status::READY) {
        ReconcileResult::Ready
    } else if is_true(status::RECONCILING) {
        ReconcileResult::Progressing
    } else {
        ReconcileResult::Idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_status_fields_become_nulls_at_any_depth() {
        let previous = json!({
            "endpoint": "https://x/",
            "pendingOperation": {"kind": "Create", "retryAfterSeconds": 1},
            "conditions": [{"type": "Ready"}],
            "drift": [{"field": "tags"}]
        });
        let mut desired = json!({
            "pendingOperation": {"kind": "Update"},
            "conditions": []
        });
        null_removed_fields(&previous, &mut desired);
        assert_eq!(
            desired,
            json!({
                "endpoint": null,
                "pendingOperation": {"kind": "Update", "retryAfterSeconds": null},
                "conditions": [],
                "drift": []
            })
        );
    }
}
