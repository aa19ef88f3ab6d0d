//! Which Azure scopes a namespace may reach: granted by cluster admins, never by the namespace's
//! own users. Pure: the controller reads the grants (namespace annotations, the operator's
//! `--default-scopes`) and asks here.
//!
//! A grant is a comma-separated list of `SUBSCRIPTION_ID/RESOURCE_GROUP`, where either part may
//! be `*` (`*` alone means every subscription and resource group). Subscription ids and resource
//! group names compare case-insensitively, as in ARM.

use std::fmt;

use crate::arm::models::is_guid;

/// Namespace annotation naming the scopes its resources may manage.
pub const SCOPES_ANNOTATION: &str = "cognitive-operator.dev/azure-scopes";
/// Namespace annotation naming the scopes in which `reconcilePolicy: Observe` may copy the keys
/// of accounts that no resource of the namespace manages into a connection Secret.
pub const KEY_READ_SCOPES_ANNOTATION: &str = "cognitive-operator.dev/azure-key-read-scopes";
/// Namespace annotation naming the client ids (comma-separated GUIDs) its credentials Secrets
/// may name for workload identity; when set it replaces the operator's
/// `--allowed-federated-client-ids` for that namespace (empty: none).
pub const FEDERATED_CLIENT_IDS_ANNOTATION: &str =
    "cognitive-operator.dev/allowed-federated-client-ids";

/// One `SUBSCRIPTION/RESOURCE_GROUP` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Scope {
    subscription: Pattern,
    resource_group: Pattern,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Any,
    Exactly(String),
}

impl Pattern {
    fn parse(text: &str) -> Pattern {
        match text.trim() {
            "*" => Pattern::Any,
            other => Pattern::Exactly(other.to_ascii_lowercase()),
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exactly(expected) => expected.eq_ignore_ascii_case(value),
        }
    }
}

/// The scopes granted to one namespace (empty: none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    scopes: Vec<Scope>,
}

/// A grant that does not parse: the annotation's (or flag's) text and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a list of {expected}: {problem}")]
pub struct GrantError {
    pub text: String,
    /// What the text should list.
    pub expected: &'static str,
    pub problem: String,
}

const SCOPES: &str = "SUBSCRIPTION_ID/RESOURCE_GROUP scopes";
const CLIENT_IDS: &str = "client ids (GUIDs)";

impl Grant {
    /// Parses `SUB/RG, SUB/*, */*` (or `*`); an empty text grants nothing.
    pub fn parse(text: &str) -> Result<Grant, GrantError> {
        let error = |problem: String| GrantError {
            text: text.to_string(),
            expected: SCOPES,
            problem,
        };
        let mut scopes = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                scopes.push(Scope {
                    subscription: Pattern::Any,
                    resource_group: Pattern::Any,
                });
                continue;
            }
            let Some((subscription, resource_group)) = entry.split_once('/') else {
                return Err(error(format!("{entry:?} has no '/'")));
            };
            if subscription.trim().is_empty()
                || resource_group.trim().is_empty()
                || resource_group.contains('/')
            {
                return Err(error(format!(
                    "{entry:?} is not SUBSCRIPTION_ID/RESOURCE_GROUP"
                )));
            }
            scopes.push(Scope {
                subscription: Pattern::parse(subscription),
                resource_group: Pattern::parse(resource_group),
            });
        }
        Ok(Grant { scopes })
    }

    pub fn allows(&self, subscription: &str, resource_group: &str) -> bool {
        self.scopes.iter().any(|scope| {
            scope.subscription.matches(subscription) && scope.resource_group.matches(resource_group)
        })
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scopes.is_empty() {
            return write!(f, "(none)");
        }
        let part = |pattern: &Pattern| match pattern {
            Pattern::Any => "*".to_string(),
            Pattern::Exactly(value) => value.clone(),
        };
        let scopes: Vec<String> = self
            .scopes
            .iter()
            .map(|s| format!("{}/{}", part(&s.subscription), part(&s.resource_group)))
            .collect();
        write!(f, "{}", scopes.join(", "))
    }
}

/// Parses a comma-separated list of client ids, each a GUID; an empty text allows none.
pub fn parse_client_ids(text: &str) -> Result<Vec<String>, GrantError> {
    let entries: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    match entries.iter().find(|entry| !is_guid(entry)) {
        Some(bad) => Err(GrantError {
            text: text.to_string(),
            expected: CLIENT_IDS,
            problem: format!("{bad:?} is not a GUID"),
        }),
        None => Ok(entries.into_iter().map(str::to_string).collect()),
    }
}

/// What a namespace may do in Azure: the scopes its resources may manage, those in which
/// Observe may publish keys of accounts it does not manage, and the client ids its Secrets may
/// name for workload identity. Each annotation is read on its own: a typo in one never changes
/// what another grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceGrants {
    pub manage: Result<Grant, AnnotationError>,
    pub read_keys: Result<Grant, AnnotationError>,
    /// `None`: no annotation, the operator's `--allowed-federated-client-ids` applies.
    pub federated_client_ids: Result<Option<Vec<String>>, AnnotationError>,
}

/// A namespace annotation whose value is not a grant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("annotation {annotation}: {error}")]
pub struct AnnotationError {
    pub annotation: &'static str,
    pub error: GrantError,
}

impl NamespaceGrants {
    /// From a namespace's annotations, falling back to `default` for a namespace whose admins
    /// set no scopes annotation. Key reading is never defaulted.
    pub fn from_annotations(
        annotations: Option<&std::collections::BTreeMap<String, String>>,
        default: &Grant,
    ) -> NamespaceGrants {
        let text = |annotation: &'static str| annotations.and_then(|a| a.get(annotation));
        let parse = |annotation: &'static str| {
            text(annotation).map(|text| {
                Grant::parse(text).map_err(|error| AnnotationError { annotation, error })
            })
        };
        let federated = FEDERATED_CLIENT_IDS_ANNOTATION;
        NamespaceGrants {
            manage: parse(SCOPES_ANNOTATION).unwrap_or_else(|| Ok(default.clone())),
            read_keys: parse(KEY_READ_SCOPES_ANNOTATION).unwrap_or_else(|| Ok(Grant::default())),
            federated_client_ids: text(federated)
                .map(|text| parse_client_ids(text))
                .transpose()
                .map_err(|error| AnnotationError {
                    annotation: federated,
                    error,
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn scopes_match_subscription_and_resource_group_case_insensitively() {
        let grant = Grant::parse("SUB-A/rg-one, sub-b/*").unwrap();
        assert!(grant.allows("sub-a", "RG-ONE"));
        assert!(!grant.allows("sub-a", "rg-two"));
        assert!(grant.allows("sub-b", "anything"));
        assert!(!grant.allows("sub-c", "rg-one"));
        assert!(Grant::parse("*").unwrap().allows("any", "thing"));
        assert!(
            Grant::parse("*/rg-shared")
                .unwrap()
                .allows("x", "rg-shared")
        );
    }

    #[test]
    fn an_empty_grant_allows_nothing() {
        let none = Grant::parse(" , ").unwrap();
        assert!(!none.allows("sub", "rg"));
        assert_eq!(none.to_string(), "(none)");
        assert!(!Grant::default().allows("sub", "rg"));
    }

    #[test]
    fn malformed_grants_are_refused_naming_the_entry() {
        for bad in ["sub-a", "sub-a/rg/extra", "/rg", "sub/ "] {
            let error = Grant::parse(bad).unwrap_err();
            assert!(
                error.to_string().contains("SUBSCRIPTION_ID/RESOURCE_GROUP"),
                "{error}"
            );
        }
    }

    #[test]
    fn annotations_override_the_default_and_key_reading_is_never_defaulted() {
        let default = Grant::parse("*").unwrap();
        let none = NamespaceGrants::from_annotations(None, &default);
        assert!(none.manage.unwrap().allows("s", "r"));
        assert!(!none.read_keys.unwrap().allows("s", "r"));
        let annotations = BTreeMap::from([
            (SCOPES_ANNOTATION.to_string(), "s/r".to_string()),
            (KEY_READ_SCOPES_ANNOTATION.to_string(), "s/r".to_string()),
        ]);
        let granted = NamespaceGrants::from_annotations(Some(&annotations), &default);
        let manage = granted.manage.unwrap();
        assert!(manage.allows("s", "r") && !manage.allows("s", "other"));
        assert!(granted.read_keys.unwrap().allows("s", "r"));
    }

    #[test]
    fn a_namespace_lists_its_own_federated_client_ids_or_leaves_the_default() {
        let default = Grant::default();
        let none = NamespaceGrants::from_annotations(None, &default);
        assert_eq!(none.federated_client_ids, Ok(None), "the flag applies");
        let id = "6F1C1C3E-1b7a-4d5e-9a1e-1234567890ab";
        let listed = BTreeMap::from([(
            FEDERATED_CLIENT_IDS_ANNOTATION.to_string(),
            format!(" {id} ,"),
        )]);
        let grants = NamespaceGrants::from_annotations(Some(&listed), &default);
        assert_eq!(grants.federated_client_ids, Ok(Some(vec![id.to_string()])));
        let empty = BTreeMap::from([(FEDERATED_CLIENT_IDS_ANNOTATION.to_string(), String::new())]);
        let grants = NamespaceGrants::from_annotations(Some(&empty), &default);
        assert_eq!(grants.federated_client_ids, Ok(Some(vec![])), "none at all");

        let typo = BTreeMap::from([
            (
                FEDERATED_CLIENT_IDS_ANNOTATION.to_string(),
                format!("{id},app-1"),
            ),
            (SCOPES_ANNOTATION.to_string(), "s/r".to_string()),
        ]);
        let grants = NamespaceGrants::from_annotations(Some(&typo), &default);
        assert!(
            grants.manage.unwrap().allows("s", "r"),
            "spoils only itself"
        );
        let error = grants.federated_client_ids.unwrap_err().to_string();
        assert!(
            error.contains(FEDERATED_CLIENT_IDS_ANNOTATION)
                && error.contains("\"app-1\" is not a GUID"),
            "{error}"
        );
    }

    #[test]
    fn a_malformed_annotation_spoils_only_its_own_grant_and_is_named() {
        let default = Grant::parse("*").unwrap();
        let typo_in_keys = BTreeMap::from([
            (SCOPES_ANNOTATION.to_string(), "s/r".to_string()),
            (KEY_READ_SCOPES_ANNOTATION.to_string(), "s-r".to_string()),
        ]);
        let grants = NamespaceGrants::from_annotations(Some(&typo_in_keys), &default);
        assert!(grants.manage.unwrap().allows("s", "r"));
        let error = grants.read_keys.unwrap_err().to_string();
        assert!(
            error.contains(KEY_READ_SCOPES_ANNOTATION) && error.contains("s-r"),
            "{error}"
        );

        let typo_in_scopes = BTreeMap::from([(SCOPES_ANNOTATION.to_string(), "s".to_string())]);
        let grants = NamespaceGrants::from_annotations(Some(&typo_in_scopes), &default);
        let error = grants.manage.unwrap_err();
        assert_eq!(
            error.annotation, SCOPES_ANNOTATION,
            "never the default instead"
        );
    }
}
