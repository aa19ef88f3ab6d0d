//! The one builder of CognitiveServicesAccount resources for integration tests and benches
//! (`#[path]`-included by tests/engine.rs, tests/controller_reconcile.rs and benches/support). Unit tests
//! inside the crate have theirs in `src/test_fixtures.rs`: Rust shares no `cfg(test)` code
//! across that boundary without shipping it (see docs/architecture.md).
#![allow(dead_code)]

use cognitive_operator::api::{CognitiveServicesAccount, CognitiveServicesAccountSpec};
use cognitive_operator::arm::models::{AccountWritableProperties, Sku};

/// Where a test's accounts live.
pub struct Place<'a> {
    pub subscription: &'a str,
    pub resource_group: &'a str,
    pub location: &'a str,
    pub namespace: &'a str,
}

/// The smallest resource that creates an OpenAI S0 account at `place`, generation 1.
pub fn bare_account(name: &str, place: &Place) -> CognitiveServicesAccount {
    let spec = CognitiveServicesAccountSpec {
        subscription_id: Some(place.subscription.into()),
        resource_group: place.resource_group.into(),
        location: place.location.into(),
        kind: "OpenAI".into(),
        sku: Sku {
            name: "S0".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut resource = CognitiveServicesAccount::new(name, spec);
    resource.metadata.namespace = Some(place.namespace.into());
    resource.metadata.generation = Some(1);
    resource
}

/// As a user would write it: with a custom subdomain (its name), public access and tags.
pub fn account(name: &str, place: &Place, tags: &[(&str, &str)]) -> CognitiveServicesAccount {
    let mut resource = bare_account(name, place);
    resource.spec.tags = Some(
        tags.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    resource.spec.properties = Some(AccountWritableProperties {
        custom_sub_domain_name: Some(name.into()),
        public_network_access: Some("Enabled".into()),
        ..Default::default()
    });
    resource
}
