//! The Azure scopes each namespace was granted by cluster admins (namespace annotations, see
//! [`crate::tenancy`]), read from a cache of Namespace metadata that the controller keeps.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio::sync::broadcast;

use crate::tenancy::{
    AnnotationError, FEDERATED_CLIENT_IDS_ANNOTATION, Grant, KEY_READ_SCOPES_ANNOTATION,
    NamespaceGrants, SCOPES_ANNOTATION,
};

/// Grants by namespace: the namespace's annotations, or `default` where admins set none.
#[derive(Clone)]
pub struct Grants {
    default: Grant,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    changes: broadcast::Sender<GrantChange>,
}

/// A namespace whose grant changed, or `Unknown` when a listener fell behind and may have
/// missed some.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantChange {
    Namespace(String),
    Unknown,
}

impl Grants {
    pub fn new(default: Grant, namespaces: Store<PartialObjectMeta<Namespace>>) -> Self {
        Grants {
            default,
            namespaces,
            changes: broadcast::channel(1024).0,
        }
    }

    /// Tells the controllers listening that `namespace`'s grant changed.
    pub fn announce(&self, namespace: String) {
        // No listener (not leading yet) is fine: a controller that starts reconciles all.
        let _ = self.changes.send(GrantChange::Namespace(namespace));
    }

    /// Namespaces whose grant changed from now on.
    pub fn subscribe(&self) -> impl futures::Stream<Item = GrantChange> + Send + 'static {
        futures::stream::unfold(self.changes.subscribe(), |mut changes| async move {
            let change = match changes.recv().await {
                Ok(change) => change,
                Err(broadcast::error::RecvError::Lagged(_)) => GrantChange::Unknown,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((change, changes))
        })
    }

    /// What `namespace` may do: `None` while the namespace is not in the cache (just created:
    /// the default must not stand in for a grant not read yet).
    pub fn of(&self, namespace: &str) -> Option<NamespaceGrants> {
        let cached = self.namespaces.get(&ObjectRef::new(namespace))?;
        let annotations = cached.metadata.annotations.as_ref();
        Some(NamespaceGrants::from_annotations(
            annotations,
            &self.default,
        ))
    }

    /// The namespace is being deleted (as the cache last saw it).
    pub fn namespace_terminating(&self, namespace: &str) -> bool {
        self.namespaces
            .get(&ObjectRef::new(namespace))
            .is_some_and(|n| n.metadata.deletion_timestamp.is_some())
    }
}

/// What the reconcile says about a grant annotation that does not parse.
pub fn describe_unreadable(namespace: &str, error: &AnnotationError) -> String {
    let example = if error.annotation == FEDERATED_CLIENT_IDS_ANNOTATION {
        "CLIENT_ID"
    } else {
        "SUBSCRIPTION_ID/RESOURCE_GROUP"
    };
    format!(
        "namespace {namespace}'s {error}; ask a cluster admin to fix it (kubectl annotate --overwrite namespace {namespace} {}={example},...)",
        error.annotation
    )
}

/// What of a Namespace decides its grants: its grant annotations, and whether it is
/// terminating.
type GrantInputs = ([Option<String>; 3], bool);

/// Which namespaces' grants changed, from the Namespace watch's events: a grant (or a
/// revocation, or the start of a namespace's deletion) is acted on at once, not at the next
/// resync. Remembers one entry per existing namespace and forgets deleted ones, also those a
/// relist no longer brings.
#[derive(Default)]
pub struct GrantChanges {
    seen: HashMap<String, GrantInputs>,
    relisted: Option<HashMap<String, GrantInputs>>,
}

impl GrantChanges {
    /// The namespace whose grant this event changed, if it did.
    pub fn changed(
        &mut self,
        event: &watcher::Event<PartialObjectMeta<Namespace>>,
    ) -> Option<String> {
        use watcher::Event;
        match event {
            Event::Init => {
                self.relisted = Some(HashMap::new());
                None
            }
            Event::InitApply(namespace) => {
                let (name, inputs) = grant_inputs(namespace)?;
                let changed = self.seen.get(&name) != Some(&inputs);
                self.relisted
                    .get_or_insert_with(HashMap::new)
                    .insert(name.clone(), inputs);
                changed.then_some(name)
            }
            Event::InitDone => {
                if let Some(fresh) = self.relisted.take() {
                    self.seen = fresh;
                }
                None
            }
            Event::Apply(namespace) => {
                let (name, inputs) = grant_inputs(namespace)?;
                let previous = self.seen.insert(name.clone(), inputs.clone());
                (previous != Some(inputs)).then_some(name)
            }
            Event::Delete(namespace) => {
                self.seen.remove(namespace.metadata.name.as_deref()?);
                None
            }
        }
    }
}

fn grant_inputs(namespace: &PartialObjectMeta<Namespace>) -> Option<(String, GrantInputs)> {
    let meta = &namespace.metadata;
    let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key)).cloned();
    Some((
        meta.name.clone()?,
        (
            [
                annotation(SCOPES_ANNOTATION),
                annotation(KEY_READ_SCOPES_ANNOTATION),
                annotation(FEDERATED_CLIENT_IDS_ANNOTATION),
            ],
            meta.deletion_timestamp.is_some(),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;
    use watcher::Event;

    fn namespace(name: &str, scopes: Option<&str>) -> PartialObjectMeta<Namespace> {
        let annotations = scopes.map(|s| [(SCOPES_ANNOTATION.to_string(), s.to_string())].into());
        PartialObjectMeta {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations,
                labels: Some([("unrelated".to_string(), "x".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn only_a_change_of_the_grant_is_announced() {
        let mut changes = GrantChanges::default();
        let first = Event::Apply(namespace("team-a", None));
        assert_eq!(changes.changed(&first).as_deref(), Some("team-a"));
        assert_eq!(changes.changed(&first), None, "unchanged");
        let mut relabelled = namespace("team-a", None);
        relabelled.metadata.labels = None;
        assert_eq!(changes.changed(&Event::Apply(relabelled)), None);
        let granted = Event::Apply(namespace("team-a", Some("sub/rg")));
        assert_eq!(changes.changed(&granted).as_deref(), Some("team-a"));
        let mut federated = namespace("team-a", Some("sub/rg"));
        federated.metadata.annotations.as_mut().unwrap().insert(
            FEDERATED_CLIENT_IDS_ANNOTATION.into(),
            "6f1c1c3e-1b7a-4d5e-9a1e-1234567890ab".into(),
        );
        let allowed = Event::Apply(federated);
        assert_eq!(changes.changed(&allowed).as_deref(), Some("team-a"));
    }

    #[test]
    fn a_relist_announces_what_changed_meanwhile_and_forgets_the_deleted() {
        let mut changes = GrantChanges::default();
        changes.changed(&Event::Apply(namespace("kept", None)));
        changes.changed(&Event::Apply(namespace("gone", None)));
        changes.changed(&Event::Apply(namespace("granted", None)));
        assert_eq!(changes.changed(&Event::Init), None);
        assert_eq!(
            changes.changed(&Event::InitApply(namespace("kept", None))),
            None
        );
        let granted = Event::InitApply(namespace("granted", Some("s/r")));
        assert_eq!(changes.changed(&granted).as_deref(), Some("granted"));
        changes.changed(&Event::InitDone);
        assert_eq!(
            changes.seen.len(),
            2,
            "the namespace missing from the relist is forgotten"
        );
        changes.changed(&Event::Delete(namespace("kept", None)));
        assert_eq!(changes.seen.len(), 1);
    }
}
