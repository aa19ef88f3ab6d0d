//! Resource-provider URL paths → routes. Literal segments match case-insensitively, as in ARM.

/// The resource-provider endpoints the emulator serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Account {
        subscription: String,
        resource_group: String,
        name: String,
    },
    ListKeys {
        subscription: String,
        resource_group: String,
        name: String,
    },
    RegenerateKey {
        subscription: String,
        resource_group: String,
        name: String,
    },
    AccountSkus {
        subscription: String,
        resource_group: String,
        name: String,
    },
    AccountModels {
        subscription: String,
        resource_group: String,
        name: String,
    },
    AccountUsages {
        subscription: String,
        resource_group: String,
        name: String,
    },
    Deployments {
        subscription: String,
        resource_group: String,
        account: String,
    },
    Deployment {
        subscription: String,
        resource_group: String,
        account: String,
        name: String,
    },
    DeploymentSkus {
        subscription: String,
        resource_group: String,
        account: String,
        name: String,
    },
    AccountsInGroup {
        subscription: String,
        resource_group: String,
    },
    AccountsInSubscription {
        subscription: String,
    },
    DeletedAccounts {
        subscription: String,
    },
    DeletedAccount {
        subscription: String,
        location: String,
        resource_group: String,
        name: String,
    },
    CheckDomainAvailability {
        subscription: String,
    },
    LocationModels {
        subscription: String,
        location: String,
    },
    LocationUsages {
        subscription: String,
        location: String,
    },
    OperationStatus {
        subscription: String,
        location: String,
        id: String,
    },
    OperationResult {
        subscription: String,
        location: String,
        id: String,
    },
}

const PROVIDER: &str = "Microsoft.CognitiveServices";

impl Route {
    /// `None` when the path is no endpoint of the emulated provider.
    pub(crate) fn parse(path: &str) -> Option<Route> {
        let segments: Vec<String> = path
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(decode)
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        match segments.as_slice() {
            [subscriptions, subscription, rest @ ..] if is(subscriptions, "subscriptions") => {
                Self::parse_in_subscription(subscription, rest)
            }
            _ => None,
        }
    }

    fn parse_in_subscription(subscription: &str, rest: &[&str]) -> Option<Route> {
        let subscription = subscription.to_string();
        match rest {
            [groups, group, providers, provider, rest @ ..]
                if is(groups, "resourceGroups")
                    && is(providers, "providers")
                    && is(provider, PROVIDER) =>
            {
                Self::parse_in_group(subscription, group.to_string(), rest)
            }
            [providers, provider, rest @ ..]
                if is(providers, "providers") && is(provider, PROVIDER) =>
            {
                Self::parse_provider_scope(subscription, rest)
            }
            _ => None,
        }
    }

    fn parse_in_group(
        subscription: String,
        resource_group: String,
        rest: &[&str],
    ) -> Option<Route> {
        match rest {
            [accounts] if is(accounts, "accounts") => Some(Route::AccountsInGroup {
                subscription,
                resource_group,
            }),
            [accounts, name] if is(accounts, "accounts") => Some(Route::Account {
                subscription,
                resource_group,
                name: name.to_string(),
            }),
            [accounts, name, action] if is(accounts, "accounts") => {
                let name = name.to_string();
                if is(action, "listKeys") {
                    Some(Route::ListKeys {
                        subscription,
                        resource_group,
                        name,
                    })
                } else if is(action, "regenerateKey") {
                    Some(Route::RegenerateKey {
                        subscription,
                        resource_group,
                        name,
                    })
                } else if is(action, "skus") {
                    Some(Route::AccountSkus {
                        subscription,
                        resource_group,
                        name,
                    })
                } else if is(action, "models") {
                    Some(Route::AccountModels {
                        subscription,
                        resource_group,
                        name,
                    })
                } else if is(action, "usages") {
                    Some(Route::AccountUsages {
                        subscription,
                        resource_group,
                        name,
                    })
                } else if is(action, "deployments") {
                    Some(Route::Deployments {
                        subscription,
                        resource_group,
                        account: name,
                    })
                } else {
                    None
                }
            }
            [accounts, account, deployments, name, rest @ ..]
                if is(accounts, "accounts") && is(deployments, "deployments") =>
            {
                Self::parse_deployment(subscription, resource_group, account, name, rest)
            }
            _ => None,
        }
    }

    fn parse_deployment(
        subscription: String,
        resource_group: String,
        account: &str,
        name: &str,
        rest: &[&str],
    ) -> Option<Route> {
        let (account, name) = (account.to_string(), name.to_string());
        match rest {
            [] => Some(Route::Deployment {
                subscription,
                resource_group,
                account,
                name,
            }),
            [skus] if is(skus, "skus") => Some(Route::DeploymentSkus {
                subscription,
                resource_group,
                account,
                name,
            }),
            _ => None,
        }
    }

    fn parse_provider_scope(subscription: String, rest: &[&str]) -> Option<Route> {
        match rest {
            [accounts] if is(accounts, "accounts") => {
                Some(Route::AccountsInSubscription { subscription })
            }
            [deleted] if is(deleted, "deletedAccounts") => {
                Some(Route::DeletedAccounts { subscription })
            }
            [check] if is(check, "checkDomainAvailability") => {
                Some(Route::CheckDomainAvailability { subscription })
            }
            [locations, location, groups, group, deleted, name]
                if is(locations, "locations")
                    && is(groups, "resourceGroups")
                    && is(deleted, "deletedAccounts") =>
            {
                Some(Route::DeletedAccount {
                    subscription,
                    location: location.to_string(),
                    resource_group: group.to_string(),
                    name: name.to_string(),
                })
            }
            [locations, location, collection] if is(locations, "locations") => {
                let location = location.to_string();
                if is(collection, "models") {
                    Some(Route::LocationModels {
                        subscription,
                        location,
                    })
                } else if is(collection, "usages") {
                    Some(Route::LocationUsages {
                        subscription,
                        location,
                    })
                } else {
                    None
                }
            }
            [locations, location, collection, id] if is(locations, "locations") => {
                let (location, id) = (location.to_string(), id.to_string());
                if is(collection, "operationStatuses") {
                    Some(Route::OperationStatus {
                        subscription,
                        location,
                        id,
                    })
                } else if is(collection, "operationResults") {
                    Some(Route::OperationResult {
                        subscription,
                        location,
                        id,
                    })
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    pub(crate) fn subscription(&self) -> &str {
        match self {
            Route::Account { subscription, .. }
            | Route::ListKeys { subscription, .. }
            | Route::RegenerateKey { subscription, .. }
            | Route::AccountSkus { subscription, .. }
            | Route::AccountModels { subscription, .. }
            | Route::AccountUsages { subscription, .. }
            | Route::Deployments { subscription, .. }
            | Route::Deployment { subscription, .. }
            | Route::DeploymentSkus { subscription, .. }
            | Route::AccountsInGroup { subscription, .. }
            | Route::AccountsInSubscription { subscription }
            | Route::LocationModels { subscription, .. }
            | Route::LocationUsages { subscription, .. }
            | Route::DeletedAccounts { subscription }
            | Route::DeletedAccount { subscription, .. }
            | Route::CheckDomainAvailability { subscription }
            | Route::OperationStatus { subscription, .. }
            | Route::OperationResult { subscription, .. } => subscription,
        }
    }

    /// The resource group a route addresses through `/resourceGroups/{rg}/providers/...`, which must exist.
    pub(crate) fn resource_group(&self) -> Option<&str> {
        match self {
            Route::Account { resource_group, .. }
            | Route::ListKeys { resource_group, .. }
            | Route::RegenerateKey { resource_group, .. }
            | Route::AccountSkus { resource_group, .. }
            | Route::AccountModels { resource_group, .. }
            | Route::AccountUsages { resource_group, .. }
            | Route::Deployments { resource_group, .. }
            | Route::Deployment { resource_group, .. }
            | Route::DeploymentSkus { resource_group, .. }
            | Route::AccountsInGroup { resource_group, .. } => Some(resource_group),
            _ => None,
        }
    }
}

/// The subscription a path names, for throttling requests that match no route.
pub(crate) fn subscription_of(path: &str) -> Option<&str> {
    let mut segments = path.split('/').filter(|segment| !segment.is_empty());
    match (segments.next(), segments.next()) {
        (Some(first), Some(subscription)) if is(first, "subscriptions") => Some(subscription),
        _ => None,
    }
}

fn is(segment: &str, literal: &str) -> bool {
    segment.eq_ignore_ascii_case(literal)
}

/// Percent-decodes one path segment (names never need it, but `West%20US` locations might).
fn decode(segment: &str) -> String {
    if !segment.contains('%') {
        return segment.to_string();
    }
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok());
        match (
            bytes[index],
            hex.and_then(|pair| u8::from_str_radix(pair, 16).ok()),
        ) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_account_routes_case_insensitively() {
        let route = Route::parse(
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/a",
        );
        assert_eq!(
            route,
            Some(Route::Account {
                subscription: "s".into(),
                resource_group: "rg".into(),
                name: "a".into()
            })
        );
    }

    #[test]
    fn parses_deleted_account_and_operation_routes() {
        let route = Route::parse(
            "/subscriptions/s/providers/Microsoft.CognitiveServices/locations/West%20US/resourceGroups/rg/deletedAccounts/a",
        );
        assert!(
            matches!(route, Some(Route::DeletedAccount { location, .. }) if location == "West US")
        );
        let route = Route::parse(
            "/subscriptions/s/providers/Microsoft.CognitiveServices/locations/westus/operationResults/x",
        );
        assert!(matches!(route, Some(Route::OperationResult { id, .. }) if id == "x"));
    }

    #[test]
    fn parses_deployment_and_catalogue_routes() {
        let account =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a";
        assert!(matches!(
            Route::parse(&format!("{account}/DEPLOYMENTS/d")),
            Some(Route::Deployment { account, name, .. }) if account == "a" && name == "d"
        ));
        assert!(matches!(
            Route::parse(&format!("{account}/deployments/d/skus")),
            Some(Route::DeploymentSkus { .. })
        ));
        assert!(matches!(
            Route::parse(&format!("{account}/deployments")),
            Some(Route::Deployments { .. })
        ));
        assert!(matches!(
            Route::parse(&format!("{account}/usages")),
            Some(Route::AccountUsages { name, .. }) if name == "a"
        ));
        assert_eq!(
            Route::parse(&format!("{account}/deployments/d/other")),
            None
        );
        assert!(matches!(
            Route::parse("/subscriptions/s/providers/Microsoft.CognitiveServices/locations/westus/usages"),
            Some(Route::LocationUsages { location, .. }) if location == "westus"
        ));
    }

    #[test]
    fn rejects_other_providers() {
        assert_eq!(
            Route::parse("/subscriptions/s/providers/Microsoft.Storage/accounts"),
            None
        );
        assert_eq!(
            subscription_of("/subscriptions/s/providers/Microsoft.Storage"),
            Some("s")
        );
    }
}
