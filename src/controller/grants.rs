//! The Azure scopes each namespace was granted by cluster admins (namespace annotations, see
//! [`crate::tenancy`]), read from a cache of Namespace metadata that the controller keeps.

use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::tenancy::{Grant, GrantError, NamespaceGrants, SCOPES_ANNOTATION};

/// Grants by namespace: the namespace's annotations, or `default` where admins set none.
#[derive(Clone)]
pub struct Grants {
    default: Grant,
    namespaces: Store<PartialObjectMeta<Namespace>>,
}

impl Grants {
    pub fn new(default: Grant, namespaces: Store<PartialObjectMeta<Namespace>>) -> Self {
        Grants {
            default,
            namespaces,
        }
    }

    /// What `namespace` may do: `None` while the namespace is not in the cache (just created:
    /// the default must not stand in for a grant not read yet), an error naming an annotation
    /// that does not parse.
    pub fn of(&self, namespace: &str) -> Option<Result<NamespaceGrants, String>> {
        let cached = self.namespaces.get(&ObjectRef::new(namespace))?;
        let annotations = cached.metadata.annotations.as_ref();
        Some(
            NamespaceGrants::from_annotations(annotations, &self.default).map_err(
                |GrantError { text, problem }| {
                    format!(
                        "namespace {namespace}'s annotation {SCOPES_ANNOTATION} (or its key-read companion) is {text:?}, which does not parse: {problem}; ask a cluster admin to fix it"
                    )
                },
            ),
        )
    }

    /// The namespace is being deleted (as the cache last saw it).
    pub fn namespace_terminating(&self, namespace: &str) -> bool {
        self.namespaces
            .get(&ObjectRef::new(namespace))
            .is_some_and(|n| n.metadata.deletion_timestamp.is_some())
    }
}
