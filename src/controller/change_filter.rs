//! Which watch events are worth a reconcile: a spec change, the start of a deletion, a key
//! annotation, the object turning (in)valid. Our own status writes and finalizer edits are not.
//!
//! Why not kube-runtime's `predicate_filter`: it sees applied objects only, so it cannot tell a
//! deletion and forgets entries by age; this filter reads the watch events themselves, forgets
//! an object when it is deleted or a relist no longer brings it, and tells the reconciler so
//! (which drops its per-resource state too).

use kube::runtime::watcher;

use super::reconciler::INVALID_RESOURCE_ANNOTATION;
use super::secrets;
use crate::api::CognitiveServicesAccount;

/// `(namespace, name)` of a watched object.
pub(super) type ObjectKey = (Option<String>, Option<String>);

pub(super) type WatchedAccount = Result<CognitiveServicesAccount, watcher::Error>;

pub(super) type WatchedEvent = Result<watcher::Event<CognitiveServicesAccount>, watcher::Error>;

/// The objects worth a reconcile (see [`relevant_change`]), from the reflected watch events. It
/// remembers what it let through per object, and forgets an object when it is deleted, or when
/// a relist does not bring it back (deleted while the watch was down), telling `forget` too:
/// memory follows the objects that exist.
pub(super) fn relevant_objects(
    forget: impl Fn(&ObjectKey),
) -> impl FnMut(WatchedEvent) -> std::future::Ready<Option<WatchedAccount>> {
    type Seen = std::collections::HashMap<ObjectKey, (Option<String>, u64)>;
    // (namespace, name) -> (uid, relevant_change) of the last object let through.
    let mut seen = Seen::new();
    // What a relist in progress has brought back so far.
    let mut relisted: Option<Seen> = None;
    move |item| {
        use watcher::Event;
        let passed = match item {
            Err(error) => return std::future::ready(Some(Err(error))),
            Ok(Event::Init) => {
                relisted = Some(Seen::new());
                None
            }
            Ok(Event::InitApply(object)) => {
                let (key, value) = seen_entry(&object);
                let changed = seen.get(&key) != Some(&value);
                relisted.get_or_insert_with(Seen::new).insert(key, value);
                changed.then_some(object)
            }
            Ok(Event::InitDone) => {
                if let Some(fresh) = relisted.take() {
                    for gone in seen.keys().filter(|key| !fresh.contains_key(*key)) {
                        forget(gone);
                    }
                    seen = fresh;
                }
                None
            }
            Ok(Event::Apply(object)) => {
                let (key, value) = seen_entry(&object);
                let changed = seen.get(&key) != Some(&value);
                seen.insert(key, value);
                changed.then_some(object)
            }
            Ok(Event::Delete(object)) => {
                let key = seen_entry(&object).0;
                seen.remove(&key);
                forget(&key);
                None
            }
        };
        std::future::ready(passed.map(Ok))
    }
}

fn seen_entry(object: &CognitiveServicesAccount) -> (ObjectKey, (Option<String>, u64)) {
    let meta = &object.metadata;
    let key = (meta.namespace.clone(), meta.name.clone());
    (key, (meta.uid.clone(), relevant_change(object)))
}

/// What makes a watched change worth a reconcile: a new generation (spec), the deletion
/// starting, a key annotation, or the object turning (in)valid. Status and finalizer edits are
/// not.
fn relevant_change(object: &CognitiveServicesAccount) -> u64 {
    use std::hash::{Hash, Hasher};
    let meta = &object.metadata;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    for annotation in [
        secrets::REFRESH_KEYS_ANNOTATION,
        secrets::ROTATE_KEY_ANNOTATION,
        INVALID_RESOURCE_ANNOTATION,
    ] {
        meta.annotations
            .as_ref()
            .and_then(|a| a.get(annotation))
            .hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::super::cache::fixtures::*;
    use super::*;
    use futures::{StreamExt, stream};
    use serde_json::json;

    async fn passed(objects: Vec<CognitiveServicesAccount>) -> Vec<CognitiveServicesAccount> {
        passed_events(objects.into_iter().map(watcher::Event::Apply).collect()).await
    }

    async fn passed_events(
        events: Vec<watcher::Event<CognitiveServicesAccount>>,
    ) -> Vec<CognitiveServicesAccount> {
        stream::iter(events.into_iter().map(Ok))
            .filter_map(relevant_objects(|_: &ObjectKey| {}))
            .map(|item| item.unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn deleted_objects_are_forgotten_also_when_a_relist_misses_them() {
        use kube::ResourceExt;
        use watcher::Event;
        let one = || object(1, json!(null), "Succeeded");
        // Deleted, then the same object again: let through as new.
        let again = passed_events(vec![
            Event::Apply(one()),
            Event::Delete(one()),
            Event::Apply(one()),
        ])
        .await;
        assert_eq!(again.len(), 2);
        // A relist that does not bring it back forgets it too.
        let mut other = one();
        other.metadata.name = Some("other".into());
        let after_relist = passed_events(vec![
            Event::Apply(one()),
            Event::Init,
            Event::InitApply(other.clone()),
            Event::InitDone,
            Event::Apply(one()),
            Event::Apply(other),
        ])
        .await;
        let names: Vec<_> = after_relist.iter().map(|o| o.name_any()).collect();
        assert_eq!(
            names,
            [one().name_any(), "other".to_string(), one().name_any()]
        );
    }

    #[tokio::test]
    async fn what_is_kept_per_resource_is_dropped_when_it_is_deleted_or_missed_by_a_relist() {
        use kube::ResourceExt;
        use std::sync::Mutex;
        use watcher::Event;
        let forgotten = Mutex::new(Vec::new());
        let one = object(1, json!(null), "Succeeded");
        let mut other = one.clone();
        other.metadata.name = Some("other".into());
        let events = vec![
            Event::Apply(one.clone()),
            Event::Apply(other.clone()),
            Event::Delete(other),
            Event::Init,
            Event::InitDone,
        ];
        let _: Vec<_> = stream::iter(events.into_iter().map(Ok))
            .filter_map(relevant_objects(|key: &ObjectKey| {
                forgotten.lock().unwrap().push(key.1.clone().unwrap())
            }))
            .collect()
            .await;
        assert_eq!(
            forgotten.into_inner().unwrap(),
            ["other".to_string(), one.name_any()]
        );
    }

    #[tokio::test]
    async fn status_only_changes_do_not_trigger_a_reconcile() {
        let none = json!(null);
        let passed = passed(vec![
            object(1, none.clone(), "Creating"),
            object(1, none.clone(), "Succeeded"),
            object(2, none.clone(), "Succeeded"),
            object(
                2,
                json!({secrets::ROTATE_KEY_ANNOTATION: "Key1"}),
                "Succeeded",
            ),
            object(2, json!({"unrelated": "x"}), "Succeeded"),
        ])
        .await;
        let generations: Vec<_> = passed.iter().map(|o| o.metadata.generation).collect();
        assert_eq!(generations, [Some(1), Some(2), Some(2), Some(2)]);
        assert!(
            passed[2].metadata.annotations.is_some(),
            "the rotate request passes"
        );
    }

    #[tokio::test]
    async fn the_start_of_a_deletion_triggers_a_reconcile() {
        let mut deleting = object(1, json!(null), "Succeeded");
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        let passed = passed(vec![object(1, json!(null), "Succeeded"), deleting]).await;
        assert_eq!(passed.len(), 2);
    }
}
